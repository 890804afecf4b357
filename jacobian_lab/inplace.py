"""In-place operators (``y += v``) and item assignment (``y[i] = v``) on traced arrays, with NumPy's semantics.

NumPy changes the array itself, so every name bound to it sees the new values,
and so does every view of it. A traced array does the same: the tracer object
takes the result's value and derivative (`become`), and each of its live views
(``row`` of ``for row in Y``, a slice kept in a variable) is derived again from
the new value; the arrays themselves are never written to. A write into a view
(``v = y[1:]; v *= 3``, ``y[1:] *= 3``, ``row[0] = 1``) goes to the array it
views: that array becomes a copy of itself with the values put at the
view's positions (`write`), and its views, the written one included, are
derived again. Copies (``x.copy()``, ``np.copy``, ``+x``) are
distinct tracers, and a 0-d value that is no view is a NumPy scalar, as
reductions and indexing give one: immutable, so ``s += 1`` binds s anew (unless
NumPy gives it as a 0-d array, `array0`: ``np.zeros_like(x, shape=())``).

>>> import numpy as np, jacobian_lab as jl
>>> def f(x):
...     y = x * 1.0
...     z = y          # another name for the same array
...     z *= 2.0
...     return y       # NumPy returns 2x too
>>> jl.jacobian(f, np.ones(2))
array([[2., 0.],
       [0., 2.]])
"""
from __future__ import annotations

import functools
import weakref

import numpy as np

from . import snapshots
from .accounting import active_counter
from .primitives import Primitive, apply, frozen, is_traced, link_view, observe, primal, recomputed
from .rules import elementwise as E
from .rules import shape as S

_STATE: dict[type, tuple[str, ...]] = {}  # tracer class -> the slots that hold its value and derivative
#: The slots that are the object's, not its value's
ALIASING = frozenset(["_owner", "_path", "_views", "_mutable", "_readonly", "__weakref__"])


class ReadOnlyError(ValueError):
    """NumPy's "assignment destination is read-only", raised for a write into a traced array that NumPy's
    would refuse: x passed read-only, or a read-only view of a traced array."""


def state_slots(cls: type) -> tuple[str, ...]:
    slots = _STATE.get(cls)
    if slots is None:
        names = [s for c in cls.__mro__ for s in c.__dict__.get("__slots__", ())]
        _STATE[cls] = slots = tuple(s for s in names if s not in ALIASING)
    return slots


def clone(tracer):
    """A distinct tracer with `tracer`'s value and derivative: a copy, as NumPy makes one."""
    new = object.__new__(type(tracer))
    for slot in state_slots(type(tracer)):
        setattr(new, slot, getattr(tracer, slot))
    return new


def laid_out(tracer, order: str = "K"):
    """`tracer`, an array of its own, with its plain array in the memory order of NumPy's copy in
    `order` ("C", "F"; "K" and "A" as it lies, made contiguous), so that which of its reshapes are views
    (`note_view`) is NumPy's: a copy of ``a.T`` is C-ordered, its ``ravel()`` a view. Only the layout
    changes, never a value."""
    return _relaid(tracer, lambda value: None if contiguous(value, order) else np.array(value, order=order))


def _relaid(tracer, relay):
    """`tracer` with the plain array under it replaced by ``relay(array)`` unless that is None or the
    array itself. The values of enclosing traces it holds (nested derivatives) are copied on the way,
    not changed."""
    value = primal(tracer)
    if type(value) is not np.ndarray or (new := relay(value)) is None or new is value:
        return tracer
    new.flags.writeable = value.flags.writeable  # a constant stays read-only (`frozen`)
    counter = active_counter()
    if counter is not None:  # a recording (jit) recomputes the new array as it recomputes the old
        counter.copied(new, value)
    _lay(tracer, new)
    return tracer


def _lay(tracer, new: np.ndarray) -> None:
    """Put `new` under `tracer`, through copies of the tracers of enclosing traces between them."""
    while getattr(tracer.primal, "_trace", None) is not None:
        tracer.primal = tracer = clone(tracer.primal)
    tracer.primal = new


def contiguous(value: np.ndarray, order: str) -> bool:
    """Whether `value` lies in memory as a copy in `order` would: C or F order, or either for K and A."""
    flags = value.flags
    if order in ("C", "F"):
        return flags.c_contiguous if order == "C" else flags.f_contiguous
    return flags.c_contiguous or flags.f_contiguous


