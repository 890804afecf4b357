"""Built-in problem suite: functions whose Jacobians the engines compete on.

Every problem is a plain-NumPy function ``f`` written the way a user would
write it, a default input point ``x`` and a hand-derived analytic Jacobian.

==============  ===================  ==================  ================================
name            f                    default shape       cheaper full Jacobian
==============  ===================  ==================  ================================
seed            sum(sin(exp(x**2)))  R^1000 -> R         reverse (one output)
mlp_loss        MSE of a tanh MLP    R^2200 -> R         reverse (gradient of a loss)
curve           damped oscillation   R^4 -> R^2000       forward (four parameters)
dense           tanh(W @ x + b)      R^300 -> R^300      either (square)
bratu           Bratu residual       R^2000 -> R^1998    either (near square, banded)
wide_to_tall    x -> 10 -> y         R^1000 -> R^1000    either; bottleneck of width 10
tall_to_wide    x -> 1000 -> y       R^10 -> R^10        either; wide middle layer
==============  ===================  ==================  ================================

Use :func:`get` to build a problem (optionally resized with ``n``/``m`` and
re-randomised with ``seed``), :func:`names` for the teaching order and
:func:`describe` for a one-line listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Problem", "PROBLEMS", "get", "names", "describe"]


@dataclass(frozen=True, eq=False)
class Problem:
    """A differentiable test function together with its exact Jacobian.

    ``jacobian_exact(x)`` has shape ``f(x).shape + x.shape``. ``winner`` is
    ``"forward"``, ``"reverse"`` or ``"either"``: the accumulation order that
    should need fewer FLOPs for the full Jacobian at this problem's sizes.
    """

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    x: np.ndarray
    summary: str
    winner: str
    why: str
    jacobian_exact: Callable[[np.ndarray], np.ndarray]

    @property
    def n(self) -> int:
        """Number of inputs."""
        return int(self.x.size)

    @property
    def m(self) -> int:
        """Number of outputs (1 for a scalar-valued problem)."""
        return int(np.size(self.f(self.x)))


# ---------------------------------------------------------------- helpers


def _size(problem: str, param: str, value, default: int, minimum: int = 1) -> int:
    """Validate an optional size argument, returning ``default`` for None."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        allowed = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(
            f"problem {problem!r}: parameter {param} must be {allowed} (got {value!r})"
        )
    return int(value)


def _no_size(problem: str, param: str, value, reason: str) -> None:
    """Reject a size argument the problem does not have."""
    if value is not None:
        raise ValueError(
            f"problem {problem!r} takes no parameter {param} ({reason}); "
            f"only n can be set: leave {param} out (got {param}={value!r})"
        )


def _seeds(count: int, kind: str = "") -> str:
    """"1 tangent seed", "200 cotangent seeds": the one-hot seeds an order pushes, one per input or output
    (vector mode carries many in one pass)."""
    return _counted(count, f"{kind} seed".strip())


def _counted(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one}" if count == 1 else f"{count} {many or one + 's'}"


def _verdict(n: int, m: int) -> tuple[str, str]:
    """Winner by seed count, plus a clause explaining it."""
    if m < n:
        return "reverse", (f"reverse mode needs {_seeds(m, 'cotangent')} (one per output), "
                           f"forward mode {_seeds(n, 'tangent')} (one per input)")
    if n < m:
        return "forward", (f"forward mode needs {_seeds(n, 'tangent')} (one per input), "
                           f"reverse mode {_seeds(m, 'cotangent')} (one per output)")
    return "either", (f"with n = m = {n} both modes need {_seeds(n)} and, to first order, "
                      f"the same FLOPs")


# A problem whose weights alone take more than this share of the free memory is refused before they are
# drawn: its Jacobian and a pass's derivatives take as much again, and the system would end the process
# without a word (NumPy's allocation succeeds, and filling it does not).
WEIGHTS_SHARE = 4


