"""Non-finite values propagate as in NumPy, warnings are kept, kinks follow one convention."""
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.special as sc
from helpers import central_differences

import jacobian_lab as jl
from jacobian_lab.accounting import counting

MODES = ["forward", "reverse"]


@pytest.mark.parametrize("mode", MODES)
def test_nan_stays_in_its_own_entries(mode):
    x = np.array([np.nan, 1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        J = jl.jacobian(np.sin, x, mode=mode)
    assert np.isnan(J[0, 0])
    np.testing.assert_allclose(J[1:, 1:], np.diag(np.cos(x[1:])))


@pytest.mark.parametrize("mode", MODES)
def test_linear_maps_are_unaffected_by_nan_inputs(mode):
    A = np.arange(6.0).reshape(2, 3)
    J = jl.jacobian(lambda x: A @ x, np.array([np.nan, np.inf, 1.0]), mode=mode)
    np.testing.assert_array_equal(J, A)


@pytest.mark.parametrize("mode", MODES)
def test_inf_output_does_not_raise(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        J = jl.jacobian(lambda x: np.log(x), np.array([0.0, 2.0]), mode=mode)
    assert np.isinf(J[0, 0]) and J[1, 1] == 0.5


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_overflow_warnings_are_not_swallowed(mode):
    with pytest.warns(RuntimeWarning, match="overflow"):
        jl.jacobian(np.exp, np.array([1000.0, 1.0]), mode=mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f, x, expected", [
    (np.abs, np.array([0.0]), [[0.0]]),                      # sign(0) = 0, as PyTorch and autograd (JAX: 1)
    (lambda x: np.maximum(x, 0.0), np.array([0.0]), [[0.5]]),                        # tie shared
    (lambda x: np.minimum(x[0], x[1]), np.array([1.0, 1.0]), [0.5, 0.5]),
    (lambda x: np.clip(x, 0.0, 1.0), np.array([0.0, 1.0, 0.5]), np.diag([0.5, 0.5, 1.0])),
    (lambda x: np.where(x > 0, x, 2 * x), np.array([0.0]), [[2.0]]),                 # the branch taken
    (lambda x: np.max(x), np.array([3.0, 3.0, 1.0]), [0.5, 0.5, 0.0]),
])
def test_kink_conventions_in_both_modes(mode, f, x, expected):
    np.testing.assert_allclose(jl.jacobian(f, x, mode=mode), expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f, x, expected", [
    (lambda x: x ** 0, np.array([0.0, 2.0]), np.zeros((2, 2))),                     # x ** 0 is 1
    (lambda x: x ** np.array([0.0, 1.0, 2.0]), np.zeros(3), np.diag([0.0, 1.0, 0.0])),
    (lambda p: 0.0 ** p, np.array([2.0, 0.5]), np.zeros((2, 2))),                  # 0 ** p is 0 near p > 0
    (lambda v: v[0] ** v[1], np.array([0.0, 2.0]), [0.0, 0.0]),
    (lambda v: v[0] ** v[1], np.array([0.0, 0.0]), [0.0, 0.0]),                      # JAX's choice for d/dp
    (lambda v: v[0] ** v[1], np.array([1.5, 2.5]), [2.5 * 1.5 ** 1.5, 1.5 ** 2.5 * np.log(1.5)]),
])
def test_powers_at_zero_have_finite_slopes_as_in_jax(mode, f, x, expected):
    # p * x ** (p - 1) and x ** p * log(x) would be 0 * inf = NaN at these points, with warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        J = jl.jacobian(f, x, mode=mode)
    np.testing.assert_allclose(J, expected, rtol=1e-13)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f, scale", [(np.logaddexp, 1.0), (np.logaddexp2, math.log(2.0))])
def test_logaddexp_is_smooth_at_a_tie(f, scale, mode):
    """log(e^x + e^y) has Hessian p (1 - p) [[1, -1], [-1, 1]] (times ln 2 in base 2), p = 1/2 at a
    tie: logaddexp2 written as NumPy's max + log2(1 + 2^-|x - y|) read abs's kink there and gave 0."""
    for point in ([1.0, 1.0], [-1e3, -1e3], [0.5, -1.0]):
        v = np.array(point)
        p = 1.0 / (1.0 + np.exp(-(v[0] - v[1]) * scale))
        H = jl.hessian(lambda u: f(u[0], u[1]), mode=mode)(v)
        np.testing.assert_allclose(H, scale * p * (1 - p) * np.array([[1.0, -1.0], [-1.0, 1.0]]), rtol=1e-14)


@pytest.mark.parametrize("f", [np.logaddexp, np.logaddexp2])
def test_logaddexp_values_are_numpys_far_apart_and_at_infinities(f):
    """m + log(e^(x-m) + e^(y-m)) rounded the smaller power away (logaddexp(0, -60) was 0, not
    8.8e-27) and gave NaN with an infinite operand; the value now follows NumPy's formula."""
    x = np.array([0.0, 0.0, 3.0, np.inf, np.inf, -np.inf, 1.0])
    y = np.array([-60.0, -1e-5, 3.0, 1.0, -np.inf, -np.inf, np.nan])
    with np.errstate(invalid="ignore"):
        value, _ = jl.jvp(lambda v: f(v[:7], v[7:]), np.concatenate([x, y]), np.ones(14))
        np.testing.assert_allclose(value, f(x, y), rtol=1e-15)
    g = jl.grad(lambda v: f(v[0], v[1]))(np.array([np.inf, 1.0]))
    np.testing.assert_array_equal(g, [1.0, 0.0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [np.logaddexp, np.logaddexp2])
def test_logaddexp_of_a_nan_has_a_nan_derivative(f, mode):
    """NaN propagates to the derivative as to the value (as in JAX): maximum's slope alone gave 0."""
    assert np.isnan(jl.jacobian(lambda v: f(v, 1.0), np.array([np.nan]), mode=mode)).all()
    assert np.isnan(jl.jacobian(lambda v: f(1.0, v), np.array([np.nan]), mode=mode)).all()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("x", [0.5, 3.0])
def test_the_mixed_second_derivative_of_a_power_at_exponent_zero_is_one_over_x(mode, x):
    """d/dp (p x ** (p - 1)) = x ** (p - 1) (1 + p log x), 1/x at p = 0: the base read as 1 wherever
    p == 0 (not only where x == 0 too) gave 1, and a Hessian that was not symmetric."""
    H = jl.hessian(lambda v: v[0] ** v[1], mode=mode)(np.array([x, 0.0]))
    np.testing.assert_allclose(H, [[0.0, 1 / x], [1 / x, np.log(x) ** 2]], rtol=1e-14)  # d²/dp² = x ** p log² x


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [
    lambda v: np.linalg.norm(v), lambda v: np.linalg.norm(v, 3), lambda v: np.linalg.vector_norm(v),
    lambda v: np.linalg.norm(v.reshape(1, 3), axis=1), lambda v: np.linalg.norm(v.reshape(3, 1), "fro"),
], ids=["2", "3", "vector_norm", "axis", "fro"])
def test_a_norm_at_the_zero_vector_has_slope_zero_as_in_pytorch(f, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no 0 / 0 on the way either
        J = jl.jacobian(f, np.zeros(3), mode=mode)
    np.testing.assert_array_equal(J.reshape(3), np.zeros(3))
    x = np.array([1.0, -2.0, 2.0])  # away from zero, the norm's own slope
    np.testing.assert_allclose(jl.jacobian(f, x, mode=mode), central_differences(f, x), rtol=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_hypot_at_the_origin_has_slope_zero_as_a_norm(mode):
    f = lambda x: np.hypot(x[:2], x[2:])  # noqa: E731  (a gradient magnitude, zero at one pixel)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        J = jl.jacobian(f, np.array([0.0, 3.0, 0.0, 4.0]), mode=mode)
    np.testing.assert_array_equal(J, [[0.0, 0.0, 0.0, 0.0], [0.0, 0.6, 0.0, 0.8]])  # row 1 untouched by row 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("point", [(1.0, 1e-9), (1.0, 1e-5), (-2.0, 0.5), (3.0, -4.0), (1e-7, 1.0)])
def test_hypot_s_second_and_third_derivatives_are_exact_near_an_axis(point, mode):
    """r = hypot(x, y): r_xx = y² / r³, which 1/r - x² / r³ (x / r differentiated as a quotient) loses to
    cancellation where |y| ≪ |x|: 0 for 1e-18 at y / x = 1e-9, 8e-8 of it wrong at 1e-5."""
    x, y = point
    r = math.hypot(x, y)
    hessian = np.array([[y * y, -x * y], [-x * y, x * x]]) / r ** 3
    third = np.array([[[-3 * x * y * y, y * (2 * x * x - y * y)], [y * (2 * x * x - y * y), x * (2 * y * y - x * x)]],
                      [[y * (2 * x * x - y * y), x * (2 * y * y - x * x)], [x * (2 * y * y - x * x), -3 * x * x * y]]])
    f = lambda v: np.hypot(v[0], v[1])  # noqa: E731
    H = jl.hessian(f, mode=mode)
    np.testing.assert_allclose(H(np.array(point)), hessian, rtol=1e-14, atol=0)
    np.testing.assert_allclose(jl.jacfwd(H)(np.array(point)), third / r ** 5, rtol=1e-13, atol=1e-300)


def test_a_distance_matrix_with_its_zero_diagonal_has_a_finite_gradient():
    def energy(x):  # pairwise distances of points in the plane, the zero diagonal masked out
        P = x.reshape(-1, 2)
        D = np.linalg.norm(P[:, None] - P[None, :], axis=-1)
        return D[~np.eye(len(P), dtype=bool)].sum()

    x = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    for g in (jl.grad(energy), jl.jit(jl.grad(energy)), lambda x: jl.jacobian(energy, x, mode="forward")):
        np.testing.assert_allclose(g(x), central_differences(energy, x), rtol=1e-6)


DATA = np.array([np.nan, 1.0, 2.0, np.nan])
ZERO_TIMES_NAN = {  # (f, the mode whose seeds meet 0 * inf, f with the value kept out as the README writes it)
    "a product with NaN data": (
        lambda x: np.stack([np.nanmean(DATA * x), np.sum(x)]), "reverse",  # the sum's row too
        lambda x: np.stack([np.nanmean(np.where(np.isnan(DATA), np.nan, np.nan_to_num(DATA) * x)), np.sum(x)])),
    "a cube after an inf on a diagonal": (
        lambda x: np.sum(1.0 / _with_inf_diagonal(np.outer(x, x) + 1.0) ** 3, axis=1), "forward",
        lambda x: np.sum(np.where(np.eye(4, dtype=bool), 0.0, 1.0 / (np.outer(x, x) + 1.0) ** 3), axis=1)),
}


def _with_inf_diagonal(a):
    np.fill_diagonal(a, np.inf)
    return a


@pytest.mark.parametrize("f, nan_mode, kept_out", ZERO_TIMES_NAN.values(), ids=ZERO_TIMES_NAN)
def test_zero_times_an_infinite_slope_is_nan_and_the_double_where_is_not(f, nan_mode, kept_out):
    x = np.array([0.5, 1.5, 0.2, 0.9])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(f(x), kept_out(x), rtol=1e-15)  # the same function
        J = jl.jacobian(f, x, mode=nan_mode)  # as JAX gives it
    assert np.isnan(J).any()
    if nan_mode == "reverse":
        assert np.isnan(J[1]).any()  # in the row of np.sum(x), which never reads DATA
    for mode in MODES:
        J = jl.jacobian(kept_out, x, mode=mode)
        assert np.isfinite(J).all()
        np.testing.assert_allclose(J, central_differences(kept_out, x), rtol=1e-6, atol=1e-8)


def test_polynomial_features_have_the_derivative_of_their_polynomial():
    f = lambda x: np.sum(np.array([1.0, 2.0, 3.0]) * x[:, None] ** np.arange(3))   # 1 + 2x + 3x², summed
    x = np.array([0.0, 0.5])
    np.testing.assert_allclose(jl.grad(f)(x), 2.0 + 6.0 * x)
    np.testing.assert_allclose(jl.jit(jl.grad(f))(x), 2.0 + 6.0 * x)


NEAR_ONE = {  # the slope as an exact rational function of the float x, and points where 1 - x**2 cancels
    "arctanh": (np.arctanh, lambda q: 1 / (1 - q * q), [0.9999999925691829, -1 + 1e-9, 1 - 2.0 ** -30]),
    "arcsin": (np.arcsin, lambda q: (1 - q * q) ** -0.5, [0.9999999925691829, -1 + 1e-9]),
    "arccos": (np.arccos, lambda q: -(1 - q * q) ** -0.5, [0.9999999925691829, -1 + 1e-9]),
    "arccosh": (np.arccosh, lambda q: (q * q - 1) ** -0.5, [1 + 1.1e-8, 1 + 2.0 ** -40]),
}


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("name", NEAR_ONE)
def test_inverse_trig_slopes_keep_their_digits_near_one(name, mode):
    """1 - x**2 lost up to 4e-9 of the slope's relative accuracy next to |x| = 1; (1 - x)(1 + x) keeps it.
    The reference is the slope of the float x in exact rational arithmetic (a float power at the end)."""
    f, slope, points = NEAR_ONE[name]
    x = np.array(points)
    expected = [float(slope(Fraction(v))) for v in points]
    np.testing.assert_allclose(np.diag(jl.jacobian(f, x, mode=mode)), expected, rtol=1e-15)


def _others(x, j):
    """The product of all entries of x but the j-th, in exact rational arithmetic, rounded once."""
    exact = math.prod(Fraction(v) for v in np.delete(x, j).tolist())
    try:
        return float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered in reduce:RuntimeWarning")  # NumPy's prod: 0 · inf
@pytest.mark.parametrize("x, modes, rtol", [
    ([2.0, 1e300, 1e10], ["forward", "reverse"], 1e-15),      # the product overflows; one slope is infinite
    ([0.0, 1e300, 1e10], ["forward", "reverse"], 1e-15),      # and holds a zero
    ([1e-100, 1e10, 1e300], ["forward", "reverse"], 1e-15),   # a finite product, one of whose slopes overflows
    ([1e-200, 1e-200, 1e200], ["forward", "reverse"], 1e-15),  # an intermediate product underflows to 0
    ([1e-200, 3.0, 1e200, 0.5], ["forward", "reverse"], 1e-15),
    # the products before and after an element over- and underflow themselves: sums of logarithms
    ([1e200, 1e200, 2.0, -3.0, 1e-300, 1e-300], ["forward", "reverse"], 1e-12),
    ([1e200, 1e200, 1e-200, 1e-200, 10.0], ["forward", "reverse"], 1e-12),
    ([0.0, 0.0, 1e300, 1e10], ["forward", "reverse"], 0),      # two zeros: every slope is 0
])
def test_prod_slopes_are_exact_where_the_product_over_or_underflows(x, modes, rtol):
    """Dividing the product by x_j gave inf (NaN with a zero) or 0 for every slope once the product
    left the float range, where most slopes are finite and nonzero. In forward mode an infinite slope
    reached the other columns as 0·∞ = NaN: a product of finite numbers past the range adds nothing along
    a seed that leaves its element alone."""
    x = np.array(x)
    expected = [_others(x, j) for j in range(x.size)]
    for mode in modes:
        np.testing.assert_allclose(jl.jacobian(np.prod, x, mode=mode), expected, rtol=rtol)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy's own, at inf · 0
@pytest.mark.parametrize("x, expected", [([np.nan, 1.0, 2.0, 3.0], [6.0, np.nan, np.nan, np.nan]),
                                         ([1.0, 2.0, np.inf, 3.0], [np.inf, np.inf, 6.0, np.inf]),
                                         ([1.0, -np.inf, 0.5, 0.0], [np.nan, 0.0, np.nan, -np.inf])])
def test_prod_slope_of_a_nan_or_infinite_element_is_the_product_of_the_others(x, expected):
    """As JAX's grad: dividing the NaN or infinite product by that element gave NaN for its own slope too."""
    x = np.array(x)
    np.testing.assert_array_equal(jl.grad(np.prod)(x), expected)
    for mode in ("forward", "reverse"):
        np.testing.assert_array_equal(jl.jacobian(np.prod, x, mode=mode), expected)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_prod_along_an_axis_keeps_a_non_finite_slice_out_of_the_others(mode):
    """A 0 seed times another slice's infinite weight was NaN: a structural zero, and in forward mode the finite
    row's own slopes, became NaN."""
    x = np.array([[np.inf, 2.0, 3.0], [1e200, 1e200, 1e-200]])
    J = jl.jacobian(lambda v: np.prod(v, axis=1), x, mode=mode)
    np.testing.assert_array_equal(J[1], [[0.0, 0.0, 0.0], [1.0, 1.0, np.inf]])
    np.testing.assert_array_equal(J[0], [[6.0, np.inf, np.inf], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_prod_second_derivatives_through_a_zero_survive_an_underflow(mode):
    """With a zero and a product that underflows, the parts before and after each element that hold
    the zero are exactly 0, and cumprod differentiates them: d²/dx0 dx2 of x0 x1 x2 x3 at x2 = 0 is x1 x3."""
    H = jl.hessian(np.prod, mode=mode)(np.array([1e-200, 1e-200, 0.0, 5.0]))
    assert H[0, 2] == H[1, 2] == 5e-200 and H[0, 1] == H[0, 3] == 0.0


W4 = np.array([0.3, -1.2, 0.7, 1.1])


def _product_without(x, i, j, upto=4):
    """The product of x[:upto] without x_i and x_j, in rationals."""
    return math.prod([Fraction(v) for k, v in enumerate(x[:upto]) if k not in (i, j)])


# (f, its exact ∂²f/∂x_i∂x_j): a product is linear in each element, so its second derivatives in one are 0
PRODUCTS = {
    "prod": (np.prod, lambda x, i, j: 0 if i == j else _product_without(x, i, j)),
    "cumprod": (lambda v: np.sum(W4 * np.cumprod(v)),
                lambda x, i, j: 0 if i == j else sum(Fraction(W4[k]) * _product_without(x, i, j, k + 1)
                                                     for k in range(max(i, j), 4))),
    "squares and prod": (lambda v: np.sum(v ** 2) / 2 + np.prod(v),
                         lambda x, i, j: 1 if i == j else _product_without(x, i, j)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("small", [1e-8, 1.234e-16, 1e-160])
@pytest.mark.parametrize("name", PRODUCTS)
def test_prod_and_cumprod_hessians_are_exact_at_a_small_element(name, small, mode):
    """∂²/∂x_j² of a product is 0; from total / x_j it is the difference of two terms of about
    total / x_j², whose rounding a small x_j made 1e-7 (1e-8) to O(1) (1e-16) of the entries, or NaN
    (1e-160, where 1 / x_j² overflows). A Hessian takes the products of the others instead."""
    f, second = PRODUCTS[name]
    x = np.array([small, 1.3, 2.7, 0.9])
    exact = np.array([[float(second(x, i, j)) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(jl.hessian(f, mode=mode)(x), exact, rtol=1e-14, atol=1e-15 * np.abs(exact).max())


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy's own, at inf · 0
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_cumprod_at_an_infinite_element_is_differentiated_as_its_products_one_at_a_time(mode):
    """y / x_j is no product of the others where x holds inf: NaN reached structural zeros and the finite
    column's slopes, and the orders disagreed."""
    x = np.array([[1.0, 2.0, 3.0], [np.inf, 2.0, 0.5]])
    J = jl.jacobian(lambda v: np.cumprod(v, axis=0), x, mode=mode).reshape(6, 6)
    expected = np.eye(6)
    expected[3, 0], expected[4, 1], expected[5, 2] = np.inf, 2.0, 0.5  # d y[1, j] / d x[0, j] = x[1, j]
    expected[4, 4], expected[5, 5] = 2.0, 3.0  # d y[1, j] / d x[1, j] = x[0, j]
    expected[3, 3] = 1.0
    np.testing.assert_array_equal(J, expected)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy's own, at inf · 0
@pytest.mark.parametrize("mode", MODES + ["jit"])
@pytest.mark.parametrize("x", [[2.0, np.inf, 0.0, 3.0], [2.0, 0.0, np.inf, 3.0], [0.0, -np.inf, 5.0, 0.0]])
def test_cumprod_beside_an_infinite_element_and_a_zero_is_the_product_of_the_others(x, mode):
    """inf · 0 is NaN: a zero made a running derivative 0 and an infinite element after it read that 0 as no
    seed's, so reverse mode gave 0 where the product of the others (and forward mode) is NaN."""
    x = np.array(x)
    exact = np.array([[np.prod(np.delete(x[:i + 1], j)) if j <= i else 0.0 for j in range(4)] for i in range(4)])
    J = jl.jit(jl.jacobian(np.cumprod))(x) if mode == "jit" else jl.jacobian(np.cumprod, x, mode=mode)
    np.testing.assert_array_equal(J, exact)


@pytest.mark.filterwarnings("ignore:overflow encountered in square:RuntimeWarning")  # f's own v ** 2 at 1e300
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", PRODUCTS)
@pytest.mark.parametrize("x", [[0.0, 1e-160, 3.0, 0.9], [0.0, 1e-300, 1e300, 0.5], [1e-160, 0.0, 1.3, 2.7]])
def test_prod_and_cumprod_hessians_are_exact_at_a_zero_beside_a_small_element(name, x, mode):
    """With a zero, a Hessian differentiated 1 / x_j, whose slope -1 / x_j² is infinite for x_j below 1e-154:
    NaN rows where the exact entries are the products of the others."""
    f, second = PRODUCTS[name]
    x = np.array(x)
    exact = np.array([[float(second(x, i, j)) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(jl.hessian(f, mode=mode)(x), exact, rtol=1e-14, atol=1e-15 * np.abs(exact).max())


def _sqrt_or_else(x):
    """f that asks NumPy to raise, and takes another branch where its own arithmetic fails."""
    with np.errstate(all="raise"):
        try:
            return np.sqrt(x)
        except FloatingPointError:
            return -x


def _sqrt_or_else_warned(x):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            return np.sqrt(x)
        except RuntimeWarning:
            return -x


@pytest.mark.parametrize("f", [_sqrt_or_else, _sqrt_or_else_warned])
def test_a_derivative_that_numpy_is_set_to_raise_on_inside_f_is_a_derivative_error(f):
    """sqrt(0) runs clean, its slope is infinite: forward mode's rule runs inside f, under f's settings,
    and raised NumPy's error there, which f caught and took another branch on, silently."""
    x = np.array([0.0, 4.0])
    np.testing.assert_array_equal(f(x), [0.0, 2.0])  # f's own branch
    with pytest.raises(jl.DerivativeError, match=r"the derivative of sqrt raised (FloatingPointError|RuntimeWarning) "
                                                 r"\(.*divide.*\), as NumPy is set to raise"):
        jl.jacobian(f, x, mode="forward")
    np.testing.assert_allclose(jl.jacobian(f, np.array([1.0, 4.0]), mode="forward"), np.diag([0.5, 0.25]), rtol=1e-15)
    with warnings.catch_warnings():  # a sweep runs after f, under the caller's settings: sqrt'(0) = inf
        warnings.simplefilter("ignore")
        for J in (jl.jacobian(f, x, mode="reverse"), jl.jacobian(f, x), jl.jit(jl.jacobian(f))(x)):
            assert J[0, 0] == np.inf and J[1, 1] == 0.25  # (and 0·∞ off the diagonal, as the README says)


def test_a_sweep_under_settings_that_raise_names_the_derivative():
    with np.errstate(all="raise"), pytest.raises(jl.DerivativeError, match="the derivative of sqrt raised"):
        jl.grad(lambda v: np.sum(np.sqrt(v)))(np.array([0.0, 4.0]))


def _cumprod_slopes(x):
    """J[i, j] = the product of x_0 ... x_i but x_j, exactly (Fractions), for j <= i."""
    return [[_others(x[: i + 1], j) if j <= i else 0.0 for j in range(x.size)] for i in range(x.size)]


@pytest.mark.parametrize("x, modes", [
    ([1e-200, 1e-200, 1e300], ["forward", "reverse", "jit"]),  # the running product underflows to 0, not its slopes
    ([1e-320, 1e10, 1.0], ["forward", "reverse", "jit"]),      # a subnormal element, whose reciprocal overflows
    ([1e-200, 0.0, 1e-200, 1e300], ["reverse"]),               # and a zero (forward mode forms x_0 x_2 = 1e-400)
])
def test_cumprod_slopes_are_exact_where_the_running_product_underflows(x, modes):
    """y · cumsum(ẋ / x) gave 0 (or NaN) for slopes that are finite and nonzero once the running
    product left the float range; the derivative of the products formed one at a time does not divide."""
    x = np.array(x)
    expected = [[_others(x[: i + 1], j) if j <= i else 0.0 for j in range(x.size)] for i in range(x.size)]
    for mode in modes:
        J = jl.jit(jl.jacobian(np.cumprod))(x) if mode == "jit" else jl.jacobian(np.cumprod, x, mode=mode)
        np.testing.assert_allclose(J, expected, rtol=1e-14, atol=0)


def _products_one_at_a_time(v):
    out = [v[:1]]
    for i in range(1, v.size):
        out.append(out[-1] * v[i:i + 1])
    return np.concatenate(out)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_cumprod_out_of_range_is_differentiated_as_its_products_one_at_a_time(mode):
    """Where a partial product leaves the float range on the way (1,100 halves: a long survival
    curve), the slopes are those of the products as NumPy forms them, as JAX's and written-out code's."""
    x = np.r_[[0.5] * 1100, 1e300, 3.0]
    J = jl.jacobian(np.cumprod, x, mode=mode)
    np.testing.assert_array_equal(J, jl.jacobian(_products_one_at_a_time, x, mode=mode))
    assert np.isfinite(J).all() and J[1000, 0] == 0.5 ** 1000


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_cumprod_second_derivatives_where_the_running_product_underflows(mode):
    x = np.array([1e-200, 1e-200, 3.0, 1e300])
    H = jl.hessian(lambda v: np.cumprod(v)[-1], mode=mode)(x)  # the full product's: x_k x_l over the others
    expected = [[_others(np.delete(x, j), k - (k > j)) if j != k else 0.0 for k in range(4)] for j in range(4)]
    np.testing.assert_allclose(H, expected, rtol=1e-14)
    f = lambda v: np.cumprod(v)  # noqa: E731
    assert jl.predict(f, x).cost(mode) == jl.measure(f, x, mode=mode).cost


@pytest.mark.filterwarnings("ignore:overflow encountered in reduce:RuntimeWarning")  # .program(x) evaluates f
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_compiled_replay_warns_as_the_eager_computation_does(mode):
    """prod's overflow route silences the over- and underflows it expects (np.errstate); a compiled
    program replays those lines under the same errstate, so only NumPy's own prod of f warns."""
    x = np.array([1e200, 1e200, 2.0, -3.0, 1e-300, 1e-300])
    compiled = jl.jit(jl.jacobian(np.prod, mode=mode))
    for call in range(3):  # the first records, the others replay
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compiled(x)
        assert {str(w.message) for w in caught} == {"overflow encountered in reduce"}, call
    assert "with errstate(" in compiled.program(x).source


def test_a_replay_keeps_the_callers_errstate_where_f_changed_none():
    """Only the settings f's np.errstate changed are written into the program (here divide, around log
    and exp): the caller's others hold in a replay, as they do eagerly."""
    def f(x):
        with np.errstate(divide="ignore"):
            y = np.log(x) * np.exp(x)
        return y + x

    x = np.array([0.0, 1000.0, 1.0])
    compiled = jl.jit(jl.jacobian(f))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exp's overflow, and the tangents' divide, which run outside f's errstate
        compiled(x)  # records under the default settings
        assert "with errstate(**" in compiled.program(x).source
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled(x)  # replays: exp's overflow stays silent, as the caller asked
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow encountered in exp"):
        compiled(x)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value encountered")
def test_a_compiled_hessian_replays_prods_route_decisions():
    """prod's route is decided on values; inside a Hessian they were the enclosing trace's tracers,
    which a replay's guard could not read."""
    x = np.full(200, 1e3)
    x[3] = 0.0
    f = lambda v: np.prod(v) * np.sum(v)  # noqa: E731 - the product of the others overflows
    compiled = jl.jit(jl.hessian(f))
    first, again = compiled(x), compiled(x)
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(again, jl.hessian(f)(x))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered in reduce:RuntimeWarning")
def test_prod_slopes_of_random_extreme_magnitudes_match_exact_products():
    rng = np.random.default_rng(7)
    for _ in range(200):
        size = rng.integers(1, 7)
        x = 10.0 ** rng.choice([-300, -200, -100, 0, 100, 200, 300], size) * rng.choice([-1.0, 0.5, 3.0], size)
        x[rng.random(size) < 0.1] = 0.0
        expected = [_others(x, j) for j in range(size)]
        np.testing.assert_allclose(jl.grad(np.prod)(x), expected, rtol=1e-12, atol=0, err_msg=str(x))
    x = np.array([1e20, 1e20, 2.0, 3.0, 1e-30, 1e-30], np.float32)  # float32 weights stay float32
    g = jl.grad(np.prod)(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [_others(x.astype(float), j) for j in range(6)], rtol=1e-5)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_prod_over_several_axes_is_exact_where_a_slice_overflows():
    """Each slice's slopes are finite (an infinite one would reach the other slice's row as 0·∞):
    the first slice's product overflows, the second's underflows on the way."""
    x = np.array([[[1e100, 1e100], [1e-200, 3.0]], [[1e100, 1e100], [1e200, 0.5]]])
    J = jl.jacobian(lambda v: np.prod(v, axis=(0, 2)), x, mode="reverse")
    expected = np.zeros(J.shape)
    for i, j, k in np.ndindex(x.shape):
        expected[j, i, j, k] = _others(x[:, j, :].ravel(), 2 * i + k)
    np.testing.assert_allclose(J, expected, rtol=1e-15)
    with counting() as c:
        jl.jacobian(lambda v: np.prod(v, axis=(0, 2)), x, mode="reverse")
    assert jl.predict(lambda v: np.prod(v, axis=(0, 2)), x).cost("reverse") == c.costs()


NARROW = [np.array([100, -120, 12, 3], np.int8), np.array([200, 50, 12, 3], np.uint8),
          np.array([100.5, 50.25, 12.1, 3.3], np.float16)]
ELEMENTWISE_WITH_A_PLAIN_OPERAND = [
    ("arctan2", lambda a, x: np.arctan2(a, x) + np.arctan2(x, a)),
    ("power", lambda a, x: np.power(np.abs(a) + 1, x) + x ** a),
    ("xlogy", lambda a, x: sc.xlogy(x, np.abs(a) + 1) + sc.xlog1py(x, np.abs(a))),
    ("interp", lambda a, x: np.interp(x, [0.0, 1.0, 2.0, 3.0], a)),
]


@pytest.mark.parametrize("name, f, a", [
    *[(name, f, a) for name, f in ELEMENTWISE_WITH_A_PLAIN_OPERAND for a in NARROW],
    # NumPy's linalg refuses float16 matrices; SciPy's LU would factorize the integer ones in float32
    *[("solve", lambda a, x: np.linalg.solve(np.diag(a) + 1, x), a) for a in NARROW[:2]],
], ids=lambda v: v.dtype.name if isinstance(v, np.ndarray) else v if isinstance(v, str) else "")
def test_a_plain_operand_of_a_narrower_dtype_is_differentiated_as_numpy_widens_it(name, f, a):
    """NumPy computes with an int8 or float16 operand in the result's float64: a rule that computed on
    it alone (x², log a, fp's differences, an LU) would wrap or round where f did not."""
    x = np.array([0.7, 1.3, 2.1, 1.6])
    g = lambda v: f(a.astype(np.float64), v)  # noqa: E731 -- the same function, its operand widened
    np.testing.assert_array_equal(jl.jvp(lambda v: f(a, v), x, np.ones(4))[0], g(x))
    for mode in MODES:
        np.testing.assert_allclose(jl.jacobian(lambda v: f(a, v), x, mode=mode), jl.jacobian(g, x, mode=mode),
                                   rtol=1e-15, atol=0)


@pytest.mark.parametrize("mode", MODES)
def test_slopes_keep_their_digits_at_extreme_arguments(mode):
    """arctan2's x / r² with r² under- or overflowing (1e-200, 1e155), fmod's quotient where x / y rounds up
    to an integer (1.0 / 0.1 is 10.0, but fmod(1.0, 0.1) = 0.09999999999999995 took 9 of the float 0.1),
    expit's σ(1 − σ) where 1 − σ cancels (from x ≈ 20; all of it past 37), x² overflowing in arcsinh's
    and arccosh's slopes, and expm1's out + 1 (0 below -37)."""
    for v, expected in (([1e-200, 1e-200], [5e199, -5e199]), ([1e155, 1e155], [5e-156, -5e-156])):
        np.testing.assert_allclose(jl.jacobian(lambda p: np.arctan2(p[0], p[1]), np.array(v), mode=mode), expected,
                                   rtol=1e-15)
    for v, expected in (([1.0, 0.1], [1.0, -9.0]), ([-1.0, 0.1], [1.0, 9.0]), ([7.5, 2.0], [1.0, -3.0])):
        np.testing.assert_array_equal(jl.jacobian(lambda p: np.fmod(p[0], p[1]), np.array(v), mode=mode), expected)
    x = np.array([20.0, 37.0, 100.0, -40.0, 0.3])
    tail = np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))) ** 2  # σ'(x), even, with nothing to cancel
    np.testing.assert_allclose(np.diag(jl.jacobian(sc.expit, x, mode=mode)), tail, rtol=1e-15)
    # arcsinh's and arccosh's 1 / sqrt(x² ± 1) past x² = 1.8e308, expm1's eˣ below x = -37
    huge = np.array([1e200, 1.4e154, 1e300])
    for f in (np.arcsinh, np.arccosh):
        np.testing.assert_allclose(np.diag(jl.jacobian(f, huge, mode=mode)), 1.0 / huge, rtol=1e-15)
    x = np.array([-700.0, -38.0, -20.0])
    np.testing.assert_allclose(np.diag(jl.jacobian(np.expm1, x, mode=mode)), np.exp(x), rtol=1e-15)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("dtype, x", [(np.float32, 1e-5), (np.float64, 1e-10), (np.float64, 1 - 1e-9)])
def test_inverse_sine_and_tanh_second_derivatives_keep_their_digits(mode, dtype, x):
    """Their slopes share 1 - x² as (1 - x)(1 + x); the product's own derivative, (1 - x) - (1 + x), cancelled near
    0 (arcsin'' was 1.36e-3 off at x = 1e-5 in float32), and is -2x."""
    x = np.array([x], dtype)
    u = (1 - x.astype(np.float64)) * (1 + x.astype(np.float64))
    exact = {np.arcsin: x / u ** 1.5, np.arccos: -x / u ** 1.5, np.arctanh: 2 * x / u ** 2}
    for fn, second in exact.items():
        H = jl.hessian(lambda v: np.sum(fn(v)), x, mode=mode)
        np.testing.assert_allclose(H.ravel(), second, rtol=4 * np.finfo(dtype).eps if x < 0.5 else 1e-7,
                                   err_msg=fn.__name__)
