"""NumPy's statistics on traced arrays, composed from primitives: no rules of their own.

Moments (var, std, average, cov) are arithmetic and reductions; quantiles and
the median are a sort (a gather, 0 flops) followed by arithmetic on the two
order statistics around each level; the nan-functions select with a mask
computed from values, so a replaced entry gets derivative 0, and their order
statistics count each slice's numbers on values. bincount and the histograms
scatter-add traced weights into bins found on values.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import numpy_api as api
from .numpy_api import implements, is_traced, normalize_axis, one_axis
from .numpy_composites import as_float, diagonal, norm_root, sort, take_along_axis, with_length
from .primitives import observe, primal
from .rules import elementwise as E
from .rules import reductions as R
from .rules import shape as S


# --- moments --------------------------------------------------------------------------
def _ddof(ddof, correction):
    """ddof, or NumPy 2's name for it, correction (None or NumPy's no-value default when not given)."""
    if not api._given(correction):
        return ddof
    if ddof != 0:
        raise ValueError("ddof and correction can't be provided simultaneously.")
    return correction


@implements(np.var)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    """NumPy's steps: the mean (or the `mean=` given, NumPy 2), the squared deviations, their sum over
    the count less ddof; with `where=`, over the entries the mask keeps (NumPy's value up to rounding)."""
    ddof = _ddof(ddof, correction)
    a = api.in_dtype("var", a, dtype)
    axes = normalize_axis(axis, np.ndim(a))
    mask = api._plain_mask("var", where, np.shape(a)) if api._masks(where) else None
    centre = api.mean(a, axis=axis, keepdims=True, where=mask) if mean is None else mean
    deviations = E.subtract(a, centre)
    if mask is not None:
        # left out before squaring: a slice the mask empties has a NaN mean, and a reverse sweep would carry
        # its zero cotangent times the square's slope, 0 * NaN, back into x (the masked select stops it here)
        deviations = E.where(mask, deviations, 0.0)
        count = np.maximum(np.sum(mask, axis=axes, keepdims=bool(keepdims), dtype=np.result_type(a)) - ddof, 0)
    else:
        count = max(int(np.prod([np.shape(a)[i] for i in axes], dtype=np.int64)) - ddof, 0)
    total = api._reduction(R.sum, E.square(deviations), axis, keepdims)
    counted = np.asarray(count) > 0  # a constant: of the mask and shapes alone
    if counted.all():
        return E.divide(total, count)
    # where ddof leaves a slice no count, NumPy's total / 0 (NaN, or inf) has no derivative: divided held
    # constant, so that a reverse sweep does not divide the slice's zero cotangent by 0 into the kept elements
    return E.where(counted, E.divide(total, np.where(counted, count, 1)), E.divide(E.stop_gradient(total), count))


@implements(np.std)
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    return norm_root(var(a, axis, dtype, None, ddof, keepdims, where=where, mean=mean, correction=correction), 2)


@implements(np.average)
def average(a, axis=None, weights=None, returned=False, keepdims=False):
    if weights is None:
        result, weight_sum = api.mean(a, axis=axis, keepdims=keepdims), None
    else:
        weights = api.as_array(weights)
        if np.ndim(weights) == 1 and np.ndim(a) > 1:
            weights = api.reshape(weights, with_length((1,) * np.ndim(a), one_axis(axis, np.ndim(a)), -1))
        full = np.broadcast_shapes(np.shape(a), np.shape(weights))
        weight_sum = api._reduction(R.sum, api.broadcast_to(weights, full), axis, keepdims)
        if observe(_any_zero, primal(weight_sum)):  # NumPy's refusal, not inf and NaN
            raise ZeroDivisionError("Weights sum to zero, can't be normalized")
        result = E.divide(api._reduction(R.sum, E.multiply(a, weights), axis, keepdims), weight_sum)
    return (result, weight_sum) if returned else result


def _any_zero(values) -> bool:
    return bool(np.any(values == 0))


def _keepdims(keepdims):
    # Some NumPy signatures default keepdims to np._NoValue, which is truthy.
    return keepdims is not np._NoValue and bool(keepdims)


@implements(np.ptp)
def ptp(a, axis=None, out=None, keepdims=np._NoValue):
    keep = _keepdims(keepdims)
    return E.subtract(api._reduction(R.max, a, axis, keep), api._reduction(R.min, a, axis, keep))


# --- order statistics: sort (a gather), then arithmetic on the entries picked ---------
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


def _boundary(index, at_previous):
    """The order statistic a discrete method picks: floor(index) where `at_previous(gamma, index)`, else
    the next one, and 0 below the first (NumPy's `_discrete_interpolation_to_boundaries`)."""
    previous = np.floor(index)
    return np.maximum(np.where(at_previous(index - previous, index), previous, previous + 1), 0).astype(np.intp)


def _continuous(alpha, beta):
    """Hyndman and Fan's virtual index n q + (α + q (1 − α − β)) − 1, in NumPy's order of operations."""
    return lambda n, q: n * q + (alpha + q * (1 - alpha - beta)) - 1


#: NumPy's virtual index of each level q among n sorted values, per method (`_QuantileMethods` in
#: numpy/lib/_function_base_impl.py, mirrored operation for operation so that the positions and
#: weights are NumPy's): an integer array where the method picks one order statistic.
_VIRTUAL = {
    "inverted_cdf": lambda n, q: _boundary(n * q - 1, lambda gamma, index: gamma == 0),
    "averaged_inverted_cdf": lambda n, q: n * q - 1,
    "closest_observation": lambda n, q: _boundary(
        n * q - 1 - 0.5, lambda gamma, index: (gamma == 0) & (np.floor(index) % 2 == 1)),
    "interpolated_inverted_cdf": _continuous(0, 1),
    "hazen": _continuous(0.5, 0.5),
    "weibull": _continuous(0, 0),
    "linear": lambda n, q: (n - 1) * q,
    "median_unbiased": _continuous(1 / 3.0, 1 / 3.0),
    "normal_unbiased": _continuous(3 / 8.0, 3 / 8.0),
    "lower": lambda n, q: np.floor((n - 1) * q).astype(np.intp),
    "higher": lambda n, q: np.ceil((n - 1) * q).astype(np.intp),
    "midpoint": lambda n, q: 0.5 * (np.floor((n - 1) * q) + np.ceil((n - 1) * q)),
    "nearest": lambda n, q: np.around((n - 1) * q).astype(np.intp),
}
#: The methods whose weight is not the virtual index's fraction (NumPy's `fix_gamma`)
_FIX_GAMMA = {
    "averaged_inverted_cdf": lambda gamma, index: np.where(gamma == 0, 0.5, 1.0),
    "midpoint": lambda gamma, index: np.where(index % 1 == 0, 0.0, 0.5),
}


def _neighbours(n, q, method):
    """The two positions around each level q among n sorted values and the weight of the second, as
    NumPy's `_get_indexes` and `_get_gamma` find them; or, for a method that picks one order statistic,
    its position alone (an integer array) and None.

    Past the last position (n - 1) both are the last entry, and before the first both are the first:
    their difference is 0 there, so the weight is too (NumPy's, computed against -1 or 0, would add
    and take away the same cotangent and round it).
    """
    virtual = _VIRTUAL[method](n, q)
    if virtual.dtype.kind != "f":
        return virtual, None, None
    past, before = virtual >= n - 1, virtual < 0
    previous = np.where(past, -1.0, np.where(before, 0.0, np.floor(virtual)))
    gamma = virtual - previous
    gamma = _FIX_GAMMA[method](gamma, virtual).astype(virtual.dtype) if method in _FIX_GAMMA else gamma
    lo = previous.astype(np.intp) % n
    return lo, np.where(past, n - 1, np.where(before, 0, lo + 1)), np.where(past | before, 0, gamma)


def _levels(name, q, method, weights):
    """q as a float array of levels in [0, 1] (float32 stays float32: NumPy finds the positions in q's
    type), the arguments quantile functions refuse refused."""
    api._reject(name, weights, "weights")
    if method not in _VIRTUAL:
        raise ValueError(f"{method!r} is not a valid method. Use one of: {_VIRTUAL.keys()}")  # NumPy's words
    if is_traced(q):
        raise NotImplementedError(f"numpy.{name}: a traced q is not supported; the levels must be plain "
                                  "numbers (the positions they pick are decided before differentiating)")
    q = np.asarray(q)
    q = q if q.dtype.kind == "f" else q.astype(np.float64)  # positions in q's own float type, as NumPy's
    if q.size and not (q.min() >= 0 and q.max() <= 1):
        raise ValueError("Percentiles must be in the range [0, 100]" if "percentile" in name
                         else "Quantiles must be in the range [0, 1]")
    return q


def _levels_first(result, q, a, axes, keepdims):
    """result (*kept, *q.shape) in NumPy's layout: q's axes first, then the kept axes (or keepdims' shape)."""
    kept = np.ndim(result) - q.ndim
    result = api.transpose(result, tuple(range(kept, kept + q.ndim)) + tuple(range(kept)))
    return api.reshape(result, q.shape + _kept_ones(np.shape(a), axes)) if keepdims else result


def _quantile(name, a, q, axis, method, keepdims, weights, weak_q):
    if weights is not None:
        return _weighted(np.quantile, a, _levels(name, q, method, None), axis, method, keepdims, weights)
    q = _levels(name, q, method, weights)
    values, axes = _along_last(a, axis)
    s, nan_slices = _sorted_last(values)
    result = _nan_where(_interpolate(s, q, weak_q, method), nan_slices, q.ndim)
    return _levels_first(result, q, a, axes, keepdims)


def _weighted(quantile, a, q, axis, method, keepdims, weights):
    """A weighted quantile (NumPy's method="inverted_cdf" picks one element per level): the element NumPy's
    `quantile` picks (its checks and messages too), found on values; its derivative is that element's, and
    none is the weights', whose slope is 0 between the levels where the pick jumps."""
    values, axes = _along_last(a, axis)
    weights = weights if is_traced(weights) else np.asarray(weights)
    picked = observe(_weighted_pick, primal(a), primal(weights), quantile, q, axis, method)
    kept = np.shape(values)[:-1]
    result = take_along_axis(values, np.maximum(picked, 0).reshape(kept + (-1,)), axis=-1)
    result = api.reshape(result, picked.shape)
    if np.any(picked < 0):  # a slice holding a NaN (all NaN, for nanquantile): NaN, as NumPy's
        result = E.where(picked < 0, np.nan, result)
    return _levels_first(result, q, a, axes, bool(keepdims) and keepdims is not np._NoValue)


def _weighted_pick(a, weights, quantile, q, axis, method):
    """For each level, the position in its slice (laid out as `_along_last` lays it) of the element `quantile`
    (np.quantile or np.nanquantile) with these weights picks, (*kept, *q.shape); -1 where it gives NaN.
    NumPy's own steps, slice by slice: its sort, the cumulative weights over their total (leading zeros
    as -1, so that no weightless element is picked), the first position where they reach the level; nanquantile
    leaves NaNs and their weights out first. quantile itself runs first, for its checks and messages."""
    quantile(a, q, axis=axis, method=method, weights=weights)
    axes = normalize_axis(axis, a.ndim)
    kept = tuple(i for i in range(a.ndim) if i not in axes)
    lead = tuple(a.shape[i] for i in kept)
    weights = np.broadcast_to(np.reshape(weights, with_length((1,) * a.ndim, axes[0], -1))
                              if np.ndim(weights) == 1 and a.ndim > 1 else weights, a.shape)
    values, weights = (np.transpose(v, kept + axes).reshape(lead + (-1,)) for v in (a, weights))
    picked = np.empty(lead + q.shape, dtype=np.intp)
    for k in np.ndindex(lead):
        picked[k] = _pick(values[k], weights[k], q, quantile is np.nanquantile)
    return picked


def _pick(values, weights, q, without_nan):
    """`_weighted_pick` of one slice."""
    positions = np.arange(len(values))
    if without_nan:
        numbers = ~np.isnan(values)
        values, weights, positions = values[numbers], weights[numbers], positions[numbers]
        if not len(values):
            return np.full(q.shape, -1)
    order = np.argsort(values)
    if np.isnan(values[order[-1]]):  # a NaN sorts last: quantile's answer is NaN
        return np.full(q.shape, -1)
    cdf = np.cumsum(weights[order], dtype=np.float64)
    cdf /= cdf[-1]
    if q.dtype.kind == "f":
        cdf = cdf.astype(q.dtype)
    if cdf[0] == 0:
        cdf[cdf == 0] = -1
    at = np.minimum(np.searchsorted(cdf, q, side="left"), len(values) - 1)
    return positions[order[at]]


def _interpolate(s, q, weak_q, method):
    """The quantiles of s (sorted along its last axis) at levels q by `method`: shape (*kept, *q.shape).

    A method that picks one order statistic gathers it (0 flops). Otherwise NumPy's lerp is
    a + (b - a) g for g < 1/2 and b - (b - a)(1 - g) from 1/2 on; the latter equals
    b + (b - a)(g - 1) to the last bit, so a gather of the base entry picks the form and the
    weights stay constants: 3 flops per quantile.
    """
    lo, hi, gamma = _neighbours(np.shape(s)[-1], q, method)
    if gamma is None:
        return api.take(s, lo, axis=-1)
    upper = gamma >= 0.5
    weight = np.where(upper, gamma - 1.0, gamma)
    weight = float(weight) if weak_q else weight  # a Python q keeps float32 data float32, as in NumPy
    step = E.subtract(api.take(s, hi, axis=-1), api.take(s, lo, axis=-1))
    return E.add(api.take(s, np.where(upper, hi, lo), axis=-1), E.multiply(step, weight))


@implements(np.quantile)
def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *, weights=None):
    """Every method of NumPy's; the derivative goes to the two order statistics around each level (to the
    one it picks, for lower, higher, nearest, inverted_cdf and closest_observation).

    overwrite_input only allows NumPy to reorder `a`; leaving it intact honours it.
    """
    return _quantile("quantile", a, q, axis, method, keepdims, weights, type(q) in (int, float))