def _weights(rng, shape: tuple, name: str, sizes: str = "n or m"):
    """A standard normal matrix of `shape`, refused (ValueError) when it would not fit (`WEIGHTS_SHARE`):
    the message names the `sizes` the problem takes."""
    from .memory import available_bytes, readable

    needed, free = 8 * shape[0] * shape[1], available_bytes()
    if needed * WEIGHTS_SHARE > free:
        raise ValueError(f"{name}'s {shape[0]:,} x {shape[1]:,} weights take {readable(needed)}, more than "
                         f"1/{WEIGHTS_SHARE} of the {readable(free)} of memory free; choose a smaller {sizes}")
    return rng.standard_normal(shape)


def _tanh_chain(name: str, n: int, m: int, k: int, seed: int, shape_note: str,
                route: str) -> Problem:
    """Two tanh layers x (n) -> z = tanh(A @ x) (k) -> y = tanh(B @ z) (m)."""
    rng = np.random.default_rng(seed)
    A = _weights(rng, (k, n), name) / np.sqrt(n)
    B = _weights(rng, (m, k), name) / np.sqrt(k)
    x = rng.standard_normal(n)

    def f(x):
        return np.tanh(B @ np.tanh(A @ x))

    def jacobian_exact(x):
        z = np.tanh(A @ x)
        y = np.tanh(B @ z)
        # diag(1 - y^2) B diag(1 - z^2) A, multiplied through the middle layer
        return ((1 - y**2)[:, None] * B) @ ((1 - z**2)[:, None] * A)

    winner, clause = _verdict(n, m)
    return Problem(
        name=name,
        f=f,
        x=x,
        summary=f"tanh(B @ tanh(A @ x)): R^{n} -> R^{k} -> R^{m}, {shape_note}",
        winner=winner,
        why=f"For the full {m}x{n} Jacobian {clause}; {route}.",
        jacobian_exact=jacobian_exact,
    )


# --------------------------------------------------------------- builders


def seed_problem(n: int | None = None, m: int | None = None, seed: int = 0) -> Problem:
    """``f(x) = sum(sin(exp(x**2)))``: R^n -> R, output shape ``()``.

    The composition F = D o C o B o A with A = x**2, B = exp, C = sin and
    D = sum. ``n`` is the input length (default 1000); there is no ``m``.
    x is uniform in [-1, 1], so exp(x**2) <= e.

    Reverse mode wins: one backward pass yields the whole gradient, whereas
    forward mode needs one tangent pass per input.
    """
    name = "seed"
    n = _size(name, "n", n, 1000)
    _no_size(name, "m", m, "its output is a scalar")
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, n)

    def f(x):
        return np.sum(np.sin(np.exp(x**2)))

    def jacobian_exact(x):
        e = np.exp(x**2)
        return 2 * x * e * np.cos(e)

    winner, clause = _verdict(n, 1)
    return Problem(
        name=name, f=f, x=x,
        summary=f"sum(sin(exp(x**2))): R^{n} -> R, the A,B,C,D composition",
        winner=winner,
        why=f"A scalar function on R^{n}: {clause}.",
        jacobian_exact=jacobian_exact,
    )


_BATCH, _FEATURES = 64, 20


