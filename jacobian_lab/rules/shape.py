"""Shape primitives: reshape, transpose, broadcast, slicing, gather/scatter, concatenate.

They move values without arithmetic and cost 0 flops; the one exception is
`scatter_add`, the transpose of a gather with repeated indices, which pays one
flop for every value that lands on an already-filled position (fan-out
accumulation, the same price as summing a broadcast back). Derivative values
carry a leading seed axis, so every rule shifts axes by one.
"""
from __future__ import annotations

import math

import numpy as np

from ..accounting import free
from ..primitives import Primitive, counted, recomputed, register
from . import reductions as R


def _linear(name, impl, jvp, transpose, params, cost=free, structure="move", array_params=()):
    """Register a linear primitive: its JVP applies it, its VJP applies `transpose`."""
    def vjp(needs, out, x, **params):
        # Honour needs even for one operand: a None cotangent is the symbolic zero.
        in_shape = np.shape(x)
        return lambda g: (transpose(g, in_shape, **params) if needs[0] else None,)

    return register(Primitive(
        name, impl, cost, jvp=lambda tangents, out, x, **params: jvp(tangents[0], **params), vjp=vjp,
        positional_params=params, structure=structure, array_params=array_params,
    ))


# Derivative values (tangents, cotangents) are always arrays with a seed axis, or
# tracers of an outer trace, so the helpers below read `.shape` / `.ndim` directly:
# np.shape(v) would go through NumPy's dispatch layer on every rule application.
def batch(t):
    return t.shape[0]


# --- helpers shared by all rules ------------------------------------------------
def align(t, ndim):
    """Insert unit axes after the seed axis so `t` broadcasts against ndim-d primals."""
    missing = ndim - (t.ndim - 1)
    if missing <= 0:
        return t
    return reshape(t, (t.shape[0],) + (1,) * missing + t.shape[1:])


def broadcast_batched(t, shape):
    """Broadcast a seed-batched value to (k, *shape)."""
    shape = tuple(shape)
    if t.shape[1:] == shape:
        return t
    return broadcast_to(align(t, len(shape)), (t.shape[0],) + shape)


def as_shape(v, shape):
    """reshape(v, shape), or v itself when it already has that shape (a reshape is a no-op then)."""
    return v if v.shape == shape else reshape(v, shape)


def unbroadcast(g, shape):
    """Sum a seed-batched cotangent back to (k, *shape): the transpose of broadcasting."""
    shape = tuple(shape)
    gshape = g.shape[1:]
    if gshape == shape:
        return g  # nothing was broadcast: the common case
    lead = len(gshape) - len(shape)
    axes = tuple(range(1, 1 + lead)) + tuple(
        1 + lead + i for i, s in enumerate(shape) if s == 1 and gshape[lead + i] != 1
    )
    if axes:
        g = R.sum(g, axis=axes, keepdims=True)
    return as_shape(g, (g.shape[0],) + shape)


# --- reshape / transpose / broadcast --------------------------------------------
reshape = _linear(
    "reshape", lambda x, shape: np.asarray(x).reshape(shape),  # the method: np.reshape's dispatch costs more
    jvp=lambda t, shape: reshape(t, (batch(t),) + shape),
    transpose=lambda g, in_shape, shape: reshape(g, (batch(g),) + in_shape),
    params=("shape",),
)


def _transpose_t(g, in_shape, axes):
    inverse = tuple(np.argsort(axes))
    return transpose(g, (0,) + tuple([a + 1 for a in inverse]))


transpose = _linear(
    "transpose", lambda x, axes: np.transpose(x, axes),
    jvp=lambda t, axes: transpose(t, (0,) + tuple([a + 1 for a in axes])),
    transpose=_transpose_t,
    params=("axes",),
)
broadcast_to = _linear(
    "broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
    jvp=lambda t, shape: broadcast_batched(t, shape),
    transpose=lambda g, in_shape, shape: unbroadcast(g, in_shape),
    params=("shape",),
)


# --- basic indexing and its transpose -------------------------------------------
def _seeded(index):
    return (slice(None),) + index


def _embed_impl(g, index, shape):
    out = np.zeros(shape, dtype=np.result_type(g, float))
    out[index] = g
    return out


getitem = _linear(
    "getitem", lambda x, index: x[index],
    jvp=lambda t, index: getitem(t, _seeded(index)),
    transpose=lambda g, in_shape, index: embed(g, _seeded(index), (batch(g),) + in_shape),
    params=("index",),
)
embed = _linear(
    "embed", _embed_impl,
    jvp=lambda t, index, shape: embed(t, _seeded(index), (batch(t),) + shape),
    transpose=lambda g, in_shape, index, shape: getitem(g, _seeded(index)),
    params=("index", "shape"),
)


