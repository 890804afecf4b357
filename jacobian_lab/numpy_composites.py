"""More of NumPy on traced arrays, composed from the functions of `numpy_api`.

Nothing here is a primitive, so nothing here needs a rule. diag, diagonal,
roll, pad, sort, split and take_along_axis are *index maps*: a gather of the
input's flat positions, which costs no flops and whose transpose is a
scatter-add. Queries that only read values (argsort, argmax, allclose, ...)
run on the primal values and return plain arrays. Statistics live in
`numpy_statistics`, products, norms and convolutions in `numpy_linalg`,
einsum in `numpy_einsum`.
"""
from __future__ import annotations

import numpy as np

from . import numpy_api as api
from .numpy_api import implements, is_traced, normalize_axis
from .primitives import observe
from .rules import elementwise as E
from .rules import shape as S


def primal(value):
    """The plain array under any number of tracers."""
    while is_traced(value):
        value = value.primal
    return value


def as_float(v):
    """A traced value as it is, anything else as an array of at least float64 precision."""
    if is_traced(v):
        return v
    v = np.asarray(v)
    return v.astype(np.result_type(v, np.float64), copy=False)


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


def _moves(fn):
    """A NumPy function that only moves values, run on a's flat positions: a gather, 0 flops."""
    return lambda a, *args, **kwargs: gather(a, fn(_positions(a), *args, **kwargs))


for _fn in (np.fliplr, np.flipud, np.rot90, np.delete, np.resize):
    implements(_fn)(_moves(_fn))


def _triangle(fn):
    # the positions shifted by one, so that the zeros fn writes become -1: read as the 0 fill
    return lambda m, k=0: gather(m, fn(_positions(m) + 1, k) - 1, fill=0.0)


implements(np.tril)(_triangle(np.tril))
implements(np.triu)(_triangle(np.triu))


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


@implements(np.meshgrid)
def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    ndim = len(xi)
    shapes = [(1,) * i + (-1,) + (1,) * (ndim - i - 1) for i in range(ndim)]
    if indexing == "xy" and ndim > 1:  # the first two axes swapped, as NumPy does
        shapes[0], shapes[1] = (1, -1) + shapes[0][2:], (-1, 1) + shapes[1][2:]
    grids = [api.reshape(v, s) for v, s in zip(xi, shapes)]
    if sparse:
        return tuple(grids)
    full = np.broadcast_shapes(*(np.shape(g) for g in grids))
    return tuple(api.broadcast_to(g, full) for g in grids)


@implements(np.append)
def append(arr, values, axis=None):
    if axis is None:
        return api.concatenate([api.ravel(arr), api.ravel(values)])
    return api.concatenate([arr, values], axis=axis)


def numpy2(owner, name):
    """`implements` for a NumPy 2 name, or a no-op where the installed NumPy lacks it."""
    fn = getattr(owner, name, None)
    return implements(fn) if fn is not None else (lambda impl: impl)


@numpy2(np, "unstack")
def unstack(x, /, *, axis=0):
    if np.ndim(x) == 0:
        raise ValueError("Input array must be at least 1-d.")
    axis = normalize_axis(axis, np.ndim(x))[0]
    before = (slice(None),) * axis
    return tuple(S.getitem(x, before + (i,)) for i in range(np.shape(x)[axis]))


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


@implements(np.sinc)
def sinc(x):
    """sin(pi x) / (pi x), and 1 at x = 0 with derivative 0.

    The "double where": x = 0 is replaced before dividing and the limit selected after,
    so no 0/0 reaches a rule. The branch not selected still runs, and in reverse mode
    the zero cotangent `where` passes it would meet the division's 0/0 partials: NaN.
    """
    zero = E.equal(x, 0)
    y = E.multiply(np.pi, E.where(zero, 1.0, x))
    return E.where(zero, 1.0, E.divide(E.sin(y), y))
