"""scipy.special's ufuncs on traced arrays: scipy's values, analytic derivatives, exact counts.

References are independent of the package: scipy's own values for the primal,
derivatives written out by hand (or inverse-function and closed-form values,
ψ'(1) = π²/6, ...) and central differences of the plain scipy functions.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import scipy.interpolate
import scipy.linalg
import scipy.ndimage
import scipy.signal
import scipy.sparse
import scipy.spatial.distance
import scipy.special as sc
import scipy.stats
from helpers import assert_close, assert_fd_close, central_differences

import jacobian_lab as jl
from jacobian_lab import engines
from jacobian_lab.rules import special

RNG = np.random.default_rng(1815)
EULER_GAMMA = 0.5772156649015329
ZETA3 = 1.2020569031595942  # Apéry's constant


def _phi(x):
    """The standard normal density."""
    return np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _erf_prime(x):
    return 2 / math.sqrt(math.pi) * np.exp(-x * x)


def general(n):
    return RNG.uniform(-2.0, 2.0, n)


def unit(n):
    return RNG.uniform(0.05, 0.95, n)


K_POINTS = np.array([0.15, 0.6, 1.3, 2.9, 5.5, 11.0])
M_POINTS = np.array([-3.0, -0.6, 0.17, 0.45, 0.8, 0.97])  # away from 0, where the formulas are 0/0

#: name, scipy function, operand inside its smooth domain, derivative written out by hand
UNARY = [
    ("expit", sc.expit, general(6), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
    ("logit", sc.logit, unit(6), lambda p: 1 / p + 1 / (1 - p)),
    ("log_expit", sc.log_expit, RNG.uniform(-20.0, 20.0, 6), lambda x: 1 / (1 + np.exp(x))),
    ("erf", sc.erf, general(6), _erf_prime),
    ("erfc", sc.erfc, general(6), lambda x: -_erf_prime(x)),
    ("erfinv", sc.erfinv, RNG.uniform(-0.95, 0.95, 6), lambda y: 1 / _erf_prime(sc.erfinv(y))),
    ("erfcinv", sc.erfcinv, RNG.uniform(0.05, 1.95, 6), lambda y: -1 / _erf_prime(sc.erfcinv(y))),
    ("ndtr", sc.ndtr, general(6), _phi),
    ("log_ndtr", sc.log_ndtr, RNG.uniform(-5.0, 5.0, 6), lambda x: _phi(x) / sc.ndtr(x)),
    ("ndtri", sc.ndtri, unit(6), lambda p: 1 / _phi(sc.ndtri(p))),
    ("gammaln", sc.gammaln, RNG.uniform(0.3, 6.0, 6), None),  # closed forms below
    ("digamma", sc.digamma, RNG.uniform(0.3, 6.0, 6), None),
    ("psi", sc.psi, RNG.uniform(0.3, 6.0, 6), None),
    ("entr", sc.entr, RNG.uniform(0.1, 3.0, 6), lambda x: -(1 + np.log(x))),
    ("gamma", sc.gamma, RNG.uniform(0.3, 4.0, 6), lambda x: sc.gamma(x) * sc.digamma(x)),
    ("erfcx", sc.erfcx, RNG.uniform(-3.0, 30.0, 6), lambda x: 2 * x * sc.erfcx(x) - 2 / math.sqrt(math.pi)),
    # Bessel functions: scipy's own derivatives jvp, yvp, ivp, and for the scaled ones the product rule
    ("j0", sc.j0, 3 * general(6), lambda x: sc.jvp(0, x)),
    ("j1", sc.j1, 3 * general(6), lambda x: sc.jvp(1, x)),
    ("y0", sc.y0, RNG.uniform(0.3, 6.0, 6), lambda x: sc.yvp(0, x)),
    ("y1", sc.y1, RNG.uniform(0.3, 6.0, 6), lambda x: sc.yvp(1, x)),
    ("i0", sc.i0, general(6), lambda x: sc.ivp(0, x)),
    ("i1", sc.i1, general(6), lambda x: sc.ivp(1, x)),
    ("i0e", sc.i0e, general(6), lambda x: np.exp(-np.abs(x)) * (sc.ivp(0, x) - np.sign(x) * sc.i0(x))),
    ("i1e", sc.i1e, general(6), lambda x: np.exp(-np.abs(x)) * (sc.ivp(1, x) - np.sign(x) * sc.i1(x))),
    ("numpy's i0", np.i0, general(6), lambda x: sc.ivp(0, x)),
    ("k0", sc.k0, K_POINTS, lambda x: sc.kvp(0, x)),
    ("k1", sc.k1, K_POINTS, lambda x: sc.kvp(1, x)),
    ("k0e", sc.k0e, K_POINTS, lambda x: np.exp(x) * (sc.kvp(0, x) + sc.k0(x))),
    ("k1e", sc.k1e, K_POINTS, lambda x: np.exp(x) * (sc.kvp(1, x) + sc.k1(x))),
    # complete elliptic integrals: K' = (E − (1 − m) K) / (2m (1 − m)), E' = (E − K) / (2m); ellipkm1(p) = K(1 − p)
    ("ellipk", sc.ellipk, M_POINTS, lambda m: (sc.ellipe(m) - (1 - m) * sc.ellipk(m)) / (2 * m * (1 - m))),
    ("ellipe", sc.ellipe, M_POINTS, lambda m: (sc.ellipe(m) - sc.ellipk(m)) / (2 * m)),
    ("ellipkm1", sc.ellipkm1, 1 - M_POINTS, lambda p: -(sc.ellipe(1 - p) - p * sc.ellipkm1(p)) / (2 * p * (1 - p))),
    ("exprel", sc.exprel, np.array([-30.0, -2.0, -0.7, 0.6, 1.0, 5.0]), lambda x: ((x - 1) * np.exp(x) + 1) / x ** 2),
]
UNARY_PARAMS = [pytest.param(f, x, d, id=name) for name, f, x, d in UNARY]
XY = np.array([-1.5, 0.7, 2.0, 0.0, 3.1]), np.array([0.4, 1.3, 0.9, 2.5, 0.2])
POSITIVE_XY = np.array([0.4, 1.7, 3.0, 0.9, 5.2]), np.array([2.2, 0.5, 1.1, 3.4, 0.8])


def _huber_partials(delta, r):
    inside = np.abs(r) <= delta
    return np.where(inside, 0.0, np.abs(r) - delta), np.where(inside, r, delta * np.sign(r))


def _pseudo_huber_partials(delta, r):
    """Of δ² (s − 1), s = √(1 + (r/δ)²): ds/dδ = −r² / (δ³ s), ds/dr = r / (δ² s)."""
    s = np.sqrt(1 + (r / delta) ** 2)
    return 2 * delta * (s - 1) - r ** 2 / (delta * s), r / s


#: δ > 0 and r on either side of the kinks |r| = δ
HUBER = np.array([0.5, 1.0, 2.0, 1.5, 0.8, 3.0]), np.array([1.3, -0.4, -3.1, 0.2, -0.9, 40.0])


def _beta_partials(a, b):
    return (sc.beta(a, b) * (sc.digamma(a) - sc.digamma(a + b)), sc.beta(a, b) * (sc.digamma(b) - sc.digamma(a + b)))


#: name, scipy function, its partials written out by hand, operands inside its smooth domain
BINARY = [("xlogy", sc.xlogy, lambda x, y: (np.log(y), x / y), XY),
          ("xlog1py", sc.xlog1py, lambda x, y: (np.log1p(y), x / (1 + y)), XY),
          ("rel_entr", sc.rel_entr, lambda x, y: (np.log(x) - np.log(y) + 1, -x / y), POSITIVE_XY),
          ("kl_div", sc.kl_div, lambda x, y: (np.log(x) - np.log(y), 1 - x / y), POSITIVE_XY),
          ("beta", sc.beta, _beta_partials, POSITIVE_XY),
          ("betaln", sc.betaln, lambda a, b: (sc.digamma(a) - sc.digamma(a + b), sc.digamma(b) - sc.digamma(a + b)),
           POSITIVE_XY),
          ("huber", sc.huber, _huber_partials, HUBER),
          ("pseudo_huber", sc.pseudo_huber, _pseudo_huber_partials, HUBER)]
BINARY_PARAMS = [pytest.param(f, d, xy, id=name) for name, f, d, xy in BINARY]


def _forward(f, x):
    """y and dy/dx from the forward engine, one seed per element of x."""
    y, tangent = engines.get("forward").jvp(f, x, np.eye(x.size, dtype=x.dtype).reshape((x.size,) + x.shape))
    return y, tangent


def _pair(f):
    """f(x, y) of the packed vector [x, y]."""
    return lambda v: f(v[:v.size // 2], v[v.size // 2:])


# --- values are scipy's own ------------------------------------------------------------
@pytest.mark.parametrize("f, x, derivative", UNARY_PARAMS)
def test_values_are_scipys_bit_for_bit(f, x, derivative):
    y, _ = _forward(f, x)
    assert type(y) is np.ndarray and y.dtype == np.float64
    np.testing.assert_array_equal(y, f(x))


@pytest.mark.parametrize("f, derivative, xy", BINARY_PARAMS)
def test_binary_values_are_scipys_bit_for_bit(f, derivative, xy):
    x, y = xy
    out, _ = _forward(_pair(f), np.concatenate([x, y]))
    np.testing.assert_array_equal(out, f(x, y))
    out, _ = _forward(lambda y: f(x, y), y)  # a constant x, a traced y
    np.testing.assert_array_equal(out, f(x, y))


def test_float32_values_stay_float32_and_scipys():
    x = np.array([0.1, 0.4, 0.7], dtype=np.float32)
    for f in (sc.expit, sc.erf, sc.ndtri, sc.gammaln, sc.entr):
        y, dy = _forward(f, x)
        assert y.dtype == np.float32 and dy.dtype == np.float32, f.__name__
        np.testing.assert_array_equal(y, f(x))


# --- derivatives -----------------------------------------------------------------------
@pytest.mark.parametrize("f, x, derivative", [p for p in UNARY_PARAMS if p.values[2] is not None])
def test_derivative_is_the_analytic_one(f, x, derivative):
    _, dy = _forward(f, x)
    assert_close(dy, np.diag(derivative(x)), 1e-12)
    assert_close(jl.jacrev(f)(x), np.diag(derivative(x)), 1e-12)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("f, x, derivative", UNARY_PARAMS)
def test_derivative_matches_central_differences(f, x, derivative, mode):
    assert_fd_close(jl.jacobian(f, x, mode=mode), central_differences(f, x))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("f, derivative, xy", BINARY_PARAMS)
def test_binary_partials_are_the_analytic_ones(f, derivative, xy, mode):
    x, y = xy
    v = np.concatenate([x, y])
    dx, dy = derivative(x, y)
    J = jl.jacobian(_pair(f), v, mode=mode)
    assert_close(J, np.hstack([np.diag(dx), np.diag(dy)]), 1e-13)
    assert_fd_close(J, central_differences(_pair(f), v))


# Closed forms: ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2, ψ(2) = 1 − γ; ψ'(1) = π²/6, ψ'(1/2) = π²/2,
# ψ'(2) = π²/6 − 1; ψ''(1) = −2ζ(3); ψ'''(1) = π⁴/15.
GAMMA_POINTS = np.array([1.0, 0.5, 2.0])


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_gamma_family_derivatives_at_closed_form_points(mode):
    gammaln_prime = [-EULER_GAMMA, -EULER_GAMMA - 2 * math.log(2), 1 - EULER_GAMMA]
    trigamma = [math.pi ** 2 / 6, math.pi ** 2 / 2, math.pi ** 2 / 6 - 1]
    assert_close(jl.jacobian(sc.gammaln, GAMMA_POINTS, mode=mode), np.diag(gammaln_prime), 1e-14)
    assert_close(jl.jacobian(sc.digamma, GAMMA_POINTS, mode=mode), np.diag(trigamma), 1e-14)
    assert_close(jl.jacobian(sc.psi, GAMMA_POINTS, mode=mode), np.diag(trigamma), 1e-14)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_digamma_slope_far_below_zero_is_the_reflections(mode, monkeypatch):
    """SciPy's polygamma recurses from x up to 0 one step at a time: 2 s at −1e8 + 1/2, hours at −1e12.
    At x = 1/2 − N, ψ'(x) = π² − ψ'(N + 1/2), and ψ'(v) = 1/v + 1/(2v²) + 1/(6v³) − ... for large v."""
    N = np.array([1e3, 1e6, 1e8, 1e12])
    v = N + 0.5
    expected = math.pi ** 2 - (1 / v + 1 / (2 * v ** 2) + 1 / (6 * v ** 3))
    polygamma = sc.polygamma

    def asked(n, x):  # SciPy at 1 - x only: at x itself it would take hours
        assert np.min(x) > -100, "scipy.special.polygamma asked at x far below 0"
        return polygamma(n, x)

    monkeypatch.setattr(sc, "polygamma", asked)
    assert_close(np.diag(jl.jacobian(sc.digamma, 0.5 - N, mode=mode)), expected, 1e-15)
    # second derivative: ψ''(1/2 − N) = ψ''(N + 1/2), π³ P₂(cot) vanishing at cot = 0: −1/v² − 1/v³ − 1/(2v⁴);
    # 1 / tan(π/2) is 6e-17, not 0, and left 0.4 % of it
    second = jl.hessian(lambda x: sc.digamma(x[0]))(np.array([0.5 - 1e6]))[0, 0]
    assert_close(second / (-1 / v[1] ** 2 - 1 / v[1] ** 3 - 1 / (2 * v[1] ** 4)), 1.0, 1e-14)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_polygamma_differentiates_to_the_next_order(mode):
    # digamma's derivative is polygamma(x, n=1), whose derivative is polygamma(x, n=2), ...
    one = np.array([1.0])
    assert_close(jl.jacobian(lambda x: special.polygamma(x, n=1), one, mode=mode), [[-2 * ZETA3]], 1e-14)
    assert_close(jl.jacobian(lambda x: special.polygamma(x, n=2), one, mode=mode), [[math.pi ** 4 / 15]], 1e-14)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_closed_form_points_of_the_other_families(mode):
    J = lambda f, x: np.diag(jl.jacobian(f, np.array(x), mode=mode))  # noqa: E731
    assert_close(J(sc.expit, [0.0]), [0.25], 1e-15)
    assert_close(J(sc.logit, [0.5]), [4.0], 1e-15)
    assert_close(J(sc.log_expit, [0.0, 800.0, -800.0]), [0.5, 0.0, 1.0], 1e-15)  # no overflow in the tails
    assert_close(J(sc.erf, [0.0]), [2 / math.sqrt(math.pi)], 1e-15)
    assert_close(J(sc.erfinv, [0.0]), [math.sqrt(math.pi) / 2], 1e-15)
    assert_close(J(sc.erfcinv, [1.0]), [-math.sqrt(math.pi) / 2], 1e-15)
    assert_close(J(sc.ndtri, [0.5]), [math.sqrt(2 * math.pi)], 1e-15)
    assert_close(J(sc.log_ndtr, [0.0]), [2 / math.sqrt(2 * math.pi)], 1e-15)
    assert_close(J(sc.entr, [1.0, math.exp(-1.0)]), [-1.0, 0.0], 1e-15)
    # the order-1 Bessel functions at 0, where their recurrence divides by x: the limit 1/2, no warning
    with np.errstate(all="raise"):
        for f in (sc.j1, sc.i1, sc.i1e):
            assert_close(J(f, [0.0, 1e-300]), [0.5, 0.5], 1e-15)
        assert_close(J(sc.j0, [0.0]), [0.0], 0)  # −J1(0)
    assert_close(J(sc.gamma, [1.0, 2.0]), [-EULER_GAMMA, 1 - EULER_GAMMA], 1e-14)  # Γ ψ at Γ = 1
    assert_close(J(sc.erfcx, [0.0, 1e8]), [-2 / math.sqrt(math.pi), 0.0], 1e-12)  # no overflow of e^{x²} erfc


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_beta_partials_where_one_argument_dwarfs_the_other(mode):
    """ψ(a) − ψ(a + b) as two digammas cancelled: ∂a betaln(1e15, 1) was 0 (true −1e-15), 1e-7 off at
    (1e8, 2). Reference: ψ(a) − ψ(a + b) = −Σ_{k<b} 1/(a + k) for an integer b, summed smallest first,
    and ψ'(a) − ψ'(a + b) = Σ_{k<b} 1/(a + k)² for the second derivative."""
    for a, b in ((1e15, 1.0), (1e8, 2.0), (60.0, 3.0), (7.0, 4.0)):
        terms = [1.0 / (a + k) for k in range(int(b))][::-1]
        J = jl.jacobian(lambda v: sc.betaln(v[0], v[1]), np.array([a, b]), mode=mode)
        np.testing.assert_allclose(J[0], -math.fsum(terms), rtol=1e-14)
        H = jl.hessian(lambda v: sc.betaln(v[0], v[1]), mode=mode)(np.array([a, b]))
        np.testing.assert_allclose(H[0, 0], math.fsum(t * t for t in terms), rtol=1e-13)
        # B itself: ∂a B = B (ψ(a) − ψ(a + b))
        Jb = jl.jacobian(lambda v: sc.beta(v[0], v[1]), np.array([a, b]), mode=mode)
        np.testing.assert_allclose(Jb[0], -sc.beta(a, b) * math.fsum(terms), rtol=1e-13)
    # no product of the arguments overflows: ψ(60) − ψ(1e200 + 60) is ψ(60) − log(1e200) to the last
    # bit, ψ(1e200) − ψ(2e200) is −log 2
    for (a, b), expected in (((60.0, 1e200), sc.digamma(60.0) - math.log(1e200)), ((1e200, 1e200), -math.log(2.0))):
        J = jl.jacobian(lambda v: sc.betaln(v[0], v[1]), np.array([a, b]), mode=mode)
        np.testing.assert_allclose(J[0], expected, rtol=1e-15)
        assert np.all(np.isfinite(jl.hessian(lambda v: sc.betaln(v[0], v[1]), mode=mode)(np.array([a, b]))))


