"""The evaluation interpreter: f run on tracers that carry no derivative, so only its own work happens.

`count_flops` counts f's work this way, and `Chain` evaluates its stages this way; it is the
smallest interpreter over the registry, the pattern for another one (see docs/architecture.md, 3).

>>> import numpy as np
>>> from jacobian_lab.engines.base import call_traced
>>> trace = EvalTrace()
>>> call_traced(lambda v: np.sin(v) * 2.0, Evaluated(trace, np.zeros(2)), trace)[0].primal
array([0., 0.])
"""
from __future__ import annotations

from ..primitives import Trace, apply, bind, frozen, plain_result
from ..tracing import NOT_REAL, Tracer, blank_result, not_real_result, objects_converted
from .base import next_level


class Evaluated(Tracer):
    """A value of an `EvalTrace`: `constant` where the engines' would have no derivative (`Trace.constant`)."""

    __slots__ = ("constant",)

    def __init__(self, trace, primal, constant=False):
        self._trace, self.primal, self.constant = trace, primal, constant


class EvalTrace(Trace):
    """Runs f on tracers with no derivative at all: only the primal work happens."""

    def __init__(self):
        self.level = next_level()

    def process(self, prim, args, params):
        converted = objects_converted(args)  # np.array([a, b]) of traced scalars: one array
        if converted:
            return apply(prim, converted, params)
        primals = [a.primal if isinstance(a, Tracer) and a._trace is self else a for a in args]
        out = plain_result(prim, bind(prim, *primals, **params))
        constant = self.constants and all(a.constant for a in args if isinstance(a, Tracer) and a._trace is self)
        if constant:  # arrays without a derivative and plain ones alone
            return self.constant(out) if blank_result(out) else out
        if not prim.differentiable:
            return out
        if out.dtype in NOT_REAL:  # the FLOP conventions price real arithmetic
            raise not_real_result(prim, out)
        return Evaluated(self, out)

    def constant(self, value):
        self.constants = True
        return Evaluated(self, frozen(value), True)
