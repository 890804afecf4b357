"""scipy.spatial.distance's cdist, pdist and squareform on traced arrays (`jacobian_lab.scipy`).

The distances are NumPy reductions over the coordinate axis of every pair
(cdist broadcasts the two sets against each other, pdist gathers the pairs
i < j), so points and the metric's parameters (w, V, VI) may all be traced.
A norm's slope at a zero difference is 0 (`np.linalg.norm`'s convention), so
coincident points give a finite gradient, weighted or not (minkowski's for
p ≥ 1: below, |d|^p has no slope at 0, and the gradient is NaN); the cosine
and correlation distances are not defined at a zero vector, as in SciPy.
"""
from __future__ import annotations

import numpy as np
import scipy.spatial.distance

from ...rules.elementwise import as_float_dtype
from .._dispatch import as_array, or_scipy

__all__ = ["cdist", "pdist", "squareform"]


def _root(total, p):
    """total ** (1 / p), with a slope of 0 where total is 0 (coincident points; as np.linalg.norm's), where
    the root's own is infinite and times the zero slope of |d|^p gave NaN."""
    positive = total > 0
    return np.where(positive, np.where(positive, total, 1.0) ** (1.0 / p), 0.0)


def _minkowski(u, v, p=2.0, w=None):
    if not p > 0:
        raise ValueError("p must be greater than 0")  # SciPy's message
    d = np.abs(u - v)
    if np.isinf(p):  # SciPy's: the largest |u - v| (of a nonzero weight)
        return np.max(d if w is None else np.where(w != 0, d, 0.0), axis=-1)
    terms = d ** p
    return _root(np.sum(terms if w is None else w * terms, axis=-1), p)


def _euclidean(u, v, w=None):
    d = u - v
    return np.linalg.norm(d, axis=-1) if w is None else _root(np.sum(w * d * d, axis=-1), 2.0)


def _sqeuclidean(u, v, w=None):
    d = u - v
    return np.sum(d * d if w is None else w * d * d, axis=-1)


def _cityblock(u, v, w=None):
    d = np.abs(u - v)
    return np.sum(d if w is None else w * d, axis=-1)


def _chebyshev(u, v, w=None):
    return _minkowski(u, v, np.inf, w)


def _cosine(u, v, w=None):
    # SciPy's correlation(u, v, w, centered=False), clipped to [0, 2] as SciPy clips it
    uw, vw = (u, v) if w is None else (u * w, v * w)
    uv, uu, vv = np.sum(u * vw, axis=-1), np.sum(u * uw, axis=-1), np.sum(v * vw, axis=-1)
    return np.clip(1.0 - uv / np.sqrt(uu * vv), 0.0, 2.0)


def _correlation(u, v, w=None):
    def centered(z):
        mean = np.mean(z, axis=-1, keepdims=True) if w is None else np.sum(w * z, axis=-1, keepdims=True) / np.sum(w)
        return z - mean

    return _cosine(centered(u), centered(v), w)


def _seuclidean(u, v, V):
    return _euclidean(u, v, 1.0 / V)


def _mahalanobis(u, v, VI):
    d = u - v
    return _root(np.sum((d @ np.swapaxes(VI, -1, -2)) * d, axis=-1), 2.0)


_METRICS = {"euclidean": _euclidean, "sqeuclidean": _sqeuclidean, "cityblock": _cityblock, "minkowski": _minkowski,
            "chebyshev": _chebyshev, "cosine": _cosine, "correlation": _correlation, "seuclidean": _seuclidean,
            "mahalanobis": _mahalanobis}


def _defaults(metric, kwargs: dict, *point_sets) -> dict:
    """`kwargs` with SciPy's defaults from the points themselves: seuclidean's variances and mahalanobis's
    inverse covariance of all the rows of `point_sets` (ddof 1), joined only where a default is needed."""
    if metric == "seuclidean" and kwargs.get("V") is None:
        return {**kwargs, "V": np.var(np.concatenate(point_sets), axis=0, ddof=1)}
    if metric == "mahalanobis" and kwargs.get("VI") is None:
        return {**kwargs, "VI": np.linalg.inv(np.cov(np.concatenate(point_sets).T))}
    return kwargs


def _metric(metric, out):
    if out is not None:
        raise TypeError("cdist and pdist of traced arrays return their result: drop out= and assign it")
    if metric not in _METRICS:
        raise NotImplementedError(f"metric {metric!r} of traced arrays: jacobian_lab.scipy.spatial.distance has "
                                  f"{', '.join(_METRICS)}; write another one with NumPy on the pairs "
                                  "XA[:, None, :] and XB[None, :, :]")
    return _METRICS[metric]


