"""Elementwise primitives from scipy.special: logistic, error-function, normal, gamma, beta, x·log,
Bessel and complete elliptic families, exprel and the Huber losses.

Each wraps one of scipy's ufuncs, so values are scipy's own, and gives its
derivative as a diagonal factor built from primitives (`elementwise`), so the
derivative's work is counted like any other. Costs: N transcendentals for N
outputs, as for exp; the x·log functions (xlogy, xlog1py, entr) N flops more
for their product.

scipy.special takes longer to import than all of jacobian_lab, so nothing here
imports it until a primitive first runs: the primitives are registered at
once, and `load` binds each to its scipy function on first use.
`jacobian_lab.scipy_special` routes scipy's ufuncs to these primitives.
"""
from __future__ import annotations

import math

import numpy as np

from ..primitives import PerElement, Primitive, observe, primal
from .elementwise import (absolute, add, cos, divide, elementwise, equal, exp, greater, greater_equal, horner, hypot,
                          in_result_dtype, isfinite, isinf, less, less_equal, log, log1p, logical_and, logical_not,
                          logical_or, multiply, negative, over, reciprocal, rint, sign, sin, square, subtract, times,
                          transcendental, unary, where)

#: xlogy, xlog1py and entr: a logarithm and a product per output element.
log_times = PerElement(1, 1)

_BIND: dict[Primitive, object] = {}  # primitive -> its function, given the scipy.special module


def load():
    """Import scipy.special and bind every primitive here to its function; returns the module."""
    import scipy.special as sc

    for prim, bind in _BIND.items():
        prim.impl = bind(sc)
    return sc


def _deferred(bind):
    """An implementation that loads scipy.special, then runs the function it binds."""
    def impl(*args, **params):
        return bind(load())(*args, **params)

    return impl


def _bound(register, name, bind, *args, **kw):
    prim = register(name, _deferred(bind), *args, **kw)
    _BIND[prim] = bind
    return prim


def _unary(name, factor, route=None):
    """A one-operand special function: scipy.special.<name>, N transcendentals."""
    return _bound(unary, name, lambda sc: getattr(sc, name), factor, cost=transcendental, route=route)


SQRT_PI, SQRT_2PI, SQRT_HALF = math.sqrt(math.pi), math.sqrt(2.0 * math.pi), math.sqrt(0.5)


def _gauss(x, scale):
    """scale · exp(−x²)."""
    return multiply(scale, exp(negative(square(x))))


def _normal_density(x):
    """φ(x) = exp(−x²/2) / √(2π)."""
    return multiply(1.0 / SQRT_2PI, exp(multiply(-0.5, square(x))))


# --- logistic ---------------------------------------------------------------------
# σ'(x) = σ(x) σ(−x), without the cancellation of 1 − σ(x) for large x (3.6e-8 of it at x = 20, all past 37)
expit = _unary("expit", lambda out, x: times(multiply(out, expit(negative(x)))))
logit = _unary("logit", lambda out, x: over(multiply(x, subtract(1.0, x))))
# d log σ(x) = 1 − σ(x) = σ(−x), without the cancellation of 1 − σ(x) for large x
log_expit = _unary("log_expit", lambda out, x: times(expit(negative(x))))

# --- error function and the normal distribution ---------------------------------------
erf = _unary("erf", lambda out, x: times(_gauss(x, 2.0 / SQRT_PI)))
erfc = _unary("erfc", lambda out, x: times(_gauss(x, -2.0 / SQRT_PI)))
# inverses: 1 / f'(out), with exp(+out²) in place of dividing by exp(−out²)
erfinv = _unary("erfinv", lambda out, x: times(multiply(SQRT_PI / 2.0, exp(square(out)))))
erfcinv = _unary("erfcinv", lambda out, x: times(multiply(-SQRT_PI / 2.0, exp(square(out)))))
ndtr = _unary("ndtr", lambda out, x: times(_normal_density(x)))
def _log_ndtr_slope(out, x):
    """φ(x) / Φ(x). Left of 0 as √(2/π) / erfcx(−x/√2), since Φ(x) = erfcx(−x/√2) e^{−x²/2} / 2: no
    underflow of φ and Φ far in the tail, nor the cancellation of x²/2 against log Φ(x) ≈ −x²/2. Right
    of 0 as it is (Φ ≥ 1/2), where erfcx(−x/√2) overflows (x > 37, or 13 in float32). Below −1e5 as its
    asymptotic series −x − 1/x (the next term, 2/x³, is 2e-20 of it): through erfcx, the slope's own
    derivative under- and overflowed past −1.34e154 (−inf and NaN where it is −1). Each range reads x in
    that range only, so none holds an inf that a derivative of the slope would multiply by 0."""
    left, far = less(x, 0.0), less(x, -FAR_TAIL)
    tail = divide(math.sqrt(2.0 / math.pi),
                  erfcx(multiply(-SQRT_HALF, where(logical_and(left, logical_not(far)), x, 0.0))))
    beyond = where(far, x, -FAR_TAIL)
    right = where(left, 0.0, x)
    near = where(left, tail, divide(_normal_density(right), ndtr(right)))
    return where(far, negative(add(beyond, reciprocal(beyond))), near)


