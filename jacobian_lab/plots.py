"""Matplotlib figures of what each accumulation order cost.

Every function returns a :class:`matplotlib.figure.Figure` built without
pyplot, so figures need no display, keep no global state and can be made from
several threads; a notebook shows a returned figure as it is. :func:`save`
writes one as PNG, SVG or PDF, chosen by the file's extension.

>>> import numpy as np, jacobian_lab as jl
>>> from jacobian_lab import plots
>>> c = jl.compare(lambda x: np.sum(np.sin(np.exp(x ** 2))), np.ones(50), repeat=1)
>>> fig = plots.phase_bars(c, title="sum(sin(exp(x**2)))")
>>> fig.axes[0].get_yscale()
'log'
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, LogFormatterSciNotation, LogLocator, MaxNLocator, NullFormatter

from .accounting import Cost
from .bracketing import ratio_text
from .compressed import color_count

__all__ = [
    "FORMATS",
    "chain_costs",
    "cheap_gradient",
    "pattern_colors",
    "memory_bars",
    "phase_bars",
    "save",
    "sweep_plot",
    "time_vs_flops",
]

FORMATS = (".png", ".svg", ".pdf")
MODE_COLORS = {"forward": "#1f77b4", "reverse": "#d62728", "auto": "#7f7f7f", "optimal": "#2ca02c", "sparse": "#9467bd"}
PHASE_COLORS = {"primal": "#9e9e9e", "tangent": "#1f77b4", "cotangent": "#d62728"}
PHASE_LABELS = {"primal": "primal (evaluating f)", "tangent": "tangent (JVP rules)",
                "cotangent": "cotangent (VJP rules)"}
MARKERS = "osD^vP*Xh<>"
GRIEWANK_OMEGA = 3.0
_BEST = {"forward": "forward accumulation is optimal", "reverse": "reverse accumulation is optimal",
         "any": "forward and reverse are both optimal", "optimal": "only a mixed bracketing is optimal"}


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", dpi=100)


def _log_grid(ax, axis: str = "y") -> None:
    ax.grid(True, which="major", axis=axis, alpha=0.35)
    ax.grid(True, which="minor", axis=axis, alpha=0.1)


def _human(value: float) -> str:
    """Compact engineering notation: 1.2k, 3.4M, 5G."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _seconds(value: float) -> str:
    """A duration in the unit that reads best: 60 µs, 1.2 ms, 3 s."""
    value = float(f"{value:.3g}")  # rounded first: 0.9995 s is 1 s, not 1e+03 ms
    for scale, unit in ((1.0, "s"), (1e-3, "ms")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-6:.3g} µs"


class _Seconds(LogFormatterSciNotation):
    """Log-axis labels in seconds' units, on the ticks matplotlib labels (minor ones only when the axis
    spans little, where 9×10⁻⁵ beside 8×10⁻⁵ read poorly)."""

    def __call__(self, x, pos=None):
        return _seconds(x) if super().__call__(x, pos) else ""


