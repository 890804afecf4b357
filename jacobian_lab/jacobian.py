"""The harness: seeds, the column and row loops, batching and extraction.

Forward accumulation pushes one-hot tangent seeds through JVPs and gets
Jacobian columns; reverse accumulation pulls one-hot cotangent seeds through
VJPs of one recorded tape and gets rows. Both share `_seeds` / `_batches` and
write into one preallocated ``(m, n)`` matrix, returned as ``y.shape + x.shape``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import engines

MODES = ("forward", "reverse", "auto")
MAX_BATCH_ELEMENTS = 1 << 22  # seeds x width per pass: bounds one derivative array to 32 MiB


def as_input(x) -> np.ndarray:
    """x as a float array; integers are promoted to float64, the rest is refused."""
    if getattr(x, "_trace", None) is not None:
        raise NotImplementedError(
            "x is itself a traced array: nesting differentiation (e.g. jacfwd(jacrev(f))) is not supported yet"
        )
    if x is None or isinstance(x, (str, bytes, dict)):
        raise TypeError(f"x must be a float array, got {type(x).__name__}")
    x = np.asarray(x)
    kind = x.dtype.kind
    if kind in "iu":
        return x.astype(np.float64)
    if kind == "c":
        raise TypeError("complex input is not supported: differentiate the real and imaginary parts "
                        "as separate real inputs")
    if kind != "f":
        raise TypeError(f"x must be a float array, got dtype {x.dtype}"
                        + ("; booleans have no derivative, convert with x.astype(float)" if kind == "b" else ""))
    return x


def _check_batch_size(batch_size):
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")


def resolve_batch(batch_size, num_seeds: int, width: int) -> int:
    """Seeds per pass: as given, or as many as keep one derivative array bounded."""
    _check_batch_size(batch_size)
    if batch_size is None:
        batch_size = max(1, MAX_BATCH_ELEMENTS // max(width, 1))
    return max(1, min(int(batch_size), num_seeds))


def schedule(mode: str, n: int, m: int, batch_size=None) -> tuple[int, int]:
    """(seeds per pass, passes) for an (m, n) Jacobian: forward seeds n inputs, reverse m outputs."""
    seeds, width = (n, n) if mode == "forward" else (m, max(m, n))
    step = resolve_batch(batch_size, seeds, width)
    return step, max(1, -(-seeds // step))


def batches(num_seeds: int, batch_size: int):
    """Half-open seed ranges [lo, hi), one per pass (one empty pass for zero seeds)."""
    if num_seeds == 0:
        yield 0, 0
    for lo in range(0, num_seeds, batch_size):
        yield lo, min(lo + batch_size, num_seeds)


def seeds(lo: int, hi: int, shape, dtype=np.float64) -> np.ndarray:
    """One-hot seeds e_lo .. e_(hi-1) of the flattened `shape`, as (hi - lo, *shape)."""
    e = np.zeros((hi - lo, int(np.prod(shape, dtype=np.int64))), dtype=dtype)
    e[np.arange(hi - lo), np.arange(lo, hi)] = 1.0
    return e.reshape((hi - lo,) + tuple(shape))


def _check_derivative(value, k, shape, what):
    expected = (k,) + tuple(shape)
    if np.shape(value) != expected:
        raise RuntimeError(f"internal error: {what} has shape {np.shape(value)}, expected {expected}")
    return value


def _result_dtype(x):
    return np.result_type(x.dtype, np.float64) if x.dtype != np.float32 else np.float32


def columns(f: Callable, x: np.ndarray, batch_size=None) -> np.ndarray:
    """Forward accumulation: Jacobian columns from one-hot tangent seeds."""
    engine = engines.get("forward")
    n, (step, _) = x.size, schedule("forward", x.size, 0, batch_size)
    J = y_shape = None
    for lo, hi in batches(n, step):
        y, y_dot = engine.jvp(f, x, seeds(lo, hi, x.shape, x.dtype))
        if J is None:
            y_shape = np.shape(y)
            J = np.empty((int(np.prod(y_shape, dtype=np.int64)), n), dtype=_result_dtype(x))
        J[:, lo:hi] = _check_derivative(y_dot, hi - lo, y_shape, "tangent").reshape(hi - lo, -1).T
    return J.reshape(y_shape + x.shape)


def rows(f: Callable, x: np.ndarray, batch_size=None) -> np.ndarray:
    """Reverse accumulation: Jacobian rows from one-hot cotangent seeds, one tape."""
    y, pullback = engines.get("reverse").vjp(f, x)
    y_shape, m = np.shape(y), np.size(y)
    step, _ = schedule("reverse", x.size, m, batch_size)
    J = np.empty((m, x.size), dtype=_result_dtype(x))
    for lo, hi in batches(m, step):
        x_bar = pullback(seeds(lo, hi, y_shape, J.dtype))
        J[lo:hi] = _check_derivative(x_bar, hi - lo, x.shape, "cotangent").reshape(hi - lo, -1)
    return J.reshape(y_shape + x.shape)


def choose_mode(f: Callable, x: np.ndarray, batch_size=None) -> str:
    """The accumulation order with fewer predicted FLOPs (see `jacobian_lab.predict`)."""
    from .prediction import predict

    return predict(f, x).choose(batch_size)[0]


def jacobian(f: Callable, x, mode: str = "auto", batch_size=None) -> np.ndarray:
    """The Jacobian of f at x, shape ``f(x).shape + x.shape``.

    mode: "forward" (columns from JVPs), "reverse" (rows from VJPs of one tape)
    or "auto" (the order with fewer predicted FLOPs). batch_size: seeds per pass;
    1 = one pass per seed, None = as many as keep a pass's arrays bounded.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.jacobian(lambda x: x[:2] * x[1:], np.array([1.0, 2.0, 3.0]), mode="forward")
    array([[2., 1., 0.],
           [0., 3., 2.]])
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    x = as_input(x)
    _check_batch_size(batch_size)
    if mode == "auto":
        mode = choose_mode(f, x, batch_size)
    return (columns if mode == "forward" else rows)(f, x, batch_size)