#: Where log_ndtr's slope is −x − 1/x to the last bit (`_log_ndtr_slope`)
FAR_TAIL = 1e5


log_ndtr = _unary("log_ndtr", lambda out, x: times(_log_ndtr_slope(out, x)))
ndtri = _unary("ndtri", lambda out, x: times(multiply(SQRT_2PI, exp(multiply(0.5, square(out))))))

# --- gamma family -----------------------------------------------------------------
# polygamma(x, n=k) is ψ⁽ᵏ⁾(x), k ≥ 1 a constant; its derivative is the next one, so
# every order of derivative of gammaln and digamma has a rule.
def _cot_derivatives(n: int) -> np.polynomial.Polynomial:
    """P with dⁿ/dyⁿ cot(y) = P(cot y): P₀(c) = c, Pₖ₊₁(c) = −(1 + c²) Pₖ'(c)."""
    P = np.polynomial.Polynomial([0.0, 1.0])
    for _ in range(n):
        P = -np.polynomial.Polynomial([1.0, 0.0, 1.0]) * P.deriv()
    return P


#: Below −this, ψ⁽ⁿ⁾ is taken by reflection (`_polygamma`)
REFLECT_BELOW = 100.0


def _polygamma(sc, n, x):
    """ψ⁽ⁿ⁾(x), by SciPy's polygamma, but below −`REFLECT_BELOW` (off the poles) by the reflection
    ψ⁽ⁿ⁾(x) = (−1)ⁿ ψ⁽ⁿ⁾(1 − x) − πⁿ⁺¹ Pₙ(cot(π r)), r = x − round(x) exact: SciPy recurses from x up
    to 0 one step at a time (2 s at x = −1e8 + 0.5, minutes further out), and nearer 0 keeps more digits."""
    x = np.asarray(x, dtype=np.result_type(x, 0.0))
    reflect = (x < -REFLECT_BELOW) & (x != np.round(x))
    if not reflect.any():
        return sc.polygamma(n, x)
    out = np.array(sc.polygamma(n, np.where(reflect, 0.5, x)))
    v = x[reflect]
    r = v - np.round(v)
    # cot(π r), past |r| = 1/4 as −tan(π (r ∓ 1/2)), r ∓ 1/2 exact: 1 / tan(π/2) is 6e-17, not 0, which
    # the even orders' Pₙ (a multiple of cot) took for ψ⁽ⁿ⁾ itself at a half-integer (−3e-13 for −6e-24)
    half = np.copysign(0.5, r)
    cot = np.where(np.abs(r) <= 0.25, 1.0 / np.tan(np.pi * r), -np.tan(np.pi * (r - half)))
    out[reflect] = (-1.0) ** n * sc.polygamma(n, 1.0 - v) - np.pi ** (n + 1) * _cot_derivatives(int(n))(cot)
    return out[()] if out.ndim == 0 else out


polygamma = _bound(
    elementwise, "polygamma", lambda sc: lambda x, n: _polygamma(sc, n, x),
    lambda needs, out, x, n: (times(polygamma(x, n=n + 1)),), cost=transcendental,
)
digamma = _unary("digamma", lambda out, x: times(polygamma(x, n=1)))


