"""NumPy's polynomials and convolutions on traced arrays, composed from primitives.

convolve and correlate add up the shifted slices of one operand times each entry
of the other (or, for a long other, gather its sliding windows and multiply);
polyval is Horner's rule as NumPy runs it; vander is a cumprod; polyder,
polyint, polyadd, polysub and polymul are arithmetic on coefficient arrays;
polyfit is NumPy's scaled least-squares fit through linalg.lstsq.
"""
from __future__ import annotations

import operator
import warnings

import numpy as np

from . import numpy_api as api
from . import numpy_linalg as linalg
from .numpy_api import implements, is_traced
from .numpy_composites import gather
from .primitives import observe, primal
from .rules import elementwise as E
from .rules import lu as LU
from .rules import reductions as R


# --- convolutions ---------------------------------------------------------------------
_MODES = {"valid": 0, "same": 1, "full": 2}  # NumPy takes these names or their numbers


def _mode(mode):
    code = _MODES.get(mode) if isinstance(mode, str) else mode
    if isinstance(code, bool) or code not in (0, 1, 2):
        raise ValueError("Use one of 'valid', 'same', or 'full' for convolve/correlate mode")
    return int(code)


def _vectors(a, v):
    """a and v as `_vector`s, a plain one in the dtype NumPy computes in: float32 with a float32 x, not the
    float64 that would make every later value float64 only where f is traced."""
    a, v = (w if is_traced(w) else np.asarray(w) for w in (a, v))
    dtype = np.result_type(primal(a), primal(v), np.float16)  # at least a float
    return _vector(a, dtype, "a"), _vector(v, dtype, "v")


def _vector(v, dtype, which):
    v = api.atleast_1d(v if is_traced(v) else v.astype(dtype, copy=False))
    if np.ndim(v) != 1:
        raise ValueError("object too deep for desired array")
    if np.size(v) == 0:
        raise ValueError(f"{which} cannot be empty")
    return v


#: Up to this many entries in the shorter operand, a correlation is a sum of its shifted slices; beyond,
#: one gather of every window keeps the number of primitives (each a few microseconds) small.
SHIFTED_UP_TO = 32


