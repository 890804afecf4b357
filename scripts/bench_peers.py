"""Full Jacobians of NumPy code: jacobian_lab against JAX, PyTorch, HIPS autograd and raw NumPy.

Workloads: five built-in problems, ``jacobian_lab.problems.get(name)`` at
their default sizes (float64; JAX runs with x64 enabled):

    seed      sum(sin(exp(x**2)))                      R^1000 -> R
    mlp_loss  MSE of a 20-100-1 tanh MLP, batch 64     R^2200 -> R
    curve     p0 exp(-p1 t) sin(p2 t + p3)             R^4    -> R^2000
    dense     tanh(W x + b)                            R^300  -> R^300
    bratu     (u[i-1] - 2u[i] + u[i+1]) / h^2 + exp(u)  R^2000 -> R^1998

Ours and raw NumPy run the problem's own ``f``; JAX, PyTorch and autograd run
its twin from ``twins.py`` beside this file (the same ``f`` over their array
namespace, on the arrays read from the problem's closure), so every library
runs the same function on the same data. Before anything is timed each twin
must reproduce ``f``'s value and exact FLOP count, and each problem's
hand-derived ``jacobian_exact`` must agree with ``jl.jacobian`` (rtol 1e-9,
atol 1e-12).

Columns: ours in forward, reverse and auto mode, ``jl.jit(jl.jacobian(f))``
(auto, compiled) in steady state and on its first call, and
``jl.sparse_jacobian(f)`` (the pattern read on every call, its coloring kept) and compiled
(``jl.jit(jl.sparse_jacobian(f))``); jax.jit(jacrev / jacfwd) in
steady state and on its first call (compilation included); JAX without jit;
torch.func.jacrev / jacfwd; torch.autograd.functional.jacobian; HIPS
autograd (grad for a scalar output, jacobian otherwise); one evaluation of
f in raw NumPy; and "numpy analytic J", the problem's hand-derived
``jacobian_exact`` in raw NumPy: the floor that no engine running NumPy
operations one at a time can beat by much. For dense, the (n, n) @ (n, n)
product that either mode runs on the full seed block is also timed alone, in
NumPy and in each peer. Times are medians of repeated rounds, all in one
process.
A peer that is not installed is skipped with a note; the script runs with
none of them.

    pip install -e ".[peers]"     # jax, autograd
    pip install torch             # the CPU build is enough
    python scripts/bench_peers.py [--quick] [--json FILE] [--plot FILE] [--no-overhead] [--default-malloc]

`--quick` runs tiny sizes with few repeats (a smoke test, no timing claims).
glibc's allocator is pinned to keep freed memory in the process, so no run
pays page faults for its derivative arrays and the times do not depend on
which workload ran first (`--default-malloc` leaves it alone).
The dispatch-overhead, counting-cost and scaling sections come from
`bench_overhead.py` beside this file.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_overhead.py and twins.py
import bench_overhead
from twins import mismatch, twin, twin_constants

import jacobian_lab as jl

# keyword arguments of jacobian_lab.problems.get: the problems' defaults, and tiny sizes for --quick
FULL_SIZES = {"seed": {"n": 1000}, "mlp_loss": {"n": 2200}, "curve": {"m": 2000}, "dense": {"n": 300},
              "bratu": {"n": 2000}}
QUICK_SIZES = {"seed": {"n": 16}, "mlp_loss": {"n": 66}, "curve": {"m": 16}, "dense": {"n": 8},
               "bratu": {"n": 12}}
TARGETED = ("seed", "mlp_loss", "curve", "dense")
SPARSE_TARGETED = ("bratu",)  # its Jacobian has three diagonals: the target is sparse_jacobian's


# --- workloads: the built-in problems and their twins ---------------------------------
@dataclass
class Workload:
    """A built-in problem and the constants its twin reads from the problem's closure."""

    name: str
    problem: jl.problems.Problem
    consts: dict

    @property
    def x(self) -> np.ndarray:
        return self.problem.x

    @property
    def scalar(self) -> bool:
        return np.ndim(self.problem.f(self.problem.x)) == 0

    def function(self, ns, convert=lambda a: a):
        """The problem's f over namespace `ns`, its array constants passed through `convert`."""
        return twin(self.name, self.consts, ns, convert)


