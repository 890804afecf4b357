"""NumPy's functions that write into an array in place, on traced arrays: item assignments.

``np.copyto``, ``np.put``, ``np.putmask``, ``np.place``, ``np.fill_diagonal`` and
``np.put_along_axis`` write into their first argument. Into a traced array (a view of one, or an
array made like x) each is the item assignment it amounts to
(`inplace.assign`), with NumPy's rules for which value lands where: values
repeated cyclically, the index modes of ``put``, the ``wrap`` of
``fill_diagonal``. Into a plain array a traced value is refused, since NumPy
would store its number and drop its derivative; values without a derivative
(an array made like x) are written by NumPy's own function.

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
from .inplace import as_objects, assign, cycled
from .numpy_api import first_argument, implements, is_traced


def _writer(numpy_fn):
    """Register the function below as `numpy_fn` on traced arguments. It writes into a traced first
    argument; into a plain one, NumPy's own function runs when no argument has a derivative to drop
    (arrays made like x are read as their values), and a traced value is refused."""
    split = first_argument(numpy_fn)  # the destination, which f may pass by keyword

    def register(write):
        def dispatch(*args, **kwargs):
            a, args = split(args, kwargs)
            if is_traced(a):
                return write(a, *args, **kwargs)
            if type(a) is np.ndarray and a.dtype == object:  # traced elements (np.asarray(x)): NumPy's own
                return numpy_fn(a, *map(as_objects, args), **{k: as_objects(v) for k, v in kwargs.items()})
            from .tracing import plain_operands  # which needs the NumPy functions, and they this module

            plain = plain_operands((a, *args), kwargs)
            if plain is None:
                raise TypeError(f"numpy.{numpy_fn.__name__} writes into an array in place, which would drop the "
                                "derivative of what it writes into a plain array; write into an array made like x "
                                "instead (np.zeros_like(x)), or build a new array (np.broadcast_to(src, shape), "
                                "np.where(mask, src, dst))")
            return numpy_fn(*plain[0], **plain[1])

        implements(numpy_fn)(dispatch)
        return write

    return register


def _write(a, positions: np.ndarray, values) -> None:
    """Write `values` (None: nothing) at the flat `positions` of traced `a`."""
    if not positions.size or values is None:
        return
    if not np.ndim(a):  # one element, written at each position in turn: the last write stays, as in NumPy
        assign(a, (), values[-1])
        return
    assign(a, np.unravel_index(positions, np.shape(a)), values)


@_writer(np.copyto)
def copyto(dst, src, casting="same_kind", where=True):
    api._reject("copyto", None if casting == "same_kind" else casting, "casting")
    assign(dst, Ellipsis, api.broadcast_to(src, np.shape(dst)) if where is True else api.where(where, src, dst))


@_writer(np.put)
def put(a, ind, v, mode="raise"):
    ind = np.ravel(ind).astype(np.intp)  # NumPy truncates float indices
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
    _write(a, ind % size, cycled(v, np.arange(ind.size)))


@_writer(np.putmask)
def putmask(a, mask, values):
    if np.size(mask) != np.size(a):
        raise ValueError("putmask: mask and data must be the same size")
    where = np.flatnonzero(mask)
    _write(a, where, cycled(values, where))  # a.flat[n] = values.flat[n % values.size] where mask.flat[n]


@_writer(np.place)
def place(arr, mask, vals):
    if np.size(mask) != np.size(arr):
        raise ValueError("place: mask and data must be the same size")
    where = np.flatnonzero(mask)
    values = cycled(vals, np.arange(where.size))  # the first len(where) values, repeated
    if where.size and values is None:
        raise ValueError("Cannot insert from an empty array!")
    _write(arr, where, values)


@_writer(np.fill_diagonal)
def fill_diagonal(a, val, wrap=False):
    marks = np.zeros(np.shape(a), dtype=bool)
    np.fill_diagonal(marks, True, wrap)  # NumPy's own: its shape checks and its wrap
    where = np.flatnonzero(marks)
    _write(a, where, cycled(val, np.arange(where.size)))


@_writer(np.put_along_axis)
def put_along_axis(arr, indices, values, axis):
    numbers = np.arange(np.size(arr))  # arr's flat positions, read along the axis as NumPy reads them
    if axis is not None:
        numbers = numbers.reshape(np.shape(arr))
    at = np.take_along_axis(numbers, np.asarray(indices), 0 if axis is None else axis)
    assign(arr, np.unravel_index(at, np.shape(arr)), values)