def _digamma_of(x):
    """ψ(x) for the slopes of gammaln and gamma. SciPy's digamma loses digits just above the poles at
    0, −1, −2, ... (6e-7 of ψ at −3 + 1e-10, 2.7e-5 at −1 + 1e-12); for negative x the reflection
    ψ(x) = ψ(1 − x) − π cot(π (x − round(x))) keeps them, the distance to the pole being exact. Which
    route is a decision on values (a compiled replay checks it); its derivative is the reflection's too."""
    if not observe(_any_negative, primal(x)):
        return digamma(x)
    reflect = logical_and(less(x, 0.0), logical_not(equal(x, rint(x))))  # at an integer, SciPy's value
    # Elsewhere the reflection is taken at -¼, where neither ψ(1 - x) nor cot(π x) has a pole: its derivatives
    # there are multiplied by 0, and an infinite one (ψ' at 1 - x = -2, for x = 3) would make that 0 NaN.
    xr = where(reflect, x, -0.25)
    # π cot(π u) as π cos / sin: through tan, whose pole is at the half-integers, the third derivative and up
    # cancelled there (a relative error of 100 at x = -½)
    turn = multiply(math.pi, subtract(xr, rint(xr)))
    reflected = subtract(digamma(subtract(1.0, xr)), divide(multiply(math.pi, cos(turn)), sin(turn)))
    return where(reflect, reflected, digamma(x))


def _any_negative(x) -> bool:
    return bool(np.any(np.less(x, 0.0)))


def _reflected(out, x) -> bool:
    """The route `_digamma_of` takes (`Primitive.route`): the reflection where x holds a negative number."""
    return _any_negative(x)


gammaln = _unary("gammaln", lambda out, x: times(_digamma_of(x)), route=_reflected)
gamma = _unary("gamma", lambda out, x: times(multiply(out, _digamma_of(x))), route=_reflected)  # Γ' = Γ ψ


def _digamma_difference(large, v, w, s):
    """ψ(v) − ψ(s) for s = v + w, by the asymptotic series of ψ where v and s are at least 50 (`large`),
    with each difference of powers written with w as a factor: ψ(1e15) − ψ(1e15 + 1) cancels to 0 as two
    digammas, where it is −1e-15. Truncated after B₈, the series is 1e-18 off there, relative."""
    v, w, s = where(large, v, 50.0), where(large, w, 50.0), where(large, s, 100.0)  # no pole unselected
    # as quotients, so that no product of the arguments overflows (1e200 · 1e200), and no square of a
    # reciprocal underflows inside a slope that needs it (d/dw of w/(vs) is 1/(vs) − w/(vs²))
    r, t = reciprocal(v), reciprocal(s)
    wr = divide(w, v)
    wrt = divide(wr, s)
    d = multiply(wrt, add(r, t))  # 1/v² − 1/s² = w (s + v) / (v s)²
    # Σ_k B₂ₖ/(2k) (v^−2k − s^−2k) with p = r², q = t²
    #   = d [1/12 − (p + q)/120 + (p² + pq + q²)/252 − (p³ + p²q + pq² + q³)/240]
    p, q = square(r), square(t)
    both, p2, q2 = add(p, q), square(p), square(q)
    inner = subtract(divide(add(add(p2, multiply(p, q)), q2), 252.0), divide(both, 120.0))
    inner = subtract(add(inner, 1.0 / 12.0), divide(multiply(both, add(p2, q2)), 240.0))
    series = add(add(log1p(wr), multiply(wrt, 0.5)), multiply(d, inner))  # log(s/v) + w/(2vs) + ...
    return negative(series)


#: Terms of the Taylor series in `_digamma_step`, and the largest |w| / v it takes.
TAYLOR_TERMS, TAYLOR_RATIO = 5, 1e-3


def _digamma_step(near, v, w):
    """ψ(v) − ψ(v + w) where v > 0 and |w| ≤ v / 1000 (`near`), by ψ's Taylor series in w:
    −Σ_{k≥1} w^k ψ⁽ᵏ⁾(v) / k!, whose terms shrink by about |w| / v each, so five keep 1e-15 of the sum.
    Below v = 1 the series is taken at v + 1, as ψ(v) = ψ(v + 1) − 1/v, so that no polygamma overflows at
    a tiny v; 1/v − 1/(v + w) is written with w as a factor. As two digammas the difference cancels:
    ψ(10) − ψ(10 + 1e-12) kept two digits. (Where |w| is larger, the two digammas lose at most about
    log10(v / |w|) digits.)"""
    v, w = where(near, v, 1.0), where(near, w, 0.0)  # no pole, and nothing to overflow, unselected
    below = less(v, 1.0)
    at = where(below, add(v, 1.0), v)
    total = polygamma(at, n=TAYLOR_TERMS)
    for k in range(TAYLOR_TERMS - 1, 0, -1):  # Horner's scheme in w, each coefficient ψ⁽ᵏ⁾ / k!
        total = add(polygamma(at, n=k), multiply(multiply(w, 1.0 / (k + 1)), total))
    shift = where(below, divide(divide(w, v), add(v, w)), 0.0)  # 1/v − 1/(v + w), w a factor
    return negative(add(multiply(w, total), shift))


