"""More of NumPy on traced arrays, composed from the functions of `numpy_api`.

Nothing here is a primitive, so nothing here needs a rule: statistics are
arithmetic and reductions; diag, diagonal, roll, pad, sort, split and
take_along_axis are *index maps* (a gather of the input's flat positions,
which costs no flops and whose transpose is a scatter-add); quantiles are a
sort followed by arithmetic on two order statistics; convolve and correlate
are a gather of sliding windows times the other operand; tensordot and norm
reduce to matmul and reductions. Queries that only read values (argsort,
argmax, allclose, ...) run on the primal values and return plain arrays.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import numpy_api as api
from .numpy_api import implements, is_traced, normalize_axis
from .primitives import observe
from .rules import elementwise as E
from .rules import reductions as R
from .rules import shape as S


def primal(value):
    """The plain array under any number of tracers."""
    while is_traced(value):
        value = value.primal
    return value


# --- index maps: gather flat positions, 0 flops -------------------------------------
def gather(a, positions, fill=None):
    """a.ravel()[positions], where -1 positions read `fill` (a plain scalar)."""
    positions = np.asarray(positions)
    flat = api.ravel(a)
    if fill is not None:
        # the fill slot takes a's dtype, so a float32 array stays float32 as in np.pad
        flat = api.concatenate([flat, np.full(1, fill, dtype=np.result_type(primal(a)))])
        positions = np.where(positions < 0, np.size(a), positions)
    return api.reshape(S.take(flat, positions.ravel(), axis=0), positions.shape)


def _positions(a):
    return np.arange(np.size(a)).reshape(np.shape(a))


@implements(np.diagonal)
def diagonal(a, offset=0, axis1=0, axis2=1):
    return gather(a, np.diagonal(_positions(a), offset, axis1, axis2))


@implements(np.diag)
def diag(v, k=0):
    if np.ndim(v) == 1:
        return gather(v, np.diag(np.arange(np.size(v)) + 1, k) - 1, fill=0.0)
    if np.ndim(v) == 2:
        return diagonal(v, k)
    raise ValueError("Input must be 1- or 2-d.")


@implements(np.roll)
def roll(a, shift, axis=None):
    return gather(a, np.roll(_positions(a), shift, axis))


@implements(np.pad)
def pad(array, pad_width, mode="constant", **kwargs):
    if mode in ("edge", "wrap", "reflect", "symmetric"):
        return gather(array, np.pad(_positions(array), pad_width, mode=mode, **kwargs))
    if mode != "constant":
        raise api.unsupported(f"numpy.pad with mode={mode!r} (use constant, edge, wrap, reflect or symmetric)")
    value = kwargs.pop("constant_values", 0)
    if kwargs or np.ndim(value) != 0 or is_traced(value):
        raise api.unsupported("numpy.pad with array or traced constant_values (give one plain scalar)")
    return gather(array, np.pad(_positions(array), pad_width, constant_values=-1), fill=float(value))


@implements(np.sort)
def sort(a, axis=-1, kind=None, order=None, **kwargs):
    if axis is None:
        a, axis = api.ravel(a), 0
    order_ = observe(np.argsort, primal(a), axis=axis, kind="stable")
    return gather(a, np.take_along_axis(_positions(a), order_, axis))


@implements(np.take_along_axis)
def take_along_axis(arr, indices, axis=-1):
    if axis is None:
        arr, axis = api.ravel(arr), 0
    return gather(arr, np.take_along_axis(_positions(arr), np.asarray(indices), axis))


@implements(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    axis = normalize_axis(axis, np.ndim(ary))[0]
    pieces = np.array_split(np.arange(np.shape(ary)[axis]), indices_or_sections)
    before = (slice(None),) * axis
    return [S.getitem(ary, before + (slice(p[0], p[-1] + 1) if p.size else slice(0, 0),)) for p in pieces]


@implements(np.split)
def split(ary, indices_or_sections, axis=0):
    if np.ndim(indices_or_sections) == 0 and np.shape(ary)[axis] % int(indices_or_sections):
        raise ValueError("array split does not result in an equal division")
    return array_split(ary, indices_or_sections, axis)


implements(np.hsplit)(lambda ary, sections: split(ary, sections, axis=1 if np.ndim(ary) > 1 else 0))
implements(np.vsplit)(lambda ary, sections: split(ary, sections, axis=0))


@implements(np.append)
def append(arr, values, axis=None):
    if axis is None:
        return api.concatenate([api.ravel(arr), api.ravel(values)])
    return api.concatenate([arr, values], axis=axis)


def _numpy2(owner, name):
    """`implements` for a NumPy 2 name, or a no-op where the installed NumPy lacks it."""
    fn = getattr(owner, name, None)
    return implements(fn) if fn is not None else (lambda impl: impl)


@_numpy2(np, "unstack")
def unstack(x, /, *, axis=0):
    if np.ndim(x) == 0:
        raise ValueError("Input array must be at least 1-d.")
    axis = normalize_axis(axis, np.ndim(x))[0]
    before = (slice(None),) * axis
    return tuple(S.getitem(x, before + (i,)) for i in range(np.shape(x)[axis]))


# --- statistics ----------------------------------------------------------------
@implements(np.diff)
def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    axis = normalize_axis(axis, np.ndim(a))[0]
    parts = [v for v in (prepend, a, append) if v is not np._NoValue]
    if len(parts) > 1:
        a = api.concatenate([v if np.ndim(v) else api.broadcast_to(v, _with(np.shape(a), axis, 1)) for v in parts],
                            axis=axis)
    before = (slice(None),) * axis
    for _ in range(n):
        a = E.subtract(S.getitem(a, before + (slice(1, None),)), S.getitem(a, before + (slice(None, -1),)))
    return a


def _with(shape, axis, size):
    return shape[:axis] + (size,) + shape[axis + 1:]


@implements(np.var)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    api._reject("var", out, "out")
    centred = E.subtract(a, api.mean(a, axis=axis, keepdims=True))
    count = int(np.prod([np.shape(a)[i] for i in normalize_axis(axis, np.ndim(a))], dtype=np.int64))
    total = api._reduction(R.sum, E.square(centred), axis, keepdims)
    return E.divide(total, max(count - ddof, 0))


@implements(np.std)
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    return E.sqrt(var(a, axis=axis, out=out, ddof=ddof, keepdims=keepdims))


@implements(np.average)
def average(a, axis=None, weights=None, returned=False, keepdims=False):
    if weights is None:
        result, weight_sum = api.mean(a, axis=axis, keepdims=keepdims), None
    else:
        if np.ndim(weights) == 1 and np.ndim(a) > 1:
            weights = api.reshape(weights, _with((1,) * np.ndim(a), normalize_axis(axis, np.ndim(a))[0], -1))
        full = np.broadcast_shapes(np.shape(a), np.shape(weights))
        weight_sum = api._reduction(R.sum, api.broadcast_to(weights, full), axis, keepdims)
        result = E.divide(api._reduction(R.sum, E.multiply(a, weights), axis, keepdims), weight_sum)
    return (result, weight_sum) if returned else result


def _as_float(v):
    """A traced value as it is, anything else as an array of at least float64 precision."""
    if is_traced(v):
        return v
    v = np.asarray(v)
    return v.astype(np.result_type(v, np.float64), copy=False)


def _keepdims(keepdims):
    # Some NumPy signatures default keepdims to np._NoValue, which is truthy.
    return keepdims is not np._NoValue and bool(keepdims)


@implements(np.ptp)
def ptp(a, axis=None, out=None, keepdims=np._NoValue):
    api._reject("ptp", out, "out")
    keep = _keepdims(keepdims)
    return E.subtract(api._reduction(R.max, a, axis, keep), api._reduction(R.min, a, axis, keep))


# --- order statistics: sort (a gather), then arithmetic on the entries picked -------
def _along_last(a, axis):
    """a with the axes of `axis` moved last and merged into one, (*kept, L); and those axes."""
    nd = np.ndim(a)
    axes = normalize_axis(axis, nd)
    kept = tuple(i for i in range(nd) if i not in axes)
    shape = tuple(np.shape(a)[i] for i in kept) + (-1,)
    return api.reshape(api.transpose(a, kept + axes), shape), axes


def _kept_ones(shape, axes):
    """The keepdims shape: the reduced axes as 1."""
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _last_is_nan(s):
    return np.isnan(s[..., -1])


def _sorted_last(values):
    """values sorted along the last axis, and which slices hold a NaN (a stable sort puts it last)."""
    s = sort(values, axis=-1)
    return s, observe(_last_is_nan, primal(s))


def _nan_where(result, nan_slices, trailing):
    """NaN where a slice held one, as NumPy answers; `trailing` axes of result follow the slices' axes."""
    if not nan_slices.any():
        return result
    return E.where(nan_slices.reshape(nan_slices.shape + (1,) * trailing), np.nan, result)


