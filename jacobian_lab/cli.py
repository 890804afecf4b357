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

import argparse
import contextlib
import importlib
import importlib.util
import math
import os
import re
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .compare import json_text, mode_row

PROG = "jacobian-lab"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DEFAULT_PROBLEM = "seed"
MODE_NAMES = ("forward-1", "forward", "reverse-1", "reverse", "auto", "jit", "sparse")

__all__ = ["RunError", "UsageError", "load_input", "load_target", "main", "parse_shape", "parse_sizes"]


class UsageError(Exception):
    """A bad argument: reported in one line, exit code 2."""


class RunError(Exception):
    """The user's function (or differentiating it) failed: one line, exit code 1."""


# ----------------------------------------------------------------- argument parsing


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line instead of the usage block."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=30)


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


def _modes(text: str) -> list[str]:
    modes = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))  # a repeated row once
    if not modes:
        raise UsageError("--modes needs at least one mode")
    for mode in modes:
        try:
            mode_row(mode)  # the API's own check, with its messages
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return modes


def _plot_path(text: str | None) -> Path | None:
    """The --plot file, refused now if it cannot be written rather than after the run."""
    from .plots import FORMATS

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
        _check_folder("--plot", text, path.parent)
    return path


def _check_folder(option: str, text: str, folder: Path) -> None:
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


# ------------------------------------------------------------------------ targets


def _import_file(path: Path):
    if not path.is_file():
        raise UsageError(f"file not found: {str(path)!r}")
    name = f"_jacobian_lab_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.resolve().parent)
    if folder not in sys.path:  # as `python file.py` runs it: modules beside the file import
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise UsageError(f"importing {str(path)!r} failed: {_import_failure(exc)}") from exc
    return module


def _import_module(name: str):
    added = os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules in the current folder import
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise UsageError(f"cannot import module {name!r}: {exc}") from exc
    except (Exception, SystemExit) as exc:
        raise UsageError(f"importing module {name!r} failed: {_import_failure(exc)}") from exc
    finally:
        if added and sys.path and sys.path[0] == os.getcwd():
            sys.path.pop(0)


def _import_failure(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):  # a script's own argument parsing or exit, run at import
        return (f"it called sys.exit({exc.code!r}) as it was imported; put the code that runs it as a script "
                'under `if __name__ == "__main__":`')
    return f"{type(exc).__name__}: {exc}"


def load_target(spec: str) -> Callable:
    """The function named by ``package.module:function`` or ``path/to/file.py:function``.

    The function may be an attribute path (``module:obj.method``). Raises
    :class:`UsageError` when the module or file cannot be imported or the name
    is missing or not callable.

    >>> load_target("numpy:linalg.norm").__name__
    'norm'
    """
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise UsageError(f"target {spec!r} must look like module:function or file.py:function")
    if where.endswith(".py") or os.sep in where or "/" in where:
        module = _import_file(Path(where))
    else:
        module = _import_module(where)
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{where!r} has no attribute {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{spec!r} is not callable (it is a {type(obj).__name__})")
    return obj


def load_input(path: str):
    """Read an input point from .npy, .npz, or whitespace/comma-separated text.

    An .npz holding one array gives that array; one holding several gives a dict
    of them by name, which f receives as a structured input.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "x.npy"
    ...     np.save(p, np.arange(3.0))
    ...     load_input(str(p))
    array([0., 1., 2.])
    """
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"--x-file {path!r} is a folder; give a file in it (.npy, .npz, .txt or .csv)")
    if not p.is_file():
        raise UsageError(f"--x-file: file not found: {path!r}")
    suffix = p.suffix.lower()
    _check_numpy_file(p, path, suffix)
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as archive:
                if not archive.files:
                    raise UsageError(f"--x-file {path!r} holds no arrays")
                arrays = {name: archive[name] for name in archive.files}
                return arrays.popitem()[1] if len(arrays) == 1 else arrays
        if suffix in (".txt", ".csv", ".dat"):
            return _load_text(p, suffix)
    except (UsageError, MemoryError):  # main reports running out of memory, with the sizes to shrink
        raise
    except Exception as exc:
        ragged = " (every row of a text file must hold as many numbers)" if "number of columns" in str(exc) else ""
        reason = str(exc).split("; use `usecols`")[0]  # NumPy's hint names an argument the command line lacks
        raise UsageError(f"--x-file {path!r} cannot be read: {reason}{ragged}") from exc
    raise UsageError(f"--x-file {path!r}: use a .npy, .npz, .txt or .csv file")