def _beta_partials(of_log):
    """∂a, ∂b of log|B(a, b)|: ψ(a) − ψ(a + b) and ψ(b) − ψ(a + b); of B itself, those times B.

    The series that keep the digammas' difference where it cancels (`_digamma_difference`,
    `_digamma_step`) run only when an element needs them: a decision on values, which a compiled
    replay checks again, and the primitives say their work depends on values (`reads_values`)."""
    def partials(needs, out, a, b):
        both_sum = add(a, b)
        both = digamma(both_sum)

        def partial(v, w):
            d = subtract(digamma(v), both)
            near = logical_and(greater(v, 0.0), less_equal(absolute(w), multiply(v, TAYLOR_RATIO)))
            if observe(np.any, primal(near)):
                d = where(near, _digamma_step(near, v, w), d)
            large = logical_and(greater_equal(v, 50.0), greater_equal(both_sum, 50.0))
            if observe(np.any, primal(large)):
                d = where(large, _digamma_difference(large, v, w, both_sum), d)
            return times(d if of_log else multiply(out, d))

        return tuple(need and partial(v, w) for need, v, w in zip(needs, (a, b), (b, a)))
    return partials


beta = _bound(elementwise, "beta", lambda sc: sc.beta, _beta_partials(of_log=False), cost=transcendental,
              reads_values=True)
betaln = _bound(elementwise, "betaln", lambda sc: sc.betaln, _beta_partials(of_log=True), cost=transcendental,
                reads_values=True)

# --- x · log ----------------------------------------------------------------------
# JAX's jax.scipy.special rules: ∂x xlogy = log(y), ∂y xlogy = x / y, so at x = 0, where
# scipy defines xlogy(0, y) = 0, the derivative in y is 0 (y ≠ 0). The same for xlog1py.
xlogy = _bound(elementwise, "xlogy", lambda sc: sc.xlogy, in_result_dtype(lambda needs, out, x, y: (
    needs[0] and times(log(y)), needs[1] and times(divide(x, y)))), cost=log_times)
xlog1py = _bound(elementwise, "xlog1py", lambda sc: sc.xlog1py, in_result_dtype(lambda needs, out, x, y: (
    needs[0] and times(log1p(y)), needs[1] and times(divide(x, add(1.0, y))))), cost=log_times)
# entr(x) = −x log x: −(1 + log x), +inf at 0 (as JAX's); NaN below 0, where entr is −inf
entr = _bound(unary, "entr", lambda sc: sc.entr,
              lambda out, x: times(negative(add(log(x), 1.0))), cost=log_times)


# rel_entr(x, y) = x log(x / y) where x, y > 0 (a quotient, a logarithm and a product), else 0 (x = 0, y ≥ 0)
# or inf, with slope 0 there; kl_div = rel_entr − x + y (and a subtraction and an addition), whose slopes are
# rel_entr's − 1 and + 1: JAX's, which writes it so.
def _relative_entropy_partials(kl: bool):
    def partials(needs, out, x, y):
        both = logical_and(greater(x, 0.0), greater(y, 0.0))
        x1, y1 = where(both, x, 1.0), where(both, y, 1.0)  # 1 outside: no log of 0, no warning
        # log x − log y: finite where x / y overflows (rel_entr(1e10, 1e-300) has slope 714.8 in x)
        dx = needs[0] and where(both, add(subtract(log(x1), log(y1)), 1.0), 0.0)
        dy = needs[1] and where(both, negative(divide(x1, y1)), 0.0)
        if kl:
            dx, dy = needs[0] and subtract(dx, 1.0), needs[1] and add(dy, 1.0)
        return needs[0] and times(dx), needs[1] and times(dy)
    return in_result_dtype(partials)


def _no_slope(which: str, argument: str, other: str = "x") -> NotImplementedError:
    """The refusal of a slope in a first argument that has none in closed form (`which`: "jv in its")."""
    name = argument.split()[0]
    return NotImplementedError(f"the derivative of scipy.special.{which} first argument {argument} is not supported, "
                               f"only in {other}: pass {name} as a constant (a plain number or array)")


