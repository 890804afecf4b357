"""The harness: input checks, flattening, seeds, the column and row loops, batching and extraction.

Forward accumulation pushes one-hot tangent seeds through JVPs and gets
Jacobian columns; reverse accumulation pulls one-hot cotangent seeds through
VJPs of one recorded tape and gets rows. Both share `seeds`, `schedule` and
`batches`, and fill one result array (reverse by rows of an (m, n) matrix,
forward by rows of its (n, m) transpose), returned as ``y.shape + x.shape``.
A structured f (a tree of arrays in or out) is differentiated flat (`prepare`).
The public transforms built on it (`jacobian`, `jacfwd`, `jvp`, ...) are in
`jacobian_lab.jacobian`.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from functools import partial
from typing import Callable

import numpy as np

from . import arguments, engines, inplace, memory, sharding, snapshots, trees
from .primitives import is_masked
from .tracing import Tracer, from_objects

MODES = ("forward", "reverse", "auto")


# Seeds x width per pass with batch_size=None, width being x's size (forward) or the
# widest recorded value (reverse): a pass's derivative arrays stay about the size of a
# core's L2 cache (2 MiB of float64), so elementwise rules work on cached data. Passes
# that stream every seed through arrays of tens of MB take up to twice as long.
PASS_ELEMENTS = 1 << 18
# A reverse tape is refused while f records it once it passes both the memory budget and this (see `rows`).
RECORDED_BYTES = 64 << 20


NO_TAPE = ("Forward mode keeps no tape (mode='forward', jl.jacfwd: a pass per batch of input seeds, or jl.jvp for "
           "the products you need)")


def record(f: Callable, x: np.ndarray, limit: int | None = None, advice: str = NO_TAPE) -> tuple:
    """(y, pullback): f's tape at x, refused as f records it once it holds more than either order could use.

    With a budget of `limit` bytes, which sweeps and the result share, that is
    the budget (a sweep holds a cotangent per recorded value, so a tape past it
    could not be swept), or RECORDED_BYTES where that is more: a smaller tape
    is recorded whole, so that the refusal after it names what does not fit,
    J or a sweep. With None, what the process can take now, past which NumPy
    would fail part way. `advice` ends the refusal: the ways that need no tape.
    """
    if limit is None:
        max_bytes, over = memory.recently_available(), "the memory this process can take now"
    else:
        max_bytes, over = limit, (f"more than the memory budget of {memory.readable(limit)} (max_memory) leaves, "
                                  "since a sweep would hold as much again; or pass a larger max_memory")
    return engines.get("reverse").vjp(f, x, max(max_bytes, RECORDED_BYTES), f"{over}. {advice}")


def _leaf_input(leaf, where: str, nested: bool = False) -> np.ndarray:
    """`as_input` of a leaf of a structured x (or of an argument of f), its refusal saying `where` it sits."""
    try:
        return as_input(leaf, nested)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{where}: {error}") from None


def _layout(x):
    """`snapshots.layout` of a plain x; a traced one reaches f as it is, never relaid."""
    return "C" if isinstance(x, Tracer) else snapshots.layout(x)


def _array0(x) -> bool:
    """Whether x is a 0-d array, which takes writes (x[()] = v), where a Python float or a NumPy scalar does not:
    f gets it so (`inplace.array0`)."""
    return isinstance(x, np.ndarray) and x.ndim == 0 or isinstance(x, Tracer) and getattr(x, "_mutable", False)


def _read_only(x) -> bool:
    """Whether f may not write into x, as NumPy would refuse (`inplace.read_only`)."""
    return isinstance(x, np.ndarray) and not x.flags.writeable


def as_input(x, nested: bool = False) -> np.ndarray:
    """x as a float array; integers are promoted to float64, the rest is refused. A traced x (this call runs
    inside another derivative) passes as it is where `nested`, and is refused elsewhere."""
    if getattr(x, "_trace", None) is not None and x.constant:  # np.ones_like(x) in f: its plain values
        x = np.asarray(x)
    elif getattr(x, "_trace", None) is not None:
        if nested:
            return x
        raise NotImplementedError(
            "x is itself a traced array: this call runs inside another derivative, where jacobian, jacfwd, "
            "jacrev, grad, value_and_grad, jvp, vjp, hessian, hvp and jit of those nest (jl.jacfwd(jl.grad(f))), but "
            "counting, prediction, sparsity and chains (count_flops, measure, predict, compare, sparsity, "
            "sparse_jacobian, sparse_hessian, Chain) do not; call them on the outer function instead"
        )
    if x is None or isinstance(x, (str, bytes, dict)):
        fix = {type(None): "pass the point to differentiate at, an array of floats",
               dict: "this takes one array: pass np.concatenate of the values (jl.jacobian takes a dict of arrays)"}
        raise TypeError(f"x must be a float array, got {type(x).__name__}; "
                        + fix.get(type(x), "pass an array of floats (text holds no numbers to differentiate)"))
    # np.asarray would drop what these subclasses mean, so f would trace other arithmetic than it runs.
    if is_masked(x):
        raise TypeError("x is a masked array, and traced arrays carry no mask, so f would not compute what it "
                        "computes on x; pass x.filled(value) or x.data and apply the mask inside f (np.where)")
    if isinstance(x, np.matrix):
        raise TypeError("x is an np.matrix, whose * is a matrix product; traced arrays are ndarrays, where * is "
                        "elementwise. Pass np.asarray(x) and write matrix products with @")
    given = x
    try:
        x = np.asarray(x)
    except ValueError as error:  # NumPy's "inhomogeneous shape": rows of different lengths
        raise ValueError(f"x is a ragged nested list, not one rectangular array ({error}); pass a list or "
                         "tuple of arrays (each one np.array) for a structure, or pad x to one array") from error
    kind = x.dtype.kind
    if kind in "iu":
        return x.astype(np.float64)
    if kind == "c":
        raise TypeError("complex input is not supported: differentiate the real and imaginary parts "
                        "as separate real inputs")
    if kind == "b":
        raise TypeError("x must be a float array, got dtype bool; booleans have no derivative, "
                        "convert with x.astype(float)")
    if kind != "f":
        if isinstance(given, (set, frozenset, Iterator)):
            fix = "pass its values in an array (np.fromiter(x, float) of a generator; a set has no order)"
        elif x.dtype.names is not None:  # a structured array: fields, which np.asarray(x, dtype=float) refuses
            fix = "pass its fields as a dict of arrays ({name: x[name] for name in x.dtype.names})"
        elif any(isinstance(v, np.ndarray) for v in _held(given, x)):  # arrays np.asarray cannot make one of
            fix = "pass the arrays it holds in a tuple, list or dict, a structure jacobian_lab differentiates"
        elif x.dtype == object and not x.ndim and not isinstance(given, (np.ndarray, numbers.Number)):
            fix = "pass the numbers it holds in an array (np.array([...])), or its arrays in a tuple, list or dict"
        else:
            fix = "convert it with np.asarray(x, dtype=float) if its entries are numbers"
        raise TypeError(f"x must be a float array, got {_described(given, x)}; {fix}")
    # bytes in the other order (a big-endian file's '>f4') are the same numbers: computed, and
    # differentiated, in the machine's own order of that dtype, float32 staying float32
    return x if x.dtype.isnative else x.astype(x.dtype.newbyteorder("="))


def check_function(f) -> None:
    """Refuse an f that cannot be called (x passed first is the usual slip)."""
    if not callable(f):
        raise TypeError(f"f must be a function of x, got {type(f).__name__}; the function comes first: "
                        "jacobian(f, x), jacrev(f)(x)")


def check_options(mode: str, batch_size, modes=MODES, name: str = "jacobian", argnums: bool = True) -> None:
    """Refuse a mode not in `modes`, and a batch_size that is not a positive integer or None; a second array where
    mode goes is refused naming how `name` (which takes `argnums` or not) differentiates several."""
    if mode is None:
        raise TypeError(f"mode must be one of {', '.join(map(repr, modes))}, got None; leave mode out for its "
                        "default")
    if not isinstance(mode, str):  # jacobian(f, x, y): a second input where mode goes
        raise TypeError(f"mode must be one of {', '.join(map(repr, modes))}, got {type(mode).__name__}; "
                        f"for a function of several arrays pass them as one tuple: {name}(lambda p: f(*p), (x, y))"
                        + (f", or use {name}(f, argnums=(0, 1))(x, y)" if argnums else ""))
    if mode not in modes:
        raise ValueError(f"mode must be one of {', '.join(map(repr, modes))}, got {mode!r}")
    _check_batch_size(batch_size)


def check_flat(flat) -> None:
    """Refuse a `flat` that is not a bool: a string such as "no" would read as True."""
    if not isinstance(flat, (bool, np.bool_)):
        raise TypeError(f"flat must be True or False, got {flat!r}")


def _check_batch_size(batch_size):
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")


def schedule(mode: str, n: int, m: int, batch_size=None, seed_bytes: int = 0, room: int = 0,
             widest: int = 0) -> tuple[int, int]:
    """(seeds per pass, passes) for an (m, n) Jacobian: forward seeds n inputs, reverse m outputs.

    With batch_size=None, a pass takes as many seeds as keep seeds x width
    under PASS_ELEMENTS, the width being n in forward mode and the widest
    recorded value (`widest`, from the tape) in reverse mode, and no more than
    fit in `room` bytes at `seed_bytes` each: the working set of one seed, a
    forward pass's tangents (`tangent_bytes`) or a sweep's cotangents (0: not
    known, no limit).
    """
    _check_batch_size(batch_size)
    seeds = n if mode == "forward" else m
    width = n if mode == "forward" else widest or max(n, m)
    if batch_size is None and seed_bytes:
        batch_size = min(PASS_ELEMENTS // max(width, 1), room // seed_bytes)
    step = seeds_per_pass(seeds, width, batch_size)
    return step, max(1, -(-seeds // step))


def tangent_bytes(pullback, x: np.ndarray) -> int:
    """Bytes the tangents of one seed take, at most, in a forward pass over `pullback`'s tape (0: no tape).

    A pass creates one tangent per recorded value but the input: `seed_elements`
    counts the input too. Each element is priced at 8 bytes at least, because a
    float32 x's tangents turn float64 wherever f mixes in a float64 constant, and
    a bound that fell short would let a pass outgrow the memory budget.

    >>> import numpy as np, jacobian_lab as jl
    >>> _, pullback = jl.engines.get("reverse").vjp(lambda x: np.sin(x) * 2.0, np.ones(5))
    >>> tangent_bytes(pullback, np.ones(5))  # sin(x) and its double: 10 elements
    80
    """
    elements = getattr(pullback, "seed_elements", None)
    if elements is None:  # f's output does not depend on x, yet a pass replays what f traced
        elements = getattr(getattr(pullback, "tape", None), "elements", 0)
    return max(elements - x.size, 0) * max(8, x.dtype.itemsize)


def seeds_per_pass(seeds: int, width: int, batch_size=None) -> int:
    """batch_size, or as many seeds as keep seeds x width (the derivative values per seed) under
    PASS_ELEMENTS; at least one and at most `seeds`.

    >>> seeds_per_pass(2000, 2000), seeds_per_pass(3, 2000), seeds_per_pass(2000, 2000, batch_size=16)
    (131, 3, 16)
    """
    if batch_size is None:
        batch_size = PASS_ELEMENTS // max(width, 1)
    return max(1, min(int(batch_size), seeds))


def batches(num_seeds: int, batch_size: int):
    """Half-open seed ranges [lo, hi), one per pass (one empty pass for zero seeds)."""
    if num_seeds == 0:
        yield 0, 0
    for lo in range(0, num_seeds, batch_size):
        yield lo, min(lo + batch_size, num_seeds)


def seeds(lo: int, hi: int, shape, dtype=np.float64) -> np.ndarray:
    """One-hot seeds e_lo .. e_(hi-1) of the flattened `shape`, as (hi - lo, *shape)."""
    size = math.prod(shape)
    e = np.zeros((hi - lo, size), dtype=dtype)
    e.reshape(-1)[lo::size + 1] = 1.0  # row i's one sits at column lo + i: a stride of size + 1
    return e.reshape((hi - lo,) + tuple(shape))


def _check_derivative(value, k, shape, what):
    expected = (k,) + tuple(shape)
    if getattr(value, "shape", None) != expected:
        raise RuntimeError(f"internal error: {what} has shape {np.shape(value)}, expected {expected}")
    return value


_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


def result_dtype(x) -> np.dtype:
    return _FLOAT32 if x.dtype == _FLOAT32 else _FLOAT64


def whole_block(block: np.ndarray, dtype) -> bool:
    """Whether a pass's derivative block can be the Jacobian itself, with no copy:
    C-ordered, writeable, of the result dtype, and holding no larger array alive."""
    base = block
    while isinstance(base.base, np.ndarray):
        base = base.base
    return (block.dtype == dtype and block.flags.c_contiguous and block.flags.writeable
            and base.nbytes == block.nbytes)


def columns(f: Callable, x: np.ndarray, batch_size=None, max_memory=None, recorded=None,
            executor=None) -> np.ndarray:
    """Forward accumulation: Jacobian columns from one-hot tangent seeds.

    A pass's tangent holds its columns as rows, so they are stored that way, in
    an (n, m) array, and J is returned as its transpose (column-major): no
    transposing copy, and one pass's tangent is the result as it stands.
    `recorded` is an already recorded ``(y, pullback)`` of f at x: each pass
    then replays its tape forward (`pullback.push`) instead of evaluating f
    again, and the tape tells the bytes a seed's tangents take before any pass
    runs, so passes are sized to the memory budget up front, as `rows` sizes
    its sweeps. Without a tape that is known only once a pass has run: a pass
    whose tangents outgrow the budget stops (its work is counted), and with
    batch_size=None the Jacobian is rebuilt with at most half as many seeds per
    pass, and no more than that pass showed will fit. With an `executor`, the
    passes after the first run on it (`jacobian_lab.sharding`).
    """
    push = recorded[1].push if recorded else partial(engines.get("forward").jvp, f, x)
    task = None
    if executor is not None:
        remote = push if sharding.shares_memory(executor) else partial(_pushed_as_laid, f, x, snapshots.layout(x))
        task = partial(_tangent_block, remote, x.shape, result_dtype(x))
    y_shape = np.shape(recorded[0]) if recorded else None  # else known after the first pass
    limit = memory.budget(max_memory)
    step, executor = _forward_step(x, batch_size, limit, recorded, executor)
    while True:
        try:
            return _columns(push, x, step, limit, y_shape, executor, task)
        except memory.MemoryBudgetError as error:
            seed_bytes = getattr(error, "seed_bytes", 0)
            if step == 1 and seed_bytes and recorded:
                # One seed outgrew the budget: the tape tells whether one reverse sweep would fit it instead.
                sweep = getattr(recorded[1], "seed_elements", 0) * result_dtype(x).itemsize
                fits = sweep <= error.max_bytes  # else say so: auto mode weighed it first, and neither order fits
                raise memory.forward_pass_error(1, seed_bytes, error.max_bytes, "reverse mode" if fits else None,
                                                0 if fits else sweep) from None
            if batch_size is not None or not seed_bytes or step == 1:
                if y_shape is None and type(x) is np.ndarray:  # no tape told the result's size: it may be what
                    # does not fit, which no batch size mends (f evaluated once more, to learn it)
                    memory.check_dense(np.size(f(x)), x.size, result_dtype(x).itemsize, limit)
                raise
            # As many seeds as fit the budget the pass outgrew, at the bytes per seed it had created when
            # it stopped, and at most half as many as it had: the pass stopped part way through f, so
            # that estimate is low, and trusting it alone retries nearly one seed fewer at a time.
            step = max(1, min(step // 2, int(getattr(error, "max_bytes", limit) // seed_bytes)))


def _forward_step(x, batch_size, limit, recorded, executor) -> tuple:
    """(seeds per forward pass, the executor to run them on). With a recorded tape, no more than fit the budget
    once the result is set aside (each worker of an executor gets its share, or where a pass does not fit one,
    the passes run one at a time here: no executor), so that no pass stops part way; without one, a seed's bytes
    are not known before a pass runs, and the `schedule` takes no account of memory."""
    seed_bytes = tangent_bytes(recorded[1], x) if recorded else 0
    if not seed_bytes:
        return schedule("forward", x.size, 0, batch_size)[0], executor
    m = math.prod(np.shape(recorded[0]))
    room = limit - memory.check_dense(m, x.size, result_dtype(x).itemsize, limit)
    room, executor = _share(room, seed_bytes, batch_size, executor, x.size)
    step, _ = schedule("forward", x.size, m, batch_size, seed_bytes, room)
    if step > 1 and step * seed_bytes > room:  # an explicit batch_size: refused before any pass runs
        raise _forward_budget_error(step, seed_bytes, room, x, recorded[1])
    return step, executor


def _share(room: int, seed_bytes: int, batch_size, executor, seeds: int) -> tuple:
    """(the room of each pass, the executor to run the passes on): each worker's share of `room`, where a pass
    of `batch_size` seeds (one, for None) at `seed_bytes` each fits it; else all of `room` and no executor, the
    passes run one at a time here, as without one (a share would refuse a budget a serial run meets)."""
    if executor is None:
        return room, None
    share = room // sharding.workers(executor, seeds)
    return (share, executor) if (batch_size or 1) * seed_bytes <= share else (room, None)


def _forward_budget_error(step, seed_bytes, room, x, pullback) -> memory.MemoryBudgetError:
    """The refusal of forward passes of `step` seeds at `seed_bytes` each in `room` bytes, with the fixes
    that can work."""
    # seed_bytes prices a tangent element at 8 bytes at least; one in the seeds' dtype (a float32 x whose f mixes
    # in no float64 constant) takes fewer, so a pass of one seed may fit down to `least` bytes.
    least = seed_bytes * result_dtype(x).itemsize // max(8, x.dtype.itemsize)
    # reverse mode is suggested only when one of its sweeps fits (as `rows` prices one)
    reverse = getattr(pullback, "seed_elements", 0) * result_dtype(x).itemsize <= room
    others = "reverse mode or a larger max_memory" if reverse else "a larger max_memory"
    if room >= seed_bytes:
        advice = f"use batch_size <= {room // seed_bytes}, batch_size=None, {others}"
    elif room >= least:
        advice = (f"one seed needs {memory.readable(least)} to {memory.readable(seed_bytes)}, so only one seed "
                  f"per pass may fit: use batch_size=None, {others}")
    else:  # not one seed fits: no batch size helps
        advice = (f"one seed alone needs at least {memory.readable(least)}; "
                  + memory.one_seed_advice("reverse mode" if reverse else None))
    return memory.MemoryBudgetError(
        f"a forward pass with {step} tangent seeds needs about {memory.readable(step * seed_bytes)}, over the "
        f"{memory.readable(room)} left in the memory budget (max_memory); {advice}"
    )


def _columns(push, x, step, limit, y_shape=None, executor=None, task=None):
    dtype, n = result_dtype(x), x.size  # row j of the (n, m) result J_T is column j of J

    def room_left(y_shape):  # the budget once the result is set aside
        return limit - memory.check_dense(math.prod(y_shape), n, dtype.itemsize, limit)

    room = limit if y_shape is None else room_left(y_shape)
    # a generator: one seed per pass makes n of them; none where a tape told y is empty (J has no entries)
    passes = batches(n if y_shape is None or math.prod(y_shape) else 0, step)
    lo, hi = next(passes)
    # seeds in the Jacobian's dtype, as a sweep's: a float16 x's tangents in float16 would round f's constants
    # (x * 1.1 has slope 1.0996) and overflow (x * 1e5: inf), where reverse mode's are float64
    y, y_dot = push(seeds(lo, hi, x.shape, dtype), max_bytes=room)
    if y_shape is None:
        y_shape = np.shape(y)
        room = room_left(y_shape)
    J_T = _fill(None, lo, hi, y_dot, y_shape, n, dtype, "tangent")
    if not math.prod(y_shape):  # J has no entries: the first pass told y's shape, and more would compute nothing
        return J_T.T.reshape(y_shape + x.shape)
    first, y_dot = y, None  # the tangents are not held while the other passes run

    def serial(ranges):
        return ((lo, hi, push(seeds(lo, hi, x.shape, dtype), max_bytes=room)) for lo, hi in ranges)

    def place(blocks, filled=None):
        nonlocal J_T
        for lo, hi, (y, y_dot) in blocks:
            _check_same_output(y, first, lo, "forward mode evaluates f once per pass",
                               "use mode='reverse' (one evaluation)")
            J_T = _fill(J_T, lo, hi, y_dot, y_shape, n, dtype, "tangent")
            if filled is not None:
                filled.add(lo)

    if executor is None:
        place(serial(passes))
        return J_T.T.reshape(y_shape + x.shape)
    rest, filled = list(passes), set()
    share = room // sharding.workers(executor, len(rest))
    try:
        place(sharding.map_passes(executor, task, rest, share), filled)
    except memory.MemoryBudgetError:
        if share >= room:
            raise
        # a pass outgrew its worker's share of the budget: it and the passes left run here, one at a
        # time, with all of it, as they would without the executor
        place(serial([(lo, hi) for lo, hi in rest if lo not in filled]))
    return J_T.T.reshape(y_shape + x.shape)


def _plain(value) -> bool:
    return type(value) is np.ndarray or isinstance(value, np.generic)  # not a tracer, nor a watched mask


def _check_same_output(y, first, lo, why: str, other: str) -> None:
    """Refuse a pass whose f(x) differs from the first pass's: its block of J would be another
    function's. Such passes evaluate f again, so a random or stateful f is found here, where its value
    changes (not its derivative alone: ``x ** calls`` at x = 1 keeps the value 1). Rounding may
    differ (BLAS with another number of threads in a worker sums in another order): up to
    sqrt(eps) of the largest value is the same f."""
    if not (_plain(y) and _plain(first)) or np.array_equal(y, first, equal_nan=True):
        return
    first = np.asarray(first)
    scale = np.max(np.abs(first), where=np.isfinite(first), initial=0.0)
    other_shape = np.shape(y) != first.shape
    if other_shape or not np.allclose(y, first, rtol=0.0, atol=np.sqrt(np.finfo(first.dtype).eps) * scale,
                                      equal_nan=True):
        returned = (f"shape {np.shape(y)} in the pass from seed {lo}, and shape {first.shape} in the first one"
                    if other_shape else f"other values in the pass from seed {lo} than in the first one")
        raise ValueError(
            f"f returned {returned}, at the same x: it draws "
            f"random numbers or keeps state between calls, and {why}, so the Jacobian's blocks would come from "
            "different functions. Make f deterministic (draw its random numbers outside f, or seed a generator "
            f"inside it), or {other}")


def _fill(result, lo, hi, value, shape, total, dtype, what):
    """`result` with rows lo..hi set from one pass's derivative `value`, checked to be (hi - lo, *shape).

    The first pass creates the (total, size of shape) result, or is the result
    itself, with no copy, when it covered all `total` seeds as a whole block.
    """
    block = _check_derivative(value, hi - lo, shape, what).reshape(hi - lo, math.prod(shape))
    if isinstance(block, Tracer) or isinstance(result, Tracer):
        return _joined(result, lo, block)
    if result is None:
        if hi - lo == total and whole_block(block, dtype):
            return block
        result = np.empty((total, block.shape[1]), dtype=dtype)
    result[lo:hi] = block
    return result


def _joined(result, lo, block):
    """The rows so far and a pass's block, joined by a traced np.concatenate.

    The blocks are traced when f closes over a value of an enclosing trace
    (``jacobian(lambda z: jacfwd(lambda w: np.sin(w) * z)(w0), z0)``): they are
    that trace's values, which a plain result array cannot hold.
    """
    if result is None:
        return block
    return np.concatenate([result[:lo], block])


def _pushed_as_laid(f, x, layout, tangents, max_bytes=None):
    """A forward pass in a worker process, at x laid out as the caller's was (pickle lays it out in C
    or F order): f may read the layout."""
    return engines.get("forward").jvp(f, snapshots.relaid(x, layout), tangents, max_bytes=max_bytes)


def _tangent_block(push, x_shape, dtype, lo, hi, max_bytes):
    """f's output and its tangents for seeds lo..hi: one forward pass, as an executor runs it."""
    return push(seeds(lo, hi, x_shape, dtype), max_bytes=max_bytes)