def workloads(sizes: dict) -> list[Workload]:
    """The problems named in `sizes`, each checked to be reproduced by its twin.

    Raises LookupError when a twin no longer matches its problem's f, or when
    the problem's jacobian_exact disagrees with jl.jacobian.
    """
    out = []
    for name, size in sizes.items():
        p = jl.problems.get(name, **size)
        consts = twin_constants(name, p.f)
        stale = mismatch(name, p, consts) or analytic_mismatch(p)
        if stale:
            raise LookupError(stale)
        out.append(Workload(name, p, consts))
    return out


def analytic_mismatch(p: jl.problems.Problem) -> str | None:
    """Why p.jacobian_exact(p.x) differs from jl.jacobian(p.f, p.x) (shape, or rtol 1e-9 / atol 1e-12), or None."""
    exact, ours = np.asarray(p.jacobian_exact(p.x)), np.asarray(jl.jacobian(p.f, p.x))
    if exact.shape != ours.shape:
        return f"jacobian_exact of {p.name!r} has shape {exact.shape}, jl.jacobian {ours.shape}"
    if not np.allclose(exact, ours, rtol=1e-9, atol=1e-12):
        return (f"jacobian_exact of {p.name!r} disagrees with jl.jacobian "
                f"(max abs diff {np.max(np.abs(exact - ours)):.3g}, rtol 1e-9, atol 1e-12)")
    return None


# --- timing -------------------------------------------------------------------------
def timed(fn, repeat: int, min_seconds: float) -> float:
    return bench_overhead.timed(fn, repeat, min_seconds)


def first_call(make, repeat: int) -> float:
    """Median seconds of the first call of a freshly built function (compilation included)."""
    samples = []
    for _ in range(repeat):
        fn = make()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# --- columns: each returns {column: callable returning a Jacobian} or raises ImportError ---
def ours(w: Workload, first_repeat: int) -> tuple[dict, dict]:
    f = w.problem.f
    # auto predicts on every call: its time includes the prediction that picked the order.
    calls = {f"ours {mode}": (lambda mode=mode: jl.jacobian(f, w.x, mode=mode))
             for mode in ("forward", "reverse", "auto")}
    jitted = jl.jit(jl.jacobian(f))  # compiled by its first call, before anything is timed
    calls["ours jit(auto)"] = lambda: jitted(w.x)
    sparse = jl.sparse_jacobian(f)  # colors the pattern on its first call, before anything is timed
    calls["ours sparse"] = lambda: sparse(w.x)
    jitted_sparse = jl.jit(jl.sparse_jacobian(f))
    calls["ours jit(sparse)"] = lambda: jitted_sparse(w.x)
    # a fresh jit each time: the first call records, compiles both orders and keeps one
    one_shot = {"ours jit(auto) 1st call": first_call(lambda: (lambda j=jl.jit(jl.jacobian(f)): j(w.x)), first_repeat)}
    return calls, one_shot


def numpy_columns(w: Workload) -> dict:
    f, exact = w.problem.f, w.problem.jacobian_exact
    return {"numpy f(x)": lambda: f(w.x), "numpy analytic J": lambda: exact(w.x)}


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def jax_columns(w: Workload, first_repeat: int) -> tuple[dict, dict]:
    jax = _jax()
    import jax.numpy as jnp

    f, x = w.function(jnp, jnp.asarray), jnp.asarray(w.x)

    def call(g):  # JAX dispatches asynchronously: wait for the result
        return lambda: g(x).block_until_ready()

    calls, one_shot = {}, {}
    for name, transform in (("jacrev", jax.jacrev), ("jacfwd", jax.jacfwd)):
        calls[f"jax.jit({name})"] = call(jax.jit(transform(f)))
        calls[f"jax {name} (no jit)"] = call(transform(f))
        # a fresh jit each time: the first call traces and compiles
        one_shot[f"jax.jit({name}) 1st call"] = first_call(lambda t=transform: call(jax.jit(t(f))), first_repeat)
    return calls, one_shot


