"""`jit`: compile a Jacobian function into a straight-line NumPy program and replay it.

The first call at a given input shape computes the Jacobian as usual while a
`staging.Recorder` writes down every primitive it evaluated. From that record
`Program` keeps only the work that depends on x and reaches the Jacobian:

* work on constants alone is done once (constant folding, up to
  `staging.FOLD_BYTES`): in forward mode, the one-hot seeds pushed through
  ``W @ x`` give ``W`` itself, so replaying ``tanh(W @ x + b)`` costs n²
  flops, not a 2n³ seed-block product;
* work the Jacobian never reads is dropped (the primal output of a gradient);
* the gradients of disjoint pieces of x are copied into place, not added;
* forward tangents keep only their seed rows that can be nonzero
  (`jacobian_lab.compaction`);
* f is evaluated once, not once per pass.

It is emitted as the source of one Python function (`Program.source`), which
runs the primitives' NumPy implementations with no tracing, dispatch or
counting. With mode "auto" both orders are compiled and the one whose
program does fewer FLOPs is kept, unless the eager prediction rules one out
by more than `BOTH_ORDERS_WITHIN`: recording it would make the first call pay
for a whole eager Jacobian in the costlier order. Auto also weighs compressed
seeds (one per color of the sparsity pattern, as `sparse_jacobian` pushes
them) when f's operations are all local (`_compressed`).

Like ``jax.jit``, this assumes f is a function of x alone: arrays it closes
over are read when it is compiled, and randomness or other outside state is
frozen. Decisions f takes on the values of x are checked on every call (see
`staging`): when one comes out differently, the Jacobian is recomputed and
recompiled for the new values, never replayed wrongly. An error is a decision
too: a call at which an operation of the program raises is computed by the
uncompiled function, where f may catch the error (`_replay`).
"""
from __future__ import annotations

import collections
import keyword
import math
import re
import sys
import threading
import warnings

import numpy as np

from . import arguments, compaction, engines, snapshots, trees
from .engines.base import collection_paused, inside_a_trace
from . import prediction as _prediction
from .accounting import PHASES, Cost, Counter, active_counter, counted, counted_by
from .jacobian import JacobianFunction, ValueAndGrad, check_scalar, finish, one_input_error, wraps
from .harness import columns, prepare, result_dtype, rows, whole_block
from .compressed import SparseJacobian, entries, fewer_seeds, holding, where_read
from .hessian import Derivative, HessianFunction, SparseHessian, structured
from .inputs import Inputs
from .memory import MATRIX, MemoryBudgetError, budget, building, check_dense, readable
from .primitives import REGISTRY, DerivativeError
from .sparsity import recorded_pattern
from .staging import INPUT, NotReplayable, Recorder, input_name, input_position, input_ref, is_input


KEEP_PROGRAMS = 8  # per input shape: a function with a few branches replays each of them
KEEP_SHAPES = 64  # input shapes (dtypes, layouts, other arguments' values) whose programs are kept, the latest used
# auto compiles both orders when their predicted eager FLOPs are within this factor: folding
# constants can make a program far cheaper than its eager order (a forward program folds the
# seeds through ``W @ x``), but not an order predicted to do this many times the other's work.
BOTH_ORDERS_WITHIN = 16.0


def jit(fun: JacobianFunction) -> "Jitted":
    """Compile a Jacobian function (like ``jax.jit(jax.jacrev(f))``).

    `fun` is what ``jl.jacfwd(f)``, ``jl.jacrev(f)``, ``jl.grad(f)``,
    ``jl.jacobian(f, mode=...)``, ``jl.hessian(f)``, ``jl.sparse_jacobian(f)``
    or ``jl.sparse_hessian(f)`` (without x) return. The result takes x and
    returns the same Jacobian as `fun`; after the first call at a shape it
    replays a compiled program. f must depend on its arguments alone (no
    randomness, no mutated globals), as for ``jax.jit``.

    A Jacobian, sparse Jacobian or Hessian function of f's `argnums` takes f's
    other arguments too, as ``jax.jit(jax.grad(loss))(w, X, y)`` does: their arrays and NumPy
    scalars are inputs of the program, so one program serves every batch X, y
    of its shapes, and other values (Python numbers, strings) are compiled in
    (see `jacobian_lab.inputs`).

    >>> import numpy as np, jacobian_lab as jl
    >>> W = np.arange(6.0).reshape(3, 2)
    >>> jac = jl.jit(jl.jacobian(lambda x: np.tanh(W @ x)))
    >>> bool(np.allclose(jac(np.zeros(2)), W))
    True
    >>> jac.program(np.zeros(2)).mode
    'forward'
    >>> step = jl.jit(jl.grad(lambda w, X, y: np.sum((X @ w - y) ** 2)))
    >>> X = np.eye(2)
    >>> step(np.zeros(2), X, np.ones(2)), step(np.zeros(2), 2 * X, np.ones(2)), step.compiles
    (array([-2., -2.]), array([-4., -4.]), 1)
    """
    if isinstance(fun, ValueAndGrad):
        raise TypeError("jl.jit compiles Jacobian functions, and a compiled program returns the derivative "
                        "alone; compile jl.grad(f) and evaluate f for its value")
    if getattr(fun, "has_aux", False):
        raise TypeError("jl.jit replays a compiled program without evaluating f, so it has no aux to return; "
                        "compile the function built without has_aux, and evaluate f for its aux")
    if getattr(fun, "executor", None) is not None:
        raise TypeError("jl.jit replays one compiled program in the calling thread, so it takes no executor; "
                        f"compile {fun!r}, built without executor=")
    if isinstance(fun, HessianFunction):
        return wraps(JittedHessian(fun), fun)
    if isinstance(fun, SparseJacobian):
        return wraps(JittedSparse(fun), fun, signature=not isinstance(fun, SparseHessian))  # a Hessian: one x
    if not isinstance(fun, JacobianFunction):
        raise TypeError(
            f"jl.jit compiles Jacobian functions, got {type(fun).__name__}; pass jl.jacrev(f), "
            "jl.jacfwd(f), jl.grad(f), jl.jacobian(f, mode=...), jl.hessian(f), jl.sparse_jacobian(f) or "
            "jl.sparse_hessian(f) (without x)"
        )
    return wraps(Jitted(fun), fun)  # takes f's arguments, as `fun` does


def _outside() -> int:
    """The `warnings.warn` stacklevel, from its caller, of the first frame outside jacobian_lab: the line
    of the user's code that called the compiled function."""
    frame, level = sys._getframe(1), 1  # the frame that warns is level 1
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "jacobian_lab":
        frame, level = frame.f_back, level + 1
    return level


