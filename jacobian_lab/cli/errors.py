"""The command line's two kinds of failure and their exit codes: a bad argument (2) and a failing function (1)."""
from __future__ import annotations

import contextlib

PROG = "jacobian-lab"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad argument: reported in one line, exit code 2."""


class RunError(Exception):
    """The user's function (or differentiating it) failed: one line, exit code 1."""


UsageError.__module__ = RunError.__module__ = "jacobian_lab.cli"  # as tracebacks name them: where users import them


@contextlib.contextmanager
def running(failed: str, bad_input=()):
    """Run the block, which runs the function or problem asked for: its error becomes a `RunError`
    beginning with `failed`, one of the `bad_input` types a `UsageError`; running out of memory is a
    size too large, not a failing function, and goes on to `main`, which names the sizes to shrink."""
    try:
        yield
    except bad_input as exc:
        raise UsageError(str(exc)) from exc
    except MemoryError:
        raise
    except Exception as exc:
        raise RunError(f"{failed}: {type(exc).__name__}: {exc}") from exc
