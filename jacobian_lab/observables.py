"""`Observable`: a value computed from x without a derivative, as f's code sees it while a program is recorded.

A comparison (``x > 0``) or ``sign(x)`` carries no derivative, so eager mode
hands f a plain array. While `staging.Recorder` records a computation it hands
f this wrapper instead, for one reason: to tell the two ways f can use it apart.

* Passed to primitives (``np.where(x > 0, x, 0.0)``, ``x * (x > 0)``), it is
  one more recorded operand, and a program recomputes it from the new x.
* Read by Python (``bool(m)``, ``m.any()``, ``np.asarray(m)``, ``x[m]``, plain
  NumPy on it), its numbers may steer what f does next, so each such read goes
  through `primitives.observe` and becomes a check the program repeats before
  replaying.

It is not an ndarray, so nothing reads its numbers without passing one of these
doors; that makes the distinction safe rather than best-effort.
"""
from __future__ import annotations

import inspect
import math
import operator

import numpy as np

from . import numpy_api as api
from . import scipy_special
from .accounting import active_counter
from .inplace import clone
from .numpy_api import UFUNCS, is_traced, routed
from .primitives import observe, recomputed
from .rules import elementwise as E
from .rules import shape as S
from .rules.elementwise import where
from .snapshots import same_bytes
from .tracing import binary_method, binary_methods, objects_converted


def array_of(value):
    """The array an `Observable` holds (anything else as it is): what a primitive computes with."""
    return value._array if type(value) is Observable else value


def _watched(out):
    """A primitive's result on a mask, computed from x: still watched, and wrapped once (the recording
    returns it as an Observable already where f's own code computed it)."""
    return out if type(out) is Observable else Observable(out)


def not_replayable(reason: str) -> None:
    """Tell a recording (jit's) that what f just did cannot be replayed: the Jacobian is computed eagerly."""
    counter = active_counter()
    if counter is not None:
        counter.unreplayable(reason)


def _traced_objects(operands):
    """The operands with an array of traced values (``np.asarray(x)`` of a traced x is one, as in eager mode) as
    one traced array, when there is one: the operation is a tracer's then (``np.where(x > 0, np.asarray(x), 0)``),
    as without jit, where the mask is a plain array. Else None."""
    converted = objects_converted(operands)
    return converted if converted is not None and any(map(is_traced, converted)) else None


def _bitwise(logical, bitwise):
    """``&``, ``|`` or ``^``: on masks the logical ufunc, which a program recomputes as a primitive; on
    integers NumPy's bitwise one ((x > 0) * 7 & 6 is 6)."""
    def operation(a, b):
        masks = all(getattr(v, "dtype", None) == bool or isinstance(v, (bool, np.bool_)) for v in (a, b))
        return (logical if masks else bitwise)(a, b)

    operation.__name__ = bitwise.__name__
    return operation


def _in_place(ufunc):
    """An augmented assignment (``m += v``): `Observable._update` with `ufunc`."""
    return lambda self, other: self._update(ufunc, other)


_MEMORY = frozenset(["__array_interface__", "__array_struct__", "__dlpack__", "__dlpack_device__"])


class MemoryRead(AttributeError):
    """f read the memory of a stand-in (``m.__array_interface__``): what NumPy's conversion asks for, so an
    AttributeError that NumPy takes as "convert through __array__"; read by f itself, jit compiles no program."""