def jacfwd(f: Callable, *, batch_size=None) -> Callable:
    """Jacobian by forward accumulation, as a function of x (like ``jax.jacfwd``).

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.jacfwd(np.sin)(np.zeros(2))
    array([[1., 0.],
           [0., 1.]])
    """
    return lambda x: jacobian(f, x, mode="forward", batch_size=batch_size)


def jacrev(f: Callable, *, batch_size=None) -> Callable:
    """Jacobian by reverse accumulation, as a function of x (like ``jax.jacrev``).

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.jacrev(lambda x: np.sum(x ** 2))(np.array([1.0, 2.0]))
    array([2., 4.])
    """
    return lambda x: jacobian(f, x, mode="reverse", batch_size=batch_size)


def grad(f: Callable) -> Callable:
    """Gradient of a scalar-valued f, as a function of x (like ``jax.grad``).

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.grad(lambda x: np.sum(np.sin(x)))(np.zeros(3))
    array([1., 1., 1.])
    """
    def gradient(x):
        x = as_input(x)
        y, pullback = engines.get("reverse").vjp(f, x)
        if np.shape(y) != ():
            raise TypeError(f"grad requires f to return a scalar (shape ()), got shape {np.shape(y)}; "
                            "use jacrev for vector outputs")
        return pullback(np.ones((1,), dtype=_result_dtype(x)))[0]
    return gradient


def _split_batch(value, shape, name):
    """Accept `shape` (one direction) or `(k, *shape)` (k directions): -> (batched, was_batched)."""
    value = np.asarray(value)
    if value.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a float array, got dtype {value.dtype}")
    value = value.astype(np.result_type(value.dtype, np.float64))
    if value.shape == tuple(shape):
        return value[None], False
    if value.ndim == len(shape) + 1 and value.shape[1:] == tuple(shape):
        return value, True
    raise ValueError(f"{name} must have shape {tuple(shape)} or (k, *{tuple(shape)}) for k directions, "
                     f"got {value.shape}")


def jvp(f: Callable, x, x_dot):
    """Evaluate f at x and its Jacobian-vector product J @ x_dot (one forward pass).

    x_dot has x's shape, or ``(k, *x.shape)`` to push k tangents in one pass;
    y_dot then has ``y.shape`` or ``(k, *y.shape)``.

    >>> import numpy as np, jacobian_lab as jl
    >>> y, y_dot = jl.jvp(lambda x: x ** 3, np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    >>> y, y_dot
    (array([1., 8.]), array([3., 0.]))
    """
    x = as_input(x)
    tangents, batched = _split_batch(x_dot, x.shape, "x_dot")
    y, y_dot = engines.get("forward").jvp(f, x, tangents)
    _check_derivative(y_dot, len(tangents), np.shape(y), "tangent")
    return y, (y_dot if batched else y_dot[0])


def vjp(f: Callable, x):
    """Evaluate f at x and return ``(y, pullback)``, pullback(y_bar) = y_bar @ J.

    One tape is recorded; every call of pullback sweeps it backward. y_bar has
    y's shape, or ``(k, *y.shape)`` for k cotangents in one sweep.

    >>> import numpy as np, jacobian_lab as jl
    >>> y, pullback = jl.vjp(lambda x: x * x, np.array([1.0, 2.0]))
    >>> pullback(np.array([1.0, 1.0]))
    array([2., 4.])
    """
    x = as_input(x)
    y, sweep = engines.get("reverse").vjp(f, x)

    def pullback(y_bar):
        cotangents, batched = _split_batch(y_bar, np.shape(y), "y_bar")
        x_bar = _check_derivative(sweep(cotangents), len(cotangents), x.shape, "cotangent")
        return x_bar if batched else x_bar[0]

    return y, pullback
