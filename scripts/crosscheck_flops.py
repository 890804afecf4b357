"""Cross-check our primal FLOP counts against XLA's and PyTorch's own counters.

For every built-in problem this prints our ``count_flops`` (flops and
transcendentals of one evaluation of f) next to:

* **XLA** -- ``jax.jit(f).lower(x).compile().cost_analysis()`` of the same
  function written in ``jax.numpy`` (float64, x64 enabled): its "flops" and
  "transcendentals";
* **PyTorch** -- ``torch.utils.flop_counter.FlopCounterMode`` around the same
  function written in ``torch``. It counts matmul-like operations only, so it
  is compared with the FLOPs of our ``matmul`` primitive alone.

and a "gap" column naming each difference, followed by one sentence per gap.
Each gap is predicted from the trace of f and XLA's optimised HLO, and the
prediction is checked against the counts: whatever it does not account for is
reported as unexplained. The differences the built-in problems show:

* XLA's algebraic simplifier deletes identity operations (``x * 1``,
  ``x + 0``, ``x - 0``, ``x / 1``) that NumPy really executes and we count;
* XLA:CPU splits a long reduction into a tree of 32-wide ``reduce-window``
  steps and pads its input to whole windows; it counts the additions of the
  padding zeros too (its HLO before that rewrite has our L - 1);
* FlopCounterMode has no formula for ``aten.mv`` (matrix @ vector) or
  ``aten.dot`` (vector @ vector), so it counts those products as 0.

Elsewhere the conventions agree: an elementwise operation is N flops,
``x ** 2`` one multiply, exp/sin/tanh one transcendental each, a matmul
2·m·k·n, a sum of L elements L - 1 adds and a mean L - 1 adds plus one divide.

JAX and PyTorch are optional and never needed by the package or its tests;
without them the script prints our counts and says which peer it skipped.
Install them in a separate virtual environment::

    python3 -m venv /tmp/xcheck
    /tmp/xcheck/bin/pip install -e . jax jaxlib torch

Run (``--small`` uses tiny sizes; ``--json FILE`` also writes the results)::

    /tmp/xcheck/bin/python scripts/crosscheck_flops.py [--small] [--json FILE] [--problems a,b]

JAX and PyTorch run each problem's *twin* from ``twins.py`` beside this file:
its ``f`` written over ``jax.numpy`` / ``torch``, on the arrays read from the
problem's own closure. Before any peer runs, the twin is evaluated with NumPy
and must give ``f``'s value and exact ``count_flops``. The exit status is 1
when a peer fails or when a twin no longer computes the same thing as its
problem's NumPy ``f``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import jacobian_lab as jl
from jacobian_lab.accounting import PRIMAL, counting
from jacobian_lab.harness import prepare
from jacobian_lab.engines.evaluate import EvalTrace
from jacobian_lab.tracing import Tracer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # twins.py, also when this file is imported
from twins import TWINS, mismatch, twin, twin_constants

SMALL_SIZES = {
    "seed": {"n": 16},
    "mlp_loss": {"n": 66},          # h = 3 hidden units
    "curve": {"m": 16},
    "dense": {"n": 8},
    "bratu": {"n": 12},
    "wide_to_tall": {"n": 12, "m": 12},
    "tall_to_wide": {"n": 4, "m": 3},
}


# --- our counts, per primitive ------------------------------------------------------
# count_flops runs f under `engines.evaluate.EvalTrace`. A new interpreter is a Trace subclass
# (docs/architecture.md, "Engines"), so TallyTrace is EvalTrace with each primitive run
# under its own `counting()` block: the package evaluates and prices every primitive
# exactly as count_flops does, and the tally only files the result under the primitive's
# name. Nothing in the package is patched, and the tally is checked against count_flops.

@dataclass
class Call:
    """One primitive that ran in f: its name, cost and operand shapes."""

    name: str
    flops: int
    transcendentals: int
    shapes: tuple
    identity: str | None = None   # "x * 1", "x + 0", ... when an operand leaves the other unchanged


_IDENTITY = {  # primitive -> (operand positions that may be the constant, neutral value, label)
    "multiply": ((0, 1), 1.0, "x * 1"),
    "add": ((0, 1), 0.0, "x + 0"),
    "subtract": ((1,), 0.0, "x - 0"),
    "divide": ((1,), 1.0, "x / 1"),
}


def _identity(name, args, out) -> str | None:
    """The label of an elementwise identity (a constant operand equal to the neutral value)."""
    if name not in _IDENTITY or len(args) != 2:
        return None
    positions, neutral, label = _IDENTITY[name]
    for i in positions:
        constant, other = args[i], args[1 - i]
        if isinstance(constant, Tracer) or np.shape(out) != np.shape(other):
            continue
        value = np.asarray(constant)
        if value.dtype.kind in "biuf" and np.all(value == neutral):
            return label
    return None


class TallyTrace(EvalTrace):
    """EvalTrace that also records every primitive's own cost and operand shapes."""

    def __init__(self):
        super().__init__()
        self.calls: list[Call] = []

    def process(self, prim, args, params):
        with counting() as counter:
            out = super().process(prim, args, params)
        cost = counter.cost(PRIMAL)
        primals = [a.primal if isinstance(a, Tracer) else a for a in args]
        self.calls.append(Call(prim.name, cost.flops, cost.transcendentals,
                               tuple(np.shape(a) for a in primals), _identity(prim.name, args, out)))
        return out


