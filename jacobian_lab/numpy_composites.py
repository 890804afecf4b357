"""More of NumPy on traced arrays, composed from the functions of `numpy_api`.

Nothing here is a primitive, so nothing here needs a rule. diag, diagonal,
roll, pad, sort, split, take_along_axis, partition, insert, ... are *index
maps*: a gather of the input's flat positions, which costs no flops and whose
transpose is a scatter-add; most of them run NumPy's own function on an array
of positions. Queries that only read values (argsort, argmax, isin, ...) run
on the primal values and return plain arrays; unique runs NumPy's unique on
them and gathers each unique value from its first occurrence. Statistics live in
`numpy_statistics` (quantiles in `numpy_quantiles`, histograms in
`numpy_histograms`), differences, integrals and evenly spaced values in
`numpy_calculus`, linear algebra in `numpy_linalg`, polynomials and
convolutions in `numpy_polynomials`, einsum in `numpy_einsum`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import numpy_api as api
from .inplace import clone
from .numpy_api import first_argument, implements, is_traced, normalize_axis, one_axis
from .primitives import link_view, observe, primal
from .rules import elementwise as E
from .rules import shape as S
from .rules import special as SP
from .rules.sorting import argsort, reorder


def as_float(v):
    """A traced value as it is, anything else as an array of at least float64 precision: cast by the primitive,
    which a program recomputes for an array it recomputes (under jit, an argument)."""
    if is_traced(v):
        return v
    v = np.asarray(v)
    return E.as_float_dtype(v, np.result_type(v, np.float64))


def with_length(shape, axis, size):
    """`shape` with axis `axis` of length `size`."""
    return shape[:axis] + (size,) + shape[axis + 1:]


def numpy2(owner, name):
    """`implements` for a NumPy 2 name, or a no-op where the installed NumPy lacks it."""
    fn = getattr(owner, name, None)
    return implements(fn) if fn is not None else (lambda impl: impl)


# --- index maps: gather flat positions, 0 flops ---------------------------------------
def gather(a, positions, fill=None):
    """a.ravel()[positions], where -1 positions read `fill`: a plain scalar, or a plain array of the
    positions' shape (np.pad's constant_values per side), whose values there are appended as slots,
    one per position: slots read twice would make reverse mode add up cotangents that it drops."""
    positions = np.asarray(positions)
    flat = api.ravel(a)
    if fill is not None:
        padded = positions < 0
        values = np.broadcast_to(fill, positions.shape)[padded]
        # the fill slots take a's dtype, so a float32 array stays float32 as in np.pad
        flat = api.concatenate([flat, values.astype(np.result_type(primal(a)))])
        positions = positions.copy()
        positions[padded] = np.size(a) + np.arange(values.size)
    return api.reshape(S.take(flat, positions.ravel(), axis=0), positions.shape)


def _positions(a):
    return np.arange(np.size(a)).reshape(np.shape(a))


def running_extreme(a, axis, larger: bool):
    """np.maximum.accumulate (`larger`) or np.minimum.accumulate of a along `axis`: a gather of the
    element that set each running extreme (the last of equal ones, as NumPy's maximum returns its
    second operand on a tie; a NaN, once met), NumPy's values bit for bit."""
    axis = one_axis(axis, np.ndim(a))
    settles = observe(_settling, primal(a), axis, larger)  # the values decide: a check under jit
    at = np.take_along_axis(np.moveaxis(_positions(a), axis, -1), settles, axis=-1)
    return gather(a, np.moveaxis(at, -1, axis))


def _settling(values, axis: int, larger: bool):
    """For each position along `axis` (moved last), the position of the element that set the running
    extreme there."""
    values = np.moveaxis(values, axis, -1)
    run = (np.maximum if larger else np.minimum).accumulate(values, axis=-1)
    before = run[..., :-1]
    beats = values[..., 1:] >= before if larger else values[..., 1:] <= before
    new = np.concatenate([np.ones(values.shape[:-1] + (1,), bool),
                          beats | (np.isnan(values[..., 1:]) & ~np.isnan(before))], axis=-1)
    return np.maximum.accumulate(np.where(new, np.arange(values.shape[-1]), 0), axis=-1)


