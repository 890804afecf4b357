"""A self-contained HTML (and Markdown) report on the built-in problems.

:func:`build_report` compares every accumulation order of each problem at a
small size, sweeps forward and reverse mode over n and m, and writes

* ``index.html``: tables and figures, no external CSS, JavaScript, fonts or
  network access; figures are PNG files in ``figures/`` next to it, or also
  embedded as base64 with ``embed=True``;
* ``report.md``: the same tables and figures in Markdown;
* ``data.json``: every comparison and sweep as data.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import os
import platform
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from . import plots
from . import problems as _problems
from .compare import cell, compare, json_text, ratios_text
from .compressed import coloring, fewer_seeds
from .sparsity import sparsity
from .sweep import accepted, sizes_taken, sweep

__all__ = ["DEFAULT_GRID", "DEFAULT_SIZES", "build_report"]

# Small enough that the whole report takes seconds, large enough that the winners show.
DEFAULT_SIZES: dict[str, dict[str, int]] = {
    "seed": {"n": 300},
    "mlp_loss": {"n": 440},
    "curve": {"m": 300},
    "dense": {"n": 100},
    "bratu": {"n": 200},
    "wide_to_tall": {"n": 200, "m": 30},
    "tall_to_wide": {"n": 10, "m": 30},
}
DEFAULT_GRID: tuple[int, ...] = (10, 30, 100, 300, 1000)

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 1.5rem 2rem 4rem; color: #1d232a; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #dde3ea; padding-bottom: .25rem; margin-top: 2.6rem; }
h3 { margin-top: 1.6rem; }
.meta, .caption { color: #5a6672; font-size: .9rem; }
.verdict { background: #eef6ee; border-left: 4px solid #2ca02c; padding: .5rem .8rem; }
.why { background: #f4f6f9; border-left: 4px solid #8aa0b6; padding: .5rem .8rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0 1rem; }
th, td { border: 1px solid #d5dbe1; padding: .25rem .5rem; }
th { background: #f0f3f6; text-align: center; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #eef6ee; font-weight: 600; }
figure { margin: 1rem 0 1.8rem; } figure img { max-width: 100%; height: auto; border: 1px solid #e3e8ed; }
figcaption { color: #5a6672; font-size: .88rem; margin-top: .3rem; }
nav a { margin-right: .8rem; } code { background: #f0f3f6; padding: 0 .2rem; border-radius: 3px; }
"""


class _Doc:
    """Accumulates the HTML and the Markdown side by side."""

    def __init__(self, figures: Path, embed: bool):
        self.figures, self.embed = figures, embed  # the folder the figures are saved in until the report is done
        self.html: list[str] = []
        self.md: list[str] = []

    def heading(self, level: int, text: str, anchor: str | None = None) -> None:
        ident = f' id="{html.escape(anchor)}"' if anchor else ""
        self.html.append(f"<h{level}{ident}>{html.escape(text)}</h{level}>")
        self.md.append(f"\n{'#' * level} {text}\n")

    def para(self, text: str, cls: str | None = None) -> None:
        klass = f' class="{cls}"' if cls else ""
        # `code` as in the Markdown: a command to type reads as code, not between backticks
        body = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
        self.html.append(f"<p{klass}>{body}</p>")
        self.md.append(("> " if cls in ("verdict", "why") else "") + text + "\n")

    def table(self, rows: Sequence[Mapping], highlight: int | None = None) -> None:
        if not rows:
            return
        keys = list(rows[0])
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
        body = []
        for i, row in enumerate(rows):
            cells = "".join(f'<td class="{"" if isinstance(row[k], str) else "num"}">{html.escape(cell(row[k]))}</td>'
                            for k in keys)
            body.append(f'<tr{" class=best" if i == highlight else ""}>{cells}</tr>')
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        self.md.append("| " + " | ".join(str(k).replace("|", "\\|") for k in keys) + " |")
        self.md.append("|" + "|".join("---" if isinstance(rows[0][k], str) else "---:" for k in keys) + "|")
        for i, row in enumerate(rows):
            cells = [cell(row[k]).replace("|", "\\|") for k in keys]
            if i == highlight:
                cells = [f"**{c}**" for c in cells]
            self.md.append("| " + " | ".join(cells) + " |")
        self.md.append("")

    def figure(self, fig, name: str, caption: str) -> None:
        path = plots.save(fig, self.figures / f"{name}.png", dpi=100)
        rel = f"figures/{path.name}"
        src = ("data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")) if self.embed else rel
        width, height = (round(v * 100) for v in fig.get_size_inches())
        self.html.append(f'<figure><img src="{src}" alt="{html.escape(caption)}" width="{width}" '
                         f'height="{height}"><figcaption>{html.escape(caption)}</figcaption></figure>')
        self.md.append(f"![{caption}]({rel})\n\n*{caption}*\n")