class Jitted:
    """A compiled Jacobian function: one `Program` per input structure, shape, dtype and layout.

    `compiles` counts the programs built. A function whose branches follow the
    values of x gets a program per branch it takes, up to `KEEP_PROGRAMS` per
    input shape, tried in turn (most recently used first); a call none of them
    fits is then computed eagerly, with a warning naming where they differed.
    """

    def __init__(self, fun: JacobianFunction):
        self.fun, self._fun_name, self._argnums = fun, repr(fun), getattr(fun, "argnums", 0)
        self.compiles = 0  # recordings completed so far (a program, or the finding that f cannot be replayed)
        self._programs = collections.OrderedDict()  # key -> [Program, ...], the last used first; keys likewise, last
        # key -> why a recording there could not be replayed: a call no program fits is eager from then on
        self._refused: dict = {}
        self._values: dict = {}  # `Inputs.family` -> the values compiled in so far (`_room`)
        self._compiling: dict = {}  # key -> a lock: threads missing at once compile one program, not one each

    def __repr__(self) -> str:
        return f"jit({self.fun!r})"

    def __call__(self, *args, **kwargs):
        if (len(args) != 1 or kwargs) and inside_a_trace():  # as in `_run`, before the arguments are read
            return self.fun(*args, **kwargs)
        return self._run(*self._split(args, kwargs))[1]

    def _split(self, args: tuple, kwargs: dict) -> tuple:
        """(x, None) for a call with x alone, else (f's `argnums` arguments, the call's `Inputs`)."""
        if len(args) == 1 and not kwargs and arguments.plain(self._argnums, False):
            return args[0], None
        call = self._inputs(args, kwargs)
        return call.bound.x, call

    def _inputs(self, args: tuple, kwargs: dict) -> Inputs:
        return Inputs(self.fun, args, kwargs, self._fun_name)

    def _run(self, x, call=None) -> tuple:
        """(the program replayed at x, or None where the uncompiled function answered; the Jacobian). `call`:
        f's other arguments (`Inputs`), when f is called with them."""
        # inside another derivative (or given its values), the uncompiled function extends its trace, and sees
        # the values f closes over as that trace's, where a program has constants
        if inside_a_trace() or (call is not None and call.traced):
            return None, self._uncompiled(x, call)
        program = J = tried = None
        inputs = () if call is None else call.arrays
        if type(x) is np.ndarray and x.dtype.kind == "f":  # the common case, without the general preparation
            key = (None, x.shape, x.dtype.char, snapshots.layout(x), not x.flags.writeable)
            tried = _used(self._programs, key if call is None else key + (call.key,))
            program, J = _replay(tried, x, inputs) if type(tried) is list else (None, None)
            if J is RAISED:
                return None, self._uncompiled(x, call)
            if J is not None and program.out_def is None:
                return program, J.reshape(math.prod(program.y_shape), x.size) if self.fun.flat else J
        g, x_flat, key = self._prepare(x, call)
        if J is None:
            program, J = self._replayed(g, x_flat, key, tried, call)
            if program is None or J is RAISED:
                return None, self._uncompiled(x, call)
        g.out_def = program.out_def
        return program, finish(g, J, x_flat, self.fun.flat)

    def _uncompiled(self, x, call):
        """The Jacobian from the function `jit` compiles, at x (and f's other arguments in `call`)."""
        return self.fun(x) if call is None else self.fun(*call.args, **call.kwargs)

    def _replayed(self, g, x_flat, key, tried=None, call=None):
        """(program, J) of a program kept at `key` whose guards hold at x, else of one compiled now;
        (None, None) when f cannot be compiled, and (program, `RAISED`) when a program's operation
        raised at x: the uncompiled function answers then. `tried`: the programs already replayed
        at x, in vain; `call`: f's other arguments (`Inputs`), if any."""
        inputs = call.arrays if call is not None else ()
        programs = _used(self._programs, key)
        program, J = _replay(programs, x_flat, inputs) if programs is not None and programs is not tried \
            else (None, None)
        if J is not None:
            return program, J
        # first call at this key, or other values than every program was built for (a lock per key: f may
        # call another compiled function, or this one at another shape, which other threads may be compiling)
        with self._compiling.setdefault(key, threading.RLock()):
            current = self._programs.get(key)
            if current is not programs and current is not None:  # another thread compiled meanwhile (a new list)
                program, J = _replay(current, x_flat, inputs)
            if J is None and key not in self._refused:  # the programs kept still serve the values they fit
                if len(self._programs.get(key, ())) >= KEEP_PROGRAMS:
                    self._settle(key, x_flat.shape)
                elif self._room(call):
                    program, J = self._compile(g, x_flat, key, call)
        return program, J

    def _room(self, call) -> bool:
        """Whether a program may be compiled for the values `call` compiles in: up to `KEEP_PROGRAMS` sets of
        them per structure of the arguments. A number that changes on every call (a learning rate) would
        compile a program per call, and keep each; past the limit such calls are eager, with one warning."""
        if call is None or not call.values:
            return True
        family = call.family
        seen = self._values.setdefault(family, set())
        if call.values in seen or len(seen) < KEEP_PROGRAMS:
            seen.add(call.values)
            return True
        if family not in self._refused:
            places = ", ".join(call.compiled_in())
            reason = NotReplayable(f"f's {places} took more than {KEEP_PROGRAMS} values, each compiled in")
            self._refuse(family, reason, f"is computed without compiling at values of f's {places} beyond the "
                         f"{KEEP_PROGRAMS} it compiled in: a value compiled in is a constant of programs of its own, "
                         "so one that changes on every call would compile on every call; pass it as a NumPy "
                         "scalar or an array (np.float64(lr), np.asarray(lr)), which one program takes as an input")
        return False

    def _settle(self, key, shape) -> None:
        """No more programs at `key`: as many as are kept missed, so f's path follows values that vary from
        call to call, and compiling each would cost more than computing it (as torch.compile's recompile
        limit decides). Calls no program fits are eager from then on; the warning names the reads."""
        lines = list(dict.fromkeys(p.missed for p in self._programs[key] if p.missed))
        where = "; ".join(lines[:3]) if lines else "a value the program checks"
        self._refuse(key, NotReplayable(
            f"f took more paths through the values it reads than the {KEEP_PROGRAMS} programs kept at x of shape "
            f"{shape} (they differed at {where})"),
            f"at x of shape {shape} is computed without compiling where none of its {KEEP_PROGRAMS} programs "
            f"fits: each checks values f read from arrays computed from x (or from its other arguments), and they "
            f"differed at {where}. A branch "
            "on values (if, bool(), int(), a mask as an index) or NumPy code reading a mask or an argument "
            "(np.unique(m), np.argsort(m), np.asarray(X), an option given as an argument) takes a program per "
            "pattern of values; operations that compute on it instead (np.where(x > 0, a, b), x * (x > 0), "
            "X @ w) are recomputed by one program")

    def _refuse(self, key, reason: NotReplayable, said: str) -> None:
        """Compute calls at `key` that no program fits eagerly from now on, for `reason`, and warn: "jit: the
        Jacobian of f `said`"."""
        self._refused[key] = reason
        warnings.warn(f"jit: the {MATRIX.get()} of {getattr(self.fun.f, '__name__', 'f')} {said}",
                      stacklevel=_outside())

    def program(self, *args, **kwargs) -> "Program":
        """The program a call with these arguments replays, compiling it if needed."""
        return self._program(*self._split(args, kwargs))

    def _program(self, x, call) -> "Program":
        g, x_flat, key = self._prepare(x, call)
        program, _ = self._replayed(g, x_flat, key, call=call)
        if program is None:
            raise self._refused[key] if key in self._refused else self._refused[call.family]
        return program

    def _prepare(self, x, call=None):
        """(f flattened, x flattened, the key of its programs: structure, shape, dtype, memory layout and
        whether f may write into x, and what they are compiled for of f's other arguments in `call`)."""
        g, x_flat = prepare(self.fun.f if call is None else call.function, x)
        key = (g.in_def, x_flat.shape, x_flat.dtype.char, g.layout, g.read_only)
        return g, x_flat, key if call is None else key + (call.key,)

    def _compile(self, g, x, key, call=None):
        try:
            program, J = self._build(g, x, call)  # f may raise: then nothing was compiled
        except NotReplayable as reason:
            self.compiles += 1  # a recording that found f cannot be replayed
            self._refuse(key, reason, f"is computed without compiling, because {reason}")
            return None, None
        self.compiles += 1
        self._programs[key] = [program] + self._programs.get(key, [])
        _used(self._programs, key)
        _bounded(self._programs)
        return program, J

    def _build(self, g, x, call=None):
        """(program, J at x): what `_compile` records and keeps. With f's other arguments (`call`), f is recorded
        with them as the program's inputs."""
        if call is None:
            return compile_jacobian(self.fun, g, x)
        return _unwritten(call, compile_jacobian(self.fun, *_recorded(call)))

    def _through(self, flat: "Jitted", method: str, x):
        """``getattr(flat, method)(x)`` for the compiled function of one structure, its compiles counted here."""
        before = flat.compiles
        result = getattr(flat, method)(x)
        self.compiles += flat.compiles - before
        return result


