"""Passes on a thread pool against passes in turn: wall time of full Jacobians, side by side.

``jacobian(f, x, executor=pool)`` runs every pass after the first on `pool`.
NumPy releases the GIL inside its loops, so passes whose work is elementwise
loops over large arrays overlap on the cores; passes made of many small
operations, or of BLAS products that already use every core, do not gain.
Each row is one workload and mode with several passes (`batch_size=None`); the
serial and threaded calls alternate round by round, and every threaded
Jacobian is checked equal to the serial one.

    python scripts/bench_sharding.py [--quick] [--threads N] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import jacobian_lab as jl
from jacobian_lab import problems

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_overhead  # noqa: E402

# (workload, mode): every one needs several passes at its default size.
CASES = (("bratu", "forward"), ("bratu", "reverse"), ("curve", "reverse"), ("seed", "forward"),
         ("mlp_loss", "forward"))
QUICK_SIZES = {"bratu": {"n": 40}, "curve": {"m": 40}, "seed": {"n": 40}, "mlp_loss": {"n": 44}}


def measure(name: str, mode: str, pool, quick: bool, repeat: int) -> dict:
    problem = problems.get(name, **(QUICK_SIZES[name] if quick else {}))
    batch_size = 8 if quick else None  # quick sizes would fit one pass
    serial = lambda: jl.jacobian(problem.f, problem.x, mode=mode, batch_size=batch_size)  # noqa: E731
    threaded = lambda: jl.jacobian(problem.f, problem.x, mode=mode, batch_size=batch_size, executor=pool)  # noqa: E731
    if not np.array_equal(serial(), threaded()):
        raise AssertionError(f"{name}/{mode}: the threaded Jacobian differs from the serial one")
    # Rounds of a few tenths of a second: a round of two calls would time waking the pool's threads.
    s, t = bench_overhead.alternating(serial, threaded, repeat, 0.05 if quick else 0.3)
    m = problem.f(problem.x).size
    passes = jl.predict(problem.f, problem.x).schedule(mode, batch_size)[1]
    return {"workload": name, "mode": mode, "n": problem.x.size, "m": m, "passes": passes,
            "serial_s": s, "threads_s": t, "ratio": t / s}


def report(rows: list, threads: int) -> str:
    lines = [f"full Jacobian, serial passes vs passes on {threads} threads (median wall time):",
             f"  {'workload':10s} {'mode':8s} {'n -> m':>12s} {'passes':>6s} {'serial ms':>10s} "
             f"{'threads ms':>10s} {'threads / serial':>17s}"]
    for r in rows:
        lines.append(f"  {r['workload']:10s} {r['mode']:8s} {str(r['n']) + '->' + str(r['m']):>12s} {r['passes']:6d} "
                     f"{1e3 * r['serial_s']:10.3f} {1e3 * r['threads_s']:10.3f} {r['ratio']:17.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="worker threads (default 2)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--default-malloc", action="store_true", help=bench_overhead.ALLOCATOR_HELP)
    args = parser.parse_args(argv)
    print(bench_overhead.allocator(args.default_malloc))
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        rows = [measure(name, mode, pool, args.quick, 3 if args.quick else 9) for name, mode in CASES]
    print(report(rows, args.threads))
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "quick": args.quick, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