# How NumPy's files begin. Without this check, np.load takes any other file for a pickle and
# refuses it as "pickled (object) data", which says nothing about the file being of the wrong kind.
_NUMPY_MAGIC = {".npy": (b"\x93NUMPY",), ".npz": (b"PK\x03\x04", b"PK\x05\x06")}


def _check_numpy_file(p: Path, path: str, suffix: str) -> None:
    """Refuse a .npy or .npz that is not one (text saved under that name), saying how to write one."""
    if suffix not in _NUMPY_MAGIC:
        return
    try:
        with open(p, "rb") as stream:
            head = stream.read(6)
    except OSError as exc:
        raise UsageError(f"--x-file {path!r} cannot be read: {exc.strerror or exc}") from None
    if not head.startswith(_NUMPY_MAGIC[suffix]):
        kind, how = ((".npy array", "np.save(path, x)") if suffix == ".npy"
                     else (".npz archive", "np.savez(path, x=x)"))
        raise UsageError(f"--x-file {path!r} is not a NumPy {kind} file; write one with {how}, "
                         f"or give numbers as text in a .txt or .csv file")


def _load_text(p: Path, suffix: str) -> np.ndarray:
    """A text file's numbers; an empty file gives an empty array, which `_check_input` reports in one line."""
    with warnings.catch_warnings():  # NumPy's own warning about the empty file would come before that line
        warnings.filterwarnings("ignore", message="loadtxt: input contained no data", category=UserWarning)
        return np.loadtxt(p, delimiter="," if suffix == ".csv" else None, ndmin=1)


def _check_input(x):
    if isinstance(x, dict):
        return {name: _check_input(value) for name, value in x.items()}
    x = np.asarray(x)
    if np.iscomplexobj(x):
        raise UsageError("complex input is not supported; give a real array")
    if x.dtype.kind == "b":
        raise UsageError("the input is boolean, which has no derivative; give numbers (save x.astype(float))")
    if x.dtype.kind not in "iuf":
        raise UsageError(f"the input must be a numeric array, got dtype {x.dtype}")
    if x.size == 0:
        raise UsageError(f"the input is empty (shape {x.shape}); give a file that holds at least one number")
    # as the API takes x: floats keep their dtype (float32 runs float32), integers become float64
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _resolve(args) -> tuple[str, Callable, np.ndarray, object]:
    """(title, f, x, problem or None) for `compare`, validating the flags that go with the target."""
    from . import problems

    target = args.target or DEFAULT_PROBLEM
    if args.x_file is not None and args.seed is not None:
        raise UsageError("--seed draws the random input of --shape (or a problem's data); an --x-file input "
                         "has nothing to draw: give one or the other")
    seed = 0 if args.seed is None else args.seed
    if ":" not in target:
        _chosen_problems([target], ", or give module:function or file.py:function")
        if args.shape is not None or args.x_file is not None:
            raise UsageError(f"--shape and --x-file are for functions; the built-in problem {target!r} "
                             f"takes --n/--m")
        _check_traceable(max(args.n or 0, args.m or 0), "--n/--m")
        try:
            problem = problems.get(target, n=args.n, m=args.m, seed=seed)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        if args.n is not None and problem.n != args.n:  # mlp_loss takes whole hidden units: n in multiples of 22
            print(f"{PROG} {args.command}: {target} runs n = {args.n} as {problem.n}, the size it takes",
                  file=sys.stderr)
        return target, problem.f, problem.x, problem
    if args.n is not None or args.m is not None:
        raise UsageError("--n/--m resize built-in problems; for a function give --shape or --x-file")
    if args.shape is not None and args.x_file is not None:
        raise UsageError("give either --shape or --x-file, not both")
    f = load_target(target)
    if args.x_file is not None:
        x = _check_input(load_input(args.x_file))
    elif args.shape is not None:
        shape = parse_shape(args.shape)
        _check_traceable(math.prod(shape), "--shape")
        x = np.random.default_rng(seed).standard_normal(shape)
    else:
        raise UsageError(f"{target!r} needs an input: give --shape (e.g. --shape 100) or --x-file FILE.npy")
    return target, f, x, None


