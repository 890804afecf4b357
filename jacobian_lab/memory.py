"""The memory budget: how much a Jacobian computation may allocate, and the error when it can't."""
from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
import sys
import time

from .accounting import OWN

DEFAULT_FRACTION = 0.5  # of the memory available when the computation starts
# Reading MemAvailable costs ~20 µs (open and parse /proc/meminfo), more than a
# whole small Jacobian, so a reading is reused for this long.
REFRESH_SECONDS = 0.1
_last_reading = (float("-inf"), 0)  # (time.monotonic() of the reading, bytes)


class MemoryBudgetError(MemoryError):
    """A Jacobian (or one pass's working set) would exceed `max_memory`; nothing was allocated."""


def available_bytes() -> int:
    """Memory the process can take now: the least of what the OS has (MemAvailable on Linux; physical memory
    elsewhere), what its cgroup's limit leaves (a container's), and what its address-space limit
    (``ulimit -v``) leaves; past those, NumPy's allocation would fail with no advice, or the process be killed.

    >>> available_bytes() > 0
    True
    """
    return max(0, min(_system_available(), _cgroup_room(), _address_space_room()))


#: cgroup v2: where the groups are, and the line of /proc/self/cgroup that names the process's own
CGROUPS, OWN_GROUP = "/sys/fs/cgroup", "/proc/self/cgroup"


def _cgroup_room() -> int:
    """What the process's cgroup v2 limit ("max" for none) leaves: the limit less the group's use, of which
    the file cache the kernel can reclaim (inactive_file) does not count."""
    try:
        with open(OWN_GROUP) as own:
            group = next(line.strip()[3:] for line in own if line.startswith("0::"))
        folder = os.path.join(CGROUPS, group.lstrip("/"))
        with open(os.path.join(folder, "memory.max")) as limit:
            text = limit.read().strip()
        if text == "max":
            return sys.maxsize
        with open(os.path.join(folder, "memory.current")) as use, open(os.path.join(folder, "memory.stat")) as stat:
            used = int(use.read())
            cache = next((int(line.split()[1]) for line in stat if line.startswith("inactive_file ")), 0)
        return int(text) - (used - cache)
    except (OSError, ValueError, StopIteration):
        return sys.maxsize


def _address_space_room() -> int:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft == resource.RLIM_INFINITY:
            return sys.maxsize
        with open("/proc/self/status") as status:
            size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        return soft - size
    except (ImportError, OSError, ValueError, StopIteration):
        return sys.maxsize


def _system_available() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def recently_available() -> int:
    """`available_bytes`, read again at most every `REFRESH_SECONDS`: what the calls that ask on every
    derivative (a budget, a gradient's tape) read, where one reading costs ~40 µs, half a small gradient."""
    global _last_reading
    taken, nbytes = _last_reading
    now = time.monotonic()
    if now - taken > REFRESH_SECONDS:
        nbytes = available_bytes()
        _last_reading = (now, nbytes)
    return nbytes


def budget(max_memory=None) -> int:
    """max_memory in bytes, or the default: half of the memory available now; inf: no limit."""
    if max_memory is None:
        return int(DEFAULT_FRACTION * recently_available())
    if isinstance(max_memory, bool) or not isinstance(max_memory, numbers.Real) or not max_memory > 0:
        raise ValueError(f"max_memory must be a positive number of bytes, inf or None, got {max_memory!r}")
    return sys.maxsize if math.isinf(max_memory) else int(max_memory)


_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def readable(nbytes: float) -> str:
    """A byte count for a message, in the largest binary unit it fills: bytes, KiB, MiB, GiB, ...

    Every message about memory uses it, so that a budget of a hundred bytes
    reads "100 bytes" and one of gigabytes "2.98 GiB": no count is written as
    an exponent of a unit it does not fill.

    >>> readable(1), readable(1000), readable(1536), readable(32_000_000), readable(3.2e9), readable(1023.9)
    ('1 byte', '1,000 bytes', '1.5 KiB', '30.5 MiB', '2.98 GiB', '1 KiB')
    """
    value, unit = abs(nbytes), None
    for name in _UNITS:
        if value < 1023.5:  # what would round to 1,024 of a unit is 1 of the next
            break
        value, unit = value / 1024, name
    sign = "-" if nbytes < 0 else ""
    if unit is None:  # whole bytes: a fraction of one (a per-seed average) reads as its rounding
        count = round(value)
        return f"{sign}{count:,} byte{'' if count == 1 else 's'}"
    # three significant digits, but no exponent: 1,000 to 1,023 of a unit stay whole numbers
    return f"{sign}{value:.3g} {unit}" if value < 1000 else f"{sign}{value:,.0f} {unit}"


#: What the refusals call the matrix being built: "Hessian" while `hessian` builds one (`building`).
MATRIX = contextvars.ContextVar("jacobian_lab_matrix", default="Jacobian")
OWN.add(MATRIX)


