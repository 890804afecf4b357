"""The commands: compare, sparsity, sweep, report, chain and problems, each ``args -> exit code``."""
from __future__ import annotations

import contextlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import EXIT_OK, PROG, UsageError, running
from .limits import refuse_dense_pattern, refuse_too_long
from .options import check_folder, parse_modes, parse_sizes, plot_path
from .output import new_console, print_json, print_table, progress_bar, save_figure
from .targets import DEFAULT_PROBLEM, check_traceable, chosen_problems, target_of


def cmd_compare(args) -> int:
    from ..compare import compare
    from ..plots import phase_bars

    modes = parse_modes(args.modes)
    if args.batch_size is not None:
        for extra in (f"forward-{args.batch_size}", f"reverse-{args.batch_size}"):
            if extra not in modes:
                modes.append(extra)
    plot = plot_path(args.plot)
    title, f, x, problem = target_of(args)
    prediction = refuse_too_long(title, f, x, modes)
    with running(f"differentiating {title} failed"), \
            ThreadPoolExecutor(args.threads) if args.threads else contextlib.nullcontext() as pool:
        comparison = compare(f, x, modes=modes, repeat=args.repeat, executor=pool, prediction=prediction)
    if args.json:
        print_json(args, {**_described(title, problem), **comparison.to_dict(), "threads": args.threads})
    else:
        _print_comparison(title, x, problem, comparison, args.threads)
    if plot is not None:  # after the result, which a figure that cannot be written must not take with it
        save_figure(phase_bars(comparison, title=title), plot)
    return EXIT_OK


def _described(title: str, problem) -> dict:
    """What a JSON output is about, as its table's first lines say: the target, and a problem's summary
    and expected winner."""
    if problem is None:
        return {"target": title}
    return {"target": title, "problem": problem.name, "summary": problem.summary, "expected_winner": problem.winner}


def _print_comparison(title: str, x, problem, comparison, threads=None) -> None:
    """What was differentiated, the table of every mode, and the verdict (and the threads the passes ran on)."""
    console = new_console()
    if problem is not None:
        console.print(f"[bold]{problem.name}[/bold]: {problem.summary}")
        console.print(f"expected winner: {problem.winner}. {problem.why}")
    else:
        shapes = ({k: tuple(np.shape(v)) for k, v in x.items()} if isinstance(x, dict) else tuple(np.shape(x)))
        console.print(f"[bold]{title}[/bold] at an input of shape {shapes}")
    print_table(console, comparison.rich_table())
    if threads:
        console.print(f"the forward, reverse and auto rows ran their passes on {threads} threads")
    console.print(f"[bold]verdict:[/bold] {comparison.verdict()}")


def cmd_sparsity(args) -> int:
    from ..compressed import plans as plans_of
    from ..plots import pattern_colors
    from ..sparsity import recorded, recorded_pattern

    plot = plot_path(args.plot)
    title, f, x, problem = target_of(args)
    failed = f"reading the sparsity pattern of {title} failed"
    with running(failed):
        pullback, m = recorded(f, x)
    refuse_dense_pattern(args, title, pullback, m, x)
    with running(failed):
        pattern = recorded_pattern(pullback, m)
        plans = plans_of(pattern)
    summary = _pattern_summary(pattern, plans)
    if args.json:
        print_json(args, {**_described(title, problem), **summary})
    else:
        _print_pattern(title, summary)
    if plot is not None:  # after the result, which a figure that cannot be written must not take with it
        save_figure(pattern_colors(pattern, plans["forward"].columns, title=title), plot)
    return EXIT_OK


def _print_pattern(title: str, summary: dict) -> None:
    """The pattern's size and entries, the seeds of each mode, and the mode sparse_jacobian takes."""
    m, n, seeds = summary["m"], summary["n"], summary["seeds"]
    console = new_console()
    console.print(f"[bold]{title}[/bold]: R^{n} -> R^{m}")
    console.print(f"pattern: {summary['entries']:,} of {m * n:,} entries ({100 * summary['density']:.3g} %), "
                  f"at most {summary['widest_row']:,} in a row and {summary['widest_column']:,} in a column")
    pulled = summary["pulled_rows"]
    how = ("every row pulled" if pulled >= m else "no row is worth pulling: forward's colors" if not pulled else
           f"{pulled:,} row{'' if pulled == 1 else 's'} pulled, the other rows' columns colored")
    console.print(f"seeds: forward {seeds['forward']:,} (column colors), reverse {seeds['reverse']:,} (row colors), "
                  f"bidirectional {seeds['bidirectional']:,} ({how})")
    chosen = summary["sparse_jacobian"]
    order = "reverse mode's" if m < n else "forward mode's" if n < m else "forward or reverse mode's"
    dense = f"dense {order} {_seeds(min(m, n))}"
    fewer = (f" instead of {dense}" if seeds[chosen] < min(m, n)
             else f", as many as {dense}: the pattern does not compress")
    console.print(f"[bold]sparse_jacobian[/bold] takes {chosen} mode: {_seeds(seeds[chosen])}{fewer}")