def _percent(q):
    """Percentages as levels, divided as NumPy divides them (so they round the same way), and
    whether q was a Python number (whose levels keep float32 data float32)."""
    return (q if is_traced(q) else np.true_divide(q, 100)), type(q) in (int, float)


@implements(np.percentile)
def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
               weights=None):
    q, weak_q = _percent(q)
    return _quantile("percentile", a, q, axis, method, keepdims, weights, weak_q)


@implements(np.median)
def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """The middle order statistic, or the mean of the two middle ones (NumPy's values exactly)."""
    if np.size(a) == 0:
        return api.mean(a, axis=axis, keepdims=keepdims)  # NaN with NumPy's warning, as NumPy's median
    values, axes = _along_last(a, axis)
    s, nan_slices = _sorted_last(values)
    n, last = np.shape(s)[-1], np.ndim(s) - 1
    if n % 2:
        result = S.getitem(s, (Ellipsis, n // 2))
    else:
        result = R.mean(S.getitem(s, (Ellipsis, slice(n // 2 - 1, n // 2 + 1))), axis=(last,), keepdims=False)
    result = _nan_where(result, nan_slices, 0)
    return api.reshape(result, _kept_ones(np.shape(a), axes)) if keepdims else result


# --- NaNs: masks computed from values select, so replaced entries get derivative 0 ----
def _zero_nans(a):
    return E.where(E.isnan(a), 0.0, a)


@implements(np.nansum)
def nansum(a, axis=None, dtype=None, out=None, keepdims=np._NoValue, initial=np._NoValue, where=np._NoValue):
    return api._reduce(R.sum, "nansum", _zero_nans(a), axis, dtype, _keepdims(keepdims), initial, where)


@implements(np.nanmean)
def nanmean(a, axis=None, dtype=None, out=None, keepdims=np._NoValue, *, where=np._NoValue):
    keep, a = _keepdims(keepdims), api._accumulated_in("nanmean", a, dtype)
    left_out = _left_out("nanmean", a, where)
    total = api._reduction(R.sum, E.where(left_out, 0.0, a), axis, keep)
    return E.divide(total, _numbers_counted(a, left_out, axis, keep)[0])


def _left_out(name, a, where):
    """What a nan-function skips: a's NaNs, and the entries a plain where= mask leaves out."""
    nans = E.isnan(a)
    return nans | ~api._plain_mask(name, where, np.shape(a)) if api._masks(where) else nans


def _numbers_counted(a, nans, axis, keepdims):
    """How many entries along `axis` are not NaN, and the 1 counted, both in a's dtype: NumPy
    divides its float32 sums in place, so float32 data stays float32."""
    one = np.ones((), np.result_type(primal(a)))
    return api._reduction(R.sum, E.where(nans, np.zeros_like(one), one), axis, keepdims), one


def _all_nan(values, axis, keepdims):
    return np.all(np.isnan(values), axis=axis, keepdims=keepdims)


def _nan_extreme(name, prim, fill):
    """nanmax / nanmin: NaNs become -inf / +inf, which never win; an all-NaN slice is NaN, as in NumPy."""
    def fn(a, axis=None, out=None, keepdims=np._NoValue, initial=np._NoValue, where=np._NoValue):
        keep, numbers = _keepdims(keepdims), E.where(E.isnan(a), fill, a)
        if api._given(initial) or api._masks(where):  # NumPy's fmax.reduce: with an initial, no slice is empty
            return api._reduce(prim, name, numbers, axis, None, keep, initial, where)
        result = api._reduction(prim, numbers, axis, keep)
        all_nan = observe(_all_nan, primal(a), normalize_axis(axis, np.ndim(a)), keep)  # decides the value
        if not np.any(all_nan):
            return result
        warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=2)
        return E.where(all_nan, np.nan, result)

    fn.__name__ = name
    return fn


implements(np.nanmax)(_nan_extreme("nanmax", R.max, -np.inf))
implements(np.nanmin)(_nan_extreme("nanmin", R.min, np.inf))


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


@implements(np.nancumsum)
def nancumsum(a, axis=None, dtype=None, out=None):
    return api.cumsum(_zero_nans(a), axis, dtype)


@implements(np.nancumprod)
def nancumprod(a, axis=None, dtype=None, out=None):
    return api.cumprod(E.where(E.isnan(a), 1.0, a), axis, dtype)


@implements(np.nanprod)
def nanprod(a, axis=None, dtype=None, out=None, keepdims=np._NoValue, initial=np._NoValue, where=np._NoValue):
    return api._reduce(R.prod, "nanprod", E.where(E.isnan(a), 1.0, a), axis, dtype, _keepdims(keepdims), initial,
                       where)


def _nonpositive(dof):
    return dof <= 0


@implements(np.nanvar)
def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=np._NoValue, *, where=np._NoValue,
           mean=np._NoValue, correction=np._NoValue):
    """NumPy's steps: the mean of the numbers (or the `mean=` given), their deviations (0 at NaNs)
    squared and summed, divided by count - ddof; NaN, with NumPy's warning, where that is not
    positive. `where=` leaves entries out as NaNs are left out."""
    ddof, keep, a = _ddof(ddof, correction), _keepdims(keepdims), api.in_dtype("nanvar", a, dtype)
    nans = _left_out("nanvar", a, where)
    values = E.where(nans, 0.0, a)
    count, one = _numbers_counted(a, nans, axis, True)
    dof = count if ddof == 0 else E.subtract(count, ddof)
    bad = observe(_nonpositive, primal(dof))  # decides the value
    if np.any(bad):
        warnings.warn("Degrees of freedom <= 0 for slice.", RuntimeWarning, stacklevel=2)
        # Those slices become NaN; dividing them by 1 instead of 0 keeps 0/0 out of the values
        # and the derivative (the NaN selected has derivative 0, but 0 * 1/0 would be NaN).
        count, dof = E.where(bad, one, count), E.where(bad, one, dof)
    avg = E.divide(api._reduction(R.sum, values, axis, True), count) if not api._given(mean) else mean
    centred = E.where(nans, 0.0, E.subtract(values, avg))
    var = api._reduction(R.sum, E.square(centred), axis, keep)
    var = E.divide(var, api.reshape(dof, np.shape(var)))
    return E.where(np.reshape(bad, np.shape(var)), np.nan, var) if np.any(bad) else var


@implements(np.nanstd)
def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=np._NoValue, *, where=np._NoValue,
           mean=np._NoValue, correction=np._NoValue):
    return norm_root(nanvar(a, axis, dtype, None, ddof, keepdims, where=where, mean=mean, correction=correction), 2)


# --- nan order statistics: each slice's numbers sorted first (NaNs last), counted on values ---
def _count_numbers(values):
    """How many entries of each slice (the last axis) are not NaN."""
    return np.count_nonzero(~np.isnan(values), axis=-1)


def _sorted_numbers(a, axis):
    """a's slices along `axis` merged last and sorted (NaNs last), each slice's count of numbers, axes."""
    values, axes = _along_last(a, axis)
    return sort(values, axis=-1), observe(_count_numbers, primal(values)), axes


def _all_nan_where(result, counts, trailing):
    """NaN (derivative 0) where a slice held no number, with NumPy's warning."""
    empty = counts == 0
    if not empty.any():
        return result
    warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=3)
    return E.where(empty.reshape(empty.shape + (1,) * trailing), np.nan, result)


@implements(np.nanmedian)
def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=np._NoValue):
    """The median of each slice's numbers: the mean of its two middle ones (one twice for an odd count).

    overwrite_input only allows NumPy to reorder `a`; leaving it intact honours it.
    """
    keep = _keepdims(keepdims)
    if np.size(a) == 0:
        return nanmean(a, axis, keepdims=keep)  # as NumPy
    s, counts, axes = _sorted_numbers(a, axis)
    n = np.maximum(counts, 1)
    middle = np.stack([(n - 1) // 2, n // 2], axis=-1)
    result = R.mean(take_along_axis(s, middle, axis=-1), axis=(np.ndim(s) - 1,), keepdims=False)
    result = _all_nan_where(result, counts, 0)
    return api.reshape(result, _kept_ones(np.shape(a), axes)) if keep else result


def _nan_quantile(name, a, q, axis, method, keepdims, weights, weak_q):
    if weights is not None:
        return _weighted(np.nanquantile, a, _levels(name, q, method, None), axis, method, keepdims, weights)
    q = _levels(name, q, method, weights)
    keep = _keepdims(keepdims)
    if np.size(a) == 0:
        return nanmean(a, axis, keepdims=keep)  # as NumPy
    if q.ndim > 1 and np.ndim(axis) and 1 < len(normalize_axis(axis, np.ndim(a))) < np.ndim(a):
        # NumPy's merged axes then come out of order (its result puts the last axis of q first)
        raise NotImplementedError(f"numpy.{name}: a q of {q.ndim} dimensions over a tuple of some of the axes "
                                  "is not supported on traced arrays (NumPy's axis order there is not quantile's)")
    s, counts, axes = _sorted_numbers(a, axis)
    lo, hi, gamma = _neighbours(np.maximum(counts, 1)[..., None], q.reshape(-1), method)
    result = take_along_axis(s, lo, axis=-1) if gamma is None else _interpolate_at(s, lo, hi, gamma, weak_q)
    result = _all_nan_where(api.reshape(result, np.shape(s)[:-1] + q.shape), counts, q.ndim)
    return _levels_first(result, q, a, axes, keep)


def _interpolate_at(s, lo, hi, gamma, weak_q):
    """`_interpolate` with neighbours that differ from slice to slice: lo, hi, gamma of shape (*kept, Q)."""
    upper = gamma >= 0.5
    weight = np.where(upper, gamma - 1.0, gamma)
    if weak_q:  # NumPy's Python-float gamma joins the data's dtype: float32 data stays float32
        weight = weight.astype(np.result_type(primal(s)))
    pick = lambda positions: take_along_axis(s, positions, axis=-1)  # noqa: E731
    step = E.subtract(pick(hi), pick(lo))
    return E.add(pick(np.where(upper, hi, lo)), E.multiply(step, weight))


@implements(np.nanquantile)
def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=np._NoValue, *,
                weights=None):
    """quantile of each slice's numbers, by any of NumPy's methods: its own count sets the virtual index."""
    return _nan_quantile("nanquantile", a, q, axis, method, keepdims, weights, type(q) in (int, float))


@implements(np.nanpercentile)
def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=np._NoValue, *,
                  weights=None):
    q, weak_q = _percent(q)
    return _nan_quantile("nanpercentile", a, q, axis, method, keepdims, weights, weak_q)


# --- covariance -----------------------------------------------------------------------
@implements(np.cov)
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *, dtype=None):
    api._reject("cov", dtype, "dtype")
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    m = as_float(m)
    if np.ndim(m) > 2:
        raise ValueError("m has more than 2 dimensions")
    X = api.atleast_2d(m)
    if not rowvar and np.ndim(m) != 1:
        X = api.transpose(X)
    if np.shape(X)[0] == 0:
        return np.array([]).reshape(0, 0)
    if y is not None:
        y = as_float(y)
        if np.ndim(y) > 2:
            raise ValueError("y has more than 2 dimensions")
        Y = api.atleast_2d(y)
        if not rowvar and np.shape(Y)[0] != 1:  # NumPy's test for y differs from m's: kept
            Y = api.transpose(Y)
        X = api.concatenate([X, Y], axis=0)
    ddof = (0 if bias else 1) if ddof is None else ddof
    w = _observation_weights(np.shape(X)[1], fweights, aweights)
    if w is None:
        fact = np.shape(X)[1] - ddof
        centred = E.subtract(X, api.mean(X, axis=1, keepdims=True))
    else:  # NumPy's: weighted means, and the degrees of freedom the weights leave
        avg, w_sum = average(X, axis=1, weights=w, returned=True)
        w_sum = api.getitem(w_sum, 0)
        if ddof == 0:
            fact = w_sum
        elif aweights is None:
            fact = E.subtract(w_sum, ddof)
        else:
            fact = E.subtract(w_sum, E.divide(E.multiply(ddof, R.sum(E.multiply(w, aweights), axis=(0,),
                                                                                keepdims=False)), w_sum))
        centred = E.subtract(X, api.reshape(avg, (-1, 1)))
    if (observe(_not_positive, primal(fact)) if is_traced(fact) else fact <= 0):  # traced weights: checked
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=2)
        fact = 0.0
    c = api.matmul(centred, api.transpose(centred if w is None else E.multiply(centred, w)))
    return api.squeeze(E.multiply(c, E.divide(1.0, fact) if is_traced(fact) else np.true_divide(1, fact)))


