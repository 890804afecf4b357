"""NumPy's quantiles, percentiles and medians on traced arrays (their nan-forms too), composed from primitives.

A sort (a gather, 0 flops) followed by arithmetic on the two order statistics around each level; the
nan-forms count each slice's numbers on values and sort its NaNs last.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import numpy_api as api
from .numpy_api import implements, is_traced, normalize_axis
from .numpy_composites import sort, take_along_axis, with_length
from .primitives import observe, primal
from .rules import elementwise as E
from .rules import reductions as R
from .rules import shape as S
from . import numpy_statistics as stats  # (numpy_api imports both: a module, read at call time)


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
    api.no_axis_of_0d(a, axis)
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
    api.no_axis_of_0d(a, axis)
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
    api.no_axis_of_0d(a, axis)
    keep = stats.keepdims_of(keepdims)
    if np.size(a) == 0:
        return stats.nanmean(a, axis, keepdims=keep)  # as NumPy
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
    api.no_axis_of_0d(a, axis)
    keep = stats.keepdims_of(keepdims)
    if np.size(a) == 0:
        return stats.nanmean(a, axis, keepdims=keep)  # as NumPy
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
