"""What the machinery itself costs: dispatch per primitive, counting, scaling with n.

Four measurements, also run as a section of ``scripts/bench_peers.py``:

* **dispatch overhead per primitive** -- a chain of cheap operations on a
  10-element array (``y = sin(y) * 0.5 + y``, three primitives per link) run
  as plain NumPy, as one forward pass (JVP, one tangent) and as one reverse
  pass (record the tape, then one sweep). Overhead = (traced - plain NumPy) /
  primitives. It includes the derivative arithmetic itself; the same chain
  written by hand as NumPy dual numbers / adjoints is reported alongside, as
  the floor no interpreter can beat.
* **counting cost** -- each workload's Jacobian (forward, reverse, and the
  compiled ``jl.jit(jl.jacobian(f))``) with ``counting()`` on and off,
  interleaved, as a fraction of the uncounted wall time.
* **scaling** -- wall time and FLOPs of the full Jacobian of ``seed`` against n
  in both modes (``--plot FILE`` draws them on log-log axes): forward needs
  O(n) passes of O(n) work, reverse one sweep.
* **element loops** -- the Jacobian of a stencil written element by element in
  a Python loop (n = 1000), in each mode and compiled: a reverse sweep adds each
  element read and clears each element written in place, so it costs O(k) per
  element, not O(n·k).

    python scripts/bench_overhead.py [--quick] [--json FILE] [--plot FILE]
"""
from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import sys
import time

import numpy as np

import jacobian_lab as jl
from jacobian_lab import problems
from jacobian_lab.accounting import counting

CHAIN_LINKS = 100  # three primitives each: sin, multiply by a constant, add (a fan-out)
PRIMITIVES_PER_LINK = 3


def loops_for(fn, min_seconds: float = 0.02) -> int:
    """Calls per round so that one round takes at least `min_seconds` (after one warm-up call)."""
    fn()  # warm up: first-call costs (imports, caches) are not what we measure
    loops = 1
    while loops < 1 << 14:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - start >= min_seconds:
            break
        loops *= 2
    return loops


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


ALLOCATOR_HELP = ("leave glibc's allocator thresholds as they are (by default they are pinned so that "
                  "freed arrays stay in the process; see keep_freed_memory)")


def allocator(default_malloc: bool) -> str:
    """Pin the allocator unless `default_malloc`; the note to print either way."""
    return "allocator: as the process started" if default_malloc else keep_freed_memory()


def keep_freed_memory() -> str:
    """Pin glibc's allocator so freed arrays stay in the process between calls; returns a note.

    By default glibc serves a large array with a fresh mapping and returns freed
    memory to the OS, adapting its thresholds to what the process freed before.
    A fresh process timing 300x300 Jacobians then page-faults on every
    derivative array (about 2x slower on dense), and times depend on which
    workload ran first. Every library in the run shares the setting.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        pinned = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pinned = 0
    if not pinned:
        return "allocator: left as it is (not glibc)"
    return "allocator: glibc keeps freed memory (mmap threshold 32 MiB, trim threshold 1 GiB)"


def one_round(fn, loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def alternating(first, second, repeat: int = 7, min_seconds: float = 0.02) -> tuple[float, float]:
    """Median seconds per call of `first` and of `second`, timed in alternating rounds of the same
    number of calls, so that drift (frequency scaling, other load) hits both equally."""
    loops = loops_for(first, min_seconds)
    times = ([], [])
    for _ in range(repeat):
        for fn, samples in zip((first, second), times):
            samples.append(one_round(fn, loops))
    return statistics.median(times[0]), statistics.median(times[1])


def timed(fn, repeat: int = 7, min_seconds: float = 0.02) -> float:
    """Median seconds per call over `repeat` rounds of `loops_for(fn)` calls."""
    loops = loops_for(fn, min_seconds)
    return statistics.median(one_round(fn, loops) for _ in range(repeat))


# --- dispatch overhead -------------------------------------------------------------
def chain(x, links=CHAIN_LINKS):
    y = x
    for _ in range(links):
        y = np.sin(y) * 0.5 + y
    return y


def chain_forward_by_hand(x, t, links=CHAIN_LINKS):
    """The chain's JVP written directly in NumPy: what a perfect forward interpreter would run."""
    y = x
    for _ in range(links):
        t = np.cos(y) * t * 0.5 + t
        y = np.sin(y) * 0.5 + y
    return y, t


