"""Arrays kept for later as they are now: what a tape or a compiled program reads after f ran.

f may write into an array after using it (a buffer it reuses, an array it closes over changed
between calls), while a reverse sweep or a replay reads it later. A kept array is therefore a
read-only copy, unless its values cannot change already: its memory belongs to a read-only array
that owns it (so ``W.flags.writeable = False`` lets a large constant be kept as it is). Both
engines take their constant operands this way, the forward one although it reads them at once:
NumPy's kernels may round differently on a copy than on a strided view, and the orders then
compute with the same arrays.

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