def mlp_loss_problem(n: int | None = None, m: int | None = None, seed: int = 0) -> Problem:
    """Mean-squared-error loss of a one-hidden-layer tanh MLP: R^n -> R.

    The input is the parameter vector theta = [W1 (20 x h) row-major, b1 (h),
    w2 (h)] of length 22*h; the prediction for a batch X (64 x 20) is
    ``tanh(X @ W1 + b1) @ w2`` (no output bias) and the loss is the mean of
    the squared errors against fixed targets. Data and targets are drawn once
    per builder call. ``n`` selects the parameter count: h = n // 22, so
    ``n`` must be >= 22 and the actual n is 22*h (default h = 100, n = 2200).
    There is no ``m``; the output has shape ``()``.

    Reverse mode wins: training needs the gradient of one scalar loss with
    respect to many parameters (backpropagation).
    """
    name = "mlp_loss"
    h = _size(name, "n", n, 22 * 100, minimum=22) // 22
    _no_size(name, "m", m, "its output is a scalar loss")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((_BATCH, _FEATURES))
    targets = np.sin(X @ rng.standard_normal(_FEATURES) / np.sqrt(_FEATURES))
    split1, split2 = _FEATURES * h, (_FEATURES + 1) * h
    x = np.concatenate([
        rng.standard_normal(_FEATURES * h) / np.sqrt(_FEATURES),
        0.1 * rng.standard_normal(h),
        rng.standard_normal(h) / np.sqrt(h),
    ])

    def f(theta):
        W1 = theta[:split1].reshape(_FEATURES, h)
        b1 = theta[split1:split2]
        w2 = theta[split2:]
        prediction = np.tanh(X @ W1 + b1) @ w2
        return np.mean((prediction - targets) ** 2)

    def jacobian_exact(theta):
        W1 = theta[:split1].reshape(_FEATURES, h)
        w2 = theta[split2:]
        H = np.tanh(X @ W1 + theta[split1:split2])
        d_prediction = 2 * (H @ w2 - targets) / _BATCH        # (64,)
        d_pre = np.outer(d_prediction, w2) * (1 - H**2)       # (64, h)
        return np.concatenate([(X.T @ d_pre).ravel(), d_pre.sum(axis=0), H.T @ d_prediction])

    n = 22 * h
    winner, clause = _verdict(n, 1)
    return Problem(
        name=name, f=f, x=x,
        summary=f"MSE loss of a 20-{h}-1 tanh MLP on 64 samples: R^{n} -> R (parameters -> loss)",
        winner=winner,
        why=f"A scalar loss of {n} parameters: {clause}, which is why training uses backpropagation.",
        jacobian_exact=jacobian_exact,
    )


def curve_problem(n: int | None = None, m: int | None = None, seed: int = 0) -> Problem:
    """Damped oscillation y_j = p0 exp(-p1 t_j) sin(p2 t_j + p3): R^4 -> R^m.

    The input is the four parameters p (n is fixed at 4); the output is the
    curve sampled at ``m`` equally spaced times in [0, 10] (default 2000).
    The default p is near (1, 0.3, 2, 0.5), perturbed by ``seed``.

    Forward mode wins: four tangent seeds, one per parameter, give the whole
    Jacobian, whereas reverse mode needs one cotangent seed per sample.
    """
    name = "curve"
    if n is not None and _size(name, "n", n, 4) != 4:
        raise ValueError(f"problem {name!r}: parameter n is fixed at 4; leave n out (or give 4) "
                         f"and choose m instead (got {n!r})")
    m = _size(name, "m", m, 2000)
    t = np.linspace(0.0, 10.0, m)
    x = np.array([1.0, 0.3, 2.0, 0.5]) + 0.05 * np.random.default_rng(seed).standard_normal(4)

    def f(p):
        # length-1 slices broadcast against the sample times
        return p[0:1] * np.exp(-p[1:2] * t) * np.sin(p[2:3] * t + p[3:4])

    def jacobian_exact(p):
        a, decay, omega, phase = p
        envelope = np.exp(-decay * t)
        s, c = np.sin(omega * t + phase), np.cos(omega * t + phase)
        return np.stack([envelope * s, -a * t * envelope * s,
                         a * t * envelope * c, a * envelope * c], axis=1)

    winner, clause = _verdict(4, m)
    return Problem(
        name=name, f=f, x=x,
        summary=f"p0*exp(-p1*t)*sin(p2*t+p3) at {_counted(m, 'time')}: R^4 -> R^{m}, a curve-fitting model",
        winner=winner,
        why=f"Four parameters and {_counted(m, 'sample')}: {clause}.",
        jacobian_exact=jacobian_exact,
    )


