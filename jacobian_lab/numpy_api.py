"""NumPy's functions on traced arrays: signatures, axis handling and composites.

`UFUNCS` and `FUNCTIONS` map NumPy callables to implementations over the
primitives; `tracing.Tracer` dispatches to them through NEP 13
(`__array_ufunc__`) and NEP 18 (`__array_function__`). This module holds the
ufuncs, reductions, indexing, shapes and views; the other ``numpy_*`` modules
add their families (`numpy_linalg`, `numpy_composites`, `numpy_statistics`, ...)
with `implements`. Anything missing raises `NotImplementedError` naming the
NumPy function.
"""
from __future__ import annotations

import inspect
import math
import operator
import sys
import warnings
from typing import Callable

import numpy as np

from .inplace import (add_at, array0, as_objects, assign, check_out, clone, contiguous, laid_out,
                      traced_into_plain, ufunc_at)
from . import primitives
from .primitives import REGISTRY, frozen, is_traced, observe, primal, unmasked
from .rewrites import instead
from .rules import elementwise as E
from .rules import linalg as L
from .rules import reductions as R
from .rules import shape as S
from .rules import sparse as SP
from .rules.sparse import is_sparse

FUNCTIONS: dict[Callable, Callable] = {}


def implements(*numpy_functions, replace: bool = False):
    """Route calls of `numpy_functions` on traced arrays to the decorated function, which computes them with
    primitives. One routed already to a function of another name or module is refused unless `replace`
    (its derivative would change for every caller in the process, silently); the same one again (a module
    reloaded, a notebook cell run twice) takes its place.

    >>> import numpy as np
    >>> implements(np.nan_to_num)(lambda x, **kwargs: x)
    Traceback (most recent call last):
    ...
    ValueError: numpy.nan_to_num is routed already, to jacobian_lab's nan_to_num; replace=True routes it to yours
    """
    def decorate(fn):
        for f in numpy_functions:
            routed = FUNCTIONS.get(f)
            if not replace and routed is not None and _named(routed) != _named(fn):
                owner = "jacobian_lab" if routed.__module__.startswith("jacobian_lab") else routed.__module__
                raise ValueError(f"numpy.{getattr(f, '__name__', f)} is routed already, to {owner}'s "
                                 f"{routed.__qualname__}; replace=True routes it to yours")
        for f in numpy_functions:
            FUNCTIONS[f] = fn
        return fn
    return decorate


def _named(fn) -> tuple:
    return getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)


def first_argument(numpy_fn):
    """``split(args, kwargs) -> (first, other positional args)`` for calls of `numpy_fn`, whose first
    argument (the array it reads or writes) f may pass by keyword: then it is taken out of kwargs."""
    name = next(iter(inspect.signature(numpy_fn).parameters))
    return lambda args, kwargs: (args[0], args[1:]) if args else (kwargs.pop(name), ())


def as_array(v):
    """A traced value as it is, anything else (a list, a scalar) as the array np.asarray builds.

    NumPy converts a list element by element, which a traced value refuses, so a
    list or tuple holding traced values (at any depth) is stacked instead: the
    same array, with its entries' derivatives.
    """
    if is_traced(v) or v.__class__ is np.ndarray:  # (while compiling, also a mask: kept, not read)
        return v
    if isinstance(v, (list, tuple)) and holds_traced(v):
        return stack([as_array(e) for e in v])
    return np.asarray(unmasked(v, "a NumPy function"))  # np.asarray would drop a mask NumPy's function reads


def holds_traced(value) -> bool:
    """Whether `value`, or anything in it at any depth of lists and tuples, is a traced value.

    >>> import jacobian_lab as jl
    >>> found = []
    >>> _ = jl.jacobian(lambda x: found.append((holds_traced([1.0, (2.0, x)]), holds_traced([1.0, 2.0]))) or x,
    ...                 np.ones(2))
    >>> found
    [(True, False)]
    """
    if isinstance(value, (list, tuple)):
        return any(holds_traced(v) for v in value)
    return is_traced(value)


def _given(value):
    """Whether an optional argument was passed: None and NumPy's no-value default mean it was not."""
    return value is not None and value is not np._NoValue


def _masks(where) -> bool:
    """Whether a where= argument leaves elements out: given, and not True (NumPy's default, every element)."""
    return _given(where) and where is not True


def _reject(name, value, why):
    """Refuse an argument `why` the primitives do not model, if it was given. (out= never reaches an
    implementation: `tracing._into_out` and `_into_out` write the result into it.)"""
    if not _given(value):
        return
    raise NotImplementedError(f"{qualified(name)}: the argument {why} is not supported on traced arrays; "
                              "leave it at NumPy's default")


def qualified(name: str) -> str:
    """numpy.<name>, or scipy.special.<name> for one of scipy's ufuncs (expit, erf, ...; _zeta: zeta), or a
    private ufunc of another name as one a library function calls."""
    special = sys.modules.get("scipy.special")
    if special is not None and isinstance(getattr(special, name, None), np.ufunc) and not hasattr(np, name):
        return f"scipy.special.{name}"
    if special is not None and name.startswith("_") and callable(getattr(special, name[1:], None)):
        return f"scipy.special.{name[1:]}"  # scipy's private ufunc behind a public function (zeta: _zeta)
    if special is not None and name == "_riemann_zeta":  # scipy.special.zeta(x) calls it
        return "scipy.special.zeta"
    if name.startswith("_") and not hasattr(np, name):  # scipy.special.ellip_harm(...) calls _ellip_harm
        return f"the ufunc {name}, which a library function f calls,"
    return f"numpy.{name}"


# --- ufuncs -----------------------------------------------------------------
#: NumPy's ufuncs -> what computes them on traced arrays: the primitive registered with the ufunc itself as
#: its impl (np.sin: `E.sin`), else a function of primitives (aliases, compositions; some listed here)
UFUNCS: dict[np.ufunc, Callable] = {p.impl: p for p in REGISTRY.values() if isinstance(p.impl, np.ufunc)} | {
    np.positive: clone, np.conjugate: clone,  # new arrays, as NumPy's ufuncs give (see `inplace`)
    np.power: E.power, np.fabs: E.absolute, np.radians: E.deg2rad, np.degrees: E.rad2deg,
    np.float_power: lambda x, y: E.power(E.as_float_dtype(x, np.float64), E.as_float_dtype(y, np.float64)),
    np.logaddexp: lambda x, y: log_add_exp(x, y),
    np.divmod: lambda x, y: (E.floor_divide(x, y), E.remainder(x, y)),
    np.copysign: lambda x, y: _copysign(x, y), np.heaviside: lambda x, h0: _heaviside(x, h0),
}