def torch_columns(w: Workload) -> dict:
    import torch

    f, x = w.function(torch, torch.from_numpy), torch.from_numpy(w.x)
    return {
        "torch.func.jacrev": lambda: torch.func.jacrev(f)(x),
        "torch.func.jacfwd": lambda: torch.func.jacfwd(f)(x),
        "torch.autograd.functional.jacobian": lambda: torch.autograd.functional.jacobian(f, x),
    }


def autograd_columns(w: Workload) -> dict:
    import autograd
    import autograd.numpy as anp

    f = w.function(anp)
    if w.scalar:
        return {"autograd.grad": lambda: autograd.grad(f)(w.x)}
    return {"autograd.jacobian": lambda: autograd.jacobian(f)(w.x)}


EAGER_PEERS = ("jax jacrev (no jit)", "jax jacfwd (no jit)", "torch.func.jacrev", "torch.func.jacfwd",
               "torch.autograd.functional.jacobian", "autograd.grad", "autograd.jacobian")
JIT_STEADY = ("jax.jit(jacrev)", "jax.jit(jacfwd)")
JIT_FIRST = ("jax.jit(jacrev) 1st call", "jax.jit(jacfwd) 1st call")
PEERS = {"jax": ("jax", "jaxlib"), "torch": ("torch",), "autograd": ("autograd",)}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _as_numpy(J):
    if hasattr(J, "toarray"):  # a scipy.sparse result
        J = J.toarray()
    if hasattr(J, "detach"):
        J = J.detach()
    return np.asarray(J, dtype=np.float64)


def measure(w: Workload, quick: bool) -> dict:
    repeat, min_seconds, first_repeat = (2, 0.0, 1) if quick else (7, 0.05, 3)
    notes = {}
    calls, seconds = ours(w, first_repeat)
    calls.update(numpy_columns(w))
    if all(installed(m) for m in PEERS["jax"]):
        jax_calls, one_shot = jax_columns(w, first_repeat)
        calls.update(jax_calls)
        seconds.update(one_shot)
    else:
        notes["jax"] = "not installed"
    if installed("torch"):
        calls.update(torch_columns(w))
    else:
        notes["torch"] = "not installed"
    if installed("autograd"):
        calls.update(autograd_columns(w))
    else:
        notes["autograd"] = "not installed"

    reference = _as_numpy(calls["ours reverse"]()).reshape(-1, w.x.size)
    errors, one_shot, seconds = {}, seconds, {}
    for column, call in calls.items():
        if column != "numpy f(x)":
            errors[column] = float(np.max(np.abs(_as_numpy(call()).reshape(-1, w.x.size) - reference)))
        seconds[column] = timed(call, repeat, min_seconds)
    seconds.update(one_shot)  # first calls, compilation included, after the steady states
    result = {"n": w.problem.n, "m": w.problem.m, "seconds": seconds, "max_abs_diff": errors, "notes": notes}
    if w.name == "dense":  # either mode multiplies W by the full seed block: that product alone
        result["product"] = product_seconds(w.problem.n, repeat, min_seconds)
    return result


def product_seconds(n: int, repeat: int, min_seconds: float) -> dict:
    """Seconds of one (n, n) @ (n, n) float64 product in NumPy and in each installed peer."""
    a, b = np.random.default_rng(0).random((n, n)), np.eye(n)
    calls = {"numpy": lambda: a @ b}
    if all(installed(m) for m in PEERS["jax"]):
        jnp = _jax().numpy
        product, ja, jb = _jax().jit(jnp.matmul), jnp.asarray(a), jnp.asarray(b)
        calls["jax.jit"] = lambda: product(ja, jb).block_until_ready()
    if installed("torch"):
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        calls["torch"] = lambda: ta @ tb
    return {name: timed(call, repeat, min_seconds) for name, call in calls.items()}


def _best(seconds: dict, columns) -> tuple[str | None, float | None]:
    present = [(seconds[c], c) for c in columns if c in seconds]
    if not present:
        return None, None
    s, c = min(present)
    return c, s