def chain_reverse_by_hand(x, g, links=CHAIN_LINKS):
    """The chain's VJP written directly in NumPy: keep the residuals, sweep back once."""
    y, residuals = x, []
    for _ in range(links):
        residuals.append(y)
        y = np.sin(y) * 0.5 + y
    for r in reversed(residuals):
        g = g * np.cos(r) * 0.5 + g
    return y, g


def dispatch_overhead(size: int = 10, links: int = CHAIN_LINKS, repeat: int = 7) -> dict:
    """Microseconds per primitive that tracing adds over plain NumPy, forward and reverse."""
    x = np.linspace(-1.0, 1.0, size)
    t, g = np.ones((1, size)), np.ones((1, size))
    def f(v):
        return chain(v, links)

    forward_engine, reverse_engine = jl.engines.get("forward"), jl.engines.get("reverse")

    def reverse():
        _, pullback = reverse_engine.vjp(f, x)
        return pullback(g)

    seconds = {
        "numpy": timed(lambda: f(x), repeat),
        "forward": timed(lambda: forward_engine.jvp(f, x, t), repeat),
        "reverse": timed(reverse, repeat),
        "forward_by_hand": timed(lambda: chain_forward_by_hand(x, t, links), repeat),
        "reverse_by_hand": timed(lambda: chain_reverse_by_hand(x, g, links), repeat),
    }
    count = links * PRIMITIVES_PER_LINK

    def us(seconds):
        return 1e6 * seconds / count

    return {
        "array_size": size, "primitives": count, "seconds": seconds,
        "forward_us": us(seconds["forward"] - seconds["numpy"]),
        "reverse_us": us(seconds["reverse"] - seconds["numpy"]),
        "forward_over_hand_us": us(seconds["forward"] - seconds["forward_by_hand"]),
        "reverse_over_hand_us": us(seconds["reverse"] - seconds["reverse_by_hand"]),
        "targets_us": {"forward": 3.0, "reverse": 5.0},
    }


def format_overhead(o: dict) -> str:
    s = o["seconds"]
    return "\n".join([
        f"dispatch overhead per primitive ({o['primitives']} primitives on {o['array_size']}-element arrays):",
        f"  plain NumPy f(x)            {1e6 * s['numpy'] / o['primitives']:6.2f} us/primitive",
        (f"  forward  (one JVP)          {o['forward_us']:6.2f} us/primitive over NumPy   (target <= "
         f"{o['targets_us']['forward']:g}; {o['forward_over_hand_us']:.2f} over hand-written dual numbers)"),
        (f"  reverse  (record + sweep)   {o['reverse_us']:6.2f} us/primitive over NumPy   (target <= "
         f"{o['targets_us']['reverse']:g}; {o['reverse_over_hand_us']:.2f} over a hand-written adjoint)"),
    ])


# --- counting cost -------------------------------------------------------------------
def _jacobian_call(f, x, mode, batch_size=None):
    if mode == "jit":  # a compiled replay: counting adds the program's known cost
        jitted = jl.jit(jl.jacobian(f, batch_size=batch_size))
        jitted(x)  # compiled before anything is timed
        return lambda: jitted(x)
    return lambda: jl.jacobian(f, x, mode=mode, batch_size=batch_size)


def _counted_call(fn):
    def run():
        with counting():
            return fn()
    return run