def routed(ufunc) -> bool:
    """Whether `ufunc` is in `UFUNCS`, where a primitive registered after it was built, with `ufunc` as its
    impl, maps it there on first sight: ``register(Primitive("dawsn", scipy.special.dawsn, ...))`` is all
    it takes for ``scipy.special.dawsn(x)`` to compute on traced arrays.

    >>> import numpy as np
    >>> routed(np.sin), routed(np.bitwise_and)
    (True, False)
    """
    if ufunc in UFUNCS:
        return True
    if _UNROUTED.get(ufunc) == primitives.REGISTRATIONS:  # looked for already, and nothing was registered since
        return False
    prim = next((p for p in REGISTRY.values() if p.impl is ufunc), None)
    if prim is None:
        _UNROUTED[ufunc] = primitives.REGISTRATIONS
        return False
    UFUNCS[ufunc] = prim
    return True


_UNROUTED: dict = {}  # ufunc -> `primitives.REGISTRATIONS` when `routed` found no primitive for it


def _result_dtype(ufunc, *operands):
    """The dtype NumPy's `ufunc` gives these operands: Python numbers weak (copysign(1.5, float32 x) is
    float32), integers and bools in the float loop it picks for them."""
    kinds = [type(v) if type(v) in (bool, int, float) else np.asarray(primal(v)).dtype for v in operands]
    return ufunc.resolve_dtypes((*kinds, None))[-1]


def _copysign(x, y):
    # |x| with y's sign bit, as jax.numpy writes it: the derivative is abs's, and none for y.
    magnitude = E.absolute(E.as_float_dtype(x, _result_dtype(np.copysign, x, y)))
    out = E.where(E.signbit(y), E.negative(magnitude), magnitude)
    # np.where gives a 0-d array where np.copysign gives a NumPy scalar, which (immutable) f may rely on; a
    # value without a derivative while compiling is told to stand for one (indexing it would read it)
    if np.ndim(out) or is_traced(out):
        return out
    return out[()] if type(out) is np.ndarray else getattr(out, "scalar", lambda: out)()


def _heaviside(x, h0):
    # A step: no derivative, except through h0 where x == 0.
    dtype = _result_dtype(np.heaviside, x, h0)
    if not is_traced(h0):
        return E.as_float_dtype(E.heaviside(x, h0), dtype)
    return E.where(E.equal(x, 0.0), E.as_float_dtype(h0, dtype), E.heaviside(E.as_float_dtype(x, dtype), 0.0))


def log_add_exp(x, y, base2: bool = False):
    """log(e^x + e^y), or with `base2` log2(2^x + 2^y): NumPy's values, and smooth at a tie.

    m + log1p(t) with m = max(x, y) and t = min(p, q) + (max(p, q) - 1) for the shifted powers p, q:
    the larger is exactly 1, so t is the smaller one unrounded, as NumPy's log1p(e^-|x - y|); but as a
    function it is p + q - 1, with no kink at x = y (abs would give a tie no curvature), and maximum's
    shared slope there cancels out. An infinite m is the value itself (shifting by it would give
    inf - inf), and the powers are then taken at 0, so that no 0 · inf reaches a derivative; a NaN
    runs through the formula, so that its derivative is NaN too (maximum's alone would be 0)."""
    m = E.maximum(x, y)
    infinite = E.isinf(m)
    top = E.where(infinite, 0.0, m)
    power = E.exp2 if base2 else E.exp
    p, q = (power(E.where(infinite, 0.0, E.subtract(v, top))) for v in (x, y))
    t = E.add(E.minimum(p, q), E.subtract(E.maximum(p, q), 1.0))
    log = E.multiply(E.log1p(t), 1.0 / math.log(2.0)) if base2 else E.log1p(t)
    return E.where(infinite, m, E.add(m, log))


_REDUCE = {np.add: "sum", np.multiply: "prod", np.maximum: "max", np.minimum: "min"}


def apply_ufunc(ufunc, method, inputs, kwargs):
    if _given(kwargs.get("out")):
        return _into_out(ufunc, method, inputs, kwargs)
    # Arguments the primitives do not model are refused, never dropped: a dropped
    # `initial`, `where` or gufunc `axes` would silently change the value.
    if method == "__call__" and ufunc in UFUNCS:
        if kwargs:  # the usual call has none: skip the checks on the hot path
            for key in ("where", "casting", "order", "subok", "signature", "axes", "axis", "keepdims"):
                value = kwargs.get(key)
                if not _is_default(key, value):
                    _reject(ufunc.__name__, value, key)
            if kwargs.get("dtype") is not None:
                return _in_loop_dtype(ufunc, inputs, np.dtype(kwargs["dtype"]))
        return UFUNCS[ufunc](*inputs)
    if method == "reduce" and ufunc in _REDUCE:  # np.sum and its kin, with reduce's default axis 0
        return _reduce(getattr(R, _REDUCE[ufunc]), f"{ufunc.__name__}.reduce", inputs[0], kwargs.get("axis", 0),
                       kwargs.get("dtype"), kwargs.get("keepdims", False), kwargs.get("initial"), kwargs.get("where"))
    if method == "reduce" and ufunc in (np.logaddexp, np.logaddexp2):  # a log-sum-exp written with the ufunc
        for key, value in kwargs.items():
            if key not in ("axis", "keepdims"):
                _reject(f"{ufunc.__name__}.reduce", value, key)
        return _log_sum_exp(inputs[0], kwargs.get("axis", 0), kwargs.get("keepdims", False), ufunc is np.logaddexp2)
    if method == "at" and type(inputs[0]) is np.ndarray and inputs[0].dtype == object:  # after np.asarray(x)
        return getattr(ufunc, method)(*[as_objects(v) for v in inputs], **kwargs)  # NumPy's own, on the elements
    if method == "at" and ufunc in (np.add, np.subtract) and len(inputs) == 3:
        return add_at(*inputs, subtract=ufunc is np.subtract)  # into the traced array: None, as NumPy's
    if method == "at" and ufunc in UFUNCS and len(inputs) == ufunc.nin + 1:
        return ufunc_at(ufunc, UFUNCS[ufunc], *inputs)  # multiply.at, maximum.at, negative.at, ...
    if method == "outer" and ufunc in UFUNCS and len(inputs) == 2:  # every pair: a broadcast
        _reject_all(f"{ufunc.__name__}.outer", kwargs)
        a, b = (v if is_traced(v) else np.asarray(v) for v in inputs)  # arrays first, as NumPy's outer
        return UFUNCS[ufunc](reshape(a, np.shape(a) + (1,) * np.ndim(b)), b)
    if method == "accumulate" and ufunc in (np.maximum, np.minimum):  # running extremes: a gather
        from .numpy_composites import running_extreme  # which needs these functions, and they it

        a, dtype = inputs[0], kwargs.get("dtype")
        _reject_all(f"{ufunc.__name__}.accumulate", {k: v for k, v in kwargs.items() if k not in ("axis", "dtype")})
        if dtype is not None and np.dtype(dtype) != np.result_type(a):
            _reject(f"{ufunc.__name__}.accumulate", dtype, "dtype")
        return running_extreme(a, accumulated_axis(a, kwargs.get("axis", 0)), ufunc is np.maximum)
    if method == "accumulate" and ufunc in (np.add, np.multiply):  # cumsum and cumprod
        name = f"{ufunc.__name__}.accumulate"
        _reject_all(name, {k: v for k, v in kwargs.items() if k not in ("axis", "dtype")})
        running = cumsum if ufunc is np.add else cumprod
        return running(_accumulated_in(name, inputs[0], kwargs.get("dtype")),
                       accumulated_axis(inputs[0], kwargs.get("axis", 0)))
    if method == "reduceat" and ufunc is np.add:  # segment sums
        name = "add.reduceat"
        _reject_all(name, {k: v for k, v in kwargs.items() if k not in ("indices", "axis", "dtype")})
        indices = inputs[1] if len(inputs) > 1 else kwargs.get("indices")
        return _segment_sums(_accumulated_in(name, inputs[0], kwargs.get("dtype")), indices, kwargs.get("axis", 0))
    if ufunc.__name__.endswith(" (vectorized)"):  # np.frompyfunc's: NumPy's object loop, which a tracer cannot enter
        raise NotImplementedError(
            f"np.frompyfunc of the Python function {ufunc.__name__[:-len(' (vectorized)')]} cannot run on traced "
            "arrays; np.vectorize of the same function can (it calls it on traced scalars, for arrays of up to 256 "
            "elements), or write it with NumPy operations")
    raise unsupported(qualified(ufunc.__name__) + ("" if method == "__call__" else f".{method}"))


