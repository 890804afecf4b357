"""In-place operators on traced arrays (``y += v``) with NumPy's semantics, or a refusal.

NumPy changes the array itself, so every name bound to it sees the new values.
A traced array does the same: the tracer object takes the result's value and
derivative (`become`), and the arrays themselves are never written to. What it
cannot do is write through to other arrays sharing the memory, so an in-place
operator on a view (``v = y[1:]; v *= 3``), or on an array while a view of it is
alive, is refused rather than leave the two disagreeing (`primitives.note_view`
keeps track). Copies (``x.copy()``, ``np.copy``, ``+x``) are distinct tracers.

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

import numpy as np

from .primitives import Primitive, apply

_STATE: dict[type, tuple[str, ...]] = {}  # tracer class -> the slots that hold its value and derivative
_ALIASING = frozenset(["_owner", "_views", "__weakref__"])


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


def operator(fn, symbol: str):
    """The method behind ``self <symbol>= other``: `fn` applied, then taken on by self itself."""
    def method(self, other):
        refuse_if_shared(self, symbol)
        result = apply(fn, (self, other), {}) if isinstance(fn, Primitive) else fn(self, other)
        return become(self, result, symbol)

    return method


def refuse_if_shared(tracer, symbol: str) -> None:
    views = getattr(tracer, "_views", None) or ()
    if getattr(tracer, "_owner", None) is None and not any(ref() is not None for ref in views):
        return
    raise TypeError(
        f"in-place `{symbol}=` on a traced array that shares memory with another one (a slice, reshape or "
        "transpose, or the array one was taken from) is not supported: NumPy would change both, a traced "
        f"array only itself. Write the new array under its name instead, `v = v {symbol} w`, and rebuild any array "
        "that must change with it (np.concatenate, np.where)"
    )


def become(tracer, result, symbol: str):
    """`tracer`, holding `result` from now on, in NumPy's in-place shape and dtype."""
    shape = tracer.shape
    if np.shape(result) != shape:
        raise ValueError(f"non-broadcastable output operand with shape {shape} doesn't match the broadcast "
                         f"shape {np.shape(result)} (in-place `{symbol}=` keeps the array's shape)")
    if type(result) is not type(tracer) or result._trace is not tracer._trace:
        # a value of another trace (an inner one, nesting) or a plain one (//= of a floor): it cannot
        # be this tracer, so the name is bound to it instead, as Python does without __iop__
        return result
    if result.dtype != tracer.dtype:  # float32 stays float32, as NumPy casts in place
        return become(tracer, result.astype(tracer.dtype), symbol)
    tracer._views = None  # those it had were dead (`refuse_if_shared`), and its new value has none
    return take_on(tracer, result)


def take_on(tracer, result):
    """`tracer`, now holding the value and derivative of `result` (a tracer of the same trace)."""
    for slot in state_slots(type(tracer)):
        setattr(tracer, slot, getattr(result, slot))
    return tracer