def _not_positive(value) -> bool:
    return bool(value <= 0)


def _any_negative(values) -> bool:
    return bool(np.any(values < 0))


def _observation_weights(n, fweights, aweights):
    """cov's weights per observation, fweights * aweights, checked as NumPy checks them; None for none.
    Frequency weights are counts, plain; analytic weights may be traced."""
    w = None
    if fweights is not None:
        fweights = np.asarray(primal(fweights), dtype=float)
        if not np.all(fweights == np.around(fweights)):
            raise TypeError("fweights must be integer")
        if fweights.ndim > 1:
            raise RuntimeError("cannot handle multidimensional fweights")
        if fweights.shape[0] != n:
            raise RuntimeError("incompatible numbers of samples and fweights")
        if np.any(fweights < 0):
            raise ValueError("fweights cannot be negative")
        w = fweights
    if aweights is not None:
        if not is_traced(aweights):
            aweights = np.asarray(aweights, dtype=float)
        if np.ndim(aweights) > 1:
            raise RuntimeError("cannot handle multidimensional aweights")
        if np.shape(aweights)[0] != n:
            raise RuntimeError("incompatible numbers of samples and aweights")
        if observe(_any_negative, primal(aweights)):
            raise ValueError("aweights cannot be negative")
        w = aweights if w is None else E.multiply(w, aweights)
    return w