# Tracing keeps a few arrays of the input's size per operation (values, a tape's residuals, derivatives):
# a size whose input alone takes more than this share of the free memory is refused before it is built,
# where the system would otherwise end the process without a word.
TRACE_SHARE = 16


def _check_traceable(elements: int, option: str) -> None:
    from .memory import available_bytes, readable

    needed, free = 8 * TRACE_SHARE * elements, available_bytes()
    if needed > free:
        raise UsageError(f"a size of {elements:,} elements needs about {readable(needed)} to differentiate, more "
                         f"than the {readable(free)} of memory free; choose a smaller {option}")


def _target(args) -> tuple[str, Callable, np.ndarray, object]:
    """`_resolve`, and a function of the user's run once on plain NumPy (a built-in problem is known to run)."""
    title, f, x, problem = _resolve(args)
    if problem is None:
        _call_user(f, x, title)
    return title, f, x, problem


@contextlib.contextmanager
def _progress(title: str, prefix: str):
    """A progress bar on stderr titled `title`, and the ``progress(done, total, label)`` callback that moves it
    (its description then `prefix` + label)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=_console(stderr=True)) as bar:
        task = bar.add_task(title, total=None)
        yield lambda done, total, label: bar.update(task, completed=done, total=total, description=prefix + label)


def _chosen_problems(names, also: str = "") -> list[str]:
    """`problems.chosen(names)`, where a name no problem has is a usage error (`also`: what else it may be)."""
    from . import problems

    try:
        return problems.chosen(names)
    except ValueError as exc:
        raise UsageError(f"{exc}{also}") from None


@contextlib.contextmanager
def _running(failed: str, bad_input=()):
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


def _call_user(f: Callable, x: np.ndarray, name: str) -> None:
    """Run f once on plain NumPy so a failing function is reported as such."""
    fresh = {k: v.copy() for k, v in x.items()} if isinstance(x, dict) else np.array(x, copy=True)
    try:
        y = f(fresh)
    except MemoryError:  # at the size asked for: main reports it with the sizes to shrink
        raise
    except Exception as exc:
        given = f" (its input is a dict of the .npz file's arrays: {', '.join(x)})" if isinstance(x, dict) else ""
        raise RunError(f"{name} raised {type(exc).__name__}: {exc}{given}") from exc
    if y is None:  # np.asarray would report it as "object values"
        raise RunError(f"{name} returned None; it must return a real array or number (did it forget `return`?)")
    if isinstance(y, (tuple, list, dict)):
        return  # a structured output: jacobian_lab checks its entries
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise RunError(f"{name} returned {y.dtype} values; it must return a real array or number")


# ------------------------------------------------------------------------ output


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    # off a terminal, keep wide tables on one line each (no colour, no wrapping)
    return Console(file=stream, highlight=False, width=None if tty else 220, soft_wrap=not tty, force_jupyter=False)


def _print_table(console, table) -> None:
    """Print a rich table whole: in a terminal narrower than the table, let lines run long
    rather than truncate numbers."""
    from rich.measure import Measurement

    needed = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    if console.is_terminal and needed > console.width:
        console.width = needed
    console.print(table)


def _json(args, data) -> None:
    print(json_text(data), file=args.json_out)


def _save(fig, path: Path) -> None:
    """Write the figure of a result already printed: a failure here loses the figure alone."""
    from .plots import save

    try:
        save(fig, path)
    except OSError as exc:
        raise RunError(f"the result is printed above, but the figure could not be written to {str(path)!r}: "
                       f"{exc.strerror or exc}") from exc
    print(f"figure written to {path}", file=sys.stderr)


# ---------------------------------------------------------------------- commands


def _cmd_compare(args) -> int:
    from .compare import compare
    from .plots import phase_bars

    modes = _modes(args.modes)
    if args.batch_size is not None:
        for extra in (f"forward-{args.batch_size}", f"reverse-{args.batch_size}"):
            if extra not in modes:
                modes.append(extra)
    plot = _plot_path(args.plot)
    title, f, x, problem = _target(args)
    prediction = _refuse_too_long(title, f, x, modes)
    with _running(f"differentiating {title} failed"), \
            ThreadPoolExecutor(args.threads) if args.threads else contextlib.nullcontext() as pool:
        comparison = compare(f, x, modes=modes, repeat=args.repeat, executor=pool, prediction=prediction)
    if args.json:
        _json(args, {**_described(title, problem), **comparison.to_dict(), "threads": args.threads})
    else:
        _print_comparison(title, x, problem, comparison, args.threads)
    if plot is not None:  # after the result, which a figure that cannot be written must not take with it
        _save(phase_bars(comparison, title=title), plot)
    return EXIT_OK


# A row predicted to run more passes or FLOPs than these would keep compare busy for many minutes
# (a pass costs a few microseconds per primitive, a FLOP about a nanosecond): refused before it runs.
MAX_PASSES, MAX_FLOPS = 200_000, 2e11


def _refuse_too_long(title: str, f, x, modes, leave_out: bool = True):
    """Refuse the rows of `modes` predicted to exceed MAX_PASSES or MAX_FLOPS, if any are (with
    `leave_out`, naming the --modes without them); f failing while it is predicted is f's failure.
    Returns the prediction, for the comparison to use."""
    from .compare import _rows
    from .harness import schedule
    from .prediction import predict

    # a forward row's passes follow from x's size alone (at least these: memory may cut a pass's seeds),
    # known before f is first traced, which a huge x makes slow
    n = _size(x)
    too_long = {}
    for name, (label, mode, batch) in zip(modes, _rows(modes)):
        passes = schedule("forward", n, 1, batch)[1] if mode == "forward" else 0
        if passes > MAX_PASSES:
            too_long[name] = f"'{label}' ({passes:,} passes)"
    if too_long:
        raise _too_long(too_long, modes, leave_out, early=True)
    with _running(f"differentiating {title} failed"):
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
    from .compiled import first_call_seeds

    with _running("differentiating f failed"):
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
    from .compressed import best_plan, color_count, dense_plan
    from .sparsity import dense, recorded, recorded_pattern

    m, n = prediction.m, prediction.n
    with _running("differentiating f failed"):
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


def _described(title: str, problem) -> dict:
    """What a JSON output is about, as its table's first lines say: the target, and a problem's summary
    and expected winner."""
    if problem is None:
        return {"target": title}
    return {"target": title, "problem": problem.name, "summary": problem.summary, "expected_winner": problem.winner}


def _print_comparison(title: str, x, problem, comparison, threads=None) -> None:
    """What was differentiated, the table of every mode, and the verdict (and the threads the passes ran on)."""
    console = _console()
    if problem is not None:
        console.print(f"[bold]{problem.name}[/bold]: {problem.summary}")
        console.print(f"expected winner: {problem.winner}. {problem.why}")
    else:
        shapes = ({k: tuple(np.shape(v)) for k, v in x.items()} if isinstance(x, dict) else tuple(np.shape(x)))
        console.print(f"[bold]{title}[/bold] at an input of shape {shapes}")
    _print_table(console, comparison.rich_table())
    if threads:
        console.print(f"the forward, reverse and auto rows ran their passes on {threads} threads")
    console.print(f"[bold]verdict:[/bold] {comparison.verdict()}")


def _cmd_sparsity(args) -> int:
    from .compressed import plans as plans_of
    from .plots import pattern_colors
    from .sparsity import recorded, recorded_pattern

    plot = _plot_path(args.plot)
    title, f, x, problem = _target(args)
    failed = f"reading the sparsity pattern of {title} failed"
    with _running(failed):
        pullback, m = recorded(f, x)
    _refuse_dense_pattern(args, title, pullback, m, x)
    with _running(failed):
        pattern = recorded_pattern(pullback, m)
        plans = plans_of(pattern)
    summary = _pattern_summary(pattern, plans)
    if args.json:
        _json(args, {**_described(title, problem), **summary})
    else:
        _print_pattern(title, summary)
    if plot is not None:  # after the result, which a figure that cannot be written must not take with it
        _save(pattern_colors(pattern, plans["forward"].columns, title=title), plot)
    return EXIT_OK


# Reading a sparsity pattern takes about 80 ns an entry (sorts and gathers of int64 keys), as long as some 100 FLOPs:
# a pattern of more entries would keep sparsity busy as long as a row of MAX_FLOPS keeps compare.
MAX_PATTERN_ENTRIES = MAX_FLOPS / 100


def _size(x) -> int:
    """The number of x's elements, over its leaves when it is a tree of arrays."""
    from . import trees

    return sum(np.size(leaf) for leaf in trees.flatten(x)[0])