def _moves(fn):
    """A NumPy function that only moves values, run on a's flat positions: a gather, 0 flops."""
    return lambda a, *args, **kwargs: gather(a, fn(_positions(a), *args, **kwargs))


def _viewing(fn, numpy_fn, writeable: bool = True):
    """`fn`, whose result NumPy (`numpy_fn`) returns as a view of its first argument and jacobian_lab
    gathers: linked as one (`primitives.link_view`), so that a write into the argument reaches it
    and one into it reaches the argument, as for the slices and transposes that are views here too.
    ``writeable=False``: NumPy's view is read-only (np.diagonal), and so is this one."""
    split = first_argument(numpy_fn)

    def view(*args, **kwargs):
        a, args = split(args, kwargs)
        out = fn(a, *args, **kwargs)
        step = lambda value: fn(value, *args, **kwargs)  # noqa: E731
        step.writeable = kwargs.get("writeable", writeable)  # sliding_window_view(..., writeable=True)
        link_view(out, a, (step, {}))
        return out

    return view


def _plain(name, value, what):
    """`value`, a parameter that must be plain: a traced one is refused, unless it has no derivative
    (np.zeros_like(x) and what is computed from it alone), which is read as plain values."""
    if not is_traced(value):
        return value
    if not value.constant:
        raise NotImplementedError(f"numpy.{name}: a traced {what} is not supported; it must be plain "
                                  "(computed from values, e.g. x > 0, it is)")
    return np.asarray(value)


def _diagonal(a, offset=0, axis1=0, axis2=1):
    return gather(a, np.diagonal(_positions(a), offset, axis1, axis2))


diagonal = implements(np.diagonal)(_viewing(_diagonal, np.diagonal, writeable=False))


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
        if kwargs.get("reflect_type", "even") != "even":  # values 2·edge − mirror: arithmetic, not a move
            raise api.unsupported(f"numpy.pad with mode={mode!r} and reflect_type={kwargs['reflect_type']!r} "
                                  "(the default, 'even', is supported)")
        return gather(array, np.pad(_positions(array), pad_width, mode=mode, **kwargs))
    if mode != "constant":
        raise api.unsupported(f"numpy.pad with mode={mode!r} (use constant, edge, wrap, reflect or symmetric)")
    value = kwargs.pop("constant_values", 0)
    if kwargs or is_traced(value):
        raise api.unsupported("numpy.pad with traced constant_values (give plain numbers: a scalar, or "
                              "(before, after) per axis)")
    # the value at each padded place: np.pad of x's shape with them, as NumPy checks and places them
    fill = value if np.ndim(value) == 0 else np.pad(np.zeros(np.shape(array)), pad_width, constant_values=value)
    return gather(array, np.pad(_positions(array), pad_width, constant_values=-1), fill=fill)


@implements(np.sort)
def sort(a, axis=-1, kind=None, order=None, **kwargs):
    api._reject("sort", order, "order")
    if axis is None:
        a, axis = api.ravel(a), 0
    axis = one_axis(axis, np.ndim(a))
    return reorder(a, argsort(a, axis=axis), axis=axis)  # both recorded: a program sorts at each x


@implements(np.take_along_axis)
def take_along_axis(arr, indices, axis=-1):
    if axis is None:
        arr, axis = api.ravel(arr), 0
    if S.recomputed_index(indices):  # labels under jit (z[np.arange(n), y] as NumPy writes it): recomputed
        return api.getitem(arr, _along_axis(indices, np.shape(arr), one_axis(axis, np.ndim(arr))))
    return gather(arr, np.take_along_axis(_positions(arr), np.asarray(indices), axis))


def _along_axis(indices, shape, axis) -> tuple:
    """The index ``np.take_along_axis(a, indices, axis)`` reads ``a`` with: `indices` along axis, every other
    axis its own positions, broadcast against them."""
    if len(shape) != np.ndim(indices):
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    return tuple(indices if d == axis else np.arange(n).reshape([-1 if k == d else 1 for k in range(len(shape))])
                 for d, n in enumerate(shape))


for _fn in (np.fliplr, np.flipud, np.rot90):
    implements(_fn)(_viewing(_moves(_fn), _fn))
