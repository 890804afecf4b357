"""`Tracer`: the array stand-in every engine hands to user code.

It speaks NumPy: operators, methods, indexing, `__array_ufunc__` (NEP 13) and
`__array_function__` (NEP 18), all routed to `numpy_api`, which routes to the
primitives. Interpreters subclass it (`Dual`, `Node`, `Evaluated`) and add their own state.
Anything that would turn a traced value into a plain number or array, and so
silently drop its derivative, raises `TracerConversionError` instead.
"""
from __future__ import annotations

import builtins
import inspect
import numbers
import operator

import numpy as np

from . import inplace, trees
from .accounting import active_counter
from . import numpy_api as api
from . import scipy_refusals, scipy_special
from .primitives import Primitive, apply, observe, primal
from .rules import elementwise as E
from .rules.sparse import elementwise_error, is_sparse


class TracerConversionError(TypeError):
    """A traced value was converted to a plain array or number, dropping its derivative."""


def _new_view(tracer, result):
    """What an ndarray method that returns a view gives: `result`, or a new view of `tracer` where
    the method changed nothing (``x.ravel()`` of a 1-d x is another array object, as in NumPy)."""
    return inplace.alias(tracer) if result is tracer else result


def _conversion_error(what: str, instead: str = "for a value-only decision compare instead (`if x[0] > 0:` "
                      "works, comparisons return plain booleans)") -> TracerConversionError:
    return TracerConversionError(
        f"{what} on a traced array would drop its derivative, so jacobian_lab refuses it. "
        f"Keep the computation in NumPy operations on the array (np.sum, np.stack, indexing, ...); {instead}."
    )


#: np.asarray of a traced array of at most this many elements gives an object array of its traced
#: elements (`Tracer.__array__`), on which NumPy computes one traced scalar at a time; a larger one is
#: refused, since every operation would then dispatch that many primitives.
ELEMENTWISE = 256


#: The dtypes a traced result cannot have: complex (every rule is for real functions) and object (an
#: array of traced values built with np.array([...]), met by a primitive). Engines test
#: ``out.dtype in NOT_REAL`` on every traced result, which is cheaper than reading ``out.dtype.kind``.
NOT_REAL = frozenset(map(np.dtype, "FDGO"))
FLOAT64 = np.dtype(np.float64)  # NumPy's own instance: results of float64 operations carry it


def not_real_result(prim, out) -> TypeError:
    """The error for a traced operation whose result is in `NOT_REAL`."""
    if out.dtype == object and out.size and is_sparse(out.flat[0]):  # x * A: each element times the matrix
        return elementwise_error(prim.name, out.flat[0])
    if out.dtype == object:
        return TypeError(
            f"{prim.name} of a traced array got an object array (np.array of values that are neither numbers "
            "nor traced values?); jacobian_lab differentiates float arrays only. Build the operand as a float "
            "array, or with np.stack([...]) from traced values")
    return TypeError(
        f"{prim.name} of a traced array gave complex values (was an operand complex?); jacobian_lab "
        "differentiates real functions only. Carry the real and imaginary parts as two real arrays "
        "(np.exp(1j * x) is np.cos(x) + 1j * np.sin(x)) and return them as real outputs."
    )


def from_objects(value):
    """`value` as one traced array when it is an array of traced values built with np.array([...]) (an
    object array, see `Tracer.__array__`), as a float array when it is an object array of plain
    numbers (an element NumPy took out of one); anything else as it is."""
    if type(value) is not np.ndarray or value.dtype != object:
        return value
    items = list(value.flat)
    if any(isinstance(v, Tracer) for v in items):  # beside them: numbers, NumPy scalars, masks, ...
        other = [v for v in items if _text_or_none(v)]
        if other:  # np.stack would take a string for a number, and fail on None far from f's line
            raise TypeError(f"an array built with np.array([...]) holds traced values and {other[0]!r}, which is "
                            "no number; every entry must be a number or a traced value")
        return api.reshape(np.stack([_stackable(v) for v in items]), value.shape)
    if all(isinstance(v, numbers.Real) for v in items):  # None and strings are left to NumPy's errors
        return np.array([float(v) for v in items]).reshape(value.shape)
    return value


def _text_or_none(value) -> bool:
    """Whether `value` is no number to stand beside traced values in one array: a string, None, a date."""
    return value is None or isinstance(value, (str, bytes)) or (isinstance(value, np.generic)
                                                                and value.dtype.kind not in "biufc")