class Observable:
    """A recorded array without a derivative; see the module docstring.

    A ReLU written with a mask compiles once, whatever the signs of x:

    >>> import numpy as np, jacobian_lab as jl
    >>> g = jl.jit(jl.grad(lambda x: np.sum(np.where(x > 0, x, 0.0) ** 2)))
    >>> g(np.array([1.0, -2.0])), g(np.array([-1.0, 2.0])), g.compiles
    (array([2., 0.]), array([0., 4.]), 1)
    """

    __slots__ = ("_array", "_viewed", "_own", "_scalar")
    __array_priority__ = 50  # below tracers: an operation with a traced operand is theirs

    def __init__(self, array: np.ndarray, scalar: bool | None = None):
        self._array = array  # private: f's code reads it only through the doors below
        self._viewed = False  # whether f holds a view of it (m[1:]), which a later write must reach
        self._own = False  # whether it holds numbers Python made (`_write`): a constant, written in place
        # whether it stands for a NumPy scalar (x[0] > 0), as eager mode gives, or an array (np.where's)
        self._scalar = not isinstance(array, np.ndarray) if scalar is None else scalar

    # isinstance(m, np.ndarray) holds, as in eager mode, so f takes the same branch (for a 0-d m,
    # NumPy's scalar, np.bool_ for x[0] > 0); NumPy's C code tests the real type and never
    # mistakes it for an array it can read directly.
    __class__ = property(lambda self: type(self._array[()]) if self._scalar else np.ndarray)
    # what eager mode gives f, unread: NumPy's scalar, or the array (its methods, its answer to a string)
    _eager = property(lambda self: self._array[()] if self._scalar else self._array)
    shape = property(lambda self: self._array.shape)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    dtype = property(lambda self: self._array.dtype)

    def __len__(self):
        return len(self._array)

    def __repr__(self):
        return observe(_scalar_repr if self._scalar else repr, self._array)  # printed numbers are read numbers too

    def __str__(self):
        return observe(str, self._array)

    # --- computed on: a primitive records it, anything else reads it ------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(map(is_traced, inputs)):
            return NotImplemented  # a tracer takes the operation and passes this one to a primitive
        converted = _traced_objects(inputs)
        if converted is not None:
            return getattr(ufunc, method)(*converted, **kwargs)
        if method == "at" and type(inputs[0]) is Observable:  # np.add.at(m, i, v) writes into m
            rest = read_numbers(inputs[1:])
            return inputs[0]._write(lambda array: ufunc.at(array, *rest, **kwargs))
        if not routed(ufunc):  # a scipy.special ufunc, imported after jacobian_lab: mapped on first sight
            scipy_special.register()
        prim = UFUNCS.get(ufunc) if method == "__call__" and not kwargs else None
        if prim is None or prim is clone:  # np.positive(m): clone copies a tracer, so NumPy's reads m
            out = kwargs.get("out")
            if out is not None and any(type(o) is Observable for o in out):  # np.logical_not(m, out=m)
                return _into(out, lambda rest: getattr(ufunc, method)(*read_numbers(inputs), **rest), kwargs)
            return getattr(ufunc, method)(*read_numbers(inputs), **kwargs)
        return _watched(prim(*map(array_of, inputs)))

    def __array_function__(self, func, types, args, kwargs):
        # No traced operand: NumPy reads the numbers (observed), with plain arrays beside them as
        # they are. Any other type is a tracer's, or a library's that reads this one through
        # __array__: it handles the call (a tracer treats this value as an operand).
        if not all(t is Observable or issubclass(t, np.ndarray) for t in types):
            return NotImplemented
        converted = _traced_objects(args)
        if converted is not None:
            return func(*converted, **kwargs)
        if func is np.where and len(args) == 3 and not kwargs:  # np.where(m, 1.0, 0.0): a select, recorded
            return _watched(where(*map(array_of, args)))
        if func in _WRITERS and args and type(args[0]) is Observable:  # np.copyto(m, v), np.put(m, i, v)
            rest, options = read_numbers(args[1:]), read_numbers(kwargs)
            return args[0]._write(lambda array: func(array, *rest, **options))
        out = kwargs.get("out")
        if type(out) is Observable:  # np.clip(m, 0, 1, out=m)
            return _into((out,), lambda rest: func(*read_numbers(args), **read_numbers(rest)), kwargs)
        if func in (np.shares_memory, np.may_share_memory):  # m's views are computed apart while compiling
            not_replayable(f"f asked {func.__name__} of an array computed from x, which a program cannot answer")
        if func in _SHAPES and not _holds((args[1:], kwargs)):  # no value of m decides these
            return func(*map(array_of, args), **kwargs)
        if func is np.result_type:  # NumPy 2's promotion reads dtypes alone
            return func(*map(array_of, args))
        moved = args[0] if args and type(args[0]) is Observable and func in _FUNCTION_MOVES else None
        if moved is not None and set(kwargs) <= _FUNCTION_MOVES[func] and not _holds((args[1:], kwargs)) and (
                moved._recomputed()):  # np.transpose(m), np.flip(m), np.ravel of a 0-d one: the moves m.T, m[::-1] are
            return moved._moved(api.FUNCTIONS[func], *args[1:], read_only=func in _READ_ONLY_MOVES, **kwargs)
        if func is np.bincount and args and type(args[0]) is Observable and args[0]._recomputed():
            return _watched(api.FUNCTIONS[func](*args, **kwargs))  # a batch's class counts: a recorded scatter-add
        recorded = _arithmetic(func, args, kwargs) if func in _ARITHMETIC else None
        if recorded is not None:  # np.mean(X, axis=0) of an argument X: jacobian_lab's implementation, recorded
            return _computed(func, *recorded)
        if func in _COMPOSED and _composable(args, kwargs, _COMPOSED[func]):  # np.einsum("ij,ij->i", X, X), inv(A)
            try:
                return _computed(func, args, kwargs)
            except NotImplementedError:  # an option jacobian_lab's implementation refuses (pinv(hermitian=True)):
                pass  # NumPy computes it, reading the numbers, as without the recording
        if func in _BUILDERS and args and not _writes_out(func, args, kwargs):  # np.cumsum(m), np.stack([m1, m2])
            # only the arrays are unwrapped: a mask elsewhere (a shift) is read through its doors
            first = args[0]
            arrays = type(first)(map(array_of, first)) if type(first) in (tuple, list) else array_of(first)
            return _watched(api.FUNCTIONS[func](arrays, *args[1:], **kwargs))
        # np.any(m): the summary is what a program checks, not every element it summarizes (only with
        # masks as arguments themselves: one nested in a list would reach func unwrapped, unseen)
        nested = _holds(kwargs) or any(_holds(a) for a in args if type(a) is not Observable)
        if func in _SUMMARIES and not nested and "out" not in kwargs:
            return observe(func, *map(array_of, args), **kwargs)
        return _read_into(args, lambda read: func(*read, **read_numbers(kwargs)))

    def __array__(self, dtype=None, copy=None):
        # np.asarray(m) is m itself, as in eager mode, so a write into either reaches the other: m takes
        # the observed copy it gives as its own; after a view of what m held, which a copy would not
        # reach, it is the recorded array itself, a write into which `Recorder.check` finds
        if copy or self._scalar:  # a NumPy scalar's array is a new one each time
            return observe(np.array, self._array, dtype=dtype)
        if self._viewed and not self._own:
            return observe(np.asarray, self._array, dtype=dtype)
        if not self._own:
            self._array, self._own = observe(np.array, self._array), True
        return self._array if dtype is None or np.dtype(dtype) == self.dtype else self._array.astype(dtype)

    def __hash__(self):
        if not self._scalar:  # as an array's: NumPy's scalar is a dict key (table[x[0] > 0])
            raise TypeError("unhashable type: 'numpy.ndarray'")
        return observe(_hash_of_scalar, self._array)

    # A copy or a pickle holds numbers Python made, which a program would keep as constants: they are
    # read, so a program checks them (copy.deepcopy(m), dataclasses.asdict of a record holding m).
    def __copy__(self):
        return self._numbers()

    def __deepcopy__(self, memo):
        return self._numbers()

    def __reduce_ex__(self, protocol):
        return self._numbers().__reduce_ex__(protocol)

    def scalar(self) -> "Observable":
        """This 0-d value as the NumPy scalar a NumPy function gives where jacobian_lab computes a 0-d
        array (np.copysign's by np.where's): the same recorded value, immutable, of the scalar's type."""
        return Observable(self._array, scalar=True)

    def _numbers(self):
        """What m holds, read: an array, or the NumPy scalar m stands for."""
        numbers = read_numbers(self)
        return numbers[()] if self._scalar else numbers

    def _read_as(convert):
        """A protocol Python calls on a number (round(s, 1), f"{s:.1f}", math.floor(s)): `convert` of the numbers
        read."""
        return lambda self, *args: convert(self._numbers(), *args)

    __format__, __round__, __trunc__ = _read_as(format), _read_as(round), _read_as(math.trunc)
    __floor__, __ceil__, __complex__ = _read_as(math.floor), _read_as(math.ceil), _read_as(complex)

    def __bytes__(self):
        return observe(bytes, self._array)  # an array's bytes are its numbers, as bytes(array) reads them

    def __buffer__(self, flags):
        # memoryview(m) (Python 3.12 on): a view of an observed copy. Earlier Pythons cannot export
        # a buffer from Python code, and refuse memoryview(m) with a TypeError naming Observable.
        return memoryview(read_numbers(self))

    def __bool__(self):
        return observe(bool, self._array)

    def __float__(self):
        return observe(float, self._array)

    def __int__(self):
        return observe(int, self._array)

    def __index__(self):
        return observe(operator.index, self._array)

    def __iter__(self):
        return iter(self.__array__())

    def __getitem__(self, key):
        if self._recomputed():
            if _basic(key):  # m[1:], m[:, 0], an element m[0]: a recorded move
                return self._moved(api.getitem, key, view=bool(np.ndim(self._array[key])))
            if _gathered(key):  # X[:, [0, 2]], X[y]: a recorded gather, a copy in NumPy too
                return self._moved(api.getitem, key, view=False)
        return self._shared(observe(operator.getitem, self._array, read_numbers(key)))

    def __setitem__(self, key, value):
        if self._scalar:  # NumPy's scalar is immutable, and says so as NumPy does
            raise TypeError(f"'{type(self._array[()]).__name__}' object does not support item assignment")
        key, value = read_numbers(key), read_numbers(value)
        self._write(lambda array: array.__setitem__(key, value))

    def _write(self, write) -> None:
        """f writes into m (``m[i] = v``, ``m.fill(v)``, ``np.copyto(m, v)``): from here on it holds numbers
        Python made, so it becomes a copy of what it held (observed, so checked on replay), a constant,
        and ``write(copy)`` writes into it, now and at every later write."""
        if self._scalar:  # m stands for an immutable NumPy scalar: the write meets it as it would meet that
            return write(self._numbers())
        if not self._own:
            if not self._array.flags.writeable:  # NumPy's own view is read-only too (np.diagonal, broadcast_to)
                raise ValueError("assignment destination is read-only")
            if self._viewed:  # a view f took before holds the old values, where NumPy's would see the write
                not_replayable("f wrote into an array computed from x (or from an argument) after taking a view of it")
            self._array, self._own = observe(np.array, self._array), True
        write(self._array)

    def astype(self, dtype, *args, **kwargs):
        # A boolean mask as floats, (x > 0).astype(float), is where(m, 1, 0): a primitive.
        if self.dtype == bool and np.issubdtype(dtype, np.floating) and not args and not kwargs:
            one, zero = np.ones((), dtype), np.zeros((), dtype)
            converted = _watched(where(self._array, one, zero))
            return converted.scalar() if self._scalar else converted  # a NumPy scalar's astype gives a scalar
        if (not args and set(kwargs) <= {"copy"} and np.dtype(dtype).kind in "biufc" and self._recomputed()
                and self.ndim):
            if not kwargs.get("copy", True) and np.dtype(dtype) == self.dtype:
                return self  # X.astype(float, copy=False) of a float64 X: NumPy's is X itself
            # (x > 0).astype(int), an argument's X.astype(float): a recorded conversion, a copy as NumPy's
            return self._moved(lambda array: E.astype(array, dtype=np.dtype(dtype)), view=False)
        method = _call_scalar_method if self._scalar else _call_method
        return observe(method, self._array, "astype", (dtype, *args), kwargs)

    def _moved(self, move, *args, view: bool = True, read_only: bool = False, **kwargs):
        """``move(m's array, ...)`` of primitives a program recomputes, not a reading of m: a reshape, a
        transpose, a basic slice. NumPy's result is a `view` of m, a write into which would reach m;
        this one is computed apart, so a write into either is not replayed (`_viewed`). `read_only`: NumPy's
        view is read-only (np.diagonal's), and a write into this one fails as into that one."""
        moved = move(self._array, *args, **kwargs)
        if type(moved) is not Observable:  # no move at all (a 1-d m.T is m's own array): still watched
            moved = Observable(moved)
        if read_only and moved._array is not self._array:  # (m's own array stays as writeable as m)
            moved._array.flags.writeable = False
        if view:
            self._viewed = moved._viewed = True
        return moved

    def _recomputed(self) -> bool:
        """Whether m is a value a program recomputes from x (not Python's numbers, `_own`, nor a constant)."""
        return not self._own and type(self._array) is np.ndarray and recomputed(self._array)

    def __getattr__(self, name):
        # Methods and attributes not defined here (.any(), .sum(), .T) read the numbers.
        # Protocols (__array_interface__, ...) are refused, so NumPy converts through __array__.
        if name.startswith("__"):
            raise (MemoryRead if name in _MEMORY else AttributeError)(name)
        attribute = getattr(self._eager, name)  # a scalar's: t.is_integer
        if name in _MOVES and self._recomputed() and self.ndim:  # m.T, m.ravel(): recorded moves
            move, keywords = _MOVES[name]
            if name == "T":
                return self._moved(move)
            return lambda *args, **kwargs: (self._moved(move, *args, view=name not in ("flatten", "copy"),
                                                        read_only=name == "diagonal", **kwargs)
                                            if set(kwargs) <= keywords else self._method(name, args, kwargs))
        if name in _ARITHMETIC_METHODS:  # X.mean(axis=0): recorded as the function, or read as the method
            return lambda *args, **kwargs: self._arithmetic_method(name, args, kwargs)
        if name in _WRITING_METHODS:  # m.fill(v), m.sort(): written as f writes into m
            return lambda *args, **kwargs: self._write(lambda array: _call_method(
                array, name, read_numbers(args), read_numbers(kwargs)))
        if callable(attribute):
            return lambda *args, **kwargs: self._method(name, args, kwargs)
        return self._shared(observe(getattr, self._array, name))

    def _arithmetic_method(self, name, args, kwargs):
        """``m.name(*args, **kwargs)`` of `_ARITHMETIC_METHODS`: the function recorded where `_arithmetic` takes it,
        else the method read (its parameters are the method's: X.clip(0.0) needs no a_max)."""
        func = _ARITHMETIC_METHODS[name]
        if name == "clip":  # the method's bounds are min= and max=, each None by default; the function's both given
            try:
                bounds = inspect.signature(np.ndarray.clip).bind(self, *args, **kwargs).arguments
            except TypeError:
                return self._method(name, args, kwargs)
            args, kwargs = (bounds.pop("min", None), bounds.pop("max", None)), bounds.pop("kwargs", {})
            kwargs.update({k: v for k, v in bounds.items() if k != "self"})
        recorded = _arithmetic(func, (self, *args), kwargs)
        return self._method(name, args, kwargs) if recorded is None else _computed(func, *recorded)

    def _method(self, name, args, kwargs):
        if type(kwargs.get("out")) is Observable:  # m.clip(0, 1, out=m)
            return _into((kwargs["out"],), lambda rest: _call_method(
                read_numbers(self), name, read_numbers(args), read_numbers(rest)), kwargs)
        method = _call_scalar_method if self._scalar else _call_method
        # another Observable among the arguments ((x > 0).dot(x > 0)) is read too, or written (X.round(1, buffer))
        options = read_numbers(kwargs)
        return self._shared(_read_into(args, lambda read: observe(method, self._array, name, read, options)))

    def _shared(self, value):
        """`value`, noting when it is a view of m (``m[1:]`` of an own m, ``m.view()``): see `_viewed`. (A value
        NumPy derived from m's array is a view of it or new memory: their bounds tell them apart.)"""
        array = self._array  # (a ufunc of two outputs gives a tuple of them)
        if type(array) is np.ndarray and isinstance(value, np.ndarray) and np.may_share_memory(value, array):
            self._viewed = True
        return value

    # --- operators: NumPy's ufuncs, so the rules above decide ----------------------------
    __add__, __radd__ = binary_methods(np.add)
    __sub__, __rsub__ = binary_methods(np.subtract)
    __mul__, __rmul__ = binary_methods(np.multiply)
    __truediv__, __rtruediv__ = binary_methods(np.divide)
    __pow__, __rpow__ = binary_methods(np.power)
    __floordiv__, __rfloordiv__ = binary_methods(np.floor_divide)
    __mod__, __rmod__ = binary_methods(np.remainder)
    __and__, __rand__ = binary_methods(_bitwise(np.logical_and, np.bitwise_and))
    __or__, __ror__ = binary_methods(_bitwise(np.logical_or, np.bitwise_or))
    __xor__, __rxor__ = binary_methods(_bitwise(np.logical_xor, np.bitwise_xor))
    __lt__, __le__ = binary_method(np.less), binary_method(np.less_equal)
    __gt__, __ge__ = binary_method(np.greater), binary_method(np.greater_equal)

    def __eq__(self, other):
        # against a string or None (norm's ord == "fro"): False whatever the numbers, as NumPy's comparison
        return self._numberless(other, operator.eq) if _not_a_number(other) else np.equal(self, other)

    def __ne__(self, other):
        return self._numberless(other, operator.ne) if _not_a_number(other) else np.not_equal(self, other)

    def _numberless(self, other, compare):
        """``compare(m, other)`` of a number and a string or None: NumPy's answer, which reads no number."""
        return compare(self._eager, other)

    __matmul__, __rmatmul__ = binary_methods(np.matmul)
    __lshift__, __rlshift__ = binary_methods(np.left_shift)
    __rshift__, __rrshift__ = binary_methods(np.right_shift)
    __divmod__, __rdivmod__ = binary_methods(np.divmod)

    def __invert__(self):
        return np.logical_not(self) if self.dtype == bool else np.invert(self)

    def __neg__(self):
        return np.negative(self)

    def __pos__(self):
        # a copy of the values, recorded (np.positive maps to a tracer's clone); NumPy refuses +m of booleans
        return self * 1 if self.dtype != bool else np.positive(read_numbers(self))

    def __abs__(self):
        return np.absolute(self)

    # --- in place: an array's result goes into the same object, as NumPy writes into the array, so that
    # every name and function f passed it to sees the write (computed out of place, then taken in); a
    # 0-d value stands for a NumPy scalar (x.sum() > 1), which is immutable: s += 1 rebinds s alone
    def _update(self, ufunc, other):
        result = ufunc(self, other)
        if is_traced(result):  # other is traced: its derivative cannot go into this array
            raise TypeError(f"an in-place {ufunc.__name__} of a traced value into an array without a derivative "
                            "would drop the derivative; write m = m + x (a new traced array) instead")
        if type(result) is not Observable:  # NumPy's own result from the observed numbers (np.bitwise_and)
            result = Observable(np.asarray(result))
        if self._scalar:
            return result
        if result.shape != self.shape:  # NumPy's refusal, in its words
            raise ValueError(f"non-broadcastable output operand with shape {self.shape} doesn't match the "
                             f"broadcast shape {result.shape}")
        if result.dtype != self.dtype:
            if not np.can_cast(result.dtype, self.dtype, casting="same_kind"):
                raise TypeError(f"Cannot cast ufunc '{ufunc.__name__}' output from {result.dtype!r} to "
                                f"{self.dtype!r} with casting rule 'same_kind'")
            result = result.astype(self.dtype)
        if self._own:  # into the array names and views of it share
            numbers = read_numbers(result)
            self._write(lambda array: array.__setitem__(Ellipsis, numbers))
            return self
        if self._viewed:  # a view f took before holds the old values, where NumPy's would see the write
            not_replayable("f wrote into an array computed from x (or from an argument) after taking a view of it")
        self._array = array_of(result)
        return self

    __iadd__, __isub__, __imul__ = _in_place(np.add), _in_place(np.subtract), _in_place(np.multiply)
    __itruediv__, __ipow__, __imod__ = _in_place(np.divide), _in_place(np.power), _in_place(np.remainder)
    __ifloordiv__, __imatmul__ = _in_place(np.floor_divide), _in_place(np.matmul)
    __iand__ = _in_place(_bitwise(np.logical_and, np.bitwise_and))
    __ior__ = _in_place(_bitwise(np.logical_or, np.bitwise_or))
    __ixor__ = _in_place(_bitwise(np.logical_xor, np.bitwise_xor))