for _fn in (np.delete, np.resize):  # copies in NumPy too
    implements(_fn)(_moves(_fn))


def _triangle(fn):
    # the positions shifted by one, so that the zeros fn writes become -1: read as the 0 fill
    return lambda m, k=0: gather(m, fn(_positions(m) + 1, k) - 1, fill=0.0)


implements(np.tril)(_triangle(np.tril))
implements(np.triu)(_triangle(np.triu))


@implements(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    axis = one_axis(axis, np.ndim(ary))
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


@implements(np.meshgrid)
def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    ndim = len(xi)
    shapes = [(1,) * i + (-1,) + (1,) * (ndim - i - 1) for i in range(ndim)]
    if indexing == "xy" and ndim > 1:  # the first two axes swapped, as NumPy does
        shapes[0], shapes[1] = (1, -1) + shapes[0][2:], (-1, 1) + shapes[1][2:]
    grids = [api.reshape(v, s) for v, s in zip(xi, shapes)]
    if not sparse:
        full = np.broadcast_shapes(*(np.shape(g) for g in grids))
        grids = [api.broadcast_to(g, full) for g in grids]
    # copies, as NumPy's (views with copy=False); the grid of a plain input is a plain array
    return tuple((clone(g) if is_traced(g) else np.array(g)) if copy else g for g in grids)


@implements(np.append)
def append(arr, values, axis=None):
    if axis is None:
        return api.concatenate([api.ravel(arr), api.ravel(values)])
    return api.concatenate([arr, values], axis=axis)


@numpy2(np, "unstack")
def unstack(x, /, *, axis=0):
    if np.ndim(x) == 0:
        raise ValueError("Input array must be at least 1-d.")
    axis = one_axis(axis, np.ndim(x))
    before = (slice(None),) * axis
    return tuple(S.getitem(x, before + (i,)) for i in range(np.shape(x)[axis]))


@implements(np.diagflat)
def diagflat(v, k=0):
    return gather(v, np.diagflat(_positions(v) + 1, k) - 1, fill=0.0)


@implements(np.dsplit)
def dsplit(ary, indices_or_sections):
    if np.ndim(ary) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return split(ary, indices_or_sections, axis=2)


implements(np.rollaxis)(_viewing(_moves(np.rollaxis), np.rollaxis))
_window = np.lib.stride_tricks.sliding_window_view  # a read-only view in NumPy (writeable=False)
implements(_window)(_viewing(_moves(_window), _window, writeable=False))


@implements(np.broadcast_arrays)
def broadcast_arrays(*args, subok=False):
    args = [a if is_traced(a) or isinstance(a, np.ndarray) else np.asarray(a) for a in args]
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    return tuple(api.broadcast_to(a, shape) for a in args)


@implements(np.choose)
def choose(a, choices, out=None, mode="raise"):
    """a picks, entry by entry, one of the (broadcast) choices: a gather from all of them stacked."""
    a = _plain("choose", a, "a (the indices)")
    choices = [c if is_traced(c) or isinstance(c, np.ndarray) else np.asarray(c) for c in choices]
    shape = np.broadcast_shapes(np.shape(a), *(np.shape(c) for c in choices))
    size = int(np.prod(shape, dtype=np.int64))
    spots = np.arange(size).reshape(shape)
    # NumPy's own choose on the positions: its broadcasting, its modes and its errors
    picked = np.choose(a, [spots + k * size for k in range(len(choices))], mode=mode)
    return gather(api.concatenate([api.ravel(api.broadcast_to(c, shape)) for c in choices]), picked)


@implements(np.compress)
def compress(condition, a, axis=None, out=None):
    condition = _plain("compress", condition, "condition")
    return gather(a, np.compress(condition, _positions(a), axis))


@implements(np.extract)
def extract(condition, arr):
    condition = _plain("extract", condition, "condition")
    return gather(arr, np.extract(condition, _positions(arr)))


def _partition_order(values, kth, axis, kind):
    """Positions along `axis` whose gather is NumPy's np.partition(values, kth, axis) exactly.

    argpartition's own positions are, unless a slice holds a NaN (NumPy's two selections can
    then leave the entries off kth in different orders) or a value at kth is tied (`_tied_at`).
    Each entry of NumPy's answer is then matched to a position of the same value, by rank, so that
    tied values stay a bijection and each kth position gets the element a stable sort puts there.
    """
    order = np.argpartition(values, kth, axis=axis, kind=kind)
    expected = np.partition(values, kth, axis=axis, kind=kind)
    if np.array_equal(np.take_along_axis(values, order, axis), expected, equal_nan=True) \
            and not _tied_at(expected, kth, axis):
        return order
    by_value = np.argsort(values, axis=axis, kind="stable")
    rank = np.argsort(np.argsort(expected, axis=axis, kind="stable"), axis=axis, kind="stable")
    return np.take_along_axis(by_value, rank, axis)


def _tied_at(partitioned, kth, axis) -> bool:
    """Whether the value at a kth position of some slice of `partitioned` is also elsewhere in the slice:
    argpartition then puts any one of them there, where sort's order statistics (their derivatives) take the
    one a stable sort puts there. Many kth positions are taken as tied: the check would cost a sort."""
    kth = np.atleast_1d(kth)
    if kth.size > 16:
        return True
    at = np.take(partitioned, kth, axis=axis)  # (..., len(kth), ...) along axis
    nan = np.isnan(partitioned)  # NaNs tie too: the sort puts them last in their order
    equal = [np.count_nonzero((partitioned == v) | (nan & np.isnan(v)), axis=axis)
             for v in (np.take(at, [i], axis=axis) for i in range(kth.size))]
    return any(np.any(count > 1) for count in equal)


@implements(np.partition)
def partition(a, kth, axis=-1, kind="introselect", order=None):
    """NumPy's partition (its values exactly): a gather, the positions chosen on values like sort's."""
    api._reject("partition", order, "order")
    if axis is None:
        a, axis = api.ravel(a), 0
    axis = one_axis(axis, np.ndim(a))
    spots = observe(_partition_order, primal(a), kth, axis, kind)
    return gather(a, np.take_along_axis(_positions(a), spots, axis))


def _nonzero_box(values):
    """The first and one past the last index of a nonzero value along each axis (empty: all zero)."""
    nonzero = np.argwhere(values)
    if nonzero.size == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return nonzero.min(axis=0), nonzero.max(axis=0) + 1


@implements(np.trim_zeros)
def trim_zeros(filt, trim="fb", axis=None):
    """A slice, cut where the values are zero (a decision on values): 0 flops."""
    trim = trim.lower()
    if trim not in {"fb", "bf", "f", "b"}:
        raise ValueError(f"unexpected character(s) in `trim`: {trim!r}")
    nd = np.ndim(filt)
    axes = tuple(range(nd)) if axis is None else normalize_axis(axis, nd)
    if not axes:
        return filt
    start, stop = observe(_nonzero_box, primal(filt))
    if start.size == 0:  # all zero: empty along each axis trimmed, from either side
        start = stop = [0] * nd
    else:
        start = [int(i) if "f" in trim else None for i in start]
        stop = [int(i) if "b" in trim else None for i in stop]
    return S.getitem(filt, tuple(slice(start[i], stop[i]) if i in axes else slice(None) for i in range(nd)))


@implements(np.insert)
def insert(arr, obj, values, axis=None):
    """NumPy's insert run on positions: arr's flat positions, then those of the values after them."""
    obj = _plain("insert", obj, "obj (the positions)")
    if not is_traced(values):
        values = np.asarray(values, dtype=np.result_type(primal(arr)))  # NumPy casts them to arr's dtype
    spots = np.insert(_positions(arr), obj, np.size(arr) + _positions(values), axis)
    return gather(api.concatenate([api.ravel(arr), api.ravel(values)]), spots)


@implements(np.block)
def block(arrays):
    """np.block run on the positions of each leaf in the concatenation of all of them: one gather."""
    leaves = []

    def positions(node):
        if type(node) in (list, tuple):  # NumPy refuses tuples itself, on the positions
            return type(node)(positions(n) for n in node)
        leaf = node if is_traced(node) or isinstance(node, np.ndarray) else np.asarray(node)
        offset = sum(np.size(v) for v in leaves)
        leaves.append(leaf)
        return offset + _positions(leaf)

    spots = np.block(positions(arrays))
    return gather(api.concatenate([api.ravel(v) for v in leaves]), spots)


# --- unique values: NumPy's answer on values, the values gathered from their first occurrence ---
class UniqueAllResult(NamedTuple):
    values: np.ndarray
    indices: np.ndarray
    inverse_indices: np.ndarray
    counts: np.ndarray


class UniqueCountsResult(NamedTuple):
    values: np.ndarray
    counts: np.ndarray


class UniqueInverseResult(NamedTuple):
    values: np.ndarray
    inverse_indices: np.ndarray


@implements(np.unique)
def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *, equal_nan=True,
           sorted=True):
    """NumPy's unique values (or slices along `axis`), each a gather of its first occurrence in `ar`.

    So each unique value's derivative is that of its first occurrence, as with jax.numpy's
    eager unique. (Values equal but for their bits, 0.0 and -0.0 or NaNs, take the first
    occurrence of the bits NumPy returns, so the values are NumPy's bit for bit.) The indices,
    inverse and counts are NumPy's own, plain integer arrays; all of it is decided on values.
    """
    options = {"return_index": return_index, "return_inverse": return_inverse, "return_counts": return_counts,
               "equal_nan": equal_nan}
    if sorted is not True:  # NumPy 2.3's keyword, passed on only when given, for older NumPy's sake
        options["sorted"] = sorted
    values, others = _unique(np.unique, ar, axis=axis, **options)
    return (values, *others) if others else values