@contextlib.contextmanager
def building(matrix: str):
    """Within the block, refusals name `matrix` ("Hessian") and the products that stand in for it."""
    previous = MATRIX.get()
    try:  # set inside and restored by value: a Ctrl-C right after the set would leave its token unkept
        MATRIX.set(matrix)
        yield
    finally:
        MATRIX.set(previous)


def _products() -> str:
    """What to compute instead of the full matrix: the products of its derivative function."""
    if MATRIX.get() == "Hessian":
        return "jl.hvp for the Hessian-vector products you need (jl.sparse_hessian for a sparse Hessian)"
    return "jvp/vjp for the products you need instead of the full Jacobian"


def check_dense(m: int, n: int, itemsize: int, limit: int) -> int:
    """Refuse an (m, n) result larger than `limit` bytes; return its size in bytes."""
    need = m * n * itemsize
    if need > limit:
        matrix, products = MATRIX.get(), _products()
        what, smaller = f"the dense {m}x{n} {matrix} needs", "P" if matrix == "Hessian" else (
            "Differentiate a smaller function or a slice of the outputs, p")
        if matrix == "Jacobian":  # (a Hessian's products name sparse_hessian)
            products += " (jl.sparse_jacobian for one with few entries per row, which it stores alone)"
        if matrix == "Hessian" and m != n:  # a vector-valued f: an n x n Hessian per output, which hvp does not take
            what = f"the {m // n:,} dense {n}x{n} Hessians of f's outputs need"
            smaller = "Differentiate fewer outputs, p"
            products = "jl.hvp of a scalar function of them (one output, or a weighted sum)"
        raise MemoryBudgetError(f"{what} {readable(need)}, over the memory budget of {readable(limit)} "
                                f"(max_memory). {smaller}ass a larger max_memory, or use {products}.")
    return need


def one_seed_advice(other=None) -> str:
    """What to do when one seed alone outgrows the budget: no batch size helps, so none is suggested.

    `other` names the other accumulation order ("reverse mode") when its pass is known to fit, or says
    when it would (`UNPRICED_REVERSE`), else None.

    >>> one_seed_advice("reverse mode")
    'use reverse mode, a larger max_memory or jvp/vjp for the products you need instead of the full Jacobian'
    """
    other = f"{other}, " if other else ""
    return f"use {other}a larger max_memory or {_products()}"


#: The other order for a forward pass without a tape, which cannot tell whether a sweep fits.
UNPRICED_REVERSE = "reverse mode where one of its sweeps fits"


def forward_pass_error(seeds: int, created: float, max_bytes: int, other=UNPRICED_REVERSE,
                       sweep_bytes: int = 0) -> MemoryBudgetError:
    """The error of a forward pass of `seeds` seeds that created `created` bytes of tangents, over `max_bytes`.

    It carries ``seed_bytes`` (bytes per seed) and ``max_bytes`` for the harness
    to retry with. A smaller batch is suggested only when one seed's share fits:
    what a seed created before the pass stopped is a low estimate of its whole
    pass, so when even that is over the budget, no batch size helps.
    `other`, the other order (`one_seed_advice`), is suggested too (None: not, when its pass is known
    not to fit, at `sweep_bytes` a sweep where a tape told them).
    """
    fewer = int(max_bytes * seeds // created)
    if seeds > 1 and fewer >= 1:
        also = f", {other}" if other else ""
        advice = (f"use batch_size=None, which sizes the passes to fit, a smaller batch_size (batch_size <= "
                  f"{fewer} at most: the pass stopped part way, so fewer may be needed){also} or a larger max_memory")
    else:
        advice = ("one seed alone needs more; " if seeds > 1 else "") + one_seed_advice(other)
    error = MemoryBudgetError(
        f"a forward pass with {seeds} tangent seed{'s' if seeds > 1 else ''} needs more than "
        f"{readable(max_bytes)} of tangents, what max_memory leaves beside the result"
        f"{f', nor does a reverse sweep (about {readable(sweep_bytes)})' if sweep_bytes else ''}; {advice}"
    )
    error.seed_bytes, error.max_bytes = created / seeds, max_bytes
    return error


class TangentBudget:
    """The tangent bytes one forward pass created, held against `max_bytes` (None: no limit).

    The sum of every tangent created is an upper bound of what the pass holds at
    once; past the limit `account` raises `forward_pass_error`'s `MemoryBudgetError`
    carrying ``seed_bytes``, the bytes one seed needed, and ``max_bytes``, the budget it
    outgrew (what is left once the result is set aside), so the harness can retry with
    fewer seeds per pass.
    """

    def __init__(self, max_bytes, seeds: int):
        self.max_bytes, self.seeds, self.created = max_bytes, max(seeds, 1), 0

    def account(self, tangent) -> None:
        if self.max_bytes is None:
            return
        self.created += getattr(tangent, "nbytes", 0)
        if self.created > self.max_bytes:
            raise forward_pass_error(self.seeds, self.created, self.max_bytes)
