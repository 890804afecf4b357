"""Options read from text: sizes, shapes, modes, widths, and output paths checked before the run."""
from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..compare import mode_row
from .errors import UsageError


def parse_sizes(text: str, what: str = "size") -> list[int]:
    """Parse a comma-separated list of positive integers ("10,100,1e3" is allowed).

    >>> parse_sizes("10,100,1e3")
    [10, 100, 1000]
    >>> parse_sizes("0")
    Traceback (most recent call last):
        ...
    jacobian_lab.cli.UsageError: size must be a positive integer, got '0'
    """
    values = []
    for item in str(text).split(","):
        item = item.strip()
        try:
            number = float(item)
        except ValueError:
            raise UsageError(f"{what} must be a positive integer, got {item!r}") from None
        if not number.is_integer() or number < 1:
            raise UsageError(f"{what} must be a positive integer, got {item!r}")
        values.append(int(number))
    return values


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse an input shape: "1000", "3,4", "3x4", "3 4", "(3,)"; "" or "()" is a scalar (0-d) input.

    >>> parse_shape("3,4"), parse_shape("3 4"), parse_shape("(5,)"), parse_shape("()")
    ((3, 4), (3, 4), (5,), ())
    >>> parse_shape("3,x")
    Traceback (most recent call last):
        ...
    jacobian_lab.cli.UsageError: --shape takes sizes separated by ',', 'x' or spaces (3,4 or 3x4), got '3,x'
    """
    inner = str(text).strip()
    if inner[:1] + inner[-1:] in ("()", "[]"):
        inner = inner[1:-1].strip()
    if not inner:
        return ()
    sizes = re.split(r"\s*[,x]\s*|\s+", inner.removesuffix(","))  # "5," is (5,), as in Python
    if "" in sizes:
        raise UsageError(f"--shape takes sizes separated by ',', 'x' or spaces (3,4 or 3x4), got {text!r}")
    return tuple(parse_sizes(",".join(sizes), "each dimension of --shape"))


def parse_modes(text: str) -> list[str]:
    modes = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))  # a repeated row once
    if not modes:
        raise UsageError("--modes needs at least one mode")
    for mode in modes:
        try:
            mode_row(mode)  # the API's own check, with its messages
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return modes


def plot_path(text: str | None) -> Path | None:
    """The --plot file, refused now if it cannot be written rather than after the run."""
    from ..plots import FORMATS

    if text is None:
        return None
    path = Path(text)
    if path.name.lower() in FORMATS:  # Path(".png").suffix is "": a hidden file's name, to pathlib
        raise UsageError(f"--plot {text!r} names a suffix without a file name; give one, e.g. phases{path.name}")
    if path.suffix.lower() not in FORMATS:
        raise UsageError(f"--plot {text!r}: the file must end in {', '.join(FORMATS)}")
    if path.exists() and path.is_dir():
        raise UsageError(f"--plot {text!r} is a directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"--plot {text!r}: the file exists and cannot be overwritten; choose another path")
    if not path.exists():  # a file that exists is written in place, even in a folder that takes no new files
        check_folder("--plot", text, path.parent)
    return path


def check_folder(option: str, text: str, folder: Path) -> None:
    """Refuse `folder` unless it is, or can be created as, a folder we can write in.

    Checked before any computation, so that a path that cannot be written is
    reported at once instead of throwing away a finished run. Missing folders
    are fine: saving creates them inside the nearest one that exists.
    """
    existing = folder
    while not os.path.exists(existing):  # os.path: a folder we may not look into counts as missing, not an error
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {text!r}: {str(existing)!r} is a file, not a folder; choose another path")
    try:  # the only sure test of writing (root, read-only mounts, /proc): write and remove a file
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".jacobian-lab-"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {text!r}: cannot create a file in the folder {str(existing)!r} (the system "
                         f"says: {exc.strerror or exc}); choose a folder you can write to") from None


def parse_width(text: str) -> int:
    """An integer width, written as sizes may be ("1e3"); signs are checked by chain.plan, which names the
    offending position."""
    return _whole(text, f"width must be an integer, got {text!r}")


def _whole(text: str, refusal: str) -> int:
    """The integer `text` writes, exactly however large, or as a float ("1e3"); else `refusal`."""
    try:
        return int(text)  # exactly: a float holds integers exactly only up to 2**53
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise argparse.ArgumentTypeError(refusal)
    return int(number)


def _integer_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer of at least `minimum`, else an error quoting the text."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


positive = _integer_at_least(1, "a positive integer")


# NumPy's generators refuse a negative seed with a message that names neither the flag nor the value.
nonnegative = _integer_at_least(0, "a non-negative integer")


def parse_size(text: str) -> int:
    """An integer size, written as sweep's sizes may be ("1e3"); the problem checks its range."""
    return _whole(text, f"expected an integer size, got {text!r}")