def _refuse_dense_pattern(args, title: str, pullback, m: int, x) -> None:
    """Refuse, before it is read, a pattern the tape's structure shows dense (every output on every input: all
    m x n entries) that would take more memory than the budget to work out, or too long. Other patterns are
    refused while they are read, by a dependency matrix over the budget, before it is built."""
    from .memory import budget, readable
    from .sparsity import dense, pattern_bytes

    if not dense(pullback):
        return
    n = _size(x)
    needed, limit = pattern_bytes(m * n), budget()
    if needed > limit:
        why = f"takes {readable(needed)} to work out, over the memory budget of {readable(limit)}"
    elif m * n > MAX_PATTERN_ENTRIES:
        why = "would take too long to wait for"
    else:
        return
    raise UsageError(f"every output of {title} depends on every input: its {m:,} x {n:,} sparsity pattern "
                     f"({m * n:,} entries) {why}; {_smaller(args)}")


def _print_pattern(title: str, summary: dict) -> None:
    """The pattern's size and entries, the seeds of each mode, and the mode sparse_jacobian takes."""
    m, n, seeds = summary["m"], summary["n"], summary["seeds"]
    console = _console()
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
    from .compressed import fewest_seeds, widest

    m, n = pattern.shape
    seeds = {mode: p.seeds for mode, p in plans.items()}
    row, column = widest(pattern)
    return {
        "m": m, "n": n, "entries": int(pattern.nnz), "density": pattern.nnz / max(m * n, 1),
        "widest_row": row, "widest_column": column,
        "seeds": seeds, "pulled_rows": int(np.count_nonzero(plans["bidirectional"].rows >= 0)),
        "sparse_jacobian": fewest_seeds(plans),
    }


