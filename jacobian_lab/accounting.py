"""Exact work accounting: `Cost`, the per-trace counter and its phases.

Every primitive adds the cost of the arrays it actually ran on to the counter
bound to the current context, under the counter's current phase. The counter
lives in a `contextvars.ContextVar`, so traces in different threads (or asyncio
tasks) never see each other's counts, and code that runs without a counter pays
one context-variable lookup per primitive and nothing else.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass

PRIMAL, TANGENT, COTANGENT = "primal", "tangent", "cotangent"
PHASES = (PRIMAL, TANGENT, COTANGENT)


def free(out, *args, **params) -> tuple[int, int]:
    """The cost of moving values without arithmetic (reshape, slicing, ...): nothing."""
    return 0, 0


@dataclass(frozen=True)
class Cost:
    """Floating-point work: plain flops and transcendental evaluations.

    >>> c = Cost(1999, 2000)
    >>> c.total(), c.total(weight=10.0)
    (3999.0, 21999.0)
    >>> Cost(1, 2) + Cost(3, 4), 3 * Cost(1, 2)
    (Cost(flops=4, transcendentals=6), Cost(flops=3, transcendentals=6))
    """

    flops: int = 0
    transcendentals: int = 0

    def total(self, weight: float = 1.0) -> float:
        """flops + weight * transcendentals (weight prices one exp/sin/... in flops)."""
        return float(self.flops + weight * self.transcendentals)

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.flops + other.flops, self.transcendentals + other.transcendentals)

    def __sub__(self, other: "Cost") -> "Cost":
        return Cost(self.flops - other.flops, self.transcendentals - other.transcendentals)

    def __mul__(self, k: int) -> "Cost":
        return Cost(self.flops * k, self.transcendentals * k)

    __rmul__ = __mul__

    def to_dict(self) -> dict:
        """The two counts as a JSON-ready dict.

        >>> Cost(3, 1).to_dict()
        {'flops': 3, 'transcendentals': 1}
        """
        return {"flops": self.flops, "transcendentals": self.transcendentals}


class Counter:
    """Accumulates `Cost` per phase for one trace; `phase` says where new work goes.

    `tape_bytes` is the largest residual memory a reverse tape held while counting;
    `passes` and `batch_size` are the derivative passes (forward passes, backward
    sweeps) that completed and the most seeds one of them carried; the work of a
    pass stopped by the memory budget is counted, the pass is not.
    """

    #: Whether it writes down what it counts (`jacobian_lab.staging.Recorder`): a block nested in it then
    #: records into it too (`counting`)
    records = False

    def __init__(self) -> None:
        # The [flops, transcendentals] total of the current phase, which new work goes to:
        # work is added for every primitive executed, so the phase is resolved when it changes.
        self.current = primal = [0, 0]
        self._work = {PRIMAL: primal, TANGENT: [0, 0], COTANGENT: [0, 0]}
        self.tape_bytes = self.passes = self.batch_size = 0

    @property
    def phase(self) -> str:
        return next(name for name, work in self._work.items() if work is self.current)

    @phase.setter
    def phase(self, name: str) -> None:
        self.current = self._work[name]

    def count_pass(self, seeds: int) -> None:
        self.passes += 1
        self.batch_size = max(self.batch_size, seeds)

    def merge(self, inner: "Counter") -> None:
        """Add the work, passes and tape memory of a nested block's counter to this one."""
        totals = self._work
        for name, (flops, transcendentals) in inner._work.items():
            if flops or transcendentals:
                work = totals[name]
                work[0] += flops
                work[1] += transcendentals
        self.passes += inner.passes
        if inner.batch_size > self.batch_size:  # comparisons, not max(): a replay merges on every call
            self.batch_size = inner.batch_size
        if inner.tape_bytes > self.tape_bytes:
            self.tape_bytes = inner.tape_bytes

    def evaluate(self, prim, args, params: dict):
        """``prim.impl(*args, **params)`` on plain arrays, its cost added to the current phase.

        Every counted primitive goes through here (`jacobian_lab.primitives.evaluate`):
        a cost of one flop or one transcendental per output element (`Primitive.unit`,
        most primitives) adds the output's size, without calling the cost function.
        A recording counter (`jacobian_lab.staging.Recorder`) also writes the call down.
        """
        out = prim.impl(*args, **params)
        unit = prim.unit
        if unit is not None:
            self.current[unit] += out.size
        elif prim.cost is not free:
            flops, transcendentals = prim.cost(out, *args, **params)
            work = self.current
            work[0] += flops
            work[1] += transcendentals
        return out

    # `evaluate` for a call with no traced operand, whose result goes to the caller as it is (an engine
    # wraps what `evaluate` gives it): a recording hands such a result computed from x to f in a form whose
    # reads it observes (`Recorder.untraced`). The same function here: counting adds no call to the hot path.
    untraced = evaluate

    def observed(self, fn, args, kwargs, result) -> None:
        """A decision read the values of `args` (`jacobian_lab.primitives.observe`): only a recording keeps it."""

    def varying(self, fn, args, times: int, result) -> None:
        """A count of work read from the values of `args` (`jacobian_lab.primitives.counted`): only a
        recording keeps it, for each replay to count again."""

    def unreplayable(self, reason: str) -> None:
        """What f did cannot be replayed, for `reason`: only a recording needs to know."""

    def printed(self, value) -> None:
        """f read the numbers of `value` as text (``repr`` of a traced array): only a recording needs to
        know, since no replay can check what f made of the text."""

    def copied(self, copy, original) -> None:
        """`copy` holds what `original` holds (a reverse tape keeps a copy of an array f passed): only a
        recording needs to know, to recompute the copy as it recomputes the original."""

    def add(self, flops: int, transcendentals: int) -> None:
        work = self.current
        work[0] += flops
        work[1] += transcendentals

    def cost(self, phase: str) -> Cost:
        return Cost(*self._work[phase])

    def costs(self) -> dict[str, Cost]:
        return {p: self.cost(p) for p in PHASES}

    def total(self) -> Cost:
        return sum(self.costs().values(), Cost())