def _digamma_differences(v, w, terms=100_000):
    """ψ(v) − ψ(v + w) and ψ'(v) − ψ'(v + w) from ψ(x) = ψ(x + 1) − 1/x summed `terms` times, each
    difference with w as a factor, then ψ's Taylor series at v + terms from its asymptotic series
    (the terms left out are 1e-20 of the sum): a reference that uses no polygamma."""
    k = v + np.arange(terms)
    end = v + terms
    tail = w * (1 / end + 1 / (2 * end ** 2) + 1 / (6 * end ** 3)) - w * w / (2 * end ** 2)
    first = math.fsum(w / (k * (k + w))) + tail
    second = math.fsum(w * (2 * k + w) / (k * (k + w)) ** 2) + w * (1 / end ** 2 + 1 / end ** 3)
    return -first, second


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_beta_partials_where_the_other_argument_is_tiny(mode):
    """ψ(a) − ψ(a + b) for a tiny b, as two digammas, kept 2 digits at (10, 1e-12) and none in float32 at
    (10, 1e-6); it is ψ's Taylor series in b now, taken at a + 1 below 1."""
    for a, b in ((10.0, 1e-12), (30.0, 1e-9), (0.3, 1e-7), (1e-5, 1e-9), (2.0, 1.9e-3)):
        first, second = _digamma_differences(a, b)
        J = jl.jacobian(lambda v: sc.betaln(v[0], v[1]), np.array([a, b]), mode=mode)
        np.testing.assert_allclose(J[0], first, rtol=1e-14)
        H = jl.hessian(lambda v: sc.betaln(v[0], v[1]), mode=mode)(np.array([a, b]))
        np.testing.assert_allclose(H[0, 0], second, rtol=1e-13)
        np.testing.assert_allclose(H[[0, 1], [1, 0]], -sc.polygamma(1, a + b), rtol=1e-14)  # no cancellation
    J = jl.jacobian(lambda v: sc.betaln(v[0], v[1]), np.array([10.0, 1e-6], np.float32), mode=mode)
    np.testing.assert_allclose(J[0], _digamma_differences(10.0, float(np.float32(1e-6)))[0], rtol=1e-5)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_compiled_beta_derivative_takes_its_series_where_the_values_need_them(mode):
    """The series run only where some element needs them: a program compiled at ordinary values must
    take them at (10, 1e-12) and (1e15, 1), and leave them again at (2, 3); predicted costs follow."""
    f = lambda v: sc.betaln(v[0], v[1])  # noqa: E731
    jacobian, hessian = jl.jit(jl.jacobian(f, mode=mode)), jl.jit(jl.hessian(f, mode=mode))
    for point in ((2.0, 3.0), (10.0, 1e-12), (1e15, 1.0), (2.0, 3.0)):
        v = np.array(point)
        np.testing.assert_array_equal(jacobian(v), jl.jacobian(f, v, mode=mode))
        np.testing.assert_allclose(hessian(v), jl.hessian(f, mode=mode)(v), rtol=1e-15)
        assert jl.predict(f, v).cost(mode) == jl.measure(f, v, mode=mode, repeat=1).cost  # keyed on values
    np.testing.assert_allclose(jacobian(np.array([10.0, 1e-12]))[0], _digamma_differences(10.0, 1e-12)[0], rtol=1e-14)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_erfcx_slopes_far_right_do_not_cancel(mode):
    """2x erfcx − 2/√π cancels to about −1/(√π x²): 2e-8 off at 1e4, 0 at 1e8, and its second
    derivative 3.4× too large at 1e4. Reference: five-point differences of scipy's erfcx, whose step
    x/1000 keeps rounding and truncation far below the slopes there."""
    x = np.array([30.0, 1e3, 1e4])
    h = x / 1000
    f = [sc.erfcx(x + k * h) for k in (-2, -1, 0, 1, 2)]
    first = (f[0] - 8 * f[1] + 8 * f[3] - f[4]) / (12 * h)
    second = (-f[0] + 16 * f[1] - 30 * f[2] + 16 * f[3] - f[4]) / (12 * h ** 2)
    np.testing.assert_allclose(np.diag(jl.jacobian(sc.erfcx, x, mode=mode)), first, rtol=1e-9)
    np.testing.assert_allclose(np.diag(jl.hessian(lambda v: np.sum(sc.erfcx(v)), mode=mode)(x)), second, rtol=1e-6)
    # and log Φ's second derivative far left, −1 + 1/x² − ...: it reads erfcx's
    H = jl.hessian(lambda v: np.sum(sc.log_ndtr(v)), mode=mode)(np.array([-1e5, -1e8]))
    np.testing.assert_allclose(np.diag(H), [-1.0 + 1e-10, -1.0], rtol=1e-15)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_order_one_bessel_second_derivatives_near_zero(mode):
    """Differentiated again, C0 − C1 / x cancelled two terms of size 1/(2x): I1'' was 2e284 at 1e-300
    (true 3.75e-301). Reference: scipy's jvp and ivp, which sum Bessel functions of other orders."""
    x = np.array([1e-300, -1e-12, 1e-8, 1e-3, 0.3, -0.49, 0.5, 0.8, 3.0])
    hessian = lambda f: np.diag(jl.hessian(lambda v: np.sum(f(v)), mode=mode)(x))  # noqa: E731
    i1_second = sc.ivp(1, x, 2)
    i1e_second = np.exp(-np.abs(x)) * (i1_second - 2 * np.sign(x) * sc.ivp(1, x) + sc.i1(x))
    for f, expected in ((sc.j1, sc.jvp(1, x, 2)), (sc.i1, i1_second), (sc.i1e, i1e_second)):
        np.testing.assert_allclose(hessian(f), expected, rtol=1e-13, atol=1e-299)  # scipy: 0 at 1e-300
    with np.errstate(over="ignore"):  # I1 itself overflows past 713: only the finite entries are compared
        big = np.array([1e200, -1e200])
        assert np.all(np.isfinite(np.diag(jl.hessian(lambda v: np.sum(sc.j1(v)), mode=mode)(big))))
    with np.errstate(all="ignore"):  # Y1 has a pole at 0, Y1 ≈ −2/(πx): its slope there is +inf (not J1's 1/2)
        assert jl.jacobian(sc.y1, np.array([0.0]), mode=mode)[0, 0] == np.inf