def laid_as(tracer, layout) -> None:
    """Lay `tracer`'s plain array out as `layout` (what `snapshots.layout` gives) says, if it is not."""
    _relaid(tracer, lambda value: snapshots.relaid(value, layout))


def scalar(tracer) -> bool:
    """Whether `tracer` stands for a NumPy scalar, as reductions and indexing give one: 0-d, no view, and
    not an array NumPy makes 0-d (`array0`). It is immutable: ``s += 1`` binds s anew."""
    return not tracer.ndim and getattr(tracer, "_owner", None) is None and not getattr(tracer, "_mutable", False)


def array0(value):
    """`value`, where it is a traced 0-d value that NumPy gives as an array (``np.zeros_like(x, shape=())``,
    ``np.copy(s)``): mutable, as NumPy's 0-d arrays are, so ``a[...] = v`` writes into it and ``a += v``
    reaches every name bound to it."""
    if getattr(value, "_trace", None) is not None and not value.ndim:
        value._mutable = True
    return value


def read_only(tracer) -> None:
    """Make `tracer`, the traced x, refuse writes into it and into its views, as NumPy's read-only x
    (``x.flags.writeable = False``, np.broadcast_to's) does; its copies are writeable."""
    tracer._readonly = True


def alias(tracer):
    """A new view of all of `tracer`, in its shape: what NumPy's ``x.T`` of a 1-d x, ``x.ravel()`` of a
    1-d x and ``x.view()`` give, another array object on the same memory (``v.shape = s`` leaves x as
    it is). A NumPy scalar (`scalar`) is itself."""
    if scalar(tracer):
        return tracer
    new = clone(tracer)
    link_view(new, tracer, (_same, {}))
    return new


def _same(value):
    return value


def unshared(result, operands, views: bool = True, itself: bool = True):
    """`result` of a NumPy function (or an index), as the caller sees it. A view of an operand (one
    of `operands`, positional or keyword) stays one when NumPy's function returns views (`views`);
    anything else is an array of its own: a copy NumPy makes (np.tile, np.full_like), or a view of
    an array made inside the function (einsum's scalar), which no one else can reach. An operand
    itself stays itself where NumPy's function may return its argument (`itself`, np.squeeze), and
    is a new view of it where NumPy's returns a new view object (np.ravel of a 1-d array).
    Tuples and lists: each item."""
    if type(result) in (tuple, list):
        return type(result)([unshared(item, operands, views, itself) for item in result])
    if not itself and any(result is a for a in _flat(operands)):
        return alias(result)
    owner = getattr(result, "_owner", None)
    if owner is None or any(result is a or views and owner is _owner_of(a) for a in _flat(operands)):
        return result  # (an argument itself, as np.linalg.matrix_power(M, 1) returns M)
    return clone(result)  # a new tracer, which the owner does not derive again


def _owner_of(value):
    owner = getattr(value, "_owner", None)
    return value if owner is None else owner


def _flat(operands):
    """The operands, and the items of those that are sequences (np.concatenate([a, b]))."""
    for a in operands:
        if type(a) in (tuple, list):
            yield from a
        else:
            yield a


def detach(tracer) -> None:
    """Make `tracer` an array of its own, not a view: the leaves of a structured x, which the harness
    cuts from one flat vector that f never sees."""
    tracer._owner = None


def operator(fn, symbol: str):
    """The method behind ``self <symbol>= other``: `fn` applied, then taken on by self itself."""
    combine = (lambda a, b: apply(fn, (a, b), {})) if isinstance(fn, Primitive) else fn

    def method(self, other):
        if scalar(self):
            return combine(self, other)  # a NumPy scalar is immutable: the name is bound anew, as in NumPy
        return become(self, combine(self, other), symbol)

    return method


def become(tracer, result, symbol: str):
    """`tracer`, holding `result` from now on in its shape and dtype. The array it views, if it is a
    view, takes the values too, and so does every live view of that array, as NumPy's memory does."""
    shape = tracer.shape
    if np.shape(result) != shape:
        raise ValueError(f"non-broadcastable output operand with shape {shape} doesn't match the broadcast "
                         f"shape {np.shape(result)} (in-place `{symbol}=` keeps the array's shape)")
    if getattr(tracer, "_owner", None) is not None:
        write(tracer, Ellipsis, _checked(tracer, result, f"in-place `{symbol}=`", f"v = v {symbol} w"))
    else:
        _replace(tracer, result, f"in-place `{symbol}=`", f"y = y {symbol} v")
    return tracer


