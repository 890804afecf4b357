"""The ``jacobian-lab`` argument parser: every command's options, help and examples."""
from __future__ import annotations

import argparse
import re

from . import commands
from .errors import EXIT_USAGE, PROG
from .options import nonnegative, parse_size, parse_width, positive
from .targets import DEFAULT_PROBLEM

MODE_NAMES = ("forward-1", "forward", "reverse-1", "reverse", "auto", "jit", "sparse")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line instead of the usage block."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=30)


COMPARE_EPILOG = f"""\
TARGET is a built-in problem (see `{PROG} problems`; default: {DEFAULT_PROBLEM}, n = 1000),
package.module:function, or path/to/file.py:function. A function gets its input
from --shape (random normal values, --seed) or --x-file (.npy, .txt, .csv, or .npz:
one array, or several that f receives as a dict by name).

examples:
  {PROG} compare                                  # the seed problem, R^1000 -> R
  {PROG} compare curve --m 500                    # 4 inputs, 500 outputs: forward wins
  {PROG} compare wide_to_tall --n 200 --m 50 --modes forward,reverse
  {PROG} compare dense --batch-size 16 --json     # adds forward-16 and reverse-16 rows
  {PROG} compare my_model.py:loss --shape 50 --plot phases.png
  {PROG} compare mypkg.funcs:residual --x-file x0.npy
"""


SPARSITY_EPILOG = f"""\
TARGET and its input are given as for `{PROG} compare`. Prints the pattern's
size and entries, the seeds a compressed Jacobian needs in forward mode (one
tangent per column color), reverse mode (one cotangent per row color) and
bidirectional mode (the densest rows pulled, the other rows' columns colored),
and the mode jl.sparse_jacobian takes.

examples:
  {PROG} sparsity bratu                           # tridiagonal: 3 seeds instead of 1,998
  {PROG} sparsity bratu --n 200 --plot pattern.png
  {PROG} sparsity my_model.py:residual --shape 500 --json
"""


SWEEP_EPILOG = f"""\
For every size in the grid, the exact FLOPs of forward (vector) and reverse
(batched) mode come from the prediction, and both are timed. The crossover is
where the two FLOP curves meet (interpolated on log-log axes). Where the
Jacobian's sparsity pattern needs fewer compressed seeds than either order
(bratu), the counted FLOPs and time of sparse_jacobian are shown beside them.
Problems with a fixed n (curve) are swept over m; with both --n and --m, every
combination runs.

examples:
  {PROG} sweep                                    # seed over n = 10 ... 1000
  {PROG} sweep seed --n 10,100,1000 --plot seed.png
  {PROG} sweep curve --m 10,100,1000
  {PROG} sweep wide_to_tall --n 10,30,100,300,1000 --m 100 --plot crossover.svg
  {PROG} sweep dense --n 10,100 --json
"""


REPORT_EPILOG = f"""\
Writes DIR/index.html (self-contained: no network, figures as PNG files in
DIR/figures, or embedded with --embed), DIR/report.md and DIR/data.json.
The problems run at sizes chosen for a report that takes seconds, not
compare's defaults: the report's header lists them, and `{PROG} compare
PROBLEM --n N --m M` reproduces a problem's rows.

examples:
  {PROG} report                                   # every problem, into ./report
  {PROG} report --out /tmp/jl --problems seed,curve
  {PROG} report --embed --out one-file-report
"""


CHAIN_EPILOG = f"""\
The chain f = f_q o ... o f_1 has widths W0 (inputs) ... Wq (outputs). Prints the
FLOPs of forward (right-to-left), reverse (left-to-right) and the optimal
bracketing, and its speed-up over the better pure mode.

examples:
  {PROG} chain 100 1 100 100 100                  # a bottleneck: mixed bracketing wins
  {PROG} chain 10 1000 10 1000 1 --plot chain.png
  {PROG} chain 2 3 4 5 --json
"""


PROBLEMS_EPILOG = f"""\
examples:
  {PROG} problems
  {PROG} problems --json
"""