def _segment_sums(a, indices, axis):
    """``np.add.reduceat(a, indices, axis)``: along `axis`, the sum of a[indices[i]:indices[i + 1]] (to the end
    for the last), or a[indices[i]] alone where the next index is not larger, as NumPy defines it. A gather of
    the segments' elements and a scatter-add of them, one add per element after a segment's first: NumPy's
    count; its values to rounding (NumPy adds a segment's elements after the first pairwise)."""
    indices = observe(np.asarray, indices) if is_traced(indices) else indices
    if not np.ndim(a):
        raise TypeError("cannot reduceat on a scalar")
    axis = normalize_axis(axis, np.ndim(a))[0]
    n = np.shape(a)[axis]
    np.add.reduceat(np.zeros(n), indices)  # NumPy's own errors: bounds, dtype, shape of the indices
    indices = np.asarray(indices).astype(np.intp)  # as NumPy reads them: [0.0, 2.0] too
    ends = np.append(indices[1:], n)
    spans = [np.arange(start, end) if start < end else np.array([start]) for start, end in zip(indices, ends)]
    picks = np.concatenate(spans) if spans else np.zeros(0, np.intp)
    segments = np.repeat(np.arange(len(spans)), [len(span) for span in spans])
    return S.scatter_add(S.take(a, frozen(picks), axis=axis), frozen(segments), axis, len(spans))


def _in_loop_dtype(ufunc, inputs, dtype):
    """``ufunc(*inputs, dtype=dtype)``: NumPy runs the loop of that dtype, its operands converted to it
    first (np.exp(x, dtype=np.float32) is float32 throughout). A float dtype and a float result only;
    NumPy's own error where it has no such loop (np.less(x, y, dtype=np.float64))."""
    loop = ufunc.resolve_dtypes((dtype,) * ufunc.nin + (None,) * ufunc.nout)
    if dtype.kind != "f" or any(out != dtype for out in loop[ufunc.nin:]):
        _reject(ufunc.__name__, dtype, f"dtype={dtype.name} (a non-float result has no derivative)")
    return UFUNCS[ufunc](*[E.as_float_dtype(v, dtype) for v in inputs])


def _log_sum_exp(a, axis, keepdims, base2: bool = False):
    """log(sum(exp(a))) over `axis` (log2(sum(2 ** a)) with `base2`), shifted by the largest value so
    that no power overflows (by 0 where that is not finite: all -inf gives -inf, as NumPy's reduce)."""
    axes = normalize_axis(axis, np.ndim(a))
    held = tuple(1 if i in axes else n for i, n in enumerate(np.shape(a)))  # the shape with keepdims
    dropped = tuple(n for i, n in enumerate(np.shape(a)) if i not in axes)
    if any(np.shape(a)[i] == 0 for i in axes):  # the empty sum: -inf, logaddexp's identity
        return np.full(held if keepdims else dropped, -np.inf)
    top = R.max(a, axis=axes, keepdims=True)
    top = E.where(E.isfinite(top), top, 0.0)
    powers = E.exp2(E.subtract(a, top)) if base2 else E.exp(E.subtract(a, top))
    out = E.add(top, (E.log2 if base2 else E.log)(R.sum(powers, axis=axes, keepdims=True)))
    return out if keepdims else reshape(out, dropped)


#: Operands' values where a ufunc's where= mask is False, which NumPy never evaluates: in every domain of these
#: ufuncs, with finite slopes (1/x, log, sqrt, arcsin, arctanh: 0.5), arccosh's from 1 up too, and a power's of
#: any base, a negative one too (1).
_WHERE_FILL = 0.5
_WHERE_FILL_BY_UFUNC = {np.arccosh: 2.0, np.power: 1.0, np.float_power: 1.0}
_POWERS = frozenset([np.power, np.float_power])


def _unevaluated(ufunc, operand, where):
    """`operand`, an array or a number, with a value in `ufunc`'s domain where `where` is False. NumPy computes
    nothing there, but a derivative computed everywhere and then selected would reach those elements with a
    seed's 0 and multiply it by the slope there, NaN or infinite (np.divide(a, b, out=o, where=b != 0) at b = 0,
    the slope in p of (-2) ** p)."""
    kind = np.result_type(primal(operand)).kind
    if kind not in "iuf" or np.ndim(operand) == 0 and not is_traced(operand) and ufunc not in _POWERS:
        return operand  # booleans, which no slope reads; a plain number, the same where NumPy evaluates
    # (but a power's base enters the exponent's slope by its logarithm: (-2) ** p's slope in p at a filled p)
    fill = _WHERE_FILL_BY_UFUNC.get(ufunc, _WHERE_FILL) if kind == "f" else 1  # integers keep their dtype
    return E.where(where, operand, np.asarray(fill, dtype=np.result_type(primal(operand))))