def _checked(tracer, result, what: str, instead: str):
    """`result` in `tracer`'s dtype (float32 stays float32, as NumPy casts in place), once it is a
    value of tracer's own trace, which tracer can take on."""
    if type(result) is not type(tracer) or result._trace is not tracer._trace:
        raise TypeError(
            f"{what} would make this traced array "
            + ("one without a derivative (a floor)" if getattr(result, "_trace", None) is None else
               "a value of another derivative (f closes over the input of an enclosing one)")
            + f", which it cannot become; write `{instead}` instead")
    return result if result.dtype == tracer.dtype else result.astype(tracer.dtype)


def check_out(name: str, out, result) -> None:
    """NumPy's refusal of an ``out=`` array whose shape is not the result's (`name`: the function, numpy.cumsum)."""
    if np.shape(result) != np.shape(out):
        raise ValueError(f"{name}: out has shape {np.shape(out)}, where the result has shape {np.shape(result)}")


def traced_into_plain(name: str, symbol: str | None = None) -> TypeError:
    """The refusal of ``name(..., out=a)`` writing a traced result into a plain array a (`symbol`: the in-place
    operator that calls it so, ``a += v``)."""
    return TypeError(
        f"{name}(..., out=...) writes a traced result into a plain array, which would drop its derivative"
        + (f" (`a {symbol}= v` on a plain a is {name}(a, v, out=a))" if symbol else "")
        + "; make that array like x (np.zeros_like(x, shape=...)), which takes traced values, or assign the "
        f"result instead (y = {name.replace('numpy.', 'np.', 1)}(...))")


def assign(tracer, key, value) -> None:
    """``tracer[key] = value`` with NumPy's meaning: the elements `key` selects take `value`
    (broadcast; the last write wins where an index repeats), in the array tracer views if it is a
    view, and every live view sees them. A write moves values (0 flops, as slicing); ``y[mask] = c``
    with a boolean mask of y's shape, or of its leading axes (rows: ``Z[labels == 0] = 0``), and a plain c
    is ``np.where(mask, c, y)``, counted as that select.

    >>> import numpy as np, jacobian_lab as jl
    >>> def f(x):
    ...     y = np.sin(x)
    ...     y[1:] = x[:-1] ** 2
    ...     y[x > 1.5] = 0.0
    ...     return y
    >>> jl.jacobian(f, np.array([0.0, 1.0, 2.0]))
    array([[1., 0., 0.],
           [0., 0., 0.],
           [0., 0., 0.]])
    """
    if scalar(tracer):
        raise TypeError(f"'numpy.{tracer.dtype}' object does not support item assignment (a traced 0-d value "
                        "is a NumPy scalar, immutable: bind the name anew)")
    leading = _leading_mask(tracer, key)
    if leading is not None and np.size(value) == 1 and not is_traced(value):
        # y[mask] = c, the commonest: the select itself, which a compiled program recomputes with the mask
        _replace(tracer, E.where(leading, S.reshape(_fitted(value, (), tracer.dtype), ()), tracer))
    else:
        write(tracer, key, value)


def _leading_mask(tracer, key):
    """A boolean `key` of the shape of tracer's leading axes (whole slices or an ellipsis may follow it), with a
    length-1 axis for each of the others, where tracer is no view; else None."""
    if type(key) is tuple and key and all(part is Ellipsis or (type(part) is slice and part == slice(None))
                                          for part in key[1:]):
        key = key[0]  # Z[mask, :], Z[mask, ...]
    shape = getattr(key, "shape", None)
    if (getattr(tracer, "_owner", None) is not None or getattr(getattr(key, "dtype", None), "kind", None) != "b"
            or shape != tracer.shape[:len(shape)]):
        return None
    extra = tracer.ndim - len(shape)
    return S.reshape(key, shape + (1,) * extra) if extra else key


def write(tracer, key, value, flat: bool = False) -> None:
    """Write `value` into ``tracer[key]`` (``tracer.flat[key]`` with `flat`), that is, into the memory
    of the array `tracer` is a view of (or tracer itself): that array takes the new values, and its
    live views are derived again."""
    at = None if flat else _recomputed_destination(tracer, key)
    if at is not None:
        _replace(tracer, _written_at(tracer, at, value))
        return
    owner, at = _destination(tracer, key, flat)
    if _owner_of(value) is owner and np.shape(value) == at.shape and np.array_equal(positions(value), at):
        return  # `y[k] *= 2` hands the assignment the view of y it has just written through
    if flat and at.size and np.size(value) != at.size:  # y.flat[k] = v repeats v's elements, as NumPy's flatiter
        value = S.reshape(cycled(_values(value, owner.dtype), np.arange(at.size)), at.shape)
    _replace(owner, _written(owner, at, value))