def _into(out: tuple, compute, kwargs: dict):
    """``compute(kwargs without out)`` written into each of `out` as f writes into an array (`__setitem__`):
    NumPy's out=, into Observables."""
    result = compute({key: value for key, value in kwargs.items() if key != "out"})
    for o, r in zip(out, result if len(out) > 1 else (result,)):
        o[...] = r
    return out if len(out) > 1 else out[0]


def _basic(key) -> bool:
    """Whether `key` is a basic index (integers, slices, None, Ellipsis): NumPy's view of the array."""
    return all(map(api.is_basic, key if type(key) is tuple else (key,)))


def _gathered(key) -> bool:
    """Whether `key` selects elements by integers, constant or recomputed (`S.recomputed_index`), beside basic
    parts: positions known from the key's shapes. A boolean array or an Observable holding Python's numbers is
    read."""
    return all(api.is_basic(part) or S.recomputed_index(part) or _integers(part)
               for part in (key if type(key) is tuple else (key,)))


def _integers(part) -> bool:
    """Whether an index part is a constant array or (nested) list of integers."""
    if type(part) is list:
        return all(_integers(v) or isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                   for v in part)
    return type(part) is np.ndarray and part.dtype.kind in "iu"


#: ndarray's methods that move elements without reading them, as primitives, and the keywords taken
#: so (any other, ``reshape(copy=True)``, is read as methods are)
_MOVES = {
    "reshape": (lambda a, *shape, order="C": api.reshape(a, shape[0] if len(shape) == 1 else shape, order),
                {"order"}),
    "ravel": (lambda a, order="C": api.numpy_ravel(a, order), {"order"}),
    "flatten": (lambda a, order="C": api.numpy_ravel(a, order), {"order"}),  # a copy in NumPy
    "transpose": (lambda a, *axes: api.transpose(a, axes[0] if len(axes) == 1 else (axes or None)), set()),
    "T": (lambda a: api.transpose(a), set()),
    "swapaxes": (lambda a, axis1, axis2: api.swapaxes(a, axis1, axis2), set()),
    "squeeze": (lambda a, axis=None: api.squeeze(a, axis), {"axis"}),
    "copy": (lambda a: E.astype(a, dtype=a.dtype), set()),  # a recorded copy, as NumPy's a new array
    "diagonal": (lambda a, *args, **kwargs: api.FUNCTIONS[np.diagonal](a, *args, **kwargs),
                 {"offset", "axis1", "axis2"}),
}
#: NumPy's functions that move the elements of their first argument, as the methods of `_MOVES` do, and the
#: keywords taken so (any other, np.reshape(m, s, copy=True), is read)
_FUNCTION_MOVES = {np.reshape: {"order", "shape", "newshape"}, np.ravel: {"order"}, np.transpose: {"axes"},
                   np.swapaxes: set(), np.moveaxis: set(), np.expand_dims: {"axis"}, np.squeeze: {"axis"},
                   np.flip: {"axis"}, np.broadcast_to: {"shape"}, np.diagonal: {"offset", "axis1", "axis2"},
                   np.linalg.diagonal: {"offset"}}
