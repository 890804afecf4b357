"""jacobian_lab.scipy: SciPy's functions that convert their input, on traced arrays.

References are SciPy's own functions: their values, and central differences
of them for every derivative (which also says which triangle a factorization
reads), in both orders and through a compiled replay at a second point.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.special as sc
import scipy.stats
from helpers import assert_close, assert_fd_close, central_differences, traced_value

import jacobian_lab as jl
from jacobian_lab.scipy import linalg, special, stats
from jacobian_lab.scipy.spatial import distance

RNG = np.random.default_rng(2718)


def _check_against_scipy(ours, theirs, x, second=None):
    """ours(x) traced gives theirs(x); its Jacobian in both orders, and jit's at `second`, central differences'."""
    assert_close(traced_value(ours, x), theirs(x), 1e-13)
    fd = central_differences(theirs, x)
    for mode in ("forward", "reverse"):
        assert_fd_close(jl.jacobian(ours, x, mode=mode), fd, mode)
    if second is not None:
        compiled = jl.jit(jl.jacobian(ours))
        compiled(x)
        assert_fd_close(compiled(second), central_differences(theirs, second), "jit")


# --- special -------------------------------------------------------------------------------------------------
A = RNG.standard_normal((3, 4))
B = RNG.uniform(0.5, 2.0, (3, 4))
SIGNED = RNG.standard_normal((3, 4))
LOGSUMEXP = {
    "all": {}, "axis 0": {"axis": 0}, "axis -1 keepdims": {"axis": -1, "keepdims": True}, "axes": {"axis": (0, 1)},
    "b": {"b": B, "axis": 1}, "b broadcast": {"b": B[:1], "axis": 0},
}


@pytest.mark.parametrize("options", LOGSUMEXP.values(), ids=LOGSUMEXP)
def test_logsumexp_is_scipys_with_its_derivative(options):
    _check_against_scipy(lambda a: special.logsumexp(a, **options), lambda a: sc.logsumexp(a, **options),
                         A, second=A + 0.3)


def test_logsumexp_with_signed_weights_returns_the_sign():
    sign = special.logsumexp(A, axis=1, b=SIGNED, return_sign=True)[1]  # plain: SciPy's own
    assert sign.tolist() == sc.logsumexp(A, axis=1, b=SIGNED, return_sign=True)[1].tolist()
    _check_against_scipy(lambda a: special.logsumexp(a, axis=1, b=SIGNED, return_sign=True)[0],
                         lambda a: sc.logsumexp(a, axis=1, b=SIGNED, return_sign=True)[0], A)
    traced_sign = jl.jacobian(lambda a: special.logsumexp(a, axis=1, b=SIGNED, return_sign=True)[1], A)
    assert not traced_sign.any()  # the sign is piecewise constant


def test_logsumexp_keeps_scipys_values_where_the_maximum_is_not_finite():
    for a in ([-np.inf, -np.inf], [np.inf, 1.0], [1000.0, 1000.0]):
        a = np.array(a)
        assert traced_value(special.logsumexp, a) == sc.logsumexp(a)
    assert_close(jl.grad(special.logsumexp)(np.array([1000.0, 1000.0])), [0.5, 0.5], 1e-15)  # no overflow


@pytest.mark.parametrize("a", [[1000.0, 0.0, 2.0], [np.inf, 0.0, 2.0]], ids=["large", "inf"])
def test_logsumexp_leaves_out_terms_of_weight_zero_as_scipy(a):
    """SciPy shifts by the largest a of a nonzero weight: shifted by a[0] the others were 0 (-inf), or NaN."""
    a, b = np.array(a), np.array([0.0, 1.0, 2.0])
    assert traced_value(lambda v: special.logsumexp(v, b=b), a) == sc.logsumexp(a, b=b) == np.log(1 + 2 * np.e ** 2)
    weights = b[1:] * np.exp(a[1:])  # the terms kept; a[0] has no derivative
    assert_close(jl.grad(lambda v: special.logsumexp(v, b=b))(a), np.r_[0.0, weights / weights.sum()], 1e-15)


def test_logsumexp_in_a_weight_of_zero_is_its_terms_exponential():
    """d/db_i log Σ b exp(a) = exp(a_i) / Σ b exp(a), at b_i = 0 too: the term left out was 1 there."""
    a, b = np.array([0.0, 1.0, 50.0]), np.array([1.0, 1.0, 0.0])
    total = np.sum(b * np.exp(a))
    for mode in ("forward", "reverse"):
        assert_close(jl.jacobian(lambda w: special.logsumexp(a, b=w), b, mode=mode) * total, np.exp(a), 1e-14)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf, SciPy's too
def test_softmax_along_an_axis_holding_inf_is_nan_as_scipys():
    x = np.array([[np.inf, 1.0], [0.5, 1.0]])
    np.testing.assert_array_equal(traced_value(lambda v: special.softmax(v, axis=1), x), sc.softmax(x, axis=1))


def test_logsumexp_costs_its_operations():
    # over L elements: the max with initial=-inf (L), the shift (L), L exps, their sum (L - 1), a log and the shift
    # back (1); the max's finite check and select compute on a value without a derivative, uncounted
    L = A.size
    assert jl.count_flops(special.logsumexp, A) == jl.Cost(3 * L, L + 1)
    assert jl.count_flops(lambda a: special.logsumexp(a, b=B), A) == jl.Cost(4 * L, L + 1)  # the weights' products


@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax_are_scipys(name, axis):
    _check_against_scipy(lambda x: getattr(special, name)(x, axis=axis),
                         lambda x: getattr(sc, name)(x, axis=axis), A, second=2.0 * A)


def test_softmax_jacobian_is_diag_s_minus_s_s_transposed():
    x = np.array([0.5, -1.0, 2.0, 1000.0])
    s = sc.softmax(x)
    assert_close(jl.jacobian(special.softmax, x), np.diag(s) - np.outer(s, s), 1e-15)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_plain_arguments_get_scipys_own_function(name):
    ours, theirs = getattr(special, name)(A, axis=1), getattr(sc, name)(A, axis=1)
    assert type(ours) is type(theirs) and np.array_equal(ours, theirs)
    assert getattr(special, name).__name__ == name and "jl." in getattr(special, name).__doc__


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_scipys_own_refusal_names_the_drop_in(name):
    with pytest.raises(jl.TracerConversionError, match=rf"Call jacobian_lab\.scipy\.special\.{name} in its place"):
        jl.jacobian(getattr(sc, name), np.array([0.5, -1.0, 2.0]))


def test_lists_are_read_as_scipy_reads_them():
    """logsumexp([log_p, log_q]) of traced values, or a list of plain parameters beside a traced x, failed."""
    x = np.array([0.3, -1.2])
    assert_close(jl.grad(lambda v: special.logsumexp([v[0], v[1], 0.5]))(x), sc.softmax([0.3, -1.2, 0.5])[:2], 1e-15)
    _check_against_scipy(lambda v: stats.laplace.logpdf(v, 0.0, [1.0, 2.0]),
                         lambda v: scipy.stats.laplace.logpdf(v, 0.0, [1.0, 2.0]), x)
    _check_against_scipy(lambda s: stats.laplace.logpdf(1.0, 0.0, [s[0], s[1]]),
                         lambda s: scipy.stats.laplace.logpdf(1.0, 0.0, [s[0], s[1]]), np.abs(x))


def test_special_hands_out_scipys_ufuncs_too():
    from jacobian_lab.scipy.special import expit, gammaln, zeta
    assert expit is sc.expit and gammaln is sc.gammaln and zeta is sc.zeta  # zeta: a function of private ufuncs
    with pytest.raises(AttributeError, match=r"has logsumexp, softmax, log_softmax and .*\(beta, .*, softplus, .*\), "
                                             "not polygamma"):
        _ = special.polygamma
    with pytest.raises(AttributeError, match=r"not _ufuncs\._zeta"):  # the table's key for zeta's ufunc is no name
        getattr(special, "_ufuncs._zeta")


# --- stats ---------------------------------------------------------------------------------------------------
X = np.array([-1.3, 0.2, 0.9, 2.4])
POSITIVE = np.array([0.3, 0.8, 1.7, 4.2])
UNIT = np.array([0.1, 0.35, 0.6, 0.92])
DENSITIES = {  # name: (method, x, parameters): each argument is differentiated in turn
    "norm.logpdf": ("norm", "logpdf", X, (0.4, 1.7)), "norm.pdf": ("norm", "pdf", X, (0.4, 1.7)),
    "norm.cdf": ("norm", "cdf", X, (0.4, 1.7)), "norm.logcdf": ("norm", "logcdf", X, (0.4, 1.7)),
    "norm.sf": ("norm", "sf", X, (0.4, 1.7)), "norm.logsf": ("norm", "logsf", X, (0.4, 1.7)),
    "norm.ppf": ("norm", "ppf", UNIT, (0.4, 1.7)), "norm.isf": ("norm", "isf", UNIT, (0.4, 1.7)),
    "t.logpdf": ("t", "logpdf", X, (3.5, 0.2, 1.3)), "t.pdf": ("t", "pdf", X, (3.5, 0.2, 1.3)),
    "logistic.logpdf": ("logistic", "logpdf", X, (0.3, 0.8)), "logistic.cdf": ("logistic", "cdf", X, (0.3, 0.8)),
    "logistic.sf": ("logistic", "sf", X, (0.3, 0.8)),
    "laplace.logpdf": ("laplace", "logpdf", X, (0.1, 1.4)),
    "cauchy.logpdf": ("cauchy", "logpdf", X, (0.1, 1.4)), "cauchy.cdf": ("cauchy", "cdf", X, (0.1, 1.4)),
    "expon.logpdf": ("expon", "logpdf", POSITIVE, (0.1, 1.4)), "expon.cdf": ("expon", "cdf", POSITIVE, (0.1, 1.4)),
    "gamma.logpdf": ("gamma", "logpdf", POSITIVE, (2.5, 0.1, 1.4)), "gamma.pdf": ("gamma", "pdf", POSITIVE, (0.7,)),
    "beta.logpdf": ("beta", "logpdf", UNIT, (2.5, 1.5)), "beta.pdf": ("beta", "pdf", UNIT, (0.6, 3.0)),
    "poisson.logpmf mu": ("poisson", "logpmf", np.array([0.0, 1.0, 3.0, 7.0]), (2.5,)),
}


@pytest.mark.parametrize("case", DENSITIES.values(), ids=DENSITIES)
def test_a_distributions_method_is_scipys_in_each_argument(case):
    name, method, x, parameters = case
    ours, theirs = getattr(getattr(stats, name), method), getattr(getattr(scipy.stats, name), method)
    arguments = [x, *(np.array(p) for p in parameters)]
    first = 1 if name == "poisson" else 0  # k is discrete
    for i in range(first, len(arguments)):
        def varied(v, i=i, f=None):
            return (f or ours)(*arguments[:i], v, *arguments[i + 1:])
        _check_against_scipy(varied, lambda v, i=i: varied(v, i, theirs), arguments[i])
    assert np.array_equal(ours(*arguments), theirs(*arguments))  # plain: SciPy's own


@pytest.mark.parametrize("name, method, outside", [
    ("expon", "logpdf", [-0.5]), ("gamma", "logpdf", [-0.5]), ("beta", "logpdf", [-0.1, 1.2]),
    ("expon", "cdf", [-0.5]), ("gamma", "pdf", [-2.0])])
def test_a_density_off_its_support_is_scipys_without_a_derivative(name, method, outside):
    parameters = {"expon": (), "gamma": (2.5,), "beta": (2.5, 1.5)}[name]
    x = np.array(outside)
    expected = getattr(getattr(scipy.stats, name), method)(x, *parameters)
    assert np.array_equal(traced_value(lambda v: getattr(getattr(stats, name), method)(v, *parameters), x), expected)
    assert not jl.jacobian(lambda v: getattr(getattr(stats, name), method)(v, *parameters), x).any()


INVALID = {  # (distribution, method, x, parameters out of their domain): SciPy's NaN, which was a number here
    "norm.cdf scale": ("norm", "cdf", 0.5, (0.0, -1.0)), "norm.ppf scale": ("norm", "ppf", 0.3, (0.0, -1.0)),
    "logistic.cdf scale": ("logistic", "cdf", 0.5, (0.0, 0.0)), "cauchy.cdf scale": ("cauchy", "cdf", 0.5, (0.0, -2.0)),
    "expon.cdf scale": ("expon", "cdf", 0.5, (0.0, -1.0)), "t.logpdf df": ("t", "logpdf", 0.5, (-1.0,)),
    "gamma.logpdf a": ("gamma", "logpdf", 1.0, (-0.5,)), "beta.logpdf b": ("beta", "logpdf", 0.3, (2.0, -0.5)),
    "poisson.pmf mu": ("poisson", "pmf", 0.0, (-1.0,)), "expon.logpdf x nan": ("expon", "logpdf", np.nan, ()),
    "gamma.logpdf x nan": ("gamma", "logpdf", np.nan, (2.0,)),
    "poisson.logpmf k nan": ("poisson", "logpmf", np.nan, (2.0,)),
}


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # SciPy's own, at a scale of 0
@pytest.mark.parametrize("case", INVALID.values(), ids=INVALID)
def test_parameters_out_of_their_domain_and_nan_x_give_nan_as_scipy(case):
    name, method, x, parameters = case
    assert np.isnan(getattr(getattr(scipy.stats, name), method)(x, *parameters))
    ours = getattr(getattr(stats, name), method)
    value = traced_value(lambda p: ours(x, *p), np.array(parameters)) if parameters else traced_value(ours, np.array(x))
    assert np.isnan(value)


@pytest.mark.parametrize("name, method, parameters", [("expon", "logpdf", ()), ("gamma", "logpdf", (2.0,)),
                                                     ("beta", "logpdf", (2.0, 3.0)), ("poisson", "logpmf", (2.0,)),
                                                     ("norm", "cdf", ())])
def test_a_nan_loc_gives_nan_as_scipy(name, method, parameters):
    """Off the support by a NaN z, the bounded distributions gave -inf."""
    assert np.isnan(getattr(getattr(scipy.stats, name), method)(0.3, *parameters, loc=np.nan))
    assert np.isnan(traced_value(lambda x: getattr(getattr(stats, name), method)(x, *parameters, loc=np.nan),
                                 np.array(1.0)))


def test_t_keeps_its_digits_at_a_large_df_and_is_the_normal_at_inf():
    """gammaln((df + 1)/2) - gammaln(df/2) cancelled: 2e-4 of the value at df = 1e12, a factor 3.3 at 1e15."""
    x = np.array([-2.0, 0.3, 1.7])
    for df in (1e5, 1e9, 1e12, 1e15, np.inf):  # SciPy's betaln(1/2, 5e4) is 1.2e-11 off; SciPy's t takes poch
        assert_close(traced_value(lambda v: stats.t.logpdf(v, df), x), scipy.stats.t.logpdf(x, df), 2e-11)
    # d/d df at a large df: the normal's correction, (z⁴ - 2z² - 1) / (4 df²)... to first order, against SciPy
    df = np.array(1e4)
    assert_fd_close(jl.grad(lambda d: stats.t.logpdf(1.5, d))(df),
                    central_differences(lambda d: scipy.stats.t.logpdf(1.5, d), df, step=1.0))


def test_cauchy_keeps_its_tails():
    x = np.array([-1e16, -1e12, -1e8, 1e8, 1e200])
    assert_close(traced_value(stats.cauchy.cdf, x[:4]) / scipy.stats.cauchy.cdf(x[:4]), np.ones(4), 1e-15)
    assert_close(traced_value(stats.cauchy.logpdf, x), scipy.stats.cauchy.logpdf(x), 1e-15)
    assert_close(np.diag(jl.jacobian(stats.cauchy.cdf, x[:3])), scipy.stats.cauchy.pdf(x[:3]), 1e-15)


MODES = ("forward", "reverse", "auto")


def test_cauchy_cdf_has_its_density_as_slope_just_below_loc():
    """The left tail's arctan(-1/z) had a slope 0 * inf there, NaN (-1/z's overflowing, arctan's underflowing)."""
    x = np.array([-1e-300, -1e-200, -1e-160, -0.5, 0.0, 1e-300])
    for mode in MODES:
        assert_close(np.diag(jl.jacobian(stats.cauchy.cdf, x, mode=mode)), scipy.stats.cauchy.pdf(x), 1e-15)
    second = np.diag(jl.hessian(lambda v: np.sum(stats.cauchy.cdf(v)))(x))  # -2z / (π (1 + z²)²)
    assert_close(second, -2 * x / (np.pi * (1 + x * x) ** 2), 1e-15)