def rows(f: Callable, x: np.ndarray, batch_size=None, max_memory=None, recorded=None,
         executor=None) -> np.ndarray:
    """Reverse accumulation: Jacobian rows from one-hot cotangent seeds, one tape.

    `recorded` is an already recorded ``(y, pullback)`` of f at x to sweep
    instead of recording a new tape. With an `executor`, the sweeps after the
    first run on it (`jacobian_lab.sharding`).
    """
    limit = memory.budget(max_memory)
    y, pullback = recorded or record(f, x, limit)
    y_shape, m, dtype = y.shape, y.size, result_dtype(x)  # y: an ndarray or a NumPy scalar
    room = limit - memory.check_dense(m, x.size, dtype.itemsize, limit)
    seed_bytes = getattr(pullback, "seed_elements", 0) * dtype.itemsize
    room, executor = _share(room, seed_bytes, batch_size, executor, m)
    step, _ = schedule("reverse", x.size, m, batch_size, seed_bytes, room, getattr(pullback, "widest", 0))
    if seed_bytes and step * seed_bytes > room:  # one cotangent too: as a forward pass of one seed stops
        if room >= seed_bytes:
            advice = f"use batch_size <= {room // seed_bytes} or batch_size=None"
        else:  # not one cotangent fits: no batch size helps; forward mode only when one seed's tangents fit
            advice = ((f"one cotangent alone needs about {memory.readable(seed_bytes)}; " if step > 1 else "")
                      + memory.one_seed_advice("forward mode" if tangent_bytes(pullback, x) <= room else None))
        raise memory.MemoryBudgetError(
            f"a sweep with {step} cotangent{'s' * (step > 1)} needs about {memory.readable(step * seed_bytes)}, over "
            f"the {memory.readable(room)} left in the memory budget (max_memory); {advice}"
        )
    passes = batches(m if x.size else 0, step)  # an empty x: J has no entries, and one sweep of no seeds is run
    lo, hi = next(passes)
    # The first sweep stages the tape's rules, once; with a single sweep its cotangent is J.
    J = _fill(None, lo, hi, pullback(seeds(lo, hi, y_shape, dtype)), x.shape, m, dtype, "cotangent")
    if executor is None:
        for lo, hi in passes:
            J = _fill(J, lo, hi, pullback(seeds(lo, hi, y_shape, dtype)), x.shape, m, dtype, "cotangent")
    else:
        remote = partial(_swept, pullback) if sharding.shares_memory(executor) else \
            partial(_record_and_sweep, f, x, snapshots.layout(x))
        task = partial(_cotangent_block, remote, y_shape, dtype)
        for lo, hi, (y_pass, x_bar) in sharding.map_passes(executor, task, list(passes)):
            _check_same_output(y_pass, y, lo, "each worker process records f again", "use a thread pool")
            J = _fill(J, lo, hi, x_bar, x.shape, m, dtype, "cotangent")
    return J.reshape(y_shape + x.shape)