def _float64(X):
    """X in float64, as SciPy converts points and weights before measuring (a float32 X gives float64
    distances); a list of plain numbers as an array, a traced X through ``astype``, whose derivative follows
    it into float64."""
    return as_float_dtype(as_array(X), np.float64)


def _parameters(kwargs: dict) -> dict:
    """The metric's arguments, its weights and matrices (w, V, VI) in float64 as SciPy reads them."""
    return {name: _float64(value) if name in ("w", "V", "VI") and value is not None else value
            for name, value in kwargs.items()}


@or_scipy(scipy.spatial.distance.cdist)
def cdist(XA, XB, metric="euclidean", *, out=None, **kwargs):
    """The (mA, mB) distances between the rows of XA and those of XB, as ``scipy.spatial.distance.cdist``.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.spatial.distance import cdist
    >>> jl.jacobian(lambda a: cdist(a, np.zeros((1, 2))), np.array([[3.0, 4.0]]))[0, 0]  # the unit vector
    array([[0.6, 0.8]])
    """
    XA, XB = _float64(XA), _float64(XB)
    for name, points in (("XA", XA), ("XB", XB)):
        if np.ndim(points) != 2:
            raise ValueError(f"{name} must be a 2-dimensional array.")  # SciPy's messages
    if np.shape(XA)[1] != np.shape(XB)[1]:
        raise ValueError("XA and XB must have the same number of columns (i.e. feature dimension.)")
    return _metric(metric, out)(XA[:, None, :], XB[None, :, :], **_defaults(metric, _parameters(kwargs), XA, XB))


@or_scipy(scipy.spatial.distance.pdist)
def pdist(X, metric="euclidean", *, out=None, **kwargs):
    """The distances of the pairs i < j of X's rows, condensed, as ``scipy.spatial.distance.pdist``.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.spatial.distance import pdist
    >>> jl.grad(lambda p: np.sum(pdist(p, "sqeuclidean")))(np.array([[0.0], [1.0]]))  # 2 (p_i - p_j)
    array([[-2.],
           [ 2.]])
    """
    X = _float64(X)
    if np.ndim(X) != 2:
        raise ValueError(f"A 2-dimensional array must be passed. (Shape was {np.shape(X)}).")
    first, second = np.triu_indices(np.shape(X)[0], 1)
    return _metric(metric, out)(X[first], X[second], **_defaults(metric, _parameters(kwargs), X))


@or_scipy(scipy.spatial.distance.squareform)
def squareform(X, force="no", checks=True):
    """The square symmetric matrix of condensed distances, or the condensed form of one, as SciPy's.

    `checks` tests a matrix for a zero diagonal and symmetry on its values, as SciPy does.
    """
    if force not in ("no", "tomatrix", "tovector"):
        raise ValueError(f"force must be 'no', 'tomatrix' or 'tovector', got {force!r}")
    if force == "tomatrix" and np.ndim(X) != 1:  # SciPy's messages, here and below
        raise ValueError("Forcing 'tomatrix' but input X is not a distance vector.")
    if force == "tovector" and np.ndim(X) != 2:
        raise ValueError("Forcing 'tovector' but input X is not a distance matrix.")
    if np.ndim(X) == 1:
        n = int(np.ceil(np.sqrt(np.shape(X)[0] * 2)))
        if n * (n - 1) != np.shape(X)[0] * 2:
            raise ValueError("Incompatible vector size. It must be a binomial coefficient n choose 2 for some "
                             "integer n >= 2.")
        rows, columns = np.triu_indices(max(n, 1), 1)
        upper = np.zeros_like(X, shape=(max(n, 1), max(n, 1)))
        upper[rows, columns] = X
        return upper + upper.T
    if np.ndim(X) != 2:
        raise ValueError(f"The first argument must be one or two dimensional array. A {np.ndim(X)}-dimensional "
                         "array is not permitted")
    if np.shape(X)[0] != np.shape(X)[1]:
        raise ValueError("The matrix argument must be square.")
    if checks and not np.all(X == np.swapaxes(X, -1, -2)):
        raise ValueError("Distance matrix 'X' must be symmetric.")
    if checks and not np.all(np.diagonal(X) == 0):
        raise ValueError("Distance matrix 'X' diagonal must be zero.")
    return X[np.triu_indices(np.shape(X)[0], 1)]