def test_cauchy_logpdf_has_finite_derivatives_in_scale_far_in_its_tails():
    """Past |z| = 1.3e154 z² overflows: a tangent of 1 / w**2 was inf / inf, and a Hessian's unchosen branch
    log1p(z * z) gave 0 * inf. d/ds = (z² - 1) / (s (1 + z²)), d²/ds² = (1 - 2u / (1 + u) - 4u / (1 + u)²) / s²
    with u = z²: 1 and -1 far out."""
    x, s = np.array([1e200, -1e160, 1e150, 3.0, 0.5]), 2.0
    r = (s / x) ** 2  # 1 / u, which does not overflow
    slope = (1 - r) / (s * (1 + r))
    curvature = (1 - 2 / (1 + r) - 4 * r / (1 + r) ** 2) / s ** 2
    for mode in MODES:
        assert_close(jl.jacobian(lambda v: stats.cauchy.logpdf(x, 0.0, v), np.array(s), mode=mode), slope, 1e-15)
        hessian = jl.hessian(lambda v: np.sum(stats.cauchy.logpdf(x, 0.0, v)), mode=mode)(np.full(5, s))
        assert_close(np.diag(hessian), curvature, 1e-14)
    assert_close(traced_value(lambda v: stats.cauchy.logpdf(x, 0.0, v), np.array(s)),
                 scipy.stats.cauchy.logpdf(x, 0.0, s), 1e-15)


