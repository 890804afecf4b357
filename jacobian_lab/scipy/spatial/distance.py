"""scipy.spatial.distance's cdist, pdist and squareform on traced arrays (`jacobian_lab.scipy`).

The distances are NumPy reductions over the coordinate axis of every pair
(cdist broadcasts the two sets against each other, pdist gathers the pairs
i < j), so points and the metric's parameters (w, V, VI) may all be traced.
A norm's slope at a zero difference is 0 (`np.linalg.norm`'s convention), so
coincident points give a finite gradient.
"""
from __future__ import annotations

import numpy as np
import scipy.spatial.distance

from .._dispatch import or_scipy

__all__ = ["cdist", "pdist", "squareform"]


def _minkowski(u, v, p=2.0, w=None):
    terms = np.abs(u - v) ** p
    return np.sum(terms if w is None else w * terms, axis=-1) ** (1.0 / p)


def _euclidean(u, v, w=None):
    d = u - v
    return np.linalg.norm(d, axis=-1) if w is None else np.sqrt(np.sum(w * d * d, axis=-1))


def _sqeuclidean(u, v, w=None):
    d = u - v
    return np.sum(d * d if w is None else w * d * d, axis=-1)


def _cityblock(u, v, w=None):
    d = np.abs(u - v)
    return np.sum(d if w is None else w * d, axis=-1)


def _cosine(u, v):
    return 1.0 - np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))


def _correlation(u, v):
    return _cosine(u - np.mean(u, axis=-1, keepdims=True), v - np.mean(v, axis=-1, keepdims=True))


def _seuclidean(u, v, V):
    return _euclidean(u, v, 1.0 / V)


def _mahalanobis(u, v, VI):
    d = u - v
    return np.sqrt(np.sum((d @ np.swapaxes(VI, -1, -2)) * d, axis=-1))


_METRICS = {"euclidean": _euclidean, "sqeuclidean": _sqeuclidean, "cityblock": _cityblock, "minkowski": _minkowski,
            "chebyshev": lambda u, v: np.max(np.abs(u - v), axis=-1), "cosine": _cosine,
            "correlation": _correlation, "seuclidean": _seuclidean, "mahalanobis": _mahalanobis}


def _defaults(metric, kwargs: dict, points) -> dict:
    """`kwargs` with SciPy's defaults from the points themselves: seuclidean's variances and mahalanobis's
    inverse covariance of all the rows (ddof 1)."""
    if metric == "seuclidean" and kwargs.get("V") is None:
        return {**kwargs, "V": np.var(points, axis=0, ddof=1)}
    if metric == "mahalanobis" and kwargs.get("VI") is None:
        return {**kwargs, "VI": np.linalg.inv(np.cov(points.T))}
    return kwargs


def _metric(metric, out):
    if out is not None:
        raise TypeError("cdist and pdist of traced arrays return their result: drop out= and assign it")
    if metric not in _METRICS:
        raise NotImplementedError(f"metric {metric!r} of traced arrays: jacobian_lab.scipy.spatial.distance has "
                                  f"{', '.join(_METRICS)}; write another one with NumPy on the pairs "
                                  "XA[:, None, :] and XB[None, :, :]")
    return _METRICS[metric]


@or_scipy(scipy.spatial.distance.cdist)
def cdist(XA, XB, metric="euclidean", *, out=None, **kwargs):
    """The (mA, mB) distances between the rows of XA and those of XB, as ``scipy.spatial.distance.cdist``.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.spatial.distance import cdist
    >>> jl.jacobian(lambda a: cdist(a, np.zeros((1, 2))), np.array([[3.0, 4.0]]))[0, 0]  # the unit vector
    array([[0.6, 0.8]])
    """
    for name, points in (("XA", XA), ("XB", XB)):
        if np.ndim(points) != 2:
            raise ValueError(f"{name} must be a 2-dimensional array.")  # SciPy's messages
    if np.shape(XA)[1] != np.shape(XB)[1]:
        raise ValueError("XA and XB must have the same number of columns (i.e. feature dimension.)")
    kwargs = _defaults(metric, kwargs, np.concatenate([XA, XB]))
    return _metric(metric, out)(XA[:, None, :], XB[None, :, :], **kwargs)


@or_scipy(scipy.spatial.distance.pdist)
def pdist(X, metric="euclidean", *, out=None, **kwargs):
    """The distances of the pairs i < j of X's rows, condensed, as ``scipy.spatial.distance.pdist``.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.spatial.distance import pdist
    >>> jl.grad(lambda p: np.sum(pdist(p, "sqeuclidean")))(np.array([[0.0], [1.0]]))  # 2 (p_i - p_j)
    array([[-2.],
           [ 2.]])
    """
    if np.ndim(X) != 2:
        raise ValueError(f"A 2-dimensional array must be passed. (Shape was {np.shape(X)}).")
    first, second = np.triu_indices(np.shape(X)[0], 1)
    return _metric(metric, out)(X[first], X[second], **_defaults(metric, kwargs, X))


@or_scipy(scipy.spatial.distance.squareform)
def squareform(X, force="no", checks=True):
    """The square symmetric matrix of condensed distances, or the condensed form of one, as SciPy's.

    `checks` tests a matrix for a zero diagonal and symmetry on its values, as SciPy does.
    """
    if force not in ("no", "tomatrix", "tovector"):
        raise ValueError(f"force must be 'no', 'tomatrix' or 'tovector', got {force!r}")
    if force == "tomatrix" or (force == "no" and np.ndim(X) == 1):
        n = int(round((1 + np.sqrt(1 + 8 * np.shape(X)[0])) / 2))
        if n * (n - 1) // 2 != np.shape(X)[0]:
            raise ValueError("Incompatible vector size. It must be a binomial coefficient n choose 2 for some "
                             "integer n >= 2.")  # SciPy's message
        rows, columns = np.triu_indices(n, 1)
        upper = np.zeros_like(X, shape=(n, n))
        upper[rows, columns] = X
        return upper + upper.T
    if checks and not (np.all(np.diagonal(X) == 0) and np.all(X == np.swapaxes(X, -1, -2))):
        raise ValueError("Distance matrix 'X' must be symmetric and have a zero diagonal.")
    return X[np.triu_indices(np.shape(X)[0], 1)]