def dense_problem(n: int | None = None, m: int | None = None, seed: int = 0) -> Problem:
    """One dense layer ``tanh(W @ x + b)``: R^n -> R^n (default n = 300).

    W (n x n) has standard normal entries scaled by 1/sqrt(n); b is fixed.
    The layer is square, so there is no ``m``.

    Either mode: forward and reverse both need n seeds, and to first order
    their vector-mode costs are equal.
    """
    name = "dense"
    n = _size(name, "n", n, 300)
    _no_size(name, "m", m, "the layer is square, m = n")
    rng = np.random.default_rng(seed)
    W = _weights(rng, (n, n), name, "n") / np.sqrt(n)
    b = 0.1 * rng.standard_normal(n)
    x = rng.standard_normal(n)

    def f(x):
        return np.tanh(W @ x + b)

    def jacobian_exact(x):
        y = np.tanh(W @ x + b)
        return (1 - y**2)[:, None] * W  # diag(1 - y^2) @ W

    return Problem(
        name=name, f=f, x=x,
        summary=f"tanh(W @ x + b): R^{n} -> R^{n}, a square dense layer",
        winner="either",
        why=f"The Jacobian is square ({n}x{n}), so forward and reverse need the same number "
            f"of seeds and their vector-mode costs are equal to first order.",
        jacobian_exact=jacobian_exact,
    )


def bratu_problem(n: int | None = None, m: int | None = None, seed: int = 0) -> Problem:
    """Residual of the 1-D Bratu problem u'' + exp(u) = 0: R^n -> R^(n-2).

    ``n`` grid points on [0, 1] (default 2000, at least 3), h = 1/(n-1),
    lambda = 1; r_i = (u_{i-1} - 2 u_i + u_{i+1}) / h^2 + exp(u_i) for the
    interior points i = 1..n-2. There is no ``m`` (it is n - 2).

    Either mode: the Jacobian is almost square (from n = 20 on; below,
    reverse mode needs noticeably fewer seeds). It is banded (tridiagonal
    in shape), which sparse (colored) methods exploit: three compressed seeds
    give every entry, whatever n.
    """
    name = "bratu"
    n = _size(name, "n", n, 2000, minimum=3)
    _no_size(name, "m", m, "the residual has n - 2 entries")
    h, lam = 1.0 / (n - 1), 1.0
    grid = np.linspace(0.0, 1.0, n)
    x = grid * (1 - grid) + 0.01 * np.random.default_rng(seed).standard_normal(n)

    def f(u):
        return (u[:-2] - 2 * u[1:-1] + u[2:]) / h**2 + lam * np.exp(u[1:-1])

    def jacobian_exact(u):
        rows = np.arange(n - 2)
        J = np.zeros((n - 2, n))
        J[rows, rows] = J[rows, rows + 2] = 1 / h**2
        J[rows, rows + 1] = -2 / h**2 + lam * np.exp(u[1:-1])
        return J

    if n >= 20:  # n - 2 outputs within 10 % of n inputs: the orders need about as many seeds
        winner, clause = "either", (f"the {n - 2}x{n} Jacobian is almost square: reverse mode needs "
                                    f"{_seeds(n - 2, 'cotangent')}, forward mode {_seeds(n, 'tangent')}")
    else:
        winner, clause = _verdict(n, n - 2)
    return Problem(
        name=name, f=f, x=x,
        summary=f"Bratu residual u'' + exp(u) on {n} points: R^{n} -> R^{n - 2}, banded Jacobian",
        winner=winner,
        why=f"{clause[0].upper()}{clause[1:]}; it is tridiagonal in shape, so sparse (colored) methods need "
            "3 compressed seeds, whatever n.",
        jacobian_exact=jacobian_exact,
    )