def test_cauchy_logpdf_has_finite_slopes_at_tiny_scales():
    """The near branch's z = (x - loc) / scale was computed for far points too, where the slope of the quotient in
    scale, -z / scale, overflows: its 0 * inf came out of the unchosen branch as NaN."""
    for x, s in ((1e-290, 1e-300), (-1e-100, 1e-300), (1e-140, 1e-150)):
        g = jl.grad(lambda p: stats.cauchy.logpdf(p[0], 0.0, p[1]))(np.array([x, s]))
        assert_close(g, np.array([-2 / x, 1 / s]), 1e-14)  # -2z / (s (1 + z²)) and (z² - 1) / (s (1 + z²)), z huge


def test_cauchy_logpdf_has_its_curvature_at_loc():
    """-log1p(z²) curves by -2 / scale² at z = 0 in x and loc; built from |x - loc| it was 0 there."""
    for loc, scale in ((0.0, 1.0), (3.0, 2.0)):
        def f(p):
            return stats.cauchy.logpdf(p[0], p[1], p[2])

        c = 2 / scale ** 2
        for mode in ("forward", "reverse"):
            assert_close(jl.hessian(f, mode=mode)(np.array([loc, loc, scale])),
                         np.array([[-c, c, 0.0], [c, -c, 0.0], [0.0, 0.0, 1 / scale ** 2]]), 1e-15)