@numpy2(np, "unique_values")
def unique_values(x, /):
    return _unique(np.unique_values, x)[0]


@numpy2(np, "unique_counts")
def unique_counts(x, /):
    values, others = _unique(np.unique_counts, x)
    return UniqueCountsResult(values, *others)


@numpy2(np, "unique_inverse")
def unique_inverse(x, /):
    values, others = _unique(np.unique_inverse, x)
    return UniqueInverseResult(values, *others)


@numpy2(np, "unique_all")
def unique_all(x, /):
    values, others = _unique(np.unique_all, x)
    return UniqueAllResult(values, *others)


def _unique(numpy_fn, ar, **options):
    """The unique values numpy_fn finds in ar, gathered from ar (0 flops), and its other (plain) results."""
    ar = api.as_array(ar)
    spots, others = observe(_unique_spots, primal(ar), numpy_fn, options)
    return gather(ar, spots), others


def _unique_spots(values, numpy_fn, options):
    """Where in `values` (flat positions) each unique value numpy_fn returns first occurs, and its other
    results. Called on values alone, so that a compiled program checks both before replaying."""
    result = numpy_fn(values, **options)  # NumPy's own checks, errors and order
    axis = options.get("axis")
    found, others = (result[0], tuple(result[1:])) if isinstance(result, tuple) else (result, ())
    spots = _positions(values)
    if axis is None or values.ndim <= 1:  # flattened, as NumPy does
        return spots.ravel()[_first_alike(values.reshape(-1, 1), found.reshape(-1, 1))], others
    axis = one_axis(axis, values.ndim)
    rows = _first_alike(np.moveaxis(values, axis, 0), np.moveaxis(found, axis, 0))
    return np.take(spots, rows, axis=axis), others