def _cmd_sweep(args) -> int:
    from . import problems
    from .plots import sweep_plot
    from .sweep import sweep

    [name] = _chosen_problems([args.problem or DEFAULT_PROBLEM])
    # in increasing order, each once, as the plot and the crossover read them
    ns = sorted(set(parse_sizes(args.n, "--n"))) if args.n is not None else None
    ms = sorted(set(parse_sizes(args.m, "--m"))) if args.m is not None else None
    plot = _plot_path(args.plot)
    _check_traceable(max((ns or []) + (ms or []), default=0), "--n/--m")
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
    _refuse_too_long(name, largest.f, largest.x, ["forward", "reverse"], leave_out=False)

    with _progress(f"sweep {name}", "sweep ") as progress:
        with _running(f"sweep of {name} failed", bad_input=ValueError):
            result = sweep(name, n=ns, m=ms, repeat=args.repeat, seed=args.seed, progress=progress)
    if args.json:
        _json(args, result.to_dict())
    else:
        _print_table(_console(), result.rich_table())
    if plot is not None:  # after the result, which a figure that cannot be written must not take with it
        _save(sweep_plot(result), plot)
    return EXIT_OK


def _cmd_report(args) -> int:
    from .report import TEXTS, build_report, path_conflict

    chosen = None
    if args.problems is not None:  # --problems "" names no problem; it does not mean all of them
        # a name given twice is reported once: running it again would only repeat its section
        chosen = _chosen_problems(p.strip() for p in args.problems.split(",") if p.strip())
    if not args.out.strip():  # Path("") is the current folder: an unset variable would fill it with report files
        raise UsageError("--out is empty; give the folder to write the report into, e.g. --out report")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out!r} exists and is not a directory")
    _check_folder("--out", args.out, out)
    conflict = path_conflict(out)
    if conflict:  # build_report refuses it too, before any work: here as a usage error
        raise UsageError(f"--out {args.out!r}: {conflict}; move it or choose another --out")
    for name in (*TEXTS, "figures"):
        path = out / name  # (os.path: a link into a folder the user may not look into is replaced, not read)
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise UsageError(f"--out {args.out!r}: {str(path)!r} exists and cannot be overwritten; make it "
                             "writable or choose another --out")
    with _progress("report", "report: ") as progress:
        with _running("building the report failed", bad_input=ValueError):
            index = build_report(out, problems=chosen, repeat=args.repeat, embed=args.embed, progress=progress)
    figures = len(list(index.with_name("figures").glob("*.png")))
    for written in (index, index.with_name("report.md"), index.with_name("data.json")):
        print(written)
    print(f"{index.with_name('figures')}{os.sep} ({figures} figures)")
    return EXIT_OK


