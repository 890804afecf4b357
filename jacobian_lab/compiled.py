"""`jit`: compile a Jacobian function into a straight-line NumPy program and replay it.

The first call at a given input shape computes the Jacobian as usual while a
`staging.Recorder` writes down every primitive it evaluated. From that record
`Program` (`jacobian_lab.program`) keeps only the work that depends on x and
reaches the Jacobian:

* work on constants alone is done once (constant folding, up to
  `staging.FOLD_BYTES`): in forward mode, the one-hot seeds pushed through
  ``W @ x`` give ``W`` itself, so replaying ``tanh(W @ x + b)`` costs n²
  flops, not a 2n³ seed-block product;
* work the Jacobian never reads is dropped (the primal output of a gradient);
* the gradients of disjoint pieces of x are copied into place, not added;
* forward tangents keep only their seed rows that can be nonzero
  (`jacobian_lab.compaction`);
* f is evaluated once, not once per pass.

It is emitted as the source of one Python function (`Program.source`, written by `jacobian_lab.codegen`), which
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
import math
import sys
import threading
import warnings

import numpy as np

from . import arguments, harness, snapshots, trees
from .engines.base import collection_paused, inside_a_trace
from . import prediction as _prediction
from .accounting import active_counter, counted, counted_by
from .jacobian import JacobianFunction, ValueAndGrad, check_scalar, finish, one_input_error, wraps
from .harness import columns, prepare, result_dtype, rows
from .compressed import SparseJacobian, entries, fewer_seeds, holding, where_read
from .hessian import Derivative, HessianFunction, SparseHessian, structured
from .inputs import Inputs
from .memory import MATRIX, MemoryBudgetError, budget, building, check_dense, readable
from .primitives import DerivativeError
from .program import CompressedProgram, Program
from .sparsity import NO_PATTERN_TAPE, recorded_pattern
from .staging import NotReplayable, Recorder


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

    `compiles` counts the recordings: each builds a program, or finds that f
    cannot be replayed (computed eagerly, with a warning, as `program` then
    says by raising `NotReplayable`). A function whose branches follow the
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
        self.described = None  # (matrix, name) its warnings give: those of the Hessian it compiles for a tree x

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
        matrix, name = self.described or self._describe()
        warnings.warn(f"jit: the {matrix} of {name} {said}", stacklevel=_outside())

    def _describe(self) -> tuple[str, str]:
        """(what the caller asked for: Jacobian, gradient or Hessian, the name of f)."""
        matrix = MATRIX.get()
        if matrix == "Jacobian" and (isinstance(self.fun, SparseHessian) or getattr(self.fun, "scalar", False)):
            matrix = "Hessian" if isinstance(self.fun, SparseHessian) else "gradient"
        return matrix, getattr(self.fun.f, "__name__", "f")

    def _flat_one(self, flat: "Jitted") -> "Jitted":
        """`flat`, the compiled Hessian of f on one flat vector for a tree x, warning as this one does."""
        flat.described = "Hessian", self._describe()[1]
        return flat

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
        _keep(self._programs, key, [program] + self._programs.get(key, []))
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
        return g, x_flat, _shared(self._flat, (g.in_def, g.layout, g.read_only), lambda: self._flat_one(Jitted(fun)))


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
        return x_flat, _shared(self._flat, fun, lambda: self._flat_one(JittedSparse(fun)))

    def _build(self, g, x, call=None):
        if call is None:
            return compile_sparse(self.fun, g, x)
        return _unwritten(call, compile_sparse(self.fun, *_recorded(call)))


# One lock for the caches' order, of the shapes and of each shape's programs: a key's hash may be Python code
# (a tree's structure), which lets another thread move or drop entries while an OrderedDict is being walked or
# moved, and it raises then. Reentrant: that code, or a finalizer a collection runs meanwhile, may call a compiled
# function in this thread.
_ORDERING = threading.RLock()


def _used(cache: collections.OrderedDict, key):
    """``cache.get(key)``, moved to the end as the most recently used: `_keep` drops from the front."""
    with _ORDERING:
        value = cache.get(key)
        if value is not None:
            cache.move_to_end(key)
    return value


def _shared(cache: collections.OrderedDict, key, make):
    """The value `cache` holds at `key`, now the most recently used, else ``make()`` kept there (`_keep`): threads
    asking for a new key at once share one value, whose compiles are then counted once."""
    with _ORDERING:
        value = _used(cache, key)
        return value if value is not None else _keep(cache, key, make())


def _keep(cache: collections.OrderedDict, key, value):
    """`value`, kept in `cache` under `key` as the most recently used, and the least recently used entries past
    `KEEP_SHAPES` dropped: programs by input shape, or compiled functions by structure, each of which keeps
    programs of its own. A new one at every call would keep them all; a shape called between new ones stays."""
    dropped = []
    with _ORDERING:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > KEEP_SHAPES:
            dropped.append(cache.popitem(last=False))
    del dropped  # freed after the lock: a finalizer they reach may call a compiled function
    return value


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
        y, pullback = harness.record(g, x, advice=NO_PATTERN_TAPE)
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


def _to_front(programs: list, program) -> None:
    """Move `program` to the front of `programs`, where the next replay tries it first."""
    with _ORDERING:
        if program in programs:
            programs.remove(program)
            programs.insert(0, program)


#: How a refusal of a first call's tape ends (`harness.record`).
NO_COMPILED_TAPE = ("A compiled Jacobian records that tape in every mode: jl.jacfwd(f) uncompiled keeps none (nor does "
                    "jl.jvp, for the products you need)")


@collection_paused()  # a recording as long as a tape, and both orders' programs built from it
def compile_jacobian(fun, g, x, inputs=()):
    """(program, J at x): J computed eagerly while it is recorded, and the cheapest program. `inputs`: the
    arrays the program takes besides x, which f gets as `Observable`s over them (`Inputs.recording`)."""
    x = snapshots.copy(x, faithful=True)  # f may close over the very array passed as x: it stays a constant
    recorder = Recorder(x, inputs)
    caller = active_counter()

    def record():
        results, error = {}, None
        y, pullback = harness.record(g, x, budget(fun.max_memory), NO_COMPILED_TAPE)
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
    programs = {Program(recorder, mode, np.shape(y), x, g.out_def, emit=False): J for mode, J in results.items()}
    if compressed is not None:
        programs[compressed[0]] = compressed[1]
    best = min(programs, key=lambda p: (p.cost.total(), len(p.equations)))
    J = programs[best]
    if type(best) is Program:
        best.emit()
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
    y, pullback = harness.record(g, x, advice=NO_PATTERN_TAPE)
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