def _stackable(value):
    """`value` as np.stack takes it beside traced values: a Fraction or Decimal as a float."""
    exact = isinstance(value, numbers.Real) and not isinstance(value, (int, float, np.generic))
    return float(value) if exact else value


def blank_result(out) -> bool:
    """Whether an operation on arrays without a derivative (`Tracer.constant`) and plain ones alone gives
    such an array, rather than a plain value: when it gives floats (a comparison gives plain booleans)."""
    return isinstance(out, (np.ndarray, np.generic)) and out.dtype.kind == "f"


def objects_converted(args):
    """The operands with each array of traced values built with np.array([...]) as one traced array
    (`from_objects`), when there is one; else None. Engines call it for an object-dtype operand and
    dispatch the converted operands afresh, whichever trace they belong to."""
    converted = [from_objects(a) for a in args]
    return None if all(c is a for c, a in zip(converted, args)) else converted


def _read_only(value) -> np.ndarray:
    view = np.asarray(value).view()
    view.flags.writeable = False
    return view


def plain_operands(args: tuple, kwargs: dict):
    """(args, kwargs) with each traced array (in them or in a list or tuple in them) as its plain value,
    when none has a derivative to drop (`Tracer.constant`); else None."""
    def plain(value):
        if isinstance(value, (list, tuple)):
            return trees.sequence(type(value), [plain(v) for v in value])
        if isinstance(value, Tracer):
            if not value.constant:
                raise LookupError
            return np.asarray(value)
        return value

    try:
        return plain(tuple(args)), {key: plain(v) for key, v in kwargs.items()}
    except LookupError:
        return None


class FlatIndex:
    """``y.flat`` of a traced array: reads and writes in C order through a flat view of y, as NumPy's
    flatiter does (``y.flat[i] = v`` writes into y)."""

    __slots__ = ("_array", "_iterator")

    def __init__(self, array):
        self._array, self._iterator = array, None

    def __next__(self):  # a flatiter is an iterator too: next(y.flat)
        if self._iterator is None:
            self._iterator = iter(self)
        return next(self._iterator)

    def __getitem__(self, key):
        return inplace.clone(api.ravel(self._array)[key])  # a copy, as NumPy's flatiter reads

    def __setitem__(self, key, value):
        inplace.write(self._array, key, value, flat=True)  # into y's memory, whatever its strides

    def __iter__(self):
        return iter(api.ravel(self._array))  # (NumPy's function: a 1-d array itself, with no new view)

    def __len__(self):
        return self._array.size


def binary_method(fn, reflected=False):
    """The method behind a binary operator: ``fn(self, other)``, or ``fn(other, self)`` when reflected."""
    if isinstance(fn, Primitive):  # straight to the trace: operators are the hottest path
        def method(self, other):
            trace, theirs = self._trace, getattr(other, "_trace", None)  # `find_trace` of the two
            if theirs is not None and theirs.level > trace.level:
                trace = theirs
            return trace.process(fn, (other, self) if reflected else (self, other), {})
        return method
    if reflected:
        return lambda self, other: fn(other, self)
    return lambda self, other: fn(self, other)


def _equality(fn, different: bool):
    """== or != (`different`): `binary_method(fn)`, and against a string or bytes, which an array of numbers never
    equals, NumPy's answer for every element (its ufunc has no loop for the pair: it raised a UFuncTypeError)."""
    method = binary_method(fn)

    def compare(self, other):
        if isinstance(other, (str, bytes)):  # before the ufunc, whose failure a recording would take for f's
            return np.full(self.shape, different)[()]  # a 0-d array's answer is NumPy's scalar, as NumPy gives it
        return method(self, other)

    return compare


def binary_methods(fn):
    """An arithmetic operator's pair of methods: ``fn(self, other)`` and, reflected, ``fn(other, self)``."""
    return binary_method(fn), binary_method(fn, True)


#: Where each NumPy function takes out by position, with its parameters' names (None: nowhere).
_OUT_AT: dict = {}


#: An array to ask NumPy's own answers of (the array API's namespace and device)
_EMPTY = np.empty(0)

#: np.shape, np.ndim and np.size of a traced array alone: its attributes, without the work of a NumPy function's
#: call (a check of views, `unshared`), as NumPy code (and this package's own) asks them of every operand
_METADATA = {np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim, np.size: lambda a: a.size}