def _sliding(a, v, mode):
    """out[k] = sum_j a[k - left + j] v[j], a read as 0 outside: NumPy's correlation, len(a) >= len(v).

    Either way one product per window entry and m - 1 sums per window: for a short v,
    a (padded with zeros where windows reach past it) shifted by each j times v[j],
    added up (slices are views, and a reverse sweep adds each one's cotangent in
    place); for a long one, the windows of a as one gather (0 flops, -1 positions
    read the 0 fill) times v, summed along each window.
    """
    n, m = np.shape(a)[0], np.shape(v)[0]
    left, length = ((0, n - m + 1), (m // 2, n), (m - 1, n + m - 1))[mode]
    if m > SHIFTED_UP_TO:
        positions = np.arange(length)[:, None] - left + np.arange(m)
        positions[(positions < 0) | (positions >= n)] = -1
        return api._reduction(R.sum, E.multiply(gather(a, positions, fill=0.0), v), 1)
    right = length + m - 1 - left - n  # zeros past a's end that the last window reads
    if left or right:
        zeros = [np.zeros(k, np.result_type(primal(a))) for k in (left, right)]
        a = api.concatenate([zeros[0], a, zeros[1]])
    total = E.multiply(a[:length], v[0])
    for j in range(1, m):
        total = E.add(total, E.multiply(a[j:j + length], v[j]))
    return total


@implements(np.correlate)
def correlate(a, v, mode="valid"):
    a, v = _vectors(a, v)
    if np.shape(a)[0] < np.shape(v)[0]:
        # NumPy slides the shorter operand along the longer and reverses the result
        return api.flip(_sliding(v, a, _mode(mode)))
    return _sliding(a, v, _mode(mode))


@implements(np.convolve)
def convolve(a, v, mode="full"):
    a, v = _vectors(a, v)
    if np.shape(v)[0] > np.shape(a)[0]:
        a, v = v, a  # as NumPy: the shorter operand is the one reversed and slid
    return _sliding(a, api.flip(v), _mode(mode))


# --- polynomials ----------------------------------------------------------------------
@implements(np.polyval)
def polyval(p, x):
    """Horner's rule as NumPy runs it: from y = 0, len(p) steps of y = y x + p[i]."""
    if isinstance(x, np.poly1d):
        raise api.unsupported("numpy.polyval with a poly1d x")
    p, x = map(api.as_array, (p, x))
    # The first step, 0 x + p[0], is kept: it is NumPy's value where x is inf or NaN.
    y = np.zeros_like(primal(x))
    for i in range(np.shape(p)[0]):
        y = E.add(E.multiply(y, x), p[i])
    return y


def _no_poly1d(name, *values):
    if any(isinstance(v, np.poly1d) for v in values):
        raise api.unsupported(f"numpy.{name} with a poly1d")


def _coefficients(v):
    return api.atleast_1d(api.as_array(v))


@implements(np.vander)
def vander(x, N=None, increasing=False):
    """Columns 1, x, x*x, ... as NumPy builds them, by a running product: a cumprod along each row,
    N - 2 flops per row."""
    x = api.as_array(x)
    if np.ndim(x) != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    n = np.shape(x)[0]
    N = n if N is None else operator.index(N)
    dtype = np.promote_types(np.result_type(primal(x)), int)
    columns = [np.ones((n, min(N, 1)), dtype=dtype)]
    if N > 1:
        columns.append(api.cumprod(api.broadcast_to(api.reshape(x, (n, 1)), (n, N - 1)), axis=1))
    powers = api.concatenate(columns, axis=1)
    return powers if increasing else api.flip(powers, axis=1)


@implements(np.polyder)
def polyder(p, m=1):
    """p[:-1] * (n, ..., 1), m times, as NumPy: len(p) - 1 flops for the first."""
    _no_poly1d("polyder", p)
    m = int(m)
    if m < 0:
        raise ValueError("Order of derivative must be positive (see polyint)")
    p = api.as_array(p)
    for _ in range(m):
        n = np.shape(p)[0] - 1
        p = E.multiply(p[:-1], np.arange(n, 0, -1))
    return p


@implements(np.polyint)
def polyint(p, m=1, k=None):
    """p / (n, ..., 1) with the integration constant appended, m times, as NumPy."""
    _no_poly1d("polyint", p)
    m = int(m)
    if m < 0:
        raise ValueError("Order of integral must be positive (see polyder)")
    k = np.zeros(m, float) if k is None else k
    k = api.atleast_1d(api.as_array(k))
    if np.shape(k)[0] == 1 and m > 1:
        k = E.multiply(k[0], np.ones(m, float))
    if np.shape(k)[0] < m:
        raise ValueError("k must be a scalar or a rank-1 array of length 1 or >m.")
    p = api.as_array(p)
    for i in range(m):
        p = api.concatenate([E.divide(p, np.arange(np.shape(p)[0], 0, -1)), api.reshape(k[i], (1,))])
    return p


def _aligned(name, ufunc, a1, a2):
    """NumPy's polyadd / polysub: the shorter operand padded with leading zeros, then one ufunc."""
    _no_poly1d(name, a1, a2)
    a1, a2 = _coefficients(a1), _coefficients(a2)
    diff = np.shape(a2)[0] - np.shape(a1)[0]
    if diff > 0:
        a1 = api.concatenate([np.zeros(diff, np.result_type(primal(a1))), a1])
    elif diff < 0:
        a2 = api.concatenate([np.zeros(-diff, np.result_type(primal(a2))), a2])
    return ufunc(a1, a2)


implements(np.polyadd)(lambda a1, a2: _aligned("polyadd", E.add, a1, a2))
implements(np.polysub)(lambda a1, a2: _aligned("polysub", E.subtract, a1, a2))


@implements(np.polymul)
def polymul(a1, a2):
    """NumPy's: the product of the polynomials as np.poly1d reads them, leading zero coefficients
    dropped (one kept of an all-zero one): which are zero is a decision on values."""
    _no_poly1d("polymul", a1, a2)
    return convolve(*(_without_leading_zeros(_coefficients(a)) for a in (a1, a2)))


def _without_leading_zeros(a):
    zeros = observe(_leading_zeros, primal(a))
    return a if not zeros else a[min(zeros, np.shape(a)[0] - 1):]


def _leading_zeros(values) -> int:
    nonzero = np.flatnonzero(values)
    return int(nonzero[0]) if nonzero.size else len(values)


# --- least-squares fits -----------------------------------------------------------------
@implements(np.polyfit)
def polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    """NumPy's algorithm step by step: the Vandermonde matrix of x, rows weighted by w, columns
    scaled to unit norm, `linalg.lstsq` (x = pinv(lhs) @ rhs, NumPy's fit up to rounding), the
    scaling undone. Each step runs on primitives, so y, w and x may all be traced; a derivative
    through x or w needs that matrix at full rank, as lstsq's derivative in its matrix does. Where
    the rank falls short NumPy's RankWarning is issued, as NumPy does (not with full=True).
    """
    order = int(deg) + 1
    x, y = _as_float(x), _as_float(y)
    n = _check_fit(x, y, deg)
    if is_traced(rcond):
        raise NotImplementedError("numpy.polyfit: a traced rcond is not supported; pass one number")
    if rcond is None:
        rcond = n * np.finfo(np.result_type(primal(x))).eps
    lhs, rhs = vander(x, order), y
    if w is not None:
        w = _fit_weights(w, y)
        lhs, rhs = E.multiply(lhs, api.reshape(w, (-1, 1))), E.multiply(rhs, _as_rows(w, rhs))
    scale = E.sqrt(api._reduction(R.sum, E.multiply(lhs, lhs), 0))  # each column's norm
    lhs = E.divide(lhs, scale)
    c, resids, rank, s = linalg.lstsq(lhs, rhs, rcond)
    c = E.divide(c, _as_rows(scale, c))
    if rank != order and not full:
        warnings.warn("Polyfit may be poorly conditioned", np.exceptions.RankWarning, stacklevel=3)
    if full:
        return c, resids, rank, s, rcond
    if cov:
        return c, _fit_covariance(lhs, scale, resids, n, order, cov, y)
    return c


def _as_float(v):
    """NumPy's `asarray(v) + 0.0`: a plain value as a float array (float32 stays float32)."""
    return v if is_traced(v) else np.asarray(v) + 0.0


def _as_rows(v, like):
    """The vector v along the rows of `like`: as it is for a vector, a column for a matrix."""
    return v if np.ndim(like) == 1 else api.reshape(v, (-1, 1))


def _check_fit(x, y, deg):
    """NumPy's checks of polyfit's data, with its errors; the number of points."""
    if deg < 0:
        raise ValueError("expected deg >= 0")
    if np.ndim(x) != 1:
        raise TypeError("expected 1D vector for x")
    if np.size(x) == 0:
        raise TypeError("expected non-empty vector for x")
    if np.ndim(y) < 1 or np.ndim(y) > 2:
        raise TypeError("expected 1D or 2D array for y")
    if np.shape(x)[0] != np.shape(y)[0]:
        raise TypeError("expected x and y to have same length")
    return np.shape(x)[0]


def _fit_weights(w, y):
    """w as NumPy reads it, with its checks and errors."""
    w = _as_float(w)
    if np.ndim(w) != 1:
        raise TypeError("expected a 1-d array for weights")
    if np.shape(w)[0] != np.shape(y)[0]:
        raise TypeError("expected w and y to have the same length")
    return w


def _fit_covariance(lhs, scale, resids, n, order, cov, y):
    """NumPy's covariance of the coefficients: inv(lhsᵀ lhs) / (scale scaleᵀ), times the residual
    variance resids / (n - order) unless cov="unscaled"; one matrix per column of a 2-D y."""
    base = E.divide(LU.inv(api.matmul(api.transpose(lhs), lhs)), api.outer(scale, scale))
    if cov == "unscaled":
        return base
    if n <= order:
        raise ValueError("the number of data points must exceed order to scale the covariance matrix")
    factor = E.divide(resids, n - order)
    return E.multiply(base, factor) if np.ndim(y) == 1 else E.multiply(api.reshape(base, (order, order, 1)), factor)