def _cmd_chain(args) -> int:
    from .chain import plan
    from .plots import chain_costs

    plot = _plot_path(args.plot)
    try:
        p = plan(args.widths)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        _json(args, p.to_dict())
    else:
        print(p.table())
    if plot is not None:  # after the result, which a figure that cannot be written must not take with it
        _save(chain_costs(p), plot)
    return EXIT_OK


def _cmd_problems(args) -> int:
    from . import problems

    listing = []
    for name in problems.names():
        p = problems.get(name)
        listing.append({"name": name, "n": p.n, "m": p.m, "winner": p.winner, "summary": p.summary})
    if args.json:
        _json(args, listing)
        return EXIT_OK
    width = max(len(item["name"]) for item in listing)
    for item in listing:
        print(f"{item['name']:<{width}}  {item['summary']}  [cheaper: {item['winner']}]")
    return EXIT_OK


# ------------------------------------------------------------------------ parser


def _width(text: str) -> int:
    """An integer width, written as sizes may be ("1e3"); signs are checked by chain.plan, which names the
    offending position."""
    try:
        return int(text)  # exactly, however large: a float holds integers exactly only up to 2**53
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"width must be an integer, got {text!r}")
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


_positive = _integer_at_least(1, "a positive integer")
# NumPy's generators refuse a negative seed with a message that names neither the flag nor the value.
_seed = _integer_at_least(0, "a non-negative integer")


def _size_arg(text: str) -> int:
    """An integer size, written as sweep's sizes may be ("1e3"); the problem checks its range."""
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer size, got {text!r}")
    return int(number)


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

    p = sub.add_parser("compare", parents=[common], formatter_class=_Help, epilog=COMPARE_EPILOG,
                       help="measure every accumulation order of one Jacobian and compare them",
                       description="Build one Jacobian in several accumulation orders, count the FLOPs "
                                   "each executed, time them, and print the table and the verdict.")
    _add_target(p)
    p.add_argument("--modes", default=",".join(MODE_NAMES),
                   help="comma-separated rows: forward-1, forward, reverse-1, reverse, auto, jit (replays of "
                        "the compiled Jacobian), sparse (one seed per color of the sparsity pattern), "
                        "forward-K, reverse-K (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive, metavar="K",
                   help="also measure forward-K and reverse-K (K seeds per pass)")
    p.add_argument("--repeat", type=_positive, default=3,
                   help="timed samples per row, median kept (default 3; a sample repeats a run shorter than 5 ms)")
    p.add_argument("--threads", type=_positive, metavar="N",
                   help="run the passes of the forward, reverse and auto rows on N threads (default: one after "
                        "another in this thread)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON instead of a table")
    p.add_argument("--plot", metavar="FILE",
                   help="save FLOPs by phase per mode (.png, .svg or .pdf; missing folders are created)")
    p.set_defaults(handler=_cmd_compare)

    p = sub.add_parser("sparsity", parents=[common], formatter_class=_Help, epilog=SPARSITY_EPILOG,
                       help="the Jacobian's sparsity pattern and the seeds its coloring needs",
                       description="Read which outputs depend on which inputs, color the pattern, and say how "
                                   "many seeds a compressed (sparse) Jacobian needs in each mode.")
    _add_target(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--plot", metavar="FILE",
                   help="save the pattern, entries colored by column (.png, .svg or .pdf; missing folders are "
                        "created)")
    p.set_defaults(handler=_cmd_sparsity)

    p = sub.add_parser("sweep", parents=[common], formatter_class=_Help, epilog=SWEEP_EPILOG,
                       help="forward vs reverse cost over a grid of sizes, with the crossover",
                       description="Measure forward and reverse mode over a grid of n (and m) and find "
                                   "where their costs cross.")
    p.add_argument("problem", nargs="?", metavar="PROBLEM", help=f"built-in problem (default: {DEFAULT_PROBLEM})")
    p.add_argument("--n", metavar="N,N,...", help="input sizes, e.g. 10,100,1000")
    p.add_argument("--m", metavar="M,M,...", help="output sizes, for problems that take m")
    p.add_argument("--seed", type=_seed, default=0, help="random seed of the problem data (default 0)")
    p.add_argument("--repeat", type=_positive, default=3,
                   help="timed samples per point, median kept (default 3; a sample repeats a run shorter than 5 ms)")
    p.add_argument("--json", action="store_true", help="print the sweep as JSON instead of a table")
    p.add_argument("--plot", metavar="FILE",
                   help="save FLOPs and seconds vs size (.png, .svg or .pdf; missing folders are created)")
    p.set_defaults(handler=_cmd_sweep)

    p = sub.add_parser("report", parents=[common], formatter_class=_Help, epilog=REPORT_EPILOG,
                       help="write an HTML + Markdown report with tables and figures for each problem",
                       description="Compare, sweep and plot the built-in problems into a self-contained report.")
    p.add_argument("--out", default="report", metavar="DIR",
                   help="output folder, created with any missing parents (default: %(default)s)")
    p.add_argument("--problems", metavar="A,B,...", help="comma-separated problem names (default: all)")
    p.add_argument("--repeat", type=_positive, default=3, help="timed samples per measurement (default 3)")
    p.add_argument("--embed", action="store_true", help="also embed the figures in index.html (one file)")
    p.set_defaults(handler=_cmd_report)

    p = sub.add_parser("chain", parents=[common], formatter_class=_Help, epilog=CHAIN_EPILOG,
                       help="costs of forward, reverse and optimal bracketing of a Jacobian chain",
                       description="Plan the cheapest bracketing of J = Jq ... J1 for a chain of widths.")
    p.add_argument("widths", nargs="+", type=_width, metavar="W", help="widths W0 W1 ... Wq (at least two)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--plot", metavar="FILE",
                   help="save the three costs as bars (.png, .svg or .pdf; missing folders are created)")
    p.set_defaults(handler=_cmd_chain)

    p = sub.add_parser("problems", parents=[common], formatter_class=_Help, epilog=PROBLEMS_EPILOG,
                       help="list the built-in problems", description="List the built-in problems.")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(handler=_cmd_problems)
    return parser