def _seeds(count: int) -> str:
    return f"{count:,} seed" + ("" if count == 1 else "s")


def _pattern_summary(pattern, plans) -> dict:
    from ..compressed import fewest_seeds, widest

    m, n = pattern.shape
    seeds = {mode: p.seeds for mode, p in plans.items()}
    row, column = widest(pattern)
    return {
        "m": m, "n": n, "entries": int(pattern.nnz), "density": pattern.nnz / max(m * n, 1),
        "widest_row": row, "widest_column": column,
        "seeds": seeds, "pulled_rows": int(np.count_nonzero(plans["bidirectional"].rows >= 0)),
        "sparse_jacobian": fewest_seeds(plans),
    }


def cmd_sweep(args) -> int:
    from .. import problems
    from ..plots import sweep_plot
    from ..sweep import sweep

    [name] = chosen_problems([args.problem or DEFAULT_PROBLEM])
    # in increasing order, each once, as the plot and the crossover read them
    ns = sorted(set(parse_sizes(args.n, "--n"))) if args.n is not None else None
    ms = sorted(set(parse_sizes(args.m, "--m"))) if args.m is not None else None
    plot = plot_path(args.plot)
    check_traceable(max((ns or []) + (ms or []), default=0), "--n/--m")
    # build every grid point before measuring, so a size the problem does not take fails at once
    try:
        built = {(n, m): problems.get(name, n=n, m=m, seed=args.seed) for n in ns or [None] for m in ms or [None]}
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    taken = {n: problem.x.size for (n, _), problem in built.items()}
    if ns and any(taken[n] != n for n in ns):  # mlp_loss takes whole hidden units: n in multiples of 22
        moved = " and ".join(f"{n} as {taken[n]}" for n in ns if taken[n] != n)
        print(f"{PROG} sweep: {name} runs n = {moved}, the sizes it takes", file=sys.stderr)
        ns = list(dict.fromkeys(taken[n] for n in ns))  # a size reached twice is swept once
    largest = built[max(taken) if ns else None, max(ms) if ms else None]  # (keyed by the sizes asked for)
    refuse_too_long(name, largest.f, largest.x, ["forward", "reverse"], leave_out=False)

    with progress_bar(f"sweep {name}", "sweep ") as progress:
        with running(f"sweep of {name} failed", bad_input=ValueError):
            result = sweep(name, n=ns, m=ms, repeat=args.repeat, seed=args.seed, progress=progress)
    if args.json:
        print_json(args, result.to_dict())
    else:
        print_table(new_console(), result.rich_table())
    if plot is not None:  # after the result, which a figure that cannot be written must not take with it
        save_figure(sweep_plot(result), plot)
    return EXIT_OK


def cmd_report(args) -> int:
    from ..report import TEXTS, build_report, path_conflict

    chosen = None
    if args.problems is not None:  # --problems "" names no problem; it does not mean all of them
        # a name given twice is reported once: running it again would only repeat its section
        chosen = chosen_problems(p.strip() for p in args.problems.split(",") if p.strip())
    if not args.out.strip():  # Path("") is the current folder: an unset variable would fill it with report files
        raise UsageError("--out is empty; give the folder to write the report into, e.g. --out report")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out!r} exists and is not a directory")
    check_folder("--out", args.out, out)
    conflict = path_conflict(out)
    if conflict:  # build_report refuses it too, before any work: here as a usage error
        raise UsageError(f"--out {args.out!r}: {conflict}; move it or choose another --out")
    for name in (*TEXTS, "figures"):
        path = out / name  # (os.path: a link into a folder the user may not look into is replaced, not read)
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise UsageError(f"--out {args.out!r}: {str(path)!r} exists and cannot be overwritten; make it "
                             "writable or choose another --out")
    with progress_bar("report", "report: ") as progress:
        with running("building the report failed", bad_input=ValueError):
            index = build_report(out, problems=chosen, repeat=args.repeat, embed=args.embed, progress=progress)
    figures = len(list(index.with_name("figures").glob("*.png")))
    for written in (index, index.with_name("report.md"), index.with_name("data.json")):
        print(written)
    print(f"{index.with_name('figures')}{os.sep} ({figures} figures)")
    return EXIT_OK


def cmd_chain(args) -> int:
    from ..chain import plan
    from ..plots import chain_costs

    plot = plot_path(args.plot)
    try:
        p = plan(args.widths)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        print_json(args, p.to_dict())
    else:
        print(p.table())
    if plot is not None:  # after the result, which a figure that cannot be written must not take with it
        save_figure(chain_costs(p), plot)
    return EXIT_OK


def cmd_problems(args) -> int:
    from .. import problems

    listing = []
    for name in problems.names():
        p = problems.get(name)
        listing.append({"name": name, "n": p.n, "m": p.m, "winner": p.winner, "summary": p.summary})
    if args.json:
        print_json(args, listing)
        return EXIT_OK
    width = max(len(item["name"]) for item in listing)
    for item in listing:
        print(f"{item['name']:<{width}}  {item['summary']}  [cheaper: {item['winner']}]")
    return EXIT_OK