#: ... those whose view NumPy makes read-only
_READ_ONLY_MOVES = frozenset([np.diagonal, np.linalg.diagonal, np.broadcast_to])
#: NumPy functions that write into their first argument, and ndarray's methods that write into the array
_WRITERS = frozenset([np.copyto, np.put, np.putmask, np.place, np.fill_diagonal, np.put_along_axis])
_WRITING_METHODS = frozenset(["fill", "sort", "put", "partition", "itemset"])
_SHAPES = frozenset([np.shape, np.ndim, np.size, np.zeros_like, np.ones_like, np.empty_like, np.iscomplexobj,
                     np.isrealobj])
#: NumPy functions that build a new array from their first argument's elements (an array, or a sequence of
#: arrays) without reading them, or reading them through primitives alone (np.sort's argsort): their
#: implementations on traced arrays record primitives alone, so on masks a program recomputes them (an upwind
#: scheme's np.concatenate([m[:1], m[1:]]), np.cumsum(x > 0)). Each is checked to read nothing of those
#: arrays but shapes and dtypes outside primitives: they reach it unwrapped, unobserved.
_BUILDERS = frozenset([np.concatenate, np.stack, np.hstack, np.vstack, np.column_stack, np.cumsum, np.cumprod,
                       np.roll, np.tile, np.diff, np.sort])