def test_expon_cdf_has_its_density_as_slope_at_loc():
    """At x = loc, the slope from the right (logpdf takes loc inside the support, as JAX's cdf does): 1 / scale."""
    x, loc, scale = np.array([0.0, 0.5, -0.5]), 0.0, 2.0
    expected = scipy.stats.expon.pdf(x, loc, scale)
    for mode in MODES:
        assert_close(np.diag(jl.jacobian(lambda v: stats.expon.cdf(v, loc, scale), x, mode=mode)), expected, 1e-15)
        assert_close(jl.jacobian(lambda m: stats.expon.cdf(x, m, scale), np.array(loc), mode=mode), -expected,
                     1e-15)


def test_poisson_gives_minus_inf_at_a_count_that_is_not_one():
    k = np.array([-1.0, 2.5, 2.0])
    value = traced_value(lambda mu: stats.poisson.logpmf(k, mu), np.array(3.0))
    assert np.array_equal(value, scipy.stats.poisson.logpmf(k, 3.0))
    assert value[0] == value[1] == -np.inf


COVARIANCES = {"matrix": np.array([[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 0.9]]),
               "diagonal": np.array([2.0, 1.5, 0.9]), "scalar": np.array(1.7)}


@pytest.mark.parametrize("cov", COVARIANCES.values(), ids=COVARIANCES)
@pytest.mark.parametrize("points", [1, 5])
def test_multivariate_normal_logpdf_is_scipys_in_x_mean_and_cov(cov, points):
    x = RNG.standard_normal((points, 3))[0 if points == 1 else slice(None)]
    mean = np.array([0.2, -0.1, 0.4])
    ours, theirs = stats.multivariate_normal.logpdf, scipy.stats.multivariate_normal.logpdf
    _check_against_scipy(lambda v: ours(v, mean, cov), lambda v: theirs(v, mean, cov), x, second=x + 0.1)
    _check_against_scipy(lambda m: ours(x, m, cov), lambda m: theirs(x, m, cov), mean)
    if cov.ndim == 2:  # a symmetric perturbation: both triangles move together, as SciPy reads them
        def sym(f):
            return lambda c: f(x, mean, (c + c.T) / 2)
        _check_against_scipy(sym(ours), sym(theirs), cov)
    else:
        _check_against_scipy(lambda c: ours(x, mean, c), lambda c: theirs(x, mean, c), cov)
    assert np.allclose(stats.multivariate_normal.pdf(x, mean, cov), scipy.stats.multivariate_normal.pdf(x, mean, cov))


@pytest.mark.parametrize("x, mean, cov", [(np.array([0.3, -1.0, 2.0, 0.5]), None, 1.0),
                                          (np.array([0.3, -1.0, 2.0, 0.5]), 0.5, 2.0), (np.array(0.7), 0.5, 2.0),
                                          (np.array([[0.3, -1.0, 2.0]]), np.zeros(3), np.eye(3)),
                                          (np.array(0.7), np.zeros(3), COVARIANCES["matrix"]),
                                          (np.array(0.7), None, COVARIANCES["matrix"])],
                         ids=["1-d points", "scalar mean", "0-d", "one point as a row", "0-d x, 3-d", "0-d x, no mean"])
def test_multivariate_normal_takes_scipys_shapes(x, mean, cov):
    """With a scalar mean and cov SciPy's d is 1, so a 1-D x holds points: one 4-d point was taken."""
    expected = scipy.stats.multivariate_normal.logpdf(x, mean, cov)
    value = traced_value(lambda v: stats.multivariate_normal.logpdf(v, mean, cov), x)
    assert np.shape(value) == np.shape(expected)
    assert_close(value, expected, 1e-14)
    with pytest.raises(NotImplementedError, match="allow_singular=True"):
        jl.grad(lambda v: np.sum(stats.multivariate_normal.logpdf(v, mean, cov, allow_singular=True)))(x)


@pytest.mark.parametrize("mean, cov, message", [
    (np.zeros(4), np.eye(3), r"'cov' is of shape \(3, 3\), but 'mean' is a vector of length 4"),
    (np.zeros(3), np.ones(2), r"'cov' is of shape \(2,\), but 'mean' is a vector of length 3"),
    (np.zeros(3), np.ones((3, 3, 1)), r"'cov' must be at most two-dimensional, but cov.ndim = 3")])
def test_multivariate_normal_refuses_a_covariance_of_another_dimension_as_scipy(mean, cov, message):
    with pytest.raises(ValueError, match=message):
        jl.jacobian(lambda m: stats.multivariate_normal.logpdf(np.zeros(3), m, cov), mean)
    if cov.ndim == 2:
        with pytest.raises(ValueError, match=message):
            scipy.stats.multivariate_normal.logpdf(np.zeros(3), mean, cov)


def test_multivariate_normal_compiles_once_for_covariances_given_as_arguments():
    """The covariance of jit's f is an input of its program, recomputed: not read as numbers (np.asarray), nor its
    factor's diagonal (np.diagonal), which made a program per covariance."""
    X = RNG.standard_normal((5, 3))
    step = jl.jit(jl.grad(lambda mean, cov: -np.sum(stats.multivariate_normal.logpdf(X, mean, cov))))
    for scale in (1.0, 2.0, 3.5):
        cov = COVARIANCES["matrix"] * scale
        fd = central_differences(lambda m: -np.sum(scipy.stats.multivariate_normal.logpdf(X, m, cov)), np.zeros(3))
        assert_fd_close(step(np.zeros(3), cov), fd, "jit")
    assert step.compiles == 1


def test_a_missing_method_names_what_there_is():
    with pytest.raises(AttributeError, match=r"stats\.t has only logpdf, pdf, not cdf.*scipy\.special's ufuncs"):
        _ = stats.t.cdf


