"""Sweeps: the cost of forward and reverse accumulation over a grid of sizes.

For every (n, m) of a grid, :func:`sweep` builds the problem, reads the exact
FLOPs of forward mode (vector mode, all tangents in one pass where memory
allows) and reverse mode (batched sweeps over one tape) from
:func:`jacobian_lab.predict`, and times both with :func:`jacobian_lab.measure`.
:func:`crossover` finds where the two FLOP curves meet, interpolating on
log-log axes between grid points.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import problems as _problems
from .accounting import Cost
from .compare import measure, plain_text, rich_rows
from .compressed import fewer_seeds
from .prediction import predict
from .sparsity import sparsity

__all__ = [
    "Crossover",
    "SweepPoint",
    "SweepResult",
    "SweepSeries",
    "crossover",
    "default_grid",
    "sizes_taken",
    "sweep",
]

MODES = ("forward", "reverse")
SPARSE = "sparse"  # `sparse_jacobian`, at the points where compressed seeds are fewer than either order's


@dataclass(frozen=True)
class Crossover:
    """Where the forward and reverse FLOP curves meet.

    ``size`` is the swept size (n or m) at the crossing and ``flops`` the
    common cost there, both interpolated on log-log axes between the grid
    points ``between`` (None: the curves meet at a grid point, ``size``).
    ``everywhere`` is True when the two curves coincide at every grid point
    (then ``size`` is the first grid point). ``forward_below`` tells which
    mode is cheaper *before* the crossing (at sizes smaller than ``size``).
    """

    size: float
    flops: float
    forward_below: bool
    everywhere: bool = False
    between: tuple[float, float] | None = None

    def describe(self, axis: str = "n") -> str:
        """One phrase for a legend or a title; an interpolated crossing names the grid points around it.

        >>> Crossover(100.0, 2e5, True).describe("n")
        'crossover at n = 100: forward cheaper below, reverse above'
        >>> Crossover(26.3, 2e3, False, between=(10, 100)).describe("n")
        'crossover at n ≈ 26.3 (interpolated between 10 and 100): reverse cheaper below, forward above'
        """
        if self.everywhere:
            return "forward and reverse cost the same FLOPs at every size"
        below, above = ("forward", "reverse") if self.forward_below else ("reverse", "forward")
        at = f"= {self.size:.3g}" if self.between is None else (
            f"≈ {self.size:.3g} (interpolated between {self.between[0]:g} and {self.between[1]:g})")
        return f"crossover at {axis} {at}: {below} cheaper below, {above} above"


def crossover(sizes: Sequence[float], forward: Sequence[float],
              reverse: Sequence[float]) -> Crossover | None:
    """The first point where the forward and reverse cost curves cross, or None.

    The curves are compared on log-log axes: between two grid points where the
    sign of log(forward) - log(reverse) changes, the crossing is interpolated
    linearly in (log size, log cost). A grid point where both are equal is
    itself the crossing when one mode is cheaper before it and the other after.
    None means one mode is cheaper, or as cheap, over the whole grid.

    >>> c = crossover([10, 100, 1000], [20, 200, 2000], [100, 100, 100])
    >>> round(c.size), round(c.flops), c.forward_below
    (50, 100, True)
    >>> crossover([10, 100], [1, 2], [5, 6]) is None
    True
    >>> crossover([10, 100, 1000], [5, 50, 501], [5, 50, 500]) is None  # equal, then reverse cheaper
    True
    """
    if len(sizes) != len(forward) or len(sizes) != len(reverse):
        raise ValueError("sizes, forward and reverse must have the same length")
    points = [(float(s), float(f), float(r)) for s, f, r in zip(sizes, forward, reverse)
              if s > 0 and f > 0 and r > 0]
    if not points:
        return None
    gaps = [math.log(f) - math.log(r) for _, f, r in points]
    if all(g == 0 for g in gaps):
        return Crossover(points[0][0], points[0][1], True, everywhere=True)
    for i, gap in enumerate(gaps):
        if gap == 0:
            earlier = next((g for g in reversed(gaps[:i]) if g != 0), None)
            later = next((g for g in gaps[i + 1:] if g != 0), None)
            if earlier is None or later is None or (earlier > 0) == (later > 0):
                continue  # the curves touch here without crossing (or meet the grid's edge equal)
            return Crossover(points[i][0], points[i][1], earlier < 0)
        if i + 1 < len(gaps) and gaps[i + 1] != 0 and (gap > 0) != (gaps[i + 1] > 0):
            (s0, f0, _), (s1, f1, _) = points[i], points[i + 1]
            t = gap / (gap - gaps[i + 1])
            size = math.exp(math.log(s0) + t * (math.log(s1) - math.log(s0)))
            flops = math.exp(math.log(f0) + t * (math.log(f1) - math.log(f0)))
            return Crossover(size, flops, gap < 0, between=(s0, s1))
    return None


@dataclass
class SweepPoint:
    """Exact FLOPs and measured seconds of both modes at one (n, m)."""

    n: int
    m: int
    cost: dict[str, dict[str, Cost]]         # mode -> phase -> Cost: predicted, counted for SPARSE
    seconds: dict[str, float]                # mode -> median wall time
    peak_bytes: dict[str, int]               # mode -> traced peak of one run
    tape_bytes: int
    summary: str = ""                        # the problem at this size

    def flops(self, mode: str) -> float:
        """Total FLOPs of `mode` (transcendentals weighted 1).

        >>> p = sweep("seed", n=[10], timed=False).points[0]
        >>> p.flops("reverse") < p.flops("forward")
        True
        """
        return sum(self.cost[mode].values(), Cost()).total()

    def to_dict(self) -> dict:
        """JSON-ready: sizes, total FLOPs and per-phase costs per mode, seconds, bytes.

        >>> sorted(sweep("seed", n=[10], timed=False).points[0].to_dict()["flops"])
        ['forward', 'reverse']
        """
        return {
            "n": self.n, "m": self.m, "summary": self.summary,
            "flops": {mode: self.flops(mode) for mode in self.cost},
            "cost": {mode: {p: c.to_dict() for p, c in phases.items()} for mode, phases in self.cost.items()},
            "seconds": dict(self.seconds), "peak_bytes": dict(self.peak_bytes), "tape_bytes": self.tape_bytes,
        }


@dataclass
class SweepSeries:
    """Points that vary along one axis; the other size is fixed, or follows the swept one (fixed None)."""

    axis: str                 # "n" or "m": the size that varies
    fixed: int | None         # the value of the other size; None when it changes with `axis`
    points: list[SweepPoint]

    @property
    def sizes(self) -> list[int]:
        """The swept size at every point, in order.

        >>> sweep("curve", m=[8, 4], timed=False).series()[0].sizes
        [4, 8]
        """
        return [getattr(p, self.axis) for p in self.points]

    def flops(self, mode: str) -> list[float]:
        """Total FLOPs of `mode` at every point (NaN where it was not measured: SPARSE, at some).

        >>> small, large = sweep("curve", m=[4, 8], timed=False).series()[0].flops("forward")
        >>> 0 < small < large
        True
        """
        return [p.flops(mode) if mode in p.cost else math.nan for p in self.points]

    def has(self, mode: str) -> bool:
        """Whether a point measured `mode` (SPARSE is measured where its seeds are fewer).

        >>> sweep("bratu", n=[10, 20], timed=False).series()[0].has("sparse")
        True
        """
        return any(mode in p.cost for p in self.points)

    def seconds(self, mode: str) -> list[float]:
        """Measured seconds of `mode` at every point (0 for an untimed sweep, NaN where it was not measured).

        >>> sweep("curve", m=[4, 8], timed=False).series()[0].seconds("reverse")
        [0.0, 0.0]
        """
        return [p.seconds.get(mode, math.nan) for p in self.points]

    @property
    def other(self) -> str:
        """The size that is not swept: "m" when sweeping n, else "n"."""
        return "m" if self.axis == "n" else "n"

    def span(self) -> str:
        """The sizes swept, in words: "n in [10, 1,000]", or "n = 22" for one size.

        >>> sweep("seed", n=[5, 1000], timed=False).series()[0].span()
        'n in [5, 1,000]'
        """
        low, high = min(self.sizes), max(self.sizes)
        return f"{self.axis} = {low:,}" if low == high else f"{self.axis} in [{low:,}, {high:,}]"

    def relation(self) -> str:
        """The other size in words: "m = 30", "m = n", "m = n - 2" or "m varies with n".

        >>> sweep("bratu", n=[5, 9], timed=False).series()[0].relation()
        'm = n - 2'
        """
        if self.fixed is not None:
            return f"{self.other} = {self.fixed:,}"
        gaps = {getattr(p, self.other) - getattr(p, self.axis) for p in self.points}
        if len(gaps) == 1:
            gap = gaps.pop()
            sign = "+" if gap > 0 else "-"
            return f"{self.other} = {self.axis}" + (f" {sign} {abs(gap)}" if gap else "")
        return f"{self.other} varies with {self.axis}"

    def crossover(self) -> Crossover | None:
        """Where forward and reverse FLOPs cross along this series.

        >>> c = sweep("wide_to_tall", n=[5, 20, 80], m=[20], timed=False).series()[0].crossover()
        >>> round(c.size), c.forward_below
        (20, True)
        """
        return crossover(self.sizes, self.flops("forward"), self.flops("reverse"))

    def cheaper(self, short: bool = False) -> str:
        """Where the FLOP curves do not cross: "forward is cheaper throughout", or with equal points
        "reverse is cheaper elsewhere, and the two cost the same at n = 10, 100" (`short`, for a legend:
        "reverse cheaper, equal at n = 10, 100").

        >>> sweep("seed", n=[5, 10], timed=False).series()[0].cheaper()
        'reverse is cheaper throughout'
        """
        pairs = list(zip(self.sizes, self.flops("forward"), self.flops("reverse")))
        cheaper = "forward" if any(f < r for _, f, r in pairs) else "reverse"
        ties = ", ".join(f"{size:,}" for size, f, r in pairs if f == r)
        if not ties:
            return f"{cheaper} is cheaper throughout"
        if short:
            return f"{cheaper} cheaper, equal at {self.axis} = {ties}"
        return f"{cheaper} is cheaper elsewhere, and the two cost the same at {self.axis} = {ties}"

    def time_crossover(self) -> Crossover | None:
        """Where the measured forward and reverse times cross along this series (None if they do not).

        >>> sweep("seed", n=[5, 10], timed=False).series()[0].time_crossover() is None   # untimed: all 0
        True
        """
        return crossover(self.sizes, self.seconds("forward"), self.seconds("reverse"))


@dataclass
class SweepResult:
    """Every grid point of a sweep of one problem, grouped into series along ``axis``."""

    problem: str
    points: list[SweepPoint]
    summary: str = ""
    grid: dict = field(default_factory=dict)

    @property
    def axis(self) -> str:
        """The swept size: "n" when n varies (also for a single point), else "m".

        >>> sweep("curve", m=[4, 8], timed=False).axis
        'm'
        """
        if len({p.n for p in self.points}) > 1 or len({p.m for p in self.points}) <= 1:
            return "n"
        return "m"

    def series(self) -> list[SweepSeries]:
        """One series per value of the other size, points sorted along ``axis``.

        >>> [s.relation() for s in sweep("wide_to_tall", n=[5, 9], m=[3, 6], timed=False).series()]
        ['m = 3', 'm = 6']
        """
        axis = self.axis
        other = "m" if axis == "n" else "n"
        groups: dict[int, list[SweepPoint]] = {}
        for p in self.points:
            groups.setdefault(getattr(p, other), []).append(p)
        if len(self.points) > 1 and all(len(pts) == 1 for pts in groups.values()):
            # the other size follows the swept one (a square layer: m = n): one series
            return [SweepSeries(axis, None, sorted(self.points, key=lambda p: getattr(p, axis)))]
        return [SweepSeries(axis, fixed, sorted(pts, key=lambda p: getattr(p, axis)))
                for fixed, pts in sorted(groups.items())]

    def crossovers(self) -> list[Crossover | None]:
        """The FLOP crossover of every series (None where there is none in the grid).

        >>> sweep("seed", n=[5, 10], timed=False).crossovers()
        [None]
        """
        return [s.crossover() for s in self.series()]

    def rows(self) -> list[dict]:
        """One dict per grid point: sizes, FLOPs and milliseconds of both modes (and of compressed seeds,
        where measured), and the cheapest of them ("tie" where two are).

        >>> [r["cheaper"] for r in sweep("wide_to_tall", n=[5, 20, 80], m=[20], timed=False).rows()]
        ['forward', 'tie', 'reverse']
        """
        sparse = any(SPARSE in p.cost for p in self.points)  # a point where it was not measured shows None
        out = []
        for p in self.points:
            fwd, rev = p.flops("forward"), p.flops("reverse")
            row = {"n": p.n, "m": p.m, "forward FLOPs": fwd, "reverse FLOPs": rev, "fwd/rev": fwd / max(rev, 1.0),
                   "forward ms": p.seconds["forward"] * 1e3, "reverse ms": p.seconds["reverse"] * 1e3}
            measured = SPARSE in p.cost
            if sparse:
                row.update({"sparse FLOPs": p.flops(SPARSE) if measured else None,
                            "sparse ms": p.seconds[SPARSE] * 1e3 if measured else None})
            costs = {"forward": fwd, "reverse": rev, **({SPARSE: p.flops(SPARSE)} if measured else {})}
            cheapest = [mode for mode, cost in costs.items() if cost == min(costs.values())]
            row["cheaper"] = cheapest[0] if len(cheapest) == 1 else "tie"
            out.append(row)
        return out

    def describe_crossovers(self) -> list[str]:
        """One line per series: the crossover, or which mode is cheaper over the whole grid.

        >>> sweep("dense", n=[4, 8], timed=False).describe_crossovers()
        ['m = n: forward and reverse cost the same FLOPs at every size']
        """
        lines = []
        for s in self.series():
            where = s.relation()
            c = s.crossover()
            if c is not None:
                lines.append(f"{where}: {c.describe(s.axis)}")
                continue
            lines.append(f"{where}: no crossover for {s.span()}: {s.cheaper()}")
        return lines

    def rich_table(self):
        """The grid as a `rich.table.Table` (the CLI prints it), crossovers in the caption.

        >>> sweep("seed", n=[5], timed=False).rich_table().row_count
        1
        """
        return rich_rows(f"sweep of {self.problem}: exact FLOPs (transcendentals weighted 1) and measured time "
                         "per mode",
                         "\n".join(self.describe_crossovers()), self.rows(), text_column="cheaper")

    def table(self) -> str:
        """Plain-text table of the grid and the crossovers.

        >>> print(sweep("curve", m=[5], repeat=1).table())   # doctest: +ELLIPSIS
        sweep of curve: ...
        ...
        """
        return plain_text(self.rich_table(), width=160)

    def to_dict(self) -> dict:
        """JSON-ready: the problem, the grid, every point and every series with its crossovers.

        >>> d = sweep("curve", m=[4, 8], timed=False).to_dict()
        >>> d["axis"], len(d["points"]), d["series"][0]["relation"]
        ('m', 2, 'n = 4')
        """
        series = []
        for s in self.series():
            c = s.crossover()
            t = s.time_crossover()
            series.append({
                "axis": s.axis, "fixed": None if s.fixed is None else {s.other: s.fixed}, "relation": s.relation(),
                "sizes": s.sizes,
                "crossover": None if c is None else {"size": c.size, "flops": c.flops,
                                                     "forward_below": c.forward_below, "everywhere": c.everywhere},
                "time_crossover": None if t is None else {"size": t.size, "seconds": t.flops,
                                                          "forward_below": t.forward_below},
            })
        return {"problem": self.problem, "summary": self.summary, "axis": self.axis, "grid": self.grid,
                "points": [p.to_dict() for p in self.points], "series": series,
                "crossovers": self.describe_crossovers()}


def sizes_taken(name: str) -> tuple[str, ...]:
    """Which of "n" and "m" the built-in problem `name` lets you choose.

    >>> sizes_taken("seed"), sizes_taken("curve"), sizes_taken("wide_to_tall")
    (('n',), ('m',), ('n', 'm'))
    """
    return tuple(param for param in ("n", "m") if accepted(name, param, [50]))


def default_grid(name: str) -> dict[str, list[int] | None]:
    """The grid :func:`sweep` uses when no sizes are given: the decades the problem takes along its size.

    >>> default_grid("seed"), default_grid("mlp_loss")["n"]
    ({'n': [10, 30, 100, 300, 1000], 'm': None}, [30, 100, 300, 1000])
    >>> default_grid("curve")
    {'n': None, 'm': [10, 30, 100, 300, 1000]}
    """
    param = "n" if "n" in sizes_taken(name) else "m"
    return {"n": None, "m": None, param: accepted(name, param, [10, 30, 100, 300, 1000])}


def accepted(name: str, param: str, values: Sequence[int], other: dict | None = None) -> list[int]:
    """The `values` of `param` the built-in problem `name` takes (mlp_loss needs n >= 22), at the `other`
    sizes."""
    kept = []
    for value in values:
        try:
            _problems.get(name, **{param: value}, **(other or {}))
        except ValueError:
            continue
        kept.append(value)
    return kept


def _grid_problems(name, ns, ms, seed):
    """Build every problem of the grid first, so a bad size fails before any work; sizes a problem builds
    alike (mlp_loss's n = 30 and 40 are both 22) once."""
    built = {}
    for n in ns or [None]:
        for m in ms or [None]:
            p = _problems.get(name, n=n, m=m, seed=seed)
            built.setdefault((p.n, p.m), p)
    return list(built.values())


def sweep(problem: str = "seed", n: Sequence[int] | None = None, m: Sequence[int] | None = None,
          repeat: int = 3, seed: int = 0, timed: bool = True,
          progress: Callable[[int, int, str], None] | None = None) -> SweepResult:
    """Exact FLOPs and measured seconds of forward and reverse mode over a grid of sizes.

    `problem` is a built-in problem name; `n` and `m` are lists of sizes (None:
    the problem's default, or :func:`default_grid` when both are None). Every
    combination is built, so a size the problem does not take raises the
    problem's ValueError before any measurement. FLOPs come from
    :func:`jacobian_lab.predict` (forward: vector mode; reverse: batched);
    seconds from :func:`jacobian_lab.measure` (median of `repeat` samples), or 0
    with ``timed=False``. Where compressed seeds are fewer than either
    order's, a point also holds "sparse", `sparse_jacobian`'s counted work.
    `progress(done, total, label)` is called after every point.

    >>> r = sweep("seed", n=[10, 100], repeat=1)
    >>> [p.n for p in r.points], r.axis
    ([10, 100], 'n')
    >>> r.points[1].flops("forward") > r.points[1].flops("reverse")
    True
    >>> print(r.describe_crossovers()[0])
    m = 1: no crossover for n in [10, 100]: reverse is cheaper throughout
    """
    if n is None and m is None:
        grid = default_grid(problem)
        n, m = grid["n"], grid["m"]
    ns = _unique(n)
    ms = _unique(m)
    built = _grid_problems(problem, ns, ms, seed)
    points = []
    for i, p in enumerate(built):
        points.append(_point(p, repeat, timed))
        if progress is not None:
            progress(i + 1, len(built), f"{problem} n={p.n} m={p.m}")
    ran = {size: _unique([getattr(p, size) for p in built]) if asked else None for size, asked in (("n", ns), ("m", ms))}
    return SweepResult(problem, points, summary=_problems.in_general(problem), grid=ran)  # mlp_loss's n=30 is 22


def _unique(values):
    if values is None:
        return None
    out = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _point(p, repeat: int, timed: bool) -> SweepPoint:
    pred = predict(p.f, p.x)
    cost, seconds, peaks = {mode: pred.cost(mode) for mode in MODES}, {}, {}
    for mode in MODES:
        if timed:
            mm = measure(p.f, p.x, mode=mode, repeat=repeat, prediction=pred)
            seconds[mode], peaks[mode] = mm.seconds, mm.peak_bytes
        else:
            seconds[mode], peaks[mode] = 0.0, 0
    if fewer_seeds(sparsity(p.f, p.x)) is not None:  # compressed seeds are fewer: measure them
        mm = measure(p.f, p.x, mode="sparse", repeat=repeat if timed else 1)  # untimed: for its counts
        cost[SPARSE], seconds[SPARSE], peaks[SPARSE] = mm.cost, mm.seconds if timed else 0.0, mm.peak_bytes
    return SweepPoint(pred.n, pred.m, cost, seconds, peaks, pred.tape_bytes, p.summary)