def _linear_neighbours(n, q):
    """NumPy's method="linear" on n sorted values: the two positions around each level q and the weight.

    Mirrors `numpy.lib._function_base_impl._quantile`: the virtual index (n - 1) q, its
    floor, and -1 (the last entry) for both neighbours at or past the end; gamma is
    computed against that -1, as there (it then multiplies a zero difference).
    """
    virtual = (n - 1) * q
    at_end = virtual >= n - 1
    lower = np.where(at_end, -1.0, np.floor(virtual))
    gamma = virtual - lower
    lo = lower.astype(np.intp) % n
    return lo, np.where(at_end, n - 1, lo + 1), gamma


def _quantile(name, a, q, axis, out, method, keepdims, weights, weak_q):
    api._reject(name, out, "out")
    api._reject(name, weights, "weights")
    if method != "linear":
        raise api.unsupported(f"numpy.{name} with method={method!r} (only method='linear', the default)")
    if is_traced(q):
        raise NotImplementedError(f"numpy.{name}: a traced q is not supported; the levels must be plain "
                                  "numbers (the positions they pick are decided before differentiating)")
    q = _as_float(q)
    if q.size and not (q.min() >= 0 and q.max() <= 1):
        raise ValueError("Quantiles must be in the range [0, 1]" if name == "quantile"
                         else "Percentiles must be in the range [0, 100]")
    values, axes = _along_last(a, axis)
    s, nan_slices = _sorted_last(values)
    result = _nan_where(_interpolate(s, q, weak_q), nan_slices, q.ndim)
    kept = np.ndim(s) - 1  # NumPy puts q's axes first
    result = api.transpose(result, tuple(range(kept, kept + q.ndim)) + tuple(range(kept)))
    return api.reshape(result, q.shape + _kept_ones(np.shape(a), axes)) if keepdims else result