MAIN_DESCRIPTION = """\
Forward vs reverse accumulation of Jacobians, with exact FLOP counts.

Forward mode builds the Jacobian column by column (JVPs, one per input);
reverse mode row by row (VJPs from one tape, one per output). jacobian-lab
counts the work each order really executes and tells you which is cheaper."""


MAIN_EPILOG = f"""\
examples:
  {PROG} compare                      # the built-in seed problem at n = 1000
  {PROG} problems                     # what else is built in
  {PROG} sweep curve --plot curve.png
  {PROG} chain 100 1 100 100 100
  {PROG} sparsity bratu               # the pattern and its coloring
  {PROG} report --out report

Run `{PROG} COMMAND --help` for the options of each command.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``jacobian-lab`` command.

    >>> build_parser().parse_args(["chain", "3", "4"]).widths
    [3, 4]
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback when something fails")

    parser = _Parser(prog=PROG, description=MAIN_DESCRIPTION, epilog=MAIN_EPILOG, formatter_class=_Help,
                     parents=[common])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.commands = sub.choices  # name -> its parser, which reports the command's own bad arguments

    _compare(sub, common)
    _sparsity(sub, common)
    _sweep(sub, common)
    _report(sub, common)
    _chain(sub, common)
    _problems(sub, common)
    return parser


def _command(sub, common, name: str, epilog: str, summary: str, description: str) -> argparse.ArgumentParser:
    """The parser of one command: its --help lists `summary`'s one line in the main help, then `description`,
    its options and the `epilog`'s examples."""
    return sub.add_parser(name, parents=[common], formatter_class=_Help, epilog=epilog, help=summary,
                          description=description)


def _compare(sub, common) -> None:
    p = _command(sub, common, "compare", COMPARE_EPILOG,
                 "measure every accumulation order of one Jacobian and compare them",
                 "Build one Jacobian in several accumulation orders, count the FLOPs each executed, time them, and "
                 "print the table and the verdict.")
    _add_target(p)
    p.add_argument("--modes", default=",".join(MODE_NAMES),
                   help="comma-separated rows: forward-1, forward, reverse-1, reverse, auto, jit (replays of "
                        "the compiled Jacobian), sparse (one seed per color of the sparsity pattern), "
                        "forward-K, reverse-K (default: %(default)s)")
    p.add_argument("--batch-size", type=positive, metavar="K",
                   help="also measure forward-K and reverse-K (K seeds per pass)")
    p.add_argument("--repeat", type=positive, default=3,
                   help="timed samples per row, median kept (default 3; a sample repeats a run shorter than 5 ms)")
    p.add_argument("--threads", type=positive, metavar="N",
                   help="run the passes of the forward, reverse and auto rows on N threads (default: one after "
                        "another in this thread)")
    _add_outputs(p, "print the comparison as JSON instead of a table", "FLOPs by phase per mode")
    p.set_defaults(handler=commands.cmd_compare)


def _sparsity(sub, common) -> None:
    p = _command(sub, common, "sparsity", SPARSITY_EPILOG,
                 "the Jacobian's sparsity pattern and the seeds its coloring needs",
                 "Read which outputs depend on which inputs, color the pattern, and say how many seeds a compressed "
                 "(sparse) Jacobian needs in each mode.")
    _add_target(p)
    _add_outputs(p, "print the summary as JSON", "the pattern, entries colored by column")
    p.set_defaults(handler=commands.cmd_sparsity)