def tally(f: Callable, x) -> list[Call]:
    g, x0 = prepare(f, x)
    trace = TallyTrace()
    g(Tracer(trace, x0))
    return trace.calls


# --- peers ------------------------------------------------------------------------
def installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _cost_dict(analysis) -> dict:
    """cost_analysis() gives a dict, a list of one dict, or None depending on the version."""
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    return dict(analysis or {})


def xla_counts(fn: Callable, x: np.ndarray) -> dict:
    import jax
    import jax.numpy as jnp

    lowered = jax.jit(fn).lower(jnp.asarray(x))
    compiled = lowered.compile()
    after = _cost_dict(compiled.cost_analysis())
    try:  # the same analysis of the HLO before XLA's CPU backend passes, for the gap explanation
        before = int(_cost_dict(lowered.cost_analysis()).get("flops", 0))
    except (AttributeError, NotImplementedError):  # not offered by every JAX version
        before = None
    return {
        "flops": int(after.get("flops", 0)), "transcendentals": int(after.get("transcendentals", 0)),
        "hlo_flops": before,
        "reduce_padding": reduce_window_padding(compiled.as_text()),
    }


_DECLARATION = re.compile(r"%([\w.\-]+) = \w+\[([\d,]*)\]")
_REDUCE_WINDOW = re.compile(r"reduce-window\(%([\w.\-]+)[^\n]*?window=\{([^}]*)\}")


def reduce_window_padding(hlo: str) -> list[dict]:
    """Every reduce-window of optimised HLO text: its operand size and padding elements."""
    shapes = {name: tuple(int(d) for d in dims.split(",") if d) for name, dims in _DECLARATION.findall(hlo)}
    found = []
    for operand, window in _REDUCE_WINDOW.findall(hlo):
        dims = shapes.get(operand)
        fields = dict(item.split("=", 1) for item in window.split())
        if dims is None:
            continue
        pads = [tuple(int(v) for v in p.split("_")) for p in fields["pad"].split("x")] if "pad" in fields \
            else [(0, 0)] * len(dims)
        padded = math.prod(d + lo + hi for d, (lo, hi) in zip(dims, pads))
        found.append({"elements": math.prod(dims), "window": fields.get("size"), "padding": padded - math.prod(dims)})
    return found


def torch_counts(fn: Callable, x: np.ndarray) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn(torch.from_numpy(x))
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {"matmul_flops": int(counter.get_total_flops()), "by_op": by_op}


