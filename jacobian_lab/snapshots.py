"""Arrays kept for later as they are now: what a tape or a compiled program reads after f ran.

f may write into an array after using it (a buffer it reuses, an array it closes over changed
between calls), while a reverse sweep or a replay reads it later. A kept array is therefore a
read-only copy, unless its values cannot change already: its memory belongs to a read-only array
that owns it (so ``W.flags.writeable = False`` lets a large constant be kept as it is). Both
engines take their constant operands this way, the forward one although it reads them at once:
NumPy's kernels may round differently on a copy than on a strided view, and the orders then
compute with the same arrays.

The parameters of a primitive are kept the same way where they may hold a plain array
(`kept_params`): clip's bounds, the indices of a gather and of its transpose.

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
    """Whether `array`'s values can no longer change: its memory is a read-only array's own."""
    owner = root(array)
    return owner.base is None and not owner.flags.writeable


def snapshot(array: np.ndarray) -> np.ndarray:
    """`array` as it is now, for good: itself when `immutable`, else a read-only copy."""
    if immutable(array):
        return array
    copy = array.copy(order="K")  # the same memory layout: BLAS then rounds as it did on `array`
    copy.flags.writeable = False
    return copy


#: The parameters of jacobian_lab's primitives that may hold a plain array f can write into, by
#: primitive name: a tape keeps those through `snapshot` (`kept_params`).
ARRAY_PARAMS = {"clip": ("lo", "hi"), "take": ("indices",), "scatter_add": ("indices",)}
#: The primitives whose parameters never hold an array: axes, shapes, basic indices, dtypes, flags
#: and numbers. Their parameters are not looked through, which keeps their dispatch as cheap as it
#: was; a primitive in neither table (one registered elsewhere) has all of its parameters looked
#: through, so that none is missed.
PLAIN_PARAMS = frozenset([
    "astype", "broadcast_to", "cholesky", "concatenate", "cumprod", "cumsum", "eigh_values", "eigh_vectors",
    "eigvalsh", "embed", "getitem", "max", "mean", "min", "pinv", "polygamma", "prod", "reshape", "sum",
    "transpose",
])


def kept_params(name: str, params: dict) -> dict:
    """`params` of the primitive `name` as a tape keeps them: each plain array in a parameter that
    may hold one (top level, or in a tuple or list) through `snapshot`; `params` itself when there
    is none to copy."""
    kept = None
    for key in ARRAY_PARAMS.get(name, params):
        value = params.get(key)
        new = _kept(value)
        if new is not value:
            if kept is None:
                kept = dict(params)
            kept[key] = new
    return params if kept is None else kept


def _kept(value):
    if isinstance(value, np.ndarray):
        return snapshot(value)
    if type(value) in (tuple, list):
        items = [_kept(v) for v in value]
        if any(new is not old for new, old in zip(items, value)):
            return type(value)(items)
    return value