@implements(np.corrcoef)
def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    api._reject("corrcoef", dtype, "dtype")
    c = cov(x, y, rowvar)
    if np.ndim(c) == 0:  # one variable: 1, or NaN where the variance is 0 or not finite
        return E.divide(c, c)
    stddev = E.sqrt(diagonal(c))
    c = E.divide(E.divide(c, api.reshape(stddev, (-1, 1))), api.reshape(stddev, (1, -1)))
    # NumPy clips rounding past ±1; the slope stays the ratio's (the clip's would be ½ at ±1, 0 past it)
    held = E.stop_gradient(c)
    return E.add(c, E.subtract(E.clip(held, lo=-1.0, hi=1.0), held))


# --- counts: weights summed into bins, a scatter-add ------------------------------------
def _refuse_traced_positions(name, values, what):
    if is_traced(values):
        raise NotImplementedError(f"numpy.{name}: traced {what} are not supported; bin counts are piecewise "
                                  "constant in them, so they have no derivative (pass plain values, or traced weights)")


@implements(np.bincount)
def bincount(x, weights=None, minlength=0):
    """The sum of the weights that fall in each bin, in float64 as NumPy sums them: a scatter-add of the
    (traced) weights. Labels a compiled program recomputes (an argument's) are an operand of its scatter-add,
    and only their count of bins is read: class sums, and class counts (no weights), of a batch's labels."""
    _refuse_traced_positions("bincount", x, "bin indices")
    from .observables import array_of  # (which needs the NumPy functions, and they this module)

    size = observe(_bins, array_of(x), minlength)  # NumPy's own checks of x (1-D, integers, >= 0)
    counts = weights is None  # (only labels a program recomputes come here without weights)
    if counts:
        weights = np.ones(np.shape(x))
    elif np.ndim(weights) > 1:
        raise ValueError("object too deep for desired array")
    elif np.shape(weights) != np.shape(x):
        raise ValueError("The weights and list don't have the same length.")
    if getattr(weights, "dtype", None) is None:  # a list: NumPy's conversion
        weights = np.asarray(weights, dtype=np.float64)
    elif weights.dtype != np.float64:  # (an argument's too: converted by a primitive, not read)
        weights = E.astype(weights, dtype=np.dtype(np.float64))
    if S.recomputed_index(x):  # one program for every batch of labels
        sums = S.scatter_add_at(api.reshape(weights, (1, -1)), x, axis=1, size=size)[0]
        return E.astype(sums, dtype=np.dtype(np.intp)) if counts else sums
    return S.scatter_add(api.reshape(weights, (1, -1)), np.asarray(x).astype(np.intp), 1, size)[0]