#: The files a report writes beside figures/, in the order they are put in place (index.html, which links the
#: rest, last)
TEXTS = ("data.json", "report.md", "index.html")


def _report_figures(folder: Path) -> list[Path]:
    """The figures in `folder` that a report writes (`_write_overview`, `_write_problem`): a rebuild
    replaces them, and leaves any other file there alone."""
    names = [f"overview_{kind}" for kind in ("cheap_gradient", "time_vs_flops", "memory")]
    names += [f"{p}_{kind}" for p in _problems.names() for kind in ("phases", "sweep_n", "sweep_m", "pattern")]
    return [folder / f"{name}.png" for name in names if (folder / f"{name}.png").exists()]


def build_report(out_dir, problems: Sequence[str] | None = None,
                 sizes: Mapping[str, Mapping[str, int]] | None = None, grid: Sequence[int] = DEFAULT_GRID,
                 repeat: int = 3, embed: bool = False,
                 progress: Callable[[int, int, str], None] | None = None) -> Path:
    """Write ``index.html``, ``report.md``, ``data.json`` and ``figures/`` into `out_dir`; return index.html.

    `problems` are built-in names (default: all; a repeated name counts once). `sizes` maps a problem to
    the ``n``/``m`` of its comparison (default :data:`DEFAULT_SIZES`); each
    problem is also swept over `grid` along every size it takes, the other
    size held at its comparison value. `repeat` timed runs per measurement;
    `embed` also puts the figures into index.html as base64. The default
    report takes seconds on two cores. `progress(done, total, label)` is
    called as the work advances. Files in `out_dir` change only once the
    whole report is written: stopped before, the earlier report stays whole.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     index = build_report(d, problems=["seed"], sizes={"seed": {"n": 20}}, grid=(10, 20), repeat=1)
    ...     index.name, (index.parent / "report.md").exists(), len(list((index.parent / "figures").glob("*.png")))
    ('index.html', True, 5)
    """
    # a repeated name would be measured again and written twice under one anchor: keep its first place
    names = _problems.chosen(problems) if problems is not None else _problems.names()
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    out = Path(out_dir)
    conflict = path_conflict(out)
    if conflict:
        raise FileExistsError(f"{conflict}; move it or choose another out_dir")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    plan = []
    for name in names:
        plan.append((name, "compare", None))
        for param in sizes_taken(name):
            plan.append((name, "sweep", param))
    total, done = len(plan) + 1, 0

    def tick(label):
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, label)

    comparisons, sweeps, built = {}, {}, {}
    for name, kind, param in plan:
        size = dict(sizes.get(name, {}))
        if kind == "compare":
            problem = _problems.get(name, **size)
            built[name] = problem
            comparisons[name] = compare(problem.f, problem.x, repeat=repeat)
            tick(f"{name}: compare")
        else:
            other = {k: v for k, v in size.items() if k != param}
            values = accepted(name, param, grid, other)  # mlp_loss: n >= 22
            fixed = {k: v for k, v in other.items() if k in sizes_taken(name)}
            if len(values) >= 2:
                sweeps[(name, param)] = sweep(name, **{param: values}, **{k: [v] for k, v in fixed.items()},
                                              repeat=repeat)
            tick(f"{name}: sweep over {param}")

    data = {
        "problems": {name: {"summary": built[name].summary, "winner": built[name].winner,
                            "comparison": comparisons[name].to_dict(),
                            "sweeps": [sweeps[(name, p)].to_dict() for p in ("n", "m") if (name, p) in sweeps]}
                     for name in names},
    }
    # Written into folders beside the files they replace (the same file system, wherever figures/ links to),
    # then moved into place: stopped before that (Ctrl-C, a full disk), the report there is the earlier one.
    with tempfile.TemporaryDirectory(dir=out, prefix=".report-") as texts, \
            tempfile.TemporaryDirectory(dir=out / "figures", prefix=".report-") as figures:
        doc = _Doc(Path(figures), embed)
        _write_header(doc, names, comparisons, built, repeat, grid)
        _write_overview(doc, comparisons)
        for name in names:
            _write_problem(doc, name, built[name], comparisons[name],
                           [sweeps[(name, p)] for p in ("n", "m") if (name, p) in sweeps])
        _write_footer(doc)
        tick("writing files")
        staged = Path(texts)
        (staged / "data.json").write_text(json_text(data, indent=1), encoding="utf-8")
        (staged / "report.md").write_text("\n".join(doc.md).lstrip() + "\n", encoding="utf-8")
        (staged / "index.html").write_text(_page(doc), encoding="utf-8")
        _publish(staged, doc.figures, out)
    return out / "index.html"


