"""NumPy's functions that write into an array in place, on traced arrays: item assignments.

``np.copyto``, ``np.put``, ``np.putmask``, ``np.place`` and ``np.fill_diagonal``
write into their first argument. Into a traced array (a view of one, or an
array made like x) each is the item assignment it amounts to
(`inplace.assign`), with NumPy's rules for which value lands where: values
repeated cyclically, the index modes of ``put``, the ``wrap`` of
``fill_diagonal``. Into a plain array a traced value is refused, since NumPy
would store its number and drop its derivative.

>>> import numpy as np, jacobian_lab as jl
>>> def f(x):
...     A = np.zeros_like(x, shape=(2, 2))
...     np.fill_diagonal(A, x)
...     return A
>>> jl.jacobian(f, np.array([1.0, 2.0]))[:, :, 1]
array([[0., 0.],
       [0., 1.]])
"""
from __future__ import annotations

import numpy as np

from . import numpy_api as api
from .inplace import assign
from .numpy_api import implements, is_traced


def _into(name: str, a):
    """Refuse writing into a plain array `a` (a traced value would lose its derivative there)."""
    if not is_traced(a):
        raise TypeError(f"numpy.{name} writes into an array in place, which would drop the derivative of what it "
                        "writes into a plain array; write into an array made like x instead (np.zeros_like(x)), "
                        "or build a new array (np.broadcast_to(src, shape), np.where(mask, src, dst))")


def _cycled(values, positions: np.ndarray):
    """`values` flattened and repeated as often as needed, read at `positions`: what NumPy's put,
    putmask, place and fill_diagonal write."""
    flat = api.ravel(values) if is_traced(values) else np.ravel(values)
    if not np.size(flat):
        raise ValueError("cannot write from an empty array of values")
    picks = positions % np.size(flat)
    return api.getitem(flat, picks) if is_traced(flat) else flat[picks]


def _flat(a, positions):
    """An index into `a` for its flat positions."""
    return np.unravel_index(positions, np.shape(a))


@implements(np.copyto)
def copyto(dst, src, casting="same_kind", where=True):
    _into("copyto", dst)
    api._reject("copyto", None if casting == "same_kind" else casting, "casting")
    assign(dst, Ellipsis, api.broadcast_to(src, np.shape(dst)) if where is True else api.where(where, src, dst))


@implements(np.put)
def put(a, ind, v, mode="raise"):
    _into("put", a)
    ind = np.ravel(ind)
    size = np.size(a)
    if mode == "wrap":
        ind = ind % size
    elif mode == "clip":  # negative indices clip to 0 as well
        ind = np.clip(ind, 0, size - 1)
    elif mode != "raise":
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    elif ind.size and (ind.max() >= size or ind.min() < -size):
        bad = ind[(ind >= size) | (ind < -size)][0]
        raise IndexError(f"index {bad} is out of bounds for axis 0 with size {size}")
    if ind.size:
        assign(a, _flat(a, ind % size), _cycled(v, np.arange(ind.size)))


@implements(np.putmask)
def putmask(a, mask, values):
    _into("putmask", a)
    where = np.flatnonzero(np.broadcast_to(mask, np.shape(a)))
    if where.size:  # a.flat[n] = values.flat[n % values.size] where mask.flat[n]
        assign(a, _flat(a, where), _cycled(values, where))


@implements(np.place)
def place(arr, mask, vals):
    _into("place", arr)
    where = np.flatnonzero(np.broadcast_to(mask, np.shape(arr)))
    if where.size:  # the first len(where) values, repeated
        assign(arr, _flat(arr, where), _cycled(vals, np.arange(where.size)))


@implements(np.fill_diagonal)
def fill_diagonal(a, val, wrap=False):
    _into("fill_diagonal", a)
    marks = np.zeros(np.shape(a), dtype=bool)
    np.fill_diagonal(marks, True, wrap)  # NumPy's own: its shape checks and its wrap
    where = np.flatnonzero(marks)
    if where.size:
        assign(a, _flat(a, where), _cycled(val, np.arange(where.size)))