_COUNTER: contextvars.ContextVar[Counter | None] = contextvars.ContextVar(
    "jacobian_lab_counter", default=None
)


#: active_counter() -> the Counter of the current context, or None when nothing is being
#: counted. Every primitive asks, so it is the context variable's own C getter, not a wrapper.
active_counter = _COUNTER.get

#: This package's context variables (the counter, the tracing depth, the matrix a refusal names): a block run in
#: a copy of the context (`counted`) leaves them behind, and carries back the ones f set
OWN: set = {_COUNTER}


# counting() and phase() are small classes rather than @contextlib.contextmanager
# generators, which cost a few microseconds per block, as much as a small sweep.
class counting:
    """Count every primitive executed inside the block.

    Blocks nest: when one ends, its work (and its passes) is added to the
    enclosing block's counter, so an outer count includes everything that ran,
    predictions and probes included.

    >>> import numpy as np, jacobian_lab as jl
    >>> with counting() as c:
    ...     _ = jl.jacrev(lambda x: np.sum(x ** 2))(np.ones(3))
    >>> c.cost("primal"), c.cost("cotangent")
    (Cost(flops=5, transcendentals=0), Cost(flops=6, transcendentals=0))
    """

    def __init__(self, counter: Counter | None = None):
        self.counter = counter

    def __enter__(self) -> Counter:
        self.inner = counter = self.counter or Counter()
        outer = _COUNTER.get()
        if self.counter is None and outer is not None and outer.records:
            # Inside a recording (jit's), the block's work stays the recording's, so that what it computes from x
            # is recomputed by a replay, not kept as a constant (a Chain's Jacobian, counted in f). The block's
            # own counter gets its share when it ends.
            self._shared = outer, _snapshot(outer)
            outer.tape_bytes = outer.batch_size = 0  # maxima: the block's own, from here
            outer.current = outer._work[PRIMAL]  # where a fresh counter starts
            return counter
        self._shared = None
        self._token = _COUNTER.set(counter)
        return counter

    def __exit__(self, *exc) -> None:
        if self._shared is not None:
            _share(*self._shared, self.inner)
            return
        _COUNTER.reset(self._token)
        outer = _COUNTER.get()
        if outer is not None:
            outer.merge(self.inner)