# --- gaps ------------------------------------------------------------------------
SAME = {  # conventions XLA shares with ours, by our primitive name
    "square": "x**2 one multiply", "sum": "sum of L = L-1 adds", "mean": "mean of L = L-1 adds + 1 divide",
    "matmul": "matmul 2mkn", "add": "elementwise N", "subtract": "elementwise N", "multiply": "elementwise N",
    "divide": "elementwise N", "negative": "elementwise N",
}
TRANSCENDENTAL = ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "log1p", "expm1")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def xla_gap(row: dict, calls: list[Call]) -> tuple[str, str]:
    """(short, sentence): the difference XLA - ours, predicted and checked."""
    xla, ours = row["xla"], row["ours"]
    short, said = [], []
    identities = [c for c in calls if c.identity]
    removed = sum(c.flops for c in identities)
    if removed:
        labels = sorted({c.identity for c in identities})
        short.append(f"{'/'.join(labels)} dropped -{removed}")
        said.append(f"XLA's algebraic simplifier deletes {_plural(len(identities), 'identity operation')} "
                    f"({', '.join(labels)}: {removed} flops) that NumPy executes and we count")
    padding = sum(r["padding"] for r in xla["reduce_padding"])
    if padding:
        padded = [r for r in xla["reduce_padding"] if r["padding"]]
        largest = max(padded, key=lambda r: r["elements"])
        short.append(f"reduce padding +{padding}")
        said.append(f"XLA:CPU rewrites the {largest['elements']}-element reduction as a tree of "
                    f"{largest['window']}-wide reduce-windows and counts the adds of its {padding} padding "
                    f"zeros" + ("" if xla["hlo_flops"] is None else f" (its HLO before that rewrite has {xla['hlo_flops']})"))
    residual = xla["flops"] - (ours["flops"] - removed + padding)
    residual_t = xla["transcendentals"] - ours["transcendentals"]
    if residual or residual_t:
        short.append(f"unexplained {residual:+d} flops {residual_t:+d} transc.")
        said.append(f"{residual:+d} flops and {residual_t:+d} transcendentals are not explained")
    names = {c.name for c in calls}
    same = sorted({SAME[n] for n in names if n in SAME})
    trans = [n for n in TRANSCENDENTAL if n in names]
    if trans:
        same.append(f"{'/'.join(trans)} 1 transcendental")
    agree = f" ({'; '.join(same)})" if same else ""
    if not said:
        return "none", f"XLA agrees exactly: same conventions{agree}."
    text = "; ".join(said)
    return ", ".join(short), f"{text[0].upper()}{text[1:]}. Same conventions otherwise{agree}."


def _matmul_op(shapes) -> str:
    a, b = (len(s) for s in shapes)
    if a == 1 and b == 1:
        return "aten.dot"
    if b == 1:
        return "aten.mv"
    return "aten.mm"


def torch_gap(row: dict, calls: list[Call]) -> tuple[str, str]:
    """(short, sentence): torch's matmul count against ours."""
    matmuls = [c for c in calls if c.name == "matmul"]
    if not matmuls:
        if row["torch"]["matmul_flops"] == 0:
            return "no matmul", "No matmul in f: both count 0."
        return "unexplained", f"torch counts {row['torch']['matmul_flops']} flops where f has no matmul."
    uncounted = {}
    for c in matmuls:
        op = _matmul_op(c.shapes)
        if op != "aten.mm":
            uncounted.setdefault(op, []).append(c)
    missing = sum(c.flops for cs in uncounted.values() for c in cs)
    residual = row["torch"]["matmul_flops"] - (row["ours"]["matmul_flops"] - missing)
    short, said = [], []
    for op, cs in uncounted.items():
        what = ", ".join(f"{'x'.join(map(str, c.shapes[0]))} @ {'x'.join(map(str, c.shapes[1]))}" for c in cs)
        flops = sum(c.flops for c in cs)
        short.append(f"{op} uncounted -{flops}")
        said.append(f"FlopCounterMode has no formula for {op}, so it counts {what} as 0 instead of {flops}")
    if residual:
        short.append(f"unexplained {residual:+d}")
        said.append(f"{residual:+d} flops are not explained")
    if not said:
        return "none", "torch agrees exactly on matmul (2mkn per product)."
    return ", ".join(short), f"{'; '.join(said)}."


# --- driver ---------------------------------------------------------------------------
@dataclass
class Peers:
    jax: bool
    torch: bool
    notes: list = field(default_factory=list)
    versions: dict = field(default_factory=dict)


def find_peers() -> Peers:
    peers = Peers(jax=installed("jax", "jaxlib"), torch=installed("torch"))
    if peers.jax:
        import jax

        jax.config.update("jax_enable_x64", True)
        peers.versions["jax"] = jax.__version__
    else:
        peers.notes.append("JAX not installed: skipped")
    if peers.torch:
        import torch

        peers.versions["torch"] = torch.__version__
    else:
        peers.notes.append("torch not installed: skipped")
    return peers