def path_conflict(out: Path) -> str | None:
    """What in `out` stands where the report writes (a folder named index.html, a file named figures), or None.
    A link into a folder the user may not look into counts as absent: the report replaces it.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (Path(d) / "figures").touch()
    ...     path_conflict(Path(d)).endswith("is a file, where the report writes its figures")
    True
    """
    for name in (*TEXTS, "figures"):
        path, folder = out / name, name == "figures"
        if os.path.exists(path) and path.is_dir() != folder:
            return f"{str(path)!r} is a {'file' if folder else 'folder'}, where the report writes its {name}"
    return None


def _publish(texts: Path, figures: Path, out: Path) -> None:
    """Move the report's files into `out`: its figures (then an earlier report's of problems not in this one
    removed), then its texts, index.html last."""
    new = {figure.name for figure in figures.glob("*.png")}
    for name in new:
        os.replace(figures / name, out / "figures" / name)
    for old in _report_figures(out / "figures"):
        if old.name not in new:
            old.unlink()
    for name in TEXTS:
        os.replace(texts / name, out / name)


def _page(doc: _Doc) -> str:
    body = "\n".join(doc.html)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jacobian_lab report: forward vs reverse accumulation</title>
<link rel="icon" href="data:,">
<style>{_STYLE}</style>
</head>
<body>
{body}
</body>
</html>
"""


def _runs(repeat: int) -> str:
    return f"medians of {repeat} runs" if repeat > 1 else "from one run"


def _write_header(doc, names, comparisons, built, repeat, grid) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("jacobian-lab")
    except PackageNotFoundError:
        ours = "unknown"
    doc.heading(1, "jacobian_lab report: forward vs reverse accumulation")
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    doc.para(f"Generated {stamp} by jacobian-lab {ours} (Python {platform.python_version()}, "
             f"NumPy {np.__version__}, {platform.machine()}). FLOPs are exact counts of the primitives that ran; "
             f"transcendentals are weighted 1 in totals. Times are {_runs(repeat)}. Sweeps use the "
             f"sizes {', '.join(map(str, grid))}, those a problem takes, as it builds them (mlp_loss's n counts "
             "whole hidden units of 22 parameters: 30 is 22). The problems "
             "run at " + ", ".join(f"{name} {_size_text(name, comparisons[name].prediction)}" for name in names)
             + ", chosen for a report that takes seconds; `jacobian-lab compare PROBLEM` with those sizes (`--n N`, "
             "and `--m M` where a problem takes one) reproduces each, its defaults differ.", "meta")
    links = " ".join(f'<a href="#{html.escape(n)}">{html.escape(n)}</a>' for n in names)
    doc.html.append(f"<nav>Problems: {links} <a href=\"#overview\">overview figures</a></nav>")
    doc.heading(2, "Summary", "summary")
    rows = []
    for name in names:
        c, p = comparisons[name], built[name]
        fwd = c.prediction.total("forward").total()
        rev = c.prediction.total("reverse").total()
        # the expected winner is an order: beside it the cheaper order, then the cheapest row of any mode
        order = "forward" if fwd < rev else "reverse" if rev < fwd else "tie"
        rows.append({"problem": name, "n": c.prediction.n, "m": c.prediction.m, "expected": p.winner,
                     "cheaper order": order, "cheapest row": c.best.label or c.best.mode,
                     "forward total": fwd, "reverse total": rev, "fwd/rev": fwd / max(rev, 1.0)})
    doc.table(rows)


def _size_text(name, prediction) -> str:
    """"n = 300" or "n = 200, m = 30": the sizes a problem takes, as it ran."""
    ran = {"n": prediction.n, "m": prediction.m}
    return ", ".join(f"{size} = {ran[size]}" for size in sizes_taken(name))


def _write_overview(doc, comparisons) -> None:
    doc.heading(2, "Overview", "overview")
    preds = {name: c.prediction for name, c in comparisons.items()}
    doc.figure(plots.cheap_gradient(preds), "overview_cheap_gradient",
               "Cheap-gradient ratios: the work of f plus one JVP (forward) or one VJP (reverse) over the work "
               "of f, per problem, against the reference ω = 3.")
    doc.figure(plots.time_vs_flops(comparisons), "overview_time_vs_flops",
               "Measured wall time against counted FLOPs for every mode of every problem (log-log); dotted lines "
               "are constant throughput.")
    doc.figure(plots.memory_bars(comparisons), "overview_memory",
               "Traced peak memory of one Jacobian per mode; hatched: the residuals the reverse tape keeps.")


def _write_problem(doc, name, problem, comparison, sweep_results) -> None:
    doc.heading(2, f"{name}", name)
    doc.para(problem.summary)
    doc.para(f"Expected: {problem.winner}. {problem.why}", "why")
    rows = comparison.rows()
    best = comparison.best
    highlight = next((i for i, m in enumerate(comparison.measurements) if m is best), None)
    doc.heading(3, "Every accumulation order")
    doc.table(rows, highlight)
    ratios = ratios_text(comparison.prediction)
    doc.para(ratios[0].upper() + ratios[1:] + ".", "caption")
    doc.para(f"Verdict: {comparison.verdict()}", "verdict")
    doc.figure(plots.phase_bars(comparison, title=name), f"{name}_phases",
               f"{name}: counted FLOPs by phase (primal, tangent, cotangent) side by side for each accumulation "
               "order, log scale, with the total above.")
    _write_pattern(doc, name, problem, comparison)
    for result in sweep_results:
        axis = result.axis
        doc.heading(3, f"Cost vs {axis}")
        doc.table(result.rows())
        for line in result.describe_crossovers():
            doc.para(line, "caption")
        doc.figure(plots.sweep_plot(result), f"{name}_sweep_{axis}",
                   f"{name}: exact FLOPs and measured time of forward (vector) and reverse (batched) mode "
                   f"against {axis}, log-log, with the crossover.")


def _write_pattern(doc, name, problem, comparison) -> None:
    """The sparsity pattern and its coloring, for a Jacobian that compressed seeds shrink."""
    pattern = sparsity(problem.f, problem.x)
    planned = fewer_seeds(pattern)
    if planned is None:
        return
    mode, seeding = planned
    dense = min(x.total.total() for x in comparison.measurements if not (x.compressed or x.compiled))
    sparse = next((x for x in comparison.measurements if x.compressed), None)
    doc.heading(3, "Sparsity pattern")
    doc.para(f"{pattern.nnz:,} of {pattern.shape[0] * pattern.shape[1]:,} entries: {seeding.seeds} seeds in "
             f"{mode} mode instead of {min(pattern.shape):,}"
             + (f"; {sparse.total.total():,.0f} counted FLOPs against {dense:,.0f} for the cheaper eager dense order."
                if sparse is not None else "."), "caption")
    doc.figure(plots.pattern_colors(pattern, coloring(pattern), title=name), f"{name}_pattern",
               f"{name}: the Jacobian's sparsity pattern, each entry in its column's color; one tangent seed "
               "per color gives every entry (ten hues, repeating).")


def _write_footer(doc) -> None:
    doc.heading(2, "How to read this", "notes")
    doc.para("Forward mode builds the Jacobian column by column: one JVP per input, n tangent seeds, pushed one "
             "per pass or k per pass (vector mode). Reverse mode builds it row by row: one VJP per output, from "
             "one recorded tape, m cotangent seeds per sweep. Counted FLOPs follow the project's conventions: "
             "elementwise arithmetic costs one FLOP per output element, a transcendental one transcendental, "
             "a matmul 2mkn, a reduction over L elements L - 1.")
    doc.para("The sparse row (jl.sparse_jacobian) reads which outputs depend on which inputs from the tape, "
             "colors the columns (or rows) so that no two of one color share a row (column), and pushes one "
             "seed per color: a banded Jacobian (a tridiagonal one, as the bratu problem's) takes as many seeds "
             "as its band is wide. "
             "The jit row replays a compiled program of the Jacobian.")
    doc.para("The cheap-gradient principle puts the cost of one derivative pass at a small multiple of f's "
             "(Griewank & Walther's ω = 3 for arithmetic operations; Baydin et al., JMLR 2018, quote c < 6 and "
             "2-3 in practice). Here a transcendental counts once in f while its derivative takes more work, so "
             "a ratio can pass 3. The full Jacobian then costs about n such passes forward or m reverse, which "
             "is what the sweeps show.")