def _add_target(p) -> None:
    """TARGET and the flags that give its input: what compare and sparsity differentiate."""
    p.add_argument("target", nargs="?", metavar="TARGET",
                   help=f"built-in problem, module:function or file.py:function (default: {DEFAULT_PROBLEM})")
    p.add_argument("--n", type=_size_arg, help="number of inputs of a built-in problem")
    p.add_argument("--m", type=_size_arg, help="number of outputs of a built-in problem (where it has one)")
    p.add_argument("--shape", help="input shape for a function, e.g. 1000 or 3,4 ('' for a scalar)")
    p.add_argument("--x-file", metavar="FILE", help="input point for a function (.npy, .npz, .txt, .csv)")
    p.add_argument("--seed", type=_seed, help="random seed of the input / problem data (default 0)")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("jacobian-lab")
    except Exception:  # noqa: BLE001 - a version string is never worth failing for
        return "unknown"


def _joined_values(argv: list[str]) -> list[str]:
    """`argv` with a list of sizes that begins with a minus (``--n -10,10``) joined to its option, --n or --m
    (``--n=-10,10``): argparse takes only a lone negative number for a value, and the rest for an option,
    which left the option without one. The sizes' own check then names the negative size.

    >>> _joined_values(["sweep", "seed", "--n", "-10,10"])
    ['sweep', 'seed', '--n=-10,10']
    """
    joined: list[str] = []
    for token in argv:
        if joined and joined[-1] in ("--n", "--m") and re.fullmatch(r"-[\d.][\d.,e+-]*", token):
            joined[-1] += "=" + token
        else:
            joined.append(token)
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jacobian-lab`` command line with `argv` (default: ``sys.argv[1:]``); return the exit code.

    >>> main(["compare", "nope"])
    2
    """
    argv = _joined_values(list(sys.argv[1:] if argv is None else argv))
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
        message = f"out of memory ({exc}); {_smaller(args)}{sparse}"
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
    JSON alone (`_json` writes it to the stdout kept in ``args.json_out``)."""
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


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _smaller(args) -> str:
    """What to shrink after running out of memory: the size options given, which are the ones that apply."""
    if getattr(args, "x_file", None) is not None:
        return f"try a smaller input than --x-file {args.x_file!r}"
    given = [flag for flag, name in (("--n", "n"), ("--m", "m"), ("--shape", "shape"))
             if getattr(args, name, None) is not None]
    if given:
        return f"try smaller sizes ({', '.join(given)})"
    defaults = {"chain": "try smaller widths", "report": "try fewer problems (--problems)"}
    return defaults.get(args.command, "try smaller sizes (--n, --m)")  # a built-in problem at its default size


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


if __name__ == "__main__":
    sys.exit(main())