def _out_position(func):
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # no signature to read: out by keyword only
        return None
    for i, p in enumerate(params):
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return None
        if p.name == "out":
            return i, [p.name for p in params]
    return None


def _out_by_keyword(func, args, kwargs):
    """args and kwargs with an ``out`` passed by position (``np.clip(x, lo, hi, y)``) and the arguments
    after it passed by keyword, so that `_into_out` finds it where f wrote it either way."""
    if func not in _OUT_AT:
        _OUT_AT[func] = _out_position(func)
    found = _OUT_AT[func]
    if found is None or len(args) <= found[0]:
        return args, kwargs
    at, names = found
    return args[:at], {**kwargs, **dict(zip(names[at:], args[at:]))}


def _into_out(func, impl, args, kwargs):
    """A NumPy function given ``out=``: its result written into out, as NumPy writes it (into a traced
    out, or a view of one: the array it views changes), and out returned. A traced result cannot go
    into a plain out, which would drop its derivative."""
    out = kwargs.pop("out")
    name = f"{func.__module__}.{func.__name__}"
    if not (isinstance(out, Tracer) or type(out) is np.ndarray):
        raise TypeError(f"{name}(..., out=...) takes one array; assign the result instead "
                        f"(y = {name.replace('numpy.', 'np.', 1)}(...))")
    result = impl(*args, **kwargs)
    inplace.check_out(name, out, result)
    if isinstance(out, Tracer):
        inplace.assign(out, Ellipsis, result)
    elif isinstance(result, Tracer):
        raise inplace.traced_into_plain(name)
    else:  # values without a derivative (np.argmax's) into a plain array: NumPy's own write
        out[...] = result
    return out