def test_scipy_stats_refusal_names_the_distributions_method_and_its_drop_in():
    with pytest.raises(jl.TracerConversionError, match=r"^scipy\.stats\.norm\.logpdf converts .* Call "
                                                       r"jacobian_lab\.scipy\.stats\.norm\.logpdf in its place"):
        jl.grad(lambda mu: np.sum(scipy.stats.norm.logpdf(X, mu)))(np.array(0.0))
    with pytest.raises(jl.TracerConversionError, match=r"^scipy\.stats\.gamma\.cdf converts .* jacobian_lab\.scipy"
                                                       r"\.stats has the densities of beta, cauchy, .*ndtr"):
        jl.grad(lambda a: np.sum(scipy.stats.gamma.cdf(X, a)))(np.array(2.0))
    with pytest.raises(jl.TracerConversionError, match=r"^scipy\.stats\.norm\(\.\.\.\)\.logpdf converts .* Call "
                                                       r"jacobian_lab\.scipy\.stats\.norm\.logpdf in its place \(the "
                                                       r"frozen parameters as arguments\)"):
        jl.grad(lambda mu: np.sum(scipy.stats.norm(0.0, 1.0).logpdf(X + mu)))(np.array(0.0))
    class norm_gen(scipy.stats.rv_continuous):  # a distribution of your own, named as SciPy names its normal's class
        def _pdf(self, v):
            return 0.5 * np.exp(-np.abs(v))

    with pytest.raises(jl.TracerConversionError) as refused:
        jl.grad(lambda mu: np.sum(norm_gen().logpdf(X + mu)))(np.array(0.0))
    assert not str(refused.value).startswith("scipy.stats.norm") and "in its place" not in str(refused.value)
    with pytest.raises(jl.TracerConversionError, match=r"^scipy\.stats\.multivariate_normal\.logpdf converts .* "
                                                       r"Call jacobian_lab\.scipy\.stats\.multivariate_normal"):
        jl.grad(lambda m: np.sum(scipy.stats.multivariate_normal.logpdf(np.ones(2), m)))(np.zeros(2))


def test_scipy_stats_newer_distributions_are_named_by_their_class_and_method():
    """SciPy's Normal(mu=..., sigma=...) runs its methods in a wrapper: it was named scipy.stats.filtered."""
    for normal in (scipy.stats.Normal(mu=0.0, sigma=1.0), scipy.stats.Normal()):  # the second a StandardNormal
        refusal = r"^scipy\.stats\.Normal\(\.\.\.\)\.logcdf converts .* Call jacobian_lab\.scipy\.stats\.norm\.logcdf"
        with pytest.raises(jl.TracerConversionError, match=refusal):
            jl.grad(lambda mu: np.sum(normal.logcdf(X + mu)))(np.array(0.0))

    class Mine(scipy.stats.Normal):  # a class of your own is not named as SciPy's
        pass

    with pytest.raises(jl.TracerConversionError) as refused:
        jl.grad(lambda mu: np.sum(Mine(mu=0.0, sigma=1.0).logcdf(X + mu)))(np.array(0.0))
    assert "Normal" not in str(refused.value).split(" converts")[0]


@pytest.mark.parametrize("call, rewrite", [
    (lambda a: scipy.linalg.eigh(np.outer(a, a) + np.eye(3))[0], r"\(np\.linalg\.eigh\)"),
    (lambda a: scipy.linalg.svd(np.outer(a, a)), r"\(np\.linalg\.svd\)"),
    (lambda a: sc.multigammaln(a[0] + 3.0, 2), r"sum over j < d of scipy\.special\.gammaln\(a - j / 2\)"),
], ids=["eigh", "svd", "multigammaln"])
def test_a_scipy_function_without_a_rule_names_the_numpy_one_or_formula_to_write(call, rewrite):
    with pytest.raises(jl.TracerConversionError, match=rewrite):
        jl.jacobian(call, np.array([0.3, -1.2, 0.5]))


@pytest.mark.parametrize("call, rewrite", [
    (lambda a: np.abs(np.fft.rfft(a)), r"C @ x and its imaginary part -S @ x"),
    (lambda a: np.linalg.eigvals(np.outer(a, a)), r"np\.linalg\.eigvalsh for a symmetric matrix"),
], ids=["fft", "eigvals"])
def test_a_numpy_function_without_a_rule_names_a_rewrite(call, rewrite):
    with pytest.raises(NotImplementedError, match=rewrite):
        jl.jacobian(call, np.array([0.3, -1.2, 0.5]))


# --- linalg --------------------------------------------------------------------------------------------------
M = np.array([[4.0, 1.0, 0.5], [0.3, 3.0, -0.7], [1.1, -0.4, 2.5]])
SPD = M @ M.T + np.eye(3)
RHS = np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])


@pytest.mark.parametrize("transposed", [False, True])
def test_solve_is_scipys_in_a_and_b(transposed):
    ours, theirs = linalg.solve, scipy.linalg.solve
    _check_against_scipy(lambda a: ours(a, RHS, transposed=transposed),
                         lambda a: theirs(a, RHS, transposed=transposed), M, second=M + 0.2 * np.eye(3))
    _check_against_scipy(lambda b: ours(M, b, transposed=transposed),
                         lambda b: theirs(M, b, transposed=transposed), RHS[:, 0])


@pytest.mark.parametrize("assume_a", ["diagonal", "tridiagonal", "upper triangular", "lower triangular", "sym",
                                      "pos", "gen", None])
@pytest.mark.parametrize("lower", [False, True])
def test_solve_reads_what_scipys_solver_for_assume_a_reads(assume_a, lower):
    """Every matrix was solved whole: with other entries beside the structure assume_a promises, the values
    differed (0.035 for "diagonal"), and derivatives in the entries SciPy does not read were not 0."""
    a = M + 5 * np.eye(3)  # positive definite in either triangle's symmetric matrix
    _check_against_scipy(lambda m: linalg.solve(m, RHS, assume_a=assume_a, lower=lower),
                         lambda m: scipy.linalg.solve(m, RHS, assume_a=assume_a, lower=lower), a)
    if assume_a not in ("diagonal", "tridiagonal"):  # SciPy's inv keeps a's off-diagonal, or has no such solver
        _check_against_scipy(lambda m: linalg.inv(m, assume_a=assume_a, lower=lower),
                             lambda m: scipy.linalg.inv(m, assume_a=assume_a, lower=lower), a)
    if assume_a == "diagonal":
        assert_close(traced_value(lambda m: linalg.inv(m, assume_a=assume_a), a), np.diag(1 / np.diag(a)), 1e-15)
    with pytest.raises(ValueError, match="band is not a recognized matrix structure"):
        jl.jacobian(lambda m: linalg.solve(m, RHS, assume_a="band"), a)


