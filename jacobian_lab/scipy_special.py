"""scipy.special's ufuncs on traced arrays: each mapped to its primitive in `numpy_api.UFUNCS`.

scipy implements its special functions as NumPy ufuncs, so a traced operand
brings them to `Tracer.__array_ufunc__` like `np.exp`. Importing scipy.special
takes longer than importing jacobian_lab, and the ufunc objects exist only once
it is imported, so the table is filled when a ufunc missing from it first
reaches a tracer and scipy.special is loaded (`dispatch`), or right away if it
already is when this module is imported. Lookups of mapped ufuncs are untouched.

`softplus` is not a ufunc: it calls `np.logaddexp(0, x)`, which runs on traced
arrays. `logsumexp`, `softmax` and `log_softmax` convert their input with
`asarray` first, which a traced array refuses: `jacobian_lab.scipy.special`
writes them with NumPy operations.
"""
from __future__ import annotations

import functools
import sys

from . import numpy_api as api
from .rules import special as S

#: scipy.special's name -> primitive (psi is digamma, the same ufunc).
PRIMITIVES = {
    "expit": S.expit, "logit": S.logit, "log_expit": S.log_expit,
    "erf": S.erf, "erfc": S.erfc, "erfinv": S.erfinv, "erfcinv": S.erfcinv,
    "ndtr": S.ndtr, "log_ndtr": S.log_ndtr, "ndtri": S.ndtri,
    "gammaln": S.gammaln, "digamma": S.digamma, "psi": S.digamma, "gamma": S.gamma,
    "beta": S.beta, "betaln": S.betaln,
    "xlogy": S.xlogy, "xlog1py": S.xlog1py, "entr": S.entr, "rel_entr": S.rel_entr, "kl_div": S.kl_div,
    "gammainc": S.gammainc, "gammaincc": S.gammaincc,
    "j0": S.j0, "j1": S.j1, "y0": S.y0, "y1": S.y1, "i0": S.i0, "i1": S.i1, "i0e": S.i0e, "i1e": S.i1e,
    "k0": S.k0, "k1": S.k1, "k0e": S.k0e, "k1e": S.k1e,
    "jv": S.jv, "yv": S.yv, "iv": S.iv, "kv": S.kv, "jve": S.jve, "yve": S.yve, "ive": S.ive, "kve": S.kve,
    "ellipk": S.ellipk, "ellipkm1": S.ellipkm1, "ellipe": S.ellipe, "huber": S.huber, "pseudo_huber": S.pseudo_huber,
    "exprel": S.exprel, "_ufuncs._zeta": S.zeta,
    "erfcx": S.erfcx,
}

_mapped = False


def register() -> bool:
    """Map scipy.special's ufuncs in `numpy_api.UFUNCS` if scipy.special is imported; True if this call did."""
    global _mapped
    if _mapped or "scipy.special" not in sys.modules:
        return False
    sc = S.load()
    for name, prim in PRIMITIVES.items():  # zeta(x, q) is a function of the private ufuncs it names
        ufunc = functools.reduce(lambda module, part: getattr(module, part, None), name.split("."), sc)
        if ufunc is not None:
            api.UFUNCS[ufunc] = prim
    _mapped = True
    return True


def dispatch(tracer, ufunc, method, inputs, kwargs):
    """`Tracer.__array_ufunc__` off its fast path (another method, keyword arguments, an unmapped ufunc).

    Maps scipy.special's ufuncs when one of them first arrives and dispatches
    again; refuses a scipy.special ufunc without a rule (or a method of one,
    ``xlogy.outer``) by its scipy name; leaves the rest to `numpy_api.apply_ufunc`.
    """
    if not api.routed(ufunc) and register():
        return tracer.__array_ufunc__(ufunc, method, *inputs, **kwargs)
    if method != "__call__" or ufunc not in api.UFUNCS:
        special = sys.modules.get("scipy.special")
        if special is not None and getattr(special, ufunc.__name__, None) is ufunc:
            raise api.unsupported(f"scipy.special.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}"))
    return api.apply_ufunc(ufunc, method, inputs, kwargs)


register()