class Tracer:
    """An array whose operations are interpreted by a trace (an engine)."""

    # _owner, _path and _views: which traced arrays share memory with this one (`primitives.note_view`)
    # _mutable: a 0-d value that NumPy gives as an array, not a scalar (`inplace.array0`)
    # _readonly: x, or a leaf of it, given read-only (`inplace.read_only`)
    __slots__ = ("_trace", "primal", "_owner", "_path", "_views", "_mutable", "_readonly", "__weakref__")
    __array_priority__ = 100

    def __init__(self, trace, primal):
        self._trace = trace
        self.primal = primal

    #: Whether it has no derivative to drop: an array of f's like ``np.zeros_like(x)`` before a traced
    #: value is written into it (`Trace.constant`). It converts to plain values as an ndarray does.
    constant = property(lambda self: False)

    def _plain(self, what: str, copy: bool = False, **instead):
        """The values of an array without a derivative, for a conversion (`what`); else the refusal.

        A read-only view, since writing into it could not reach this array (NumPy then says so), or
        with `copy` a copy of its own. They may depend on x (``d[x > 0] = 1``), so a recording keeps
        the values read as a check (`primitives.observe`).
        """
        if not self.constant:
            caller = scipy_refusals.caller(3)  # a scipy routine asking for it: quad, brentq (what its function returns)
            if caller is None:
                self._trace.converting = error = _conversion_error(what, **instead)
                raise error
            error = _conversion_error(f"{caller} converting a traced value to a number ({what})")
            self._trace.refused = error, caller  # its compiled code may lose the error: see `base._refused`
            raise error
        return observe(np.array if copy else _read_only, self.primal)

    # --- array metadata --------------------------------------------------------
    def _set_shape(self, shape):  # y.shape = (3, 1) reshapes y itself, as in NumPy
        inplace.reshaped(self, api.reshape(self, shape))

    shape = property(lambda self: np.shape(self.primal), _set_shape)
    ndim = property(lambda self: np.ndim(self.primal))
    size = property(lambda self: np.size(self.primal))
    dtype = property(lambda self: np.result_type(self.primal))
    T = property(lambda self: _new_view(self, api.transpose(self)))
    mT = property(lambda self: _new_view(self, api.swapaxes(self, -1, -2)))

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        counter = active_counter()
        if counter is not None:
            counter.printed(self.primal)  # jit's recording cannot replay a decision taken on the text
        return f"{type(self).__name__}(shape={self.shape}, primal={self.primal!r})"

    # --- NumPy protocols ----------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:  # np.sin(x), np.add(x, y): straight to the primitive
            prim = api.UFUNCS.get(ufunc)
            if type(prim) is Primitive:  # no call of Primitive.__call__: the operators skip it too
                if len(inputs) == 1:  # np.sin(x): x is this tracer, its trace the one to interpret it
                    return self._trace.process(prim, inputs, {})
                return apply(prim, inputs, {})
            if prim is not None:  # a composition (np.power, np.logaddexp, ...)
                return prim(*inputs)
        try:
            return scipy_special.dispatch(self, ufunc, method, inputs, kwargs)
        except NotImplementedError:
            plain = plain_operands(inputs, kwargs) if method != "at" and "out" not in kwargs else None
            if plain is None:  # (ufunc.at and out= write in place, which NumPy does on a read-only view too)
                raise
            return getattr(ufunc, method)(*plain[0], **plain[1])  # no derivative to drop: NumPy's own

    def __array_function__(self, func, types, args, kwargs):
        if func in _METADATA and not kwargs and len(args) == 1:  # np.shape(x) in NumPy code, often: no array
            return _METADATA[func](args[0])
        impl = api.FUNCTIONS.get(func)
        if impl is None:
            plain = plain_operands(args, kwargs)
            if plain is None:
                raise api.unsupported(f"{func.__module__}.{func.__name__}")
            if not api.holds_traced((args, tuple(kwargs.values()))):
                # np.poly's dispatcher returns its argument, so an object array's traced elements brought NumPy
                # here: the function itself would come back, its implementation runs NumPy's object loops
                func = getattr(func, "_implementation", func)
            return func(*plain[0], **plain[1])  # no derivative to drop: NumPy's own
        if len(args) > 2:  # out may come by position (np.clip(x, lo, hi, y), np.round(x, 2, y))
            args, kwargs = _out_by_keyword(func, args, kwargs)
        if kwargs.get("out") is not None:
            return _into_out(func, impl, args, kwargs)
        views = func in api.VIEWS
        return inplace.unshared(impl(*args, **kwargs), args + tuple(kwargs.values()), views,
                                not views or func in api.ITSELF)

    def __array__(self, dtype=None, copy=None):
        if scipy_refusals.sparse_matmul_asks():  # a 0-d object array makes scipy defer A @ x to x.__rmatmul__, which
            held = np.empty((), object)  # multiplies by the sparse matrix (`rules.sparse`)
            held[()] = self
            return held
        caller = None if self.constant else scipy_refusals.caller()
        if caller is not None:
            error = TracerConversionError(
                f"{caller} converts its input with np.asarray, which would drop the derivative of a traced "
                f"array, so jacobian_lab refuses it; it has no derivative rule here. "
                f"{scipy_refusals.instead_of(caller)}")
            self._trace.refused = error, caller  # compiled code (fsolve's) may lose it: see `base._refused`
            raise error
        if not self.constant and scipy_refusals.called_from("numpy", "as_strided"):
            # its byte strides would walk an object array's pointers as the values they are not
            raise TracerConversionError(
                "np.lib.stride_tricks.as_strided reads an array's memory with byte strides, which a traced "
                "array does not have; use np.lib.stride_tricks.sliding_window_view for windows, or indexing "
                "(x[idx], np.take) for any other arrangement of its elements")
        # `dtype is None`, not `in (None, object)`: NumPy's dtype == None holds for float64. NumPy's own code
        # converting to floats (np.mean of an object array) gets the objects too, and fails where
        # `call_traced` names the asarray that made them.
        as_objects = dtype is None or np.dtype(dtype) == object or scipy_refusals.called_from("numpy", None)
        if not self.constant and as_objects and self.size == 0:
            # no element to carry a derivative: NumPy's own empty array, so that np.sum of it is 0.0, not
            # an object array's int 0
            return np.empty(self.shape, self.dtype)
        if not self.constant and as_objects and self.size <= ELEMENTWISE:
            # np.array([a, b]) of traced scalars, or np.asarray(x) of a small traced array: an object
            # array of its traced elements, which operators and NumPy's own loops compute on and f may
            # return (`from_objects`). Read-only when it is x's own (writing could not reach x), not
            # when NumPy asks for a copy (np.array(x), the usual copy of initial values) or gives one (of a
            # NumPy scalar, which a 0-d value is unless it is a 0-d array).
            held = np.empty(self.shape, object)
            for index in np.ndindex(self.shape):
                held[index] = self[index] if self.ndim else self
            held.flags.writeable = bool(copy) or not (self.ndim or getattr(self, "_mutable", False))
            return held
        if not self.constant and not as_objects:
            raise TracerConversionError(
                f"np.asarray(x, dtype={np.dtype(dtype).name}), np.array(x, dtype=...) or np.{np.dtype(dtype).name}(x) "
                "of a traced array, or storing traced values into a plain array (y[1:] = x[1:]), makes a plain "
                "array, which would drop its derivative, so jacobian_lab refuses it. A traced array is a float array "
                "already: drop the conversion (x.astype(np.float32) converts between float dtypes); write into a "
                "traced array instead (y = np.zeros_like(x, shape=(n,)) in place of np.zeros(n)); and build an "
                "array of traced values with np.stack([a, b]). Code that converts its arguments (np.random's "
                "Generator methods, another array library) takes no traced array: write what it computes with "
                "NumPy's functions of x (x + rng.normal(0.0, 1.0, x.shape) for rng.normal(x, 1.0))")
        if not self.constant:
            raise TracerConversionError(
                "np.asarray / np.array (or a NumPy routine that calls it, np.ascontiguousarray, np.asfortranarray) "
                "on a traced array "
                f"of more than {ELEMENTWISE} elements "
                "would drop its derivative, so jacobian_lab refuses it. The usual causes: `x = np.asarray(x)` "
                "at the top of f (drop it: x is an array already; x.astype(float) converts); np.array([a, b]) of "
                "traced arrays (np.stack([a, b])); traced values stored into a plain array (y = np.zeros(n); "
                "y[1:] = v: make y with np.zeros_like(x, shape=(n,))); A.dot(x) with a plain A (A @ x); np.r_ / "
                "np.c_ (np.concatenate); np.ascontiguousarray(x) (x.copy(order='C'), or x where no copy is "
                "needed)")
        value = self._plain("np.asarray", copy=bool(copy))
        return value if dtype is None else value.astype(dtype)

    def __float__(self):
        # NumPy calls it too when a traced value is stored into a plain array (y[i] = x[j]), and so does
        # "%.4f" % loss; np.arange with a traced bound converts it too
        return float(self._plain("float(), np.float64() or a math function (math.exp: use np.exp) (or storing it "
                                 "into a plain array, y[i] = x[j]; \"%.4f\" % x; np.arange(0, x[0]))",
                                 instead="for a value-only decision compare instead (`if x[0] > 0:` works, "
                                 "comparisons return plain booleans); to log a value, print it outside f, or "
                                 "format it without a spec (f\"{x}\")"))

    def __int__(self):
        return int(self._plain("int()", instead="for a count or a size read from x's values, which has no "
                                                "derivative, round first: int(np.floor(x[0] * 4)) converts"))

    def __bytes__(self):  # else bytes(x) of a 0-d x would take x for a length (__index__)
        if self.constant:
            return bytes(self._plain("bytes()"))
        raise TypeError(f"a bytes-like object is required, not '{type(self).__name__}'")

    def __complex__(self):
        return complex(self._plain("complex()"))

    def __index__(self):
        return operator.index(self._plain("using it as an index")[()])

    def __round__(self, ndigits=None):
        if self.ndim:  # as NumPy: only its scalars define round()
            raise TypeError("round() of an array is not defined (as in NumPy); use np.round(x, decimals)")
        if ndigits is None:
            raise _conversion_error("round() to an int")
        return np.round(self, ndigits)

    def __format__(self, spec):
        if not spec:
            return str(self)
        if self.constant:
            return format(self._plain("format()")[()], spec)
        raise TracerConversionError(
            f"formatting a traced value with the format spec {spec!r} (an f-string or str.format in f) would "
            "read it as a plain number and drop its derivative, so jacobian_lab refuses it. Format it "
            "without a spec (f\"{x}\" shows the traced value), or print outside f"
        )

    def item(self, *args):
        return self._plain(".item()").item(*args)

    def tolist(self):
        if self.constant or self.size > ELEMENTWISE:
            return self._plain(f".tolist() of more than {ELEMENTWISE} elements").tolist()
        # nested lists of traced scalars, as np.asarray gives an object array of them (`__array__`)
        wide = self if self.dtype == np.float64 else E.as_float_dtype(self, np.float64)  # Python floats: float64
        return wide.__array__(copy=True).tolist() if self.ndim else wide

    def __bool__(self):
        # Control flow on a value is fine (as in eager PyTorch); only the branch taken is traced.
        return observe(bool, self.primal)

    def __setitem__(self, key, value):
        inplace.assign(self, key, value)  # NumPy's meaning, views included

    # --- operators ----------------------------------------------------------------
    __add__, __radd__ = binary_methods(E.add)
    __sub__, __rsub__ = binary_methods(E.subtract)
    __mul__, __rmul__ = binary_methods(E.multiply)
    __truediv__, __rtruediv__ = binary_methods(E.divide)
    __pow__, __rpow__ = binary_methods(E.power)
    __floordiv__, __rfloordiv__ = binary_methods(E.floor_divide)
    __mod__, __rmod__ = binary_methods(E.remainder)
    __divmod__, __rdivmod__ = binary_methods(api.UFUNCS[np.divmod])
    __matmul__, __rmatmul__ = binary_methods(api.matmul_operator)  # a scipy.sparse matrix too
    __lt__, __le__ = binary_method(E.less), binary_method(E.less_equal)
    __gt__, __ge__ = binary_method(E.greater), binary_method(E.greater_equal)
    __eq__, __ne__ = _equality(E.equal, False), _equality(E.not_equal, True)
    __hash__ = None
    # NumPy's ufuncs, which refuse a traced array by name: Python's own error would name the tracer's class
    __and__, __rand__ = binary_methods(np.bitwise_and)
    __or__, __ror__ = binary_methods(np.bitwise_or)
    __xor__, __rxor__ = binary_methods(np.bitwise_xor)
    __lshift__, __rlshift__ = binary_methods(np.left_shift)
    __rshift__, __rrshift__ = binary_methods(np.right_shift)

    def __invert__(self):
        return np.invert(self)

    # In place: the tracer itself takes the result, so every name bound to it sees it (`inplace`).
    __iadd__, __isub__ = inplace.operator(E.add, "+"), inplace.operator(E.subtract, "-")
    __imul__, __itruediv__ = inplace.operator(E.multiply, "*"), inplace.operator(E.divide, "/")
    __ipow__, __imatmul__ = inplace.operator(E.power, "**"), inplace.operator(api.matmul, "@")
    __ifloordiv__, __imod__ = inplace.operator(E.floor_divide, "//"), inplace.operator(E.remainder, "%")

    def __neg__(self):
        return E.negative(self)

    def __pos__(self):
        return inplace.clone(self)  # a copy, as NumPy's +x is

    def __abs__(self):
        return E.absolute(self)

    def __getitem__(self, index):
        return inplace.unshared(api.getitem(self, index), (self,))

    # --- methods ------------------------------------------------------------------
    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return np.sum(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return np.mean(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return np.prod(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def max(self, axis=None, out=None, keepdims=False, **kw):
        return np.max(self, axis=axis, out=out, keepdims=keepdims, **kw)

    def min(self, axis=None, out=None, keepdims=False, **kw):
        return np.min(self, axis=axis, out=out, keepdims=keepdims, **kw)

    def cumsum(self, axis=None, dtype=None, out=None):
        return np.cumsum(self, axis=axis, dtype=dtype, out=out)

    def cumprod(self, axis=None, dtype=None, out=None):
        return np.cumprod(self, axis=axis, dtype=dtype, out=out)

    def reshape(self, *shape, order="C"):
        return _new_view(self, api.reshape(self, shape[0] if len(shape) == 1 else shape, order))

    def ravel(self, order="C"):
        return _new_view(self, api.numpy_ravel(self, order))

    flat = property(lambda self: FlatIndex(self), lambda self, value: FlatIndex(self).__setitem__(slice(None), value))

    def flatten(self, order="C"):
        a, order = api.flattening(self, order, "numpy.ndarray.flatten")
        return inplace.laid_out(inplace.clone(api.ravel(a, order)), "C")  # always a copy, as NumPy's

    def transpose(self, *axes):
        return _new_view(self, api.transpose(self, axes[0] if len(axes) == 1 else (axes or None)))

    def swapaxes(self, axis1, axis2):
        return _new_view(self, api.swapaxes(self, axis1, axis2))

    def squeeze(self, axis=None):
        return api.squeeze(self, axis)

    def repeat(self, repeats, axis=None):
        return api.repeat(self, repeats, axis)

    def clip(self, min=None, max=None, out=None, **kw):
        return np.clip(self, min, max, out=out, **kw)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        return np.var(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, **kw)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        return np.std(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, **kw)

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None):
        return np.trace(self, offset, axis1, axis2, dtype, out=out)

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return np.diagonal(self, offset, axis1, axis2)

    def round(self, decimals=0, out=None):
        return np.round(self, decimals, out=out)

    def argmax(self, axis=None, **kw):
        return observe(np.argmax, self.primal, axis=axis, **kw)

    def argmin(self, axis=None, **kw):
        return observe(np.argmin, self.primal, axis=axis, **kw)

    def argsort(self, axis=-1, **kw):
        return observe(np.argsort, self.primal, axis=axis, **kw)

    def any(self, axis=None, **kw):
        return observe(np.any, self.primal, axis=axis, **kw)

    def all(self, axis=None, **kw):
        return observe(np.all, self.primal, axis=axis, **kw)

    def conj(self):
        return self  # real values: the array itself, as NumPy's method gives (np.conjugate copies)

    conjugate = conj
    real = property(lambda self: self)
    imag = property(lambda self: np.imag(self))
    nbytes = property(lambda self: np.asarray(primal(self)).nbytes)  # no conversion of an outer tracer
    itemsize = property(lambda self: np.result_type(self.primal).itemsize)

    def take(self, indices, axis=None, out=None, mode="raise"):
        return np.take(self, indices, axis=axis, out=out, mode=mode)

    def compress(self, condition, axis=None, out=None):
        return np.compress(condition, self, axis=axis, out=out)

    def nonzero(self):
        return observe(np.nonzero, self.primal)

    def argpartition(self, kth, axis=-1, kind="introselect", order=None):
        return np.argpartition(self, kth, axis=axis, kind=kind, order=order)

    def searchsorted(self, v, side="left", sorter=None):
        return np.searchsorted(self, v, side=side, sorter=sorter)

    # The array API's: array-API code (xp = x.__array_namespace__()) computes with NumPy, which traces
    def __array_namespace__(self, *, api_version=None):
        return _EMPTY.__array_namespace__(api_version=api_version)  # numpy, or NumPy's refusal of the version

    device = property(lambda self: _EMPTY.device)

    def to_device(self, device, /, *, stream=None):
        _EMPTY.to_device(device, stream=stream)  # NumPy's refusal of any device but "cpu"
        return self

    def dot(self, b, out=None):
        return np.dot(self, b, out=out)

    def copy(self, order="C"):  # of a 0-d array an array, of a NumPy scalar a scalar
        copied = inplace.laid_out(inplace.clone(self), order)
        return inplace.array0(copied) if getattr(self, "_mutable", False) else copied

    # copy.copy and copy.deepcopy (dataclasses.asdict, a state kept with deepcopy) copy the array as
    # NumPy's do; the trace it belongs to is shared, never copied
    def __deepcopy__(self, memo):
        return self.__copy__()

    def __copy__(self):  # in the memory order of the array, as NumPy's copy.copy
        return self.copy("K")

    def __reduce__(self):
        raise TypeError("a traced array cannot be pickled: its derivative lives in the running derivative "
                        "computation. Pickle plain values outside f, or copy inside f with x.copy() or "
                        "copy.deepcopy")

    # In place, as NumPy's: item assignments (`inplace.assign`)
    def fill(self, value):
        if np.ndim(value):
            raise ValueError("setting an array element with a sequence. (fill takes a scalar; assign an array "
                             "with y[...] = v)")
        self[...] = value

    def sort(self, axis=-1, kind=None, order=None):
        if axis is None:  # as NumPy's method, which sorts along one axis
            raise TypeError("'NoneType' object cannot be interpreted as an integer")
        self[...] = np.sort(self, axis=axis, kind=kind, order=order)

    def partition(self, kth, axis=-1, kind="introselect", order=None):
        self[...] = np.partition(self, kth, axis=axis, kind=kind, order=order)

    def put(self, indices, values, mode="raise"):
        np.put(self, indices, values, mode)

    def view(self, dtype=None, type=None):
        if isinstance(dtype, builtins.type) and issubclass(dtype, np.ndarray):  # x.view(Sub), as NumPy reads it
            dtype, type = None, dtype
        if dtype is not None and np.dtype(dtype) == self.dtype:  # the same numbers
            dtype = None
        if type is not None and type is not np.ndarray:
            raise TypeError(f".view({type.__name__}) on a traced array: a traced array is no ndarray subclass, and "
                            "its derivative would not follow one; compute with the traced array itself, and make "
                            f"the {type.__name__} of f's result outside f")
        if dtype is not None:
            raise _conversion_error(".view(dtype) (reading the bytes as another type)")
        return inplace.alias(self)

    def _missing(self, name):
        # Reached only for names of NumPy's (`NumpyName`) that the class does not define: say which
        # ndarray feature is missing.
        ufunc = getattr(np, name, None) if name[0] != "_" and not self.ndim else None
        if type(ufunc) is np.ufunc:
            # NumPy's loop over an object array (np.sin(np.array([a, b]))) calls the ufunc's name as a method
            return lambda *others: ufunc(self, *others)
        if name in ("strides", "data", "ctypes"):
            raise AttributeError(
                f"ndarray.{name} describes an array's memory, which a traced array does not have; for windows "
                "(as_strided with x.strides) use np.lib.stride_tricks.sliding_window_view, for any other "
                "arrangement of the elements indexing (x[idx], np.take)")
        if name in ("flags", "base", "tobytes", "tofile", "itemset", "getfield", "setfield", "dumps", "dump"):
            instead = ("branch on what NumPy computes (np.ndim(x), np.shape(x))" if name in ("flags", "base") else
                       "compute with its values through NumPy operations")
            raise AttributeError(
                f"ndarray.{name} reads or writes an array's memory, which a traced array does not have: its values "
                f"are computed as f runs, and its derivative follows them only through NumPy operations. Inside f, "
                f"{instead}; or call it outside f on a plain array")
        if not name.startswith("__") and hasattr(np.ndarray, name):
            raise AttributeError(
                f"ndarray.{name} is not supported on traced arrays (in-place or without a derivative "
                f"rule); use a NumPy function that returns a new array instead, or see "
                f"docs/architecture.md, 'Adding a primitive'"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def astype(self, dtype, copy=True, **kw):
        if np.dtype(dtype) == np.bool_:  # NumPy's truth of each element (NaN is true): a mask, as in JAX
            return self != 0
        if np.issubdtype(dtype, np.floating):
            converted = E.as_float_dtype(self, dtype)
            return inplace.laid_out(inplace.clone(converted), "K") if copy and converted is self else converted
        if not self.constant and np.issubdtype(dtype, np.integer):  # cell indices: (x / dx).astype(int)
            return np.trunc(self).astype(dtype)  # NumPy's cast rounds toward zero; a step: no derivative, as in JAX
        if np.issubdtype(dtype, np.complexfloating) and not self.constant:  # a constant's values convert as NumPy's
            raise TypeError(f".astype({np.dtype(dtype).name}) of a traced array: jacobian_lab differentiates real "
                            "functions only. Carry the real and imaginary parts as two real arrays (np.exp(1j * x) "
                            "is np.cos(x) + 1j * np.sin(x)) and return them as real outputs.")
        return self._plain(f".astype({np.dtype(dtype).name})").astype(dtype)


class NumpyName:
    """A name an ndarray has, or one of NumPy's ufuncs, that `Tracer` does not define: reading it on a
    traced array gives what `Tracer._missing` says (a ufunc as a method of a 0-d value, else why it is
    missing). One such descriptor per name rather than a ``__getattr__``: CPython does not specialize the
    attribute reads of a class with ``__getattr__``, and the engines read ``x._trace`` and ``x.primal``
    on every operation. Any other name gives Python's own AttributeError."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __get__(self, tracer, cls=None):
        if tracer is None:  # on the class itself, as without the descriptor
            raise AttributeError(self.name)
        return tracer._missing(self.name)


def _numpy_names() -> set:
    arrays = {name for name in dir(np.ndarray) if not name.startswith("__")}
    ufuncs = {name for name in dir(np) if name[0] != "_" and type(getattr(np, name, None)) is np.ufunc}
    return arrays | ufuncs


for _name in sorted(_numpy_names()):
    if not any(_name in cls.__dict__ for cls in Tracer.__mro__):
        setattr(Tracer, _name, NumpyName(_name))
del _name