def _into_out(ufunc, method, inputs, kwargs):
    """A ufunc with ``out=``: into traced arrays, the results assigned to them (as NumPy writes them);
    into a plain array, refused with the fix, since the traced result would lose its derivative."""
    out = kwargs["out"]
    outs = out if type(out) is tuple else (out,)
    name = ufunc.__name__ + ("" if method == "__call__" else f".{method}")
    if method != "at" and all(is_traced(o) for o in outs):
        # a call's where=mask leaves out's own values where it is False (np.divide(a, b, out=o, where=b != 0))
        where = kwargs.get("where", True) if method == "__call__" else True
        rest = {k: v for k, v in kwargs.items() if k != "out" and not (k == "where" and method == "__call__")}
        if where is not True:
            mask = primal(where)
            if isinstance(mask, np.ndarray) and mask.dtype.kind in "iuf":  # NumPy's refusal of a numeric mask array
                raise TypeError(f"Cannot cast array data from {mask.dtype!r} to dtype('bool') according to the rule "
                                "'safe'")
            inputs = tuple(_unevaluated(ufunc, a, where) for a in inputs)
        results = apply_ufunc(ufunc, method, inputs, rest)
        for o, result in zip(outs, results if type(results) is tuple else (results,)):
            if method != "__call__":  # a call broadcasts into out
                check_out(qualified(name), o, result)
            assign(o, Ellipsis, result if where is True else E.where(where, result, o))
        return outs[0] if len(outs) == 1 else outs
    from .tracing import plain_operands  # which needs these functions, and they it

    plain = plain_operands(inputs, kwargs) if not any(is_traced(o) for o in outs) else None
    if plain is not None:  # values without a derivative into plain arrays: NumPy's own
        return getattr(ufunc, method)(*plain[0], **plain[1])
    raise traced_into_plain(qualified(name), _IN_PLACE_SYMBOLS.get(ufunc) if method == "__call__" else None)


_IN_PLACE_SYMBOLS = {np.add: "+", np.subtract: "-", np.multiply: "*", np.divide: "/", np.power: "**",
                     np.floor_divide: "//", np.remainder: "%", np.matmul: "@"}


# A ufunc keyword at NumPy's own default changes nothing (order only lays out memory).
_UFUNC_DEFAULTS = {"where": True, "casting": "same_kind", "subok": True}


def _is_default(key: str, value) -> bool:
    if key == "order":
        return value in (None, "K", "A", "C", "F")
    return key in _UFUNC_DEFAULTS and type(value) in (bool, np.bool_, str) and value == _UFUNC_DEFAULTS[key]


def _reject_all(name, kwargs):
    """_reject for every keyword argument in kwargs (None and NumPy's no-value defaults pass)."""
    for key, value in kwargs.items():
        _reject(name, value, key)


def in_dtype(name, result, dtype):
    """result in the float `dtype` a NumPy function was asked for (None: as it is)."""
    if dtype is None:
        return result
    if not np.issubdtype(dtype, np.floating):
        _reject(name, dtype, f"dtype={np.dtype(dtype).name} (a non-float result has no derivative)")
    return E.as_float_dtype(result, dtype)




#: NumPy's functions of integers and booleans: a traced array's values are floats (an integer x is differentiated
#: as a float array), and a bit of one has no derivative
_BITWISE = {f"numpy.{ufunc.__name__}" for ufunc in (np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert,
                                                    np.left_shift, np.right_shift)}


def unsupported(name: str) -> NotImplementedError:
    if name in _BITWISE:
        return NotImplementedError(
            f"{name} (an operator &, |, ^, ~, << or >>) computes on the bits of integers, and a traced array holds "
            "floats (an integer x is differentiated as a float array): its bits have no derivative. Compute it on "
            "values that do not come from x, or write it with comparisons (x > 0) and np.where")
    rewrite = instead(name)
    return NotImplementedError(
        f"{name} has no derivative rule in jacobian_lab, so it cannot run on traced arrays. "
        f"Rewrite it with supported NumPy operations{rewrite}, or add a primitive "
        "(see docs/architecture.md, 'Adding a primitive')."
    )