@pytest.mark.parametrize("dtype, x", [(np.float64, [37.0, 38.0, 50.0]), (np.float32, [12.0, 13.0, 14.0])])
def test_log_ndtr_second_derivative_is_finite_far_in_the_right_tail(dtype, x):
    """erfcx(−x/√2) overflows there (float32 from x ≈ 13): the slope read from it was 0, but its derivative
    NaN. d²/dx² log Φ = −s (x + s) with s = φ/Φ, which is about −φ(x) x there: tiny, and no NaN."""
    x = np.array(x, dtype)
    for mode in ("forward", "reverse"):
        H = np.diag(jl.hessian(lambda v: np.sum(sc.log_ndtr(v)), mode=mode)(x))
        s = np.exp(-x.astype(float) ** 2 / 2) / math.sqrt(2 * math.pi) / sc.ndtr(x.astype(float))
        assert np.all(np.isfinite(H)) and np.all(H <= 0)
        # (values below 1e-38 in float32, 1e-308 in float64, are subnormal: a few bits)
        np.testing.assert_allclose(H, -s * (x + s), rtol=1e-5 if dtype == np.float32 else 1e-13,
                                   atol=1e-43 if dtype == np.float32 else 1e-320)


def test_log_ndtr_derivative_far_in_the_left_tail():
    # φ(x)/Φ(x) ~ −x − 1/x + 2/x³ for x → −∞, where φ and Φ both underflow; exp(−x²/2 − log √(2π) − log Φ)
    # lost digits as x² grew (10069282 at −1e7) and gave 1.0 at −1e9, inf at −1e10
    x = np.array([-40.0, -300.0, -1e5, -1e7, -1e9, -1e10])
    expected = -x - 1 / x + 2 / x ** 3
    assert_close(np.diag(jl.jacobian(sc.log_ndtr, x)), expected, 1e-14)
    assert np.all(sc.ndtr(x[1:]) == 0.0)


# --- xlogy at x = 0: JAX's convention ----------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_xlogy_at_x_zero_is_zero_and_flat_in_y(mode):
    x, y = np.array([0.0, 0.0, 1.5]), np.array([2.0, 0.5, 3.0])
    v = np.concatenate([x, y])
    out, _ = _forward(_pair(sc.xlogy), v)
    np.testing.assert_array_equal(out, [0.0, 0.0, 1.5 * math.log(3.0)])
    J = jl.jacobian(_pair(sc.xlogy), v, mode=mode)
    # ∂x = log y (also at x = 0), ∂y = x / y: exactly 0 where x = 0
    np.testing.assert_array_equal(J[:, 3:], np.diag([0.0, 0.0, 0.5]))
    assert_close(J[:, :3], np.diag(np.log(y)), 1e-15)
    J = jl.jacobian(_pair(sc.xlog1py), np.concatenate([x, y - 1.0]), mode=mode)
    np.testing.assert_array_equal(J[:, 3:], np.diag([0.0, 0.0, 0.5]))
    assert_close(J[:, :3], np.diag(np.log(y)), 1e-15)