def _first_alike(values, found):
    """For each slice of `found` along axis 0, the first slice of `values` holding the same bits.

    Bits, not ==, so that the value gathered is NumPy's to the last bit (0.0 is not -0.0). A
    pattern `found` holds k times (NaNs NumPy keeps apart with equal_nan=False) takes the k-th
    slice holding it, so that each of them has a derivative of its own, as its index says.
    """
    if math.prod(values.shape[1:]) == 0 or not len(values):  # no bits to compare: any slice is alike
        return np.zeros(len(found), np.intp)
    have, want = _bit_rows(values), _bit_rows(found)
    order = np.argsort(have, kind="stable")
    return order[np.searchsorted(have[order], want) + _repeats_before(want)]


def _bit_rows(a):
    """Each slice of `a` along axis 0 as one opaque item of its bytes, which sort and compare as bytes."""
    rows = np.ascontiguousarray(a.reshape(len(a), math.prod(a.shape[1:])))
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))[:, 0]


def _repeats_before(keys):
    """How many earlier entries of keys equal each one."""
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    repeats = np.empty(len(keys), np.intp)
    repeats[order] = np.arange(len(keys)) - np.searchsorted(ranked, ranked)
    return repeats


# --- functions applied piece by piece ---------------------------------------------------
@implements(np.apply_along_axis)
def apply_along_axis(func1d, axis, arr, *args, **kwargs):
    """func1d on every 1-D slice along `axis`, in a Python loop as NumPy runs it; the results
    stacked where the axis was."""
    axis = one_axis(axis, np.ndim(arr))
    moved = api.moveaxis(arr, axis, -1)
    outer = np.shape(moved)[:-1]
    if 0 in outer:
        raise ValueError("Cannot apply_along_axis when any iteration dimensions are 0")
    results = [func1d(moved[index], *args, **kwargs) for index in np.ndindex(*outer)]
    result_shape = np.shape(results[0])
    stacked = api.reshape(api.stack(results), outer + result_shape)
    inner = tuple(range(len(outer), len(outer) + len(result_shape)))
    return api.transpose(stacked, tuple(range(axis)) + inner + tuple(range(axis, len(outer))))