@pytest.mark.parametrize("assume_a", ["tridiagonal", "symmetric", "hermitian", "positive definite", "banded", "x"])
def test_inv_refuses_what_scipys_inv_refuses_with_its_error(assume_a):
    """solve's long names and its tridiagonal and banded structures are not inv's: SciPy's inv raises KeyError."""
    a = M + 5 * np.eye(3)
    with pytest.raises(KeyError) as theirs:
        scipy.linalg.inv(a, assume_a=assume_a)
    with pytest.raises(KeyError) as ours:
        jl.jacobian(lambda m: linalg.inv(m, assume_a=assume_a), a)
    assert ours.value.args == theirs.value.args


@pytest.mark.parametrize("assume_a", ["general", "her"])
def test_inv_takes_scipys_other_names(assume_a):
    a = M + 5 * np.eye(3)
    _check_against_scipy(lambda m: linalg.inv(m, assume_a=assume_a), lambda m: scipy.linalg.inv(m, assume_a=assume_a),
                         a)


def test_cho_solve_takes_scipys_factor_of_a_stack():
    stack = np.stack([SPD, SPD + np.eye(3)])
    factored = scipy.linalg.cho_factor(stack)  # its flag is an array, one per matrix
    for b in (np.stack([RHS, 2 * RHS]), RHS[:, 0]):  # a 1-D b is the right-hand side of each matrix
        _check_against_scipy(lambda v: linalg.cho_solve(factored, v), lambda v: scipy.linalg.cho_solve(factored, v),
                             b)
    for name in ("solve", "solve_triangular"):
        _check_against_scipy(lambda a: getattr(linalg, name)(a, RHS[:, 0]),
                             lambda a: getattr(scipy.linalg, name)(a, RHS[:, 0]), stack)


@pytest.mark.parametrize("trans", [0, "T"])
@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("unit_diagonal", [False, True])
def test_solve_triangular_reads_one_triangle_as_scipy(trans, lower, unit_diagonal):
    options = {"trans": trans, "lower": lower, "unit_diagonal": unit_diagonal}
    _check_against_scipy(lambda a: linalg.solve_triangular(a, RHS, **options),
                         lambda a: scipy.linalg.solve_triangular(a, RHS, **options), M)
    _check_against_scipy(lambda b: linalg.solve_triangular(M, b, **options),
                         lambda b: scipy.linalg.solve_triangular(M, b, **options), RHS)


@pytest.mark.parametrize("lower", [False, True])
def test_cholesky_and_cho_solve_read_one_triangle_as_scipy(lower):
    _check_against_scipy(lambda a: linalg.cholesky(a, lower=lower), lambda a: scipy.linalg.cholesky(a, lower=lower),
                         SPD, second=SPD + np.eye(3))
    _check_against_scipy(lambda a: linalg.cho_solve(linalg.cho_factor(a, lower=lower), RHS),
                         lambda a: scipy.linalg.cho_solve(scipy.linalg.cho_factor(a, lower=lower), RHS), SPD)
    factored = scipy.linalg.cho_factor(SPD, lower=lower)  # SciPy's own factor: its other triangle holds data
    _check_against_scipy(lambda b: linalg.cho_solve(factored, b), lambda b: scipy.linalg.cho_solve(factored, b), RHS)


@pytest.mark.parametrize("name", ["inv", "det"])
def test_inv_and_det_are_scipys(name):
    _check_against_scipy(getattr(linalg, name), getattr(scipy.linalg, name), M)


# (scale, rtol): each squaring doubles the rounding error relative to the result, SciPy's as ours
EXPM = {"small": (1e-3, 1e-14), "unit": (0.5, 1e-14), "scaled": (3.0, 1e-12), "squared often": (40.0, 1e-10)}


@pytest.mark.parametrize("scale, rtol", EXPM.values(), ids=EXPM)
def test_expm_and_its_frechet_derivative_are_scipys(scale, rtol):
    rng = np.random.default_rng(31)
    a = rng.standard_normal((4, 4)) * scale
    assert_close(traced_value(linalg.expm, a), scipy.linalg.expm(a), rtol)
    for _ in range(2):  # the derivative along e is the corner of expm([[a, e], [0, a]]) (Van Loan)
        e = rng.standard_normal((4, 4))
        frechet = scipy.linalg.expm(np.block([[a, e], [np.zeros((4, 4)), a]]))[:4, 4:]
        assert_close(jl.jvp(linalg.expm, a, e)[1], frechet, rtol)
        assert_close(np.einsum("ijkl,kl->ij", jl.jacrev(linalg.expm)(a), e), frechet, rtol)


def test_expm_compiled_at_one_norm_is_recomputed_at_another():
    a = RNG.standard_normal((3, 3))
    compiled = jl.jit(jl.jacobian(linalg.expm))
    for b in (0.1 * a, 30 * a, 0.1 * a + 0.01):  # more squarings, then fewer: the comparisons are checked
        assert_fd_close(compiled(b), central_differences(scipy.linalg.expm, b), "jit")


def test_expm_of_a_stack_scales_each_matrix_by_its_own_norm():
    """The largest matrix's squarings applied to all cost the small matrices digits (5e-12 of norm 0.5 beside 1e5)."""
    rng = np.random.default_rng(5)
    stack = rng.standard_normal((3, 3, 3)) * np.array([0.1, 3.0, 60.0])[:, None, None]
    for i, expected in enumerate(scipy.linalg.expm(stack)):  # each against SciPy alone
        assert_close(traced_value(linalg.expm, stack)[i] / np.max(np.abs(expected)),
                     expected / np.max(np.abs(expected)), (1e-14, 1e-12, 1e-9)[i])
    nan = np.full((2, 2), np.nan)
    np.testing.assert_array_equal(traced_value(linalg.expm, nan), scipy.linalg.expm(nan))  # SciPy's NaN
    beside = np.stack([stack[0], np.full((3, 3), np.nan)])  # which leaves the other matrices of a stack theirs
    assert_close(traced_value(linalg.expm, beside), scipy.linalg.expm(beside), 1e-15)


def test_linalg_refuses_what_scipy_refuses():
    bad = M.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="array must not contain infs or NaNs"):
        jl.jacobian(lambda a: linalg.solve(a, RHS), bad)
    assert np.isnan(jl.jacobian(lambda a: linalg.solve(a, RHS, check_finite=False), bad)).all()
    with pytest.raises(ValueError, match="trans must be 0, 1, 2, 'N', 'T' or 'C', got 3"):
        jl.jacobian(lambda a: linalg.solve_triangular(a, RHS, trans=3), M)


