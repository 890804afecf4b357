"""`Recorder`: a counter that also writes down every primitive evaluated.

Computing a Jacobian once under a `Recorder` yields its whole computation as
a list of `Equation`s -- the primal pass, the staged rules, every seed pass --
each naming which of its operands came from x (directly or through earlier
equations). `jacobian_lab.compiled` turns that list into a program it can replay
on another x. Operands are told apart by identity: the recorder keeps every
value it indexed alive, so no two of them share an `id` while it records.

Values computed from constants alone (seeds, weights) are recorded too, so a
replay can either keep them as constants or, when large, recompute them.

A replay is only sound if nothing else about x steered the computation, so
the recorder also keeps *guards*: the values Python read to decide something
(`primitives.observe`: ``bool(x)``, ``argmax``, a rule's route) and the
non-differentiable results (comparisons, ``sign``) that f's own code
received as plain arrays and might have branched on. A replay recomputes
each guard first and gives up if one differs.
"""
from __future__ import annotations

import numpy as np

from .accounting import PRIMAL, Counter

INPUT = -1  # the reference of x itself


class NotReplayable(Exception):
    """The recorded computation cannot be replayed; the caller computes eagerly instead."""


class Equation:
    """One primitive evaluation: ``out = prim(*args, **params)``, with refs naming traced operands."""

    __slots__ = ("prim", "args", "params", "refs", "out", "phase", "segment", "dynamic", "guard")

    def __init__(self, prim, args, params, refs, out, phase, segment, dynamic):
        self.prim, self.args, self.params, self.refs, self.out = prim, tuple(args), params, refs, out
        self.phase, self.segment = phase, segment
        self.dynamic = dynamic  # depends on x: recomputed on a replay (else a constant, or recomputed if large)
        # f's own code gets a non-differentiable result as a plain array and may branch on it.
        self.guard = self.dynamic and not prim.differentiable and phase == PRIMAL


class Observation:
    """A decision that read values: ``result == fn(*args, **kwargs)`` must hold again."""

    __slots__ = ("fn", "args", "kwargs", "refs", "result", "segment")

    def __init__(self, fn, args, kwargs, refs, result, segment):
        self.fn, self.args, self.kwargs, self.refs = fn, args, kwargs, refs
        self.result, self.segment = result, segment


class Recorder(Counter):
    """Counts like `Counter` and records the computation that depends on `x`.

    `segment` labels what is recorded next (None: shared by every output, such
    as the primal pass). `output` marks a derivative block the computation
    returns; outputs are grouped by segment.
    """

    def __init__(self, x: np.ndarray):
        super().__init__()
        self.equations: list[Equation] = []
        self.observations: list[Observation] = []
        self.outputs: dict = {}
        self.segment = None
        # id -> equation index (INPUT for x) of every value recorded; all kept alive in `equations`.
        self._index = {id(x): INPUT}
        self._x = x

    def refs(self, values) -> tuple:
        index = self._index
        return tuple([index.get(id(v)) for v in values])

    def record(self, prim, args, params, out):
        """Write down ``out = prim(*args, **params)``; returns out, or an equal value to use instead."""
        refs = self.refs(args)
        if any(self._dynamic(r) for r in self.refs(_arrays_in(params))):
            raise NotReplayable(f"{prim.name} took a parameter computed from x")
        dynamic = any(self._dynamic(r) for r in refs)
        eq = Equation(prim, args, params, refs, out, self.phase, self.segment, dynamic)
        self.equations.append(eq)
        if eq.guard:  # its value is fixed once it has been checked: downstream, a constant
            return out
        if type(out) is np.bool_:
            # np.True_ and np.False_ are shared objects, so their id cannot say where they came
            # from; a 0-d array of the same value can.
            eq.out = out = np.asarray(out)
        self._index[id(out)] = len(self.equations) - 1
        return out

    def _dynamic(self, ref) -> bool:
        return ref is not None and (ref == INPUT or self.equations[ref].dynamic)

    def observed(self, fn, args, kwargs, result) -> None:
        refs = self.refs(args)
        if any(self._dynamic(r) for r in self.refs(kwargs.values())):
            raise NotReplayable(f"{getattr(fn, '__name__', fn)} took a keyword computed from x")
        if any(self._dynamic(r) for r in refs):
            self.observations.append(Observation(fn, args, kwargs, refs, result, self.segment))

    def output(self, value, seeds: int) -> None:
        self.outputs.setdefault(self.segment, []).append((value, self.refs([value])[0], seeds))


def _arrays_in(params: dict) -> list:
    """The array-valued parameters (top level or in a tuple or list), e.g. gather indices."""
    found = []
    for value in params.values():
        if isinstance(value, (tuple, list)):
            found.extend(v for v in value if isinstance(v, np.ndarray))
        elif isinstance(value, np.ndarray):
            found.append(value)
    return found
