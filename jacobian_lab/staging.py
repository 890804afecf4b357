"""`Recorder`: a counter that also writes down every primitive evaluated.

Computing a Jacobian once under a `Recorder` yields its whole computation as
a list of `Equation`s -- the primal pass, the staged rules, every seed pass --
each naming which of its operands came from x (directly or through earlier
equations). `jacobian_lab.compiled` turns that list into a program it can
replay on another x. Values computed from constants alone (seeds, weights)
are recorded too, so a program can keep them as constants or, when large,
recompute them.

Operands are told apart by identity. A value computed from x is not kept (the
replay recomputes it): the recorder watches it with a weak reference and
forgets its `id` when it dies, so no later array can be mistaken for it, and
recording takes no more memory than the computation itself. Constants are
kept, since a program may use them; an array from outside the recording (one
f closes over) is kept as a snapshot of what it held when it was read
(`Recorder.kept`), since f may write into it afterwards, so that a program
reads it as the computation it replays did.

A replay is only sound if nothing else about x steered the computation, so
the recorder also keeps *guards*: the values Python read to decide something
(`primitives.observe`: ``bool(x)``, ``argmax``, a rule's route). f's own code
gets the non-differentiable results it computes from x (comparisons,
``sign``) as `observables.Observable`s, so that what it reads of them is
observed too, while what it passes to primitives is recomputed. A replay
recomputes each guard first and gives up if one differs.
"""
from __future__ import annotations

import functools
import linecache
import operator
import sys
import warnings
import weakref

import numpy as np

from .accounting import PRIMAL, Counter
from .observables import Observable, array_of, read_numbers
from .snapshots import immutable, root, same_bytes, snapshot

INPUT = -1  # the reference of x itself; f's other arguments, a compiled function's inputs too, are -2, -3, ...
# Values computed from constants alone are kept, for a program to use as constants,
# up to this many bytes per segment, or as many as the segment's seeds (which its program
# holds anyway: W @ seeds is W itself, no larger); larger ones are recomputed on each
# replay like values computed from x, so neither recording nor a program holds much more
# memory than one eager computation.
FOLD_BYTES = 32 << 20


def is_input(ref) -> bool:
    """Whether `ref` names an input of the program: x (`INPUT`) or another argument of f (`input_ref`).

    >>> is_input(INPUT), is_input(input_ref(0)), is_input(3), is_input(None)
    (True, True, False, False)
    """
    return ref is not None and ref < 0


def input_ref(k: int) -> int:
    """The reference of f's k-th argument besides x that a program takes as an input (`Recorder`'s `inputs`)."""
    return INPUT - 1 - k


def input_position(ref: int) -> int:
    """Where the input `ref` is among a program's inputs (`Recorder.inputs`): x first, then f's other arguments.

    >>> input_position(INPUT), input_position(input_ref(1))
    (0, 2)
    """
    return INPUT - ref


def input_name(ref: int) -> str:
    """The name a program's source gives the input `ref`: x, then a0, a1, ... for f's other arguments.

    >>> input_name(INPUT), input_name(input_ref(1))
    ('x', 'a1')
    """
    return "x" if ref == INPUT else f"a{input_position(ref) - 1}"


class NotReplayable(Exception):
    """The recorded computation cannot be replayed; the caller computes eagerly instead."""


class Equation:
    """One primitive evaluation ``out = prim(*args, **params)``; refs name the recorded operands.

    A `dynamic` equation is recomputed on each replay: it depends on x, or its
    output is a constant too large to keep. Its recomputed operands and its
    output are not kept: `args` holds None in their place and `out` is None.
    """

    __slots__ = ("prim", "args", "params", "refs", "out", "dtype", "shape", "cost", "phase", "segment",
                 "dynamic", "_watch")

    def __init__(self, prim, args, params, refs, out, cost, phase, segment, dynamic):
        self.prim, self.args, self.params, self.refs, self.out = prim, args, params, refs, out
        self.dtype = getattr(out, "dtype", None)
        self.shape = getattr(out, "shape", None)  # kept when out is not: a rewrite reasons about shapes
        self.cost, self.phase, self.segment, self.dynamic = cost, phase, segment, dynamic


