"""Arrays kept for later as they are now: what a tape or a compiled program reads after f ran.

f may write into an array after using it (a buffer it reuses, an array it closes over changed
between calls), while a reverse sweep or a replay reads it later. A kept array is therefore a
read-only copy, unless its values cannot change already: its memory belongs to a read-only array
that owns it (so ``W.flags.writeable = False`` lets a large constant be kept as it is).

The copy has the array's own memory layout, strides and all, not a contiguous one: NumPy's
kernels may round differently on a copy than on a strided view (a product's output takes the
layout of its operands, and a matrix product or a sum over it then adds in another order), and
the forward engine, which reads its constants at once, takes them as they are. Both orders then
compute with the same layouts, and a copy costs only the bytes the array spans: a broadcast
(a stride of 0) stays one, kept as the one row it repeats (`copy`).

The parameters of a primitive are kept the same way where they may hold a plain array
(`kept_params`, by the primitive's `array_params`): clip's bounds, a gather's indices.

>>> import numpy as np
>>> buffer = np.zeros(2)
>>> kept = snapshot(buffer)
>>> buffer[0] = 1.0
>>> kept, snapshot(kept) is kept
(array([0., 0.]), True)
"""
from __future__ import annotations

import numpy as np


def root(array: np.ndarray) -> np.ndarray:
    """The array whose memory `array` is (itself, or the base of the view it is)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def immutable(array: np.ndarray) -> bool:
    """Whether `array`'s values are taken as fixed: its memory is a read-only array's own. NumPy cannot
    tell whether a writeable view of it is left or the owner is made writeable again; the README asks
    callers who make an array read-only not to."""
    owner = root(array)
    return owner.base is None and not owner.flags.writeable


def snapshot(array: np.ndarray) -> np.ndarray:
    """`array` as it is now, for good: itself when `immutable`, else a read-only `copy`."""
    if immutable(array):
        return array
    kept = copy(array)
    kept.flags.writeable = False
    root(kept).flags.writeable = False  # the buffer it views: `immutable`
    return kept


def same_bytes(kept: np.ndarray, value: np.ndarray) -> bool:
    """Whether `value` holds exactly what `kept`, a snapshot of it, does: the same dtype, shape and bits
    (-0.0 is not 0.0, NaN is NaN); an object array never matches.

    >>> import numpy as np
    >>> same_bytes(np.zeros(2), np.zeros(2)), same_bytes(np.zeros(2), -np.zeros(2))
    (True, False)
    """
    size = value.dtype.itemsize
    if kept.dtype != value.dtype or value.dtype.hasobject:
        return False
    if size not in (1, 2, 4, 8):  # longdouble, structured dtypes: their bytes
        return kept.shape == value.shape and kept.tobytes() == value.tobytes()
    as_bits = np.dtype(f"u{size}")
    return bool(np.array_equal(kept.view(as_bits), value.view(as_bits)))


#: A strided view is copied with its strides when the bytes it spans are at most this many times
#: its own: a column of a large matrix is copied compactly instead (its axes in the same order).
SPAN_FACTOR = 2


def copy(array: np.ndarray, faithful: bool = False) -> np.ndarray:
    """A copy of `array` with the same strides, holding only the bytes its elements span.

    An axis of stride 0 (a broadcast) keeps its stride, over a copy of the one row it repeats,
    so ``np.broadcast_to(b, (300, 4000))`` costs ``b``'s bytes. A view spanning more than
    `SPAN_FACTOR` times its own bytes (a column of a large matrix) is copied compactly, with its
    axes in the same order; `faithful`, for an x that f reads, in the layout `layout` gives it,
    which NumPy reads as it reads the view's (a gap where the view's axes do not follow each other).

    >>> import numpy as np
    >>> b = np.arange(3.0)
    >>> wide = copy(np.broadcast_to(b, (1000, 3)))
    >>> wide.strides, root(wide).nbytes, copy(np.ones((4, 6))[::2, ::-1].T).strides
    ((0, 8), 24, (-8, 96))
    """
    if type(array) is not np.ndarray or array.dtype.hasobject or array.flags.c_contiguous \
            or array.flags.f_contiguous or array.size == 0:
        return array.copy(order="K")  # the same strides already (a subclass stays one)
    shape, strides = array.shape, array.strides
    repeated = [n > 1 and s == 0 for n, s in zip(shape, strides)]
    core = array[tuple([slice(0, 1) if r else slice(None) for r in repeated])] if any(repeated) else array
    if _span(core, core.strides) <= SPAN_FACTOR * core.nbytes:
        kept = core.strides
    else:
        kept = layout(core) if faithful else _compact(core)
    copied = laid_out(core, kept)
    if not any(repeated):
        return copied
    offset = copied.__array_interface__["data"][0] - copied.base.__array_interface__["data"][0]
    return np.ndarray(shape, array.dtype, copied.base, offset, tuple([0 if r else s for r, s in zip(repeated, kept)]))


def _compact(array: np.ndarray) -> tuple:
    """Contiguous strides for `array`'s elements, innermost axis first as in `array`."""
    kept, step = [0] * array.ndim, array.itemsize
    for axis in sorted(range(array.ndim), key=lambda a: abs(array.strides[a])):
        kept[axis], step = step, step * array.shape[axis]
    return tuple(kept)