def ratios(result: dict) -> dict:
    """ours / peer for every peer column, the targeted comparisons, and JAX's compiled kernel / the floor."""
    s = result["seconds"]
    auto, floor, compiled = s["ours auto"], s["numpy analytic J"], s["ours jit(auto)"]
    eager, eager_s = _best(s, EAGER_PEERS)
    jit, jit_s = _best(s, JIT_STEADY)
    jit_first, first_s = _best(s, JIT_FIRST)

    def over(a, b):  # None when a peer is missing
        return a / b if a and b else None

    out = {
        "auto / fastest eager peer": over(auto, eager_s),
        "auto / jax.jit steady": over(auto, jit_s),
        "auto / jax.jit 1st call": over(auto, first_s),
        "jit(auto) / fastest eager peer": over(compiled, eager_s),
        "jit(auto) / jax.jit steady": over(compiled, jit_s),
        "jit(auto) 1st call / jax.jit 1st call": over(s["ours jit(auto) 1st call"], first_s),
        "auto / numpy f(x)": auto / s["numpy f(x)"],
        "auto / numpy analytic J": auto / floor,
        "jit(auto) / numpy analytic J": compiled / floor,
        "jax.jit steady / numpy analytic J": over(jit_s, floor),
    }
    if "ours sparse" in s:
        out["sparse / fastest eager peer"] = over(s["ours sparse"], eager_s)
        out["sparse / jax.jit steady"] = over(s["ours sparse"], jit_s)
        out["jit(sparse) / jax.jit steady"] = over(s["ours jit(sparse)"], jit_s)
    out.update({f"auto / {c}": auto / v for c, v in s.items() if not c.startswith(("ours", "numpy"))})
    result["fastest"] = {"eager peer": eager, "jax.jit steady": jit, "jax.jit 1st call": jit_first}
    return out


# --- printing --------------------------------------------------------------------------
def _ms(v) -> str:
    if v is None:
        return "—"
    return f"{1e3 * v:.3f}" if v < 1 else f"{1e3 * v:,.0f}"


COLUMN_ORDER = ("ours forward", "ours reverse", "ours auto", "ours jit(auto)", "ours jit(auto) 1st call", "ours sparse",
                "ours jit(sparse)",
                "numpy f(x)", "numpy analytic J",
                *JIT_STEADY, *JIT_FIRST, *EAGER_PEERS)


def table(results: dict) -> str:
    columns = []
    for r in results.values():
        columns += [c for c in r["seconds"] if c not in columns]
    columns.sort(key=lambda c: COLUMN_ORDER.index(c) if c in COLUMN_ORDER else len(COLUMN_ORDER))
    names = list(results)
    keys = []
    for r in results.values():
        keys += [k for k in r["ratios"] if k not in keys]
    width = max(len(c) for c in columns + keys) + 2
    lines = ["wall time per full Jacobian, ms (median)", f"{'':{width}}" + "".join(f"{n:>12}" for n in names)]
    shape = {n: f"{r['n']}->{r['m']}" for n, r in results.items()}
    lines.append(f"{'n -> m':{width}}" + "".join(f"{shape[n]:>12}" for n in names))
    for c in columns:
        lines.append(f"{c:{width}}" + "".join(f"{_ms(results[n]['seconds'].get(c)):>12}" for n in names))
    lines += ["", "ratios, left / right time (< 1: left faster; 'auto' is jacobian(mode=\"auto\"), "
              "'jit(auto)' is jit(jacobian(f)) once compiled)",
              f"{'':{width}}" + "".join(f"{n:>12}" for n in names)]
    for k in keys:
        cells = "".join(f"{'—' if results[n]['ratios'].get(k) is None else format(results[n]['ratios'][k], '.3g'):>12}"
                        for n in names)
        lines.append(f"{k:{width}}" + cells)
    notes = sorted({f"{peer}: {note}" for r in results.values() for peer, note in r["notes"].items()})
    if notes:
        lines += ["", "skipped: " + "; ".join(notes)]
    return "\n".join(lines)


