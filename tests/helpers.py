"""References shared by the derivative tests: finite differences and tolerant comparisons.

Every reference here is independent of the package: central differences of the
plain NumPy function, or values computed by hand in the tests. `traced_value`
is the other side of a value comparison: what the package computes.
"""
from __future__ import annotations

import numpy as np

import jacobian_lab as jl

STEP = 1e-6
FD_RTOL = 1e-6  # central differences with h = 1e-6: truncation ~h^2, rounding ~eps/h


def central_differences(f, x, step=STEP):
    """Jacobian of f at x by central differences, shape f(x).shape + x.shape."""
    x = np.asarray(x, dtype=np.float64)
    fx = np.asarray(f(x), dtype=np.float64)
    J = np.empty(fx.shape + x.shape)
    for i in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[i] = step
        J[(Ellipsis,) + i] = (np.asarray(f(x + e), dtype=np.float64)
                              - np.asarray(f(x - e), dtype=np.float64)) / (2 * step)
    return J


def directional_difference(fn, args, directions, step=STEP):
    """(fn(args + h d) - fn(args - h d)) / 2h; a None direction holds that operand fixed."""
    plus = [a if d is None else a + step * d for a, d in zip(args, directions)]
    minus = [a if d is None else a - step * d for a, d in zip(args, directions)]
    return (np.asarray(fn(*plus), dtype=np.float64) - np.asarray(fn(*minus), dtype=np.float64)) / (2 * step)


def assert_close(actual, expected, rtol, what=""):
    """assert_allclose with an absolute floor scaled to the reference's magnitude."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def assert_fd_close(actual, fd, what=""):
    assert_close(actual, fd, FD_RTOL, what)


def inner(a, b) -> float:
    return float(np.sum(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)))


def away_from(values, points, margin):
    """True when every value is at least `margin` from each of `points` (kinks, ties)."""
    values = np.asarray(values, dtype=np.float64)
    return all(np.all(np.abs(values - p) >= margin) for p in np.atleast_1d(points))


def traced_value(f, x):
    """f's value as the forward engine computes it from the primitives (jvp returns (y, y_dot))."""
    return jl.engines.get("forward").jvp(f, x, np.ones((1,) + np.shape(x), np.result_type(x)))[0]