class JittedHessian(Jitted):
    """A compiled Hessian: the compiled forward Jacobian of f's recorded gradient sweep.

    A tree of arrays x gets the compiled Hessian of f on one flat vector, one per
    structure, cut into blocks as `HessianFunction` cuts them. f's other
    arguments are the program's inputs, as for `Jitted`, beside an array x.
    """

    def __init__(self, fun: HessianFunction):
        super().__init__(fun.as_jacobian())
        self.hessian, self._fun_name, self._argnums = fun, repr(fun), fun.argnums
        # x's structure, layouts and read-only leaves -> the Jitted Hessian of f on the flat vector
        self._flat = collections.OrderedDict()

    def __repr__(self) -> str:
        return f"jit({self.hessian!r})"

    def __call__(self, *args, **kwargs):
        if (len(args) != 1 or kwargs) and inside_a_trace():  # as in `_run`, before the arguments are read
            return self.hessian(*args, **kwargs)
        x, call = self._split(args, kwargs)
        with building("Hessian"):
            if not structured(x):
                program, H = self._run(x, call)
                # f's tree of outputs: the one the program recorded, or the one the uncompiled call just saw
                gradient = self.fun.f if call is None else call.function
                leaves = gradient.out_def if program is None else program.leaves
                return gradient.unflattened(H, np.shape(x), leaves)
            g, x_flat, flat = self._flattened(x, call)
            return trees.blocks(self._through(flat, "__call__", x_flat), g.in_def, g.in_def)

    def _inputs(self, args: tuple, kwargs: dict) -> Inputs:
        return Inputs(self.hessian, args, kwargs, self._fun_name, wrap=Derivative)

    def _uncompiled(self, x, call):
        """The Hessian from the Jacobian of f's gradient, as a program computes it (not yet cut into blocks)."""
        return self.fun(x) if call is None else self.hessian.as_jacobian(call.function)(x)

    def program(self, *args, **kwargs) -> "Program":
        x, call = self._split(args, kwargs)
        if not structured(x):
            return self._program(x, call)
        _, x_flat, flat = self._flattened(x, call)
        return self._through(flat, "program", x_flat)

    def _build(self, g, x, call=None):
        program, H = super()._build(g, x, call)
        # the tree of outputs f returned as it was recorded
        program.leaves = (self.fun.f if call is None else call.recorded).out_def
        return program, H

    def _flattened(self, x, call=None):
        """(f on one flat vector, x as that vector, the Jitted Hessian for x's structure and layouts)."""
        if call is not None and not call.alone:
            raise TypeError(f"{self!r} takes f's other arguments beside one array x, and x here is a "
                            f"{type(x).__name__}: ravel the parameters into one vector, or bind the other arguments "
                            "first (functools.partial)")
        g, x_flat, fun = self.hessian.flattened(x, None if call is None else call.bound)  # argnums=(0, 1): f(*x)
        flat = _used(self._flat, (g.in_def, g.layout, g.read_only))
        if flat is None:
            flat = self._flat[g.in_def, g.layout, g.read_only] = Jitted(fun)
            _bounded(self._flat)
        return g, x_flat, flat


class JittedSparse(Jitted):
    """A compiled sparse Jacobian: the compressed passes of `sparse_jacobian` as a program, then its gather.

    The first call at an input structure, shape, dtype and layout reads the pattern and
    colors it as the eager sparse Jacobian does, while the passes of its seeds
    are recorded; a replay runs those passes as straight-line NumPy and gathers
    the entries into the same `scipy.sparse.csr_array`. A branch f takes on
    other values gets its own pattern and program; a bidirectional plan's
    program runs its forward passes, then its sweeps.
    """

    def __init__(self, fun: SparseJacobian):
        super().__init__(fun)
        self._flat = collections.OrderedDict()  # a sparse Hessian's SparseJacobian of one structure -> its JittedSparse

    def __call__(self, *args, **kwargs):
        if inside_a_trace():  # as `Jitted._run`: the uncompiled function, which refuses by name there
            return self.fun(*args, **kwargs)
        if self._structured_hessian(args, kwargs):
            x_flat, flat = self._flattened(args[0])
            return self._through(flat, "__call__", x_flat)
        x, call = self._split(args, kwargs)  # f's other arguments, for a sparse Jacobian's argnums
        if call is not None and call.traced:
            return self.fun(*args, **kwargs)
        program, S = self._replayed(*self._prepare(x, call), call=call)
        return self.fun(*args, **kwargs) if program is None or S is RAISED else S

    def program(self, *args, **kwargs) -> "Program":
        if not self._structured_hessian(args, kwargs):
            return super().program(*args, **kwargs)
        x_flat, flat = self._flattened(args[0])
        return self._through(flat, "program", x_flat)

    def _structured_hessian(self, args: tuple, kwargs: dict) -> bool:
        """Whether the call is a sparse Hessian's at a tree of arrays x; a sparse Hessian takes one x alone."""
        if not isinstance(self.fun, SparseHessian):
            return False
        if len(args) != 1 or kwargs:
            raise one_input_error(self)
        return structured(args[0])

    def _flattened(self, x):
        """(x as one flat vector, the JittedSparse of the Hessian on it, one per structure of x)."""
        x_flat, fun = self.fun.flattened(x)  # one SparseJacobian per structure, kept by the sparse Hessian
        flat = _used(self._flat, fun)
        if flat is None:
            flat = self._flat[fun] = JittedSparse(fun)
            _bounded(self._flat)
        return x_flat, flat

    def _build(self, g, x, call=None):
        if call is None:
            return compile_sparse(self.fun, g, x)
        return _unwritten(call, compile_sparse(self.fun, *_recorded(call)))


def _used(cache: collections.OrderedDict, key):
    """``cache.get(key)``, moved to the end as the most recently used: `_bounded` drops from the front."""
    value = cache.get(key)
    if value is not None:
        try:
            cache.move_to_end(key)
        except KeyError:  # another thread's compile dropped it meanwhile
            pass
    return value