@pytest.mark.parametrize("call", [lambda a: linalg.solve(a, np.ones(3)), lambda a: linalg.solve(a, np.ones((3, 2))),
                                  lambda a: linalg.solve_triangular(a, np.ones(5)),
                                  lambda a: linalg.cho_solve((a, False), np.ones(3))],
                         ids=["solve", "solve of a matrix", "solve_triangular", "cho_solve"])
def test_a_right_hand_side_of_other_rows_is_refused_naming_both_shapes(call):
    with pytest.raises(ValueError, match=r"a is 4x4 and b has shape \([35],( 2)?\); b needs 4 rows"):
        jl.jacobian(call, np.eye(4) * 2.0)


def test_what_scipy_takes_as_one_by_one_matrices_is_taken():
    b = np.array([1.0, 2.0, 3.0])
    assert_close(jl.jacobian(lambda a: linalg.solve(a, b), np.array([[2.0]])), -b[:, None, None] / 4, 1e-15)
    for a in (np.array(1.0), np.array([1.0])):
        assert_close(traced_value(linalg.expm, a), scipy.linalg.expm(a), 1e-15)


def test_expm_refuses_what_is_not_a_stack_of_square_matrices_and_takes_empty_ones():
    with pytest.raises(np.linalg.LinAlgError, match=r"must be square, got shape \(3, 4\)"):
        jl.jacobian(linalg.expm, np.ones((3, 4)))
    with pytest.raises(np.linalg.LinAlgError, match="at least two-dimensional"):
        jl.jacobian(linalg.expm, np.ones(3))
    for empty in (np.zeros((0, 0)), np.zeros((2, 0, 0))):
        assert traced_value(linalg.expm, empty).shape == scipy.linalg.expm(empty).shape
        assert jl.jacobian(linalg.expm, empty).shape == empty.shape * 2


def test_scipy_linalg_refusal_names_the_drop_in():
    with pytest.raises(jl.TracerConversionError, match=re.escape("Call jacobian_lab.scipy.linalg.solve in its place")):
        jl.jacobian(lambda b: scipy.linalg.solve(M, b), RHS[:, 0])


def test_the_modules_load_with_their_first_use():
    assert jl.scipy.stats.norm is stats.norm and jl.scipy.linalg.solve is linalg.solve
    with pytest.raises(AttributeError, match="has no attribute 'optimize'"):
        _ = jl.scipy.optimize


def test_second_derivatives_go_through_them():
    x = np.array([0.5, -1.0, 2.0])
    s = sc.softmax(x)
    for H in (jl.hessian(special.logsumexp)(x), jl.jacfwd(jl.grad(special.logsumexp))(x)):
        assert_close(H, np.diag(s) - np.outer(s, s), 1e-15)
    cov = COVARIANCES["matrix"]
    H = jl.hessian(lambda m: stats.multivariate_normal.logpdf(x, m, cov))(np.zeros(3))
    assert_close(H, -np.linalg.inv(cov), 1e-14)  # the log density is quadratic in the mean


# --- spatial.distance ----------------------------------------------------------------------------------------
POINTS, OTHERS = RNG.standard_normal((4, 3)), RNG.standard_normal((2, 3))
WEIGHTS = np.array([1.0, 2.0, 0.5])
METRICS = {"euclidean": {}, "euclidean w": {"w": WEIGHTS}, "sqeuclidean": {}, "sqeuclidean w": {"w": WEIGHTS},
           "cityblock": {}, "minkowski": {"p": 3.0}, "minkowski w": {"p": 1.5, "w": WEIGHTS}, "chebyshev": {},
           "cosine": {}, "correlation": {}, "seuclidean": {}, "seuclidean V": {"V": WEIGHTS}, "mahalanobis": {},
           "mahalanobis VI": {"VI": np.linalg.inv(np.cov(RNG.standard_normal((10, 3)).T))}}


@pytest.mark.parametrize("metric", METRICS, ids=METRICS)
def test_cdist_and_pdist_are_scipys_in_every_point(metric):
    name, options = metric.split()[0], METRICS[metric]
    _check_against_scipy(lambda a: distance.cdist(a, OTHERS, name, **options),
                         lambda a: scipy.spatial.distance.cdist(a, OTHERS, name, **options), POINTS,
                         second=POINTS + 0.3)
    _check_against_scipy(lambda a: distance.pdist(a, name, **options),
                         lambda a: scipy.spatial.distance.pdist(a, name, **options), POINTS)


def test_a_metrics_parameters_are_differentiated_too():
    _check_against_scipy(lambda w: distance.cdist(POINTS, OTHERS, "minkowski", p=3.0, w=w),
                         lambda w: scipy.spatial.distance.cdist(POINTS, OTHERS, "minkowski", p=3.0, w=w), WEIGHTS)


@pytest.mark.parametrize("metric", ["euclidean", "euclidean w", "minkowski", "minkowski w", "seuclidean V",
                                    "mahalanobis VI"])
def test_coincident_points_have_a_finite_gradient(metric):
    """cdist(a, a) holds zero distances, where a norm's slope is 0 (np.linalg.norm's convention); the weighted
    ones and the roots of sums were NaN there."""
    name, options = metric.split()[0], METRICS[metric]
    gradient = jl.grad(lambda a: np.sum(distance.cdist(a, a, name, **options)))(POINTS)

    def off_diagonal(a):
        return np.sum(scipy.spatial.distance.pdist(a, name, **options)) * 2

    assert_fd_close(gradient, central_differences(off_diagonal, POINTS))


@pytest.mark.parametrize("w", [None, WEIGHTS * np.array([1.0, 0.0, 1.0])], ids=["", "a zero weight"])
@pytest.mark.parametrize("name, options", [("minkowski", {"p": np.inf}), ("chebyshev", {}), ("cosine", {}),
                                           ("correlation", {})])
def test_minkowski_at_p_inf_is_chebyshev_and_every_metric_takes_weights(name, options, w):
    """p = inf gave 1 for every pair (a sum of |d|^inf to the power 0); chebyshev, cosine and correlation
    refused w=, which SciPy takes."""
    weights = {} if w is None else {"w": w}
    _check_against_scipy(lambda a: distance.cdist(a, OTHERS, name, **options, **weights),
                         lambda a: scipy.spatial.distance.cdist(a, OTHERS, name, **options, **weights), POINTS)


def test_points_may_be_lists_as_scipy_takes_them():
    _check_against_scipy(lambda b: distance.cdist(POINTS.tolist(), b), lambda b: scipy.spatial.distance.cdist(
        POINTS, b), OTHERS)