def _cotangent_block(sweep, y_shape, dtype, lo, hi):
    """f's output where the sweep evaluated it again (else None) and the cotangents of x for seeds
    lo..hi: one sweep, as an executor runs it."""
    return sweep(seeds(lo, hi, y_shape, dtype))


def _swept(pullback, g):
    return None, pullback(g)  # the caller's tape: f is not evaluated again


def _record_and_sweep(f, x, layout, g):
    """A sweep of g in a worker that cannot use the caller's tape: it records its own, at x laid out as
    the caller's was."""
    y, pullback = record(f, snapshots.relaid(x, layout))
    if np.shape(y) != np.shape(g)[1:]:  # f returned another shape here, which the caller names
        return y, None
    return y, pullback(g)


def flat_output(out) -> tuple:
    """``(out, None)`` for an array; for a tree of arrays (a tuple, list or dict f returned), its leaves
    ravelled into one vector and the tree's structure."""
    if not trees.is_tree(out):
        return out, None
    leaves, out_def = trees.flatten(out)
    leaves = [from_objects(leaf) for leaf in leaves]  # np.array([a, b]) of traced scalars
    # a Python number is a 0-d array, as JAX reads one (a constant: [1.0, 2.0] has a zero Jacobian); an int's
    # dtype is then refused by `trees.ravel`, as an int array's is
    leaves = [np.asarray(leaf) if isinstance(leaf, (int, float, complex)) else leaf for leaf in leaves]
    if not leaves:
        raise TypeError("f returned an empty structure; it must return at least one array")
    for leaf in leaves:
        if not isinstance(leaf, (np.ndarray, np.generic, Tracer)):
            whole, entry = (trees.with_article(type(v).__name__) for v in (out, leaf))
            raise TypeError(
                f"f returned {whole} holding {entry}; every entry of a structured output must be an array "
                "(build one array with np.stack, or return arrays)"
            )
    return trees.ravel(leaves), out_def