class Observation:
    """A decision that read values: ``result == fn(*args, **kwargs)`` must hold again. `where`: the
    line of f's code that read them (`user_line`), for a message when they differ."""

    __slots__ = ("fn", "args", "kwargs", "refs", "result", "segment", "where")

    def __init__(self, fn, args, kwargs, refs, result, segment, where=None):
        self.fn, self.args, self.kwargs, self.refs = fn, args, kwargs, refs
        self.result, self.segment, self.where = result, segment, where


class Variable:
    """A count of work read from values (`primitives.counted`): ``fn(*args) * times`` flops of `phase`, in
    the cost of equation number `equation`, `value` (of fn) at the recording. A replay computes fn again and
    counts the difference."""

    __slots__ = ("fn", "args", "refs", "times", "value", "phase", "equation")

    def __init__(self, fn, args, refs, times, value, phase, equation):
        self.fn, self.args, self.refs, self.times = fn, args, refs, times
        self.value, self.phase, self.equation = value, phase, equation


#: Modules whose frames are not f's own code: the line a read is reported at is the caller's
_LIBRARIES = frozenset(["jacobian_lab", "numpy", "scipy", "functools", "contextlib"])


def user_line() -> str | None:
    """``file:line (source)`` of the innermost frame outside jacobian_lab, NumPy and SciPy: the line of
    f's own code that made the current operation."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in _LIBRARIES:
        frame = frame.f_back
    if frame is None:
        return None
    source = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" + (f" ({source})" if source else "")


class Recorder(Counter):
    """Counts like `Counter` and records the computation that depends on `x`.

    `inputs`: arrays of f's other arguments that a program takes as inputs too
    (``jl.jit(jl.grad(loss))(w, X, y)`` replays with each call's X and y), so
    what is computed from them is recomputed, as what is computed from x is.
    f gets them as `Observable`s: what its code reads of them is checked.
    `segment` labels what is recorded next (None: shared by every output, such
    as the primal pass). `output` marks a derivative block the computation
    returns; outputs are grouped by segment.
    """

    records = True

    def __init__(self, x: np.ndarray, inputs=()):
        super().__init__()
        self.equations: list[Equation] = []
        self.observations: list[Observation] = []
        self.variables: list[Variable] = []
        self.outputs: dict = {}
        self.segment = None
        # id -> equation index of every live recorded value, or `input_ref` of an input (INPUT for x)
        self._index = {id(x): INPUT, **{id(a): input_ref(k) for k, a in enumerate(inputs)}}
        self._x = x
        self.inputs = (x, *inputs)  # what a program takes, in order (`input_ref`)
        self._kept_bytes: dict = {}  # segment -> bytes of constants kept
        self._seeds: dict = {}  # id -> the passes' seeds, which come from outside but are the recording's own
        self._seed_bytes: dict = {}  # segment -> bytes of its passes' seeds
        self._snapshots: dict = {}  # the memory an array from outside views -> (its root, its last snapshot)
        self._aliases: list = []  # watches of the copies a reverse tape made of recorded values (`copied`)
        self.raised: str | None = None  # why the recording cannot be replayed, once an operation on x raised
        self._handed: dict = {}  # id -> (array, copy): what each Observable f got held then (`check`)
        self._errstate = np.geterr()  # a replay runs under its caller's; see `_check_errstate`
        self.quiet: dict[int, dict] = {}  # equation -> the errstate settings changed around it (np.errstate)
        self._warnings = _warning_handling()

    def refs(self, values) -> tuple:
        index = self._index
        return tuple([index.get(id(v)) for v in values])

    def evaluate(self, prim, args, params):
        """Evaluate ``prim(*args, **params)``, count it and write it down; returns what the caller gets."""
        args = tuple([array_of(a) for a in args])
        if params:
            params = read_numbers(params)  # a parameter is read in Python: observed, then a constant
            if self._any_dynamic(self.refs(_arrays_in(params))):
                raise NotReplayable(f"{prim.name} took a parameter computed from x")
            params = self.kept(params)
        refs = self.refs(args)
        args = tuple([self.kept(a) if r is None else a for a, r in zip(args, refs)])
        dynamic, errstate = self._any_dynamic(refs), np.geterr()
        if dynamic:
            self._check_handed(args)
            self._check_errstate(prim, errstate)
        try:
            out = prim.impl(*args, **params)
        except Exception as error:
            if dynamic and self.raised is None:
                self.raised = (f"{prim.name} raised {type(error).__name__} ({error}) on values computed from x "
                               "and f went on, so the way it took depends on values a program cannot check")
            raise  # f may catch it and go on; `check` then refuses to replay what it did
        scalar = type(out) is not np.ndarray  # what eager mode gives f: a NumPy scalar, or an array
        cost = prim.cost(out, *args, **params)
        self.add(*cost)
        eq = Equation(prim, self._static_args(args, refs), params, refs, out, cost, self.phase, self.segment, dynamic)
        changed = {k: v for k, v in errstate.items() if v != self._errstate[k]}
        if changed:  # a rule silenced warnings it expects (prod's overflow route): so will a replay, in those alone
            self.quiet[len(self.equations)] = changed
        self.equations.append(eq)
        if type(out) is np.bool_:
            # np.True_ and np.False_ are shared objects, so their id cannot say where they came
            # from; a 0-d array of the same value can.
            eq.out = out = np.asarray(out)
        self._index[id(out)] = len(self.equations) - 1
        if dynamic or not self._keep(out):
            eq.dynamic, eq.out = True, None
            eq._watch = _watch(out, self._index)
        if dynamic and not prim.differentiable and self.phase == PRIMAL:
            return self._hand(out, scalar)  # f's own code gets it: what it reads of it is observed
        return out

    def _hand(self, out: np.ndarray, scalar: bool = False) -> Observable:
        """`out` as f's code gets it: an Observable, its values noted for `check`."""
        self._handed[id(out)] = (out, out.copy())
        return Observable(out, scalar)

    def _check_handed(self, values) -> None:
        """Note a value handed to f that f wrote into (through a view of it: ``m.view()``, np.asarray(m)
        after ``m[1:]``) before this use: a program would compute it without the write, at this use too
        (a write undone later would leave no trace at the end)."""
        for value in values:
            handed = self._handed.get(id(value))
            if handed is not None and handed[0] is value and not same_bytes(handed[1], value) and not self.raised:
                self.raised = "f wrote into an array computed from x through a view of it"

    def computed(self, value) -> bool:
        """Whether `value` (or the array an Observable holds) is one this recording computed from x or an
        argument (a program recomputes it)."""
        return self._dynamic(self._index.get(id(array_of(value))))

    def untraced(self, prim, args, params):
        # A differentiable operation on values computed from x without a derivative (np.round(x, 1) divides
        # rint's result, np.sin(t) of an argument t): f gets what it computes observed, as it gets a mask, not
        # as a constant to fold; a NumPy scalar as one standing for the scalar eager mode gives (its 0-d array
        # the same recorded value), so that computing with it is recorded too and reading it is checked.
        computed = self.phase == PRIMAL and prim.differentiable and self._any_dynamic(
            self.refs([array_of(a) for a in args]))
        out = self.evaluate(prim, args, params)
        if not computed:
            return out
        if type(out) is np.ndarray:
            return self._hand(out)
        array = np.asarray(out)
        self.copied(array, out)
        return self._hand(array, scalar=True)

    def _check_errstate(self, prim, now: dict) -> None:
        """Note when f has set NumPy to raise on floating-point errors (``np.errstate``), or made its
        warnings errors or recorded them (``warnings.catch_warnings``): a replay runs under its
        caller's settings, where the operation that would raise returns inf or NaN instead, and f
        never gets to catch the error or read the warning. `now` is NumPy's errstate at the call."""
        if now != self._errstate and self.raised is None and any(
                now[k] in ("raise", "call") and self._errstate[k] not in ("raise", "call") for k in now):
            self.raised = (f"f set NumPy's floating-point errors to raise (np.errstate) around {prim.name}, "
                           "and a replay cannot raise where f would")
        if self.raised is None and _warning_handling() != self._warnings:
            self.raised = (f"f made warnings errors or recorded them (warnings.catch_warnings) around {prim.name}, "
                           "and a replay cannot warn where f would")

    def check(self) -> None:
        """Raise `NotReplayable` when the recording must not be replayed.

        An operation on values computed from x raised, and f caught the error and went on, or f
        made NumPy raise on floating-point errors: either way, which way f goes depends on values
        through an exception, which no program can check, so the caller computes eagerly instead.
        (Had the error left f, the recording would have ended with it.) So too when f wrote into
        an array computed from x through a view: the program recomputes it without the write.
        """
        self._check_handed([array for array, _ in self._handed.values()])  # written since its last use
        if self.raised is not None:
            raise NotReplayable(self.raised)

    def own(self, seeds: np.ndarray) -> None:
        """Take a pass's `seeds` as the recording's own: made for it and written to by no one, so
        programs keep them (and their views) without a copy."""
        owner = root(seeds)
        if id(owner) not in self._seeds:
            self._seed_bytes[self.segment] = self._seed_bytes.get(self.segment, 0) + owner.nbytes
        self._seeds[id(owner)] = owner  # kept alive, so that its id stays its own

    def kept(self, value):
        """`value` (an operand, a parameter, an argument of a decision) as the recording keeps it,
        read now: an array from outside the recording as a `snapshot` of what it holds now.

        Arrays from outside (those f closes over, or views of them) are read when f is compiled, as
        ``jax.jit`` reads them, and f may write into one after it used it (a buffer it reuses, a
        bound it moves). Kept by reference, a program would read what the array holds when the
        program is built, or at each call, rather than what the computation it replays read.
        What the recording computed is its own, as are the seeds, and is kept as it is; so is an
        array whose values cannot change (a reverse tape's snapshot). An array read again while
        it still holds what its last snapshot does shares that snapshot. Tuples, lists and dicts
        are looked through.
        """
        kind = type(value)
        if kind is tuple or kind is list:
            items = [self.kept(v) for v in value]
            return value if all(map(operator.is_, items, value)) else kind(items)
        if kind is dict:
            items = {k: self.kept(v) for k, v in value.items()}
            return value if all(items[k] is v for k, v in value.items()) else items
        if not isinstance(value, np.ndarray) or id(value) in self._index or immutable(value):
            return value
        owner = root(value)
        if id(owner) in self._seeds or id(owner) in self._index:
            if self._dynamic(self._index.get(id(owner))):  # NumPy's view of a value a program recomputes: it
                self.unreplayable("a value computed from f's arguments was used through a view NumPy took of it "
                                  "outside the primitives, which a program would hold as it was")
            return value
        where = (id(owner), value.__array_interface__["data"][0], value.shape, value.strides, value.dtype.str,
                 type(value))
        last = self._snapshots.get(where)
        if last is not None and same_bytes(last[1], value):
            return last[1]
        copy = snapshot(value)
        self._snapshots[where] = (owner, copy)  # keeps `owner` alive, so that its id stays its own
        return copy

    def _keep(self, constant) -> bool:
        """Whether there is room to keep `constant` (a view costs nothing beyond its base)."""
        nbytes = constant.nbytes if getattr(constant, "base", None) is None else 0
        kept = self._kept_bytes.get(self.segment, 0) + nbytes
        if kept > max(FOLD_BYTES, self._seed_bytes.get(self.segment, 0)):
            return False
        self._kept_bytes[self.segment] = kept
        return True

    def _dynamic(self, ref) -> bool:
        return ref is not None and (ref < 0 or self.equations[ref].dynamic)

    def _any_dynamic(self, refs) -> bool:
        return any(self._dynamic(r) for r in refs)

    def _static_args(self, args, refs) -> tuple:
        """args with the values a replay recomputes left out (None)."""
        return tuple([None if self._dynamic(r) else a for a, r in zip(args, refs)])

    def unreplayable(self, reason: str) -> None:
        if self.raised is None:
            self.raised = reason

    def printed(self, value) -> None:
        if self._any_dynamic(self.refs([array_of(value)])):
            self.unreplayable("f read the values of an array computed from x as text (repr, str or print), and a "
                              "program cannot check what it made of them")

    def observed(self, fn, args, kwargs, result) -> None:
        """Keep a decision on values computed from x, to be checked again before a replay."""
        args = tuple([array_of(a) for a in args])  # np.searchsorted(x, m) of an Observable m reads its array
        refs = self.refs(args)
        if self._any_dynamic(self.refs(kwargs.values())):
            raise NotReplayable(f"{getattr(fn, '__name__', fn)} took a keyword computed from x")
        if self._any_dynamic(refs):  # what fn read, kept as it read it: f may change it afterwards
            self._check_handed(args)
            self.observations.append(Observation(fn, self._as_read(args, refs), self.kept(kwargs), refs,
                                                 _snapshot(result), self.segment, user_line()))

    def varying(self, fn, args, times: int, result) -> None:
        """Keep a count of work read from values computed from x (or an argument), which the equation being
        recorded (the next one) costs, for each replay to compute again."""
        args = tuple([array_of(a) for a in args])
        refs = self.refs(args)
        if self._any_dynamic(refs):
            self.variables.append(Variable(fn, self._as_read(args, refs), refs, times, int(result), self.phase,
                                           len(self.equations)))

    def _as_read(self, args, refs) -> tuple:
        """The arguments a decision or a count read, as a replay passes them again: a constant as it holds now
        (`kept`: f may change it afterwards), a value the replay recomputes left out (`_static_args`)."""
        return self._static_args(tuple([self.kept(a) if r is None else a for a, r in zip(args, refs)]), refs)

    def copied(self, copy, original) -> None:
        # A plain array computed from x (np.where of a mask, outside any trace) that a reverse tape
        # copies: the copy is the same value, recomputed by the same equation, not a constant.
        ref = self._index.get(id(original))
        if ref is not None:
            self._index[id(copy)] = ref
            self._aliases.append(_watch(copy, self._index))

    def output(self, value, seeds: int) -> None:
        ref = self.refs([value])[0]
        if ref is None:
            value = self.kept(value)
        self.outputs.setdefault(self.segment, []).append((None if self._dynamic(ref) else value, ref, seeds))


def _watch(value, index: dict):
    """Forget `value`'s id when it dies (a NumPy scalar, which cannot be watched, is kept instead)."""
    # index.pop(key, <the dead reference>) by C calls alone: a Ctrl-C arriving as it runs stays pending until f's
    # next line, where a Python callback would take it, and CPython prints and drops an error a callback raises
    try:
        return weakref.ref(value, functools.partial(dict.pop, index, id(value)))
    except TypeError:
        return value


def _snapshot(result):
    """A copy of an observed `result` (its arrays and lists), which f gets and may change in place
    (``m = np.asarray(x > 0); m[0] = False``): the check must compare with what was observed."""
    if isinstance(result, np.ndarray):
        return result.copy()
    if type(result) in (tuple, list):
        return type(result)(map(_snapshot, result))
    return result


def _arrays_in(params: dict) -> list:
    """The array-valued parameters (top level or in a tuple or list), e.g. gather indices."""
    found = []
    for value in params.values():
        if isinstance(value, (tuple, list)):
            found.extend(v for v in value if isinstance(v, np.ndarray))
        elif isinstance(value, np.ndarray):
            found.append(value)
    return found


def _warning_handling() -> tuple:
    """How a warning reaches code now: the filters that make one an error, and where one shown goes (a
    list's append under ``catch_warnings(record=True)``). Filters that ignore warnings leave it as is."""
    return tuple([f for f in warnings.filters if f[0] == "error"]), getattr(warnings, "_showwarnmsg_impl", None)