# The regularized incomplete gamma functions P(a, x) (gammainc) and Q(a, x) = 1 − P (gammaincc): in x the density
# ±x^(a−1) e^(−x) / Γ(a), as exp(xlogy(a − 1, x) − x − gammaln(a)), which is 1 at a = 1, x = 0 (x^0 = 1 there).
# Their slope in a has no closed form (JAX sums a series): refused.
def _incomplete_gamma_partials(sign: float):
    def partials(needs, out, a, x):
        if needs[0]:
            raise _no_slope("gammainc and gammaincc in their", "a (the shape)")
        density = exp(subtract(subtract(xlogy(subtract(a, 1.0), x), x), gammaln(a)))
        return False, times(density if sign > 0 else negative(density))
    return in_result_dtype(partials)


gammainc = _bound(elementwise, "gammainc", lambda sc: sc.gammainc, _incomplete_gamma_partials(1.0),
                  cost=transcendental)
gammaincc = _bound(elementwise, "gammaincc", lambda sc: sc.gammaincc, _incomplete_gamma_partials(-1.0),
                   cost=transcendental)


# Hurwitz's zeta(x, q) = Σ (k + q)^−x: in q the next one, −x zeta(x + 1, q), so every order has a rule. Its slope
# in x (and Riemann's zeta(x), zetac(x) = zeta(x) − 1, in theirs: no primitive, see `rewrites`) is a
# series of logarithms that scipy does not offer: refused.
def _hurwitz_partials(needs, out, x, q):
    if needs[0]:
        raise _no_slope("zeta in its", "x (the exponent)", "q")
    slope = negative(multiply(x, zeta(add(x, 1.0), q)))
    # NaN where zeta is not finite: at s = 1, a pole (inf), as JAX's, and below, where scipy gives NaN
    return False, times(where(isfinite(out), slope, np.nan))


zeta = _bound(elementwise, "zeta", lambda sc: sc._ufuncs._zeta, in_result_dtype(_hurwitz_partials),
              cost=transcendental)


rel_entr = _bound(elementwise, "rel_entr", lambda sc: sc.rel_entr, _relative_entropy_partials(kl=False),
                  cost=PerElement(2, 1))
kl_div = _bound(elementwise, "kl_div", lambda sc: sc.kl_div, _relative_entropy_partials(kl=True),
                cost=PerElement(4, 1))


# --- Bessel functions, orders 0 and 1 ---------------------------------------------------
# J0' = −J1, Y0' = −Y1, I0' = I1, K0' = −K1; the order-1 functions by the recurrence C1' = C0 − C1 / x
# (I1' = I0 − I1 / x likewise, K1' = −K0 − K1 / x), whose limit at x = 0 is 1/2 for J1 and I1 (Y1 and K1
# have a pole there). The exponentially scaled I0e = e^−|x| I0 and I1e = e^−|x| I1 add −sign(x) times
# themselves, K0e = e^x K0 and K1e = e^x K1 themselves.
def _off_the_pole(slope, out, x):
    """slope(out, x), but −out where x = 0 and the value is infinite: a Bessel function's pole there (a power
    x^−p or a logarithm) is reached from x > 0, where it is defined, so the slope is infinite of the other
    sign. There the slope runs on out = 0 and x = 1 instead, so that no inf − inf or inf / 0 warns, nor
    reaches a second derivative."""
    pole = logical_and(equal(x, 0.0), isinf(out))
    return where(pole, negative(out), slope(where(pole, 0.0, out), where(pole, 1.0, x)))


def _guarded(slope):
    """The factor of a one-operand rule from slope(out, x), taken off the pole at 0 (`_off_the_pole`)."""
    return lambda out, x: times(_off_the_pole(slope, out, x))


def _order_one(lower, out, x):
    """lower − C1(x) / x: Y1' (lower = Y0) and K1' (lower = −K0), whose poles at 0 keep the quotient's terms far
    apart near it (nothing to cancel, unlike J1's and I1's)."""
    return subtract(lower, divide(out, x))


#: J1(x) / x = ½ Σ_k (−x²/4)^k / (k! (k + 1)!), I1(x) / x the same in +x²/4: eight terms reach the
#: last bit for |x| < 1/2 (the ninth is 1e-20 of the first).
_QUOTIENT_SERIES = [0.5 / (math.factorial(k) * math.factorial(k + 1)) for k in range(8)]