# --- axes -------------------------------------------------------------------
def normalize_axis(axis, ndim):
    """axis (None, int or tuple, negatives allowed) -> sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, (bool, np.bool_)):
            raise TypeError(f"an axis must be an integer, got {a!r}")
        a = int(a)
        # a 0-d array's reductions take 0 and -1 as one integer, as NumPy's do, and no axis in a tuple
        if (a not in (0, -1) or not np.isscalar(axis)) if ndim == 0 else not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError("duplicate value in 'axis'")
    return tuple(sorted(out)) if ndim else ()


def along(a, axis) -> tuple:
    """(a, the one axis a function reads it along): a raveled, along 0, where axis is None and where a is 0-d
    (NumPy's cumsum, take and repeat read it as 1-d, along 0 or -1); else a and its axis, non-negative.

    >>> [(np.shape(b), axis) for b, axis in (along(np.ones((2, 3)), None), along(np.ones((2, 3)), -1),
    ...                                      along(np.array(2.0), 0))]
    [((6,), 0), ((2, 3), 1), ((1,), 0)]
    """
    if axis is None or (np.ndim(a) == 0 and one_axis(axis, 1) == 0):
        return ravel(a), 0
    return a, one_axis(axis, np.ndim(a))


def accumulated_axis(a, axis) -> int:
    """The one axis ``ufunc.accumulate`` (and cumulative_sum and cumulative_prod, through it) reads `a` along,
    non-negative: one integer or a tuple of one, None only for a 1-d array; NumPy's errors otherwise, among
    them for a 0-d array, which it does not read as 1-d (cumsum does).

    >>> accumulated_axis(np.ones((2, 3)), (-1,)), accumulated_axis(np.ones(3), None)
    (1, 0)
    """
    if axis is not None:  # NumPy's TypeErrors: for a float, and for a bool, which operator.index would take
        axis = tuple(map(_axis_index, axis)) if type(axis) is tuple else _axis_index(axis)
    if np.ndim(a) == 0 and (axis is None or type(axis) is tuple and not axis or axis in (0, -1)):
        raise TypeError("cannot accumulate on a scalar")
    if type(axis) is tuple:
        for each in axis:  # each in bounds first, as NumPy checks
            one_axis(each, np.ndim(a))
    if type(axis) is tuple and len(axis) != 1 or axis is None and np.ndim(a) != 1:
        raise ValueError("accumulate does not allow multiple axes")
    return one_axis(0 if axis is None else axis[0] if type(axis) is tuple else axis, np.ndim(a))


def _axis_index(axis) -> int:
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError("an integer is required")
    return operator.index(axis)


def no_axis_of_0d(a, axis) -> None:
    """Refuse an axis of a 0-d `a` where NumPy's function does (mean, var, std, average, median, the
    quantiles, nanmedian and the nan quantiles, flip, vector_norm), though its ufunc reductions (sum, max, ...)
    take 0 and -1.

    >>> no_axis_of_0d(np.ones(3), 0)  # an array with axes: nothing to refuse
    >>> no_axis_of_0d(np.array(1.0), 0)
    Traceback (most recent call last):
        ...
    numpy.exceptions.AxisError: axis 0 is out of bounds for array of dimension 0
    """
    axes = () if axis is None else (axis,) if np.isscalar(axis) else tuple(axis)
    if axes and np.ndim(a) == 0:
        raise np.exceptions.AxisError(axes[0], 0)


def one_axis(axis, ndim):
    """A single axis (an integer, negatives allowed) -> non-negative; None or a tuple is an error, and so is any
    axis of a 0-d array (NumPy's functions that take 0-d arrays along an axis read them as 1-d before asking)."""
    if not np.isscalar(axis) or axis is None:
        raise TypeError(f"axis must be one integer here, got {axis!r}")
    if ndim == 0:
        raise np.exceptions.AxisError(axis, 0)
    return normalize_axis(axis, ndim)[0]


def _reduction(prim, a, axis=None, keepdims=False):
    return prim(a, axis=normalize_axis(axis, np.ndim(a)), keepdims=bool(keepdims))


#: The dtypes a reduction may be asked to accumulate in: NumPy's result is then the reduction of the
#: converted operand, bit for bit (float16 accumulates otherwise than the conversion would).
_ACCUMULATORS = frozenset(map(np.dtype, (np.float32, np.float64)))


def _accumulated_in(name, a, dtype):
    """a converted to the `dtype=` of a sum, prod, mean, cumsum or cumprod (None: as it is)."""
    if dtype is None or np.dtype(dtype) == np.result_type(a):
        return a
    dtype = np.dtype(dtype)
    if dtype not in _ACCUMULATORS:
        raise NotImplementedError(
            f"numpy.{name}: dtype={dtype.name} is not supported on traced arrays; pass np.float32 or np.float64 "
            "(an integer result has no derivative, and float16 accumulates otherwise than a conversion would)")
    return E.astype(a, dtype=dtype)


#: What where= puts in place of the entries it leaves out, and how initial= joins the result.
_LEFT_OUT = {R.sum: (0.0, E.add), R.prod: (1.0, E.multiply), R.max: (-np.inf, E.maximum),
             R.min: (np.inf, E.minimum)}


def _reduce(prim, name, a, axis, dtype, keepdims, initial, where):
    """np.sum, np.prod, np.max, np.min and their ufuncs' reduce (called `name` in errors)."""
    a = _accumulated_in(name, a, dtype)
    if _given(initial) or _masks(where):
        return _masked_reduction(prim, name, a, axis, keepdims, initial, where)
    return _reduction(prim, a, axis, keepdims)


def _masked_reduction(prim, name, a, axis, keepdims, initial, where):
    """NumPy's where= and initial=: the entries where= leaves out replaced by the reduction's identity,
    the reduction, then `initial` joined in as jax.numpy joins it, op(initial, result). Values are
    NumPy's up to rounding: its masked sums and products group their operations otherwise."""
    fill, join = _LEFT_OUT[prim]
    if _masks(where):
        if not _given(initial) and prim in (R.max, R.min):  # NumPy's error
            raise ValueError(f"reduction operation '{'maximum' if prim is R.max else 'minimum'}' does not have "
                             "an identity, so to use a where mask one has to specify 'initial'")
        a = E.where(_plain_mask(name, where, np.shape(a)), a, fill)
    axes = normalize_axis(axis, np.ndim(a))
    if _given(initial):
        if is_traced(initial) or np.ndim(initial):
            _reject(name, initial, "initial (other than a plain number)")
        initial = np.result_type(a).type(initial)  # as NumPy casts it: the result keeps a's dtype
        if any(np.shape(a)[i] == 0 for i in axes):  # nothing to reduce: initial itself, a constant
            shape = tuple(1 if i in axes else d for i, d in enumerate(np.shape(a)) if keepdims or i not in axes)
            return np.full(shape, initial)
    result = prim(a, axis=axes, keepdims=bool(keepdims))
    return join(initial, result) if _given(initial) else result


def _plain_mask(name, where, shape):
    """where= as a boolean mask of `shape`; NumPy's error for one that does not broadcast."""
    if is_traced(where):
        _reject(name, where, "where (other than a plain mask)")
    return np.broadcast_to(np.asarray(where, dtype=bool), shape)


def _reducer(prim, name):
    def fn(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
        return _reduce(prim, name, a, axis, dtype, keepdims, initial, where)

    # np.max / np.min take no dtype: (a, axis, out, keepdims, ...) when passed by position.
    def without_dtype(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        return fn(a, axis, None, out, keepdims, initial, where)

    chosen = fn if prim in (R.sum, R.prod) else without_dtype
    chosen.__name__ = name
    return chosen


implements(np.sum)(_reducer(R.sum, "sum"))
implements(np.prod)(_reducer(R.prod, "prod"))
implements(np.max, np.amax)(_reducer(R.max, "max"))
implements(np.min, np.amin)(_reducer(R.min, "min"))


@implements(np.mean)
def mean(a, axis=None, dtype=None, out=None, keepdims=False, where=None):
    no_axis_of_0d(a, axis)
    a = _accumulated_in("mean", a, dtype)
    if not _masks(where):
        return _reduction(R.mean, a, axis, keepdims)
    # the sum of the entries where= keeps over their count, as NumPy's (up to rounding)
    mask = _plain_mask("mean", where, np.shape(a))
    axes = normalize_axis(axis, np.ndim(a))
    count = np.sum(mask, axis=axes, keepdims=bool(keepdims), dtype=np.result_type(a))
    if np.any(count == 0):
        warnings.warn("Mean of empty slice", RuntimeWarning, stacklevel=3)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 is NaN, as in NumPy
        return E.divide(_reduction(R.sum, E.where(mask, a, 0.0), axes, keepdims), count)


def _cumulative(prim, name):
    def fn(a, axis=None, dtype=None, out=None):
        a, axis = along(_accumulated_in(name, a, dtype), axis)
        return prim(a, axis=axis)

    fn.__name__ = name
    return fn


cumsum = implements(np.cumsum)(_cumulative(R.cumsum, "cumsum"))
cumprod = implements(np.cumprod)(_cumulative(R.cumprod, "cumprod"))


def _cumulative_array_api(prim, name, identity):
    """NumPy 2's cumulative_sum / cumulative_prod: an axis is required beyond 1-D, and
    include_initial puts the identity first."""
    def fn(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
        x = _accumulated_in(name, x, dtype)
        if np.ndim(x) == 0:  # one number: NumPy accumulates it as a 1-element array
            x = reshape(x, (1,))
        if axis is None and np.ndim(x) > 1:
            raise ValueError("axis must be specified for multi-dimensional arrays")
        axis = accumulated_axis(x, 0 if axis is None else axis)
        result = prim(x, axis=axis)
        if not include_initial:
            return result
        shape = np.shape(x)
        start = np.full(shape[:axis] + (1,) + shape[axis + 1:], identity, dtype=x.dtype)
        return concatenate([start, result], axis=axis)

    fn.__name__ = name
    return fn


for _name, _prim, _identity in (("cumulative_sum", R.cumsum, 0), ("cumulative_prod", R.cumprod, 1)):
    if hasattr(np, _name):
        implements(getattr(np, _name))(_cumulative_array_api(_prim, _name, _identity))


if hasattr(np, "astype"):  # NumPy 2's function form of the method, the array API's (xp.astype)
    @implements(np.astype)
    def astype(x, dtype, /, *, copy=True, device=None):
        np.astype(np.empty(0), np.float64, device=device)  # NumPy's refusal of any device but "cpu"
        return x.astype(dtype, copy=copy)


# --- shape --------------------------------------------------------------------
def _resolve_shape(size, shape):
    shape = tuple(int(s) for s in ((shape,) if np.isscalar(shape) else shape))
    if shape.count(-1) == 1:
        known = math.prod(s for s in shape if s != -1)
        shape = tuple(size // known if known and s == -1 else s for s in shape)
    if math.prod(shape) != size or any(s < 0 for s in shape):
        raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
    return shape


@implements(np.reshape)
def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    before = a.shape if is_traced(a) else np.shape(a)  # (np.shape of a traced array: NumPy's dispatch again)
    shape = _resolve_shape(math.prod(before), newshape if shape is None else shape)
    order = memory_order(a, order, "numpy.reshape")
    if order == "F":  # column-major: the C-order reshape of the reversed axes, reversed back (free moves)
        return transpose(reshape(transpose(a), shape[::-1]))
    return a if before == shape else S.reshape(a, shape)


def ravel(a, order="C"):
    """a flattened: a view wherever a reshape to (-1,) is one (what the composites here need)."""
    return reshape(a, (-1,), order)


def memory_order(a, order, name: str, flattens: bool = False) -> str:
    """"C" or "F" for an `order` of NumPy's: "A" read as the array lies in memory ("F" for an array laid
    out in Fortran order: `inplace.laid_out` keeps NumPy's layouts), and so "K" where it `flattens` a
    contiguous array (ravel, flatten)."""
    if order in ("C", "F"):
        return order
    value = np.asarray(primal(a))
    if order == "A" or (order == "K" and flattens and contiguous(value, "K")):
        return "F" if value.flags.f_contiguous and not value.flags.c_contiguous else "C"
    which = f"order={order!r}" + (" of a broadcast array (a stride of 0)" if flattens and order == "K" else "")
    raise NotImplementedError(f"{name}: {which} is not supported on traced arrays; use order='C' or 'F'")


def flattening(a, order, name: str) -> tuple:
    """``(a, "C" or "F")``: what ravel and flatten read in `order`. Order "K" of an array that is not
    contiguous reads it as NumPy does: its axes by decreasing stride, each in its own direction."""
    value = np.asarray(primal(a))
    if order == "K" and not contiguous(value, "K") and all(s or n == 1 for n, s in zip(value.shape, value.strides)):
        return transpose(a, memory_axes(value.shape, value.strides)), "C"
    return a, memory_order(a, order, name, flattens=True)


def memory_axes(shape, strides) -> list:
    """The axes from the largest stride to the smallest, an axis of length 1 keeping its place: NumPy's
    insertion sort for order "K" (`PyArray_CreateSortedStridePerm`)."""
    axes = list(range(len(shape)))
    for i in range(1, len(axes)):
        axis, place = axes[i], i
        for j in range(i - 1, -1, -1):
            other = axes[j]
            if shape[axis] == 1 or shape[other] == 1:
                continue  # either order would do: look further
            if abs(strides[other]) >= abs(strides[axis]):
                break
            place = j
        axes.insert(place, axes.pop(i))
    return axes


@implements(np.ravel)
def numpy_ravel(a, order="C"):
    """np.ravel and ``a.ravel()``: a view only where a lies contiguous in `order`, else a copy, as NumPy
    decides (``x[::2].ravel()`` is a copy, where ``x[::2].reshape(-1)`` is a view)."""
    a, order = flattening(a, order, "numpy.ravel")
    flat = ravel(a, order)
    if not is_traced(flat) or np.ndim(a) == 0 or contiguous(np.asarray(primal(a)), order):
        return flat
    return laid_out(clone(flat), "C")


@implements(np.transpose)
def transpose(a, axes=None):
    nd = np.ndim(a)
    axes = tuple(range(nd))[::-1] if axes is None else tuple(one_axis(x, nd) for x in axes)
    if len(axes) != nd or len(set(axes)) != nd:
        raise ValueError("axes don't match array" if len(axes) != nd else "repeated axis in transpose")
    return a if axes == tuple(range(nd)) else S.transpose(a, axes)


@implements(np.swapaxes)
def swapaxes(a, axis1, axis2):
    axes = list(range(np.ndim(a)))
    i, j = one_axis(axis1, len(axes)), one_axis(axis2, len(axes))
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(a, axes)


@implements(np.moveaxis)
def moveaxis(a, source, destination):
    nd = np.ndim(a)
    src = [one_axis(s, nd) for s in np.atleast_1d(source)]
    dst = [one_axis(d, nd) for d in np.atleast_1d(destination)]
    if len(src) != len(dst) or len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError("`source` and `destination` arguments must be distinct axes of the same length")
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


@implements(np.expand_dims)
def expand_dims(a, axis):
    nd = np.ndim(a) + (1 if np.isscalar(axis) else len(axis))
    axes = normalize_axis(axis, nd)
    shape = iter(np.shape(a))
    return reshape(a, tuple(1 if i in axes else next(shape) for i in range(nd)))


@implements(np.squeeze)
def squeeze(a, axis=None):
    shape = np.shape(a)
    axes = tuple(i for i, s in enumerate(shape) if s == 1) if axis is None else normalize_axis(axis, len(shape))
    if any(shape[i] != 1 for i in axes):
        raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    return reshape(a, tuple(s for i, s in enumerate(shape) if i not in axes))


def broadcast_to(array, shape, subok=False):
    """`array` broadcast to `shape`, or `array` itself where it has that shape (`_broadcast_view` is NumPy's)."""
    shape = _broadcast_shape(array, shape)
    return array if np.shape(array) == shape else S.broadcast_to(array, shape)


@implements(np.broadcast_to)
def _broadcast_view(array, shape, subok=False):  # a read-only view, in array's own shape too, as NumPy's
    return S.broadcast_to(array, _broadcast_shape(array, shape))


def _broadcast_shape(array, shape) -> tuple:
    shape = tuple(shape) if not np.isscalar(shape) else (int(shape),)
    np.broadcast_shapes(np.shape(array), shape)  # NumPy's error for incompatible shapes
    return shape


@implements(np.concatenate)
def concatenate(arrays, axis=0, out=None, dtype=None, casting=None):
    arrays = [as_array(a) for a in arrays]
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    axis = one_axis(axis, arrays[0].ndim)
    return in_dtype("concatenate", S.concatenate(*arrays, axis=axis), dtype)


@implements(np.stack)
def stack(arrays, axis=0, out=None, dtype=None, casting=None):
    arrays = [as_array(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to stack")
    shape = arrays[0].shape  # (np.shape of a traced array would go through NumPy's dispatch: the ODE right-hand
    if any(a.shape != shape for a in arrays):  # side's np.stack([a, b, c]) of 0-d values is a hot path)
        raise ValueError("all input arrays must have the same shape")
    axis = one_axis(axis, len(shape) + 1)
    expanded = shape[:axis] + (1,) + shape[axis:]
    return in_dtype("stack", S.concatenate(*[S.reshape(a, expanded) for a in arrays], axis=axis), dtype)


@implements(np.hstack)
def hstack(tup, dtype=None, casting=None):
    arrays = [atleast_1d(as_array(a)) for a in tup]
    return concatenate(arrays, axis=0 if np.ndim(arrays[0]) == 1 else 1, dtype=dtype)


@implements(np.vstack)
def vstack(tup, dtype=None, casting=None):
    return concatenate([atleast_2d(as_array(a)) for a in tup], axis=0, dtype=dtype)


@implements(np.column_stack)
def column_stack(tup):
    tup = [as_array(a) for a in tup]
    return concatenate([reshape(a, (-1, 1)) if np.ndim(a) < 2 else a for a in tup], axis=1)


@implements(np.dstack)
def dstack(tup):
    arrays = atleast_3d(*[as_array(a) for a in tup])
    return concatenate(arrays if isinstance(arrays, list) else [arrays], axis=2)


@implements(np.atleast_1d)
def atleast_1d(*arys):
    out = [a if np.ndim(a) >= 1 else reshape(a, (1,)) for a in arys]
    return out[0] if len(out) == 1 else out


@implements(np.atleast_2d)
def atleast_2d(*arys):
    out = [a if np.ndim(a) >= 2 else reshape(a, (1,) * (2 - np.ndim(a)) + np.shape(a)) for a in arys]
    return out[0] if len(out) == 1 else out


@implements(np.atleast_3d)
def atleast_3d(*arys):
    # NumPy's rule: () -> (1, 1, 1), (N,) -> (1, N, 1), (M, N) -> (M, N, 1)
    shapes = {0: lambda s: (1, 1, 1), 1: lambda s: (1,) + s + (1,), 2: lambda s: s + (1,)}
    out = [reshape(a, shapes[np.ndim(a)](np.shape(a))) if np.ndim(a) < 3 else a for a in arys]
    return out[0] if len(out) == 1 else out


@implements(np.tile)
def tile(A, reps):
    reps = (int(reps),) if np.isscalar(reps) else tuple(int(r) for r in reps)
    nd = max(len(reps), np.ndim(A))
    shape = (1,) * (nd - np.ndim(A)) + np.shape(A)
    reps = (1,) * (nd - len(reps)) + reps
    spread = tuple(x for r, s in zip(reps, shape) for x in (1, s))
    wide = broadcast_to(reshape(A, spread), tuple(x for r, s in zip(reps, shape) for x in (r, s)))
    return reshape(wide, tuple(r * s for r, s in zip(reps, shape)))


@implements(np.repeat)
def repeat(a, repeats, axis=None):
    a, axis = along(a, axis)
    return take(a, np.repeat(np.arange(np.shape(a)[axis]), repeats), axis=axis)


@implements(np.take)
def take(a, indices, axis=None, out=None, mode="raise"):
    a, axis = along(a, axis)
    if mode == "raise" and S.recomputed_index(indices):  # labels under jit: recomputed by the program
        return getitem(a, (slice(None),) * axis + (indices,))
    indices = np.asarray(indices)
    n = np.shape(a)[axis]
    if mode == "clip":  # NumPy's clip mode also clips negative indices to 0
        indices = np.clip(indices, 0, max(n - 1, 0))
    elif mode != "wrap" and indices.size and (indices.min() < -n or indices.max() >= n):
        raise IndexError(f"index out of bounds for axis {axis} with size {n}")
    flat = S.take(a, np.ravel(indices) % max(n, 1), axis=axis)
    shape = np.shape(a)
    return reshape(flat, shape[:axis] + indices.shape + shape[axis + 1:])


@implements(np.flip)
def flip(m, axis=None):
    no_axis_of_0d(m, axis)
    axes = normalize_axis(axis, np.ndim(m))
    return S.getitem(m, tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(np.ndim(m))))


# --- indexing -----------------------------------------------------------------
def is_basic(key) -> bool:
    return key is None or key is Ellipsis or isinstance(key, slice) or (
        isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_))
    )


def getitem(a, index):
    """x[index]: basic indices are free views; integer/boolean arrays become a gather."""
    index = index if isinstance(index, tuple) else (index,)
    basic = True
    for i in index:
        if is_traced(i):
            raise TypeError("indexing with a traced array is not supported; index with plain integer "
                            "or boolean arrays (compute masks from values, e.g. x > 0, which are plain)")
        basic = basic and is_basic(i)
    if basic:
        return S.getitem(a, index)
    at = S.recomputed_positions(np.shape(a), index)
    if at is not None:  # labels of f's arguments under jit: p[np.arange(n), y]
        return reshape(S.take_at(ravel(a), ravel(at), axis=0), at.shape)
    positions = np.arange(np.size(a)).reshape(np.shape(a))[S.read_index(index)]
    return reshape(S.take(ravel(a), positions.ravel(), axis=0), positions.shape)


# --- selection ------------------------------------------------------------------
def _condition(cond):
    if is_traced(cond):
        return E.not_equal(cond, 0)
    # A boolean array as it is: a mask recorded from x (`observables.Observable`) must reach
    # the primitive unread, so that a compiled program recomputes it rather than checks it.
    return cond if getattr(cond, "dtype", None) == np.bool_ else np.asarray(cond, dtype=bool)


@implements(np.where)
def where(condition, x=None, y=None):
    if x is None or y is None:
        raise NotImplementedError("numpy.where with one argument (nonzero) is not supported on "
                                  "traced arrays; use np.where(condition, x, y)")
    return E.where(_condition(condition), x, y)


@implements(np.select)
def select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    result = default
    for cond, choice in zip(reversed(condlist), reversed(choicelist)):  # the first true condition wins
        result = E.where(_condition(cond), choice, result)
    return result if is_traced(result) or np.ndim(result) else np.asarray(result)


@implements(np.clip)
def clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue, max=np._NoValue, **kwargs):
    _reject_all("clip", kwargs)  # the ufunc's where, dtype, casting, ...
    lo = None if a_min is np._NoValue else a_min
    hi = None if a_max is np._NoValue else a_max
    lo = lo if min is np._NoValue else min
    hi = hi if max is np._NoValue else max
    if is_traced(lo) or is_traced(hi):
        # Bounds that carry derivatives: the composite has the same kink convention.
        a = a if lo is None else E.maximum(a, lo)
        return a if hi is None else E.minimum(a, hi)
    if lo is None and hi is None:
        np.clip(np.zeros(1), None, None)  # NumPy's own answer: a ValueError before NumPy 2.1, a copy since
        return clone(a)
    return E.clip(a, lo=lo, hi=hi)


# --- linear algebra ----------------------------------------------------------------
@implements(np.matmul)
def matmul(a, b, /, out=None, **kwargs):
    _reject_all("matmul", kwargs)
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions")
    return L.matmul(a, b)


def matmul_operator(a, b):
    """``a @ b``: `matmul`, or with a plain scipy.sparse matrix on either side (`rules.sparse`) the product
    scipy computes, with its shapes: a 1-D or 2-D array, contracted along its first or last axis."""
    if not (is_sparse(a) or is_sparse(b)):
        return matmul(a, b)
    matrix, x = (a, b) if is_sparse(a) else (b.T, a)  # x @ B is (Bᵀ @ xᵀ)ᵀ, as scipy computes it
    if is_sparse(x) or np.ndim(x) not in (1, 2) or len(matrix.shape) != 2:
        raise ValueError("could not interpret dimensions: scipy.sparse multiplies a 2-D matrix by 1-D and 2-D arrays")
    axis = np.ndim(x) - 1 if x is a else 0
    if np.shape(x)[axis] != matrix.shape[1]:
        raise ValueError(f"matmul: dimension mismatch of a {np.shape(a)} and a {np.shape(b)} operand")
    return SP.sparse_matmul(x, SP.SparseConstant(matrix), axis)


@implements(np.outer)
def outer(a, b, out=None):
    return E.multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


@implements(np.trace)
def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    if np.ndim(a) < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    a = moveaxis(in_dtype("trace", a, dtype), (axis1, axis2), (-2, -1))  # summed in the dtype asked for
    rows, cols = np.shape(a)[-2:]
    i = np.arange(max(0, -offset), min(rows, cols - offset))
    flat = reshape(a, np.shape(a)[:-2] + (rows * cols,))
    diagonal = S.take(flat, i * cols + i + offset, axis=np.ndim(flat) - 1)
    return R.sum(diagonal, axis=(np.ndim(diagonal) - 1,), keepdims=False)


# --- metadata and constants: no derivative involved -----------------------------
implements(np.shape)(lambda a: a.shape)
implements(np.ndim)(lambda a: a.ndim)
implements(np.size)(lambda a, axis=None: a.size if axis is None else a.shape[axis])
# a distinct tracer (`inplace`), and an array: np.copy of a NumPy scalar is a 0-d array
implements(np.copy)(lambda a, order="K", subok=False: array0(laid_out(clone(a), order)))
implements(np.result_type)(lambda *arrays_and_dtypes: np.result_type(
    *(a.dtype if is_traced(a) else a for a in arrays_and_dtypes)))


@implements(np.full_like)
def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, **kwargs):
    # `shape` overrides a's shape, as in NumPy. A plain fill value gives an array of a's trace without
    # a derivative, as NumPy gives one of a's type: f can write traced values into it (r[0] = x[0]).
    shape, dtype = np.shape(a) if shape is None else shape, dtype or a.dtype
    if is_traced(fill_value):  # broadcast, with NumPy's error where it does not
        filled = broadcast_to(in_dtype("full_like", fill_value, dtype), shape)
        return array0(clone(filled)) if filled is fill_value or not np.ndim(filled) else filled
    value = np.full_like(primal(a), fill_value, dtype, order, subok=False, shape=shape)  # in a's memory order
    return array0(a._trace.constant(value)) if is_traced(a) and subok and value.dtype.kind == "f" else value


implements(np.zeros_like)(lambda a, *args, **kw: full_like(a, 0, *args, **kw))
implements(np.ones_like)(lambda a, *args, **kw: full_like(a, 1, *args, **kw))
implements(np.empty_like)(lambda a, *args, **kw: full_like(a, 0, *args, **kw))

UFUNCS[np.matmul] = matmul  # a gufunc in NumPy 2: reaches us through __array_ufunc__

#: The NumPy functions whose results are views of their array arguments (np.diag of a matrix, np.meshgrid
#: with copy=False). Every other function's result is an array of its own, as NumPy copies (np.tile of
#: reps 1 included), so a traced result that shares an argument's memory is unlinked from it (`inplace.unshared`).
VIEWS = frozenset([
    np.array_split, np.atleast_1d, np.atleast_2d, np.atleast_3d, np.broadcast_arrays, np.broadcast_to, np.diag,
    np.diagonal, np.linalg.diagonal, np.dsplit, np.einsum, np.expand_dims, np.flip, np.fliplr, np.flipud, np.hsplit,
    np.linalg.matrix_transpose, np.matrix_transpose, np.meshgrid, np.moveaxis, np.ravel, np.real, np.real_if_close,
    np.reshape, np.rollaxis, np.rot90, np.split, np.squeeze, np.swapaxes, np.transpose, np.trim_zeros, np.unstack,
    np.vsplit, np.lib.stride_tricks.sliding_window_view,
])
#: The functions of VIEWS that return their argument itself where they have nothing to change, as NumPy's
#: do (np.squeeze of an array without length-1 axes); the others return a new view object then.
ITSELF = frozenset([np.atleast_1d, np.atleast_2d, np.atleast_3d, np.broadcast_arrays, np.real, np.real_if_close,
                    np.squeeze])

from . import (  # noqa: E402,F401  (register more functions)
    numpy_calculus, numpy_composites, numpy_einsum, numpy_histograms, numpy_linalg, numpy_polynomials, numpy_quantiles,
    numpy_series, numpy_statistics, numpy_writes,
    scipy_special,
)