def add_at(a, indices, b, subtract: bool = False) -> None:
    """``np.add.at(a, indices, b)`` (``np.subtract.at`` with `subtract`) into a traced array `a`:
    b's values added in order, each to the element its index names, repeats included, as NumPy
    adds them (one flop per index; subtracting negates b first)."""
    _refuse_plain(a, f"np.{'subtract' if subtract else 'add'}.at")
    owner, at = _destination(a, indices)
    b = _fitted(b, at.shape, owner.dtype)
    added = S.take(S.reshape(b, (-1,)), _elements(b, at.shape), axis=0)
    targets, bins = _distinct(at.reshape(-1), owner.size)
    targets = frozen(targets)  # read-only: nothing for a tape to copy
    # One sum per target, in NumPy's order: what it held first, then each value added to it
    held = S.take(S.reshape(owner, (owner.size,)), targets, axis=0)
    terms = S.concatenate(held, E.negative(added) if subtract else added, axis=0)
    bins = frozen(np.concatenate([np.arange(targets.size), bins.reshape(-1)]))
    sums = S.scatter_add(terms, bins, 0, targets.size)
    _replace(owner, S.reshape(S.put(S.reshape(owner, (owner.size,)), sums, indices=targets,
                                    picks=frozen(np.arange(targets.size))), owner.shape))


def _distinct(positions, size: int) -> tuple:
    """``np.unique(positions, return_inverse=True)`` of element positions in [0, size): found by marking them,
    with no sort, where size is at most a few times their count (a sort of 1e5 positions took 3 of an add.at
    gradient's 6 ms), else by np.unique."""
    if size > 8 * positions.size + 1024:
        return np.unique(positions, return_inverse=True)
    present = np.zeros(size, dtype=bool)
    present[positions] = True
    targets = np.flatnonzero(present)
    rank = np.empty(size, dtype=np.intp)
    rank[targets] = np.arange(targets.size)
    return targets, rank[positions]


def _refuse_plain(a, name: str) -> None:
    if not is_traced(a):
        raise TypeError(f"{name} into a plain array would drop the derivative of what it writes; make the array "
                        "like x (np.zeros_like(x)), which holds traced values")


def ufunc_at(ufunc, fn, a, indices, b=None) -> None:
    """``ufunc.at(a, indices[, b])`` into a traced array `a`, for a ufunc other than add: each indexed
    element becomes ``fn(element[, b's value])`` in order, a repeated index taking each of its values
    in turn, as NumPy's unbuffered loop does. The k-th occurrences of the indices are written in
    round k, one write of distinct positions each (as many rounds as an index repeats). `fn` is the
    ufunc's function on traced arrays."""
    _refuse_plain(a, f"np.{ufunc.__name__}.at")
    owner, at = _destination(a, indices)
    if b is not None:  # b's value for each index, in order
        b = _fitted(b, at.shape, owner.dtype)
        b = S.take(S.reshape(b, (np.size(b),)), _elements(b, at.shape), axis=0)
    at = at.reshape(-1)
    order = np.argsort(at, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(at[order])) + 1]
    rank = np.empty(at.size, dtype=np.intp)
    rank[order] = np.arange(at.size) - np.repeat(starts, np.diff(np.r_[starts, at.size]))  # occurrence number
    for k in range(int(rank.max(initial=-1)) + 1):
        picks = frozen(np.flatnonzero(rank == k))
        targets = frozen(at[picks])
        flat = S.reshape(owner, (owner.size,))
        held = S.take(flat, targets, axis=0)
        new = fn(held) if b is None else fn(held, S.take(b, picks, axis=0))
        _replace(owner, S.reshape(S.put(flat, new, indices=targets, picks=frozen(np.arange(targets.size))),
                                  owner.shape))


def cycled(values, positions: np.ndarray):
    """`values` flattened and repeated as often as needed, read at `positions`: what NumPy's flatiter,
    put, putmask, place and fill_diagonal write. None for no values, with which NumPy writes nothing."""
    flat = S.reshape(values, (np.size(values),)) if is_traced(values) else np.ravel(values)
    if not np.size(flat):
        return None
    picks = positions % np.size(flat)
    return S.take(flat, frozen(picks), axis=0) if is_traced(flat) else flat[picks]