def _interpolate(s, q, weak_q):
    """The linear quantiles of s (sorted along its last axis) at levels q: shape (*kept, *q.shape).

    NumPy's lerp is a + (b - a) g for g < 1/2 and b - (b - a)(1 - g) from 1/2 on; the
    latter equals b + (b - a)(g - 1) to the last bit, so a gather of the base entry
    picks the form and the weights stay constants: 3 flops per quantile.
    """
    lo, hi, gamma = _linear_neighbours(np.shape(s)[-1], q)
    upper = gamma >= 0.5
    weight = np.where(upper, gamma - 1.0, gamma)
    weight = float(weight) if weak_q else weight  # a Python q keeps float32 data float32, as in NumPy
    step = E.subtract(api.take(s, hi, axis=-1), api.take(s, lo, axis=-1))
    return E.add(api.take(s, np.where(upper, hi, lo), axis=-1), E.multiply(step, weight))


@implements(np.quantile)
def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *, weights=None):
    """method='linear' only; the derivative goes to the two order statistics around each level.

    overwrite_input only allows NumPy to reorder `a`; leaving it intact honours it.
    """
    return _quantile("quantile", a, q, axis, out, method, keepdims, weights, type(q) in (int, float))


@implements(np.percentile)
def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
               weights=None):
    weak_q = type(q) in (int, float)
    if not is_traced(q):
        q = np.true_divide(q, 100)  # as NumPy does, so the levels round the same way
    return _quantile("percentile", a, q, axis, out, method, keepdims, weights, weak_q)