def counting_cost(workloads: dict, repeat: int = 7) -> dict:
    """Wall time with counting on over counting off, minus one, per workload and mode.

    The two variants alternate round by round (`alternating`).
    """
    out = {}
    for name, (f, x) in workloads.items():
        for mode in ("forward", "reverse", "jit"):
            plain = _jacobian_call(f, x, mode)
            off_s, on_s = alternating(plain, _counted_call(plain), repeat)
            out[f"{name}/{mode}"] = {"off": off_s, "on": on_s, "fraction": on_s / off_s - 1.0}
    return out


def format_counting(c: dict) -> str:
    lines = ["counting cost (wall time with counting() on vs off; target <= 10 %):"]
    for key, v in c.items():
        lines.append(f"  {key:20s} off {1e3 * v['off']:9.3f} ms   on {1e3 * v['on']:9.3f} ms   "
                     f"{100 * v['fraction']:+6.1f} %")
    worst = max(c.values(), key=lambda v: v["fraction"])
    lines.append(f"  worst: {100 * worst['fraction']:+.1f} %")
    return "\n".join(lines)


# --- scaling -------------------------------------------------------------------------
# (label, mode, batch_size): forward with one seed per pass makes n passes, vector mode
# pushes the n seeds through as few passes as memory allows, reverse sweeps once.
SERIES = (("forward, 1 seed/pass", "forward", 1), ("forward, vector", "forward", None),
          ("reverse", "reverse", None))


def scaling(sizes, repeat: int = 5) -> dict:
    """Wall time, passes and FLOPs of seed's full Jacobian against n, for each series."""
    rows = []
    for n in sizes:
        p = problems.get("seed", n=n)
        prediction = jl.predict(p.f, p.x)
        row = {"n": n}
        for label, mode, batch in SERIES:
            cost = prediction.total(mode, batch)
            row[label] = {
                "seconds": timed(_jacobian_call(p.f, p.x, mode, batch), repeat, min_seconds=0.01),
                "flops": cost.flops, "transcendentals": cost.transcendentals, "total": cost.total(),
                "passes": prediction.schedule(mode, batch)[1],
            }
        rows.append(row)
    return {"problem": "seed", "series": [label for label, _, _ in SERIES], "rows": rows}


def format_scaling(s: dict) -> str:
    head = "".join(f"  {label + ': passes':>28}{'ms':>10}{'FLOPs':>11}" for label in s["series"])
    title = f"scaling on {s['problem']} = sum(sin(exp(x**2))), full Jacobian (FLOPs: transcendentals count 1):"
    lines = [title, f"  {'n':>6}" + head]
    for r in s["rows"]:
        cells = "".join(f"  {r[label]['passes']:>28}{1e3 * r[label]['seconds']:>10.3f}{r[label]['total']:>11.3g}"
                        for label in s["series"])
        lines.append(f"  {r['n']:>6}" + cells)
    return "\n".join(lines)


# --- element loops -----------------------------------------------------------------
LOOP_SIZE = 1000


def stencil_loop(n: int):
    """``r_i = x_{i+1} - 2 x_i + x_{i-1} + exp(x_i)``, R^n -> R^(n-2), written element by element."""
    def f(x):
        r = np.zeros_like(x, shape=(n - 2,))
        for i in range(1, n - 1):
            r[i - 1] = x[i + 1] - 2 * x[i] + x[i - 1] + np.exp(x[i])
        return r
    return f


def element_loops(n: int = LOOP_SIZE, repeat: int = 3) -> dict:
    """Seconds of the stencil loop's full Jacobian in each mode and compiled (`jl.jit` of auto)."""
    f, x = stencil_loop(n), np.linspace(0.0, 1.0, n)
    jitted = jl.jit(jl.jacobian(f))
    calls = {mode: _jacobian_call(f, x, mode) for mode in ("forward", "reverse", "auto")}
    calls["jit(auto)"] = lambda: jitted(x)
    return {"n": n, "seconds": {label: timed(call, repeat, min_seconds=0.0) for label, call in calls.items()},
            "compiled order": jitted.program(x).mode}