def _sweep(sub, common) -> None:
    p = _command(sub, common, "sweep", SWEEP_EPILOG,
                 "forward vs reverse cost over a grid of sizes, with the crossover",
                 "Measure forward and reverse mode over a grid of n (and m) and find where their costs cross.")
    p.add_argument("problem", nargs="?", metavar="PROBLEM", help=f"built-in problem (default: {DEFAULT_PROBLEM})")
    p.add_argument("--n", metavar="N,N,...", help="input sizes, e.g. 10,100,1000")
    p.add_argument("--m", metavar="M,M,...", help="output sizes, for problems that take m")
    p.add_argument("--seed", type=nonnegative, default=0, help="random seed of the problem data (default 0)")
    p.add_argument("--repeat", type=positive, default=3,
                   help="timed samples per point, median kept (default 3; a sample repeats a run shorter than 5 ms)")
    _add_outputs(p, "print the sweep as JSON instead of a table", "FLOPs and seconds vs size")
    p.set_defaults(handler=commands.cmd_sweep)


def _report(sub, common) -> None:
    p = _command(sub, common, "report", REPORT_EPILOG,
                 "write an HTML + Markdown report with tables and figures for each problem",
                 "Compare, sweep and plot the built-in problems into a self-contained report.")
    p.add_argument("--out", default="report", metavar="DIR",
                   help="output folder, created with any missing parents (default: %(default)s)")
    p.add_argument("--problems", metavar="A,B,...", help="comma-separated problem names (default: all)")
    p.add_argument("--repeat", type=positive, default=3, help="timed samples per measurement (default 3)")
    p.add_argument("--embed", action="store_true", help="also embed the figures in index.html (one file)")
    p.set_defaults(handler=commands.cmd_report)


def _chain(sub, common) -> None:
    p = _command(sub, common, "chain", CHAIN_EPILOG,
                 "costs of forward, reverse and optimal bracketing of a Jacobian chain",
                 "Plan the cheapest bracketing of J = Jq ... J1 for a chain of widths.")
    p.add_argument("widths", nargs="+", type=parse_width, metavar="W", help="widths W0 W1 ... Wq (at least two)")
    _add_outputs(p, "print the plan as JSON", "the three costs as bars")
    p.set_defaults(handler=commands.cmd_chain)


def _problems(sub, common) -> None:
    p = _command(sub, common, "problems", PROBLEMS_EPILOG,
                 "list the built-in problems",
                 "List the built-in problems.")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(handler=commands.cmd_problems)


def _add_outputs(p, printed: str, plotted: str) -> None:
    """--json (`printed`: what it prints) and --plot (`plotted`: the figure it saves)."""
    p.add_argument("--json", action="store_true", help=printed)
    p.add_argument("--plot", metavar="FILE",
                   help=f"save {plotted} (.png, .svg or .pdf; missing folders are created)")


def _add_target(p) -> None:
    """TARGET and the flags that give its input: what compare and sparsity differentiate."""
    p.add_argument("target", nargs="?", metavar="TARGET",
                   help=f"built-in problem, module:function or file.py:function (default: {DEFAULT_PROBLEM})")
    p.add_argument("--n", type=parse_size, help="number of inputs of a built-in problem")
    p.add_argument("--m", type=parse_size, help="number of outputs of a built-in problem (where it has one)")
    p.add_argument("--shape", help="input shape for a function, e.g. 1000 or 3,4 ('' for a scalar)")
    p.add_argument("--x-file", metavar="FILE", help="input point for a function (.npy, .npz, .txt, .csv)")
    p.add_argument("--seed", type=nonnegative, help="random seed of the input / problem data (default 0)")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("jacobian-lab")
    except Exception:  # noqa: BLE001 - a version string is never worth failing for
        return "unknown"


def joined_values(argv: list[str]) -> list[str]:
    """`argv` with a list of sizes that begins with a minus (``--n -10,10``) joined to its option, --n or --m
    (``--n=-10,10``): argparse takes only a lone negative number for a value, and the rest for an option,
    which left the option without one. The sizes' own check then names the negative size.

    >>> joined_values(["sweep", "seed", "--n", "-10,10"])
    ['sweep', 'seed', '--n=-10,10']
    """
    joined: list[str] = []
    for token in argv:
        if joined and joined[-1] in ("--n", "--m") and re.fullmatch(r"-[\d.][\d.,e+-]*", token):
            joined[-1] += "=" + token
        else:
            joined.append(token)
    return joined