@implements(np.apply_over_axes)
def apply_over_axes(func, a, axes):
    """func(a, axis) for each axis in turn, a reduced axis kept as length 1 (NumPy's rule)."""
    for axis in np.atleast_1d(axes):
        axis = int(axis) if np.ndim(a) == 0 else one_axis(int(axis), np.ndim(a))  # a 0-d a: func's to take or refuse
        result = func(a, axis)
        if np.ndim(result) == np.ndim(a) - 1:
            result = api.expand_dims(result, axis)
        elif np.ndim(result) != np.ndim(a):
            raise ValueError("function is not returning an array of the correct shape")
        a = result
    return a


@implements(np.piecewise)
def piecewise(x, condlist, funclist, *args, **kw):
    """Each function on the entries its condition selects (a later condition wins, as in NumPy);
    the pieces then placed by one gather, 0 where no condition holds. The conditions are values:
    they must be plain (comparisons of x are)."""
    if np.isscalar(condlist) or (not isinstance(condlist[0], (list, np.ndarray)) and np.ndim(x) != 0):
        condlist = [condlist]  # NumPy's rule: one condition, not a list of them
    conditions = np.asarray(condlist, dtype=bool)
    if len(funclist) == len(conditions) + 1:  # the last function is for "otherwise"
        conditions = np.concatenate([conditions, ~np.any(conditions, axis=0, keepdims=True)])
    elif len(funclist) != len(conditions):
        raise ValueError(f"with {len(conditions)} condition(s), either {len(conditions)} or "
                         f"{len(conditions) + 1} functions are expected")
    flat, positions, pieces = api.reshape(x, (-1,)), np.full(np.shape(x), -1), []
    for cond, func in zip(conditions, funclist):
        chosen = np.flatnonzero(cond)
        if not len(chosen):
            continue  # NumPy does not call a function on no entries
        value = func(flat[chosen], *args, **kw) if callable(func) else func
        positions.flat[chosen] = sum(len(p) for p in pieces) + np.arange(len(chosen))
        pieces.append(api.broadcast_to(value, (len(chosen),)))
    if not pieces:
        return np.zeros_like(primal(x))
    # NumPy writes the pieces into an array of x's dtype
    return E.as_float_dtype(gather(api.concatenate(pieces), positions, fill=0.0), np.result_type(primal(x)))


# --- values only: no derivative flows through these -----------------------------------
def _on_primal(fn):
    return lambda *args, **kwargs: observe(fn, *(primal(a) for a in args), **{k: primal(v) for k, v in kwargs.items()})


for _fn in (np.argsort, np.argmax, np.argmin, np.argwhere, np.nonzero, np.flatnonzero, np.count_nonzero,
            np.any, np.all, np.isclose, np.allclose, np.array_equal, np.searchsorted, np.argpartition,
            np.digitize, np.isin, np.isneginf, np.isposinf, np.iscomplex, np.isreal, np.array_equiv,
            np.nanargmax, np.nanargmin, np.diag_indices_from, np.tril_indices_from, np.triu_indices_from,
            np.can_cast, np.common_type, np.min_scalar_type, np.may_share_memory, np.shares_memory,
            np.linalg.matrix_rank):
    implements(_fn)(_on_primal(_fn))
