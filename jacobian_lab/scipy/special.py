"""scipy.special's logsumexp, softmax and log_softmax on traced arrays (`jacobian_lab.scipy`).

scipy.special's ufuncs (erf, gammaln, ndtr, ...) take traced arrays as they are,
and this module hands them out too, so that one import serves both
(``from jacobian_lab.scipy.special import expit, logsumexp``); these three
convert their input first. Each shifts by the maximum, held
constant (its derivative cancels: log Σ exp(a) = m + log Σ exp(a - m) for any
constant m), so large values do not overflow; where the maximum is not finite
the shift is 0, as in SciPy (softmax keeps it, and its NaN, as SciPy's does).
"""
from __future__ import annotations

import numpy as np
import scipy.special

from ..constants import stop_gradient
from ..scipy_special import PRIMITIVES
from ._dispatch import or_scipy

__all__ = ["log_softmax", "logsumexp", "softmax"]


#: scipy.special's own functions that take traced arrays: its ufuncs with rules, and the functions calling them
_OWN = {name for name in PRIMITIVES if "." not in name} | {"softplus", "zeta"}


def __getattr__(name: str):
    if name in _OWN:
        return getattr(scipy.special, name)
    raise AttributeError(f"jacobian_lab.scipy.special has logsumexp, softmax, log_softmax and scipy.special's "
                         f"functions with derivative rules ({', '.join(sorted(_OWN))}), not {name}")


_LARGEST_EXPONENT = 700.0  # exp of it is finite in float64


def _shift(a, axis, finite: bool = True):
    """max(a) over `axis` (keeping its axes), without a derivative; with `finite`, 0 where it is not finite
    or a is empty (logsumexp's and log_softmax's, not softmax's: SciPy's)."""
    m = stop_gradient(np.max(a, axis=axis, keepdims=True, initial=-np.inf))
    return np.where(np.isfinite(m), m, 0.0) if finite else m


def _reduced(value, axis, keepdims: bool):
    """`value`, reduced over `axis` with its axes kept, without them unless `keepdims` (axis None: all)."""
    return value if keepdims else np.squeeze(value, axis=axis)


@or_scipy(scipy.special.logsumexp)
def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """log Σ b exp(a) over `axis`, as ``scipy.special.logsumexp`` (the same arguments).

    With `return_sign`, the pair (log |Σ b exp(a)|, its sign), for b of either sign.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.special import logsumexp
    >>> x = np.array([[0.0, 1000.0], [2.0, 2.0]])
    >>> jl.jacobian(lambda x: logsumexp(x, axis=1), x)[1]  # row 1's softmax, in row 1
    array([[0. , 0. ],
           [0.5, 0.5]])
    """
    if b is not None:
        shape = np.broadcast_shapes(np.shape(a), np.shape(b))
        a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    if b is not None and np.any(b == 0):  # as SciPy, a term of weight 0 is left out: its a shifts nothing
        kept = b != 0
        shift = _shift(np.where(kept, a, -np.inf), axis)
        # and its exp(a - shift), the derivative in its b, is kept finite, where 0 times inf would be NaN
        a = np.where(kept, a, np.minimum(a, shift + _LARGEST_EXPONENT))
    else:
        shift = _shift(a, axis)
    terms = np.exp(a - shift)
    total = np.sum(terms if b is None else b * terms, axis=axis, keepdims=True)
    if return_sign:
        sign = np.sign(total)
        total = np.abs(total)
    # log 0 = -inf (every term 0) and log of a negative sum (b < 0) NaN, as SciPy gives them, without a warning
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _reduced(np.log(total) + shift, axis, keepdims)
    return (out, _reduced(sign, axis, keepdims)) if return_sign else out


@or_scipy(scipy.special.softmax)
def softmax(x, axis=None):
    """exp(x) / Σ exp(x) over `axis`, as ``scipy.special.softmax``.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.special import softmax
    >>> jl.jacobian(softmax, np.zeros(2))
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    terms = np.exp(x - _shift(x, axis, finite=False))  # SciPy's: NaN everywhere along an axis holding inf
    return terms / np.sum(terms, axis=axis, keepdims=True)


@or_scipy(scipy.special.log_softmax)
def log_softmax(x, axis=None):
    """x - log Σ exp(x) over `axis`, as ``scipy.special.log_softmax``.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.special import log_softmax
    >>> jl.grad(lambda x: log_softmax(x)[0])(np.zeros(2))
    array([ 0.5, -0.5])
    """
    shifted = x - _shift(x, axis)
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