class Flattened:
    """f as the engines see it: one float array in, one array out.

    A structured x (a tree of arrays) becomes one flat vector, and a structured
    output is ravelled, its structure remembered in `out_def`; plain arrays pass
    through untouched. `structured` says whether the Jacobian needs reshaping.
    """

    def __init__(self, f: Callable, x, nested: bool = False):
        check_function(f)
        self.f, self.in_def, self.out_def = f, None, None
        where = arguments.naming(f)  # argnums: which of f's arguments
        if not trees.is_tree(x) or trees.is_numbers(x):
            # a nested list of plain numbers is an array, as np.asarray reads it
            self.x = as_input(x, nested) if where is None else _leaf_input(x, where(""), nested)
            # as the caller gave x: through another Flattened (measure's, compare's), as that one was given it
            array0 = f.array0 if isinstance(f, Flattened) and f.in_def is None else _array0(x)
            self.layout, self.read_only, self.array0 = _layout(self.x), _read_only(x), array0
            return
        leaves, self.in_def = trees.flatten(x)
        if not leaves:
            raise ValueError(f"x is an empty structure ({x!r}): it holds nothing to differentiate; give it at "
                             "least one array, or, for an argument of f, leave it out of argnums")
        where = where or (lambda path: f"x{path}")
        self.read_only = tuple([_read_only(leaf) for leaf in leaves])  # as given, before any conversion
        numbers = arguments.numbers(f)  # f's arguments given as numbers, made 0-d arrays to sit in x's tuple
        self.array0 = tuple([_array0(leaf) and path.partition("]")[0] not in numbers
                             for leaf, path in zip(leaves, trees.paths(self.in_def))])
        leaves = [_leaf_input(leaf, where(path), nested) for leaf, path in zip(leaves, trees.paths(self.in_def))]
        self.x = np.concatenate([np.ravel(leaf) for leaf in leaves])
        # f gets each leaf back laid out as it was (in Fortran order, a view's): NumPy reads it the same way
        self.layout = tuple([_layout(leaf) for leaf in leaves])

    @property
    def structured(self) -> bool:
        return self.in_def is not None or self.out_def is not None

    def __call__(self, v):
        if self.in_def is None and isinstance(v, Tracer):
            if self.read_only:
                inplace.read_only(v)
            if self.array0:
                inplace.array0(v)
        try:
            y = self.f(v if self.in_def is None else self.in_def.unflatten(self._leaves(v)))
        except TypeError as error:
            if self.in_def is not None and self.in_def.kind is tuple and "positional argument" in str(error):
                error.add_note("jacobian_lab passes x to f as one argument, here a tuple; for f(a, b) pass "
                               "lambda p: f(*p) in f's place (jl.jvp(lambda p: f(*p), (a, b), (a_dot, b_dot))), "
                               "or to jacobian, grad and hessian argnums=(0, 1): jl.grad(f, argnums=(0, 1))(a, b)")
            raise
        out, out_def = flat_output(y)
        if out_def is not None:
            self.out_def = out_def
        return out

    def _leaves(self, v) -> list:
        """x's arrays cut from the flat v, each one of its own to f, as the caller's arrays are (they are
        views of v, which f never sees, so an in-place operator on one has nothing to write through to)."""
        leaves = trees.split(v, self.in_def)
        for i, (leaf, layout, read_only, array0) in enumerate(zip(leaves, self.layout, self.read_only, self.array0)):
            if isinstance(leaf, Tracer):
                inplace.detach(leaf)
                inplace.laid_as(leaf, layout)
                if read_only:
                    inplace.read_only(leaf)
                if array0:
                    inplace.array0(leaf)
            else:
                leaves[i] = snapshots.relaid(leaf, layout)
        return leaves

    def unflatten_jacobian(self, J, y_shape):
        out_def = self.out_def or trees.TreeDef(None, shape=tuple(y_shape))
        in_def = self.in_def or trees.TreeDef(None, shape=self.x.shape)
        return trees.blocks(J.reshape(out_def.size, self.x.size), out_def, in_def)

    def unflatten(self, value, which: str):
        treedef = self.in_def if which == "in" else self.out_def
        return value if treedef is None else treedef.unflatten(trees.split(value, treedef))


def prepare(f: Callable, x, nested: bool = False) -> tuple[Flattened, np.ndarray]:
    """(f, x) as the engines take them: x one float array, f returning one array. `nested`: x may be traced,
    by a derivative taken around this call."""
    g = Flattened(f, x, nested)
    return g, g.x


def _held(given, array: np.ndarray) -> list:
    """What an x of no numbers holds: an object array's elements, or an object's attributes."""
    if array.dtype != object:
        return []
    if array.ndim:
        return list(array.flat)
    slots = [name for cls in type(given).__mro__ for name in cls.__dict__.get("__slots__", ())]
    return list(getattr(given, "__dict__", {}).values()) + [getattr(given, name, None) for name in slots]


def _described(value, array: np.ndarray) -> str:
    """What was given in place of a float array: its dtype, or for what NumPy wraps whole in a 0-d
    object array (None, a set, a generator, a Fraction) its type."""
    if array.dtype == object and array.ndim == 0 and not isinstance(value, np.ndarray):
        return "None" if value is None else type(value).__name__
    return f"dtype {array.dtype}"