implements(np.iscomplexobj)(lambda x: False)
implements(np.isrealobj)(lambda x: True)
implements(np.real)(lambda val: val)
implements(np.imag)(lambda val: np.zeros(np.shape(val), np.result_type(primal(val))))


def _lexsort(*keys, axis=-1):
    return np.lexsort(keys, axis=axis)


@implements(np.lexsort)
def lexsort(keys, axis=-1):
    # A sequence of keys is passed key by key, so that a compiled program checks each of them.
    if is_traced(keys):  # one array: its rows are the keys
        return observe(np.lexsort, primal(keys), axis=axis)
    return observe(_lexsort, *(primal(k) for k in keys), axis=axis)


# --- elementwise functions composed of primitives -------------------------------------
@implements(np.round, np.around)
def round_(a, decimals=0, out=None):
    scale = 10.0 ** decimals
    return E.divide(E.rint(E.multiply(a, scale)), scale) if decimals else E.rint(a)


#: sin(y) / y = Σ_k (−1)^k u^k / (2k + 1)! in u = y², to y**8
_SINC_SERIES = [(-1.0) ** k / math.factorial(2 * k + 1) for k in range(5)]


@implements(np.sinc)
def sinc(x):
    """sin(pi x) / (pi x), and near 0 its Taylor series, 1 - y**2 / 6 + ... in y = pi x.

    Near 0 the quotient's derivatives cancel: its second derivative carries an error of about
    eps / y**3 (2e8 at x = 1e-12, against -pi**2 / 3). Below |y| = 0.1 the series to y**8 has
    values within an ulp of NumPy's and derivatives to about 1e-13 relative (at 0: 1, slope 0, no
    0/0). Where x holds such elements (a decision on values, which a compiled program checks),
    each side is computed with the other's elements replaced, the "double where".
    """
    y = E.multiply(np.pi, x)
    small = E.less(E.absolute(y), 0.1)
    if not observe(np.any, small):
        return E.divide(E.sin(y), y)
    u = E.square(E.where(small, y, 0.0))
    series = E.horner(_SINC_SERIES, u)
    y = E.where(small, 1.0, y)
    return E.where(small, series, E.divide(E.sin(y), y))


def _logaddexp2(x, y):
    return api.log_add_exp(x, y, base2=True)


def _modf(x):
    # The fraction is fmod(x, 1) = x - trunc(x), exactly and with x's sign, derivative 1; modf
    # gives 0 at +-inf, where fmod would give NaN (and warn). The integer part has no derivative.
    return E.fmod(E.where(E.isinf(x), 0.0, x), 1.0), E.trunc(x)


api.UFUNCS[np.logaddexp2] = _logaddexp2
api.UFUNCS[np.modf] = _modf


@implements(np.fix)
def fix(x, out=None):
    return E.trunc(x)  # rounding towards zero: no derivative


implements(np.real_if_close)(lambda a, tol=100: a)  # traced values are real: nothing to drop
implements(np.i0)(lambda x: SP.numpy_i0(x))  # a primitive: NumPy's values, scipy's I1 as derivative


def norm_root(total, p):
    """``total ** (1/p)`` of a p-norm's sum of powers (sqrt for p = 2: also std of its variance), with
    the derivative 0 where the sum is 0: a norm at the zero vector (std of constant data) is not
    differentiable, and takes the slope abs takes at 0 (and PyTorch's norm takes) rather than
    0 * inf = NaN, which a reverse sweep would spread to every input (a distance matrix's zero
    diagonal). For p >= 1 (below, the sum's own powers have an infinite slope at 0 already); the
    values are NumPy's."""
    if not 1 <= p < np.inf:
        return E.power(total, 1.0 / p)
    zero = E.equal(total, 0.0)
    safe = E.where(zero, 1.0, total)  # a root of 1 where the sum is 0: no infinite slope there
    return E.where(zero, 0.0, E.sqrt(safe) if p == 2 else E.power(safe, 1.0 / p))