# --- gather with 1-D integer indices along one axis, and its transpose ------------
def _scatter_add_impl(g, indices, axis, size):
    """Sum slices of g along `axis` into `size` bins given by 1-D `indices` (repeats add)."""
    g = np.asarray(g)
    last = axis == g.ndim - 1  # a cotangent's gathered axis mostly is: no move (moveaxis costs a few µs)
    g = g if last else np.moveaxis(g, axis, -1)
    lead = g.shape[:-1]
    # An explicit row count: reshape(-1, 0) is ambiguous when nothing is gathered (empty mask).
    rows = g.reshape(int(np.prod(lead, dtype=np.int64)), len(indices))
    # intp indices: uint64 ones with the int64 row offsets would add up in float64, which bincount refuses
    bins = (np.arange(rows.shape[0])[:, None] * size + indices.astype(np.intp, copy=False)).ravel()
    if g.dtype == np.float64:  # bincount sums in float64, in order: np.add.at's sums, faster
        flat = np.bincount(bins, weights=rows.ravel(), minlength=rows.shape[0] * size)
    else:  # in g's own precision, as np.add.at sums (float32 sums rounded at every step)
        flat = np.zeros(rows.shape[0] * size, dtype=g.dtype)
        np.add.at(flat, bins, rows.ravel())
    # bincount gives int64 when nothing lands: back to g's dtype
    out = flat.reshape(lead + (size,)).astype(g.dtype, copy=False)
    return out if last else np.moveaxis(out, -1, axis)


def repeats(indices) -> int:
    """How many of `indices` repeat an earlier one: the adds a scatter-add of them pays per row."""
    ordered = np.sort(indices, axis=None)  # a sort and a comparison: faster than np.unique's count
    return int(np.count_nonzero(ordered[1:] == ordered[:-1]))