def _bins(x, minlength) -> int:
    """How many bins np.bincount(x, minlength=minlength) has, with NumPy's errors for an x it refuses."""
    return len(np.bincount(x, minlength=minlength))


@implements(np.histogram)
def histogram(a, bins=10, range=None, density=None, weights=None):
    """NumPy's bins, from a's values; the histogram of the (traced) weights a scatter-add into them.

    With a traced and no weights the counts are piecewise constant: plain, from NumPy itself; the
    edges follow a's min and max where NumPy spaces them between those (`_following`).
    """
    _refuse_traced_edges("histogram", bins, range)
    values = primal(a)
    if weights is not None and np.shape(weights) != np.shape(values):
        raise ValueError("weights should have the same shape as a.")
    edges = observe(np.histogram_bin_edges, values, bins, range)
    moving = _following(edges, a) if _spaced_by_values(bins, range) else edges
    if is_traced(weights):
        hist = _weights_into_bins(weights, observe(_bin_index, values, edges), len(edges) - 1)
    elif density and moving is not edges:  # the counts are plain, their density moves with the edges
        hist = observe(np.histogram, values, edges, None, None, weights)[0]
    else:
        return observe(np.histogram, values, edges, None, density, weights)[0], moving
    return (_density(hist, [moving]) if density else hist), moving