def targets(results: dict, overhead: dict | None, counting: dict | None) -> dict:
    out = {}
    for name in TARGETED:
        r = results.get(name, {}).get("ratios", {})
        for key, limit in (("auto / fastest eager peer", 0.5), ("auto / jax.jit steady", 1.0),
                           ("jit(auto) / fastest eager peer", 0.5), ("jit(auto) / jax.jit steady", 1.0)):
            value = r.get(key)
            out[f"{name}: {key} <= {limit}"] = None if value is None else bool(value <= limit)
    for name in SPARSE_TARGETED:
        r = results.get(name, {}).get("ratios", {})
        for key, limit in (("sparse / fastest eager peer", 0.5), ("sparse / jax.jit steady", 1.0)):
            value = r.get(key)
            out[f"{name}: {key} <= {limit}"] = None if value is None else bool(value <= limit)
    if overhead:
        out["forward dispatch <= 3 us/primitive"] = bool(overhead["forward_us"] <= 3.0)
        out["reverse dispatch <= 5 us/primitive"] = bool(overhead["reverse_us"] <= 5.0)
    if counting:
        out["counting <= 10 % of wall time"] = bool(max(v["fraction"] for v in counting.values()) <= 0.10)
    return out


def floor_line(result: dict) -> str:
    """The analytic-NumPy floor beside JAX's best compiled steady state, for the compiled target."""
    floor, jit = result["seconds"]["numpy analytic J"], _best(result["seconds"], JIT_STEADY)[1]
    jax = "—" if jit is None else f"{_ms(jit)} ms ({jit / floor:.3g}x the floor)"
    return f"floor: analytic NumPy J = {_ms(floor)} ms; jax.jit steady = {jax}"


def eager_line(result: dict) -> str:
    """What an eager Jacobian does in NumPy alone (f, then its derivative), beside the eager target."""
    s = result["seconds"]
    reference = s["numpy f(x)"] + s["numpy analytic J"]
    line = f"numpy f(x) + analytic J = {_ms(reference)} ms"
    peer, peer_s = _best(s, EAGER_PEERS)
    if peer is not None:
        line += f"; the target, half of {peer}, is {_ms(peer_s / 2)} ms"
    if "product" in result:  # what either eager order multiplies the seed block by
        n = result["n"]
        line += f"\n    the {n}x{n}x{n} seed-block product alone: " + ", ".join(
            f"{name} {_ms(seconds)} ms" for name, seconds in result["product"].items())
    return line


def versions() -> dict:
    out = {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform()}
    for module in ("jax", "torch", "autograd"):
        if installed(module):
            try:
                out[module] = importlib.metadata.version(module)
            except importlib.metadata.PackageNotFoundError:  # a peer without metadata is still benchmarked
                out[module] = "unknown"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats: a smoke run")
    parser.add_argument("--json", metavar="FILE", help="write every number as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write the scaling figure (PNG)")
    parser.add_argument("--no-overhead", action="store_true", help="skip the overhead/counting/scaling sections")
    parser.add_argument("--only", nargs="+", choices=list(FULL_SIZES), help="run these workloads only")
    parser.add_argument("--default-malloc", action="store_true", help=bench_overhead.ALLOCATOR_HELP)
    args = parser.parse_args(argv)
    allocator = bench_overhead.allocator(args.default_malloc)
    print(allocator)

    warnings.filterwarnings("ignore", category=UserWarning)  # peers' deprecation chatter
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    try:
        chosen = workloads({name: size for name, size in sizes.items() if not args.only or name in args.only})
    except LookupError as exc:
        print(f"{Path(__file__).name}: {exc}", file=sys.stderr)
        return 1
    results = {}
    for w in chosen:
        r = measure(w, args.quick)
        r["ratios"] = ratios(r)
        results[w.name] = r
    print(table(results))

    extra = None if args.no_overhead else bench_overhead.run(
        args.quick, args.plot, {w.name: (w.problem.f, w.x) for w in chosen})
    if extra:
        print()
        print(bench_overhead.report(extra))
    met = targets(results, extra and extra["overhead"], extra and extra["counting"])
    print("\ntargets:")
    for key, ok in met.items():
        print(f"  {'—' if ok is None else ('met' if ok else 'NOT met'):8s} {key}")
        name, _, target = key.partition(": ")
        if target == "auto / fastest eager peer <= 0.5" and name in results:
            print("    " + eager_line(results[name]))
        if target == "jit(auto) / jax.jit steady <= 1.0" and name in results:
            print("    " + floor_line(results[name]))

    if args.json:
        payload = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "quick": args.quick,
                   "allocator": allocator, "versions": versions(), "workloads": results, "targets": met, **(extra or {})}
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