def _bounded(cache: collections.OrderedDict) -> None:
    """Drop the least recently used entries of `cache` past `KEEP_SHAPES`: programs by input shape, or compiled
    functions by structure, each of which keeps programs of its own. A new one at every call would keep them all;
    a shape called between new ones stays."""
    for old in list(cache)[:-KEEP_SHAPES]:
        cache.pop(old, None)


def _recorded(call) -> tuple:
    """(f flattened, x, the arrays of f's other arguments) as a program with inputs is recorded (`Inputs`)."""
    recorded, inputs = call.recording()
    g, x = prepare(recorded, call.bound.x)
    return g, x, inputs


def _unwritten(call, built):
    """`built`, unless f wrote into one of its arguments while it was recorded: a program would not write, and
    eager mode writes into the caller's array, so such an f is computed eagerly (`Inputs.written`)."""
    written = call.written()
    if written:
        raise NotReplayable(f"f wrote into its {', '.join(written)}, which a program would not do (eager mode "
                            "writes into the caller's array)")
    return built


def compile_sparse(fun: SparseJacobian, g, x, inputs=()):
    """(program, the sparse Jacobian at x): `fun`'s compressed passes recorded as they run, `inputs` the arrays
    of f's other arguments (`compile_jacobian`)."""
    x = snapshots.copy(x, faithful=True)  # as in compile_jacobian: an array f closes over stays a constant
    recorder = Recorder(x, inputs)

    def record():
        y, pullback = engines.get("reverse").vjp(g, x)
        pattern, (mode, seeding), reads = fun.planned(pullback, np.size(y))
        values = entries(_capturing(pullback, recorder), pattern, seeding, np.shape(y), x, fun.batch_size, reads)
        return y, pattern, mode, seeding, reads, values

    y, pattern, mode, seeding, reads, values = counted(record, counter=recorder)[0]
    recorder.check()
    order = "forward" if seeding.symmetric else mode  # a star coloring's seeds are tangents
    program = CompressedProgram(recorder, order, np.shape(y), x, pattern, reads)
    return program, holding(pattern, values)


RAISED = object()  # what `_replay` gives for J when a program's operation raised at x

# Errors an operation raises on some values (LinAlgError is a ValueError; FloatingPointError under
# np.errstate an ArithmeticError; a RuntimeWarning made an error by a warnings filter a Warning).
_VALUE_ERRORS = (ArithmeticError, ValueError, Warning, DerivativeError)


def _replay(programs: list, x, inputs=()):
    """(program, J) from the first program whose guards hold at x (and `inputs`), moved to the front; else
    (None, None).

    J is `RAISED` when an operation of a program raised at x. Then no program answers: f may catch
    the error and go another way, or eager mode raise it more clearly, so the caller calls the
    uncompiled function at x, and compiles nothing (a recording that raised would not be kept).
    """
    for i, program in enumerate(tuple(programs)):  # a copy: another thread may move one of them meanwhile
        try:
            J = program(x, *inputs)
        except _VALUE_ERRORS:
            return program, RAISED
        if J is not None:
            if i:
                _to_front(programs, program)
            return program, J
    return None, None


_MOVING = threading.Lock()


def _to_front(programs: list, program) -> None:
    """Move `program` to the front of `programs`, where the next replay tries it first."""
    with _MOVING:
        if program in programs:
            programs.remove(program)
            programs.insert(0, program)


@collection_paused()  # a recording as long as a tape, and both orders' programs built from it
def compile_jacobian(fun, g, x, inputs=()):
    """(program, J at x): J computed eagerly while it is recorded, and the cheapest program. `inputs`: the
    arrays the program takes besides x, which f gets as `Observable`s over them (`Inputs.recording`)."""
    x = snapshots.copy(x, faithful=True)  # f may close over the very array passed as x: it stays a constant
    recorder = Recorder(x, inputs)
    caller = active_counter()

    def record():
        results, error = {}, None
        y, pullback = engines.get("reverse").vjp(g, x)
        if fun.scalar:
            check_scalar(g.unflatten(y, "out"))  # a tuple f returned, not the vector it was ravelled into
        # decided on the recorded tape, so f runs once; outside the recording, whose program must not replay
        # the probes: they count where the call is counted
        modes = counted_by(caller, _orders, fun, x, y, pullback)
        compressed = _compressed(fun, g, pullback, y, x, recorder) if fun.mode == "auto" else None
        if compressed is not None and sum(compressed[0].seeds) * BOTH_ORDERS_WITHIN <= min(np.size(y), x.size):
            modes = ()  # this many times fewer seeds: recording a dense order would only lengthen the first call
        modes = _recordable(modes, int(np.size(y)), x.size, result_dtype(x).itemsize, budget(fun.max_memory),
                            compressed is not None)
        for mode in modes:
            build = columns if mode == "forward" else rows
            try:
                results[mode] = build(g, x, fun.batch_size, fun.max_memory, (y, _capturing(pullback, recorder)))
            except MemoryBudgetError as e:  # auto: the other order may fit
                error = e
        return y, results, error, compressed

    y, results, error, compressed = counted(record, counter=recorder)[0]
    recorder.check()
    if not results and compressed is None:
        raise error
    programs = {Program(recorder, mode, np.shape(y), x, g.out_def): J for mode, J in results.items()}
    if compressed is not None:
        programs[compressed[0]] = compressed[1]
    best = min(programs, key=lambda p: (p.cost.total(), len(p.equations)))
    J = programs[best]
    return best, (J if best.fresh else J.copy())  # J may be a block the program keeps


def _recordable(modes, m: int, n: int, itemsize: int, limit: int, compressed: bool = False) -> tuple:
    """The orders of `modes` whose recordings fit `limit` bytes together: each keeps J and the seeds of
    every pass (n x n forward, m x m reverse), which its program keeps as constants; auto's second
    order only where both fit. Where none does: none, if `compressed` seeds were recorded already (their
    program keeps few), else NotReplayable, and eager mode, which keeps J alone, answers."""
    needs = {mode: (m * n + (n * n if mode == "forward" else m * m)) * itemsize for mode in modes}
    kept = []
    for mode in modes:
        if sum(needs[k] for k in kept) + needs[mode] <= limit:
            kept.append(mode)
    if modes and not kept and not compressed:
        first = modes[0]
        k = n if first == "forward" else m
        raise NotReplayable(
            f"compiling the dense {m}x{n} {MATRIX.get()} keeps it and the {k}x{k} {first} seeds of its passes, "
            f"{readable(needs[first])}, over the memory budget of {readable(limit)} (max_memory); a larger "
            "max_memory lets it compile")
    return tuple(kept)


