"""Forward accumulation: dual numbers `Dual(primal, tangent)`.

Each primitive runs on the primal and pushes the tangent through its JVP rule,
so a pass costs one evaluation of f plus the tangent work. The tangent carries
a leading seed axis: k one-hot seeds pushed in one pass give k Jacobian columns
("vector mode"), at k times the per-seed tangent work but one primal evaluation.
"""
from __future__ import annotations

import numpy as np
from numpy import ndarray  # for the hot paths' type tests: CPython 3.11 caches no attribute of numpy (a module __getattr__)

from ..accounting import TANGENT, active_counter
from ..memory import TangentBudget
from ..primitives import Trace, apply, derivative_raised, frozen, sole
from ..tracing import FLOAT64, NOT_REAL, Tracer, blank_result, not_real_result, objects_converted
from .base import call_traced, next_level, register


class Dual(Tracer):
    """A primal value with its seed-batched tangent, shape (k, *primal.shape); None for an array
    without a derivative (`Trace.constant`)."""

    __slots__ = ("tangent",)

    def __init__(self, trace, primal, tangent):
        self._trace, self.primal, self.tangent = trace, primal, tangent

    constant = property(lambda self: self.tangent is None)


class ForwardTrace(Trace):
    """Interprets primitives on `Dual`s; with `max_bytes`, stops a pass whose tangents outgrow it."""

    def __init__(self, max_bytes=None, seeds=1):
        self.level = next_level()
        self.budget = TangentBudget(max_bytes, seeds)
        self.constants = False  # read on every operation: the instance's own, which CPython reads fastest

    def process(self, prim, args, params):
        primals, tangents = [], []
        for a in args:
            if type(a) is Dual and a._trace is self:  # no subclasses: the exact type test is the cheaper one
                primals.append(a.primal)
                tangents.append(a.tangent)
            else:
                if type(a) is ndarray and a.dtype.hasobject and (converted := objects_converted(args)):
                    return apply(prim, converted, params)  # np.array([a, b]) of traced scalars: one array
                primals.append(a)
                tangents.append(None)  # a constant: symbolic zero tangent
                if isinstance(a, Tracer):  # a value of an enclosing trace: see `nested`
                    self.nested = True
        counter = active_counter()  # looked up once: the tangent rule below is counted too
        out = self.evaluate(prim, primals, params, counter)
        if self.constants and all(t is None for t in tangents):  # arrays without a derivative and plain ones
            return self.constant(out) if blank_result(out) else out
        if not prim.differentiable:
            return out
        if out.dtype is not FLOAT64 and out.dtype in NOT_REAL:  # float64, the usual dtype, tested first
            raise not_real_result(prim, out)
        try:
            if counter is None:
                tangent = prim.jvp(tangents, out, *primals, **params) if params else prim.jvp(tangents, out, *primals)
            else:  # `in_phase`, written out: this runs for every primitive
                previous, counter.current = counter.current, counter._work[TANGENT]
                try:
                    tangent = prim.jvp(tangents, out, *primals, **params)
                finally:
                    counter.current = previous
        except (FloatingPointError, RuntimeWarning) as error:  # np.errstate(all="raise") around f
            raise derivative_raised(prim, error) from None
        if tangent is None:
            return out
        if self.budget.max_bytes is not None:  # `account`'s own first test, without the call per primitive
            self.budget.account(tangent)
        return Dual(self, out, tangent)

    def constant(self, value):
        self.constants = True
        return Dual(self, frozen(value), None)

    def wrote(self, owner, values, indices, picks) -> bool:
        """``y[i] = v`` into y's own primal and tangent, where nothing but y reaches them (`sole`): a loop of
        element writes then costs O(1) each, not a copy of y and of its k-seed tangent (O(k·n)) each.
        Not where a counter or a recording watches (a compiled program replays the `put`), nor nested."""
        if self.nested or active_counter() is not None or type(owner) is not Dual or owner._trace is not self:
            return False
        if type(values) is Dual:
            if values._trace is not self:
                return False
            new, slopes = values.primal, values.tangent
        elif isinstance(values, Tracer):
            return False
        else:
            new, slopes = np.asarray(values), None
        if not (sole(owner, "primal") and sole(owner, "tangent") and owner.tangent.flags.c_contiguous):
            return False
        owner.primal.flat[indices] = new.reshape(-1)[picks]
        tangent = owner.tangent.reshape(len(owner.tangent), -1)  # a view: C-contiguous
        tangent[:, indices] = 0.0 if slopes is None else slopes.reshape(len(slopes), -1)[:, picks]
        return True


class ForwardEngine:
    """JVPs by dual numbers; one pass per batch of tangent seeds."""

    name = "forward"

    def jvp(self, f, x, tangents, max_bytes=None):
        """(y, tangents of y); with max_bytes, MemoryBudgetError once the pass's tangents exceed it."""
        if np.shape(tangents)[1:] != np.shape(x):
            raise ValueError(f"tangents must have shape (k, *x.shape) = (k, {', '.join(map(str, np.shape(x)))}) for k "
                             f"seeds, got {np.shape(tangents)}; for one tangent of x's shape use tangents[None] "
                             "(jl.jvp takes either)")
        k = np.shape(tangents)[0]
        trace = ForwardTrace(max_bytes, k)
        trace.nested = isinstance(x, Tracer)
        y, traced = call_traced(f, Dual(trace, x, tangents), trace)
        counter = active_counter()
        if counter is not None:
            counter.count_pass(k)
        if not traced:
            return y, np.zeros((k,) + np.shape(y))
        return y.primal, y.tangent


register(ForwardEngine())