def as_objects(value):
    """A traced value as the object array of its traced elements NumPy's own loops take (`Tracer.__array__`)."""
    return np.asarray(value) if is_traced(value) else value


def _destination(tracer, key, flat: bool = False):
    """(the array `tracer` views or tracer itself, the flat positions in it of ``tracer[key]``, or of
    ``tracer.flat[key]`` with `flat`: C order over tracer's own shape, whatever its strides)."""
    owner = _owner_of(tracer)
    if tracer is not owner and any(step is S.broadcast_to or getattr(step, "writeable", True) is False
                                   for step, _ in tracer._path):
        raise ReadOnlyError("assignment destination is read-only (NumPy's np.broadcast_to, np.diagonal and "
                         "sliding_window_view return read-only views); write into the array itself, or into a "
                         "copy of the view")
    at = positions(tracer)
    return owner, (at.reshape(-1) if flat else at)[S.read_index(key)]  # NumPy's IndexError, as eager mode's


def _replace(owner, result, what: str = "item assignment", instead: str = "y = np.where(mask, v, y)") -> None:
    """`owner` takes on `result`, what a write (`what`) into it makes; its live views are derived again.
    Its memory keeps its order, as NumPy's does: an F-ordered array stays F-ordered (see `laid_out`)."""
    if getattr(owner, "_readonly", False):
        raise ReadOnlyError(f"assignment destination is read-only: {what} into x, which was passed read-only "
                         "(x.flags.writeable is False, as np.broadcast_to makes it); write into a copy "
                         "(y = x.copy()), or pass a writeable x")
    before = primal(owner)
    take_on(owner, _checked(owner, result, what, instead))
    if type(before) is np.ndarray:
        _relaid(owner, lambda after: None if after.strides == before.strides else _like(before, after))
    _derive_views(owner)


