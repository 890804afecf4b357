"""measure() and compare(): what each accumulation order really cost, side by side."""
from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .accounting import PHASES, Cost, counted
from .bracketing import ratio_text
from .compiled import jit
from .program import CompressedProgram
from .compressed import SparseJacobian
from .jacobian import jacobian
from .harness import prepare
from .peak_memory import traced_peak
from .prediction import Prediction, choose_order, predict
from .rules.sparse import is_sparse

# Each row of a comparison: (label, mode, batch_size); batch None = memory-bounded vector mode.
DEFAULT_MODES = ("forward-1", "forward", "reverse-1", "reverse", "auto", "jit", "sparse")
_ROWS = {
    "forward-1": ("forward, 1 seed/pass", "forward", 1),
    "forward": ("forward, vector", "forward", None),
    "reverse-1": ("reverse, 1 seed/sweep", "reverse", 1),
    "reverse": ("reverse, batched", "reverse", None),
    "auto": ("auto", "auto", None),
    "jit": ("jit", "jit", None),
    "sparse": ("sparse", "sparse", None),
}


@dataclass
class Measurement:
    """One Jacobian computation: its result, counted work per phase, time and memory.

    ``cost`` maps each phase ("primal", "tangent", "cotangent") to its counted
    `Cost`; ``passes`` counts forward passes or reverse sweeps; ``peak_bytes``
    and ``tape_bytes`` are the largest working set and residual tape. ``label``
    is the row's name in a comparison ("forward, 1 seed/pass"), ``reason`` why
    auto mode chose its order, ``compiled`` whether it replayed a `jit`
    program, ``compressed`` whether it was a `sparse_jacobian` (whose
    ``jacobian`` is then its `scipy.sparse.csr_array`, not made dense).

    >>> import numpy as np, jacobian_lab as jl
    >>> m = jl.measure(lambda x: np.sum(x ** 2), np.ones(3), mode="reverse")
    >>> m.passes, m.total == sum(m.cost.values(), jl.Cost())
    (1, True)
    """

    jacobian: np.ndarray = field(repr=False)
    mode: str
    batch_size: int
    passes: int
    cost: dict[str, Cost]
    seconds: float
    peak_bytes: int
    tape_bytes: int
    label: str = ""
    reason: str = ""
    compiled: bool = False  # a replay of a `jit` program: its work, not the engines'
    compressed: bool = False  # a `sparse_jacobian`: one seed per color of the pattern

    @property
    def total(self) -> Cost:
        """The counted work of every phase together."""
        return sum(self.cost.values(), Cost())

    def to_dict(self) -> dict:
        """The measurement as a JSON-ready dict (without the Jacobian): what ``--json`` writes per row."""
        return {
            "label": self.label, "mode": self.mode, "batch_size": self.batch_size, "passes": self.passes,
            "cost": {p: c.to_dict() for p, c in self.cost.items()}, "total": self.total.to_dict(),
            "seconds": self.seconds, "peak_bytes": self.peak_bytes, "tape_bytes": self.tape_bytes,
            "reason": self.reason, "compiled": self.compiled, "compressed": self.compressed,
        }


#: A timed sample repeats a shorter run until it lasts this long, as timeit's autorange does: one run of a
#: 50 µs Jacobian is a single timer reading, which one scheduler hiccup can make a 28 ms outlier.
SAMPLE_SECONDS = 0.005