def format_loops(loops: dict) -> str:
    n, seconds = loops["n"], loops["seconds"]
    lines = [f"a stencil written element by element in a Python loop (n = {n} -> {n - 2}), full Jacobian:"]
    for label, value in seconds.items():
        lines.append(f"  {label:<10} {1e3 * value:10.2f} ms   {value / seconds['forward']:7.3f}x forward")
    lines.append(f"  (jit compiled the {loops['compiled order']} order)")
    return "\n".join(lines)


def plot_scaling(s: dict, path: str) -> None:
    """Two log-log panels, wall time and FLOPs against n, one line per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.array([r["n"] for r in s["rows"]], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    styles = dict(zip(s["series"], (("C0", "o", "--"), ("C0", "^", "-"), ("C3", "s", "-"))))
    panels = ((axes[0], "seconds", "wall time (s)", "wall time of the full Jacobian"),
              (axes[1], "total", "FLOPs (transcendentals count 1)", "counted FLOPs of the full Jacobian"))
    for ax, key, ylabel, title in panels:
        for label in s["series"]:
            color, marker, line = styles[label]
            values = [r[label][key] for r in s["rows"]]
            ax.loglog(n, values, linestyle=line, marker=marker, color=color, label=label)
        # Slope guides just below the largest n: n² under forward with n passes, n under reverse.
        for slope, label, text in ((2, s["series"][0], "∝ n²"), (1, s["series"][-1], "∝ n")):
            guide = 0.4 * s["rows"][-1][label][key] * (n / n[-1]) ** slope
            ax.loglog(n, guide, ":", color="grey", linewidth=1)
            ax.annotate(text, (n[-1], guide[-1]), color="grey", textcoords="offset points", xytext=(5, -3))
        ax.set_xlim(n[0] / 1.5, n[-1] * 2.5)  # room for the guide labels
        ax.set(xlabel="n (inputs; one output)", ylabel=ylabel, title=title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{s['problem']} = sum(sin(exp(x**2))), R^n → R: forward pushes n tangents (n passes, or "
                 "fewer wider ones), reverse one cotangent (one sweep)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


SCALING_SIZES = (10, 30, 100, 300, 1000, 3000)
QUICK_SIZES = (4, 16, 64)


def default_workloads(quick: bool) -> dict:
    sizes = {"seed": 16, "mlp_loss": 44, "curve": None, "dense": 8, "bratu": 12} if quick else \
        {"seed": 1000, "mlp_loss": 2200, "curve": None, "dense": 300, "bratu": 2000}
    out = {}
    for name, n in sizes.items():
        p = problems.get(name, n=n, m=16 if quick and name == "curve" else None)
        out[name] = (p.f, p.x)
    return out


def run(quick: bool = False, plot: str | None = None, workloads: dict | None = None) -> dict:
    """All four sections; `workloads` maps name -> (f, x) for the counting cost."""
    repeat = 2 if quick else 7
    result = {
        "overhead": dispatch_overhead(links=5 if quick else CHAIN_LINKS, repeat=repeat),
        "counting": counting_cost(workloads or default_workloads(quick), repeat=repeat),
        "scaling": scaling(QUICK_SIZES if quick else SCALING_SIZES, repeat=2 if quick else 5),
        "loops": element_loops(60 if quick else LOOP_SIZE, repeat=1 if quick else 3),
    }
    if plot:
        plot_scaling(result["scaling"], plot)
        result["plot"] = plot
    return result


def report(result: dict) -> str:
    return "\n\n".join([format_overhead(result["overhead"]), format_counting(result["counting"]),
                        format_scaling(result["scaling"]), format_loops(result["loops"])])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (a smoke run)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write the scaling figure (PNG)")
    parser.add_argument("--default-malloc", action="store_true", help=ALLOCATOR_HELP)
    args = parser.parse_args(argv)
    print(allocator(args.default_malloc))
    result = run(args.quick, args.plot)
    print(report(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
