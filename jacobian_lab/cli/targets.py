"""What a command differentiates: a built-in problem, or a user's function (module:function or
file.py:function) at an input read from a file or drawn at a shape."""
from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import PROG, RunError, UsageError
from .options import parse_shape

DEFAULT_PROBLEM = "seed"


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


def resolve(args) -> tuple[str, Callable, np.ndarray, object]:
    """(title, f, x, problem or None) for `compare`, validating the flags that go with the target."""
    from .. import problems

    target = args.target or DEFAULT_PROBLEM
    if args.x_file is not None and args.seed is not None:
        raise UsageError("--seed draws the random input of --shape (or a problem's data); an --x-file input "
                         "has nothing to draw: give one or the other")
    seed = 0 if args.seed is None else args.seed
    if ":" not in target:
        chosen_problems([target], ", or give module:function or file.py:function")
        if args.shape is not None or args.x_file is not None:
            raise UsageError(f"--shape and --x-file are for functions; the built-in problem {target!r} "
                             f"takes --n/--m")
        check_traceable(max(args.n or 0, args.m or 0), "--n/--m")
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
        check_traceable(math.prod(shape), "--shape")
        x = np.random.default_rng(seed).standard_normal(shape)
    else:
        raise UsageError(f"{target!r} needs an input: give --shape (e.g. --shape 100) or --x-file FILE.npy")
    return target, f, x, None


# Tracing keeps a few arrays of the input's size per operation (values, a tape's residuals, derivatives):
# a size whose input alone takes more than this share of the free memory is refused before it is built,
# where the system would otherwise end the process without a word.
TRACE_SHARE = 16


def check_traceable(elements: int, option: str) -> None:
    from ..memory import available_bytes, readable

    needed, free = 8 * TRACE_SHARE * elements, available_bytes()
    if needed > free:
        raise UsageError(f"a size of {elements:,} elements needs about {readable(needed)} to differentiate, more "
                         f"than the {readable(free)} of memory free; choose a smaller {option}")


def target_of(args) -> tuple[str, Callable, np.ndarray, object]:
    """`resolve`, and a function of the user's run once on plain NumPy (a built-in problem is known to run)."""
    title, f, x, problem = resolve(args)
    if problem is None:
        _call_user(f, x, title)
    return title, f, x, problem


def chosen_problems(names, also: str = "") -> list[str]:
    """`problems.chosen(names)`, where a name no problem has is a usage error (`also`: what else it may be)."""
    from .. import problems

    try:
        return problems.chosen(names)
    except ValueError as exc:
        raise UsageError(f"{exc}{also}") from None


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


def input_size(x) -> int:
    """The number of x's elements, over its leaves when it is a tree of arrays."""
    from .. import trees

    return sum(np.size(leaf) for leaf in trees.flatten(x)[0])