def test_squareform_goes_both_ways_as_scipys():
    condensed = scipy.spatial.distance.pdist(POINTS)
    _check_against_scipy(distance.squareform, scipy.spatial.distance.squareform, condensed)
    square = scipy.spatial.distance.squareform(condensed)
    assert np.array_equal(traced_value(distance.squareform, square), condensed)
    with pytest.raises(ValueError, match="Distance matrix 'X' diagonal must be zero"):  # SciPy's messages
        jl.jacobian(distance.squareform, square + np.eye(4))
    with pytest.raises(ValueError, match="The matrix argument must be square"):
        jl.jacobian(distance.squareform, square[:3])
    with pytest.raises(ValueError, match="A 3-dimensional array is not permitted"):
        jl.jacobian(distance.squareform, square[None])


def test_distance_refusals_name_what_to_do():
    with pytest.raises(NotImplementedError, match="metric 'hamming' of traced arrays.*euclidean, sqeuclidean"):
        jl.jacobian(lambda a: distance.pdist(a, "hamming"), POINTS)
    with pytest.raises(ValueError, match="XB must be a 2-dimensional array"):
        jl.jacobian(lambda a: distance.cdist(a, OTHERS[0]), POINTS)
    with pytest.raises(ValueError, match="XA and XB must have the same number of columns"):
        jl.jacobian(lambda a: distance.cdist(a, OTHERS[:, :2]), POINTS)
    with pytest.raises(ValueError, match=re.escape("A 2-dimensional array must be passed. (Shape was (3,))")):
        jl.jacobian(distance.pdist, POINTS[0])
    with pytest.raises(TypeError, match="drop out= and assign it"):
        jl.jacobian(lambda a: distance.pdist(a, out=np.empty(6)), POINTS)
    with pytest.raises(jl.TracerConversionError, match=r"Call jacobian_lab\.scipy\.spatial\.distance\.cdist in"):
        jl.jacobian(lambda a: scipy.spatial.distance.cdist(a, OTHERS), POINTS)


# --- float32 inputs ------------------------------------------------------------------------------------------
X32 = np.array([0.3, 0.5, 0.9], np.float32)
M32 = (M + 3 * np.eye(3)).astype(np.float32)
P32 = POINTS.astype(np.float32)
HALF, TWO = np.float32(0.5), np.float32(2.0)
MODULES = {"special": (special, sc), "stats": (stats, scipy.stats), "linalg": (linalg, scipy.linalg),
           "distance": (distance, scipy.spatial.distance)}
# each call once, of jacobian_lab's module or of SciPy's
FLOAT32 = {
    "logsumexp": ("special", lambda s, x: s.logsumexp(x), X32),
    "norm.cdf": ("stats", lambda s, x: s.norm.cdf(x), X32),
    "norm.logpdf loc scale": ("stats", lambda s, x: s.norm.logpdf(x, HALF, TWO), X32),
    "norm.ppf": ("stats", lambda s, q: s.norm.ppf(q), X32),
    "logistic.cdf": ("stats", lambda s, x: s.logistic.cdf(x), X32),
    "expon.cdf": ("stats", lambda s, x: s.expon.cdf(x, HALF), X32),
    "gamma.pdf": ("stats", lambda s, a: s.gamma.pdf(HALF, a + 1, scale=TWO), X32),
    "poisson.logpmf": ("stats", lambda s, mu: s.poisson.logpmf(np.arange(3, dtype=np.float32), mu), X32),
    "multivariate_normal.logpdf": ("stats", lambda s, c: s.multivariate_normal.logpdf(X32, cov=c), M32 @ M32.T),
    "multivariate_normal.logpdf mean tuple": ("stats", lambda s, x: s.multivariate_normal.logpdf(x, (HALF, 0, 1)), X32),
    "solve": ("linalg", lambda s, a: s.solve(a, X32), M32),
    "det": ("linalg", lambda s, a: s.det(a), M32),
    "det stack": ("linalg", lambda s, a: s.det(np.stack([a, 2 * a])), M32),
    "expm": ("linalg", lambda s, a: s.expm(a), M32 / 4),
    "cdist": ("distance", lambda s, p: s.cdist(p, p[:2]), P32),
    "cdist seuclidean": ("distance", lambda s, v: s.cdist(P32, P32, "seuclidean", V=v), X32),
    "pdist": ("distance", lambda s, p: s.pdist(p, "cityblock"), P32),
    "squareform": ("distance", lambda s, d: s.squareform(d), X32),
}


@pytest.mark.parametrize("case", FLOAT32.values(), ids=FLOAT32)
def test_float32_inputs_give_scipys_dtype_with_derivatives_in_it(case):
    """SciPy computes distributions, distances and determinants of float32 input in float64 (det, cdist and
    norm.cdf were float32 here), and keeps float32 elsewhere (expm was float64). The derivative follows the
    value's dtype, converted as x.astype converts it; the Jacobian is float32, as every float32 x's."""
    module, call, x = case
    ours, theirs = MODULES[module]
    expected = np.asarray(call(theirs, x))
    value, tangent = jl.engines.get("forward").jvp(lambda v: call(ours, v), x, np.ones((1,) + x.shape, x.dtype))
    assert (value.dtype, tangent.dtype) == (expected.dtype, expected.dtype)
    assert_close(value, expected, 1e-6)
    assert jl.jacobian(lambda v: call(ours, v), x, mode="reverse").dtype == np.float32


M16 = (M + 3 * np.eye(3)).astype(np.float16)
FLOAT16 = {  # NumPy's linalg refuses float16; SciPy's hands it to LAPACK as float32
    "solve": lambda s, a: s.solve(a, np.ones(3, np.float16)),
    "solve_triangular": lambda s, a: s.solve_triangular(a, np.ones(3, np.float16), lower=True),
    "inv": lambda s, a: s.inv(a),
    "cholesky": lambda s, a: s.cholesky(a @ a.T),
    "cho_solve": lambda s, a: s.cho_solve(s.cho_factor(a @ a.T), np.ones(3, np.float16)),
}


@pytest.mark.parametrize("call", FLOAT16.values(), ids=FLOAT16)
def test_float16_matrices_are_solved_in_float32_as_scipy_solves_them(call):
    expected = np.asarray(call(scipy.linalg, M16))
    value, tangent = jl.engines.get("forward").jvp(lambda a: call(linalg, a), M16, np.ones((1, 3, 3), np.float16))
    assert (value.dtype, tangent.dtype) == (np.float32, np.float32) == (expected.dtype,) * 2
    assert_close(value, expected, 1e-5)