def wide_to_tall_problem(n: int | None = None, m: int | None = None, seed: int = 0) -> Problem:
    """Chain through a bottleneck: x (n) -> tanh(A @ x) (10) -> tanh(B @ z) (m).

    Defaults n = m = 1000. The local Jacobians are first wide (10 x n), then
    tall (m x 10). For the full m x n Jacobian the smaller of n and m picks
    the mode ("either" when equal); cheapest of all is to multiply the two
    local Jacobians through the bottleneck.
    """
    name = "wide_to_tall"
    n, m = _size(name, "n", n, 1000), _size(name, "m", m, 1000)
    # A seed's derivative work: 20n + 10 through A's product and tanh, 21m through B's; the whole Jacobian takes
    # min(n, m) seeds through both, the route min(10, n) through A, min(10, m) through B, and their product 20nm
    route_work = min(10, n) * (20 * n + 10) + min(10, m) * 21 * m + 20 * n * m
    if route_work < min(n, m) * (20 * n + 21 * m + 10):
        route = (f"the cheap route is to multiply through the bottleneck: form the 10x{n} and "
                 f"{m}x10 local Jacobians (10 seeds each) and take their product")
    else:
        route = (f"the 10-wide middle layer is no bottleneck at these sizes: the whole Jacobian takes "
                 f"{_seeds(min(n, m))}, fewer FLOPs than forming the local Jacobians and their product")
    return _tanh_chain(name, n, m, 10, seed, "first wide, then tall", route)


def tall_to_wide_problem(n: int | None = None, m: int | None = None, seed: int = 0) -> Problem:
    """Chain through a wide layer: x (n) -> tanh(A @ x) (1000) -> tanh(B @ z) (m).

    Defaults n = m = 10. The local Jacobians are first tall (1000 x n), then
    wide (m x 1000). The winner follows n vs m ("either" when equal): every
    pass crosses the 1000-wide middle layer, so only the pass count differs.
    """
    name = "tall_to_wide"
    n, m = _size(name, "n", n, 10), _size(name, "m", m, 10)
    route = ("the 1000-wide middle layer only sets the cost of each pass, "
             "so the smaller of n and m decides")
    return _tanh_chain(name, n, m, 1000, seed, "first tall, then wide", route)


# ------------------------------------------------------------- registry

PROBLEMS: dict[str, Callable[..., Problem]] = {
    "seed": seed_problem,
    "mlp_loss": mlp_loss_problem,
    "curve": curve_problem,
    "dense": dense_problem,
    "bratu": bratu_problem,
    "wide_to_tall": wide_to_tall_problem,
    "tall_to_wide": tall_to_wide_problem,
}


def names() -> list[str]:
    """Problem names in teaching order."""
    return list(PROBLEMS)


def chosen(names) -> list[str]:
    """`names` each once, in the order given (one name as a string); ValueError naming those that are no
    problem's (or none given).

    >>> chosen(["seed", "curve", "seed"]), chosen("dense")
    (['seed', 'curve'], ['dense'])
    """
    names = list(dict.fromkeys([names] if isinstance(names, str) else names))
    unknown = [name for name in names if name not in PROBLEMS]
    if unknown or not names:
        raise ValueError(f"unknown problem {', '.join(map(repr, unknown)) or '(none given)'}; choose one of: "
                         f"{', '.join(PROBLEMS)}")
    return names


def get(name: str, n: int | None = None, m: int | None = None, seed: int = 0) -> Problem:
    """Build problem ``name``, optionally resized by ``n``/``m``, with data from ``seed``.

    Raises ValueError for an unknown name or a size the problem does not accept.
    """
    chosen([name])
    return PROBLEMS[name](n=n, m=m, seed=seed)


def in_general(name: str) -> str:
    """Problem `name` in one line, its sizes as n and m (what a sweep over sizes runs).

    >>> in_general("bratu")
    "Residual of the 1-D Bratu problem u'' + exp(u) = 0: R^n -> R^(n-2)"
    """
    chosen([name])
    line = PROBLEMS[name].__doc__.strip().splitlines()[0].replace("``", "").rstrip(".")
    return line.split(" (default")[0]  # dense names its default size


def describe() -> list[tuple[str, str]]:
    """``(name, summary)`` for every problem at its default size."""
    return [(name, get(name).summary) for name in names()]