def _scatter_add_cost(out, g, indices, axis, size):
    return repeats(indices) * (np.size(g) // max(np.size(indices), 1)), 0


take = _linear(
    "take", lambda x, indices, axis: np.take(x, indices, axis=axis),
    jvp=lambda t, indices, axis: take(t, indices, axis + 1),
    transpose=lambda g, in_shape, indices, axis: scatter_add(g, indices, axis + 1, in_shape[axis]),
    params=("indices", "axis"), array_params=("indices",),
)
scatter_add = _linear(
    "scatter_add", _scatter_add_impl,
    jvp=lambda t, indices, axis, size: scatter_add(t, indices, axis + 1, size),
    transpose=lambda g, in_shape, indices, axis, size: take(g, indices, axis + 1),
    params=("indices", "axis", "size"), array_params=("indices",),
    cost=_scatter_add_cost, structure="scatter",  # repeated indices add elements up: not a move
)


# --- gather and scatter-add by an index operand ------------------------------------
# `take` and `scatter_add` with the (1-D) index as an operand rather than a parameter: under jit, an index f
# computes from its arguments (labels: p[np.arange(n), y]) is recomputed by the program, as a value is,
# where a parameter would be a constant read from the first call. Eager mode indexes with `take`.
def _positions_impl(*arrays, shape, index):
    """The flat positions ``a[index]`` reads of an array of `shape`, `index` holding `SLOT` where `arrays` go."""
    arrays = iter(arrays)
    index = tuple(next(arrays) if part is SLOT else part for part in index)
    size = math.prod(shape)
    if size > RAVEL_ABOVE and len(index) <= len(shape) and all(
            type(part) is np.ndarray and part.dtype.kind in "iu" for part in index):
        return _raveled(index, shape)  # W[tokens] of a large W: without an array of all its positions
    return np.arange(size).reshape(shape)[index]  # NumPy's indexing, in C: faster for a small array


#: The size beyond which `positions` computes an index of integer arrays from strides (about 10 µs) rather than
#: indexing an array of every position (about 2 µs, plus 0.5 ms per million elements)
RAVEL_ABOVE = 1 << 14


def _raveled(index, shape):
    """The flat positions of an index of integer arrays (broadcast together) for the leading axes, the others
    whole, as NumPy's indexing reads them: a negative one counts from the end; NumPy's IndexError where it
    raises one."""
    try:
        out_shape = index[0].shape if len(index) == 1 else np.broadcast_shapes(*(part.shape for part in index))
    except ValueError:
        shapes = " ".join(str(part.shape) for part in index)
        raise IndexError(f"shape mismatch: indexing arrays could not be broadcast together with shapes {shapes}") \
            from None
    bounds = [(part.min(), part.max()) if part.size else (0, 0) for part in index]
    for axis, ((low, high), n) in enumerate(zip(bounds, shape)):
        if high >= n or low < -n:
            part = index[axis]
            bad = part[(part >= n) | (part < -n)].flat[0]  # the first, as NumPy names it
            raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {n}")
    rest = shape[len(index):]  # the axes taken whole (W[tokens] of a matrix: each token's row)
    flat, stride = 0, math.prod(rest)
    for part, n, (low, _) in zip(index[::-1], shape[len(index) - 1::-1], bounds[::-1]):
        part = part.astype(np.intp, copy=False)  # int8 labels times a stride would wrap in int8
        flat = flat + (part + n * (part < 0) if low < 0 else part) * stride  # labels mostly hold no negative one
        stride *= n
    if flat.shape != out_shape:
        flat = np.broadcast_to(flat, out_shape)
    if rest:
        flat = flat.reshape(out_shape + (1,) * len(rest)) + np.arange(math.prod(rest)).reshape(rest)
    return flat.astype(np.intp)


class _Slot:
    """Where an index operand goes in `positions`' index (one object: a program's parameters name it)."""

    def __repr__(self) -> str:
        return "SLOT"


SLOT = _Slot()

# raises: an index out of bounds raises IndexError, which f may catch
positions = register(Primitive("positions", _positions_impl, free, differentiable=False, raises=True, array_params=()))


def recomputed_index(part) -> bool:
    """Whether `part` of an index is an integer array a compiled program being recorded recomputes (labels f
    gets as an argument, or computes from one): the positions it selects are then computed by `positions`, not
    read, so that one program serves every value. A boolean one is read: its count of True sets the shape.

    >>> recomputed_index(np.array([0, 2]))  # no recording: a plain index, read as NumPy reads it
    False
    """
    return getattr(part, "dtype", None) is not None and part.dtype.kind in "iu" and recomputed(part)


def recomputed_positions(shape, index: tuple):
    """The flat positions ``a[index]`` selects of an array a of `shape`, computed by `positions` where a part
    of the index is one a recording recomputes (`recomputed_index`); None where none is (NumPy reads it).

    >>> recomputed_positions((3, 4), (np.arange(3), np.array([2, 0, 1]))) is None  # no recording
    True
    """
    recorded = [recomputed_index(part) for part in index]
    if not any(recorded):
        return None
    arrays = [part for part, r in zip(index, recorded) if r]
    return positions(*arrays, shape=shape, index=tuple(SLOT if r else part for part, r in zip(index, recorded)))


def read_index(index):
    """`index` with each array of it that is no ndarray (under jit, a mask or float array computed from an
    argument) read whole as one, so NumPy's indexing gives the errors of eager mode ("arrays used as indices
    must be of integer (or boolean) type"), not those of a sequence.

    >>> read_index((slice(None), np.array([0, 2])))
    (slice(None, None, None), array([0, 2]))
    """
    if type(index) is not tuple:
        return read_index((index,))[0]
    return tuple(np.asarray(i) if hasattr(i, "dtype") and not issubclass(type(i), (np.ndarray, np.generic)) else i
                 for i in index)


def _scatter_add_at_cost(out, g, indices, axis, size):
    # The repeats are read: a program counts them again on each replay (tokens repeat as often as they do).
    return counted(repeats, indices, times=np.size(g) // max(np.size(indices), 1)), 0


def _index_values(a):
    """What of a constant operand the work and the sparsity pattern of a gather or scatter-add by it depend on:
    an index's values (their repeats, and the positions they join)."""
    a = np.asarray(a)
    return (a.dtype.str, a.tobytes()) if a.dtype.kind in "iu" else None


def _take_at_vjp(needs, out, x, indices, axis):
    size = np.shape(x)[axis]
    return lambda g: (scatter_add_at(g, indices, axis=axis + 1, size=size) if needs[0] else None, None)


def _scatter_add_at_vjp(needs, out, g, indices, axis, size):
    return lambda c: (take_at(c, indices, axis=axis + 1) if needs[0] else None, None)


take_at = register(Primitive(
    "take_at", lambda x, indices, axis: np.take(x, indices, axis=axis), free,
    jvp=lambda tangents, out, x, indices, axis: take_at(tangents[0], indices, axis=axis + 1),
    vjp=_take_at_vjp, constant_key=_index_values, structure="move_at", array_params=(),
))
scatter_add_at = register(Primitive(
    "scatter_add_at", _scatter_add_impl, _scatter_add_at_cost,
    jvp=lambda tangents, out, g, indices, axis, size: scatter_add_at(tangents[0], indices, axis=axis + 1, size=size),
    vjp=_scatter_add_at_vjp, constant_key=_index_values, structure="scatter_at", array_params=(),
))


def _put_at_impl(a, v, positions):
    """a, with v's elements at `positions` along the last axis: ``out[..., positions] = v`` in a copy (v's
    leading axes broadcast against a's). The positions do not repeat (`inplace` writes that way only then)."""
    out = np.array(a, copy=True)
    out[..., positions] = v
    return out


def _put_at_jvp(tangents, out, a, v, positions):
    ta, tv = tangents[:2]
    if ta is None:  # a constant array written into: its tangent is zero where v's does not land
        ta = np.zeros((batch(tv),) + np.shape(a), dtype=np.result_type(tv))
    return put_at(ta, np.zeros((1, 1), dtype=ta.dtype) if tv is None else tv, positions)


def _put_at_vjp(needs, out, a, v, positions):
    def pullback(g):  # what was written over reaches a no more; each value gets its position's cotangent
        ga = put_at(g, np.zeros((1, 1), dtype=g.dtype), positions) if needs[0] else None
        return ga, take_at(g, positions, axis=g.ndim - 1) if needs[1] else None, None

    return pullback


put_at = register(Primitive(  # `put` with its positions an operand: labels' positions, recomputed as take_at's
    "put_at", _put_at_impl, free, jvp=_put_at_jvp, vjp=_put_at_vjp, constant_key=_index_values,
    structure="move_at", array_params=(),
))


# --- writing elements: item assignment -----------------------------------------
def _put_impl(a, v, indices, picks):
    """a, with its elements at `indices` along the last axis taking v's at `picks`:
    ``out[..., indices] = v[..., picks]`` in a copy (v's leading axes broadcast against a's)."""
    out = np.array(a, copy=True)
    out[..., indices] = v[..., picks]
    return out


def _put_jvp(tangents, out, a, v, indices, picks):
    ta, tv = tangents
    if ta is None:  # a constant array written into: its tangent is zero where v's does not land
        ta = np.zeros((batch(tv),) + np.shape(a), dtype=np.result_type(tv))
    if tv is None:  # a constant written: zero tangent there
        tv = np.zeros((1,) * np.ndim(a) + (1,), dtype=np.result_type(ta))
        picks = np.zeros_like(picks)
    return put(ta, tv, indices=indices, picks=picks)


def _put_vjp(needs, out, a, v, indices, picks):
    v_shape = np.shape(v)

    def pullback(g):
        ga = vg = None
        if needs[0]:  # what was written over reaches a no more
            ga = put(g, np.zeros((1,) * g.ndim, dtype=np.result_type(g)), indices=indices,
                     picks=np.zeros_like(picks))
        if needs[1]:
            vg = written(g, v_shape, indices, picks)
        return ga, vg

    return pullback


def written(g, v_shape, indices, picks):
    """The cotangent of the values a write (`put`) placed: g at `indices`, each of v's elements gathering
    the places it was written to (`picks`): a gather alone where each of v's elements went to one place, in
    order (``y[i] = v``, ``y[a:b] = w``), and a scatter-add of it would only copy."""
    last = g.ndim - 1
    gathered = take(g, indices, last)
    if len(picks) != v_shape[-1] or not np.array_equal(picks, np.arange(len(picks))):
        gathered = scatter_add(gathered, picks, last, v_shape[-1])
    return unbroadcast(gathered, v_shape)


put = register(Primitive(  # its index arrays are made for it, read-only: nothing for a tape to keep
    "put", _put_impl, free, jvp=_put_jvp, vjp=_put_vjp, structure="move", array_params=(),
))


# --- concatenate ------------------------------------------------------------
def _concatenate_jvp(tangents, out, *xs, axis):
    known = next(t for t in tangents if t is not None)
    zeros = lambda x: np.zeros((batch(known),) + np.shape(x), dtype=np.result_type(known))  # noqa: E731
    parts = [t if t is not None else zeros(x) for t, x in zip(tangents, xs)]
    return concatenate(*parts, axis=axis + 1)


def _concatenate_vjp(needs, out, *xs, axis):
    bounds = np.cumsum([0] + [np.shape(x)[axis] for x in xs])

    def pullback(g):
        before = (slice(None),) * (axis + 1)
        return tuple(
            getitem(g, before + (slice(lo, hi),)) if need else None
            for need, lo, hi in zip(needs, bounds[:-1], bounds[1:])
        )

    return pullback


concatenate = register(Primitive(
    "concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis), free,
    jvp=_concatenate_jvp, vjp=_concatenate_vjp, structure="move", array_params=(),
))