def _like(memory: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` in a new array laid out as `memory` is."""
    out = np.empty_like(memory)
    out[...] = values
    return out


def positions(tracer) -> np.ndarray:
    """Where each element of `tracer` lives in the memory of the array it views (or its own): flat
    positions in that array, in tracer's shape."""
    owner = _owner_of(tracer)
    at = _counting(owner.size).reshape(owner.shape)
    for step, params in () if owner is tracer else tracer._path:
        at = step.impl(at, **params) if isinstance(step, Primitive) else step(at, **params)
    return at


@functools.lru_cache(maxsize=8)
def _kept_counting(size: int) -> np.ndarray:
    return frozen(np.arange(size))


def _counting(size: int) -> np.ndarray:
    """np.arange(size), read-only, kept for the sizes a loop of element writes asks for again and again (each
    write finds its positions in it: a new one per write made a loop over n elements O(n²))."""
    return _kept_counting(size) if size <= 1 << 20 else frozen(np.arange(size))


#: The picks of a write of one element: v's first (read-only, so every such `put` can share it)
_FIRST = frozen(np.zeros(1, dtype=np.intp))


def _written(owner, at, value):
    """`owner` with `value` written at its flat positions `at`: NumPy's ``owner.flat[at] = value``,
    one `put` of value's elements into a copy of owner (a move, as slicing is), or owner itself
    where its engine wrote them into its arrays, which nothing else reaches (`Trace.wrote`)."""
    value = _fitted(value, at.shape, owner.dtype)
    if not at.size:
        return owner
    if at.size == 1:  # y[i] = v, the commonest, in a loop: no repeats to resolve
        indices, picks = at.reshape(1), _FIRST
    else:  # where a position repeats, the last write wins, as in NumPy: each position once, with its last value
        indices, last = np.unique(at.reshape(-1)[::-1], return_index=True)
        picks = frozen(_elements(value, at.shape)[::-1][last])  # read-only: `put` declares no array parameters
    if not getattr(owner, "_readonly", False) and owner._trace.wrote(owner, value, indices, picks):
        return owner
    flat = owner.ndim == 1  # a vector is its own flat view: no reshapes to record
    out = S.put(owner if flat else S.reshape(owner, (owner.size,)),
                value if np.ndim(value) == 1 else S.reshape(value, (np.size(value),)), indices=frozen(indices),
                picks=picks)
    return out if flat else S.reshape(out, owner.shape)


def _recomputed_destination(tracer, key):
    """The flat positions in `tracer` of ``tracer[key]`` where a compiled program being recorded recomputes
    them (`S.recomputed_positions`: ``z[np.arange(n), labels] = 0``), for an array that is no view and
    positions that do not repeat (checked again on each replay); else None, and the index is read."""
    if _owner_of(tracer) is not tracer:
        return None
    at = S.recomputed_positions(tracer.shape, key if isinstance(key, tuple) else (key,))
    return None if at is None or observe(S.repeats, at) else at


def _written_at(tracer, at, value):
    """`tracer` with `value` written at its flat positions `at`, an array a program recomputes (`put_at`)."""
    value = _fitted(value, at.shape, tracer.dtype)
    if is_traced(value) or recomputed(value):
        value = S.reshape(S.broadcast_to(value, at.shape), (at.size,))
    else:
        value = np.broadcast_to(value, at.shape).reshape(-1)
    flat = S.put_at(S.reshape(tracer, (tracer.size,)), value, S.reshape(at, (at.size,)))
    return S.reshape(flat, tracer.shape)


def _elements(value, shape) -> np.ndarray:
    """Which element of `value` (flat) each element of it broadcast to `shape` is, in C order."""
    return np.broadcast_to(np.arange(np.size(value)).reshape(np.shape(value)), shape).reshape(-1)


def _values(value, dtype):
    """What f writes, as one array: a traced array as it is; traced values in a list, or in an object
    array np.array([a, b]) built, as one traced array; anything else converted to `dtype` as NumPy
    converts it (a Fraction, a string of digits, None as NaN)."""
    from .tracing import from_objects  # which needs the NumPy functions, and they this module

    if is_traced(value):
        return value
    if recomputed(value) and value.dtype.kind in "biuf" and (np.ndim(value) or value.dtype == dtype):
        # an argument's values, or computed from one: a program's operand, not read (a NumPy scalar's conversion is)
        return value if value.dtype == dtype else value.astype(dtype)
    if type(value) in (list, tuple) and any(is_traced(v) for v in value):  # traced arrays of one shape, or scalars
        return np.stack([v if is_traced(v) else np.asarray(v, dtype=dtype) for v in value])
    array = from_objects(np.asarray(value))  # nested lists of traced scalars become object arrays first
    # else converted from what f wrote, as NumPy does: a Python complex into floats raises, an array of them warns
    return array if is_traced(array) else np.asarray(value, dtype=dtype)


def _fitted(value, shape: tuple, dtype):
    """`value` (`_values`) as NumPy assigns it into `shape` of `dtype`: leading length-1 axes beyond
    shape's dropped, then broadcast (NumPy's ValueError where it cannot be)."""
    value = _values(value, dtype)
    have = np.shape(value)
    extra = len(have) - len(shape)
    if extra > 0 and all(n == 1 for n in have[:extra]):
        value, have = S.reshape(value, have[extra:]), have[extra:]
    try:
        fits = np.broadcast_shapes(have, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"could not broadcast input array from shape {have} into shape {tuple(shape)}")
    return value


def _derive_views(owner) -> None:
    """Each live view of `owner`, derived again from its new value by the moves that made it."""
    live = [view for view in (ref() for ref in getattr(owner, "_views", None) or ()) if view is not None]
    for view in live:
        value = owner
        for prim, params in view._path:
            value = prim(value, **params)  # a temporary view of owner, which the line below forgets
        take_on(view, value)
    owner._views = [weakref.ref(view) for view in live] or None


def reshaped(tracer, result) -> None:
    """``y.shape = s``: `tracer` takes on `result`, itself reshaped. Its views read the same memory in
    its old shape, so they are derived from it through that shape; a view reshaped so keeps the
    reshape as its last move."""
    back = (S.reshape, {"shape": tuple(tracer.shape)})
    take_on(tracer, result)
    if getattr(tracer, "_owner", None) is not None:
        tracer._path += ((S.reshape, {"shape": tuple(result.shape)}),)
    for view in (ref() for ref in getattr(tracer, "_views", None) or ()):
        if view is not None:
            view._path = (back,) + view._path


def take_on(tracer, result):
    """`tracer`, now holding the value and derivative of `result` (a tracer of the same trace)."""
    for slot in state_slots(type(tracer)):
        setattr(tracer, slot, getattr(result, slot))
    return tracer
