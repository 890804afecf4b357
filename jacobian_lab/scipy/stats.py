"""scipy.stats distributions on traced arrays (`jacobian_lab.scipy`): their densities and a few cdfs.

Each distribution is an object with SciPy's method names and arguments
(``norm.logpdf(x, loc=0, scale=1)``, ``gamma.logpdf(x, a, loc=0, scale=1)``,
``poisson.logpmf(k, mu, loc=0)``); any argument may be traced, parameters
included, and they broadcast together as in SciPy. Outside a distribution's
support a density is 0 (its log -inf), as in SciPy; parameters outside their
domain (a scale ≤ 0) give NaN, with NumPy's warning where SciPy gives none.
What SciPy's frozen distributions and the other methods do is not here: write
them with scipy.special's ufuncs (ndtr, gammaln, xlogy, ...), which take traced
arrays as they are.

>>> import numpy as np, jacobian_lab as jl
>>> from jacobian_lab.scipy.stats import norm
>>> jl.grad(lambda mu: np.sum(norm.logpdf(np.array([1.0, 3.0]), mu)))(np.array(0.0))  # Σ (x - mu)
array(4.)
"""
from __future__ import annotations

import math

import numpy as np
import scipy.stats
from scipy import special as sc

from ._dispatch import or_scipy

__all__ = ["beta", "cauchy", "expon", "gamma", "laplace", "logistic", "multivariate_normal", "norm", "poisson", "t"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _standardized(x, loc, scale):
    return (x - loc) / scale


def _inside(condition, value, outside=-np.inf):
    """`value` where `condition` holds, `outside` elsewhere (a log density off its support)."""
    return np.where(condition, value, outside)


def _methods(name: str, namespace: dict):
    """An object whose methods are the NumPy versions in `namespace`, each SciPy's own for plain arguments,
    with pdf and pmf the exponentials of the logpdf and logpmf given."""
    distribution = getattr(scipy.stats, name)
    for log, plain in (("logpdf", "pdf"), ("logpmf", "pmf")):
        if log in namespace:
            namespace[plain] = lambda *args, _log=namespace[log], **kwargs: np.exp(_log(*args, **kwargs))
    methods = {}
    for method, version in namespace.items():
        version.__name__ = version.__qualname__ = method
        version.__doc__ = f"``scipy.stats.{name}.{method}``, the same arguments, on traced arrays too."
        methods[method] = staticmethod(or_scipy(getattr(distribution, method))(version))
    listed = ", ".join(sorted(methods))

    def missing(self, method):
        raise AttributeError(f"jacobian_lab.scipy.stats.{name} has only {listed}, not {method}; write it with "
                             "scipy.special's ufuncs (ndtr, gammaln, xlogy, ...), which take traced arrays")

    return type(name, (), {**methods, "__doc__": f"``scipy.stats.{name}`` on traced arrays: {listed}.",
                           "__getattr__": missing, "__repr__": lambda self: f"jacobian_lab.scipy.stats.{name}"})()


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
})


def _t_logpdf(x, df, loc=0.0, scale=1.0):
    z = _standardized(x, loc, scale)
    half = 0.5 * (df + 1.0)
    return (sc.gammaln(half) - sc.gammaln(0.5 * df) - 0.5 * np.log(df * np.pi) - np.log(scale)
            - half * np.log1p(z * z / df))


t = _methods("t", {"logpdf": _t_logpdf})


def _logistic_logpdf(x, loc=0.0, scale=1.0):
    z = np.abs(_standardized(x, loc, scale))  # symmetric: exp(-|z|) cannot overflow
    return -z - 2.0 * np.log1p(np.exp(-z)) - np.log(scale)


logistic = _methods("logistic", {
    "logpdf": _logistic_logpdf,
    "cdf": lambda x, loc=0.0, scale=1.0: sc.expit(_standardized(x, loc, scale)),
    "sf": lambda x, loc=0.0, scale=1.0: sc.expit(-_standardized(x, loc, scale)),
})
laplace = _methods("laplace", {
    "logpdf": lambda x, loc=0.0, scale=1.0: -np.abs(_standardized(x, loc, scale)) - np.log(2.0 * scale),
})
cauchy = _methods("cauchy", {
    "logpdf": lambda x, loc=0.0, scale=1.0: (-np.log1p(_standardized(x, loc, scale) ** 2)
                                                   - np.log(np.pi * scale)),
    "cdf": lambda x, loc=0.0, scale=1.0: 0.5 + np.arctan(_standardized(x, loc, scale)) / np.pi,
})


def _expon_logpdf(x, loc=0.0, scale=1.0):
    z = _standardized(x, loc, scale)
    return _inside(z >= 0, -z - np.log(scale))


def _expon_cdf(x, loc=0.0, scale=1.0):
    z = _standardized(x, loc, scale)
    return _inside(z > 0, -np.expm1(-np.maximum(z, 0.0)), 0.0)  # exp(-z) of a z < 0 would overflow


expon = _methods("expon", {"logpdf": _expon_logpdf, "cdf": _expon_cdf})


def _gamma_logpdf(x, a, loc=0.0, scale=1.0):
    z = _standardized(x, loc, scale)
    inside = z >= 0
    z = np.where(inside, z, 1.0)  # off the support the formula's log would warn: its value is not used
    return _inside(inside, sc.xlogy(a - 1.0, z) - z - sc.gammaln(a) - np.log(scale))


gamma = _methods("gamma", {"logpdf": _gamma_logpdf})


def _beta_logpdf(x, a, b, loc=0.0, scale=1.0):
    z = _standardized(x, loc, scale)
    inside = (z >= 0) & (z <= 1)
    z = np.where(inside, z, 0.5)
    return _inside(inside, sc.xlogy(a - 1.0, z) + sc.xlog1py(b - 1.0, -z) - sc.betaln(a, b) - np.log(scale))


beta = _methods("beta", {"logpdf": _beta_logpdf})


def _poisson_logpmf(k, mu, loc=0):
    k = k - loc
    inside = (k >= 0) & (k == np.floor(k))
    k = np.where(inside, k, 0.0)
    return _inside(inside, sc.xlogy(k, mu) - mu - sc.gammaln(k + 1.0))


poisson = _methods("poisson", {"logpmf": _poisson_logpmf})


def _mvn_logpdf(x, mean=None, cov=1.0):
    cov = np.asarray(cov) if not hasattr(cov, "_trace") else cov
    d = cov.shape[0] if np.ndim(cov) else (np.shape(mean)[-1] if np.ndim(mean) else np.shape(x)[-1])
    if d == 1 and np.ndim(x) and np.shape(x)[-1] != 1:  # SciPy's one-dimensional x: a point per entry
        x = x[..., None]
    diff = x if mean is None else x - mean
    if np.ndim(cov) < 2:  # a variance, or a vector of them: the diagonal of the covariance
        cov = cov * np.eye(d)
    lower = np.linalg.cholesky(cov)
    z = np.linalg.solve(lower, np.reshape(diff, (-1, d)).T)  # (d, points)
    log_det = 2.0 * np.sum(np.log(np.diagonal(lower)))
    logpdf = -0.5 * (np.sum(z * z, axis=0) + log_det) - d * _HALF_LOG_2PI
    return np.reshape(logpdf, np.shape(diff)[:-1])


multivariate_normal = _methods("multivariate_normal", {"logpdf": _mvn_logpdf})