@implements(np.median)
def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """The middle order statistic, or the mean of the two middle ones (NumPy's values exactly)."""
    api._reject("median", out, "out")
    values, axes = _along_last(a, axis)
    s, nan_slices = _sorted_last(values)
    n, last = np.shape(s)[-1], np.ndim(s) - 1
    if n % 2:
        result = S.getitem(s, (Ellipsis, n // 2))
    else:
        result = R.mean(S.getitem(s, (Ellipsis, slice(n // 2 - 1, n // 2 + 1))), axis=(last,), keepdims=False)
    result = _nan_where(result, nan_slices, 0)
    return api.reshape(result, _kept_ones(np.shape(a), axes)) if keepdims else result


# --- NaNs: masks computed from values select, so replaced entries get derivative 0 ---
def _zero_nans(a):
    return E.where(E.isnan(a), 0.0, a)


@implements(np.nansum)
def nansum(a, axis=None, dtype=None, out=None, keepdims=np._NoValue, initial=np._NoValue, where=np._NoValue):
    for key, value in (("dtype", dtype), ("out", out), ("initial", initial), ("where", where)):
        api._reject("nansum", value, key)
    return api._reduction(R.sum, _zero_nans(a), axis, _keepdims(keepdims))


@implements(np.nanmean)
def nanmean(a, axis=None, dtype=None, out=None, keepdims=np._NoValue, *, where=np._NoValue):
    for key, value in (("dtype", dtype), ("out", out), ("where", where)):
        api._reject("nanmean", value, key)
    keep, nans = _keepdims(keepdims), E.isnan(a)
    total = api._reduction(R.sum, E.where(nans, 0.0, a), axis, keep)
    # The count in a's dtype: NumPy divides its float32 sum in place, so float32 data stays float32.
    one, zero = np.ones((), np.result_type(primal(a))), np.zeros((), np.result_type(primal(a)))
    count = api._reduction(R.sum, E.where(nans, zero, one), axis, keep)
    return E.divide(total, count)


@implements(np.nan_to_num)
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    if not copy:  # NumPy would write into x, which a traced array cannot take
        api._reject("nan_to_num", copy, "copy=False")
    dtype = np.result_type(primal(x))
    big = np.finfo(dtype).max
    fill = lambda v: v if is_traced(v) else np.asarray(v, dtype)  # noqa: E731  (keeps x's dtype)
    infinite = E.where(E.greater(x, 0), fill(big if posinf is None else posinf),
                       fill(-big if neginf is None else neginf))
    return E.where(E.isnan(x), fill(nan), E.where(E.isinf(x), infinite, x))


# --- covariance -----------------------------------------------------------------------
@implements(np.cov)
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *, dtype=None):
    for key, value in (("fweights", fweights), ("aweights", aweights), ("dtype", dtype)):
        api._reject("cov", value, key)
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    m = _as_float(m)
    if np.ndim(m) > 2:
        raise ValueError("m has more than 2 dimensions")
    X = api.atleast_2d(m)
    if not rowvar and np.ndim(m) != 1:
        X = api.transpose(X)
    if np.shape(X)[0] == 0:
        return np.array([]).reshape(0, 0)
    if y is not None:
        y = _as_float(y)
        if np.ndim(y) > 2:
            raise ValueError("y has more than 2 dimensions")
        Y = api.atleast_2d(y)
        if not rowvar and np.shape(Y)[0] != 1:  # NumPy's test for y differs from m's: kept
            Y = api.transpose(Y)
        X = api.concatenate([X, Y], axis=0)
    ddof = (0 if bias else 1) if ddof is None else ddof
    fact = np.shape(X)[1] - ddof
    if fact <= 0:
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=2)
        fact = 0.0
    centred = E.subtract(X, api.mean(X, axis=1, keepdims=True))
    c = api.matmul(centred, api.transpose(centred))
    return api.squeeze(E.multiply(c, np.true_divide(1, fact)))  # NumPy multiplies by 1/fact


@implements(np.corrcoef)
def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    api._reject("corrcoef", dtype, "dtype")
    c = cov(x, y, rowvar)
    if np.ndim(c) == 0:  # one variable: 1, or NaN where the variance is 0 or not finite
        return E.divide(c, c)
    stddev = E.sqrt(diagonal(c))
    c = E.divide(E.divide(c, api.reshape(stddev, (-1, 1))), api.reshape(stddev, (1, -1)))
    # NumPy clips rounding past +-1; inside, the clip's derivative is 1.
    return E.clip(c, lo=-1.0, hi=1.0)


# --- signals and polynomials ---------------------------------------------------------
_MODES = {"valid": 0, "same": 1, "full": 2}  # NumPy takes these names or their numbers


def _mode(mode):
    code = _MODES.get(mode) if isinstance(mode, str) else mode
    if isinstance(code, bool) or code not in (0, 1, 2):
        raise ValueError("Use one of 'valid', 'same', or 'full' for convolve/correlate mode")
    return int(code)


def _vector(v, which):
    v = api.atleast_1d(_as_float(v))
    if np.ndim(v) != 1:
        raise ValueError("object too deep for desired array")
    if np.size(v) == 0:
        raise ValueError(f"{which} cannot be empty")
    return v


def _sliding(a, v, mode):
    """out[k] = sum_j a[k - left + j] v[j], a read as 0 outside: NumPy's correlation, len(a) >= len(v).

    The windows of a are one gather (0 flops, -1 positions read the 0 fill), then one
    product per window entry and a sum per window.
    """
    n, m = np.shape(a)[0], np.shape(v)[0]
    left, length = ((0, n - m + 1), (m // 2, n), (m - 1, n + m - 1))[mode]
    positions = np.arange(length)[:, None] - left + np.arange(m)
    positions[(positions < 0) | (positions >= n)] = -1
    return api._reduction(R.sum, E.multiply(gather(a, positions, fill=0.0), v), 1)


@implements(np.correlate)
def correlate(a, v, mode="valid"):
    a, v = _vector(a, "a"), _vector(v, "v")
    if np.shape(a)[0] < np.shape(v)[0]:
        # NumPy slides the shorter operand along the longer and reverses the result
        return api.flip(_sliding(v, a, _mode(mode)))
    return _sliding(a, v, _mode(mode))


@implements(np.convolve)
def convolve(a, v, mode="full"):
    a, v = _vector(a, "a"), _vector(v, "v")
    if np.shape(v)[0] > np.shape(a)[0]:
        a, v = v, a  # as NumPy: the shorter operand is the one reversed and slid
    return _sliding(a, api.flip(v), _mode(mode))


@implements(np.polyval)
def polyval(p, x):
    """Horner's rule as NumPy runs it: from y = 0, len(p) steps of y = y x + p[i]."""
    if isinstance(x, np.poly1d):
        raise api.unsupported("numpy.polyval with a poly1d x")
    p, x = (v if is_traced(v) else np.asarray(v) for v in (p, x))
    # The first step, 0 x + p[0], is kept: it is NumPy's value where x is inf or NaN.
    y = np.zeros_like(primal(x))
    for i in range(np.shape(p)[0]):
        y = E.add(E.multiply(y, x), p[i])
    return y


@implements(np.sinc)
def sinc(x):
    """sin(pi x) / (pi x), and 1 at x = 0 with derivative 0.

    The "double where": x = 0 is replaced before dividing and the limit selected after,
    so no 0/0 reaches a rule. The branch not selected still runs, and in reverse mode
    the zero cotangent `where` passes it would meet the division's 0/0 partials: NaN.
    """
    zero = E.equal(x, 0)
    y = E.multiply(np.pi, E.where(zero, 1.0, x))
    return E.where(zero, 1.0, E.divide(E.sin(y), y))


# --- linear algebra ----------------------------------------------------------------
@implements(np.tensordot)
def tensordot(a, b, axes=2):
    if np.ndim(axes) == 0:
        k = int(axes)
        axes_a, axes_b = list(range(np.ndim(a) - k, np.ndim(a))), list(range(k))
    else:
        axes_a, axes_b = ([int(x)] if np.ndim(x) == 0 else [int(i) for i in x] for x in axes)
    axes_a = [x % np.ndim(a) for x in axes_a]
    axes_b = [x % np.ndim(b) for x in axes_b]
    free_a = [i for i in range(np.ndim(a)) if i not in axes_a]
    free_b = [i for i in range(np.ndim(b)) if i not in axes_b]
    shape_a, shape_b = np.shape(a), np.shape(b)
    k = int(np.prod([shape_a[i] for i in axes_a], dtype=np.int64))
    left = api.reshape(api.transpose(a, free_a + axes_a), (-1, k))
    right = api.reshape(api.transpose(b, axes_b + free_b), (k, -1))
    out_shape = tuple(shape_a[i] for i in free_a) + tuple(shape_b[i] for i in free_b)
    return api.reshape(api.matmul(left, right), out_shape)


@implements(np.inner)
def inner(a, b):
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return E.multiply(a, b)
    return tensordot(a, b, axes=([-1], [-1]))


@implements(np.vdot)
def vdot(a, b):
    return api.matmul(api.ravel(a), api.ravel(b))


@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    """Vector norms (None/2, 1, inf, -inf, p) and the Frobenius / 1 / inf matrix norms."""
    nd = np.ndim(x)
    if axis is None and (ord is None or (ord == "fro" and nd == 2)):
        return E.sqrt(api._reduction(R.sum, E.square(x), None, keepdims))
    axes = normalize_axis(tuple(range(nd)) if axis is None else axis, nd)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    return _vector_norm(x, ord, axes, keepdims)


def _vector_norm(x, ord, axes, keepdims, name="numpy.linalg.norm"):
    """The ord-norm of the vectors along `axes` (all of them form one vector)."""
    reduce = lambda prim, v: api._reduction(prim, v, axes, keepdims)  # noqa: E731
    if ord is None or ord == 2:
        return E.sqrt(reduce(R.sum, E.square(x)))
    if ord == 1:
        return reduce(R.sum, E.absolute(x))
    if ord == np.inf:
        return reduce(R.max, E.absolute(x))
    if ord == -np.inf:
        return reduce(R.min, E.absolute(x))
    if isinstance(ord, (int, float)) and ord > 0:
        return E.power(reduce(R.sum, E.power(E.absolute(x), ord)), 1.0 / ord)
    raise api.unsupported(f"{name} with ord={ord!r}")


def _matrix_norm(x, ord, axes, keepdims, name="numpy.linalg.norm"):
    row, col = axes
    if ord in (None, "fro"):
        return E.sqrt(api._reduction(R.sum, E.square(x), axes, keepdims))
    if ord in (1, np.inf):
        inner_axis, outer_axis = (row, col) if ord == 1 else (col, row)
        sums = api._reduction(R.sum, E.absolute(x), inner_axis, True)
        return api._reduction(R.max, sums, outer_axis if keepdims else axes, keepdims)
    raise api.unsupported(f"{name} with ord={ord!r} (singular values)")


# --- NumPy 2's array-API names (registered only where NumPy has them) -----------------
@_numpy2(np, "matrix_transpose")
@_numpy2(np.linalg, "matrix_transpose")
def matrix_transpose(x, /):
    if np.ndim(x) < 2:
        raise ValueError(f"Input array must be at least 2-dimensional, but it is {np.ndim(x)}")
    return api.swapaxes(x, -1, -2)


@_numpy2(np.linalg, "vecdot")
def vecdot(x1, x2, /, *, axis=-1):
    """sum(x1 * x2) over `axis` of each operand, the other axes broadcast (real: no conjugate)."""
    x1, x2 = (api.moveaxis(v if is_traced(v) else np.asarray(v), axis, -1) for v in (x1, x2))
    if np.shape(x1)[-1] != np.shape(x2)[-1]:
        raise ValueError(f"vecdot: the vectors have lengths {np.shape(x1)[-1]} and {np.shape(x2)[-1]}")
    return api._reduction(R.sum, E.multiply(x1, x2), -1)


if getattr(np, "vecdot", None) is not None:
    # np.vecdot is a gufunc: it reaches tracers through __array_ufunc__, whose keyword
    # arguments (axis, axes, ...) numpy_api refuses by name.
    api.UFUNCS[np.vecdot] = vecdot


@_numpy2(np.linalg, "vector_norm")
def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """axis None: all of x as one vector; a tuple: those axes as one vector (never a matrix norm)."""
    return _vector_norm(x, ord, normalize_axis(axis, np.ndim(x)), keepdims, "numpy.linalg.vector_norm")


@_numpy2(np.linalg, "matrix_norm")
def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    axes = normalize_axis((-2, -1), np.ndim(x))
    return _matrix_norm(x, ord, axes, keepdims, "numpy.linalg.matrix_norm")


_numpy2(np.linalg, "matmul")(lambda x1, x2, /: api.matmul(x1, x2))


@_numpy2(np.linalg, "outer")
def linalg_outer(x1, x2, /):
    if np.ndim(x1) != 1 or np.ndim(x2) != 1:
        raise ValueError(f"Input arrays must be one-dimensional, but they are x1.ndim={np.ndim(x1)} "
                         f"and x2.ndim={np.ndim(x2)}.")
    return api.outer(x1, x2)


@_numpy2(np.linalg, "trace")
def linalg_trace(x, /, *, offset=0, dtype=None):
    """Traces of the matrices in x's last two axes (np.trace takes the first two)."""
    api._reject("linalg.trace", dtype, "dtype")
    return api.trace(x, offset, -2, -1)


@_numpy2(np.linalg, "diagonal")
def linalg_diagonal(x, /, *, offset=0):
    """Diagonals of the matrices in x's last two axes (np.diagonal takes the first two)."""
    return diagonal(x, offset, -2, -1)


# --- values only: no derivative flows through these -----------------------------
def _on_primal(fn):
    return lambda *args, **kwargs: observe(fn, *(primal(a) for a in args), **{k: primal(v) for k, v in kwargs.items()})


for _fn in (np.argsort, np.argmax, np.argmin, np.argwhere, np.nonzero, np.flatnonzero, np.count_nonzero,
            np.any, np.all, np.isclose, np.allclose, np.array_equal, np.searchsorted):
    implements(_fn)(_on_primal(_fn))
implements(np.iscomplexobj)(lambda x: False)
implements(np.isrealobj)(lambda x: True)
implements(np.real)(lambda val: val)
implements(np.imag)(lambda val: np.zeros(np.shape(val)))


@implements(np.round, np.around)
def round_(a, decimals=0, out=None):
    api._reject("round", out, "out")
    scale = 10.0 ** decimals
    return E.divide(E.rint(E.multiply(a, scale)), scale) if decimals else E.rint(a)