def _spaced_by_values(bins, range) -> bool:
    """Whether NumPy spaces an axis' edges evenly from its coordinate's min to its max: bins that are a
    count (or a rule's name), and no range; else the edges are given."""
    return range is None and not np.ndim(bins)


def _following(edges, coordinate):
    """NumPy's `edges`, spaced from the coordinate's min to its max (`_spaced_by_values`), traced where
    the coordinate is: edge i moves by (1 − tᵢ) d min + tᵢ d max, tᵢ its place between the ends. Added as
    traced zeros (min − its value, ...), so that the edges keep NumPy's values to the bit."""
    if not is_traced(coordinate) or not np.size(coordinate):
        return edges
    t = (edges - edges[0]) / (edges[-1] - edges[0])  # NumPy widens equal ends by ½ each way: t is defined
    flat = api.reshape(coordinate, (-1,))
    low, high = R.min(flat, axis=(0,), keepdims=False), R.max(flat, axis=(0,), keepdims=False)
    low, high = E.subtract(low, E.stop_gradient(low)), E.subtract(high, E.stop_gradient(high))
    return E.add(E.add(edges, E.multiply(1.0 - t, low)), E.multiply(t, high))


def _weights_into_bins(weights, index, size):
    """The weights summed into `size` bins, each into bin `index` (-1: outside, dropped): a scatter-add,
    1 flop per weight landing in an already-filled bin."""
    inside = np.flatnonzero(index.ravel() >= 0)
    flat = api.reshape(weights, (1, -1))[:, inside]
    return S.scatter_add(flat, index.ravel()[inside], 1, size)[0]