def _compressed(fun, g, pullback, y, x, recorder):
    """(program, J) of compressed seeds, recorded in auto mode when they could be fewer than the dense
    order's, else None.

    Only a tape of elementwise operations, moves and scatters is read for its pattern: each output
    element then depends on few inputs, and reading it is cheap. A matmul or a reduction makes the
    pattern dense or costly to read (90 ms for `dense`'s 300x300), for seeds that could not be fewer.
    """
    m, n = int(np.size(y)), x.size
    if fun.scalar or not _local(pullback, m, n):
        return None
    check_dense(m, n, result_dtype(x).itemsize, budget(fun.max_memory))  # the dense J, refused as eager mode would
    pattern = recorded_pattern(pullback, m)
    planned = fewer_seeds(pattern)
    if planned is None:
        return None
    mode, seeding = planned
    reads = where_read(pattern, seeding)
    values = entries(_capturing(pullback, recorder, "sparse "), pattern, seeding, np.shape(y), x, fun.batch_size,
                     reads)
    if not np.isfinite(values).all():  # eager one-hot seeds may hold NaN off the pattern here: see `dense`
        return None
    program = CompressedProgram(recorder, mode, np.shape(y), x, pattern, reads, "sparse ", g.out_def, dense=True)
    return program, program.dense(values)


# Structures whose outputs each depend on a few operand elements (see `Primitive.structure`; a scipy.sparse
# matrix's rows hold few entries).
_LOCAL = frozenset(["elementwise", "move", "scatter", "sparse_matmul", "move_at", "scatter_at"])


def _local(pullback, m: int, n: int) -> bool:
    """Whether auto reads the pattern of this tape: at least 3 rows and columns, every operation local (and the
    package's own: the structure of one registered outside it is trusted only where a sparse Jacobian is asked
    for, see `rule_checks`)."""
    return min(m, n) >= 3 and all(r.prim.structure in _LOCAL and r.prim.builtin for r in pullback.tape.records[1:])


def first_call_seeds(f, x) -> tuple[str, int] | None:
    """(mode, seeds) of the compressed passes ``jit(jacobian(f))`` records on its first call in place of a
    dense order, or None when it records a dense one: what its first call costs can be priced before it runs.

    >>> import numpy as np
    >>> first_call_seeds(lambda u: u[2:] - 2 * u[1:-1] + np.exp(u[:-2]), np.ones(100))
    ('forward', 3)
    """
    g, x = prepare(f, x)
    y, pullback = engines.get("reverse").vjp(g, x)
    m, n = int(np.size(y)), x.size
    planned = fewer_seeds(recorded_pattern(pullback, m)) if _local(pullback, m, n) else None
    if planned is None or planned[1].seeds * BOTH_ORDERS_WITHIN > min(m, n):
        return None
    return planned[0], planned[1].seeds


def _orders(fun, x, y, pullback) -> tuple[str, ...]:
    """The orders to record: fun's own, or for auto the predicted winner and, when close, the other."""
    if fun.mode != "auto":
        return (fun.mode,)
    prediction = _prediction.decide(x, y, pullback, fun.batch_size, fun.max_memory)[1]
    # The probes of a tape not seen before staged its VJP rules unrecorded, as constants: the recording's
    # sweeps must stage their own, which a replay recomputes from x.
    pullback.tape.unstage()
    # eager auto's choice and its memory errors, with both orders' FLOPs (None: reverse does not fit)
    mode, fwd, rev, _ = prediction._decide(fun.batch_size, fun.max_memory)
    if fwd is None or max(fwd, rev) > BOTH_ORDERS_WITHIN * max(min(fwd, rev), 1.0):
        return (mode,)
    return ("forward", "reverse")


def _capturing(pullback, recorder, prefix: str = ""):
    """`pullback` (and its `push`) with each pass's derivative block marked as an output, filed under
    the segment `prefix` + "forward" (pushes) or + "reverse" (sweeps)."""
    def sweep(g):
        recorder.segment = prefix + "reverse"
        recorder.own(g)
        ct = pullback(g)
        recorder.output(ct, len(g))
        return ct

    def push(tangents, max_bytes=None):
        recorder.segment = prefix + "forward"
        recorder.own(tangents)
        try:
            y, t = pullback.push(tangents, max_bytes)
        except MemoryBudgetError:
            recorder.outputs.pop(recorder.segment, None)  # the harness restarts with smaller passes
            raise
        recorder.output(t, len(tangents))
        return y, t

    sweep.seed_elements = getattr(pullback, "seed_elements", 0)
    sweep.widest = getattr(pullback, "widest", 0)
    sweep.push = push
    return sweep