def _order_one_near_zero(lower, out, x, alternating: bool, scale=None):
    """C0(x) − C1(x) / x with C1 / x from its series where |x| < 1/2 (times `scale`, I1e's e^−|x|):
    differentiated again, the quotient's two terms of size 1/(2x) cancel to an error of ε/x²
    (I1's second derivative 2e284 at x = 1e-300), the series' do not."""
    small = less(absolute(x), 0.5)
    # the series at x only where it is selected: an x² that overflows would reach the unselected
    # branch's derivative as 0 · inf = NaN; x² of a tiny x is 0, as the terms past the first are
    with np.errstate(under="ignore"):
        z = multiply(square(where(small, x, 0.0)), -0.25 if alternating else 0.25)
    series = horner(_QUOTIENT_SERIES, z)
    if scale is not None:
        series = multiply(series, scale)
    return subtract(lower, where(small, series, divide(out, where(small, 1.0, x))))


def _scaled_by_exp(d, out, x):
    """The derivative of e^−|x| f(x) given e^−|x| f'(x) = d: d − sign(x) e^−|x| f(x)."""
    return subtract(d, multiply(sign(x), out))


def _grown_by_exp(d, out, x):
    """The derivative of e^x f(x) given e^x f'(x) = d: d + e^x f(x)."""
    return add(d, out)


j0 = _unary("j0", lambda out, x: times(negative(j1(x))))
j1 = _unary("j1", lambda out, x: times(_order_one_near_zero(j0(x), out, x, alternating=True)))
y0 = _unary("y0", lambda out, x: times(negative(y1(x))))
y1 = _unary("y1", _guarded(lambda out, x: _order_one(y0(x), out, x)))
i0 = _unary("i0", lambda out, x: times(i1(x)))
i1 = _unary("i1", lambda out, x: times(_order_one_near_zero(i0(x), out, x, alternating=False)))
i0e = _unary("i0e", lambda out, x: times(_scaled_by_exp(i1e(x), out, x)))
i1e = _unary("i1e", lambda out, x: times(_scaled_by_exp(
    _order_one_near_zero(i0e(x), out, x, alternating=False, scale=exp(negative(absolute(x)))), out, x)))
k0 = _unary("k0", lambda out, x: times(negative(k1(x))))  # −K1(0) = −inf: no pole to take off
k1 = _unary("k1", _guarded(lambda out, x: _order_one(negative(k0(x)), out, x)))
k0e = _unary("k0e", _guarded(lambda out, x: _grown_by_exp(negative(k1e(x)), out, x)))
k1e = _unary("k1e", _guarded(lambda out, x: _grown_by_exp(_order_one(negative(k0e(x)), out, x), out, x)))
#: np.i0: NumPy's own I0 (a Chebyshev series, its values not scipy's), with scipy's I1 as derivative.
numpy_i0 = unary("numpy_i0", np.i0, lambda out, x: times(i1(x)), cost=transcendental)


# --- Bessel functions of real order v, in x -------------------------------------------------
# C_v' = (C_{v−1} − C_{v+1}) / 2 for J and Y, (I_{v−1} + I_{v+1}) / 2, −(K_{v−1} + K_{v+1}) / 2: each function at
# the orders v ± 1. On the real line jve and yve are jv and yv (their scaling e^−|Im x| is 1); ive = e^−|x| iv and
# kve = e^x kv add their scaling's term. The order takes no derivative (none in closed form): refused, as
# gammainc's shape.
def _half_difference(lower, upper):
    return multiply(0.5, subtract(lower, upper))


def _half_sum(lower, upper):
    return multiply(0.5, add(lower, upper))


def _negative_half_sum(lower, upper):
    return multiply(-0.5, add(lower, upper))


def _real_order(name, combine, scaled=None):
    """scipy.special.<name>(v, x), N transcendentals; its slope in x `combine`s it at the orders v − 1 and v + 1,
    `scaled` (`_scaled_by_exp`, `_grown_by_exp`) adds its scaling's term, and a pole at 0 is taken off
    (`_off_the_pole`)."""
    def slope(v, out, x):
        d = combine(prim(subtract(v, 1.0), x), prim(add(v, 1.0), x))
        return d if scaled is None else scaled(d, out, x)

    def partials(needs, out, v, x):
        if needs[0]:
            raise _no_slope(f"{name} in its", "v (the order)")
        return False, times(_off_the_pole(lambda out, x: slope(v, out, x), out, x))

    prim = _bound(elementwise, name, lambda sc: getattr(sc, name), in_result_dtype(partials), cost=transcendental)
    return prim