#: NumPy functions computing on numbers with primitives alone, and ndarray's methods that call them: on real
#: floats a program recomputes (an argument X, np.sign(x)) jacobian_lab's implementations record them, as
#: they compute on traced arrays; integers (which NumPy converts first), complex numbers and masks are read,
#: a mask's summaries checked by their result (`_SUMMARIES`, which np.sum is in too: on masks, that one
#: applies). tests/test_jit_arguments.py replays each at new arguments against eager mode.
_ARITHMETIC_METHODS = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod, "std": np.std,
                       "var": np.var, "dot": np.dot, "clip": np.clip}
#: ... each with its array operands (the rest of its parameters are options): only the operands may be
#: Observables, as a parameter (ddof, ord) is read as a number
_ARITHMETIC = {func: 1 for func in _ARITHMETIC_METHODS.values()} | {np.dot: 2, np.amax: 1, np.amin: 1,
                                                                     np.linalg.norm: 1, np.average: 1}
#: the options they are recorded with (a given dtype=, out= or returned=, and clip's min=, max=, read the numbers)
_ARITHMETIC_OPTIONS = frozenset(["axis", "keepdims", "ddof", "correction", "where", "initial", "mean", "weights",
                                 "ord", "a_min", "a_max"])
#: the float dtypes they are recorded in: float16's accumulations are NumPy's own (in float32), read instead
_ARITHMETIC_DTYPES = frozenset([np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.longdouble)])
#: NumPy functions of one array whose jacobian_lab implementations compute on their leading operands (how many:
#: None for all, einsum's after its subscripts) with primitives alone, no NumPy of their own on them: of real
#: float arrays a program recomputes, the rest plain, they are recorded (`_composable`), as `_ARITHMETIC` is.
#: tests/test_jit_arguments.py replays each at new arguments against eager mode.
_COMPOSED = {np.einsum: None, np.outer: 2, np.inner: 2, np.tensordot: 2, np.kron: 2, np.vdot: 2, np.trace: 1,
             np.diag: 1, np.triu: 1, np.tril: 1, np.linalg.inv: 1, np.linalg.det: 1, np.linalg.solve: 2,
             np.linalg.cholesky: 1, np.linalg.pinv: 1, np.linalg.eigvalsh: 1, np.cov: 2, np.corrcoef: 2, np.ptp: 1,
             np.trapezoid: 2}