def test_xlogy_at_zero_zero_follows_jax():
    # value 0 (scipy); ∂x = log 0 = −inf and ∂y = 0/0 = NaN, as jax.scipy.special.xlogy gives
    zero = np.array(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        assert jl.jacfwd(lambda x: sc.xlogy(x, 0.0))(zero) == -np.inf
        assert np.isnan(jl.jacfwd(lambda y: sc.xlogy(0.0, y))(zero))
        assert jl.jacrev(lambda x: sc.xlogy(x, 0.0))(zero) == -np.inf
        assert sc.xlogy(0.0, 0.0) == 0.0 and engines.get("forward").jvp(
            lambda x: sc.xlogy(x, 0.0), zero, np.ones((1,)))[0] == 0.0


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_entr_derivative_at_zero_is_plus_infinity(mode):
    # one element at a time: a seed's 0 times the infinite factor would be NaN off the diagonal
    with np.errstate(divide="ignore"):
        assert jl.jacobian(sc.entr, np.array(0.0), mode=mode) == np.inf
    assert jl.jacobian(sc.entr, np.array(1.0), mode=mode) == -1.0


# --- counted work ---------------------------------------------------------------------------
X6 = np.linspace(0.2, 0.8, 6)
N = X6.size


@pytest.mark.parametrize("f", [p.values[0] for p in UNARY_PARAMS if p.values[0] is not sc.entr],
                         ids=lambda f: f.__name__)
def test_one_transcendental_per_output(f):
    assert jl.count_flops(f, X6) == jl.Cost(0, N)
    assert jl.count_flops(lambda x: f(x[:, None] * X6), X6) == jl.Cost(N * N, N * N)  # the product, then f


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_relative_entropies_off_the_positive_quadrant_take_jaxs_slopes(mode):
    """rel_entr is 0 at x = 0 (y ≥ 0) and inf elsewhere off x, y > 0, slope 0 there; kl_div = rel_entr − x + y, as
    jax.scipy.special writes it, so its slopes there are −1 and 1."""
    x, y = np.array([0.0, 0.0, 2.0, -1.0, 1.0]), np.array([3.4, 0.0, 0.0, 1.0, -1.0])
    for f, (dx, dy) in ((sc.rel_entr, (0.0, 0.0)), (sc.kl_div, (-1.0, 1.0))):
        J = jl.jacobian(_pair(f), np.concatenate([x, y]), mode=mode)
        np.testing.assert_array_equal(J, np.hstack([np.eye(5) * dx, np.eye(5) * dy]))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_incomplete_gammas_slope_in_x_is_the_gamma_density_and_in_a_is_refused(mode):
    """P(a, x) = gammainc and Q = gammaincc: ±x^(a-1) e^(-x) / Γ(a), 1 at a = 1, x = 0 (JAX's NaN there)."""
    a, x = np.array([2.5, 0.7, 3.0, 1.0, 0.5, 40.0]), np.array([0.5, 2.0, 7.0, 0.0, 0.0, 3.0])
    density = np.array([0.5 ** 1.5 * np.exp(-0.5) / sc.gamma(2.5), 2.0 ** -0.3 * np.exp(-2.0) / sc.gamma(0.7),
                        49 * np.exp(-7.0) / 2, 1.0, np.inf, 3.0 ** 39 * np.exp(-3.0) / sc.gamma(40.0)])
    with np.errstate(invalid="ignore"):  # inf times the other seeds' zeros, as for sqrt at 0
        for f, sign in ((sc.gammainc, 1.0), (sc.gammaincc, -1.0)):
            np.testing.assert_allclose(np.diag(jl.jacobian(lambda x: f(a, x), x, mode=mode)), sign * density,
                                       rtol=1e-13)
    with pytest.raises(NotImplementedError, match="in their first argument a .* pass a as a constant"):
        jl.jacobian(lambda a: sc.gammainc(a, 2.0), np.array([1.5]), mode=mode)
    assert jl.count_flops(lambda x: sc.gammaincc(2.0, x), x) == jl.Cost(0, x.size)


def test_relative_entropies_cost_scipys_operations():
    # x log(x / y): a quotient, a logarithm, a product; kl_div subtracts x and adds y
    assert jl.count_flops(lambda x: sc.rel_entr(x, 2.0), X6) == jl.Cost(2 * N, N)
    # where x / y overflows, the slope in x is log x − log y + 1, as JAX gives: finite
    np.testing.assert_allclose(jl.grad(lambda x: sc.rel_entr(x, 1e-300))(1e10), np.log(1e10) - np.log(1e-300) + 1,
                               rtol=1e-15)
    assert jl.count_flops(lambda x: sc.kl_div(x, 2.0), X6) == jl.Cost(4 * N, N)


def test_x_log_functions_cost_a_log_and_a_product():
    for f in (lambda x: sc.xlogy(x, 2.0), lambda x: sc.xlog1py(3.0, x), sc.entr):
        assert jl.count_flops(f, X6) == jl.Cost(N, N)
    # broadcast: N outputs per row of a (4, 1) operand against (N,)
    assert jl.count_flops(lambda x: sc.xlogy(x[:4, None], x), X6) == jl.Cost(4 * N, 4 * N)


@pytest.mark.parametrize("mode, phase", [("forward", "tangent"), ("reverse", "cotangent")])
def test_derivative_work_is_counted(mode, phase):
    # One pass of k = N seeds; the factor is built once, then multiplies the k·N derivative values.
    cost = lambda f: jl.measure(f, X6, mode=mode, batch_size=N, repeat=1).cost[phase]  # noqa: E731
    kN = N * N
    # erf: square, negative, exp, times 2/√π: 3N flops and N transcendentals; then k·N products
    assert cost(sc.erf) == jl.Cost(3 * N + kN, N)
    # expit: −x, σ(−x), out · σ(−x)
    assert cost(sc.expit) == jl.Cost(2 * N + kN, N)
    # gammaln: digamma (N transcendentals); digamma: polygamma(x, n=1) (N transcendentals)
    assert cost(sc.gammaln) == jl.Cost(kN, N)
    assert cost(sc.digamma) == jl.Cost(kN, N)
    # log_ndtr, all three ranges computed: x < 0, x < −1e5, a not and an and, five selects (9N); left
    # √(2/π) / erfcx(−x/√2) (2N, N); right φ(x) / Φ(x): square, times −1/2, exp, times 1/√(2π), ndtr, the
    # division (4N, 2N); far left −(x + 1/x) (3N)
    assert cost(sc.log_ndtr) == jl.Cost(18 * N + kN, 3 * N)
    # entr: log, + 1, negate
    assert cost(sc.entr) == jl.Cost(2 * N + kN, N)
    # xlogy(x, x reversed): log y and x / y; a product per operand, then their sum (forward) or
    # the fan-out of x into both operands (reverse): k·N each
    assert cost(lambda x: sc.xlogy(x, x[::-1])) == jl.Cost(N + 3 * kN, N)
    # beta(x, x reversed): ψ(a + b) (a sum, a digamma), then per operand ψ, a difference and the
    # product with B: 5N flops and 3N transcendentals; per operand the tests of the two series' ranges
    # (v > 0 and |w| ≤ v/1000: 5; v ≥ 50 and v + w ≥ 50: 3), 8N; the k·N products and their sum as
    # for xlogy. No element of X6 is in either range, so neither series runs.
    assert cost(lambda x: sc.beta(x, x[::-1])) == jl.Cost(5 * N + 2 * 8 * N + 3 * kN, 3 * N)
    # Where an element is in each (10 against 1e-5; 60 to 90 against each other), both run on every
    # element, per operand: the Taylor series (`_digamma_step`: two selects; v + 1 below 1, 3; five
    # polygammas by Horner, 12; 1/v − 1/(v + w), 4; w times the sum, the shift and the sign, 3) and its
    # select, 25N and 5N transcendentals; the asymptotic difference (`_digamma_difference`: 30 flops
    # and a log1p) and its select, 31N
    far = np.array([1e-5, 60.0, 70.0, 80.0, 90.0, 10.0])
    assert jl.measure(lambda x: sc.beta(x, x[::-1]), far, mode=mode, batch_size=N, repeat=1).cost[phase] == jl.Cost(
        5 * N + 2 * (8 + 25 + 31) * N + 3 * kN, 3 * N + 2 * 6 * N)
    # j1: J0 (N transcendentals); J0 − J1 / x, J1 / x from its series where |x| < 1/2: |x|, the test,
    # x kept there, its square times −1/4, eight coefficients by Horner (14), x replaced, the division,
    # the select and the difference: 23N
    assert cost(sc.j1) == jl.Cost(23 * N + kN, N)
    # jv(1.5, x): the pole test at 0 (x = 0, out infinite, both), the selects of 0 for out and 1 for x, −out and
    # the select of it (7N); v ± 1 on the scalar order (2), J at both (2N transcendentals), their half-difference (2N)
    assert cost(lambda x: sc.jv(1.5, x)) == jl.Cost(9 * N + 2 + kN, 2 * N)
    assert cost(lambda x: sc.jv(np.full(N, 1.5), x)) == jl.Cost(11 * N + kN, 2 * N)  # v ± 1 per element of v
    # ellipk: q = 1 − m, the pole test q = 0 and q, K selected there (4N); |m| < 0.1 and m or 0 selected (3N), twenty
    # coefficients by Horner (38N); m or 1/2 selected, E, (E − q K) / (2m) / q (6N and N transcendentals); two selects
    assert cost(sc.ellipk) == jl.Cost(53 * N + kN, N)
    # huber in r at a scalar δ: δ < 0 and its negation (2); |r|, |r| ≤ δ, its negation, and with δ ≥ 0; sign(r),
    # δ sign(r), r or 0 selected by δ ≥ 0, the select between the pieces (8N)
    assert cost(lambda r: sc.huber(0.5, r)) == jl.Cost(8 * N + 2 + kN, 0)


# --- Bessel functions of real order, in x -----------------------------------------------------
def _scaled(derivative, f, rate):
    """The n-th derivative in x of e^(a x) f(v, x), a = rate(x) constant on each side of 0, by Leibniz's rule
    from scipy's derivatives of f (derivative(v, x, k))."""
    def scaled(v, x, n=1):
        a = rate(x)
        terms = [math.comb(n, k) * a ** (n - k) * (derivative(v, x, k) if k else f(v, x)) for k in range(n + 1)]
        return np.exp(a * x) * sum(terms)
    return scaled


#: name -> scipy function, its n-th derivative in x: scipy's jvp, yvp, ivp, kvp (on the real line jve and yve are
#: jv and yv; ive = e^−|x| iv and kve = e^x kv by Leibniz's rule)
BESSEL = {
    "jv": (sc.jv, sc.jvp), "yv": (sc.yv, sc.yvp), "iv": (sc.iv, sc.ivp), "kv": (sc.kv, sc.kvp),
    "jve": (sc.jve, sc.jvp), "yve": (sc.yve, sc.yvp),
    "ive": (sc.ive, _scaled(sc.ivp, sc.iv, lambda x: -np.sign(x))),
    "kve": (sc.kve, _scaled(sc.kvp, sc.kv, np.ones_like)),
}
ORDERS = np.array([0.0, 1.0, 2.5, -1.3, 4.0, 0.7, -3.0])
POINTS = np.array([0.8, 2.3, 5.1, 1.4, 9.0, 0.3, 3.7])


@pytest.mark.parametrize("name", BESSEL)
def test_real_order_bessel_values_are_scipys_bit_for_bit(name):
    f = BESSEL[name][0]
    out, _ = _forward(lambda x: f(ORDERS, x), POINTS)
    np.testing.assert_array_equal(out, f(ORDERS, POINTS))
    out, _ = _forward(lambda x: f(ORDERS[:, None], x), POINTS)  # broadcast: every order at every point
    np.testing.assert_array_equal(out, f(ORDERS[:, None], POINTS))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("name", BESSEL)
def test_real_order_bessel_slopes_in_x(name, mode):
    """Against scipy's own derivatives, central differences, and for the second derivative jvp(v, x, 2), ..."""
    f, derivative = BESSEL[name]
    g = lambda x: f(ORDERS, x)  # noqa: E731
    J = jl.jacobian(g, POINTS, mode=mode)
    np.testing.assert_allclose(np.diag(J), derivative(ORDERS, POINTS), rtol=1e-13)
    np.testing.assert_array_equal(J - np.diag(np.diag(J)), 0.0)
    assert_fd_close(J, central_differences(g, POINTS))
    np.testing.assert_allclose(jl.grad(lambda x: np.sum(g(x)))(POINTS), derivative(ORDERS, POINTS), rtol=1e-13)
    H = jl.hessian(lambda x: np.sum(g(x)), mode=mode)(POINTS)
    np.testing.assert_allclose(np.diag(H), derivative(ORDERS, POINTS, 2), rtol=1e-12)
    np.testing.assert_array_equal(H - np.diag(np.diag(H)), 0.0)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_k0_k1_second_derivatives(mode):
    x = K_POINTS
    for f, expected in ((sc.k0, sc.kvp(0, x, 2)), (sc.k1, sc.kvp(1, x, 2)),
                        (sc.k0e, _scaled(sc.kvp, sc.kv, np.ones_like)(0, x, 2)),
                        (sc.k1e, _scaled(sc.kvp, sc.kv, np.ones_like)(1, x, 2))):
        H = jl.hessian(lambda v: np.sum(f(v)), mode=mode)(x)
        np.testing.assert_allclose(np.diag(H), expected, rtol=1e-12)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_bessel_slopes_at_negative_x(mode):
    """Integer orders are defined there (J_n(−x) = (−1)ⁿ J_n(x), I_n alike), and ive's e^−|x| turns its sign; at
    other orders, and for Y and K at every order, scipy gives NaN, and so does the slope."""
    v, x = np.array([0.0, 1.0, 2.0, 3.0]), np.array([-0.7, -2.1, -4.0, -1.2])
    for name in ("jv", "iv", "jve", "ive"):
        f, derivative = BESSEL[name]
        J = jl.jacobian(lambda x: f(v, x), x, mode=mode)
        np.testing.assert_allclose(np.diag(J), derivative(v, x), rtol=1e-13)
        assert_fd_close(J, central_differences(lambda x: f(v, x), x))
    minus = np.array(-1.3)
    with np.errstate(invalid="ignore"):
        for name, (f, _) in BESSEL.items():
            for order in (1.5, 2.0):
                slope = jl.jacobian(lambda x: f(order, x), minus, mode=mode)
                assert np.isnan(slope) == np.isnan(f(order, -1.3)), (name, order)
                assert np.isnan(slope) == (name in ("yv", "kv", "yve", "kve") or order == 1.5), (name, order)
        for f in (sc.k0, sc.k1, sc.k0e, sc.k1e):
            assert np.isnan(jl.jacobian(f, minus, mode=mode))


inf, nan = np.inf, np.nan
#: the slope at x = 0: finite where the function is smooth there (J1' = I1' = ½); ±inf at a pole or a branch
#: point, the sign the function takes from the right; NaN where scipy's value, or a neighbour's, is NaN
AT_ZERO = [("jv", 0.0, 0.0), ("jv", 1.0, 0.5), ("jv", 2.0, 0.0), ("jv", -1.0, -0.5),
           ("jv", 0.5, inf), ("jv", -0.5, -inf), ("jv", -1.5, inf),  # √x; J₋½ ~ +x^−½; J₋₃⁄₂ ~ −x^−³⁄₂
           ("iv", 0.0, 0.0), ("iv", 1.0, 0.5), ("iv", 0.5, inf), ("iv", -0.5, -inf),
           ("yv", 0.0, inf), ("yv", 1.0, inf), ("yv", 2.5, inf), ("yv", -1.0, -inf),  # Y₋₁ = −Y₁ → +inf
           ("kv", 0.0, -inf), ("kv", 1.0, -inf), ("kv", 2.5, -inf), ("kve", 0.0, -inf), ("kve", 2.5, -inf),
           ("jve", 0.0, 0.0), ("jve", 1.0, 0.5), ("jve", 0.5, nan),  # scipy's jve(−½, 0) is NaN
           ("ive", 1.0, 0.5), ("ive", 0.0, 0.0),  # the kink of e^−|x| takes sign(0) = 0, as i0e's
           ("yve", 0.0, nan)]  # scipy's yve(v, 0) is NaN


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_bessel_slopes_at_zero(mode):
    zero = np.array(0.0)
    with np.errstate(all="raise"):  # no inf − inf nor 0 · inf inside the rules
        for name, v, expected in AT_ZERO:
            f = BESSEL[name][0]
            np.testing.assert_array_equal(jl.jacobian(lambda x: f(v, x), zero, mode=mode), expected,
                                          err_msg=f"{name}({v}, 0)")
        for f in (sc.k0, sc.k1, sc.k0e, sc.k1e):  # K0 ~ −log x, K1 ~ 1/x
            assert jl.jacobian(f, zero, mode=mode) == -np.inf, f.__name__


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("name", BESSEL)
def test_bessel_slope_in_the_order_is_refused(name, mode):
    f = BESSEL[name][0]
    message = rf"^the derivative of scipy\.special\.{name} in its first argument v \(the order\) is not supported, " \
              r"only in x: pass v as a constant"
    with pytest.raises(NotImplementedError, match=message):
        jl.jacobian(lambda v: f(v, 1.5), np.array([0.5, 1.0]), mode=mode)
    with pytest.raises(NotImplementedError, match=message):
        jl.jacobian(lambda x: f(x, x), np.array([0.5, 1.0]), mode=mode)


@pytest.mark.parametrize("name", BESSEL)
def test_real_order_bessel_functions_cost_a_transcendental_per_output(name):
    f, n = BESSEL[name][0], POINTS.size
    assert jl.count_flops(lambda x: f(ORDERS, x), POINTS) == jl.Cost(0, n)
    assert jl.count_flops(lambda x: f(ORDERS[:, None], x), POINTS) == jl.Cost(0, n * n)


# --- complete elliptic integrals ---------------------------------------------------------------
def _elliptic_series(m, order, of_e=False):
    """The `order`-th derivative of K (of E with `of_e`) by its power series summed to 60 terms:
    K = π/2 Σ cₙ mⁿ, E = π/2 Σ cₙ mⁿ / (1 − 2n), cₙ = (C(2n, n) / 4ⁿ)² (for |m| ≤ 0.1, past 1e-60 of the sum)."""
    n = np.arange(order, 60)
    c = np.array([(math.comb(2 * k, k) / 4.0 ** k) ** 2 for k in n]) / (1 - 2 * n if of_e else 1)
    falling = np.prod([n - j for j in range(order)], axis=0)
    return math.pi / 2 * np.sum(c * falling * np.asarray(m)[..., None] ** (n - order), axis=-1)


def _k_second(m):
    """K'' from K's equation m (1 − m) K'' + (1 − 2m) K' − K/4 = 0."""
    k, e = sc.ellipk(m), sc.ellipe(m)
    slope = (e - (1 - m) * k) / (2 * m * (1 - m))
    return (k / 4 - (1 - 2 * m) * slope) / (m * (1 - m))


def _e_second(m):
    """E'' from E's equation m (1 − m) E'' + (1 − m) E' + E/4 = 0."""
    k, e = sc.ellipk(m), sc.ellipe(m)
    return -((1 - m) * (e - k) / (2 * m) + e / 4) / (m * (1 - m))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_elliptic_slopes_near_m_zero_have_their_limits(mode):
    """There the formulas are 0/0 (NaN at 0) and cancel nearby (1e-8 of K' lost at m = 1e-8). At 0, K' = π/8,
    E' = −π/8, K'' = 9π/64, E'' = −3π/64; nearby, the power series."""
    m = np.array([0.0, 1e-9, -1e-9, 1e-5, -0.03, 0.08, -0.0999])
    J = lambda f, x: np.diag(jl.jacobian(f, x, mode=mode))  # noqa: E731
    H = lambda f, x: np.diag(jl.hessian(lambda v: np.sum(f(v)), mode=mode)(x))  # noqa: E731
    np.testing.assert_allclose(J(sc.ellipk, m), _elliptic_series(m, 1), rtol=1e-15)
    np.testing.assert_allclose(J(sc.ellipe, m), _elliptic_series(m, 1, of_e=True), rtol=1e-15)
    np.testing.assert_allclose(J(sc.ellipkm1, 1 - m), -_elliptic_series(1 - (1 - m), 1), rtol=1e-15)
    np.testing.assert_allclose(H(sc.ellipk, m), _elliptic_series(m, 2), rtol=1e-14)
    np.testing.assert_allclose(H(sc.ellipe, m), _elliptic_series(m, 2, of_e=True), rtol=1e-14)
    np.testing.assert_allclose(H(sc.ellipkm1, 1 - m), _elliptic_series(1 - (1 - m), 2), rtol=1e-14)
    pi = math.pi
    np.testing.assert_allclose([J(sc.ellipk, m[:1]), J(sc.ellipe, m[:1]), H(sc.ellipk, m[:1]), H(sc.ellipe, m[:1])],
                               [[pi / 8], [-pi / 8], [9 * pi / 64], [-3 * pi / 64]], rtol=1e-16)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_elliptic_second_derivatives_are_their_equations(mode):
    m = M_POINTS
    H = lambda f, x: np.diag(jl.hessian(lambda v: np.sum(f(v)), mode=mode)(x))  # noqa: E731
    np.testing.assert_allclose(H(sc.ellipk, m), _k_second(m), rtol=1e-12)
    np.testing.assert_allclose(H(sc.ellipe, m), _e_second(m), rtol=1e-12)
    np.testing.assert_allclose(H(sc.ellipkm1, 1 - m), _k_second(m), rtol=1e-12)
    for f, x in ((sc.ellipk, m), (sc.ellipe, m), (sc.ellipkm1, 1 - m)):  # and differences of the gradient
        assert_fd_close(jl.hessian(lambda v: np.sum(f(v)), mode=mode)(x), central_differences(jl.grad(
            lambda v: np.sum(f(v))), x))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_elliptic_slopes_toward_m_one(mode):
    """K has a log pole at m = 1: K ≈ log(4/√p) for p = 1 − m, K' → +inf; E' = (E − K)/(2m) → −inf. Near it,
    ellipkm1 keeps p itself: K' = (E − pK) / (2(1 − p)p), which the reference takes from scipy with p exact."""
    m = 1 - np.array([1e-3, 1e-8, 1e-12, 1e-15])
    p = 1 - m  # exactly
    k, e = sc.ellipkm1(p), sc.ellipe(m)
    slope = (e - p * k) / (2 * m * p)
    J = lambda f, x: np.diag(jl.jacobian(f, x, mode=mode))  # noqa: E731
    np.testing.assert_allclose(J(sc.ellipk, m), slope, rtol=1e-14)
    np.testing.assert_allclose(J(sc.ellipkm1, p), -slope, rtol=1e-14)
    np.testing.assert_allclose(J(sc.ellipe, m), (e - k) / (2 * m), rtol=1e-14)
    with np.errstate(all="raise"):  # one element each: another seed's 0 times inf would be NaN
        assert jl.jacobian(sc.ellipk, np.array(1.0), mode=mode) == np.inf
        assert jl.jacobian(sc.ellipe, np.array(1.0), mode=mode) == -np.inf
        assert jl.jacobian(sc.ellipkm1, np.array(0.0), mode=mode) == -np.inf
    with np.errstate(invalid="ignore"):  # past 1 (p < 0) scipy's values are NaN, and so are the slopes
        assert np.all(np.isnan(J(sc.ellipk, np.array([1.5, 3.0]))))
        assert np.all(np.isnan(J(sc.ellipe, np.array([1.5, 3.0]))))
        assert np.all(np.isnan(J(sc.ellipkm1, np.array([-0.5, -2.0]))))


# --- exprel ------------------------------------------------------------------------------------
def _exprel_series(x, order):
    """The `order`-th derivative of exprel(x) = Σ xᵏ / (k + 1)! by its series summed to 40 terms (|x| ≤ 1/2)."""
    k = np.arange(order, 40)
    falling = np.prod([k - j for j in range(order)], axis=0)
    coefficients = falling / np.array([float(math.factorial(j + 1)) for j in k])
    return np.sum(coefficients * np.asarray(x)[..., None] ** (k - order), axis=-1)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_exprel_slopes_near_zero_and_far_out(mode):
    """exprel' = (eˣ − exprel)/x cancels near 0 (to ε/x of it; 1/2 at 0, 1/3 the second derivative) and
    overflows past x = 709.8 with eˣ while exprel is finite up to there; for x ≪ 0 it is 1/x²."""
    near = np.array([0.0, 1e-9, -1e-9, 1e-5, -0.3, 0.45, -0.4999])
    J = lambda x: np.diag(jl.jacobian(sc.exprel, x, mode=mode))  # noqa: E731
    H = lambda x: np.diag(jl.hessian(lambda v: np.sum(sc.exprel(v)), mode=mode)(x))  # noqa: E731
    np.testing.assert_allclose(J(near), _exprel_series(near, 1), rtol=1e-15)
    np.testing.assert_allclose(H(near), _exprel_series(near, 2), rtol=1e-14)
    assert J(near[:1])[0] == 0.5 and H(near[:1])[0] == pytest.approx(1 / 3, rel=1e-16)
    # eˣ (x − 1) / x² + 1/x², in an order that does not overflow (e^709.7 is finite)
    far = np.array([30.0, 700.0, 709.7, -40.0, -745.0, -1e8, -1e300])
    expected = np.exp(far) / far * ((far - 1) / far) + (1 / far) ** 2
    np.testing.assert_allclose(J(far), expected, rtol=2e-15)
    with np.errstate(all="raise"):  # scipy's exprel is inf past 709.78: so is the slope, without a warning
        assert jl.jacobian(sc.exprel, np.array(710.0), mode=mode) == np.inf
    H2 = jl.hessian(lambda v: np.sum(sc.exprel(v)), mode=mode)(np.array([-3.0, 2.0, 40.0]))
    x = np.array([-3.0, 2.0, 40.0])
    np.testing.assert_allclose(np.diag(H2), (np.exp(x) * (x * x - 2 * x + 2) - 2) / x ** 3, rtol=1e-14)


# --- Huber losses --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_huber_at_its_kinks_and_off_its_domain(mode):
    """At |r| = δ both of huber's pieces have the slopes r and 0 (in r, in δ): they agree; the second
    derivatives are the quadratic piece's, which scipy's value takes there (|r| ≤ δ). For δ < 0 scipy's values
    are inf, constant: slope 0, as rel_entr's off its domain. At δ = 0 huber is 0 for every r, its slope in δ |r|."""
    delta = np.array([1.0, 1.0, 2.5, -1.0, -0.5, 0.0, 0.0])
    r = np.array([1.0, -1.0, -2.5, 0.7, 0.0, 3.0, -2.0])
    v = np.concatenate([delta, r])
    J = jl.jacobian(_pair(sc.huber), v, mode=mode)
    np.testing.assert_array_equal(np.diag(J[:, :7]), [0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 2.0])
    np.testing.assert_array_equal(np.diag(J[:, 7:]), [1.0, -1.0, -2.5, 0.0, 0.0, 0.0, 0.0])
    assert np.all(sc.huber(delta[3:5], r[3:5]) == np.inf)
    g = jl.grad(lambda v: np.sum(sc.huber(v[:7], v[7:])))(v)
    np.testing.assert_array_equal(g, np.diag(J[:, :7]).tolist() + np.diag(J[:, 7:]).tolist())
    H = jl.hessian(lambda v: sc.huber(v[0], v[1]), mode=mode)
    np.testing.assert_array_equal(H(np.array([1.0, -1.0])), [[0.0, 0.0], [0.0, 1.0]])  # the kink: quadratic
    np.testing.assert_array_equal(H(np.array([1.0, -3.0])), [[-1.0, -1.0], [-1.0, 0.0]])  # δ(|r| − δ/2)
    np.testing.assert_array_equal(H(np.array([1.0, 0.5])), [[0.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_pseudo_huber_at_zero_and_far_out(mode):
    """r = 0: 0 for every δ, slopes 0; δ = 0: 0 for every r, slope |r| in δ (from δ > 0, where it is about
    δ|r|); δ < 0: inf, slope 0. The slope in δ is δ (s − 1)² / s, s = √(1 + v²), v = r/δ: where v is small,
    δ v⁴ (1 − v²) / 4 (+ O(v⁸)), which s − 1 would cancel to 2e-6 of at v = 1e-5; where v is large, (h − δ)² / h
    with h = hypot(δ, r), which δ (s − 1)² / s would overflow."""
    delta = np.array([1.5, 0.0, 0.0, -1.0, 1e5, 1e-5, 2.0, 1e-200])
    r = np.array([0.0, 0.0, -2.0, 0.5, 1.0, 1.0, 3.0, 1e100])
    J = jl.jacobian(_pair(sc.pseudo_huber), np.concatenate([delta, r]), mode=mode)
    d, x = delta[4:], r[4:]
    h = np.hypot(d, x)
    small = 1e5 * 1e-20 * (1 - 1e-10) / 4
    np.testing.assert_allclose(np.diag(J[:, :8]), [0.0, 0.0, 2.0, 0.0, small, *((h - d)[1:] ** 2 / h[1:])], rtol=1e-15)
    np.testing.assert_allclose(np.diag(J[:, 8:]), [0.0, 0.0, 0.0, 0.0, *(d * x / h)], rtol=1e-15)
    # second derivative in r: 1 / s³; the rest by differences of the gradient
    H = jl.hessian(lambda v: np.sum(sc.pseudo_huber(v[:3], v[3:])), mode=mode)
    point = np.array([0.5, 1.0, 2.0, 1.3, -0.4, 0.0])
    s = np.sqrt(1 + (point[3:] / point[:3]) ** 2)
    np.testing.assert_allclose(np.diag(H(point))[3:], 1 / s ** 3, rtol=1e-14)
    assert_fd_close(H(point), central_differences(jl.grad(lambda v: np.sum(sc.pseudo_huber(v[:3], v[3:]))), point))


def test_huber_losses_cost_a_transcendental_per_output():
    delta, r = HUBER
    for f in (sc.huber, sc.pseudo_huber):
        assert jl.count_flops(lambda r: f(delta, r), r) == jl.Cost(0, r.size)
        assert jl.count_flops(_pair(f), np.concatenate([delta, r])) == jl.Cost(0, r.size)


# --- jit --------------------------------------------------------------------------------------
def _everything(x):
    q = x / 3.0
    return (sc.expit(x) * sc.logit(q) + sc.log_expit(-x) + sc.erf(x) * sc.erfc(q) + sc.erfinv(q - 0.2)
            - sc.erfcinv(x / 2) + sc.ndtr(x) * sc.log_ndtr(x - 1.0) + sc.ndtri(q) + sc.gammaln(x) * sc.psi(x)
            + sc.xlogy(x, x[::-1]) + sc.xlog1py(x[::-1], q) + sc.entr(q))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jit_replays_the_eager_jacobian(mode):
    x = np.array([0.4, 1.3, 2.1, 0.7])
    jitted = jl.jit(jl.jacobian(_everything, mode=mode))
    np.testing.assert_array_equal(jitted(x), jl.jacobian(_everything, x, mode=mode))
    x2 = x * 1.1
    assert_close(jitted(x2), jl.jacobian(_everything, x2, mode=mode), 1e-13)
    assert_fd_close(jitted(x2), central_differences(_everything, x2))
    assert jitted.compiles == 1


def _bessel_elliptic_exprel_huber(x):
    q = x / 3.0
    return (sc.jv(1.5, x) * sc.kve(-0.5, q) + sc.yv(np.array([0.0, 1.0, 2.5, 4.0]), x) + sc.k1e(x)
            + sc.ive(2.0, x - 1.0) + sc.ellipk(q - 0.5) * sc.ellipe(0.5 - q) + sc.ellipkm1(q)
            + sc.exprel(x - 1.0) + sc.huber(0.5, x - 1.0) + sc.pseudo_huber(q, x[::-1]))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jit_replays_the_bessel_elliptic_exprel_and_huber_jacobians(mode):
    """Which side of |m| = 0.1, |x| = 1/2 (exprel's series) or |r| = δ an element is on, as a pole at x = 0, is a
    select, not a route: one program serves the points on either side."""
    x = np.array([0.4, 1.3, 2.1, 0.7])
    jitted = jl.jit(jl.jacobian(_bessel_elliptic_exprel_huber, mode=mode))
    np.testing.assert_array_equal(jitted(x), jl.jacobian(_bessel_elliptic_exprel_huber, x, mode=mode))
    for x2 in (x * 1.1, np.array([0.2, 1.6, 2.6, 0.9])):
        assert_close(jitted(x2), jl.jacobian(_bessel_elliptic_exprel_huber, x2, mode=mode), 1e-13)
        assert_fd_close(jitted(x2), central_differences(_bessel_elliptic_exprel_huber, x2))
    assert jitted.compiles == 1


# --- what does not run on traced arrays --------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_an_unsupported_scipy_ufunc_is_named(mode):
    x = np.array([0.5, 1.5])
    with pytest.raises(NotImplementedError, match=r"scipy\.special\.struve has no derivative rule") as info:
        jl.jacobian(lambda x: sc.struve(1.0, x), x, mode=mode)
    assert "primitive" in str(info.value)
    with pytest.raises(NotImplementedError, match=r"scipy\.special\.xlogy\.outer"):
        jl.jacobian(lambda x: sc.xlogy.outer(x, x), x, mode=mode)
    with pytest.raises(NotImplementedError, match=r"numpy\.ldexp"):  # NumPy's own keep their name
        jl.jacobian(lambda x: np.ldexp(x, 2), x, mode=mode)
    with pytest.raises(NotImplementedError, match=r"^scipy\.special\.zeta has no"):  # its private _riemann_zeta
        jl.jacobian(lambda x: sc.zeta(x + 2.0), x, mode=mode)


@pytest.mark.parametrize("name, f", [("logsumexp", sc.logsumexp), ("softmax", lambda x: sc.softmax(x * 2.0)),
                                     ("polygamma", lambda x: sc.polygamma(1, x))])
def test_a_scipy_function_that_converts_its_input_is_named(name, f):
    with pytest.raises(jl.TracerConversionError, match=rf"^scipy\.special\.{name} converts its input with np\.asarray"):
        jl.jacobian(f, np.array([0.5, 1.5]))


@pytest.mark.parametrize("f", [sc.logsumexp, sc.softmax, sc.log_softmax], ids=lambda f: f.__name__)
def test_array_api_functions_refuse_traced_arrays(f):
    # They convert their input with asarray first (scipy's array-API layer): documented as unsupported.
    with pytest.raises(jl.TracerConversionError, match="np.asarray"):
        jl.jacobian(f, np.array([0.5, -1.0, 2.0]))


@pytest.mark.skipif(not hasattr(sc, "softplus"), reason="scipy.special.softplus is in scipy >= 1.15")
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_softplus_runs_as_logaddexp(mode):
    x = np.array([-30.0, -1.5, 0.0, 0.8, 40.0])
    y, _ = _forward(sc.softplus, x)
    assert_close(y, sc.softplus(x), 1e-15)  # log-sum-exp with the max taken out, not NumPy's own loop
    assert_close(jl.jacobian(sc.softplus, x, mode=mode), np.diag(1 / (1 + np.exp(-x))), 1e-15)
    # np.logaddexp(0, x): max, whether it is finite and the shift it gives (2), two differences and
    # their selects (4), two exps, min and max of them, - 1 and the sum (4), log1p, + max and a select (2)
    assert jl.count_flops(sc.softplus, x) == jl.Cost(13 * x.size, 3 * x.size)


def test_importing_the_package_does_not_import_scipy_special():
    root = Path(__file__).resolve().parents[1]
    script = (
        "import sys, numpy as np, jacobian_lab as jl\n"
        "from jacobian_lab import numpy_api\n"
        "assert 'scipy.special' not in sys.modules\n"
        "import scipy.special as sc\n"
        "assert sc.erf not in numpy_api.UFUNCS\n"  # mapped when one first reaches a traced array
        "J = jl.jacobian(sc.erf, np.array([0.0, 1.0]))\n"
        "assert sc.erf in numpy_api.UFUNCS and sc.gammaln in numpy_api.UFUNCS\n"
        "print(repr(float(J[0, 0])), repr(float(J[1, 1])))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True,
                         check=True).stdout.split()
    assert float(out[0]) == pytest.approx(2 / math.sqrt(math.pi), rel=1e-15)
    assert float(out[1]) == pytest.approx(2 / math.sqrt(math.pi) * math.exp(-1.0), rel=1e-15)


RECIPES = {  # what f calls: the recipe the refusal names
    "scipy.linalg.cho_factor": (lambda x: scipy.linalg.cho_factor(np.outer(x, x) + np.eye(3))[0], "np.linalg.cholesky"),
    "scipy.linalg.solve_triangular": (lambda x: scipy.linalg.solve_triangular(np.eye(3), x), "np.linalg.solve"),
    "scipy.spatial.pdist": (lambda x: scipy.spatial.distance.pdist(np.stack([x, x ** 2])), "np.linalg.norm(P[:, None]"),
    "scipy.integrate.trapezoid": (lambda x: np.stack([scipy.integrate.trapezoid(x)]), "np.trapezoid"),
    "scipy.integrate.solve_ivp": (lambda x: scipy.integrate.solve_ivp(lambda t, y: -x * y, (0.0, 1.0), np.ones(3)).y,
                                  "jac=jl.jit(jl.jacobian(rhs))"),
    "scipy.special.log_softmax": (sc.log_softmax, "z - np.log(np.sum(np.exp(z)))"),
    "scipy.sparse.coo_array": (lambda x: scipy.sparse.coo_array((x, (np.arange(3), np.arange(3)))).toarray(),
                               "np.add.at(M, (rows, cols), values)"),
    "scipy.signal.lfilter": (lambda x: scipy.signal.lfilter([1.0], [1.0, -0.5], x), "y = np.zeros_like(x)"),
    "scipy.ndimage.gaussian_filter": (lambda x: scipy.ndimage.gaussian_filter(x, 1.0), "shifted slices of np.pad"),
    "scipy.linalg.expm": (lambda x: scipy.linalg.expm(np.outer(x, x)), "np.linalg.eigh(A)"),
}


@pytest.mark.parametrize("name", RECIPES)
def test_a_refused_scipy_function_names_the_numpy_to_write_instead(name):
    call, recipe = RECIPES[name]
    with pytest.raises(jl.TracerConversionError, match=re.escape(name) + " converts its input.*" + re.escape(recipe)):
        jl.jacobian(call, np.array([0.5, -1.0, 2.0]))


@pytest.mark.parametrize("call, name", [
    (lambda x: scipy.linalg.cholesky(np.outer(x, x) + np.eye(3)), "scipy.linalg.cholesky"),
    (lambda x: scipy.stats.entropy(np.abs(x)), "scipy.stats.entropy"),
    (lambda x: scipy.interpolate.CubicSpline([0.0, 0.5, 1.0], x)(0.3), "scipy.interpolate.CubicSpline"),
    (lambda x: scipy.interpolate.CubicSpline([0.0, 0.5, 1.0], [1.0, 0.0, 2.0])(x), "scipy.interpolate.CubicSpline"),
], ids=["through scipy's decorator", "through a stats decorator", "a class made", "a class called"])
def test_a_scipy_function_that_converts_is_named_past_its_decorators(call, name):
    with pytest.raises(jl.TracerConversionError, match=re.escape(name) + " converts its input"):
        jl.jacobian(call, np.array([0.5, -1.0, 2.0]))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_gammaln_and_gamma_slopes_keep_their_digits_next_to_a_negative_pole(mode):
    """SciPy's digamma loses 6e-7 of ψ at −3 + 1e-10: next to the pole at −n, ψ(−n + δ) = −1/δ + H_n − γ + O(δ),
    which the reflection ψ(1 − x) − π / tan(π (x + n)) keeps, δ = x + n being exact."""
    n = np.array([3.0, 10.0, 1.0])
    x = -n + np.array([1e-10, 1e-9, 1e-12])
    harmonic = np.array([sum(1.0 / k for k in range(1, int(m) + 1)) for m in n])
    psi = -1.0 / (x + n) + harmonic - np.euler_gamma  # the O(δ) terms are below 1e-8, against |ψ| ≥ 1e9
    np.testing.assert_allclose(np.diag(jl.jacobian(sc.gammaln, x, mode=mode)), psi, rtol=1e-15)
    np.testing.assert_allclose(np.diag(jl.jacobian(sc.gamma, x, mode=mode)), sc.gamma(x) * psi, rtol=1e-14)
    y = np.array([-2.5, 0.5, 2.0])  # away from the poles, and positive: SciPy's digamma as it is
    np.testing.assert_allclose(np.diag(jl.jacobian(sc.gammaln, y, mode=mode)), sc.digamma(y), rtol=1e-15)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_gammaln_and_gamma_hessians_at_an_integer_beside_a_negative_element(mode):
    """A negative element takes every slope through the reflection, which an integer x = 3 leaves unselected at
    1 - x = -2, a pole of ψ: reverse over reverse multiplied its infinite ψ' by 0 there, giving NaN."""
    x = np.array([3.0, -2.5, 0.5])
    psi, trigamma = sc.digamma(x), sc.polygamma(1, x)
    H = jl.hessian(lambda v: np.sum(sc.gammaln(v)), x, mode=mode)
    np.testing.assert_allclose(H, np.diag(trigamma), rtol=1e-14)
    H = jl.hessian(lambda v: np.sum(sc.gamma(v)), x, mode=mode)
    np.testing.assert_allclose(H, np.diag(sc.gamma(x) * (trigamma + psi ** 2)), rtol=1e-14)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_log_ndtr_keeps_its_first_two_derivatives_far_in_the_left_tail(mode):
    """Below −1e5 the slope is −x − 1/x + 2/x³ − ..., its derivative −1 + 1/x² − ...; through erfcx the
    second derivative under- and overflowed past −1.34e154 (−inf, then NaN, leaking NaN into the other
    entries)."""
    x = np.array([-1e5 + 1.0, -1e5, -1e8, -1.34e154, -1e200, -1e300, 0.5])
    slope = -x - 1 / x + 2 * (1 / x) ** 3
    slope[-1] = np.exp(-0.125) / np.sqrt(2 * np.pi) / sc.ndtr(0.5)
    np.testing.assert_allclose(np.diag(jl.jacobian(sc.log_ndtr, x, mode=mode)), slope, rtol=1e-15)
    H = jl.hessian(lambda v: np.sum(sc.log_ndtr(v)), x, mode=mode)
    second = -1 + (1 / x[:-1]) ** 2
    np.testing.assert_allclose(np.diag(H)[:-1], second, rtol=1e-15)
    assert np.all(np.isfinite(H)) and np.count_nonzero(H - np.diag(np.diag(H))) == 0


@pytest.mark.parametrize("x0", [-0.5, -1.5, -2.5 + 1e-3])
def test_gammaln_third_and_fourth_derivatives_at_negative_half_integers(x0):
    """The reflection's π / tan(π u) sits on tan's pole at a half-integer, where derivatives of the third order
    and up, taken through tan, cancelled: a relative error of 100 at x = -1/2, and of 1e17 for the fourth."""
    x = np.array([x0, 3.0])

    def f(v):
        return np.sum(sc.gammaln(v))

    third = jl.jacrev(jl.jacrev(jl.grad(f)))(x)[0, 0, 0]
    fourth = jl.jacfwd(jl.jacfwd(jl.jacfwd(jl.grad(f))))(x)[0, 0, 0, 0]
    np.testing.assert_allclose([third, fourth], [sc.polygamma(2, x0), sc.polygamma(3, x0)], rtol=1e-13)


# --- Hurwitz's zeta in q -----------------------------------------------------------------------
def _zeta_moment(s, q, power):
    """(−1)^power ∂^power/∂q^power zeta(s, q) by quadrature of zeta(s, q) = ∫ t^(s−1) e^(−qt) / (1 − e^(−t)) dt / Γ(s):
    the integral with t^power more, an independent reference for the rule's −s zeta(s + 1, q)."""
    integrand = lambda t: t ** (s - 1 + power) * np.exp(-q * t) / -np.expm1(-t)  # noqa: E731
    return scipy.integrate.quad(integrand, 0.0, np.inf, epsabs=0.0, epsrel=1e-13, limit=200)[0] / math.gamma(s)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("s", [1.5, 2.0, 3.5])
def test_hurwitz_zeta_slopes_in_q_match_its_integral(s, mode):
    q = np.array([0.5, 1.0, 2.5, 10.0])
    J = np.diag(jl.jacobian(lambda v: sc.zeta(s, v), q, mode=mode))
    np.testing.assert_allclose(J, [-_zeta_moment(s, v, 1) for v in q], rtol=1e-10)
    H = np.diag(jl.hessian(lambda v: np.sum(sc.zeta(s, v)), mode=mode)(q))
    np.testing.assert_allclose(H, [_zeta_moment(s, v, 2) for v in q], rtol=1e-10)
    assert jl.count_flops(lambda v: sc.zeta(s, v), q) == jl.Cost(0, q.size)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_hurwitz_zeta_slope_is_nan_where_zeta_is_not_finite(mode):
    # s = 1 is zeta's pole (inf for every q), as JAX's slope there; below it scipy's zeta is NaN
    J = jl.jacobian(lambda v: sc.zeta(np.array([1.0, 0.5, 2.0]), v), np.full(3, 2.0), mode=mode)
    assert np.isnan(np.diag(J)[:2]).all() and np.diag(J)[2] == -2.0 * sc.zeta(3.0, 2.0)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("f, message", [
    (lambda x: sc.zeta(x + 2.0, 1.5), r"zeta in its first argument x \(the exponent\) is not supported, only in q"),
    (lambda x: sc.zeta(x + 2.0), r"^scipy\.special\.zeta has no derivative rule .*Riemann's zeta\(x\) has no slope"),
    (lambda x: sc.zetac(x + 2.0), r"^scipy\.special\.zetac has no derivative rule .* no slope in closed form"),
], ids=["hurwitz in x", "riemann", "zetac"])
def test_zeta_slope_in_its_exponent_is_refused(f, message, mode):
    with pytest.raises(NotImplementedError, match=message):
        jl.jacobian(f, np.array([0.5, 1.0]), mode=mode)
