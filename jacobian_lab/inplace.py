"""In-place operators on traced arrays (``y += v``) with NumPy's semantics, or a refusal.

NumPy changes the array itself, so every name bound to it sees the new values,
and so does every view of it. A traced array does the same: the tracer object
takes the result's value and derivative (`become`), and each of its live views
(``row`` of ``for row in Y``, a slice kept in a variable) is derived again from
the new value; the arrays themselves are never written to. What a tracer cannot
do is write through a view into the array it views, so an in-place operator on
a view (``v = y[1:]; v *= 3``) is refused. Copies (``x.copy()``, ``np.copy``,
``+x``) are distinct tracers, and a 0-d value that is no view is a NumPy scalar,
as reductions and indexing give one: immutable, so ``s += 1`` binds s anew.

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

import weakref

import numpy as np

from .primitives import Primitive, apply
from .rules import shape as S

_STATE: dict[type, tuple[str, ...]] = {}  # tracer class -> the slots that hold its value and derivative
_ALIASING = frozenset(["_owner", "_path", "_views", "__weakref__"])


def state_slots(cls: type) -> tuple[str, ...]:
    slots = _STATE.get(cls)
    if slots is None:
        names = [s for c in cls.__mro__ for s in c.__dict__.get("__slots__", ())]
        _STATE[cls] = slots = tuple(s for s in names if s not in _ALIASING)
    return slots


def clone(tracer):
    """A distinct tracer with `tracer`'s value and derivative: a copy, as NumPy makes one."""
    new = object.__new__(type(tracer))
    for slot in state_slots(type(tracer)):
        setattr(new, slot, getattr(tracer, slot))
    return new


def unshared(result, operands):
    """`result` of a NumPy function (or an index), as the caller sees it: a view of an array made
    inside the function (einsum's scalar, a reshape of a gather) is an array of its own, since no
    one else can reach that array; a view of an operand stays one. Tuples and lists: each item."""
    if type(result) in (tuple, list):
        for item in result:
            unshared(item, operands)
        return result
    owner = getattr(result, "_owner", None)
    if owner is not None and not any(owner is _owner_of(a) for a in _flat(operands)):
        detach(result)
    return result


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
        if not self.ndim and getattr(self, "_owner", None) is None:
            return combine(self, other)  # a NumPy scalar is immutable: the name is bound anew, as in NumPy
        if getattr(self, "_owner", None) is not None:
            raise TypeError(
                f"in-place `{symbol}=` on a view of a traced array (a slice, reshape or transpose of it) "
                "is not supported: NumPy would write through to the array it views, which a traced array "
                f"cannot. Write the new array under its name instead, `v = v {symbol} w`, and rebuild the "
                "array it was taken from with np.concatenate or np.where if that must change too")
        return become(self, combine(self, other), symbol)

    return method


def become(tracer, result, symbol: str):
    """`tracer`, holding `result` from now on in its shape and dtype, with its live views derived again."""
    shape = tracer.shape
    if np.shape(result) != shape:
        raise ValueError(f"non-broadcastable output operand with shape {shape} doesn't match the broadcast "
                         f"shape {np.shape(result)} (in-place `{symbol}=` keeps the array's shape)")
    if type(result) is not type(tracer) or result._trace is not tracer._trace:
        raise TypeError(
            f"in-place `{symbol}=` would make this traced array "
            + ("one without a derivative (a floor)" if getattr(result, "_trace", None) is None else
               "a value of another derivative (f closes over the input of an enclosing one)")
            + f", which it cannot become; write `y = y {symbol} v` instead")
    if result.dtype != tracer.dtype:  # float32 stays float32, as NumPy casts in place
        return become(tracer, result.astype(tracer.dtype), symbol)
    take_on(tracer, result)
    _derive_views(tracer)
    return tracer


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
