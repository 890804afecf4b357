"""NumPy's bincount and histograms on traced arrays: traced weights scatter-added into bins found on values."""
from __future__ import annotations

import math

import numpy as np

from . import numpy_api as api
from .numpy_api import implements, is_traced
from .numpy_composites import with_length
from .primitives import observe, primal
from .rules import elementwise as E
from .rules import reductions as R
from .rules import shape as S


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
