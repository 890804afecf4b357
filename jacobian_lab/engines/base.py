"""The `Engine` protocol, the engine registry, and checks shared by every engine.

An engine differentiates ``f`` at a plain array ``x`` with seed-batched
derivative values: ``jvp(f, x, tangents)`` takes tangents of shape ``(k, *x.shape)``
and returns ``(y, tangents_out)`` with ``tangents_out.shape == (k, *y.shape)``;
``vjp(f, x)`` returns ``(y, pullback)`` where ``pullback`` maps cotangents
``(k, *y.shape)`` to ``(k, *x.shape)``. The harness in `jacobian_lab.harness`
builds Jacobians through this protocol alone, from the engines registered as
"forward" (its columns) and "reverse" (its rows); auto mode, `predict`,
`sparsity` and `jit` also read the tape of the reverse engine's pullback
(``pullback.tape``, ``pullback.push``). Another engine is registered under a
name of its own and called with ``get(name)``: the harness does not take it in
place of those two. The harness passes ``max_bytes`` to ``jvp``: an engine raises
`MemoryBudgetError` (with ``seed_bytes``, the bytes one seed needed, when it
knows) instead of holding more tangent memory than that.
"""
from __future__ import annotations

import contextvars
import functools
import gc
import inspect
import itertools
from typing import Callable, Protocol

import numpy as np

from .. import trees
from ..accounting import OWN
from ..inplace import ReadOnlyError, array0, read_only
from ..observables import MemoryRead
from ..primitives import escaped_message, is_masked
from ..tracing import Tracer, TracerConversionError, from_objects