#: NumPy functions that summarize an array into fresh values, writing nowhere: observed by their result
_SUMMARIES = frozenset([np.any, np.all, np.count_nonzero, np.sum, np.nonzero, np.flatnonzero, np.argmax,
                        np.argmin])


def _arithmetic(func, args, kwargs):
    """(operands, options) with which `_ARITHMETIC` records ``func(*args, **kwargs)``, its parameters named as
    NumPy's signature names them; None where the call is read instead: no operand an Observable of floats a
    program recomputes (`_ARITHMETIC_DTYPES`, not empty), an Observable among the options, an option outside
    `_ARITHMETIC_OPTIONS` or of another kind than NumPy takes (`_plain_option`); out=None and the like, NumPy's
    defaults, count as not given (`_default`)."""
    try:
        given = inspect.signature(func).bind(*args, **kwargs).arguments
    except TypeError:  # NumPy's own refusal, from the read
        return None
    names = list(given)
    operands = [given[name] for name in names[:_ARITHMETIC[func]]]
    observables = [a for a in operands if type(a) is Observable]
    # clip of integers (labels kept in range) keeps their dtype, as NumPy's: nothing accumulates in another
    if not observables or not all(_recorded_numbers(a, integers=func is np.clip) for a in observables):
        return None
    options = {name: given[name] for name in names[_ARITHMETIC[func]:]
               if not _default(name, given[name], observables[0].dtype)}
    if set(options) - _ARITHMETIC_OPTIONS or _holds(options) or not all(_plain_option(*o) for o in options.items()):
        return None
    if func is np.clip and (not options or not {"a_min", "a_max"} <= set(given)):
        return None  # NumPy's clip takes both bounds (one None at most, read)
    return operands, options


