"""Counting one evaluation of f, and predicting what each accumulation order costs."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .accounting import Cost, counting
from .engines.base import check_output, next_level
from .primitives import Trace, bind
from .tracing import Tracer


class EvalTrace(Trace):
    """Runs f on tracers with no derivative at all: only the primal work happens."""

    def __init__(self):
        self.level = next_level()

    def process(self, prim, args, params):
        primals = [a.primal if isinstance(a, Tracer) and a._trace is self else a for a in args]
        out = bind(prim, *primals, **params)
        return Tracer(self, out) if prim.differentiable else out


def count_flops(f: Callable, x) -> Cost:
    """`Cost` of one evaluation of f at x, counted from the primitives that ran.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.count_flops(lambda x: np.sum(np.sin(np.exp(x ** 2))), np.ones(1000))
    Cost(flops=1999, transcendentals=2000)
    """
    from .jacobian import as_input

    trace = EvalTrace()
    with counting() as counter:
        check_output(f(Tracer(trace, as_input(x))), trace)
    return counter.cost("primal")
