"""The ``jacobian-lab`` command line: compare, sweep, sparsity, report, chain, problems.

Every command has ``--help`` with examples. :func:`main` takes the argument
list and returns the exit code: 0 on success, 2 for a bad argument (unknown
problem, invalid size, missing file, a target that cannot be imported, an
output path that cannot be written: all refused before the run starts) and
for a size too large for the memory (the error names the options to shrink), 1
when the function being differentiated fails or a figure cannot be saved
after the run (the result is printed first). Errors are one line on stderr;
``--debug`` adds the traceback.

>>> main(["chain", "100", "1", "100", "100", "100"])
Jacobian chain, 4 stages, widths 100 -> 1 -> 100 -> 100 -> 100
  mode         FLOPs  bracketing
  forward  4,020,000  J4 (J3 (J2 J1))
  reverse  2,040,000  ((J4 J3) J2) J1
  optimal     60,000  (J4 (J3 J2)) J1
speed-up of optimal over best pure mode: 34.00x
best mode: optimal
0
"""
from __future__ import annotations

import contextlib
import os
import sys
import traceback
import warnings
from collections.abc import Sequence

from .errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, PROG, RunError, UsageError
from .limits import smaller_sizes
from .options import parse_shape, parse_sizes
from .parser import build_parser, joined_values
from .targets import load_input, load_target

__all__ = ["RunError", "UsageError", "load_input", "load_target", "main", "parse_shape", "parse_sizes"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jacobian-lab`` command line with `argv` (default: ``sys.argv[1:]``); return the exit code.

    >>> main(["compare", "nope"])
    2
    """
    argv = joined_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    debug = "--debug" in argv
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # named by the command's parser, whose --help lists what it takes
            parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exc:  # --help, --version and argparse's own one-line errors
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    if args.command is None:  # the bare command asks what it can do: the help, as --help gives it
        parser.print_help()
        return EXIT_OK
    debug = debug or getattr(args, "debug", False)
    try:
        return _run(args)
    except UsageError as exc:
        return _fail(args.command, exc, EXIT_USAGE, debug)
    except RunError as exc:
        return _fail(args.command, exc, EXIT_FAILURE, debug)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_gone()
    except MemoryError as exc:  # also MemoryBudgetError: a size too large for this machine is a bad size
        sparse = (" or, for a Jacobian with few entries per row, --modes sparse alone (its entries, not the dense "
                  "matrix)" if args.command == "compare" and "the dense" in str(exc) else "")
        message = f"out of memory ({exc}); {smaller_sizes(args)}{sparse}"
        return _fail(args.command, UsageError(message), EXIT_USAGE, debug, exc)
    except Exception as exc:  # noqa: BLE001 - a bug of ours: still one line, the traceback with --debug
        return _fail(args.command, RunError(f"{type(exc).__name__}: {exc}"), EXIT_FAILURE, debug, exc)
    except SystemExit as exc:  # f, or code it calls, ended the program: say so rather than stop silently
        if isinstance(exc.__context__, BrokenPipeError):  # rich's console exits so when the reader is gone
            return _reader_gone()
        return _fail(args.command, RunError(f"the function called sys.exit({exc.code!r}); return its value instead"),
                     EXIT_FAILURE, debug, exc)


def _run(args) -> int:
    """The command. With --json, what the user's code prints goes to stderr, so that stdout holds the
    JSON alone (`print_json` writes it to the stdout kept in ``args.json_out``)."""
    with warnings.catch_warnings():  # (which restores warnings.showwarning)
        inside = None if sys.warnoptions else _WarnedInside()  # python -W chooses for itself
        try:
            if not getattr(args, "json", False):
                return args.handler(args)
            args.json_out = sys.stdout
            with contextlib.redirect_stdout(sys.stderr):
                return args.handler(args)
        finally:
            if inside is not None:
                inside.summarize()


class _WarnedInside:
    """NumPy's floating-point warnings shown at f's own line, where its plain evaluation raised them, and once.

    NumPy warns at the line that ran each operation: f's for its plain evaluation, then lines inside the
    package for every mode's traced or compiled copy of the same arithmetic, and for the derivative rules
    (sqrt'(0) divides by zero). Those are held back, and what f's own lines did not already say is
    summed up in one line at the end.
    """

    def __init__(self):
        self.shown, self.held, self._show = set(), [], warnings.showwarning
        warnings.showwarning = self._seen

    def _seen(self, message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if issubclass(category, RuntimeWarning) and filename.startswith((_PACKAGE, "<jacobian_lab")):
            if text not in self.held:
                self.held.append(text)
            return
        self.shown.add(text)
        self._show(message, category, filename, lineno, file, line)

    def summarize(self) -> None:
        unsaid = [text for text in self.held if text not in self.shown]
        if unsaid:
            print(f"{PROG}: NumPy also warned while computing derivatives: {'; '.join(unsaid)}", file=sys.stderr)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # jacobian_lab/


def _reader_gone() -> int:
    """The reader of the output (`head`, a pager) closed it: stop without a message, as other
    command-line tools do; stdout now goes to /dev/null, so that flushing it at exit fails no more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):  # a stdout without a file descriptor has nothing to flush there
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_FAILURE


def _fail(command: str, exc: Exception, code: int, debug: bool, original: Exception | None = None) -> int:
    if debug:
        traceback.print_exception(original or exc, file=sys.stderr)
    message = " ".join(str(exc).split())  # one line, whatever the message held
    hint = "" if debug else " (--debug shows the traceback)" if code == EXIT_FAILURE else ""
    print(f"{PROG} {command}: error: {message}{hint}", file=sys.stderr)
    return code