jv, yv = _real_order("jv", _half_difference), _real_order("yv", _half_difference)
iv, kv = _real_order("iv", _half_sum), _real_order("kv", _negative_half_sum)
jve, yve = _real_order("jve", _half_difference), _real_order("yve", _half_difference)
ive = _real_order("ive", _half_sum, _scaled_by_exp)
kve = _real_order("kve", _negative_half_sum, _grown_by_exp)


# --- complete elliptic integrals ---------------------------------------------------------------
# In scipy's parameter m = k²: K'(m) = (E − (1 − m) K) / (2m (1 − m)), E'(m) = (E − K) / (2m); ellipkm1(p) = K(1 − p)
# has the slope −K'(1 − p), with 1 − m as p itself, exact near m = 1. Both formulas are 0/0 at m = 0 and cancel
# near it (ε/m of the slope), where they are the series of K = π/2 Σ cₙ mⁿ and E = π/2 Σ cₙ mⁿ / (1 − 2n),
# cₙ = (C(2n, n) / 4ⁿ)²: π/8 + 9πm/64 + ... and −π/8 − 3πm/64 − ...
#: Below this |m|, the series (`_elliptic_slope`), whose twenty terms reach the last bit there.
ELLIPTIC_SERIES_BELOW = 0.1
_K_SLOPE_SERIES = [math.pi / 2 * n * (math.comb(2 * n, n) / 4.0 ** n) ** 2 for n in range(1, 21)]
_E_SLOPE_SERIES = [c / (1 - 2 * n) for n, c in enumerate(_K_SLOPE_SERIES, start=1)]


def _elliptic_slope(m, formula, series):
    """formula(m), but the `series` of the slope's powers of m where |m| is below `ELLIPTIC_SERIES_BELOW`; there
    the formula runs on m = 1/2 instead (no 0/0), and the series elsewhere on 0 (no overflow)."""
    small = less(absolute(m), ELLIPTIC_SERIES_BELOW)
    return where(small, horner(series, where(small, m, 0.0)), formula(where(small, 0.5, m)))


def _k_slope(m, q, k):
    """K'(m) given q = 1 − m (exact, as the caller has it) and K(m) = k; +inf at m = 1, K's log pole, where the
    formula runs on q = 1/2 and k = 1 (no 0 · inf)."""
    pole = equal(q, 0.0)
    q1, k1 = where(pole, 0.5, q), where(pole, 1.0, k)

    def formula(m):  # (E − q K) / (2m) / q: no product m q to overflow
        return divide(divide(subtract(ellipe(m), multiply(q1, k1)), multiply(2.0, m)), q1)

    return where(pole, np.inf, _elliptic_slope(m, formula, _K_SLOPE_SERIES))


ellipk = _unary("ellipk", lambda out, m: times(_k_slope(m, subtract(1.0, m), out)))
ellipkm1 = _unary("ellipkm1", lambda out, p: times(negative(_k_slope(subtract(1.0, p), p, out))))
# E' = (E − K) / (2m) is −inf at m = 1 as it is: 1 − inf
ellipe = _unary("ellipe", lambda out, m: times(_elliptic_slope(
    m, lambda m: divide(subtract(out, ellipk(m)), multiply(2.0, m)), _E_SLOPE_SERIES)))


# --- exprel ----------------------------------------------------------------------------------------
# exprel(x) = (eˣ − 1)/x, 1 at 0, has the slope (eˣ − exprel)/x, which cancels near 0 (to ε/x of it) and overflows
# past x = 709.8 with eˣ. So: for |x| < 1/2 its series Σ (k + 1) xᵏ / (k + 2)!, sixteen terms to the last bit; for
# x < 0 the formula, eˣ below 1; for x > 0, with eˣ = x·exprel + 1, exprel (1 − 1/x) + 1/x, inf where exprel is.
#: Below this |x|, exprel's slope is its series (`_exprel_slope`).
EXPREL_SERIES_BELOW = 0.5
_EXPREL_SLOPE_SERIES = [(k + 1) / math.factorial(k + 2) for k in range(16)]