def _time_axis(ax) -> None:
    """y in seconds on a log scale, labelled in µs, ms or s."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_Seconds())
    ax.yaxis.set_minor_formatter(_Seconds(labelOnlyBase=False))


def _as_items(objects) -> list[tuple[str, object]]:
    """Accept a mapping name -> object, a sequence of objects, or a single object."""
    if isinstance(objects, Mapping):
        return [(str(k), v) for k, v in objects.items()]
    if isinstance(objects, (list, tuple)):
        return [(f"#{i + 1}", v) for i, v in enumerate(objects)]
    return [("", objects)]


def _mode_of(label: str) -> str:
    label = label.split("->")[-1]
    return "forward" if "forward" in label else "reverse" if "reverse" in label else "auto"


# ------------------------------------------------------------------ comparisons


def phase_bars(comparison, title: str | None = None) -> Figure:
    """Counted FLOPs by phase (primal, tangent, cotangent): a group of bars per mode, one bar per phase.

    Transcendentals are weighted 1, as in ``Cost.total()``. The y axis is
    logarithmic, so the phases stand side by side rather than stacked (a
    stack's upper parts would look thin however large), and each group's total
    and passes are printed above it.

    >>> import numpy as np, jacobian_lab as jl
    >>> c = jl.compare(lambda x: np.tanh(x) * 2.0, np.ones(4), modes=["forward", "reverse"], repeat=1)
    >>> fig = phase_bars(c, title="tanh(x) * 2")
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['forward, vector', 'reverse, batched']
    """
    ms = comparison.measurements
    labels = [m.label or m.mode for m in ms]
    fig = _figure(max(6.0, 1.5 * len(ms) + 2.5), 4.6)
    ax = fig.add_subplot()
    x = np.arange(len(ms))
    totals = np.array([m.total.total() for m in ms], dtype=float)
    work = {phase: np.array([m.cost.get(phase, Cost()).total() for m in ms], dtype=float)
            for phase in ("primal", "tangent", "cotangent")}
    work = {phase: values for phase, values in work.items() if values.any()}
    # the axis starts below the smallest bar drawn (a phase's), not the smallest total: a small primal
    # phase beside large derivative phases would fall under the axis and vanish
    positive = np.concatenate([values[values > 0] for values in work.values()] or [totals[totals > 0]])
    floor = 10 ** math.floor(math.log10(positive.min()) - 1) if positive.size else 1.0
    width = 0.8 / max(len(work), 1)
    for i, (phase, values) in enumerate(work.items()):
        ax.bar(x + (i - (len(work) - 1) / 2) * width, values, width=width, color=PHASE_COLORS[phase],
               label=PHASE_LABELS[phase], edgecolor="white", linewidth=0.6)
    tallest = np.max(list(work.values()), axis=0) if work else totals
    for xi, total, top, m in zip(x, totals, tallest, ms):
        ax.annotate(f"total {_human(total)}\n{m.passes:,} pass{'es' if m.passes != 1 else ''}",
                    (xi, max(top, floor)), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                    fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(floor, max(totals.max(), floor) * 30)
    ax.set_xticks(x, labels, rotation=15 if len(ms) > 3 else 0, ha="right" if len(ms) > 3 else "center")
    ax.set_ylabel("FLOPs counted (transcendentals weighted 1)")
    ax.set_xlabel("accumulation order")
    p = comparison.prediction
    what = f" of {title}" if title else ""
    ax.set_title(f"Counted FLOPs by phase{what}\n{p.m}x{p.n} Jacobian (n = {p.n:,} input{'s' * (p.n != 1)}, m = {p.m:,} output{'s' * (p.m != 1)})",
                 fontsize=11)
    if work:  # no phase did any work (f only moves x's values): no bars to name
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    _log_grid(ax)
    return fig


def time_vs_flops(comparisons) -> Figure:
    """Measured wall time against counted FLOPs, one point per mode and problem, log-log.

    `comparisons` is a mapping name -> Comparison (or a list, or one
    Comparison). Dotted lines mark constant throughput (FLOPs per second):
    points far above a line ran slower than the count alone suggests
    (Python overhead per pass dominates small problems).

    >>> import numpy as np, jacobian_lab as jl
    >>> c = jl.compare(lambda x: np.sum(x ** 2), np.ones(20), repeat=1)
    >>> fig = time_vs_flops({"sum of squares": c})
    >>> fig.axes[0].get_xscale(), fig.axes[0].get_yscale()
    ('log', 'log')
    """
    items = _as_items(comparisons)
    fig = _figure(7.5, 5.0)
    ax = fig.add_subplot()
    labels_seen: dict[str, str] = {}
    xs, ys = [], []
    colors = [f"C{i % 10}" for i in range(len(items))]
    for (name, comp), color in zip(items, colors):
        for m in comp.measurements:
            label = m.label or m.mode
            marker = labels_seen.setdefault(label, MARKERS[len(labels_seen) % len(MARKERS)])
            flops, seconds = max(m.total.total(), 1.0), max(m.seconds, 1e-9)
            ax.scatter(flops, seconds, color=color, marker=marker, s=42, edgecolor="black", linewidth=0.4,
                       zorder=3)
            xs.append(flops)
            ys.append(seconds)
    ax.set_xscale("log")
    _time_axis(ax)
    if xs:
        lo, hi = min(xs) / 3, max(xs) * 3
        grid = np.geomspace(lo, hi, 50)
        ylo, yhi = min(ys) / 3, max(ys) * 3
        for rate in (1e6, 1e7, 1e8, 1e9, 1e10):
            t = grid / rate
            if (t.max() > ylo) and (t.min() < yhi):
                ax.plot(grid, t, ":", color="0.6", linewidth=0.9, zorder=1)
                # label where the line leaves the plotted box
                xi = min(hi, yhi * rate) / 1.6
                if xi > lo:
                    ax.text(xi, xi / rate, f"{_human(rate).replace('G', ' G').replace('M', ' M')}FLOP/s", fontsize=7, color="0.45",
                            rotation=0, ha="right", va="bottom")
        ax.set_xlim(lo, hi)
        ax.set_ylim(ylo, yhi)
    ax.set_xlabel("FLOPs counted (transcendentals weighted 1)")
    ax.set_ylabel("wall time per Jacobian (median)")
    ax.set_title("Wall time vs counted FLOPs\n(each point: one accumulation order of one problem)", fontsize=11)
    _log_grid(ax, "both")
    from matplotlib.lines import Line2D

    mode_handles = [Line2D([], [], linestyle="", marker=mk, color="0.5", markeredgecolor="black", label=lb)
                    for lb, mk in labels_seen.items()]
    problem_handles = [Line2D([], [], linestyle="", marker="s", color=c, label=n)
                       for (n, _), c in zip(items, colors) if n]
    leg = ax.legend(handles=mode_handles, title="mode", loc="upper left", fontsize=7, title_fontsize=8)
    if problem_handles:
        ax.add_artist(leg)
        ax.legend(handles=problem_handles, title="problem", loc="lower right", fontsize=7, title_fontsize=8)
    return fig


def memory_bars(comparisons) -> Figure:
    """Peak traced memory of each mode, with the reverse tape's share hatched, per problem (log y).

    Forward mode keeps no tape: its peak is the tangents (k seeds times every
    intermediate). Reverse mode records a tape of residuals once; its peak is
    the tape plus the cotangents of one sweep. Each problem's rows stand side by
    side in the comparison's order, except "auto", which repeats the row of the
    order it takes; one-seed rows are paler, compiled (jit) rows orange and
    compressed (sparse) rows purple.

    >>> import numpy as np, jacobian_lab as jl
    >>> c = jl.compare(lambda x: np.sum(np.exp(x)), np.ones(30), modes=["forward", "reverse"], repeat=1)
    >>> fig = memory_bars({"sum(exp(x))": c})
    >>> fig.axes[0].get_ylabel()
    'memory (KiB)'
    """
    items = _as_items(comparisons)
    rows = [[m for m in comp.measurements if not (m.label or m.mode).startswith("auto")] for _, comp in items]
    biggest = max([m.peak_bytes for row in rows for m in row] + [1])
    unit, scale = ("MiB", 2**20) if biggest >= 2**20 else ("KiB", 2**10)
    most = max([len(row) for row in rows] + [1])
    fig = _figure(min(16.0, max(7.5, 4.5 + 0.3 * len(items) * most)), 5.0)
    ax = fig.add_subplot()
    width = 0.8 / most
    shown: set[str] = set()  # one legend entry per kind of row
    for j, row in enumerate(rows):
        for k, m in enumerate(row):
            x = j - 0.4 + width * (k + 0.5)
            color, alpha, kind = _memory_style(m.label or m.mode)
            ax.bar(x, max(m.peak_bytes, 1) / scale, width=width * 0.92, color=color, alpha=alpha,
                   edgecolor="black", linewidth=0.4, label=None if kind in shown else kind)
            shown.add(kind)
            if m.tape_bytes:
                ax.bar(x, m.tape_bytes / scale, width=width * 0.5, color="white", hatch="////", edgecolor="black",
                       linewidth=0.4, label=None if "tape" in shown else "tape (residuals kept for the sweeps)")
                shown.add("tape")
    values = [v for row in rows for m in row for v in (m.peak_bytes, m.tape_bytes) if v > 0]
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9)  # beside, over no bar
    ax.set_yscale("log")
    if values:
        ax.set_ylim(min(values) / scale / 3, biggest / scale * 12)
    ax.set_xticks(range(len(items)), [name for name, _ in items])
    ax.set_ylabel(f"memory ({unit})")
    ax.set_xlabel("problem")
    ax.set_title("Memory: tangents (forward) vs tape (reverse)\n"
                 "bar = traced peak of one Jacobian; hatched = reverse tape", fontsize=11)
    _log_grid(ax)
    return fig


def _memory_style(label: str) -> tuple[str, float, str]:
    """(color, alpha, legend entry) of a comparison row in `memory_bars`."""
    if label.startswith("jit"):
        return "#ff7f0e", 1.0, "jit (compiled replay)"
    if label.startswith("sparse"):
        return MODE_COLORS["sparse"], 1.0, "sparse (compressed seeds)"
    mode = _mode_of(label)
    if "1 seed" in label:
        return MODE_COLORS[mode], 0.45, f"{mode}, 1 seed per pass"
    return MODE_COLORS[mode], 1.0, f"{mode}, seeds batched"


def cheap_gradient(predictions_by_problem) -> Figure:
    """The cheap-gradient ratios OPS(f + one JVP)/OPS(f) and OPS(f + one VJP)/OPS(f) per problem.

    The horizontal line marks 3, Griewank & Walther's ω for the gradient of a
    function of arithmetic operations: a reference, not a bound here, since a
    transcendental counts once in f while its derivative needs more (the ratio
    of x ** 3 is 4). Baydin et al. (JMLR 2018) quote c < 6, with 2-3 typical in
    practice, and the dotted line marks 6. Transcendentals are weighted 1, like
    every other FLOP.

    >>> import numpy as np, jacobian_lab as jl
    >>> p = jl.predict(lambda x: np.sum(np.sin(np.exp(x ** 2))), np.ones(100))
    >>> fig = cheap_gradient({"seed": p})
    >>> fig.axes[0].get_ylabel()
    'OPS(f + one derivative pass) / OPS(f)'
    """
    items = _as_items(predictions_by_problem)
    fig = _figure(max(6.5, 1.0 * len(items) + 3), 4.6)
    ax = fig.add_subplot()
    x = np.arange(len(items))
    jvp = [p.jvp_ratio() for _, p in items]
    vjp = [p.vjp_ratio() for _, p in items]
    w = 0.36
    b1 = ax.bar(x - w / 2, jvp, w, color=MODE_COLORS["forward"], label="f + one JVP (forward pass)")
    b2 = ax.bar(x + w / 2, vjp, w, color=MODE_COLORS["reverse"], label="f + one VJP (tape + reverse sweep)")
    for bars in (b1, b2):
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.axhline(GRIEWANK_OMEGA, color="black", linewidth=1.2, label="ω = 3: arithmetic (Griewank & Walther)")
    ax.axhline(6, color="black", linewidth=0.9, linestyle=":", label="c < 6 (Baydin et al., JMLR 2018)")
    ax.axhspan(2, 3, color="0.85", zorder=0, label="2-3: typical (Baydin et al.)")
    ax.set_xticks(x, [name for name, _ in items], rotation=15 if len(items) > 4 else 0,
                  ha="right" if len(items) > 4 else "center")
    ax.set_ylim(0, max(7.0, np.nanmax(jvp + vjp + [0.0]) * 1.15))  # NaN: an f without arithmetic
    ax.set_ylabel("OPS(f + one derivative pass) / OPS(f)")
    ax.set_xlabel("problem")
    ax.set_title("Cheap-gradient ratios: one derivative pass costs a few evaluations of f", fontsize=11)
    ax.legend(fontsize=7, loc="upper right", ncols=2, framealpha=0.95)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


# ---------------------------------------------------------------------- sweeps


def sweep_plot(sweep_result) -> Figure:
    """FLOPs (left) and measured seconds (right) of forward and reverse mode against the swept size, log-log.

    Forward mode is solid, reverse dashed, and `sparse_jacobian` dotted where
    it was measured (compressed seeds fewer than either order's); one colour
    per value of the size held fixed. The crossover where the two FLOP curves meet is marked with a
    circle and a vertical line on both panels; when the curves do not cross
    inside the grid, the legend says so. Up to three series are named in each
    panel's legend; more share one legend below the panels, and the title's
    notes say where each crosses.

    >>> from jacobian_lab.sweep import sweep
    >>> fig = sweep_plot(sweep("wide_to_tall", n=[5, 20, 80], m=[20], repeat=1))
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['n (number of inputs)', 'n (number of inputs)']
    """
    series = sweep_result.series()
    axis = sweep_result.axis
    fig = _figure(12.0, 4.8)
    ax_f, ax_t = fig.subplots(1, 2)
    notes, crossings = [], set()  # crossings: the kinds of crossover marked
    many = len(series) > 1
    for k, s in enumerate(series):
        color = _series_color(k, len(series)) if many else None
        tag = f", {s.relation()}" if many else ""
        cf, cr = (color, color) if many else (MODE_COLORS["forward"], MODE_COLORS["reverse"])
        for ax, values in ((ax_f, s.flops), (ax_t, s.seconds)):
            ax.plot(s.sizes, values("forward"), "-o", color=cf, markersize=4, label=f"forward (vector){tag}")
            ax.plot(s.sizes, values("reverse"), "--s", color=cr, markersize=4, label=f"reverse (batched){tag}")
            if s.has("sparse"):
                ax.plot(s.sizes, values("sparse"), ":^", color=color or MODE_COLORS["sparse"], markersize=4,
                        label=f"sparse (compressed seeds){tag}")
        c = s.crossover()
        if c is not None and not c.everywhere:
            for ax in (ax_f, ax_t):
                ax.axvline(c.size, color=color or "0.3", linestyle=":", linewidth=1.1)
            ax_f.plot([c.size], [c.flops], "o", markersize=11, markerfacecolor="none",
                      markeredgecolor=color or "black", markeredgewidth=1.6,
                      label=f"FLOP crossover {axis} ≈ {c.size:.3g}{tag}")
            notes.append((f"FLOP crossover at {axis} ≈ {c.size:.3g}", s.relation()))
            crossings.add("FLOP")
        elif c is not None:
            ax_f.plot([], [], " ", label=f"forward = reverse at every {axis}{tag}")
            notes.append((f"forward and reverse FLOPs equal at every {axis}", s.relation()))
        else:
            ax_f.plot([], [], " ", label=f"no crossover in grid: {s.cheaper(short=True)}{tag}")
            notes.append((f"no FLOP crossover for {s.span()}: {s.cheaper()}", s.relation()))
        t = s.time_crossover()
        if t is not None and not t.everywhere:
            ax_t.plot([t.size], [t.flops], "D", markersize=8, markerfacecolor="none",
                      markeredgecolor=color or "black", label=f"time crossover {axis} ≈ {t.size:.3g}{tag}")
            crossings.add("time")
    label = {"n": "n (number of inputs)", "m": "m (number of outputs)"}[axis]
    for ax, ylabel, what in ((ax_f, "FLOPs per Jacobian (exact; transcendentals weighted 1)", "Exact FLOPs"),
                             (ax_t, "wall time per Jacobian (median)", "Measured time")):
        ax.set_xscale("log")
        if ax is ax_t and not any(t > 0 for s in series for t in s.seconds("forward") + s.seconds("reverse")):
            ax.text(0.5, 0.5, "not timed", transform=ax.transAxes, ha="center", va="center", color="0.4")
        elif ax is ax_t:
            _time_axis(ax)
        else:
            ax.set_yscale("log")
        sizes = sorted({v for s in series for v in s.sizes})
        if 1 < len(sizes) <= 8:  # label the grid itself rather than powers of ten
            ax.set_xticks(sizes, [f"{v:,}" for v in sizes])
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{what} vs {axis}", fontsize=10)
        _log_grid(ax, "both")
        if len(series) <= SERIES_IN_AXES:
            ax.legend(fontsize=7, loc="best", framealpha=0.9)
    if len(series) > SERIES_IN_AXES:
        _shared_legend(fig, series, any(s.has("sparse") for s in series), crossings)
    held = "" if many or not series else f" ({series[0].relation()})"
    fig.suptitle(f"Full Jacobian of {sweep_result.problem}: forward vs reverse accumulation over {axis}{held}\n"
                 + _wrapped("; ".join(_grouped(notes) if many else [text for text, _ in notes]), 150), fontsize=11)
    return fig


#: The most series whose curves a sweep plot names in each panel's legend (three entries or four each);
#: more share one legend below the panels: a line style per order, a colour per series.
SERIES_IN_AXES = 3


def _shared_legend(fig, series, sparse: bool, crossings: set) -> None:
    """One legend under both panels: the orders' line styles, each series' colour, then the marks of the kinds
    of crossover drawn (`crossings`, "FLOP" and "time"); where they are is in the title's notes."""
    from matplotlib.lines import Line2D

    styles = [("forward (vector)", "-o"), ("reverse (batched)", "--s")] + [("sparse (compressed seeds)", ":^")] * sparse
    handles = [Line2D([], [], color="0.2", linestyle=style[:-1], marker=style[-1], markersize=4, label=label)
               for label, style in styles]
    handles += [Line2D([], [], color=_series_color(k, len(series)), linewidth=3, label=s.relation())
                for k, s in enumerate(series)]
    handles += [Line2D([], [], linestyle="", marker=marker, markersize=size, markerfacecolor="none",
                       markeredgecolor="0.2", label=f"{kind} crossover")
                for kind, marker, size in (("FLOP", "o", 8), ("time", "D", 6)) if kind in crossings]
    columns = min(len(handles), 8)
    fig.set_figheight(fig.get_figheight() + 0.25 * math.ceil(len(handles) / columns))
    fig.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize=8, frameon=False)


def _grouped(notes) -> list[str]:
    """Each note once, with the series it holds for: ("reverse is cheaper throughout", "m = 2") and (..., "m = 3")
    make "reverse is cheaper throughout (m = 2, 3)"."""
    series: dict[str, list[str]] = {}
    for text, relation in notes:
        series.setdefault(text, []).append(relation)
    grouped = []
    for text, relations in series.items():
        name = relations[0].partition(" = ")[0]
        if len(relations) > 1 and all(r.startswith(name + " = ") for r in relations):
            relations = [relations[0], *(r.partition(" = ")[2] for r in relations[1:])]
        grouped.append(f"{text} ({', '.join(relations)})")
    return grouped


def _series_color(k: int, count: int):
    """The colour of series k of `count`: the ten of the default cycle, or twenty paired shades past ten."""
    from matplotlib import colormaps

    return f"C{k}" if count <= 10 else colormaps["tab20"](k % 20)


def _wrapped(text: str, width: int) -> str:
    """`text` wrapped to lines of `width` characters, never inside brackets or parentheses ("n in [10, 100]",
    "(m = 3)" stay on one line)."""
    depth, kept = 0, []
    for char in text:
        depth += (char in "[(") - (char in "])")
        kept.append("\u00a0" if char == " " and depth > 0 else char)  # textwrap breaks at spaces, not at these
    return "\n".join(textwrap.wrap("".join(kept), width)).replace("\u00a0", " ")


# ----------------------------------------------------------------------- chains


def chain_costs(plan) -> Figure:
    """Bars of the FLOPs of forward, reverse and optimal accumulation of a Jacobian chain (log y).

    `plan` is a :class:`jacobian_lab.chain.ChainPlan`. Each bar is labelled
    with its bracketing and cost; the title gives the widths and the speed-up
    of the optimal bracketing over the better pure mode.

    >>> from jacobian_lab.chain import plan
    >>> fig = chain_costs(plan([100, 1, 100, 100, 100]))
    >>> fig.axes[0].get_yscale()
    'log'
    """
    info = plan.to_dict()
    names = ["forward", "reverse", "optimal"]
    values = [plan.forward_flops, plan.reverse_flops, plan.optimal_flops]
    brackets = [info["forward_bracketing"], info["reverse_bracketing"], plan.bracketing]
    fig = _figure(7.0, 4.6)
    ax = fig.add_subplot()
    products = max(values) > 0  # a single stage is J itself: no product, 0 FLOPs in every order
    # as floats: exact counts of wide chains pass int64, which matplotlib's arrays cannot hold
    shown = [float(max(v, 1)) for v in values] if products else values
    bars = ax.bar(names, shown, color=[MODE_COLORS[n] for n in names], width=0.6)
    for bar, v, text in zip(bars, values, brackets):
        if len(text) > 28:
            text = text[:26] + "…"
        ax.annotate(f"{v:,} FLOPs\n{text}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=8)
    if products:
        ax.set_yscale("log")
        ax.set_ylim(min(shown) / 5, max(shown) * 40)
        ax.yaxis.set_minor_locator(LogLocator(subs="auto"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(0, 1)
    ax.set_ylabel("FLOPs to form J = Jq ... J1 (2abc per product)")
    ax.set_xlabel("accumulation (bracketing of the matrix chain)")
    widths = " → ".join(str(w) for w in plan.widths)
    if len(widths) > 60:
        widths = widths[:58] + "…"
    saving = f"{ratio_text(plan.speedup)}x cheaper than" if plan.speedup > 1 else "as cheap as"
    saving += " the better pure mode"
    ax.set_title(f"Jacobian chain, widths {widths}\n"
                 + (f"optimal bracketing: {saving}\n({_BEST[plan.best_mode]})" if products else
                    "one stage: J is its local Jacobian, no product to form"),
                 fontsize=10)
    _log_grid(ax)
    return fig


# ------------------------------------------------------------------------ saving


def pattern_colors(pattern, colors, title: str | None = None) -> Figure:
    """The sparsity pattern with each entry drawn in its column's color (`coloring`, forward mode).

    Columns of one color share no row, so each row shows every color at most
    once: one seed per color gives every entry. Ten hues, repeating.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab import plots
    >>> P = jl.sparsity(lambda x: x[1:] * x[:-1], np.ones(6))
    >>> fig = plots.pattern_colors(P, jl.coloring(P))
    >>> len(fig.axes[0].images)
    1
    """
    rows, cols = pattern.nonzero()
    m, n = pattern.shape
    fig = _figure(6.0, 6.0 * max(min(m / max(n, 1), 2.0), 0.3) + 0.8)
    ax = fig.add_subplot()
    count = color_count(colors)
    if m * n <= _IMAGE_CELLS:  # a cell per entry: a single row or column stays visible
        grid = np.full((m, n), np.nan)
        grid[rows, cols] = colors[cols] % 10
        ax.imshow(grid, cmap="tab10", vmin=0, vmax=9, aspect="auto", interpolation="nearest")
    else:
        size = max(0.5, min(40.0, 4000.0 / max(m, n, 1)))
        ax.scatter(cols, rows, c=colors[cols] % 10, cmap="tab10", vmin=0, vmax=9, marker="s", s=size, linewidths=0)
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(m - 0.5, -0.5)
    for axis, length in ((ax.xaxis, n), (ax.yaxis, m)):  # whole rows and columns: each of a few, or some
        axis.set_major_locator(FixedLocator(range(length)) if length <= 10 else MaxNLocator(integer=True))
    ax.set_xlabel("input j (column)")
    ax.set_ylabel("output i (row)")
    hues = ", ten hues repeating" if count > 10 else ""
    ax.set_title(f"{title + ': ' if title else ''}{m:,}x{n:,} pattern, {len(rows):,} entries\n"
                 f"{count:,} column colors{hues}", fontsize=10)
    return fig


# Patterns of up to this many cells are drawn as an image; larger ones as a scatter of their entries.
_IMAGE_CELLS = 4_000_000


def save(fig: Figure, path, dpi: int = 110) -> Path:
    """Write `fig` to `path` as PNG, SVG or PDF (chosen by the extension) and return the path.

    Parent folders are created. Raises ValueError for another extension.

    >>> import tempfile, pathlib
    >>> from jacobian_lab.chain import plan
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = save(chain_costs(plan([3, 4, 5])), pathlib.Path(d) / "chain.svg")
    ...     out.read_text()[:5]
    '<?xml'
    """
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"cannot save a figure as {path.name!r}: use a file ending in "
                         f"{', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format=path.suffix.lower()[1:])
    return path