def counted(fn, *args, counter: Counter | None = None):
    """``(fn(*args), the Counter that counted it)``: a `counting` block around the call, in a copy of the
    context. CPython delivers a Ctrl-C that arrived during a with-block at the first line of its __exit__,
    which then never gives the enclosing counter back: every later call of the thread would count into a
    block that ended (a jit recording would record them all). The copy is dropped with what it holds.

    >>> import numpy as np, jacobian_lab as jl
    >>> J, counter = counted(jl.jacrev(lambda x: np.sum(x ** 2)), np.ones(3))
    >>> counter.cost("primal"), counter.cost("cotangent")
    (Cost(flops=5, transcendentals=0), Cost(flops=6, transcendentals=0))
    """
    return _isolated(_counted, fn, args, counter)


def _isolated(fn, *args):
    """``fn(*args)`` in a copy of the context; the variables f set there (np.seterr's, decimal's, its own) are
    set here after, as f running here would leave them, all but this package's own."""
    context = contextvars.copy_context()
    try:
        return context.run(fn, *args)
    finally:
        here = contextvars.copy_context()
        for var, value in context.items():
            if here.get(var, _UNSET) is not value and var not in OWN:
                var.set(value)


_UNSET = object()


def _counted(fn, args: tuple, counter: Counter | None):
    with counting(counter) as inner:
        return fn(*args), inner


def counted_by(counter: Counter | None, fn, *args):
    """``fn(*args)`` with its work counted by `counter` alone (None: by none), in a copy of the context: outside
    a recording in progress, say (jit's choice of orders, whose probes a program must not replay).

    >>> import numpy as np, jacobian_lab as jl
    >>> with counting() as outer:
    ...     _ = counted_by(None, jl.jacrev(lambda x: np.sum(x ** 2)), np.ones(3))
    >>> outer.total()
    Cost(flops=0, transcendentals=0)
    """
    return _isolated(_counted_by, counter, fn, args)


def _counted_by(counter, fn, args: tuple):
    _COUNTER.set(counter)
    return fn(*args)


def _snapshot(counter: Counter) -> tuple:
    return ({name: list(work) for name, work in counter._work.items()}, counter.passes, counter.tape_bytes,
            counter.batch_size, counter.current)


def _share(outer: Counter, before: tuple, block: Counter) -> None:
    """Give `block` what `outer` counted since `before` (its `_snapshot`), and restore outer's maxima and phase."""
    work, passes, tape_bytes, batch_size, outer.current = before
    for name, (flops, transcendentals) in outer._work.items():
        block._work[name][0] += flops - work[name][0]
        block._work[name][1] += transcendentals - work[name][1]
    block.passes, block.tape_bytes, block.batch_size = outer.passes - passes, outer.tape_bytes, outer.batch_size
    outer.tape_bytes, outer.batch_size = max(tape_bytes, outer.tape_bytes), max(batch_size, outer.batch_size)


def in_phase(counter: Counter, name: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with its work attributed to phase `name` of `counter`.

    The engines' per-primitive and per-sweep form of `phase`, without a context manager.
    """
    previous, counter.current = counter.current, counter._work[name]
    try:
        return fn(*args, **kwargs)
    finally:
        counter.current = previous


class phase:
    """Attribute work done inside the block to phase `name` of the active counter."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        self.counter = _COUNTER.get()
        if self.counter is not None:
            self.previous, self.counter.phase = self.counter.phase, self.name

    def __exit__(self, *exc) -> None:
        if self.counter is not None:
            self.counter.phase = self.previous