class Program:
    """The part of a recorded Jacobian computation that depends on x, as one Python function.

    Attributes: `mode` ("forward" or "reverse"), `source` (the generated code),
    `equations` (the recorded equations it runs), `cost` (the `Cost` of one
    replay, also by phase in `costs`), `constant_bytes` (what it keeps from
    compile time), `guards` (checks of values f branched on), `variables`
    (counts of work read from values, `staging.Variable`: each replay computes
    them again and counts what they come to, where `cost` holds the recording's).

    A forward program whose tangents hold structurally zero seed rows runs
    compacted (`jacobian_lab.compaction`): `source`, `equations` and `cost`
    are those of the compact code, and `dense_source`, `dense_cost` and
    `dense_costs` those of the dense code a replay runs instead when a value
    multiplying a compacted tangent is not finite (counting then adds the
    dense cost). Without compaction the two are the same.
    """

    def __init__(self, recorder: Recorder, mode: str, y_shape, x, out_def, prefix: str = ""):
        self.mode, self.y_shape, self.x_shape, self.out_def = mode, tuple(y_shape), x.shape, out_def
        self.dtype = result_dtype(x)
        # (row width of a pass's block, shape of J): reverse blocks are rows of J, forward ones columns
        width = math.prod(self.x_shape) if mode == "reverse" else math.prod(self.y_shape)
        self._layout = width, self.y_shape + self.x_shape
        # a bidirectional program replays its forward passes, then its sweeps, after the shared primal work
        orders = ("forward", "reverse") if mode == "bidirectional" else (mode,)
        segments = (None, *[prefix + order for order in orders])
        blocks = [block for segment in segments[1:] for block in recorder.outputs.get(segment, [])]
        self.seeds = [k for _, _, k in blocks]
        eqs = recorder.equations
        observations = [o for o in recorder.observations if o.segment in segments]
        roots = [r for _, r, _ in blocks] + [r for o in observations for r in o.refs] + _may_raise(eqs, segments)
        run = _needed(eqs, roots)
        placements, absorbed = _placements(eqs, run, roots)
        filled = {i for i, (shape, parts) in placements.items() if _fills(shape, parts)}
        run = [i for i in run if i not in absorbed]
        lines = [i for i in run if i not in placements]
        self.equations = [eqs[i] for i in lines]
        kept_lines = set(lines)
        self.variables = [v for v in recorder.variables if v.equation in kept_lines]
        self.guards = len(observations)
        self.reads = [o.where for o in observations]  # where f read the values each guard checks
        self.missed = None  # that of the guard that failed at the last call no replay answered
        self.costs = _costs(self.equations)  # a placement copies: no arithmetic
        code = _Code(eqs, set(run), placements, recorder.inputs, quiet=recorder.quiet, filled=filled)
        self.source = code.emit(run, observations, blocks, self.variables)
        self.fresh = all(r in code.running for _, r, _ in blocks)  # else a block is a constant it keeps
        self._run = _compiled_on_first_call(self, code)
        self.dense_source, self.dense_costs, self._dense = self.source, self.costs, None
        kept = code.memory  # id of each constant array -> its bytes
        if mode == "forward":
            rewrite = compaction.compact(eqs, run, placements, blocks, observations, self.seeds, recorder.inputs,
                                         self.variables)
            if rewrite is not None and _total(_costs(rewrite.equations)).total() < self.cost.total():
                kept.update(self._run_compacted(rewrite, observations, recorder.inputs, recorder.quiet, filled))
        self.constant_bytes = sum(kept.values())
        self._work = self._counter(self.costs)  # what counting a replay adds: known in advance
        self._dense_work = self._counter(self.dense_costs) if self._dense else None  # only compact code falls back

    def _run_compacted(self, rewrite, observations, inputs, quiet: dict, filled: set) -> dict:
        """Replay `rewrite` (`compaction.Compacted`), the dense code kept for when it returns DENSE. `filled`:
        the dense code's placements that need no zeros, which the rewrite keeps at their indices."""
        compact = _Code(rewrite.eqs, set(rewrite.run), rewrite.placements, inputs, rewrite, quiet, filled)
        self.source = compact.emit(rewrite.run, observations, rewrite.blocks, self.variables)
        self._run, self._dense = _compiled_on_first_call(self, compact), self._run
        self.equations = rewrite.equations
        self.costs = _costs(self.equations)
        return compact.memory

    @property
    def cost(self) -> Cost:
        """The work of one replay: `costs` summed."""
        return _total(self.costs)

    @property
    def dense_cost(self) -> Cost:
        """The work of one replay of the dense code: `dense_costs` summed."""
        return _total(self.dense_costs)

    def __call__(self, x: np.ndarray, *inputs) -> np.ndarray | None:
        """The Jacobian at x, shape ``y_shape + x.shape``; None when a guard fails. `inputs`: the arrays of
        f's other arguments, when it was compiled with them (`inputs.Inputs`)."""
        blocks = self._run(x, *inputs)
        work = self._work
        if blocks is compaction.DENSE:  # a compacted row would hold NaN: the dense code computes it
            blocks, work = self._dense(x, *inputs), self._dense_work
        if type(blocks) is int:  # the number of the guard that failed
            self.missed = self.reads[blocks]
            return None
        counts = None
        if self.variables:
            blocks, counts = blocks
        counter = active_counter()
        if counter is not None:
            counter.merge(work)
            if counts is not None:
                counter.merge(self._varied(counts))
        return self._assemble(blocks)

    def _varied(self, counts) -> Counter:
        """What the counts of work read from values (`variables`) came to at this replay, beyond the
        recording's, which `cost` holds."""
        counter = Counter()
        for v, count in zip(self.variables, counts):
            counter.phase = v.phase
            counter.add((int(count) - v.value) * v.times, 0)
        return counter

    def _assemble(self, blocks):
        """J from the passes' blocks: rows (reverse) or columns (forward) of an (m, n) matrix."""
        width, shape = self._layout
        if len(blocks) == 1 and self.fresh and whole_block(blocks[0], self.dtype):
            M = blocks[0].reshape(self.seeds[0], width)
        else:  # several passes, or a block the program keeps: a fresh array the caller owns
            mats = [b.reshape(k, width) for b, k in zip(blocks, self.seeds)]
            M = np.concatenate(mats, dtype=self.dtype) if mats else np.zeros((0, width), dtype=self.dtype)
        return (M if self.mode == "reverse" else M.T).reshape(shape)

    def _counter(self, costs) -> Counter:
        counter = Counter()
        for phase, cost in costs.items():
            counter.phase = phase
            counter.add(cost.flops, cost.transcendentals)
        for k in self.seeds:
            counter.count_pass(k)
        return counter


def _defined(source: str, namespace: dict):
    """The function ``program`` that `source` defines, compiled with `namespace` as its globals."""
    exec(compile(source, "<jacobian_lab.compiled>", "exec"), namespace)
    return namespace["program"]


def _compiled_on_first_call(program: Program, code: "_Code"):
    """A stand-in for the function `code` writes, which compiles it on its first call and takes its place in
    `program`: auto mode drops the order it compares against unrun, and a compacted program's dense code runs
    only where a value is not finite, so neither is compiled (CPython's compile of a long program is a fifth
    of its first call)."""
    source, namespace = code.source, code.namespace  # not code itself, which holds every recorded value

    def first(*args):
        run = _defined(source, namespace)
        for name in ("_run", "_dense"):
            if program.__dict__.get(name) is first:
                setattr(program, name, run)
        return run(*args)
    return first


class CompressedProgram(Program):
    """A `Program` of compressed passes: its blocks are one derivative per color, and a replay
    gathers the pattern's entries from them (`reads`, the plan's `compressed.where_read`) into a
    `csr_array`, or with `dense` into the Jacobian as an array of shape ``y_shape + x_shape``."""

    def __init__(self, recorder: Recorder, mode: str, y_shape, x, pattern, reads: dict, prefix: str = "",
                 out_def=None, dense: bool = False):
        super().__init__(recorder, mode, y_shape, x, out_def, prefix)
        self.pattern, self._reads, self._dense_result = pattern, reads, dense
        if dense:  # each entry's place in the dense (m, n) J: a scatter there beats csr_array.toarray
            rows = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr))
            self._flat_index = rows * pattern.shape[1] + pattern.indices
        # a forward block is a tangent (one row per color, m wide), a reverse one a cotangent (n wide)
        self._widths = {"forward": math.prod(self.y_shape), "reverse": math.prod(self.x_shape)}
        self._pushed = len(recorder.outputs.get(prefix + "forward", []))  # the forward blocks come first
        indices = [pattern.indptr, pattern.indices, pattern.data, getattr(self, "_flat_index", None),
                   *(a for read in reads.values() for a in read)]
        self.constant_bytes += sum(a.nbytes for a in indices if isinstance(a, np.ndarray))  # kept to gather J

    def _assemble(self, blocks):
        values = np.empty(self.pattern.nnz, dtype=self.dtype)
        split = {"forward": slice(None, self._pushed), "reverse": slice(self._pushed, None)}
        for order, (mine, colors, place) in self._reads.items():
            width = self._widths[order]
            mats = [b.reshape(k, width) for b, k in zip(blocks[split[order]], self.seeds[split[order]])]
            if mats:  # no block: the order has no entry to read
                values[mine] = np.concatenate(mats)[colors, place]
        if self._dense_result:
            return self.dense(values) if np.isfinite(values).all() else None
        return holding(self.pattern, values)

    def dense(self, values) -> np.ndarray:
        """The pattern's entries `values` as the dense Jacobian (zero off the pattern).

        Only for finite entries: eager one-hot seeds compute an entry off the pattern
        as ``0 * v``, NaN where a value v on the way is inf or NaN, and such a v makes
        an entry of the same row (forward) or column (reverse) non-finite too. So a
        replay with a non-finite entry returns None, as for a failed guard, and the
        Jacobian at that x is recompiled in a dense order, whose values are eager's.
        """
        J = np.zeros(self.pattern.shape[0] * self.pattern.shape[1], dtype=self.dtype)
        J[self._flat_index] = values
        return J.reshape(self.y_shape + self.x_shape)