def layout(array: np.ndarray):
    """What NumPy reads of `array`'s memory layout: "C" or "F" for a contiguous array, else the strides
    of a compact copy with the same reading: its axes in the same order in memory and direction, a
    gap of one element wherever two of them do not follow each other, and after an innermost axis
    that is not contiguous. Reshapes of such a copy are views where the array's are, and
    ``ravel("A")`` reads it in the same order; the same layout for every column of any matrix.

    >>> import numpy as np
    >>> layout(np.ones((2, 3))), layout(np.ones((2, 3)).T), layout(np.ones((5, 7))[:, 1]), layout(np.ones(9)[::-3])
    ('C', 'F', (16,), (-16,))
    """
    flags = array.flags
    if flags.c_contiguous or flags.f_contiguous:
        return "C" if flags.c_contiguous else "F"
    shape, strides, size = array.shape, array.strides, array.itemsize
    kept, previous = [size if s else 0 for s in strides], None
    moving = [a for a in range(array.ndim) if shape[a] > 1 and strides[a]]
    for axis in sorted(moving, key=lambda a: (abs(strides[a]), -a)):  # innermost first; of a tie the later, as NumPy
        if previous is None:
            stride = size if abs(strides[axis]) == size else 2 * size
        else:
            follows = abs(strides[axis]) == abs(strides[previous]) * shape[previous]
            stride = abs(kept[previous]) * shape[previous] + (0 if follows else size)
        kept[axis], previous = (stride if strides[axis] > 0 else -stride), axis
    return tuple(kept)


def laid_out(array: np.ndarray, strides: tuple) -> np.ndarray:
    """A copy of `array` with these byte strides (negative ones too), over just the bytes they span."""
    low = sum([(n - 1) * s for n, s in zip(array.shape, strides) if s < 0])
    new = np.ndarray(array.shape, array.dtype, np.empty(_span(array, strides), np.uint8), -low, strides)
    np.copyto(new, array)
    return new


def relaid(array: np.ndarray, wanted) -> np.ndarray:
    """`array`, or a copy of it in the layout `wanted` (what `layout` gives) when it has another one."""
    if layout(array) == wanted:
        return array
    return np.array(array, order=wanted) if isinstance(wanted, str) else laid_out(array, wanted)


def _span(array: np.ndarray, strides) -> int:
    """The bytes `array`'s elements span when laid out with `strides`."""
    return sum([(n - 1) * abs(s) for n, s in zip(array.shape, strides)]) + array.itemsize


def kept_params(names, params: dict, keep=snapshot) -> dict:
    """`params` as a tape keeps them: each plain array in a parameter of `names` (a primitive's
    `array_params`; None: every one), top level or in a tuple or list, through `keep` (`snapshot`,
    or a tape's `keep`, which counts its copies); `params` itself when there is none to copy."""
    kept = None
    for key in params if names is None else names:
        value = params.get(key)
        new = _kept(value, keep)
        if new is not value:
            if kept is None:
                kept = dict(params)
            kept[key] = new
    return params if kept is None else kept


def _kept(value, keep):
    if isinstance(value, np.ndarray):
        return keep(value)
    if type(value) in (tuple, list):
        items = [_kept(v, keep) for v in value]
        if any(new is not old for new, old in zip(items, value)):
            return type(value)(items)
    return value
