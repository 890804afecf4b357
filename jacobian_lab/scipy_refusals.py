"""How a refusal names the SciPy function that is converting a traced array, and what to call in its place.

SciPy computes on plain numbers, so a SciPy function given a traced array converts it
(`tracing.Tracer.__array__`), and jacobian_lab refuses. The refusal names the function f called,
read from the frames above the conversion (`caller`: ``scipy.special.logsumexp``,
``scipy.stats.norm(...).logpdf``), and the drop-in `jacobian_lab.scipy` has for it
(`instead_of`), else what to write (`rewrites.instead`).

>>> instead_of("scipy.linalg.solve")[:55]
'Call jacobian_lab.scipy.linalg.solve in its place (the '
"""
from __future__ import annotations

import sys

from .rewrites import instead


def caller(depth: int = 2) -> str | None:
    """The scipy function f called that is converting a traced array (scipy.special.logsumexp), if any.

    It is read from the run of scipy and NumPy frames right above the conversion: the outermost
    public function there (not scipy's internal helpers; for a decorator's wrapper, the function
    it wraps), or the outermost scipy frame if none is. A scipy frame further out
    (scipy.optimize.root calling the Jacobian function that calls f) is no caller of this conversion.
    """
    try:
        frame, public, outermost = sys._getframe(depth), None, None  # the frame that called the conversion
    except ValueError:  # a stack shallower than that: no caller at all
        return None
    while frame is not None:
        module, function = frame.f_globals.get("__name__", ""), frame.f_code.co_name
        if module.startswith("scipy."):
            outermost = ".".join(module.split(".")[:2] + [function])
            if "wrapper" in function:  # a decorator's: the function it wraps is one of its locals
                wrapped = next((v for v in frame.f_locals.values() if callable(v)
                                and str(getattr(v, "__module__", "")).startswith("scipy.")
                                and not getattr(v, "__name__", "_").startswith(("_", "<"))), None)
                if wrapped is not None:
                    public = ".".join(wrapped.__module__.split(".")[:2] + [wrapped.__name__])
            elif function in ("__init__", "__call__") and "self" in frame.f_locals:  # a class: CubicSpline(x, y)
                public = ".".join(module.split(".")[:2] + [type(frame.f_locals["self"]).__name__])
            elif module.startswith("scipy.stats") and "self" in frame.f_locals and not function.startswith("_"):
                named = _distribution(frame.f_locals["self"])  # a distribution's method: norm.logpdf
                public = f"scipy.stats.{named}.{_method(frame)}" if named else public or outermost
            elif not module.startswith("scipy._lib") and not function.startswith("_"):
                public = outermost
        elif not module.startswith("numpy"):
            break
        frame = frame.f_back
    return public or outermost


def _distribution(obj) -> str | None:
    """How scipy.stats names the distribution `obj` is, or is a frozen one of (``norm``, ``norm(...)``), or None."""
    import scipy.stats

    frozen = getattr(obj, "dist", None) or getattr(obj, "_dist", None)
    if frozen is not None and frozen is not obj:
        named = _distribution(frozen)
        return named and f"{named}(...)"
    for name in (getattr(obj, "name", None), type(obj).__name__.removesuffix("_gen")):  # multivariate_normal's
        if isinstance(name, str) and type(getattr(scipy.stats, name, None)) is type(obj):  # SciPy's own, not yours
            return name
    for cls in type(obj).__mro__:  # SciPy's newer classes: Normal(mu=0, sigma=1), and Normal()'s StandardNormal
        if not cls.__module__.startswith("scipy."):
            return None  # a class of yours
        if getattr(scipy.stats, cls.__name__, None) is cls:
            return f"{cls.__name__}(...)"
    return None


def _method(frame) -> str:
    """The name of the distribution's method a scipy.stats frame runs: its own, or for a wrapper (SciPy's newer
    distributions run theirs in one named ``filtered``), that of the method it wraps."""
    function, cls = frame.f_code.co_name, type(frame.f_locals["self"])
    if hasattr(cls, function):
        return function
    wrapped = (getattr(v, "__name__", "_") for v in frame.f_locals.values() if callable(v))
    return next((name for name in wrapped if not name.startswith("_") and hasattr(cls, name)), function)


def called_from(package: str, function: str | None, caller: str | None = None, depth: int = 2) -> bool:
    """Whether the conversion running (`Tracer.__array__`, `depth` frames up) was asked for by `function`
    (None: any function) of `package`, itself called from a function named `caller` when given."""
    try:
        frame = sys._getframe(depth)
    except ValueError:  # a stack shallower than that: no such caller
        return False
    module = frame.f_globals.get("__name__", "")
    return (function in (None, frame.f_code.co_name) and (module == package or module.startswith(package + "."))
            and (caller is None or frame.f_back.f_code.co_name == caller))


def sparse_matmul_asks() -> bool:
    """Whether scipy.sparse's ``A @ x`` (or ``A.dot(x)``) is converting x: its operator dispatch returns
    NotImplemented for an operand that converts to a 0-d object array, as other's __rmatmul__ may take it."""
    return called_from("scipy.sparse", "_matmul_dispatch", "__matmul__", depth=3)


#: The methods of SciPy's distributions (scipy.stats.<distribution>.<method>)
_DENSITIES = frozenset(["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf", "logpmf", "pmf"])


def _drop_in(name: str) -> str | None:
    """The function of `jacobian_lab.scipy` written with NumPy operations in place of the scipy function `name`
    (by the name a refusal gives it: scipy.linalg.solve, scipy.spatial.cdist), if it has one."""
    import importlib

    module, _, function = name.rpartition(".")
    ours = {"scipy.special": "scipy.special", "scipy.linalg": "scipy.linalg", "scipy.spatial": "scipy.spatial.distance"}
    if module not in ours:
        return None
    path = "jacobian_lab." + ours[module]
    return f"{path}.{function}" if function in importlib.import_module(path).__all__ else None


def _stats_drop_in(name: str) -> str | None:
    """`jacobian_lab.scipy.stats`'s method for the distribution's method `name` (scipy.stats.norm.logpdf, or
    scipy.stats.norm(...).logpdf of a frozen one), if it has it."""
    from .scipy import stats
    parts = name.replace("(...)", "").replace(".Normal.", ".norm.").split(".")
    if len(parts) != 4 or parts[2] not in stats.__all__ or parts[3] not in dir(getattr(stats, parts[2])):
        return None
    return "jacobian_lab." + ".".join(parts)


def instead_of(name: str) -> str:
    """What to call or write in place of the scipy function `name`, which converts its input."""
    recipe = "write that step with NumPy operations" + instead(name)
    drop_in = _drop_in(name)
    if drop_in is not None:
        return f"Call {drop_in} in its place (the same arguments, written with NumPy operations); or {recipe}"
    if name.startswith("scipy.stats.") and name.rsplit(".", 1)[1] in _DENSITIES:
        drop_in = _stats_drop_in(name)
        if drop_in is not None:
            arguments = "the frozen parameters as arguments" if "(...)" in name else "the same arguments"
            return f"Call {drop_in} in its place ({arguments}); or {recipe}"
        from .scipy import stats
        return (f"jacobian_lab.scipy.stats has the densities of {', '.join(stats.__all__)} and some of their cdfs, "
                f"under SciPy's names (jacobian_lab.scipy.stats.norm.logpdf(x, loc, scale)); or {recipe}")
    return recipe[0].upper() + recipe[1:]