def _may_raise(eqs, segments) -> list[int]:
    """The equations of `segments` whose operation may raise on other values of x.

    They run on every replay even when the Jacobian does not read them: f may call one only to
    see whether it raises (``try: cholesky(a)``), and a replay at values where it does must raise
    too, so that the call falls back to eager mode, where f catches it (see `_replay`). Whether
    it raises depends on its matrix, the first operand: one computed from x, not a constant
    (``solve(A, x)`` raises at every x or at none).
    """
    def from_x(ref):
        return is_input(ref) or (ref is not None and eqs[ref].dynamic)

    return [i for i, eq in enumerate(eqs) if eq.prim.raises and eq.segment in segments and from_x(eq.refs[0])]


def _needed(eqs, roots) -> list[int]:
    """Indices of the equations a replay runs, in order: the dynamic ones the roots read."""
    want = bytearray(len(eqs))
    for r in roots:
        if r is not None and r >= 0:
            want[r] = 1
    run = []
    for i in range(len(eqs) - 1, -1, -1):
        eq = eqs[i]
        if want[i] and eq.dynamic:  # else unread, or a constant the program keeps
            run.append(i)
            for r in eq.refs:
                if r is not None and r >= 0:
                    want[r] = 1
    return run[::-1]


def _placements(eqs, run, roots) -> dict[int, list]:
    """Sums of `embed`s into disjoint parts of one array, each as one placement.

    A gradient with respect to a vector cut into pieces (``x[:k]``, ``x[k:]``)
    arrives as one embed per piece, zero elsewhere, summed by adds; when the
    pieces do not overlap the sum is the pieces copied into one array of
    zeros. Returns ({last add of each such sum: (shape, [(index, embedded
    operand, its ref), ...])}, the embeds and adds before it, which drop out).
    """
    embed, add = REGISTRY["embed"], REGISTRY["add"]
    uses = collections.Counter(r for i in run for r in eqs[i].refs)
    uses.update(roots)
    sums, absorbed = {}, set()  # equation -> (shape, parts) of each sum found so far

    def summand(r):  # an embed or a sum read only by this add, or a folded embed (a constant)
        if r in sums and uses[r] == 1:
            return sums[r]
        eq = eqs[r] if r is not None and r >= 0 else None
        if eq is not None and eq.prim is embed and not eq.dynamic:
            return tuple(eq.params["shape"]), [(eq.params["index"], eq.args[0], eq.refs[0])]
        return None

    for i in run:
        eq = eqs[i]
        if eq.prim is embed:
            sums[i] = tuple(eq.params["shape"]), [(eq.params["index"], eq.args[0], eq.refs[0])]
        elif eq.prim is add and len(set(eq.refs)) == 2:
            a, b = (summand(r) for r in eq.refs)
            if a and b and a[0] == b[0] and all(eqs[r].dtype == eq.dtype for r in eq.refs) \
                    and _disjoint(a[0], a[1] + b[1]):
                sums[i] = a[0], a[1] + b[1]
                absorbed.update(eq.refs)
    return {i: p for i, p in sums.items() if len(p[1]) > 1 and i not in absorbed}, absorbed


def _coverage(shape, parts) -> np.ndarray:
    """How many of `parts` write each element of an array of `shape`."""
    covered = np.zeros(shape, dtype=np.int32)
    for index, *_ in parts:
        covered[index] += 1  # basic indices (slices, integers): no position twice within one part
    return covered


def _disjoint(shape, parts) -> bool:
    return int(_coverage(shape, parts).max(initial=0)) <= 1


def _fills(shape, parts) -> bool:
    """Whether `parts` write every element: their placement needs no zeros (`empty` is made instead)."""
    return int(_coverage(shape, parts).min(initial=1)) >= 1


def _total(costs: dict) -> Cost:
    return sum(costs.values(), Cost())


def _costs(equations) -> dict[str, Cost]:
    totals = {phase: [0, 0] for phase in PHASES}
    for eq in equations:
        flops, transcendentals = eq.cost
        totals[eq.phase][0] += flops
        totals[eq.phase][1] += transcendentals
    return {phase: Cost(*work) for phase, work in totals.items()}