class Engine(Protocol):
    """What an engine provides (see the module's docstring): a name, and derivatives of f at x for k seeds at
    once by ``jvp``, ``vjp`` or both; the harness takes ``jvp`` of the forward engine and ``vjp`` of the reverse
    one (whose pullback's ``push`` is a jvp over its tape).

    ``jvp(f, x, tangents)`` takes tangents of shape ``(k, *x.shape)`` and returns ``(f(x), tangents_out)``,
    ``tangents_out`` of shape ``(k, *y.shape)``; over ``max_bytes`` of tangents it raises `MemoryBudgetError`.
    ``vjp(f, x)`` returns ``(f(x), pullback)``, ``pullback`` mapping cotangents ``(k, *y.shape)`` to
    ``(k, *x.shape)``.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.engines.get("forward").jvp(np.sin, np.zeros(2), np.eye(2))[1]  # two seeds: the Jacobian's columns
    array([[1., 0.],
           [0., 1.]])
    >>> y, pullback = jl.engines.get("reverse").vjp(np.sin, np.zeros(2))
    >>> pullback(np.eye(2))  # two cotangent seeds: its rows
    array([[1., 0.],
           [0., 1.]])
    """

    name: str

    def jvp(self, f: Callable, x: np.ndarray, tangents: np.ndarray,
            max_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def vjp(self, f: Callable, x: np.ndarray) -> tuple[np.ndarray, Callable]: ...


_ENGINES: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    """Make `engine` available as ``jl.engines.get(engine.name)``, a name no engine has yet.

    Every derivative of the process reads the engines registered as "forward" and "reverse", so
    one registered in their place would change all of them: that is refused, as a second
    engine of any name is.

    >>> import jacobian_lab as jl
    >>> jl.engines.register(jl.engines.get("reverse"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: an engine named 'reverse' is registered already (ReverseEngine); register yours under a name ...
    """
    if engine.name in _ENGINES:
        registered = type(_ENGINES[engine.name]).__name__
        raise ValueError(f"an engine named {engine.name!r} is registered already ({registered}); register yours "
                         "under a name of its own and call it with jl.engines.get(name)")
    _ENGINES[engine.name] = engine
    return engine


def get(name: str) -> Engine:
    """The engine registered under `name` ("forward", "reverse", ...).

    >>> import jacobian_lab as jl
    >>> jl.engines.get("reverse").name
    'reverse'
    """
    try:
        return _ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; registered engines: {', '.join(sorted(_ENGINES))}") from None


def names() -> list[str]:
    """The names of the registered engines, sorted.

    >>> import jacobian_lab as jl
    >>> jl.engines.names()
    ['forward', 'reverse']
    """
    return sorted(_ENGINES)


_LEVELS = itertools.count(1)

#: The third collection threshold while a tape is recorded, swept or replayed: no full collection runs
_NO_FULL_COLLECTIONS = 1 << 30


class _CollectionPaused:
    """The context (and decorator) `collection_paused` gives: a class, not a generator, as it is entered
    several times per Jacobian and a generator's context costs about a microsecond each time. No lock: the
    count changes by one statement each way, which a thread switch does not split. As a decorator (how the
    engines use it) the count is taken last before the call's try and given back first in its finally, so
    no KeyboardInterrupt falls between them; one between setting the thresholds and counting, or between
    giving the count back and restoring them, leaves thresholds that the next pause restores (the ones it
    saves are never its own)."""

    def __init__(self):
        self.depth, self.saved = 0, gc.get_threshold()

    def __enter__(self):
        if self.depth == 0:
            now = gc.get_threshold()
            if now[2] != _NO_FULL_COLLECTIONS:
                self.saved = now
            gc.set_threshold(now[0], now[1], _NO_FULL_COLLECTIONS)
        self.depth += 1  # last: nothing between it and the caller's try

    def __exit__(self, *error):
        self.depth -= 1
        if self.depth <= 0:
            self._restore()

    def _restore(self):
        self.depth = 0
        now = gc.get_threshold()
        if now[2] == _NO_FULL_COLLECTIONS:  # else set since (by f, or another thread): those stay
            gc.set_threshold(now[0], now[1], self.saved[2])

    def __call__(self, fn):
        @functools.wraps(fn)
        def paused(*args, **kwargs):
            self.__enter__()
            try:
                return fn(*args, **kwargs)
            finally:  # `__exit__`, written out: its call could take an interrupt before the count is given back
                self.depth -= 1
                if self.depth <= 0:
                    self._restore()
        return paused


_PAUSED = _CollectionPaused()


def collection_paused() -> _CollectionPaused:
    """Python's full garbage collections held off while a tape is recorded, swept or replayed (a context,
    and a decorator): each walks every record of a long tape (a loop of scalar steps), and their number
    grows with the allocations, so a third of a reverse Jacobian went to them. The young generations are
    still collected, so cycles f leaves behind are freed as it runs, and `gc.disable()` is the caller's
    to keep; the third threshold is restored when the last paused call (in any thread) ends, unless it was
    set meanwhile (by f, or another thread), and thresholds set meanwhile stay.

    >>> import gc
    >>> with collection_paused():
    ...     gc.get_threshold()[2] > 1e9
    True
    """
    return _PAUSED


#: How many traced evaluations of a function are running in this context (`call_traced`): inside one, f's
#: calls of jacobian_lab run inside another derivative (or count), even where their own x is plain
_TRACING: contextvars.ContextVar[int] = contextvars.ContextVar("jacobian_lab_tracing", default=0)
OWN.add(_TRACING)


def inside_a_trace() -> bool:
    """Whether this code runs inside a traced evaluation: a derivative (or a count) taken around it."""
    return _TRACING.get() > 0


def next_level() -> int:
    """A fresh trace level: traces created later (inner ones when nested) interpret first."""
    return next(_LEVELS)


#: NumPy's errors for an object array that no traced argument dispatches, or that its loop over
#: objects cannot run (a ufunc with no method of that name, plain numbers beside traced ones)
_OBJECT_LOOPS = ("dtype('O')", "not supported for the input types", "loop of ufunc does not support argument")
_OBJECTS = (
    "an array of traced values (an object array: what np.asarray(x) of a small traced x or np.array([...]) "
    "of traced values gives). Call it on the traced array itself (drop the "
    "np.asarray: x is an array already), and build arrays from traced values with np.stack: "
    "np.stack([np.stack([a, b]), np.stack([c, d])]) for a 2x2 matrix")


def _refused(error, trace) -> None:
    """Raise the conversion a scipy routine asked for and `trace` refused, if `error` came out of that
    routine's package: compiled code that converts (brentq, fsolve calling f) may lose the refusal and fail
    another way ("f(a) and f(b) must have different signs", a SystemError)."""
    if trace.refused is None or isinstance(error, TracerConversionError):
        return
    refused, caller = trace.refused
    package = caller.rsplit(".", 1)[0] + "."
    if any(module.startswith(package) for module, _ in _frames(error)):
        raise TracerConversionError(f"{refused} (and then {type(error).__name__}: {error}, which follows from "
                                    "it)") from error


#: NumPy's error for ``y.flat[i] = v`` when v does not convert, without the conversion's error as its cause
_FLAT_SETTER = "Error setting single item of array."


def _reworded(error, trace) -> Exception | None:
    """The error that names the fix for one of NumPy's (see `call_traced`), or None for another error (and for one
    this gave already, which an enclosing derivative's evaluation meets again)."""
    if getattr(error, "_reworded", False):
        return None
    stored = isinstance(error.__cause__, TracerConversionError) or (
        str(error) == _FLAT_SETTER and trace.converting is not None)
    if isinstance(error, ValueError) and stored and _in_vectorize(error):
        return TracerConversionError(
            "np.vectorize with otypes=[float] (or another float type) stores each traced result into a plain array "
            "of that type, which would drop the derivative, so jacobian_lab refuses it (NumPy reports it as "
            f"{str(error)!r}). Drop otypes, and np.vectorize builds its array from the traced results (or pass "
            "otypes=[object]); better still, write the function with NumPy operations on whole arrays")
    if isinstance(error, ValueError) and stored:
        return TracerConversionError(
            "storing a traced value into an element of a plain array (y[i] = x[j], y.flat[i] = x[j]) or "
            "converting traced values to floats (np.asarray(x, dtype=float), which x is already) would drop the "
            f"derivative, so jacobian_lab refuses it (NumPy reports it as {str(error)!r}). Write into a traced "
            "array instead: "
            "y = np.zeros_like(x, shape=(n,)) in place of y = np.zeros(n), then y[i] = v; or build the array "
            "from traced values (np.stack([...]), np.concatenate, np.where(mask, value, y)). NumPy does the "
            "same inside np.mean, np.var, np.median or np.linalg given " + _OBJECTS)
    if isinstance(error, TypeError) and "NPY_ITER_REFS_OK" in str(error):  # np.nditer(x) of a traced x
        return TypeError(f"{error}: np.nditer reads a traced array as an array of its traced elements, which it "
                         "iterates only with flags=['refs_ok']; loop over the array itself (for v in x.flat, "
                         "or for row in x), or write the loop as NumPy operations on whole arrays")
    if isinstance(error, TypeError) and "is not a valid JAX type" in str(error):  # jax.numpy's refusal
        return TypeError(f"{error} f calls jax.numpy on a traced array, and jacobian_lab traces NumPy code: write "
                         "f with numpy (np.sin for jnp.sin), or differentiate it with JAX itself")
    if isinstance(error, MemoryRead) or isinstance(error, TypeError) and str(error).endswith(
            "a bytes-like object is required, not 'Observable'"):  # (memoryview(m), np.frombuffer(m): Python < 3.12)
        from ..staging import NotReplayable
        return NotReplayable(f"f reads the memory of a mask or an argument ({type(error).__name__}: {error}), which "
                             "jit hands f as a stand-in that checks the values f reads while it records, and memory "
                             "it cannot hand out (memoryview, np.frombuffer, __array_interface__); np.asarray(m) "
                             "or m.tobytes() read the numbers it checks")
    if isinstance(error, TypeError) and _about_a_tracer(error, "a bytes-like object is required, not "):
        return TypeError(f"{error}: a traced array has no memory for memoryview, np.frombuffer or bytes() to read, "
                         "and its derivative could not follow bytes; compute with NumPy operations on the array")
    if isinstance(error, TypeError) and _about_a_tracer(error, "unhashable type: "):
        return TypeError(f"{error}: a traced array is unhashable, as an ndarray is; NumPy's scalar x[0] hashes by "
                         "its value, but a traced one keying a dict or a cache (functools.lru_cache) would find "
                         "what another value computed: key the lookup on values that do not come from x")
    checker = _testing_function(error)
    if checker is not None and _traced_objects_met(error):
        why = (f"np.testing.{checker} reads a traced array as an array of its traced elements, an object array its "
               "checks cannot compute on or compare: assert with NumPy operations on the traced array (assert "
               "np.allclose(x, expected)), or check x outside f")
        if isinstance(error, AssertionError):  # a comparison of traced elements, which may have failed for that
            shown = any(f"{name}(" in str(error) for name in _tracer_names(Tracer))
            return AssertionError(f"{error}\n({why})") if shown else None
        return TypeError(f"{error} ({why})")
    if (isinstance(error, AttributeError) and isinstance(getattr(np, error.name or "", None), np.ufunc)
            and _traced_objects_met(error)):
        # NumPy's object loop calls each element's method of the ufunc's name (np.angle's arctan2 of a 0)
        return TypeError(f"{error} (NumPy's object loop for np.{error.name} calls that method of each element): "
                         f"a NumPy function cannot compute on {_OBJECTS}")
    if _in_numpys_own(error, "interp"):  # np.interp(x, xp, fp, period=p): NumPy dispatches on x, xp and fp alone
        return TypeError(f"{error}: np.interp dispatches on x, xp and fp, so with only its period traced NumPy's own "
                         "code ran, which cannot take a traced period; make x follow f's input too, "
                         "np.interp(x + 0.0 * period, xp, fp, period=period)")
    if isinstance(error, TypeError) and any(text in str(error) for text in _OBJECT_LOOPS):
        unsure = "" if "dtype('O')" in str(error) else " (if an operand is an array of traced values)"
        return TypeError(f"{error}{unsure}: a NumPy function (or a scipy.special ufunc) cannot compute on {_OBJECTS}")
    return None


def _note_scipy(error) -> None:
    """Add a note naming the scipy routine that `error` came out of holding a traced array: scipy computes on
    plain numbers (scipy.sparse.diags(x) fails on a count of diagonals), so its own message misleads. Only
    an error scipy's own code raised (not f's function that scipy called, nor jacobian_lab's), and once (an
    enclosing derivative's evaluation meets the same error)."""
    if not list(_frames(error))[-1][0].startswith("scipy.") or any(
            "was given a traced array" in note for note in getattr(error, "__notes__", ())):
        return
    held = [frame.f_code.co_name for module, frame in _frames(error) if module.startswith("scipy.") and _holds(frame)]
    if held:
        error.add_note(f"(scipy's {held[0]} was given a traced array, and scipy's routines compute on plain numbers, "
                       "apart from the ones jacobian_lab differentiates (jl.scipy, scipy.special's ufuncs, a plain "
                       "scipy.sparse matrix times an array): write this step with NumPy operations on the array)")


def _note_series(error, raised) -> None:
    """Add to `raised` a note naming the numpy.polynomial function `error` came out of: plain Python on plain
    arrays (np.asarray of its arguments, writes into arrays it made), whose failure on a traced array names
    NumPy's internals (a cast of an object array, a write with out=): `raised` is the reworded error of one,
    or `error` itself where it is about traced values or objects. Once, as `_note_scipy`."""
    inside = [(module, frame) for module, frame in _frames(error) if module.startswith("numpy.polynomial.")]
    if not inside or any("numpy.polynomial" in note for note in getattr(raised, "__notes__", ())):
        return
    if raised is error and not isinstance(error, TracerConversionError) and not any(
            word in str(error) for word in ("traced", "object")):
        return  # no conversion (a shape f got wrong, in polyval or Polynomial.__call__, which take traced arrays)
    module, frame = inside[0]  # the outermost: the function f called (polyfit, not the _fit it calls)
    owner = frame.f_locals.get("cls", frame.f_locals.get("self"))
    name = (f"numpy.polynomial.{owner.__name__ if isinstance(owner, type) else type(owner).__name__}."
            f"{frame.f_code.co_name}" if owner is not None else f"{module}.{frame.f_code.co_name}")
    fit = ("; for a least-squares fit in the power basis, np.polyfit(x, y, deg)[::-1] gives its coefficients and "
           "differentiates in x, y and the weights" if frame.f_code.co_name.endswith("fit") else "")
    raised.add_note(f"({name} is plain Python that computes on plain arrays, which a traced array cannot pass "
                    f"through, and has no derivative rule here; numpy.polynomial's evaluation functions (polyval, "
                    f"chebval, ...) and its series' values take traced arrays{fit})")


def _frames(error):
    """(module name, frame) of each frame `error` passed through, outermost first."""
    tb = error.__traceback__
    while tb is not None:
        yield tb.tb_frame.f_globals.get("__name__", ""), tb.tb_frame
        tb = tb.tb_next


def _in_vectorize(error) -> bool:
    """Whether `error` came out of the loop of an np.vectorize given float otypes, which stores each result into a
    float array (a store in the vectorized function itself is f's own)."""
    frames = list(_frames(error))
    module, frame = frames[-1]  # where it was raised: the loop's store, not inside the function
    if frame.f_code.co_name in ("<genexpr>", "<listcomp>") and len(frames) > 1:  # several outputs: stored in one
        module, frame = frames[-2]
    if frame.f_code.co_name != "_vectorize_call" or not module.startswith("numpy."):
        return False
    return any(np.dtype(kind).kind == "f" for kind in getattr(frame.f_locals.get("self"), "otypes", None) or ())


def _in_numpys_own(error, name: str) -> bool:
    """Whether `error` came out of NumPy's own function `name` holding a traced value that its dispatch did not
    see (a keyword argument such as interp's period)."""
    return any(frame.f_code.co_name == name and module.startswith("numpy.") and _holds(frame)
               for module, frame in _frames(error))


def _holds(frame) -> bool:
    """Whether one of `frame`'s local variables is a traced value."""
    return any(isinstance(value, Tracer) for value in frame.f_locals.values())


def _testing_function(error) -> str | None:
    """The np.testing function `error` was raised in (the outermost of its frames there), or None."""
    return next((frame.f_code.co_name for module, frame in _frames(error) if module.startswith("numpy.testing")),
                None)


def _traced_objects_met(error) -> bool:
    """Whether NumPy's code that `error` passed through held a traced array or an object array of traced values
    (np.angle's z, np.testing's actual)."""
    return any(isinstance(value, Tracer) or type(value) is np.ndarray and value.dtype.hasobject
               and any(isinstance(v, Tracer) for v in value.flat)
               for module, frame in _frames(error) if module.startswith("numpy.")
               for value in frame.f_locals.values())


def _about_a_tracer(error, text: str) -> bool:
    """Whether Python's `error` reads ``<text>'<a tracer class>'``: it names jacobian_lab's type, not f's problem."""
    message = str(error)
    at = message.find(text)
    return at >= 0 and message[at + len(text):].strip("'") in _tracer_names(Tracer)


def _tracer_names(cls) -> set:
    """The names of `cls` and of its subclasses, every engine's tracer (a new engine's too)."""
    return {cls.__name__}.union(*map(_tracer_names, cls.__subclasses__()))


@collection_paused()  # the evaluation that records a tape (or a program)
def call_traced(f, x, trace):
    """``check_output(f(x), trace)``: f run on the traced input x, its result validated.

    Two of NumPy's errors are turned into ones that name the fix. A traced scalar
    stored into an element of a plain array (``y[i] = x[j]``) reaches NumPy's
    element setter, which calls ``float()`` on it and reports the refusal as a
    bare ValueError ("setting an array element with a sequence.") raised from
    ours (np.mean of an object array of traced values converts too). And a NumPy
    function that no traced argument dispatches (np.linalg.solve of matrices built
    with np.array([[a, b], [c, d]]), np.isfinite of np.asarray(x)) refuses the
    object array it is given with a TypeError.
    """
    if getattr(x.primal, "_readonly", False):  # the x of an enclosing derivative (a Hessian's), given read-only
        read_only(x)
    if getattr(x.primal, "_mutable", False):  # or given as a 0-d array, which takes writes
        array0(x)
    depth, token = _TRACING.get(), None
    try:  # set inside: a Ctrl-C right after the set, before its token is kept, would leave the thread inside
        token = _TRACING.set(depth + 1)
        y = f(x)
        return check_output(y, trace)
    except Exception as error:
        reworded = _reworded(error, trace)
        if reworded is not None:
            for note in getattr(error, "__notes__", ()):  # where it was raised (a rule of a primitive of yours)
                reworded.add_note(note)
            reworded._reworded = True
            _note_series(error, reworded)
            raise reworded from error
        _refused(error, trace)
        if isinstance(error, ValueError) and "read-only" in str(error) and not isinstance(error, ReadOnlyError):
            # NumPy's own, from a write into a plain array: perhaps one of traced elements
            if any(module.startswith("numpy.random.") for module, _ in _frames(error)):
                raise ValueError(f"{error}: np.random's permutation shuffles an array of a traced x's elements, "
                                 "which it cannot write; index x with a permutation of its positions instead, "
                                 "x[rng.permutation(len(x))]") from error
            raise ReadOnlyError(f"{error}. If it is np.asarray(y) (or np.ascontiguousarray, np.asfortranarray, "
                                 "np.nditer's operand) of a traced y, an array of y's traced elements through which a "
                                 "write cannot reach y: write into y itself (y[i] = v, or y = y ** 2 for an nditer "
                                 "loop), or into a copy where one is meant (c = y.copy(), or y.copy(order='F') for a "
                                 "Fortran-ordered one)") from error
        _note_scipy(error)
        _note_series(error, error)
        raise  # scipy's own error types too (minpack's, from fsolve), named by `_refused` when it can
    finally:
        if token is not None:
            _TRACING.reset(token)
        else:  # restored by value
            _TRACING.set(depth)
        trace.finish()


def _returned_instead(y) -> str:
    """What to return instead of `y`, an object that is no array nor a tree of them, where its kind tells."""
    if isinstance(y, (set, frozenset)):
        return " (a set has no order to give its values places in an array: return them as a sorted list)"
    if callable(y) or inspect.ismodule(y):
        return " (it is a function, a class or a module itself: return what it computes)"
    if hasattr(y, "__iter__") or hasattr(y, "__next__"):  # a generator, an iterator, dict.values(), range
        return " (np.stack(list(...)) of its values)"
    if hasattr(y, "__dict__") or hasattr(type(y), "__slots__") and type(y).__slots__:
        return " (an object's arrays as a dict: {'a': out.a, 'b': out.b})"
    return ""


def check_output(y, trace):
    """Validate what f returned: `(value, traced)`, value a float array or a tracer of `trace`."""
    y = from_objects(y)  # return np.array([a, b]) of traced scalars
    if isinstance(y, Tracer):
        if y._trace is trace:
            # np.zeros_like(x) has no derivative: a copy of its values, writeable as f's result would be
            return (np.array(y.primal), False) if y.constant else (y, True)
        if y._trace.finished:
            raise TypeError(escaped_message("f returned"))
        return y, False  # a value of an enclosing trace alone: f's output does not depend on x here
    if y is None:
        raise TypeError("f returned None; it must return a float array (did it forget `return`?)")
    if isinstance(y, (list, tuple, dict, str, bytes)):
        raise TypeError(
            f"f returned a {type(y).__name__}; it must return a float array "
            "(or, through jacobian/jacfwd/jacrev, a tuple, list or dict of float arrays)"
        )
    if is_masked(y):
        raise TypeError("f returned a masked array (np.ma), whose mask jacobian_lab does not trace; return "
                        "np.where(mask, values, fill) instead, or the values alone (np.ma.getdata)")
    if isinstance(y, np.matrix):
        raise TypeError("f returned an np.matrix; it must return an ndarray: return np.asarray(...) of it (traced "
                        "arrays are ndarrays, whose * is elementwise: write matrix products with @)")
    if isinstance(y, complex):
        raise TypeError("f returned a complex number; jacobian_lab differentiates real functions only: return the "
                        "real and imaginary parts as two real outputs (np.stack([np.real(z), np.imag(z)]))")
    if not hasattr(y, "__array__") and not isinstance(y, (int, float, np.generic)):
        module = "" if type(y).__module__ == "builtins" else f"{type(y).__module__}."
        kind = trees.with_article(module + type(y).__qualname__)
        raise TypeError(f"f returned {kind}, not an array; it must return a float array, or a tuple, list or dict "
                        f"of them{_returned_instead(y)}")
    value = np.asarray(y)
    if value.dtype.kind not in "f":
        raise TypeError(
            f"f returned an array of dtype {value.dtype}; it must return floats. An integer, boolean "
            "or object result has no derivative (was it rounded, compared or cast?)"
        )
    return value, False