def _density(hist, edges):
    """hist divided by its bins' widths along each axis, then by its total, in NumPy's order."""
    total = R.sum(hist, axis=tuple(range(np.ndim(hist))))
    for axis, axis_edges in enumerate(edges):
        hist = E.divide(hist, np.diff(axis_edges).reshape(with_length((1,) * len(edges), axis, -1)))
    return E.divide(hist, total)


@implements(np.histogramdd)
def histogramdd(sample, bins=10, range=None, density=None, weights=None):
    """`histogram` in D dimensions: NumPy's bins, from the sample's values; the histogram of the
    (traced) weights a scatter-add into them, summed in float64 as NumPy's bincount sums them.

    With traced coordinates and no traced weights the counts are piecewise constant: plain, from
    NumPy itself. The edges are NumPy's, traced along an axis where they follow the sample (`_following`).
    """
    _refuse_traced_edges("histogramdd", bins, range)
    parts, whole = _coordinates(sample)
    options = {"whole": whole, "bins": bins, "range": range}
    if not is_traced(weights):
        hist, edges = observe(_plain_histogramdd, *parts, density=density, weights=weights, **options)
        moving = _following_each(edges, sample, whole, bins, range)
        if density and any(m is not e for m, e in zip(moving, edges)):  # plain counts, moving edges
            counts = observe(_plain_histogramdd, *parts, density=None, weights=weights, **options)[0]
            return _density(counts, moving), moving
        return hist, moving
    edges, cells = observe(_histogramdd_cells, *parts, **options)
    _one_weight_per_point(weights, len(cells))
    shape = tuple(len(e) - 1 for e in edges)
    hist = api.reshape(_weights_into_bins(E.as_float_dtype(weights, np.float64), cells, math.prod(shape)), shape)
    moving = _following_each(edges, sample, whole, bins, range)
    return (_density(hist, moving) if density else hist), moving