def _timed(fn, repeat: int) -> float:
    """The median seconds per run of `repeat` samples, each as many runs as fill `SAMPLE_SECONDS`
    (one run when one takes that long: then the run that sized the samples is the first sample)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    runs = min(10_000, math.ceil(SAMPLE_SECONDS / max(first, 1e-9)))
    times = [first] if runs == 1 else []
    while len(times) < repeat:
        start = time.perf_counter()
        for _ in range(runs):
            fn()
        times.append((time.perf_counter() - start) / runs)
    return statistics.median(times)


def measure(f: Callable, x, mode: str = "reverse", batch_size=None, repeat: int = 3,
            prediction: Prediction | None = None, max_memory=None, executor=None) -> Measurement:
    """Build the Jacobian of f at x in `mode` and report what it cost.

    Counted work is per phase: "primal" (evaluations of f: one per forward
    pass, one tape for reverse), "tangent" (JVP rules) and "cotangent" (VJP
    rules). `seconds` is the median wall time of `repeat` uncounted samples
    (a sample repeats a run shorter than 5 ms until it lasts 5 ms, and takes
    the mean, as timeit does);
    `peak_bytes` the traced peak of one run; `tape_bytes` the residuals the
    reverse tape holds. mode="auto" measures ``jacobian(f, x, mode="auto")``
    itself, as it runs: the order it picks, on the tape it records (a forward
    order replays that tape, so f is evaluated once and the passes are sized
    to `max_memory` before any runs), reported with the reason. It counts a
    repeated call, as `Prediction.cost("auto")` predicts and the timed runs
    are: the order is chosen before the counted call, which finds the choice
    remembered, so the probes that a first call at a tape not seen before
    runs to predict it (and counts) are not part of the count. (A tape whose
    signature cannot be hashed is probed on every call, the counted one too.)
    mode="jit"
    compiles ``jl.jit(jl.jacobian(f))`` first and measures its replays.
    A `prediction` given (auto mode's reason reads it) must be of this f and x,
    in every mode.
    mode="sparse" measures `sparse_jacobian` (its pattern read on every call,
    its coloring kept from the counted run), with `jacobian` as a dense array
    of shape (m, n). A structured x or output is measured flattened:
    `jacobian` then has shape (m, n). `executor` runs the passes of forward,
    reverse and auto mode (see `jacobian`); "jit" and "sparse" run in the caller.
    In every mode but "jit" and "sparse" the counted cost equals
    ``prediction.cost(mode, batch_size, max_memory)`` ("auto": the order it
    picks, f evaluated once), except in forward mode when its passes may not
    fit `max_memory`: without a tape, the first pass may stop part way and be
    retried with fewer seeds, and that work is counted too (`Prediction.exact`
    tells which case this is), and with an `executor`, which the prediction
    does not model: a process pool's or Dask's workers evaluate f again for
    each pass (a reverse sweep records its own tape), and each worker holds a
    share of `max_memory`, so a pass over it runs again in the caller.

    >>> import numpy as np, jacobian_lab as jl
    >>> m = jl.measure(lambda x: np.sum(np.sin(np.exp(x ** 2))), np.ones(1000), mode="reverse")
    >>> m.passes, m.cost["primal"], m.cost["cotangent"]
    (1, Cost(flops=1999, transcendentals=2000), Cost(flops=4000, transcendentals=1000))
    """
    f, x = prepare(f, x)
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or repeat < 1:
        raise ValueError(f"repeat must be a positive integer, got {repeat!r}")
    reason = ""
    if prediction is not None:  # refused in every mode, though only auto's reason reads it
        prediction = _fitting(prediction, x.size)
    if mode in ("jit", "sparse"):
        measured = (_measure_compiled(f, x, batch_size, repeat, max_memory) if mode == "jit"
                    else _measure_compressed(f, x, batch_size, repeat))
        if prediction is not None:
            _fitting(prediction, x.size, _rows_of(measured.jacobian, x))
        return measured
    if mode == "auto":
        prediction = predict(f, x) if prediction is None else prediction
        # Decided outside the count, as auto mode decides: the counted call finds the choice remembered, whether
        # or not an auto call at this tape came before.
        chosen = choose_order(f, x, batch_size, max_memory)[0]
        reason = prediction.choose(batch_size, max_memory)[1]
    elif mode in ("forward", "reverse"):
        chosen = mode
    else:
        raise ValueError(f"mode must be 'forward', 'reverse', 'auto', 'jit' or 'sparse', got {mode!r}")
    # Auto mode is run as itself: jacobian(f, x, chosen) would have no tape to size and replay its passes on.
    run = lambda: jacobian(f, x, mode, batch_size, max_memory=max_memory, executor=executor)  # noqa: E731
    J, counter, peak = _counted(run)
    if prediction is not None:
        _fitting(prediction, x.size, _rows_of(J, x))
    seconds = _timed(run, repeat)
    return Measurement(J, chosen, counter.batch_size, counter.passes, counter.costs(), seconds, peak,
                       counter.tape_bytes, reason=reason)


def _fitting(prediction: Prediction, n: int, m: int | None = None) -> Prediction:
    """`prediction`, refused unless it is of a Jacobian with n columns (and m rows): one made for another
    f or x would put its figures beside these measurements."""
    if not isinstance(prediction, Prediction):
        raise TypeError(f"prediction must be what jl.predict(f, x) returns, got {type(prediction).__name__}")
    if prediction.n != n or m is not None and prediction.m != m:
        here = f"x has {n} entries" if prediction.n != n else f"f's at this x is {m}x{n}"
        raise ValueError(f"prediction is of a {prediction.m}x{prediction.n} Jacobian, where {here}: pass "
                         "jl.predict(f, x) of this f and x, or leave prediction out")
    return prediction


def _rows_of(J, x) -> int | None:
    """The Jacobian's rows, m, read from its size (None where x is empty: J is then too)."""
    if is_sparse(J):  # its size is its stored entries'
        return J.shape[0]
    return np.size(J) // x.size if x.size else None


def _counted(run):
    """(result, Counter, traced peak bytes) of one run."""
    (result, peak), counter = counted(traced_peak, run)
    return result, counter, peak


def _measure_compiled(f, x, batch_size, repeat, max_memory) -> Measurement:
    """A replay of ``jit(jacobian(f))``, compiled beforehand: the work and time of the program alone."""
    jitted = jit(jacobian(f, mode="auto", batch_size=batch_size, max_memory=max_memory))
    program = jitted.program(x)
    J, counter, peak = _counted(lambda: jitted(x))
    seeds = f" of {counter.batch_size} compressed seeds" if isinstance(program, CompressedProgram) else ""
    reason = (f"compiled: the {program.mode} program{seeds}, {len(program.equations)} operations, "
              f"{program.constant_bytes:,} bytes of constants")
    return Measurement(J, program.mode, counter.batch_size, counter.passes, counter.costs(),
                       _timed(lambda: jitted(x), repeat), peak, 0, reason=reason, compiled=True,
                       label=f"jit -> sparse {program.mode}" if seeds else "")


def _measure_compressed(f, x, batch_size, repeat) -> Measurement:
    """`sparse_jacobian`: the pattern read from the tape, its entries from the plan with the fewest seeds."""
    import scipy.sparse  # noqa: F401 - imported before the count: the traced peak is the Jacobian's, not the module's
    jac = SparseJacobian(f, "auto", batch_size)
    J, counter, peak = _counted(lambda: jac(x))
    reason = (f"compressed: {jac.seeds} seed{'s' * (jac.seeds != 1)} for the {J.shape[0]}x{J.shape[1]} pattern "
              f"({J.nnz:,} entries) in {jac.chosen} mode")
    return Measurement(J, jac.chosen, counter.batch_size, counter.passes, counter.costs(),
                       _timed(lambda: jac(x), repeat), peak, counter.tape_bytes, reason=reason, compressed=True)


@dataclass
class Comparison:
    """Measurements of several accumulation orders of one Jacobian, plus the prediction."""

    measurements: list[Measurement]
    prediction: Prediction

    @property
    def best(self) -> Measurement:
        """The measurement with the fewest FLOPs (transcendentals weighted 1); ties: fastest."""
        return min(self.measurements, key=lambda m: (m.total.total(), m.seconds))

    def max_abs_diff(self, measurement: Measurement) -> float:
        """The largest |J - J_ref| over the entries, J_ref the first row's Jacobian; equal entries count 0.

        NaN-aware: an entry NaN in both (or the same infinity) is equal, so a
        function whose Jacobian holds NaNs compares as any other; an entry NaN
        in one Jacobian only counts as inf, since no tolerance makes the two agree.

        >>> import numpy as np, jacobian_lab as jl
        >>> c = jl.compare(np.sin, np.array([np.nan]), modes=["forward", "reverse"], repeat=1)
        >>> [c.max_abs_diff(m) for m in c.measurements]
        [0.0, 0.0]
        """
        reference, J = self.measurements[0].jacobian, measurement.jacobian
        if is_sparse(reference) and is_sparse(J):  # compared where either stores an entry, kept sparse
            reference, J = reference.tocsr(), J.tocsr()
            rows, cols = ((abs(reference) + abs(J)) != 0).nonzero()  # (a NaN is not 0: it stays)
            if not len(rows):
                return 0.0
            reference, J = (np.asarray(M[rows, cols]).ravel() for M in (reference, J))
        else:
            reference, J = (M.toarray() if is_sparse(M) else M for M in (reference, J))
            reference = np.atleast_1d(reference)  # a 0-d one (scalar f of a scalar) too
            J = np.reshape(J, reference.shape)  # a sparse row's is (m, n)
        with np.errstate(invalid="ignore"):  # inf - inf: equal infinities are taken out below
            diff = np.abs(J - reference)
        diff[(J == reference) | (np.isnan(J) & np.isnan(reference))] = 0.0
        diff[np.isnan(diff)] = np.inf  # NaN on one side only
        return float(np.max(diff, initial=0.0))

    def verdict(self) -> str:
        """One line: which order wins, by how much in counted work (FLOPs + transcendentals, the table's total)
        and in measured time."""
        by_mode = {}
        for m in self.measurements:
            if m.compiled or m.compressed:  # the verdict compares the two dense orders as the engines run them
                continue
            best = by_mode.get(m.mode)  # the fewest FLOPs; of rows with as many (1 seed or batched), the fastest
            if best is None or (m.total.total(), m.seconds) < (best.total.total(), best.seconds):
                by_mode[m.mode] = m
        shape = f"{self.prediction.m}x{self.prediction.n} Jacobian"
        if len(by_mode) < 2:  # the verdict compares the orders: say which rows would give one
            measured = f"only {next(iter(by_mode))} mode was" if by_mode else "no forward or reverse row was"
            return f"{measured} measured for this {shape}; add forward and reverse rows to compare the orders"
        fwd, rev = by_mode["forward"], by_mode["reverse"]
        if max(fwd.total.total(), rev.total.total()) == 0:  # a ratio of nothing to nothing says nothing
            return self._no_work(shape)
        win, lose = (fwd, rev) if fwd.total.total() <= rev.total.total() else (rev, fwd)
        flops = lose.total.total() / max(win.total.total(), 1.0)
        speed = lose.seconds / max(win.seconds, 1e-12)
        if flops == 1:  # no FLOP winner: the faster order is named
            faster = win.mode if speed >= 1 else lose.mode
            verdict = (f"forward and reverse cost the same FLOPs + transcendentals for this {shape}; {faster} measured "
                       f"{ratio_text(max(speed, 1 / speed))}x faster")
        else:
            timing = (f"measured {ratio_text(speed)}x faster" if speed >= 1
                      else f"but measured {ratio_text(1 / speed)}x slower")
            verdict = (f"{win.mode} is {ratio_text(flops)}x cheaper in FLOPs + transcendentals for this {shape}; "
                       f"{timing}")
        sparse = min((m for m in self.measurements if m.compressed), key=lambda m: m.total.total(), default=None)
        if sparse is not None and sparse.total.total() < win.total.total():
            fewer = ratio_text(win.total.total() / sparse.total.total())
            verdict += (f"; compressed seeds (the sparse row) need {fewer}x fewer FLOPs + transcendentals than "
                        f"{win.mode}")
        return verdict

    def _no_work(self, shape: str) -> str:
        """The verdict when neither order computes anything: nothing to rank, and timings of overhead alone."""
        if self.prediction.m * self.prediction.n == 0:
            return f"forward and reverse do no derivative work: this {shape} has no entries"
        return (f"forward and reverse do no derivative work for this {shape}: f only moves or drops x's "
                "values, so there is nothing to rank and the times measure overhead alone")

    def rows(self) -> list[dict]:
        """One dict per measurement, the columns of the table: passes, counted work (total/f in evaluations of
        f, transcendentals weighted 1), milliseconds, memory and the largest difference from the reference."""
        f = self.prediction.primal.total()
        out = []
        for m in self.measurements:
            derivative = m.cost["tangent"] + m.cost["cotangent"]
            out.append({
                "mode": m.label or m.mode, "passes": m.passes,
                "primal flops": m.cost["primal"].flops, "primal transc": m.cost["primal"].transcendentals,
                "deriv flops": derivative.flops, "deriv transc": derivative.transcendentals,
                "total": m.total.total(), "total/f": m.total.total() / max(f, 1.0),
                "ms": m.seconds * 1e3, "peak MiB": m.peak_bytes / 2**20, "tape MiB": m.tape_bytes / 2**20,
                "max|dJ|": self.max_abs_diff(m),
            })
        return out

    def rich_table(self):
        """The comparison as a `rich.table.Table` (the CLI prints it in colour)."""
        p = self.prediction
        return rich_rows(
            f"Jacobian of f: R^{p.n} -> R^{p.m}  (one evaluation: {p.primal.flops:,} flops "
            f"+ {p.primal.transcendentals:,} transcendentals)",
            ratios_text(p), self.rows(), text_column="mode",
        )

    def table(self) -> str:
        """Plain-text table of every measurement, the cheap-gradient ratios and the verdict."""
        return plain_text(self.rich_table()) + "\nverdict: " + self.verdict()  # as the command line prints it

    def to_dict(self) -> dict:
        """The comparison as a JSON-ready dict: the prediction, every measurement, the best row and the
        verdict (what ``jacobian-lab compare --json`` prints)."""
        return {
            "n": self.prediction.n, "m": self.prediction.m, "prediction": self.prediction.to_dict(),
            "measurements": [dict(m.to_dict(), max_abs_diff=self.max_abs_diff(m)) for m in self.measurements],
            "best": self.best.label, "verdict": self.verdict(),
        }


def json_text(data, indent: int = 2) -> str:
    """`data` as JSON: NumPy values as Python's, and non-finite numbers as null, as JavaScript's
    JSON.stringify writes them (Python's Infinity and NaN are no JSON, and parsers refuse them).

    >>> json_text({"max_abs_diff": np.float64("inf"), "shape": np.array([2, 3])}, indent=None)
    '{"max_abs_diff": null, "shape": [2, 3]}'
    """
    return json.dumps(_plain(data), indent=indent, allow_nan=False)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rich_rows(title: str, caption: str, rows: list[dict], text_column: str):
    """A `rich.table.Table` of dict rows: numbers right-aligned with thousands separators."""
    from rich.table import Table

    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")  # read as text
    for key in rows[0]:
        table.add_column(key, justify="left" if key == text_column else "right")
    for row in rows:
        table.add_row(*(cell(v) for v in row.values()))
    return table


def plain_text(renderable, width: int = 200) -> str:
    """Render a rich object without colour, for files, pipes and doctests."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    # force_jupyter=False: inside a notebook rich would display the table rather than write it to the buffer
    Console(file=buffer, width=width, color_system=None, force_terminal=False, force_jupyter=False).print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def cell(value) -> str:
    """A table cell: integers with thousands separators, other numbers to three digits (and enough to
    tell a ratio of 1.003 from 1).

    >>> [cell(v) for v in (2030400, 1.003, 0.0216, 1234.5, True, None)]
    ['2,030,400', '1.003', '0.0216', '1,234', 'True', '—']
    """
    if isinstance(value, str):
        return value
    if value is None:  # not measured there
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    value = float(value)
    if value.is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    return ratio_text(value)


def compare(f: Callable, x, modes: Sequence[str] = DEFAULT_MODES, repeat: int = 3, executor=None,
            prediction=None) -> Comparison:
    """Measure f's Jacobian in several accumulation orders and compare them.

    `modes` names the rows, one name or a sequence of them: "forward-1" (one
    tangent seed per pass), "forward" (vector mode), "reverse-1" (one
    cotangent per sweep), "reverse" (batched sweeps), "auto", "jit" (replays
    of ``jl.jit(jl.jacobian(f))``), "sparse" (`sparse_jacobian`: one seed per
    color of the sparsity pattern); or "forward-K"/"reverse-K" for K seeds
    per pass. `executor` runs the passes of the forward, reverse and auto
    rows side by side (see `measure`). `prediction`: ``predict(f, x)``, when
    the caller has it already (one of a Jacobian of another shape is refused).

    >>> import numpy as np, jacobian_lab as jl
    >>> c = jl.compare(lambda x: np.sum(np.sin(np.exp(x ** 2))), np.ones(100), repeat=1)
    >>> c.best.mode
    'reverse'
    """
    rows = _rows(modes)
    f, x = prepare(f, x)
    prediction = predict(f, x) if prediction is None else _fitting(prediction, x.size)
    measurements = []
    for label, mode, batch in rows:
        m = measure(f, x, mode, batch, repeat=repeat, prediction=prediction, executor=executor)
        _fitting(prediction, x.size, _rows_of(m.jacobian, x))
        m.label = label if mode not in ("auto", "jit", "sparse") else m.label or f"{mode} -> {m.mode}"
        if batch not in (None, 1) and m.batch_size < batch:  # forward-100 of 5 inputs pushes 5 seeds a pass
            m.label = f"{mode}, {_seeds(m.batch_size, mode)} (of {batch} asked)"
        measurements.append(m)
    return Comparison(measurements, prediction)


def _rows(modes) -> list[tuple]:
    """Each row's (label, mode, batch), all checked before anything runs; one name is one row."""
    if isinstance(modes, str):  # iterating "reverse" would give the rows "r", "e", ...
        modes = (modes,)
    rows = [mode_row(name) for name in modes]
    if not rows:  # a comparison without a measurement has no best, table or verdict
        raise ValueError(f"modes must name at least one row, e.g. modes={list(DEFAULT_MODES[:4])}")
    return rows


def mode_row(name: str):
    """(label, mode, seeds per pass) of the row a mode name asks for (`_ROWS`, or forward-K /
    reverse-K); a ValueError naming what is wrong with any other name."""
    if name in _ROWS:
        return _ROWS[name]
    mode, _, k = name.partition("-")
    if mode in ("forward", "reverse") and k.lstrip("-").isdigit():
        if int(k) < 1 or k != str(int(k)):
            raise ValueError(f"{name!r}: K in {mode}-K is the number of seeds per {_pass(mode)}, written as an "
                             "integer of at least 1")
        return f"{mode}, {_seeds(int(k), mode)}", mode, int(k)
    raise ValueError(f"unknown mode {name!r}; use one of {', '.join(_ROWS)} or forward-K / reverse-K")


def _pass(mode: str) -> str:
    return "sweep" if mode == "reverse" else "pass"


def _seeds(k: int, mode: str) -> str:
    """"3 seeds/pass", "1 seed/sweep": what a row of k seeds per pass of `mode` pushes."""
    return f"{k} seed{'s' * (k != 1)}/{_pass(mode)}"


__all__ = ["Comparison", "Measurement", "compare", "measure", "PHASES"]


def ratios_text(p) -> str:
    """The cheap-gradient ratios of a `Prediction` p in words, or why f has none (no arithmetic, 0 / 0)."""
    if not p.primal.total():
        return "cheap-gradient ratios: none, as f does no arithmetic (it only moves values)"
    return (f"cheap-gradient ratios OPS(f+JVP)/OPS(f) = {p.jvp_ratio():.2f}, OPS(f+VJP)/OPS(f) = {p.vjp_ratio():.2f} "
            "(a small constant: ω = 3 for arithmetic in Griewank & Walther, under 6 quoted in practice)")
