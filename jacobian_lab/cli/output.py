"""Where results go: rich tables and progress bars, JSON, and figures saved after the result is printed."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from ..compare import json_text
from .errors import RunError


@contextlib.contextmanager
def progress_bar(title: str, prefix: str):
    """A progress bar on stderr titled `title`, and the ``progress(done, total, label)`` callback that moves it
    (its description then `prefix` + label)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=new_console(stderr=True)) as bar:
        task = bar.add_task(title, total=None)
        yield lambda done, total, label: bar.update(task, completed=done, total=total, description=prefix + label)


def new_console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    # off a terminal, keep wide tables on one line each (no colour, no wrapping)
    return Console(file=stream, highlight=False, width=None if tty else 220, soft_wrap=not tty, force_jupyter=False)


def print_table(console, table) -> None:
    """Print a rich table whole: in a terminal narrower than the table, let lines run long
    rather than truncate numbers."""
    from rich.measure import Measurement

    needed = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    if console.is_terminal and needed > console.width:
        console.width = needed
    console.print(table)


def print_json(args, data) -> None:
    print(json_text(data), file=args.json_out)


def save_figure(fig, path: Path) -> None:
    """Write the figure of a result already printed: a failure here loses the figure alone."""
    from ..plots import save

    try:
        save(fig, path)
    except OSError as exc:
        raise RunError(f"the result is printed above, but the figure could not be written to {str(path)!r}: "
                       f"{exc.strerror or exc}") from exc
    print(f"figure written to {path}", file=sys.stderr)