def check_problem(name: str, size: dict, peers: Peers) -> dict:
    p = jl.problems.get(name, **size)
    ours = jl.count_flops(p.f, p.x)
    calls = tally(p.f, p.x)
    row = {"problem": name, "size": size, "n": p.n, "m": p.m,
           "ours": {**ours.to_dict(), "matmul_flops": sum(c.flops for c in calls if c.name == "matmul")},
           "errors": []}
    tallied = jl.Cost(sum(c.flops for c in calls), sum(c.transcendentals for c in calls))
    if tallied != ours:
        row["errors"].append(f"per-primitive tally {tallied} differs from count_flops {ours}")
    if name not in TWINS:
        row["notes"] = [f"no jnp/torch twin for {name!r}: peers skipped"]
        return row
    try:
        constants = twin_constants(name, p.f)
    except LookupError as exc:
        row["errors"].append(str(exc))
        return row
    stale = mismatch(name, p, constants)
    if stale:
        row["errors"].append(stale)
        return row
    y = np.asarray(p.f(p.x))
    if peers.jax:
        try:
            import jax.numpy as jnp

            fn = twin(name, constants, jnp, jnp.asarray)
            row["xla"] = xla_counts(fn, p.x)
            if not np.allclose(np.asarray(fn(jnp.asarray(p.x))), y, rtol=1e-10):
                row["errors"].append("the jnp twin computes a different value")
            row["xla_gap"], row["xla_gap_text"] = xla_gap(row, calls)
        except Exception as exc:  # noqa: BLE001 -- a peer failure is reported, the other rows still run
            row["errors"].append(f"JAX: {type(exc).__name__}: {exc}")
    if peers.torch:
        try:
            import torch

            fn = twin(name, constants, torch, torch.from_numpy)
            row["torch"] = torch_counts(fn, p.x)
            if not np.allclose(fn(torch.from_numpy(p.x)).numpy(), y, rtol=1e-10):
                row["errors"].append("the torch twin computes a different value")
            row["torch_gap"], row["torch_gap_text"] = torch_gap(row, calls)
        except Exception as exc:  # noqa: BLE001
            row["errors"].append(f"torch: {type(exc).__name__}: {exc}")
    return row


COLUMNS = ("problem", "n->m", "ours flops", "ours transc", "XLA flops", "XLA transc", "XLA/ours",
           "ours matmul", "torch matmul", "gap")


def _cells(row: dict) -> list[str]:
    xla, tch = row.get("xla"), row.get("torch")
    ours = row["ours"]
    ratio = "-" if not xla else (f"{xla['flops'] / ours['flops']:.4f}" if ours["flops"] else "-")
    gaps = []
    if xla:
        gaps.append(f"XLA: {row.get('xla_gap', '?')}")
    if tch:
        gaps.append(f"torch: {row.get('torch_gap', '?')}")
    if row["errors"]:
        gaps.append("ERROR (see below)")
    return [row["problem"], f"{row['n']}->{row['m']}", str(ours["flops"]), str(ours["transcendentals"]),
            str(xla["flops"]) if xla else "-", str(xla["transcendentals"]) if xla else "-", ratio,
            str(ours["matmul_flops"]), str(tch["matmul_flops"]) if tch else "-", "; ".join(gaps) or "-"]


def render(rows: list[dict], peers: Peers, small: bool) -> str:
    table = [list(COLUMNS)] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS) - 1)]
    lines = [f"Primal FLOPs of one evaluation of f, {'small' if small else 'default'} sizes. "
             f"Peers: " + (", ".join(f"{k} {v}" for k, v in peers.versions.items()) or "none")]
    lines += [f"  {note}" for note in peers.notes]
    for i, line in enumerate(table):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths)))
                     + "  " + line[-1])
        if i == 0:
            lines.append("-" * (sum(widths) + 2 * len(widths) + len(line[-1])))
    explained = [r for r in rows if r.get("xla_gap_text") or r.get("torch_gap_text") or r["errors"] or r.get("notes")]
    if explained:
        lines += ["", "Gaps:"]
    for r in explained:
        for key, who in (("xla_gap_text", "XLA"), ("torch_gap_text", "torch")):
            if r.get(key):
                lines.append(f"  {r['problem']} ({who}): {r[key]}")
        for note in r.get("notes", []):
            lines.append(f"  {r['problem']}: {note}")
        for error in r["errors"]:
            lines.append(f"  {r['problem']}: ERROR {error}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny problem sizes (a quick smoke test)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--problems", metavar="NAMES", help="comma-separated problem names (default: all)")
    args = parser.parse_args(argv)
    names = args.problems.split(",") if args.problems else jl.problems.names()
    unknown = [n for n in names if n not in jl.problems.names()]
    if unknown:
        parser.error(f"unknown problem(s) {', '.join(unknown)}; choose from {', '.join(jl.problems.names())}")
    peers = find_peers()
    rows = [check_problem(name, SMALL_SIZES.get(name, {}) if args.small else {}, peers) for name in names]
    print(render(rows, peers, args.small))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"small": args.small, "peers": peers.versions, "notes": peers.notes, "problems": rows}, indent=2) + "\n")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
