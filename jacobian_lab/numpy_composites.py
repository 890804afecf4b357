"""More of NumPy on traced arrays, composed from the functions of `numpy_api`.

Nothing here is a primitive, so nothing here needs a rule: statistics are
arithmetic and reductions; diag, diagonal, roll, pad, sort, split and
take_along_axis are *index maps* (a gather of the input's flat positions,
which costs no flops and whose transpose is a scatter-add); tensordot and
norm reduce to matmul and reductions. Queries that only read values (argsort,
argmax, allclose, ...) run on the primal values and return plain arrays.
"""
from __future__ import annotations

import numpy as np

from . import numpy_api as api
from .numpy_api import implements, is_traced, normalize_axis
from .primitives import observe
from .rules import elementwise as E
from .rules import reductions as R
from .rules import shape as S


def primal(value):
    """The plain array under any number of tracers."""
    while is_traced(value):
        value = value.primal
    return value


# --- index maps: gather flat positions, 0 flops -------------------------------------
def gather(a, positions, fill=None):
    """a.ravel()[positions], where -1 positions read `fill` (a plain scalar)."""
    positions = np.asarray(positions)
    flat = api.ravel(a)
    if fill is not None:
        # the fill slot takes a's dtype, so a float32 array stays float32 as in np.pad
        flat = api.concatenate([flat, np.full(1, fill, dtype=np.result_type(primal(a)))])
        positions = np.where(positions < 0, np.size(a), positions)
    return api.reshape(S.take(flat, positions.ravel(), axis=0), positions.shape)


def _positions(a):
    return np.arange(np.size(a)).reshape(np.shape(a))


@implements(np.diagonal)
def diagonal(a, offset=0, axis1=0, axis2=1):
    return gather(a, np.diagonal(_positions(a), offset, axis1, axis2))


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
        return gather(array, np.pad(_positions(array), pad_width, mode=mode, **kwargs))
    if mode != "constant":
        raise api.unsupported(f"numpy.pad with mode={mode!r} (use constant, edge, wrap, reflect or symmetric)")
    value = kwargs.pop("constant_values", 0)
    if kwargs or np.ndim(value) != 0 or is_traced(value):
        raise api.unsupported("numpy.pad with array or traced constant_values (give one plain scalar)")
    return gather(array, np.pad(_positions(array), pad_width, constant_values=-1), fill=float(value))


@implements(np.sort)
def sort(a, axis=-1, kind=None, order=None, **kwargs):
    if axis is None:
        a, axis = api.ravel(a), 0
    order_ = observe(np.argsort, primal(a), axis=axis, kind="stable")
    return gather(a, np.take_along_axis(_positions(a), order_, axis))


@implements(np.take_along_axis)
def take_along_axis(arr, indices, axis=-1):
    if axis is None:
        arr, axis = api.ravel(arr), 0
    return gather(arr, np.take_along_axis(_positions(arr), np.asarray(indices), axis))


