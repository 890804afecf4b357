"""Counting one evaluation of f, and predicting what each accumulation order costs."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .accounting import COTANGENT, PRIMAL, TANGENT, Cost, counted, phase
from .bracketing import ratio_text
from .engines.base import call_traced, collection_paused, get
from .engines.evaluate import EvalTrace, Evaluated
from . import harness, memory
from .harness import prepare, result_dtype, schedule, tangent_bytes


#: The accumulation orders a Prediction prices.
ORDERS = ("forward", "reverse")
#: The modes of `jacobian` it prices: each order as jacfwd and jacrev run it, and auto mode's run.
MODES = ORDERS + ("auto",)


def count_flops(f: Callable, x) -> Cost:
    """`Cost` of one evaluation of f at x, counted from the primitives that ran (an f that takes a derivative
    inside, ``jl.grad(g)``, counts that derivative's work too).

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.count_flops(lambda x: np.sum(np.sin(np.exp(x ** 2))), np.ones(1000))
    Cost(flops=1999, transcendentals=2000)
    """
    f, x = prepare(f, x)
    trace = EvalTrace()
    return counted(call_traced, f, Evaluated(trace, x), trace)[1].total()


@dataclass(frozen=True)
class Affine:
    """Cost of a pass with b seeds: fixed + b * per_seed (every rule's cost is affine in b)."""

    fixed: Cost
    per_seed: Cost

    @classmethod
    def from_probes(cls, one: Cost, two: Cost) -> "Affine":
        per_seed = two - one
        return cls(one - per_seed, per_seed)

    def over(self, passes: int, seeds: int) -> Cost:
        """Total of `passes` passes that push `seeds` seeds in all."""
        return self.fixed * passes + self.per_seed * seeds


@dataclass(frozen=True)
class Prediction:
    """Exact FLOP counts of every accumulation order, from one trace of f.

    ``primal`` is one evaluation of f. A forward pass with b seeds costs one
    evaluation plus ``tangent.fixed + b * tangent.per_seed``; reverse mode
    records one tape (one evaluation), stages its VJP rules once
    (``staging``) and sweeps b cotangents for ``cotangent.fixed + b * cotangent.per_seed``.

    Each per-mode figure (`cost`, `total`, `ops`, `schedule`, `exact`) takes
    the mode of ``jacobian(f, x, mode, ...)`` it predicts. "forward" is
    `jacfwd`, which evaluates f in every pass; "reverse" is `jacrev`;
    "auto" is auto mode as a repeated call runs it: the order `mode` picks,
    built on the one tape auto mode records, so that its forward order
    evaluates f once however many passes replay the tape (``P·T₀ + n·T₁ + f``
    where ``cost("forward")`` charges ``P·(f + T₀) + n·T₁``), and its reverse
    order is `jacrev`. A first call at a tape not seen before also counts the
    probes that predicted it (see `predict`).

    A memory budget (``max_memory``) sizes the passes of both orders from the
    bytes one seed takes, read off the tape: ``seed_bytes`` for a sweep,
    ``tangent_bytes`` for a forward pass. The harness sizes them the same way
    whenever it has a tape: reverse mode always, forward mode in auto mode
    (which replays the tape it recorded). ``mode="forward"`` has no tape, so
    when the budget may be smaller than its passes need, it runs passes the
    prediction does not tell: its first pass may stop part way and be retried
    with fewer seeds, a larger count by an amount no trace tells in advance.
    `exact` says when that can happen.
    """

    n: int
    m: int
    primal: Cost
    tangent: Affine
    staging: Cost
    cotangent: Affine
    tape_bytes: int
    seed_bytes: int = 0  # working set of one cotangent seed in a sweep
    itemsize: int = 8  # bytes of a Jacobian entry, in the dtype the harness computes it (`harness.result_dtype`)
    widest: int = 0  # elements of the largest recorded value: a sweep's widest cotangent per seed
    tangent_bytes: int = 0  # tangents of one forward seed, at most (`harness.tangent_bytes`)
    # Of `primal`, the work of derivatives f takes inside (jl.grad(g)(x) in f), by the phase their engines count
    # it in, as (phase, Cost) pairs: `measure` finds it there, not in "primal"
    inside: tuple = ()

    def schedule(self, mode: str, batch_size=None, max_memory=None) -> tuple[int, int]:
        """(seeds per pass, passes), exactly as the harness runs them with a tape (see `exact`), and as
        `measure` reports them (``batch_size``, ``passes``); for "auto", those of the order it picks.

        With no seeds (an empty x in forward mode, an empty output in reverse
        mode) this is (0, 1): one pass of no seeds evaluates f, for y's shape.
        It is (0, 1) too where J has no entries because the other side is empty
        and a tape tells so before any pass (an empty x in reverse mode, an
        empty output in auto mode's forward order); forward mode, which learns
        y's shape from its first pass, runs that pass in full and no other.

        >>> import numpy as np, jacobian_lab as jl
        >>> p = jl.predict(lambda x: np.tanh(np.outer(x, x)).sum(axis=0), np.ones(20))
        >>> p.schedule("forward"), p.schedule("forward", max_memory=50_000)
        ((20, 1), (6, 4))
        >>> jl.predict(np.sin, np.ones(0)).schedule("forward")
        (0, 1)
        """
        _check_mode(mode)  # every per-mode figure passes here; anything but "forward" would read as reverse
        replay = mode == "auto"  # on a tape, which tells y's shape before any pass
        if replay:
            mode = self.mode(batch_size, max_memory)
        room = memory.budget(max_memory) - self.dense_bytes
        if mode == "forward":
            step, passes = schedule(mode, self.n, self.m, batch_size, self.tangent_bytes, room)
        else:
            step, passes = schedule(mode, self.n, self.m, batch_size, self.seed_bytes, room, self.widest)
        if not (self.m if mode == "forward" else self.n):  # J has no entries
            return (0, 1) if mode == "reverse" or replay else (min(step, self.n), 1)
        return min(step, self.n if mode == "forward" else self.m), passes  # the harness steps by 1 over no seeds

    def exact(self, mode: str, batch_size=None, max_memory=None) -> bool:
        """Whether ``jacobian(f, x, mode, batch_size, max_memory=...)`` counts exactly `total` with the same
        arguments.

        Always in reverse and auto mode, whose tape tells a pass's bytes
        before any pass runs (auto mode's forward order replays it). Forward
        mode without a tape cannot know its passes' bytes before it runs one,
        so it takes the seeds per pass it would take without a budget; when
        those may not fit, this is False: its first pass may stop part way and
        be retried with fewer seeds (a larger count, by an amount no trace tells
        in advance), or, run before the result's size is known, fit a budget
        that the passes `schedule` sizes leave room for beside the result.
        (Passes on an `executor` share the budget among its workers, which no
        figure here models.)

        >>> import numpy as np, jacobian_lab as jl
        >>> p = jl.predict(lambda x: np.tanh(np.outer(x, x)).sum(axis=0), np.ones(20))
        >>> p.exact("forward"), p.exact("forward", max_memory=50_000), p.exact("reverse", max_memory=50_000)
        (True, False, True)
        """
        _check_mode(mode)
        if mode != "forward":
            return True
        unsized, _ = schedule(mode, self.n, self.m, batch_size)  # what forward mode without a tape runs
        return unsized * self.tangent_bytes <= memory.budget(max_memory) - self.dense_bytes

    @property
    def dense_bytes(self) -> int:
        """The bytes of the dense (m, n) Jacobian, in the dtype the harness holds it in."""
        return self.m * self.n * self.itemsize

    def _terms(self, mode: str, batch_size, max_memory) -> list[tuple[str, int, Cost]]:
        """One Jacobian's work as (phase, times, Cost) terms: the one formula `cost` and `ops` sum."""
        step, passes = self.schedule(mode, batch_size, max_memory)
        replay = mode == "auto"  # either order built on the one tape auto mode records
        if replay:
            mode = self.mode(batch_size, max_memory)
        if mode == "forward":  # the primal-only factors once per pass, the rest once per seed; f once per pass,
            # or once in all when the passes replay a tape
            return [*self._evaluations(1 if replay else passes), (TANGENT, passes, self.tangent.fixed),
                    (TANGENT, min(self.n, step * passes), self.tangent.per_seed)]
        return [*self._evaluations(1), (COTANGENT, 1, self.staging), (COTANGENT, passes, self.cotangent.fixed),
                (COTANGENT, min(self.m, step * passes), self.cotangent.per_seed)]

    def _evaluations(self, times: int) -> list[tuple[str, int, Cost]]:
        """`times` evaluations of f as terms: the derivatives taken inside f in their own phases."""
        own = sum((cost for _, cost in self.inside), Cost())
        return [(PRIMAL, times, self.primal - own)] + [(phase, times, cost) for phase, cost in self.inside]

    def cost(self, mode: str, batch_size=None, max_memory=None) -> dict[str, Cost]:
        """Predicted Cost per phase ("primal", "tangent", "cotangent") of one Jacobian in `mode`.

        "auto" is the order auto mode picks, as it runs it (f once, see the class):

        >>> import numpy as np, jacobian_lab as jl
        >>> p = jl.predict(lambda x: np.sin(np.outer(x, x)), np.ones(4))
        >>> p.mode(batch_size=1), p.cost("forward", 1)["primal"], p.cost("auto", 1)["primal"]
        ('forward', Cost(flops=64, transcendentals=64), Cost(flops=16, transcendentals=16))
        """
        phases = {PRIMAL: Cost(), TANGENT: Cost(), COTANGENT: Cost()}
        for name, times, cost in self._terms(mode, batch_size, max_memory):
            phases[name] += cost * times
        return phases

    def total(self, mode: str, batch_size=None, max_memory=None) -> Cost:
        """Predicted Cost of one Jacobian in `mode`, every phase of `cost` together: what counting
        ``jacobian(f, x, mode, batch_size)`` finds.

        >>> import numpy as np, jacobian_lab as jl
        >>> f, x = (lambda x: np.sum(np.sin(x))), np.ones(3)
        >>> jl.predict(f, x).total("reverse") == jl.measure(f, x, mode="reverse").total
        True
        """
        return sum(self.cost(mode, batch_size, max_memory).values(), Cost())

    def jvp_ratio(self) -> float:
        """OPS(f and one JVP) / OPS(f), transcendentals weighted 1 (the cheap-gradient ratio); NaN for an
        f that does no arithmetic (it only moves values), where the ratio is undefined."""
        return self._ratio(self.primal + self.tangent.fixed + self.tangent.per_seed)

    def vjp_ratio(self) -> float:
        """OPS(f and one VJP) / OPS(f), transcendentals weighted 1 (the cheap-gradient ratio); NaN as
        `jvp_ratio`."""
        return self._ratio(self.primal + self.staging + self.cotangent.fixed + self.cotangent.per_seed)

    def _ratio(self, with_derivative: Cost) -> float:
        f = self.primal.total()
        return with_derivative.total() / f if f else math.nan

    def mode(self, batch_size=None, max_memory=None) -> str:
        """The order `choose` picks, without the explanation: what auto mode asks on every call.

        >>> import numpy as np, jacobian_lab as jl
        >>> jl.predict(lambda x: np.sum(x ** 2), np.ones(5)).mode()
        'reverse'
        """
        return self._decide(batch_size, max_memory)[0]

    def choose(self, batch_size=None, max_memory=None) -> tuple[str, str]:
        """(mode, reason): the order with the smaller predicted total (forward on a tie: no tape).

        The total is what `Cost.total` and compare's "total" column give: flops
        plus transcendentals, each transcendental weighted 1, so the reason
        names both parts.

        >>> import numpy as np, jacobian_lab as jl
        >>> print(jl.predict(lambda x: x[1:] * np.exp(x[:-1]), np.linspace(-1, 1, 10)).choose()[1])
        reverse predicts a total of 342 (333 flops + 9 transcendentals, weighted 1) vs 378 for forward
        (1.11x fewer) for this 9x10 Jacobian

        With a memory budget, reverse mode is ruled out when its tape and one
        sweep's working set do not fit, and both orders' passes are sized to
        it, as auto mode runs them on its tape (see `exact` for forward mode
        without one).
        """
        mode, fwd, rev, limit = self._decide(batch_size, max_memory)
        shape = f"{self.m}x{self.n} Jacobian"
        if fwd is None and self.reverse_bytes > limit:
            return mode, (f"reverse would need {memory.readable(self.reverse_bytes)} for its tape and one sweep, "
                          f"over max_memory = {memory.readable(limit)}")
        if fwd is None:
            other = "forward pass" if mode == "reverse" else "sweep"
            return mode, (f"a {other} of batch_size = {batch_size} seeds would not fit max_memory = "
                          f"{memory.readable(limit)} beside the {shape}; {mode}'s passes of as many do")
        if fwd == rev:
            return mode, (f"forward and reverse both predict a total of {fwd:,.0f} (flops + transcendentals, "
                          f"weighted 1) for this {shape}; auto takes forward on a tie")
        low, high = min(fwd, rev), max(fwd, rev)
        # Near-ties read as a percentage: "1x fewer" would hide which side won.
        saving = f"{ratio_text(high / max(low, 1.0))}x fewer" if high >= 1.1 * low else \
            f"{100 * (1 - low / high):.2g}% fewer"
        cost, other = self.total(mode, batch_size, max_memory), "reverse" if mode == "forward" else "forward"
        return mode, (f"{mode} predicts a total of {low:,.0f} ({cost.flops:,} flops + {cost.transcendentals:,} "
                      f"transcendentals, weighted 1) vs {high:,.0f} for {other} ({saving}) for this {shape}")

    @property
    def reverse_bytes(self) -> int:
        """Memory reverse mode holds at once: the result, the tape and one sweep's working set."""
        return self.dense_bytes + self.tape_bytes + self.seed_bytes

    def _decide(self, batch_size, max_memory, limit=None):
        """(mode, forward FLOPs, reverse FLOPs, memory limit); FLOPs None when reverse does not fit."""
        limit = memory.budget(max_memory) if limit is None else limit
        memory.check_dense(self.m, self.n, self.itemsize, limit)
        if max_memory is not None and self.reverse_bytes > limit:
            return "forward", None, None, limit
        if max_memory is not None and batch_size is not None:  # passes of batch_size seeds, which one order may
            # have room for and the other not: that order, whose passes the harness would refuse
            fits = [self._fits(mode, batch_size, max_memory, limit) for mode in ("forward", "reverse")]
            if fits[0] != fits[1]:
                return ("forward", None, None, limit) if fits[0] else ("reverse", None, None, limit)
        # Both orders sized to the budget: auto mode builds either one on its tape, which tells the
        # bytes of a pass before it runs, so these are the passes it runs.
        fwd, rev = self.ops("forward", batch_size, max_memory), self.ops("reverse", batch_size, max_memory)
        return ("forward" if fwd <= rev else "reverse"), fwd, rev, limit

    def _fits(self, mode: str, batch_size: int, max_memory, limit: int) -> bool:
        """Whether a pass of `batch_size` seeds in `mode` fits the room the result leaves, as the harness checks
        before running one (a forward pass of one seed always runs, and stops if it outgrows the budget)."""
        step = self.schedule(mode, batch_size, max_memory)[0]
        per_seed = self.tangent_bytes if mode == "forward" else self.seed_bytes
        return step * per_seed <= limit - self.dense_bytes or (mode == "forward" and step <= 1)

    def ops(self, mode: str, batch_size=None, max_memory=None) -> float:
        """``total(mode, ...).total()`` in floats, building no Costs: auto mode asks for it on every call.

        >>> import numpy as np, jacobian_lab as jl
        >>> p = jl.predict(lambda x: np.sum(x ** 2), np.ones(5))
        >>> p.ops("reverse") == p.total("reverse").total()
        True
        """
        return sum(times * cost.total() for _, times, cost in self._terms(mode, batch_size, max_memory))

    def to_dict(self) -> dict:
        """The prediction as a JSON-ready dict: sizes, f's cost, both orders' costs per phase, the cheap-gradient
        ratios and the tape's bytes."""
        return {
            "n": self.n, "m": self.m, "primal": self.primal.to_dict(),
            "forward": {k: v.to_dict() for k, v in self.cost("forward").items()},
            "reverse": {k: v.to_dict() for k, v in self.cost("reverse").items()},
            "jvp_ratio": self.jvp_ratio(), "vjp_ratio": self.vjp_ratio(), "tape_bytes": self.tape_bytes,
        }


def _check_mode(mode) -> None:
    """Refuse a mode that is not one a prediction prices."""
    if mode not in MODES:
        raise ValueError(f"mode must be 'forward', 'reverse' or 'auto', got {mode!r}; the order auto mode "
                         "takes is prediction.mode()")


def _counted(phase_name, fn, *args) -> Cost:
    return counted(fn, *args)[1].cost(phase_name)


def _replay_forward(tape, t):
    with phase(TANGENT):
        tape.forward(t)


def predict(f: Callable, x) -> Prediction:
    """Predict the exact cost of every accumulation order before building a Jacobian.

    f is traced once into a tape; the rules are then run on probe seeds of
    batch 1 and 2 (values do not matter, only shapes), which fixes the affine
    cost of a pass exactly. Costs of any batch schedule follow without running it.
    The forward probes replay the JVP rules over the recorded tape (`Tape.forward`):
    the same rules on the same primal values as a forward pass, without running f again.

    >>> import numpy as np, jacobian_lab as jl
    >>> p = jl.predict(lambda x: np.sum(np.sin(np.exp(x ** 2))), np.ones(1000))
    >>> p.total("forward").flops > 100 * p.total("reverse").flops
    True
    >>> p.choose()[0]
    'reverse'
    """
    f, x = prepare(f, x)
    return probe(f, x)[0]


def probe(f: Callable, x: np.ndarray, reuse: bool = False):
    """`predict` for a prepared (f, x), also returning the `(y, pullback)` it recorded.

    The tape is recorded exactly as reverse mode records it, so
    ``jacobian(mode="auto")`` sweeps it directly when reverse mode wins. With
    `reuse`, the derivative costs are looked up by the tape's `signature` and
    the probes run only for a tape not seen before: the primal cost and the
    memory figures are always those of this recording.
    """
    (y, pullback), counter = counted(get("reverse").vjp, f, x)
    key = pullback.tape.signature(pullback.output) if reuse else None
    # f's evaluation is all the work recording it did: with a derivative taken inside f, that one's too
    inside = tuple((name, cost) for name, cost in counter.costs().items() if name != PRIMAL and cost != Cost())
    return replace(_predict(counter.total(), counter.tape_bytes, x, y, pullback, key), inside=inside), y, pullback


@collection_paused()  # the recording, and the decision: its probes sweep and replay the tape, its signature walks it
def choose_order(f: Callable, x: np.ndarray, batch_size=None, max_memory=None):
    """(mode, (y, pullback)): the order auto mode takes at x, and the tape it recorded to decide
    (`decide`). Either order then works on that tape: reverse sweeps it, forward
    replays it (the primal values are on it, so f is evaluated once however many
    passes there are).
    """
    # either order then holds the tape, so one past the budget is refused as f records it, as reverse mode's is
    y, pullback = harness.record(f, x, memory.budget(max_memory))
    return decide(x, y, pullback, batch_size, max_memory)[0], (y, pullback)


def decide(x: np.ndarray, y, pullback, batch_size=None, max_memory=None) -> tuple[str, "Prediction"]:
    """(mode, Prediction) of the tape `pullback` recorded of f at x: auto mode's choice.

    The choice is `Prediction.mode`, remembered by everything it depends on: the
    tape's signature (which fixes every derivative cost and f's own work), the
    tape memory, the batch size and the memory budget. A repeated call then
    decides without counting anything; where only the budget changed (by default
    half the memory free, which moves between calls) it decides again from the
    remembered `Prediction`, without walking the tape. A function that
    branches on values traces another tape for another x, so a stale choice is
    never taken. Its callers hold full collections off (`collection_paused`) around it.

    >>> import numpy as np, jacobian_lab as jl
    >>> x = np.ones(1000)
    >>> y, pullback = jl.engines.get("reverse").vjp(lambda v: np.sum(np.sin(v)), x)
    >>> mode, prediction = decide(x, y, pullback)
    >>> mode, prediction.mode()
    ('reverse', 'reverse')
    """
    tape = pullback.tape
    signature = tape.signature(pullback.output)
    limit = memory.budget(max_memory)
    remembered, key = _lookup(_DECISIONS, (signature, tape.fresh_bytes, batch_size, max_memory))
    if remembered is not None:
        if remembered[0] != limit:  # decided again for the new budget, in place: no second hash of a long key
            remembered[:2] = limit, remembered[2]._decide(batch_size, max_memory, limit)[0]
        return remembered[1], remembered[2]
    prediction = _predict(tape.primal_cost(), tape.fresh_bytes, x, y, pullback, signature)
    mode = prediction._decide(batch_size, max_memory, limit)[0]
    if key is not None:
        _remember(_DECISIONS, key, [limit, mode, prediction])
    return mode, prediction


def _lookup(cache: dict, key):
    """(value or None, key); key None when it cannot be hashed (an unhashable parameter)."""
    try:
        return cache.get(key), key
    except TypeError:
        return None, None


def _predict(primal: Cost, tape_bytes: int, x, y, pullback, key) -> "Prediction":
    """The Prediction of a recorded tape; derivative costs probed, or looked up by signature `key`."""
    costs, key = _lookup(_DERIVATIVE_COSTS, key) if key is not None else (None, None)
    if costs is None:
        costs = _probe_costs(pullback, x.shape, np.shape(y))
        if key is not None:
            _remember(_DERIVATIVE_COSTS, key, costs)
    tangent, staging, cotangent = costs
    # The harness holds J and a sweep's cotangents in the derivative dtype, not x's: float64 for a
    # float16 or longdouble x, so sizing passes by x's itemsize would predict other passes than run.
    itemsize = result_dtype(x).itemsize
    return Prediction(
        n=x.size, m=math.prod(np.shape(y)), primal=primal,
        tangent=tangent, staging=staging, cotangent=cotangent, tape_bytes=tape_bytes,
        seed_bytes=getattr(pullback, "seed_elements", 0) * itemsize, itemsize=itemsize,
        widest=getattr(pullback, "widest", 0), tangent_bytes=tangent_bytes(pullback, x),
    )


def _probe_costs(pullback, x_shape, y_shape) -> tuple[Affine, Cost, Affine]:
    """(tangent, staging, cotangent) from sweeps of 1, 1 and 2 seeds and forward replays of 1 and 2."""
    first, one, two = (_counted(COTANGENT, pullback, np.zeros((k,) + y_shape)) for k in (1, 1, 2))
    t_one, t_two = (_counted(TANGENT, _replay_forward, pullback.tape, np.zeros((k,) + x_shape)) for k in (1, 2))
    return Affine.from_probes(t_one, t_two), first - one, Affine.from_probes(one, two)


# Derivative costs by tape signature, and auto mode's choices by everything they depend
# on but the memory budget, kept beside them with the Prediction (see `decide`).
# A signature fixes every rule's work (see `Tape.signature`), so a hit is exact; the
# oldest entries go first.
_DERIVATIVE_COSTS: dict = {}
_DECISIONS: dict = {}
_CACHE_SIZE = 256
_CACHE_LOCK = threading.Lock()


def _remember(cache: dict, key, value) -> None:
    with _CACHE_LOCK:
        while len(cache) >= _CACHE_SIZE:
            del cache[next(iter(cache))]
        cache[key] = value


def clear_cache() -> None:
    """Forget the derivative costs and choices auto mode remembered (the next call probes again).

    >>> import numpy as np, jacobian_lab as jl
    >>> _ = jl.jacobian(lambda x: np.sum(x ** 2), np.ones(5))
    >>> jl.prediction.clear_cache()
    >>> len(jl.prediction._DERIVATIVE_COSTS)
    0
    """
    with _CACHE_LOCK:
        _DERIVATIVE_COSTS.clear()
        _DECISIONS.clear()