class _Code:
    """Writes the program's source: one line per equation, guards checked as soon as computed.

    A compacted program's `compaction.Compacted` adds comments to lines
    (`notes`), checks that return `compaction.DENSE` when a value is not
    finite (`checks`), results written into placements (`into`) and
    placements made without zeros (`filled`). `filled` adds the placements whose
    parts write every element (a gradient's pieces that make up all of x).
    `inputs`: the arrays the program takes (x, then those of f's other arguments).
    """

    def __init__(self, eqs, running: set, placements: dict, inputs, compacted=None, quiet=None, filled=()):
        self.eqs, self.running, self.placements, self.inputs, self.quiet = eqs, running, placements, inputs, quiet or {}
        self.notes, self.checks, self.into, made_full = (
            (compacted.notes, compacted.checks, compacted.into, compacted.filled) if compacted else ({}, {}, {}, ()))
        self.filled = {*made_full, *filled}
        self.namespace = {"__name__": "jacobian_lab.compiled.program",  # whose warnings the command line leaves out
                          "same": same, "zeros": np.zeros, "empty": np.empty, "errstate": np.errstate,
                          "asarray": np.asarray,
                          "DENSE": compaction.DENSE,
                          **compaction.NAMES}
        self._constants: dict[int, str] = {}
        self.memory: dict[int, int] = {}  # id of each constant's underlying array -> its bytes
        self._zeros: dict = {}  # arrays of zeros the checks share, by shape and dtype

    def emit(self, run, observations, blocks, variables=()) -> str:
        checks: dict[int, list] = {}
        for o in observations:
            checks.setdefault(self._computed_by(o), []).append(o)
        counts = {v.equation: k for k, v in enumerate(variables)}  # after its equation, whose operands it reads
        last_use = self._last_use(run, observations, blocks)
        refs = [INPUT, *map(input_ref, range(len(self.inputs) - 1))]
        lines = [f"def program({', '.join(map(input_name, refs))}):"]
        for ref in refs:
            lines += self._finite(ref)
        guard = {id(o): k for k, o in enumerate(observations)}  # a failed check returns its guard's number
        lines += [self._check(o, guard[id(o)]) for o in checks.get(INPUT, ())]
        for i in run:
            eq = self.eqs[i]
            if i in self.placements:
                lines += self._placement(i)
            else:
                indent = "    "
                if i in self.quiet:  # under the errstate settings changed around it when it was recorded
                    self.namespace[f"e{i}"] = self.quiet[i]
                    lines.append(f"{indent}with errstate(**e{i}):")
                    indent += "    "
                lines.append(f"{indent}v{i} = {self._call(i, eq)}  # {eq.phase}{self.notes.get(i, '')}")
                if i in counts:
                    lines.append(self._count(variables[counts[i]], counts[i]))
            lines += self._finite(i)
            lines += [self._check(o, guard[id(o)]) for o in checks.get(i, ())]
            dead = [f"v{j}" for j in last_use.get(i, ())]
            if dead:
                lines.append(f"    del {', '.join(dead)}")
        outputs = [self._operand(value, ref) for value, ref, _ in blocks]
        tally = f", ({''.join(f'n{k}, ' for k in range(len(variables)))})" if variables else ""
        lines.append(f"    return [{', '.join(outputs)}]{tally}")
        self.source = "\n".join(lines) + "\n"
        return self.source

    def _placement(self, i) -> list[str]:
        """Parts copied into zeros (or into an array they fill): (index, value, ref[, "=" / "+=" / "-="])."""
        eq, (shape, parts) = self.eqs[i], self.placements[i]
        note = self.notes.get(i, f": {len(parts)} disjoint parts, placed")
        make = "empty" if i in self.filled else "zeros"
        lines = [f"    v{i} = {make}({shape!r}, {self._constant(eq.dtype)})  # {eq.phase}{note}"]
        for index, value, ref, *how in parts:
            lines.append(f"    v{i}[{self._subscript(index)}] {how[0] if how else '='} {self._operand(value, ref)}")
        return lines

    def _call(self, i, eq) -> str:
        """The right-hand side of equation i: its primitive's implementation called, or indexing written out."""
        args = [self._operand(a, r) for a, r in zip(eq.args, eq.refs)]
        if eq.prim is _GETITEM:  # x[0:1] reads better than getitem(x, **p0), and skips a call
            return f"{args[0]}[{self._subscript(eq.params['index'])}]"
        # reshape and transpose written out as the calls their impls make, without the impl's call and
        # its keyword arguments (a reverse sweep has a few per matmul): the same views
        if eq.prim is _RESHAPE and _literal(eq.params["shape"]):
            return f"asarray({args[0]}).reshape({eq.params['shape']!r})"
        if eq.prim is _TRANSPOSE and _literal(eq.params["axes"]) \
                and (is_input(eq.refs[0]) or eq.refs[0] in self.running):
            return f"{args[0]}.transpose({eq.params['axes']!r})"  # np.transpose(a, axes) calls a.transpose(axes)
        if eq.params:
            self.namespace[f"p{i}"] = eq.params  # arrays in it are the recording's snapshots (`Recorder.kept`)
            args.append(f"**p{i}")
            for value in eq.params.values():  # clip's bounds, a sparse matrix
                if hasattr(value, "nbytes"):
                    self._hold(value)
        if i in self.into:
            placement, index = self.into[i]
            args.append(f"out=v{placement}[{self._subscript(index)}]")
        return f"{self._function(eq.prim)}({', '.join(args)})"

    def _subscript(self, index) -> str:
        """An index as source: basic parts (slices, integers, None, ...) written out, else a constant."""
        parts = index if type(index) is tuple else (index,)  # for an array, a[(i,)] is a[i]
        if not parts:
            return "()"
        if not all(map(_basic, parts)):
            return self._constant(index)
        return ", ".join(map(_index_text, parts))

    def _finite(self, ref) -> list[str]:
        """The check of a value a compacted tangent is multiplied or divided by, if it has one."""
        kind = self.checks.get(ref)
        if kind is None:
            return []
        if is_input(ref):
            name, value = input_name(ref), self.inputs[input_position(ref)]
        else:
            name, value = f"v{ref}", self.eqs[ref]
        test = compaction.condition(name, kind, value.dtype, value.shape, self._constant, self._zeros)
        return [f"    if not {test}:\n        return DENSE"] if test else []

    def _last_use(self, run, observations, blocks) -> dict[int, list]:
        """line -> values no later line reads (outputs stay)."""
        last = {}
        for i in run:
            for r in compaction.reads(self.eqs, self.placements, i):
                if r in self.running:
                    last[r] = i
            last.setdefault(i, i)
        for o in observations:
            for r in o.refs:
                if r in self.running:
                    last[r] = max(last[r], self._computed_by(o))
        for _, r, _ in blocks:
            last.pop(r, None)
        dead: dict[int, list] = {}
        for value, line in last.items():
            dead.setdefault(line, []).append(value)
        return dead

    def _computed_by(self, o) -> int:
        """The line after which observation `o` is checked: that of the last value it reads."""
        return max([r for r in o.refs if r in self.running], default=INPUT)

    def _check(self, o, number: int) -> str:
        call = self._called("observe", o.fn, o.args, o.refs, o.kwargs)
        return f"    if not same({call}, {self._constant(o.result)}):\n        return {number}"

    def _count(self, v, number: int) -> str:
        return f"    n{number} = {self._called('count', v.fn, v.args, v.refs)}"

    def _called(self, prefix: str, fn, args, refs, kwargs=None) -> str:
        """``fn(...)`` of its recorded operands as source, fn under a name of its own beginning with `prefix`."""
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = fn
        operands = [self._operand(a, r) for a, r in zip(args, refs)]
        if kwargs:
            self.namespace[f"{name}_kw"] = kwargs
            operands.append(f"**{name}_kw")
        return f"{name}({', '.join(operands)})"

    def _operand(self, value, ref) -> str:
        if is_input(ref):
            return input_name(ref)
        if ref is not None and ref in self.running:
            return f"v{ref}"
        return self._constant(value)

    def _constant(self, value) -> str:
        if type(value) in (int, bool, type(None)) or (type(value) is float and math.isfinite(value)):
            return repr(value)
        name = self._constants.get(id(value))
        if name is None:
            name = self._constants[id(value)] = f"c{len(self._constants)}"
            self.namespace[name] = value
            self._hold(value)
        return name

    def _hold(self, value) -> None:
        """Count the bytes of a constant the program keeps (a view's array once, a sparse matrix and its
        transpose once)."""
        value = getattr(value, "origin", value)
        while isinstance(getattr(value, "base", None), np.ndarray):
            value = value.base
        nbytes = getattr(value, "nbytes", 0)
        self.memory[id(value)] = nbytes if type(nbytes) is int else 0  # a class (np.float64) holds a descriptor

    def _function(self, prim) -> str:
        name = prim.name
        if not name.isidentifier() or keyword.iskeyword(name) or _INPUT_NAME.fullmatch(name) or name in (
                "x", "same", "program", "zeros", "empty", "asarray", "DENSE", *compaction.NAMES):
            name = f"op_{len(self.namespace)}"
        self.namespace[name] = prim.impl  # registered names are unique
        return name


_INPUT_NAME = re.compile(r"a[0-9]+")  # `input_name`'s names of f's other arguments
_GETITEM, _RESHAPE, _TRANSPOSE = REGISTRY["getitem"], REGISTRY["reshape"], REGISTRY["transpose"]


def _literal(param) -> bool:
    """Whether a shape or an axes parameter is written out as it is: None, an int or a tuple of ints."""
    return param is None or type(param) is int or (type(param) is tuple and all(type(v) is int for v in param))


def _basic(part) -> bool:
    if type(part) is slice:
        return all(v is None or type(v) is int for v in (part.start, part.stop, part.step))
    return part is None or part is Ellipsis or type(part) is int


def _index_text(part) -> str:
    if type(part) is slice:
        text = f"{'' if part.start is None else part.start}:{'' if part.stop is None else part.stop}"
        return text if part.step is None else f"{text}:{part.step}"
    return "..." if part is Ellipsis else repr(part)


def same(a, b) -> bool:
    """Whether a recomputed guard value equals the recorded one exactly (NaN equals NaN, and -0.0 is not
    0.0: copysign and arctan2 of a value f computed tell them apart)."""
    if isinstance(b, tuple):
        return isinstance(a, tuple) and len(a) == len(b) and all(map(same, a, b))
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b, equal_nan=b.dtype.kind in "fc"):
        return False
    return b.dtype.kind != "f" or bool(np.array_equal(np.signbit(a), np.signbit(b)))