def _composable(args, kwargs, operands: int | None) -> bool:
    """Whether a `_COMPOSED` function records its call: every Observable among the arguments is one of its first
    `operands` positional ones (None: any), by itself (not in a list, nor an option), and a non-empty real float
    array a program recomputes; nothing written (no out=)."""
    count = len(args) if operands is None else operands
    observables = [a for a in args[:count] if type(a) is Observable]
    rest = [a for a in args[:count] if type(a) is not Observable] + list(args[count:])
    return bool(observables) and "out" not in kwargs and not _holds(kwargs) and not _holds(rest) and all(
        map(_recorded_numbers, observables))


def _recorded_numbers(a, integers: bool = False) -> bool:
    """Whether Observable `a` is an operand `_ARITHMETIC` and `_COMPOSED` record: a non-empty array of real
    floats (`_ARITHMETIC_DTYPES`; with `integers`, of integers too) that a program recomputes."""
    return (a.dtype in _ARITHMETIC_DTYPES or (integers and a.dtype.kind in "iu")) and bool(a.size) and a._recomputed()


def _computed(func, operands, options):
    """``func(*operands, **options)`` by jacobian_lab's implementation, recorded; a result NumPy gives as a scalar
    (np.std(X), a norm) standing for one."""
    out = _watched(api.FUNCTIONS[func](*map(array_of, operands), **options))
    return out.scalar() if out.ndim == 0 and not out._scalar else out


