"""scipy.stats distributions on traced arrays (`jacobian_lab.scipy`): their densities and a few cdfs.

Each distribution is an object with SciPy's method names and arguments
(``norm.logpdf(x, loc=0, scale=1)``, ``gamma.logpdf(x, a, loc=0, scale=1)``,
``poisson.logpmf(k, mu, loc=0)``); any argument may be traced, parameters
included, and they broadcast together as in SciPy. As in SciPy, outside a
distribution's support a density is 0 (its log -inf), and parameters outside
their domain (a scale ≤ 0, a shape ≤ 0) or a NaN x give NaN.
What SciPy's frozen distributions and the other methods do is not here: write
them with scipy.special's ufuncs (ndtr, gammaln, xlogy, ...), which take traced
arrays as they are.

>>> import numpy as np, jacobian_lab as jl
>>> from jacobian_lab.scipy.stats import norm
>>> jl.grad(lambda mu: np.sum(norm.logpdf(np.array([1.0, 3.0]), mu)))(np.array(0.0))  # Σ (x - mu)
array(4.)
"""
from __future__ import annotations

import functools
import inspect
import math

import numpy as np
import scipy.stats
from scipy import special as sc

from ._dispatch import in_precision, or_scipy

__all__ = ["beta", "cauchy", "expon", "gamma", "laplace", "logistic", "multivariate_normal", "norm", "poisson", "t"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _standardized(x, loc, scale):
    return (x - loc) / scale


def _inside(condition, value, outside=-np.inf):
    """`value` where `condition` holds, `outside` elsewhere (a log density off its support)."""
    return np.where(condition, value, outside)


def _methods(name: str, namespace: dict, valid):
    """An object whose methods are the NumPy versions in `namespace`, each SciPy's own for plain arguments,
    with pdf and pmf the exponentials of the logpdf and logpmf given. `valid` takes a method's arguments and
    says where the parameters are in their domain: elsewhere, and where x is NaN, a method gives NaN (`_checked`)."""
    distribution = getattr(scipy.stats, name)
    for log, plain in (("logpdf", "pdf"), ("logpmf", "pmf")):
        if log in namespace:
            namespace[plain] = _exponential(namespace[log])
    methods = {}
    for method, version in namespace.items():
        checked = _checked(_in_float64(version), valid)
        checked.__name__ = checked.__qualname__ = method
        checked.__doc__ = f"``scipy.stats.{name}.{method}``, the same arguments, on traced arrays too."
        methods[method] = staticmethod(or_scipy(getattr(distribution, method))(checked))
    listed = ", ".join(sorted(methods))

    def missing(self, method):
        raise AttributeError(f"jacobian_lab.scipy.stats.{name} has only {listed}, not {method}; write it with "
                             "scipy.special's ufuncs (ndtr, gammaln, xlogy, ...), which take traced arrays")

    return type(name, (), {**methods, "__doc__": f"``scipy.stats.{name}`` on traced arrays: {listed}.",
                           "__getattr__": missing, "__repr__": lambda self: f"jacobian_lab.scipy.stats.{name}"})()


def _exponential(log):
    """exp of `log`, a log density, with its signature (`_checked` reads its loc)."""
    @functools.wraps(log)
    def density(*args, **kwargs):
        return np.exp(log(*args, **kwargs))

    return density


def _in_float64(version):
    """`version` on its arguments in the precision SciPy computes a distribution in, float64 or wider
    (`in_precision`), so a float32 x gives float64 values as SciPy's do; a tuple of plain numbers (a mean) as
    an array. None and flags (allow_singular) as they are."""
    def promoted_value(value):
        return value if value is None or isinstance(value, (bool, np.bool_)) else in_precision(value, np.float64)

    @functools.wraps(version)
    def promoted(*args, **kwargs):
        return version(*map(promoted_value, args), **{name: promoted_value(v) for name, v in kwargs.items()})

    return promoted


def _checked(version, valid):
    """`version`, NaN where `valid` says the parameters are out of their domain or x is NaN, as SciPy's
    methods are; the formula's own warnings there (log of a negative scale) are not raised, as SciPy's are not.
    Without `valid` (a multivariate x), `version` itself."""
    if valid is None:
        return lambda *args, **kwargs: version(*args, **kwargs)

    signature = inspect.signature(version)

    def method(*args, **kwargs):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            value = version(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        x, loc = next(iter(bound.arguments.values())), bound.arguments["loc"]  # a NaN loc makes z NaN, as x
        return np.where(valid(*args, **kwargs) & ~np.isnan(x) & ~np.isnan(loc), value, np.nan)

    return method


def _scale_valid(x, loc=0.0, scale=1.0):
    return scale > 0


def _norm_logpdf(x, loc=0.0, scale=1.0):
    z = _standardized(x, loc, scale)
    return -0.5 * z * z - np.log(scale) - _HALF_LOG_2PI


norm = _methods("norm", {
    "logpdf": _norm_logpdf,
    "cdf": lambda x, loc=0.0, scale=1.0: sc.ndtr(_standardized(x, loc, scale)),
    "logcdf": lambda x, loc=0.0, scale=1.0: sc.log_ndtr(_standardized(x, loc, scale)),
    "sf": lambda x, loc=0.0, scale=1.0: sc.ndtr(-_standardized(x, loc, scale)),
    "logsf": lambda x, loc=0.0, scale=1.0: sc.log_ndtr(-_standardized(x, loc, scale)),
    "ppf": lambda q, loc=0.0, scale=1.0: loc + scale * sc.ndtri(q),
    "isf": lambda q, loc=0.0, scale=1.0: loc - scale * sc.ndtri(q),
}, _scale_valid)


def _t_logpdf(x, df, loc=0.0, scale=1.0):
    # 1 / (√df B(1/2, df/2)) (1 + z²/df)^(-(df + 1)/2): betaln keeps the digits that gammaln((df + 1)/2) −
    # gammaln(df/2) cancels at a large df (2e-4 of the value at df = 1e12; betaln's own rounding is 1e-11 at
    # df = 1e5, where SciPy's poch is exact); at df = inf, the normal's, as SciPy
    z = _standardized(x, loc, scale)
    finite = np.isfinite(df)
    df = np.where(finite, df, 1.0)
    t = -0.5 * np.log(df) - sc.betaln(0.5, 0.5 * df) - 0.5 * (df + 1.0) * np.log1p(z * z / df) - np.log(scale)
    return np.where(finite, t, _norm_logpdf(x, loc, scale))


t = _methods("t", {"logpdf": _t_logpdf}, lambda x, df, loc=0.0, scale=1.0: (df > 0) & (scale > 0))


def _logistic_logpdf(x, loc=0.0, scale=1.0):
    z = np.abs(_standardized(x, loc, scale))  # symmetric: exp(-|z|) cannot overflow
    return -z - 2.0 * np.log1p(np.exp(-z)) - np.log(scale)


logistic = _methods("logistic", {
    "logpdf": _logistic_logpdf,
    "cdf": lambda x, loc=0.0, scale=1.0: sc.expit(_standardized(x, loc, scale)),
    "sf": lambda x, loc=0.0, scale=1.0: sc.expit(-_standardized(x, loc, scale)),
}, _scale_valid)
laplace = _methods("laplace", {
    "logpdf": lambda x, loc=0.0, scale=1.0: -np.abs(_standardized(x, loc, scale)) - np.log(2.0 * scale),
}, _scale_valid)


def _cauchy_logpdf(x, loc=0.0, scale=1.0):
    # log1p(z²) as 2 log|x - loc| - 2 log(scale) + log1p((scale / |x - loc|)²) past |z| = 1: z² overflows past
    # 1.3e154, and a Hessian's products of z's derivatives (z / scale ...) sooner. Each branch computes on values
    # it is finite at, as the other's derivatives there would be 0 * inf.
    difference = x - loc
    distance = np.abs(difference)
    far = distance > scale
    # z signed, not |z|: abs's slope at 0 is 0, which took z²'s second derivative there (2 / scale²) with it
    d, z = np.where(far, distance, 2.0 * scale), np.where(far, 0.0, difference) / scale
    tail = 2.0 * (np.log(d) - np.log(scale)) + np.log1p((scale / d) ** 2)
    return -np.where(far, tail, np.log1p(z * z)) - np.log(np.pi * scale)


def _cauchy_cdf(x, loc=0.0, scale=1.0):
    # 1/2 + arctan(z)/π cancels in the left tail (all of it at z = -1e16): there arctan(-1/z)/π, its equal. Not
    # nearer 0, where -1/z's slope overflows as arctan's underflows, 0 * inf.
    z = _standardized(x, loc, scale)
    left = z < -1.0
    w = np.where(left, z, -2.0)
    return np.where(left, np.arctan(-1.0 / w) / np.pi, 0.5 + np.arctan(z) / np.pi)


cauchy = _methods("cauchy", {"logpdf": _cauchy_logpdf, "cdf": _cauchy_cdf}, _scale_valid)


def _expon_logpdf(x, loc=0.0, scale=1.0):
    z = _standardized(x, loc, scale)
    return _inside(z >= 0, -z - np.log(scale))


def _expon_cdf(x, loc=0.0, scale=1.0):
    z = _standardized(x, loc, scale)
    inside = z >= 0  # at loc, the slope from the right (the density there), as logpdf takes loc inside
    return _inside(inside, -np.expm1(-np.where(inside, z, 0.0)), 0.0)  # exp(-z) of a z < 0 would overflow


expon = _methods("expon", {"logpdf": _expon_logpdf, "cdf": _expon_cdf}, _scale_valid)


def _gamma_logpdf(x, a, loc=0.0, scale=1.0):
    z = _standardized(x, loc, scale)
    inside = z >= 0
    z = np.where(inside, z, 1.0)  # off the support the formula's log would warn: its value is not used
    return _inside(inside, sc.xlogy(a - 1.0, z) - z - sc.gammaln(a) - np.log(scale))


gamma = _methods("gamma", {"logpdf": _gamma_logpdf}, lambda x, a, loc=0.0, scale=1.0: (a > 0) & (scale > 0))


def _beta_logpdf(x, a, b, loc=0.0, scale=1.0):
    z = _standardized(x, loc, scale)
    inside = (z >= 0) & (z <= 1)
    z = np.where(inside, z, 0.5)
    return _inside(inside, sc.xlogy(a - 1.0, z) + sc.xlog1py(b - 1.0, -z) - sc.betaln(a, b) - np.log(scale))


beta = _methods("beta", {"logpdf": _beta_logpdf},
                lambda x, a, b, loc=0.0, scale=1.0: (a > 0) & (b > 0) & (scale > 0))


def _poisson_logpmf(k, mu, loc=0):
    k = k - loc
    inside = (k >= 0) & (k == np.floor(k))
    k = np.where(inside, k, 0.0)
    return _inside(inside, sc.xlogy(k, mu) - mu - sc.gammaln(k + 1.0))


poisson = _methods("poisson", {"logpmf": _poisson_logpmf}, lambda k, mu, loc=0: mu >= 0)


def _mvn_logpdf(x, mean=None, cov=1.0, allow_singular=False):
    if allow_singular:
        raise NotImplementedError("multivariate_normal with allow_singular=True on traced arrays: a singular "
                                  "covariance has no Cholesky factor here; add a small multiple of the identity")
    # SciPy's dimension: the mean's size, else the covariance's, else 1; x's last axis holds a point unless d = 1
    d = math.prod(np.shape(mean)) if mean is not None else (np.shape(cov)[0] if np.ndim(cov) >= 2 else 1)
    if np.ndim(cov) > 2:
        raise ValueError(f"Array 'cov' must be at most two-dimensional, but cov.ndim = {np.ndim(cov)}")
    if np.shape(cov) != (d, d) if np.ndim(cov) == 2 else np.size(cov) not in (1, d):  # a matrix, variances, one
        raise ValueError(f"Dimension mismatch: array 'cov' is of shape {np.shape(cov)}, but 'mean' is a vector of "
                         f"length {d}.")
    if np.ndim(x) == 0 or (np.ndim(x) == 1 and d == 1):
        x = np.reshape(x, (-1, 1))  # a point per entry; a 0-d x of a d > 1 is every coordinate of one point
    diff = x if mean is None else x - np.reshape(mean, (d,))
    diff = np.broadcast_to(diff, np.shape(diff)[:-1] + (d,))
    if np.ndim(cov) < 2:  # a variance, or a vector of them: the diagonal of the covariance
        cov = np.reshape(cov, (-1,)) * np.eye(d)
    lower = np.linalg.cholesky(cov)
    z = np.linalg.solve(lower, np.reshape(diff, (-1, d)).T)  # (d, points)
    log_det = 2.0 * np.sum(np.log(np.diagonal(lower)))
    logpdf = -0.5 * (np.sum(z * z, axis=0) + log_det) - d * _HALF_LOG_2PI
    return np.squeeze(np.reshape(logpdf, np.shape(diff)[:-1]))  # SciPy's: one point gives a scalar


multivariate_normal = _methods("multivariate_normal", {"logpdf": _mvn_logpdf}, None)
