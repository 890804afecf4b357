"""Runs refused before they start: rows predicted to take too long, patterns too large to read, and
the sizes to shrink after running out of memory."""
from __future__ import annotations

from .errors import UsageError, running
from .targets import input_size

# A row predicted to run more passes or FLOPs than these would keep compare busy for many minutes
# (a pass costs a few microseconds per primitive, a FLOP about a nanosecond): refused before it runs.
MAX_PASSES, MAX_FLOPS = 200_000, 2e11


def refuse_too_long(title: str, f, x, modes, leave_out: bool = True):
    """Refuse the rows of `modes` predicted to exceed MAX_PASSES or MAX_FLOPS, if any are (with
    `leave_out`, naming the --modes without them); f failing while it is predicted is f's failure.
    Returns the prediction, for the comparison to use."""
    from ..compare import _rows
    from ..harness import schedule
    from ..prediction import predict

    # a forward row's passes follow from x's size alone (at least these: memory may cut a pass's seeds),
    # known before f is first traced, which a huge x makes slow
    n = input_size(x)
    too_long = {}
    for name, (label, mode, batch) in zip(modes, _rows(modes)):
        passes = schedule("forward", n, 1, batch)[1] if mode == "forward" else 0
        if passes > MAX_PASSES:
            too_long[name] = f"'{label}' ({passes:,} passes)"
    if too_long:
        raise _too_long(too_long, modes, leave_out, early=True)
    with running(f"differentiating {title} failed"):
        prediction = predict(f, x)
    for name, (label, mode, batch) in zip(modes, _rows(modes)):
        # auto runs the cheaper order, and jit records its first call as auto does; sparse pushes at most as many
        # seeds as the cheaper order (and often far fewer), priced by its plan where that is not enough
        orders = (mode,) if mode in ("forward", "reverse") else ("forward", "reverse")
        order = min(orders, key=lambda o: prediction.total(o, batch).total())
        passes, work = prediction.schedule(order, batch)[1], prediction.total(order, batch).total()
        if (passes > MAX_PASSES or work > MAX_FLOPS) and mode == "jit":
            passes, work = _first_call(f, x, prediction, passes, work)
        if (passes > MAX_PASSES or work > MAX_FLOPS) and mode == "sparse":
            passes, work = _sparse_call(f, x, prediction)
        if passes > MAX_PASSES or work > MAX_FLOPS:
            too_long[name] = f"'{label}' ({passes:,} pass{'es' if passes != 1 else ''}, {work:.2g} FLOPs)"
    if too_long:
        raise _too_long(too_long, modes, leave_out)
    return prediction


def _too_long(too_long: dict, modes, leave_out: bool, early: bool = False) -> UsageError:
    """The refusal of the rows `too_long` (name -> description), naming the --modes without them (priced
    once f is traced, when the refusal comes `early`, from x's size alone)."""
    kept = ",".join(m for m in modes if m not in too_long)
    priced = " (whose cost is priced once f is traced, which at this size takes a while)" if early else ""
    instead = (f"leave {'them' if len(too_long) > 1 else 'it'} out with --modes {kept}{priced}, or "
               if kept and leave_out else "")
    *others, last = too_long.values()
    rows = f"{', '.join(others)} and {last}" if others else last
    return UsageError(f"the row{'s' if len(too_long) > 1 else ''} {rows} would take too long to wait for; "
                      f"{instead}choose a smaller size")


def _first_call(f, x, prediction, passes: int, work: float) -> tuple[int, float]:
    """(passes, FLOPs) of jit's first call: compressed seeds where it records them instead of the dense
    order (`passes` and `work`), one pass of them."""
    from ..compiled import first_call_seeds

    with running("differentiating f failed"):
        compressed = first_call_seeds(f, x)
    if compressed is None:
        return passes, work
    mode, seeds = compressed
    derivative = prediction.tangent if mode == "forward" else prediction.cotangent
    return 1, (prediction.primal + prediction.staging + derivative.over(1, seeds)).total()


def _sparse_call(f, x, prediction) -> tuple[int, float]:
    """(passes, FLOPs) of the sparse row: the seeds of its plan, a pass of each order it takes. A pattern the
    tape's structure shows dense is not read (at n = 12,000 reading it took 15 s and 6.8 GB, to refuse the row):
    its plan is the cheaper dense order's one-hot seeds, as best_plan colors it (forward on a tie)."""
    from ..compressed import best_plan, color_count, dense_plan
    from ..sparsity import dense, recorded, recorded_pattern

    m, n = prediction.m, prediction.n
    with running("differentiating f failed"):
        pullback, _ = recorded(f, x)
        if dense(pullback):
            plan = dense_plan(m, n)
        else:
            plan = best_plan(recorded_pattern(pullback, m))[1]
    work, passes = prediction.primal + prediction.staging, 0
    for colors, derivative in ((plan.columns, prediction.tangent), (plan.rows, prediction.cotangent)):
        seeds = 0 if colors is None else color_count(colors)
        if seeds:
            work, passes = work + derivative.over(1, seeds), passes + 1
    return passes, work.total()


# Reading a sparsity pattern takes about 80 ns an entry (sorts and gathers of int64 keys), as long as some 100 FLOPs:
# a pattern of more entries would keep sparsity busy as long as a row of MAX_FLOPS keeps compare.
MAX_PATTERN_ENTRIES = MAX_FLOPS / 100


def refuse_dense_pattern(args, title: str, pullback, m: int, x) -> None:
    """Refuse, before it is read, a pattern the tape's structure shows dense (every output on every input: all
    m x n entries) that would take more memory than the budget to work out, or too long. Other patterns are
    refused while they are read, by a dependency matrix over the budget, before it is built."""
    from ..memory import budget, readable
    from ..sparsity import dense, pattern_bytes

    if not dense(pullback):
        return
    n = input_size(x)
    needed, limit = pattern_bytes(m * n), budget()
    if needed > limit:
        why = f"takes {readable(needed)} to work out, over the memory budget of {readable(limit)}"
    elif m * n > MAX_PATTERN_ENTRIES:
        why = "would take too long to wait for"
    else:
        return
    raise UsageError(f"every output of {title} depends on every input: its {m:,} x {n:,} sparsity pattern "
                     f"({m * n:,} entries) {why}; {smaller_sizes(args)}")


def smaller_sizes(args) -> str:
    """What to shrink after running out of memory: the size options given, which are the ones that apply."""
    if getattr(args, "x_file", None) is not None:
        return f"try a smaller input than --x-file {args.x_file!r}"
    given = [flag for flag, name in (("--n", "n"), ("--m", "m"), ("--shape", "shape"))
             if getattr(args, name, None) is not None]
    if given:
        return f"try smaller sizes ({', '.join(given)})"
    defaults = {"chain": "try smaller widths", "report": "try fewer problems (--problems)"}
    return defaults.get(args.command, "try smaller sizes (--n, --m)")  # a built-in problem at its default size