@implements(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    axis = normalize_axis(axis, np.ndim(ary))[0]
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


@implements(np.append)
def append(arr, values, axis=None):
    if axis is None:
        return api.concatenate([api.ravel(arr), api.ravel(values)])
    return api.concatenate([arr, values], axis=axis)


# --- statistics ----------------------------------------------------------------
@implements(np.diff)
def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    axis = normalize_axis(axis, np.ndim(a))[0]
    parts = [v for v in (prepend, a, append) if v is not np._NoValue]
    if len(parts) > 1:
        a = api.concatenate([v if np.ndim(v) else api.broadcast_to(v, _with(np.shape(a), axis, 1)) for v in parts],
                            axis=axis)
    before = (slice(None),) * axis
    for _ in range(n):
        a = E.subtract(S.getitem(a, before + (slice(1, None),)), S.getitem(a, before + (slice(None, -1),)))
    return a


def _with(shape, axis, size):
    return shape[:axis] + (size,) + shape[axis + 1:]


@implements(np.var)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    api._reject("var", out, "out")
    centred = E.subtract(a, api.mean(a, axis=axis, keepdims=True))
    count = int(np.prod([np.shape(a)[i] for i in normalize_axis(axis, np.ndim(a))], dtype=np.int64))
    total = api._reduction(R.sum, E.square(centred), axis, keepdims)
    return E.divide(total, max(count - ddof, 0))


@implements(np.std)
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    return E.sqrt(var(a, axis=axis, out=out, ddof=ddof, keepdims=keepdims))


@implements(np.average)
def average(a, axis=None, weights=None, returned=False, keepdims=False):
    if weights is None:
        result, weight_sum = api.mean(a, axis=axis, keepdims=keepdims), None
    else:
        if np.ndim(weights) == 1 and np.ndim(a) > 1:
            weights = api.reshape(weights, _with((1,) * np.ndim(a), normalize_axis(axis, np.ndim(a))[0], -1))
        full = np.broadcast_shapes(np.shape(a), np.shape(weights))
        weight_sum = api._reduction(R.sum, api.broadcast_to(weights, full), axis, keepdims)
        result = E.divide(api._reduction(R.sum, E.multiply(a, weights), axis, keepdims), weight_sum)
    return (result, weight_sum) if returned else result


# --- linear algebra ----------------------------------------------------------------
@implements(np.tensordot)
def tensordot(a, b, axes=2):
    if np.ndim(axes) == 0:
        k = int(axes)
        axes_a, axes_b = list(range(np.ndim(a) - k, np.ndim(a))), list(range(k))
    else:
        axes_a, axes_b = ([int(x)] if np.ndim(x) == 0 else [int(i) for i in x] for x in axes)
    axes_a = [x % np.ndim(a) for x in axes_a]
    axes_b = [x % np.ndim(b) for x in axes_b]
    free_a = [i for i in range(np.ndim(a)) if i not in axes_a]
    free_b = [i for i in range(np.ndim(b)) if i not in axes_b]
    shape_a, shape_b = np.shape(a), np.shape(b)
    k = int(np.prod([shape_a[i] for i in axes_a], dtype=np.int64))
    left = api.reshape(api.transpose(a, free_a + axes_a), (-1, k))
    right = api.reshape(api.transpose(b, axes_b + free_b), (k, -1))
    out_shape = tuple(shape_a[i] for i in free_a) + tuple(shape_b[i] for i in free_b)
    return api.reshape(api.matmul(left, right), out_shape)


@implements(np.inner)
def inner(a, b):
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return E.multiply(a, b)
    return tensordot(a, b, axes=([-1], [-1]))


@implements(np.vdot)
def vdot(a, b):
    return api.matmul(api.ravel(a), api.ravel(b))


@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    """Vector norms (None/2, 1, inf, -inf, p) and the Frobenius / 1 / inf matrix norms."""
    nd = np.ndim(x)
    if axis is None and (ord is None or (ord == "fro" and nd == 2)):
        return E.sqrt(api._reduction(R.sum, E.square(x), None, keepdims))
    axes = normalize_axis(tuple(range(nd)) if axis is None else axis, nd)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    reduce = lambda prim, v: api._reduction(prim, v, axes, keepdims)  # noqa: E731
    if ord is None or ord == 2:
        return E.sqrt(reduce(R.sum, E.square(x)))
    if ord == 1:
        return reduce(R.sum, E.absolute(x))
    if ord == np.inf:
        return reduce(R.max, E.absolute(x))
    if ord == -np.inf:
        return reduce(R.min, E.absolute(x))
    if isinstance(ord, (int, float)) and ord > 0:
        return E.power(reduce(R.sum, E.power(E.absolute(x), ord)), 1.0 / ord)
    raise api.unsupported(f"numpy.linalg.norm with ord={ord!r}")


def _matrix_norm(x, ord, axes, keepdims):
    row, col = axes
    if ord in (None, "fro"):
        return E.sqrt(api._reduction(R.sum, E.square(x), axes, keepdims))
    if ord in (1, np.inf):
        inner_axis, outer_axis = (row, col) if ord == 1 else (col, row)
        sums = api._reduction(R.sum, E.absolute(x), inner_axis, True)
        return api._reduction(R.max, sums, outer_axis if keepdims else axes, keepdims)
    raise api.unsupported(f"numpy.linalg.norm with ord={ord!r} (singular values)")


# --- values only: no derivative flows through these -----------------------------
def _on_primal(fn):
    return lambda *args, **kwargs: observe(fn, *(primal(a) for a in args), **{k: primal(v) for k, v in kwargs.items()})


for _fn in (np.argsort, np.argmax, np.argmin, np.argwhere, np.nonzero, np.flatnonzero, np.count_nonzero,
            np.any, np.all, np.isclose, np.allclose, np.array_equal, np.searchsorted):
    implements(_fn)(_on_primal(_fn))
implements(np.iscomplexobj)(lambda x: False)
implements(np.isrealobj)(lambda x: True)
implements(np.real)(lambda val: val)
implements(np.imag)(lambda val: np.zeros(np.shape(val)))


@implements(np.round, np.around)
def round_(a, decimals=0, out=None):
    api._reject("round", out, "out")
    scale = 10.0 ** decimals
    return E.divide(E.rint(E.multiply(a, scale)), scale) if decimals else E.rint(a)