def _following_each(edges, sample, whole, bins, range):
    """`_following` along each axis of the sample: its column (an (N, D) array's) or coordinate array."""
    axes = len(edges)
    per_axis_bins = bins if hasattr(bins, "__len__") else [bins] * axes  # NumPy's reading: one for all, or each
    per_axis_range = [None] * axes if range is None else range
    return [_following(e, _coordinate(sample, whole, axis)) if _spaced_by_values(b, r) else e
            for axis, (e, b, r) in enumerate(zip(edges, per_axis_bins, per_axis_range))]


def _coordinate(sample, whole, axis):
    """Coordinate `axis` of the sample as NumPy reads it: a column of an (N, D) array (a 1-D one is one
    column), or the axis-th of D arrays."""
    if not whole:
        return sample[axis]
    return sample if np.ndim(sample) == 1 else api.take(sample, axis, axis=1)


@implements(np.histogram2d)
def histogram2d(x, y, bins=10, range=None, density=None, weights=None):
    """NumPy's: the histogramdd of the points (x, y), its two edge arrays returned apart."""
    if len(x) != len(y):
        raise ValueError("x and y must have the same length.")
    _refuse_traced_edges("histogram2d", bins, range)
    try:
        N = len(bins)
    except TypeError:
        N = 1
    if N not in {1, 2}:  # one array of edges, for both axes
        bins = [np.asarray(bins), np.asarray(bins)]
    hist, edges = histogramdd([x, y], bins, range, density, weights)
    return hist, edges[0], edges[1]


def _refuse_traced_edges(name, bins, range):
    for what, value in (("bins", bins), ("range", range)):
        if api.holds_traced(value):
            raise NotImplementedError(f"numpy.{name}: a traced {what} argument is not supported; the bin edges "
                                      "must be plain numbers (which bin each point falls in is decided on values)")


def _coordinates(sample):
    """The sample's plain values as separate arguments, so that a compiled program finds the traced ones:
    the (N, D) array whole, or its D coordinate arrays."""
    if hasattr(sample, "shape"):
        return (primal(sample),), True
    return tuple(primal(s) for s in sample), False


def _sample(parts, whole):
    """The sample `_coordinates` took apart, as it was given."""
    return parts[0] if whole else list(parts)


def _plain_histogramdd(*parts, whole, bins, range, density, weights):
    """NumPy's histogramdd, its edges a tuple (which a compiled program compares with the recorded one)."""
    hist, edges = np.histogramdd(_sample(parts, whole), bins, range, density, weights)
    return hist, tuple(edges)


def _histogramdd_cells(*parts, whole, bins, range):
    """NumPy's edges (with its checks and errors), and each point's cell of the flattened histogram,
    -1 for a point outside it (beyond an edge along some axis, or NaN)."""
    sample = _sample(parts, whole)
    edges = np.histogramdd(sample, bins, range)[1]
    # the points as NumPy reads them: an (N, D) array, or D coordinate arrays as columns
    points = sample if getattr(sample, "ndim", None) == 2 else np.atleast_2d(sample).T
    index = [_bin_index(points[:, axis], axis_edges) for axis, axis_edges in enumerate(edges)]
    inside = np.all([i >= 0 for i in index], axis=0)
    cells = np.full(len(points), -1, np.intp)
    cells[inside] = np.ravel_multi_index([i[inside] for i in index], [len(e) - 1 for e in edges])
    return tuple(edges), cells


def _one_weight_per_point(weights, n):
    """NumPy's errors (those of its bincount) for weights that are not one number per point."""
    if np.ndim(weights) != 1:
        raise ValueError("object too deep for desired array" if np.ndim(weights) > 1
                         else "object of too small depth for desired array")
    if np.shape(weights)[0] != n:
        raise ValueError("The weights and list don't have the same length.")


def _bin_index(values, edges):
    """Each value's bin under NumPy's rule (the last bin holds its right edge), -1 outside."""
    index = np.searchsorted(edges, values, side="right") - 1
    index[values == edges[-1]] = len(edges) - 2
    index[(values < edges[0]) | (values > edges[-1]) | np.isnan(values)] = -1
    return index