def _exprel_slope(out, x):
    """exprel'(x) from out = exprel(x): the series, the formula or its form for x > 0, by range (above)."""
    small, left = less(absolute(x), EXPREL_SERIES_BELOW), less(x, 0.0)
    # each range reads x in that range only: no 0/0 at 0, no overflow of eˣ on the right
    series = horner(_EXPREL_SLOPE_SERIES, where(small, x, 0.0))
    xl, xr = where(left, x, -1.0), where(logical_or(small, left), 1.0, x)
    inverse = reciprocal(xr)
    right = add(multiply(out, subtract(1.0, inverse)), inverse)
    return where(small, series, where(left, divide(subtract(exp(xl), out), xl), right))


exprel = _unary("exprel", lambda out, x: times(_exprel_slope(out, x)))


# --- Huber losses ---------------------------------------------------------------------------------
# huber(δ, r) = r²/2 where |r| ≤ δ, δ (|r| − δ/2) beyond: slopes (in δ, in r) 0, r and |r| − δ, δ sign(r), which
# agree at |r| = δ (once differentiable there; the second derivatives are the quadratic piece's, whose value scipy
# takes at |r| = δ). For δ < 0 scipy's value is inf, a constant: slopes 0, as rel_entr's off its domain.
def _huber_partials(needs, out, delta, r):
    size = absolute(r)
    usable = logical_not(less(delta, 0.0))
    outside = logical_and(usable, logical_not(less_equal(size, delta)))  # and where δ or r is NaN: NaN slopes
    return (needs[0] and times(where(outside, subtract(size, delta), 0.0)),
            needs[1] and times(where(outside, multiply(delta, sign(r)), where(usable, r, 0.0))))


# pseudo_huber(δ, r) = δ² (√(1 + (r/δ)²) − 1) = δ (h − δ), h = hypot(δ, r): slopes δ r / h in r and (h − δ)² / h in
# δ, written r q · q (r / h) with h − δ = r q, q = r / (h + δ): nothing cancels where r ≪ δ, nor does r⁴ overflow
# where r ≫ δ. At δ = 0 they are |r| and 0 (from δ > 0); at δ = r = 0, and for δ < 0 (inf), 0.
def _pseudo_huber_partials(needs, out, delta, r):
    off = logical_or(less(delta, 0.0), logical_and(equal(delta, 0.0), equal(r, 0.0)))
    d = where(off, 1.0, delta)  # no 0/0 where the slopes are 0
    h = hypot(d, r)
    q, w = divide(r, add(h, d)), divide(r, h)
    return (needs[0] and times(where(off, 0.0, multiply(multiply(r, q), multiply(q, w)))),
            needs[1] and times(where(off, 0.0, multiply(d, w))))


huber = _bound(elementwise, "huber", lambda sc: sc.huber, in_result_dtype(_huber_partials), cost=transcendental)
pseudo_huber = _bound(elementwise, "pseudo_huber", lambda sc: sc.pseudo_huber, in_result_dtype(_pseudo_huber_partials),
                      cost=transcendental)

# --- the scaled complementary error function ------------------------------------------
# erfcx(x) = e^{x²} erfc(x): erfcx' = 2x erfcx(x) − 2/√π, with no overflow for large x; but the two
# terms cancel to about −1/(√π x²) there, so past x = 10 the slope is their difference's asymptotic
# series, (2/√π) Σ_{n≥1} (−1)^n (2n − 1)!! w^n in w = 1/(2x²): fifteen terms reach the last bit.
_ERFCX_SLOPE_SERIES = [(-1) ** n * math.prod(range(1, 2 * n, 2)) for n in range(1, 16)]


def _erfcx_slope(out, x):
    # past 10 in float64; in float32, whose formula loses 2e-5 by 10, past 4.5, where the fifteen
    # terms still reach its last bit
    start = 10.0 if x.dtype == np.float64 else 4.5
    large = greater(x, start)
    with np.errstate(under="ignore"):  # w of a huge x is 0, as the slope is to the last bit
        w = multiply(square(reciprocal(where(large, x, start))), 0.5)  # no 1/0 where unselected
    asymptotic = multiply(multiply(horner(_ERFCX_SLOPE_SERIES, w), w), 2.0 / SQRT_PI)
    near = where(large, 0.0, x)  # an infinite x, selected away, would give inf · 0 = NaN in a slope
    return where(large, asymptotic, subtract(multiply(multiply(2.0, near), out), 2.0 / SQRT_PI))


erfcx = _unary("erfcx", lambda out, x: times(_erfcx_slope(out, x)))