def _default(name: str, value, dtype) -> bool:
    """Whether an option is given as NumPy's default, which changes nothing: out=None, axis=None, dtype=None or
    the operand's own, returned=False, where=True, a clip bound None."""
    if name in ("out", "axis", "a_min", "a_max"):
        return value is None
    if name == "dtype":
        return value is None or (not isinstance(value, Observable) and np.dtype(value) == dtype)
    return (name == "returned" and value is False) or (name == "where" and value is True)


def _plain_option(name: str, value) -> bool:
    """Whether an option has a kind of value NumPy takes, as jacobian_lab's implementations read it: an axis
    an int or a tuple of them, keepdims a bool, where a boolean mask, a number a number (else read, as NumPy
    reads or refuses it)."""
    if name == "axis":
        return isinstance(value, (int, np.integer)) or (type(value) is tuple and all(
            isinstance(v, (int, np.integer)) for v in value))
    if name == "keepdims":
        return type(value) is bool
    if name == "where":
        return type(value) is bool or (type(value) is np.ndarray and value.dtype == bool)
    if name in ("ddof", "correction", "initial"):
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if name == "ord":
        return value is None or isinstance(value, (int, float, str, np.integer, np.floating))
    return True  # weights, mean, clip's bounds: arrays or numbers


def _writes_out(func, args, kwargs) -> bool:
    """Whether ``func(*args, **kwargs)`` is given an array to write into (out=, by keyword or in its place)."""
    try:
        return inspect.signature(func).bind(*args, **kwargs).arguments.get("out") is not None
    except (TypeError, ValueError):  # NumPy's own refusal, from the read; or no signature to read
        return "out" in kwargs


def _read_into(args, compute):
    """``compute(args read)`` (`read_numbers`), each Observable among `args` that NumPy wrote into as out (a
    method's X.round(1, buffer), np.cumsum(X, 0, None, buffer)) given what was written, as f writes into one."""
    read = read_numbers(args)
    result = compute(read)
    for given, numbers in zip(args, read):
        if type(given) is Observable and not given._scalar and not same_bytes(given._array, numbers):  # -0.0 too
            given[...] = numbers
    return result


def _not_a_number(value) -> bool:
    return value is None or isinstance(value, (str, bytes))


def _holds(value) -> bool:
    """Whether `value` is or holds (in tuples, lists, dicts) an Observable."""
    if type(value) in (tuple, list):
        return any(map(_holds, value))
    if type(value) is dict:
        return any(map(_holds, value.values()))
    return type(value) is Observable


def _hash_of_scalar(array):
    return hash(array[()])


def _call_method(array, name, args, kwargs):
    return getattr(array, name)(*args, **kwargs)


def _call_scalar_method(array, name, args, kwargs):
    return getattr(array[()], name)(*args, **kwargs)


def _scalar_repr(array) -> str:
    return repr(array[()])


def read_numbers(value):
    """`value` with every Observable in it (nested in tuples, lists, dicts) read, through
    `observe`, into a fresh array: a value Python may decide on, which a program checks."""
    if type(value) is Observable:
        return observe(np.array, value._array)
    if type(value) in (tuple, list):
        return type(value)(read_numbers(v) for v in value)
    if type(value) is dict:
        return {k: read_numbers(v) for k, v in value.items()}
    return value
