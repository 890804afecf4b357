"""NumPy's statistics on traced arrays, composed from primitives: no rules of their own.

Moments (var, std, average, cov) are arithmetic and reductions; the nan-functions select with a mask
computed from values, so a replaced entry gets derivative 0. Quantiles and the median are in
`numpy_quantiles`, bincount and the histograms in `numpy_histograms`.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import numpy_api as api
from .numpy_api import implements, is_traced, normalize_axis, one_axis
from .numpy_composites import as_float, diagonal, norm_root, with_length
from .primitives import observe, primal
from .rules import elementwise as E
from .rules import reductions as R


# --- moments --------------------------------------------------------------------------
def _ddof(ddof, correction):
    """ddof, or NumPy 2's name for it, correction (None or NumPy's no-value default when not given)."""
    if not api._given(correction):
        return ddof
    if ddof != 0:
        raise ValueError("ddof and correction can't be provided simultaneously.")
    return correction


@implements(np.var)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    """NumPy's steps: the mean (or the `mean=` given, NumPy 2), the squared deviations, their sum over
    the count less ddof; with `where=`, over the entries the mask keeps (NumPy's value up to rounding)."""
    api.no_axis_of_0d(a, axis)
    ddof = _ddof(ddof, correction)
    a = api.in_dtype("var", a, dtype)
    axes = normalize_axis(axis, np.ndim(a))
    mask = api._plain_mask("var", where, np.shape(a)) if api._masks(where) else None
    centre = api.mean(a, axis=axis, keepdims=True, where=mask) if mean is None else mean
    deviations = E.subtract(a, centre)
    if mask is not None:
        # left out before squaring: a slice the mask empties has a NaN mean, and a reverse sweep would carry
        # its zero cotangent times the square's slope, 0 * NaN, back into x (the masked select stops it here)
        deviations = E.where(mask, deviations, 0.0)
        count = np.maximum(np.sum(mask, axis=axes, keepdims=bool(keepdims), dtype=np.result_type(a)) - ddof, 0)
    else:
        count = max(int(np.prod([np.shape(a)[i] for i in axes], dtype=np.int64)) - ddof, 0)
    total = api._reduction(R.sum, E.square(deviations), axis, keepdims)
    counted = np.asarray(count) > 0  # a constant: of the mask and shapes alone
    if counted.all():
        return E.divide(total, count)
    # where ddof leaves a slice no count, NumPy's total / 0 (NaN, or inf) has no derivative: divided held
    # constant, so that a reverse sweep does not divide the slice's zero cotangent by 0 into the kept elements
    return E.where(counted, E.divide(total, np.where(counted, count, 1)), E.divide(E.stop_gradient(total), count))


@implements(np.std)
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    return norm_root(var(a, axis, dtype, None, ddof, keepdims, where=where, mean=mean, correction=correction), 2)


@implements(np.average)
def average(a, axis=None, weights=None, returned=False, keepdims=False):
    api.no_axis_of_0d(a, axis)
    if weights is None:
        result, weight_sum = api.mean(a, axis=axis, keepdims=keepdims), None
    else:
        weights = api.as_array(weights)
        if np.ndim(weights) == 1 and np.ndim(a) > 1:
            weights = api.reshape(weights, with_length((1,) * np.ndim(a), one_axis(axis, np.ndim(a)), -1))
        full = np.broadcast_shapes(np.shape(a), np.shape(weights))
        weight_sum = api._reduction(R.sum, api.broadcast_to(weights, full), axis, keepdims)
        if observe(_any_zero, primal(weight_sum)):  # NumPy's refusal, not inf and NaN
            raise ZeroDivisionError("Weights sum to zero, can't be normalized")
        result = E.divide(api._reduction(R.sum, E.multiply(a, weights), axis, keepdims), weight_sum)
    return (result, weight_sum) if returned else result


def _any_zero(values) -> bool:
    return bool(np.any(values == 0))


def keepdims_of(keepdims):
    # Some NumPy signatures default keepdims to np._NoValue, which is truthy.
    return keepdims is not np._NoValue and bool(keepdims)


@implements(np.ptp)
def ptp(a, axis=None, out=None, keepdims=np._NoValue):
    keep = keepdims_of(keepdims)
    return E.subtract(api._reduction(R.max, a, axis, keep), api._reduction(R.min, a, axis, keep))


# --- NaNs: masks computed from values select, so replaced entries get derivative 0 ----
def _zero_nans(a):
    return E.where(E.isnan(a), 0.0, a)


@implements(np.nansum)
def nansum(a, axis=None, dtype=None, out=None, keepdims=np._NoValue, initial=np._NoValue, where=np._NoValue):
    return api._reduce(R.sum, "nansum", _zero_nans(a), axis, dtype, keepdims_of(keepdims), initial, where)


@implements(np.nanmean)
def nanmean(a, axis=None, dtype=None, out=None, keepdims=np._NoValue, *, where=np._NoValue):
    keep, a = keepdims_of(keepdims), api._accumulated_in("nanmean", a, dtype)
    left_out = _left_out("nanmean", a, where)
    total = api._reduction(R.sum, E.where(left_out, 0.0, a), axis, keep)
    return E.divide(total, _numbers_counted(a, left_out, axis, keep)[0])


def _left_out(name, a, where):
    """What a nan-function skips: a's NaNs, and the entries a plain where= mask leaves out."""
    nans = E.isnan(a)
    return nans | ~api._plain_mask(name, where, np.shape(a)) if api._masks(where) else nans


def _numbers_counted(a, nans, axis, keepdims):
    """How many entries along `axis` are not NaN, and the 1 counted, both in a's dtype: NumPy
    divides its float32 sums in place, so float32 data stays float32."""
    one = np.ones((), np.result_type(primal(a)))
    return api._reduction(R.sum, E.where(nans, np.zeros_like(one), one), axis, keepdims), one


def _all_nan(values, axis, keepdims):
    return np.all(np.isnan(values), axis=axis, keepdims=keepdims)


def _nan_extreme(name, prim, fill):
    """nanmax / nanmin: NaNs become -inf / +inf, which never win; an all-NaN slice is NaN, as in NumPy."""
    def fn(a, axis=None, out=None, keepdims=np._NoValue, initial=np._NoValue, where=np._NoValue):
        keep, numbers = keepdims_of(keepdims), E.where(E.isnan(a), fill, a)
        if api._given(initial) or api._masks(where):  # NumPy's fmax.reduce: with an initial, no slice is empty
            return api._reduce(prim, name, numbers, axis, None, keep, initial, where)
        result = api._reduction(prim, numbers, axis, keep)
        all_nan = observe(_all_nan, primal(a), normalize_axis(axis, np.ndim(a)), keep)  # decides the value
        if not np.any(all_nan):
            return result
        warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=2)
        return E.where(all_nan, np.nan, result)

    fn.__name__ = name
    return fn


implements(np.nanmax)(_nan_extreme("nanmax", R.max, -np.inf))


implements(np.nanmin)(_nan_extreme("nanmin", R.min, np.inf))


@implements(np.nan_to_num)
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    if not copy:  # NumPy would write into x, which a traced array cannot take
        api._reject("nan_to_num", copy, "copy=False")
    dtype = np.result_type(primal(x))
    big = np.finfo(dtype).max
    fill = lambda v: v if is_traced(v) else np.asarray(v, dtype)  # noqa: E731  (keeps x's dtype)
    infinite = E.where(E.greater(x, 0), fill(big if posinf is None else posinf),
                       fill(-big if neginf is None else neginf))
    return E.where(E.isnan(x), fill(nan), E.where(E.isinf(x), infinite, x))


@implements(np.nancumsum)
def nancumsum(a, axis=None, dtype=None, out=None):
    return api.cumsum(_zero_nans(a), axis, dtype)


@implements(np.nancumprod)
def nancumprod(a, axis=None, dtype=None, out=None):
    return api.cumprod(E.where(E.isnan(a), 1.0, a), axis, dtype)


@implements(np.nanprod)
def nanprod(a, axis=None, dtype=None, out=None, keepdims=np._NoValue, initial=np._NoValue, where=np._NoValue):
    return api._reduce(R.prod, "nanprod", E.where(E.isnan(a), 1.0, a), axis, dtype, keepdims_of(keepdims), initial,
                       where)


def _nonpositive(dof):
    return dof <= 0


@implements(np.nanvar)
def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=np._NoValue, *, where=np._NoValue,
           mean=np._NoValue, correction=np._NoValue):
    """NumPy's steps: the mean of the numbers (or the `mean=` given), their deviations (0 at NaNs)
    squared and summed, divided by count - ddof; NaN, with NumPy's warning, where that is not
    positive. `where=` leaves entries out as NaNs are left out."""
    ddof, keep, a = _ddof(ddof, correction), keepdims_of(keepdims), api.in_dtype("nanvar", a, dtype)
    nans = _left_out("nanvar", a, where)
    values = E.where(nans, 0.0, a)
    count, one = _numbers_counted(a, nans, axis, True)
    dof = count if ddof == 0 else E.subtract(count, ddof)
    bad = observe(_nonpositive, primal(dof))  # decides the value
    if np.any(bad):
        warnings.warn("Degrees of freedom <= 0 for slice.", RuntimeWarning, stacklevel=2)
        # Those slices become NaN; dividing them by 1 instead of 0 keeps 0/0 out of the values
        # and the derivative (the NaN selected has derivative 0, but 0 * 1/0 would be NaN).
        count, dof = E.where(bad, one, count), E.where(bad, one, dof)
    avg = E.divide(api._reduction(R.sum, values, axis, True), count) if not api._given(mean) else mean
    centred = E.where(nans, 0.0, E.subtract(values, avg))
    var = api._reduction(R.sum, E.square(centred), axis, keep)
    var = E.divide(var, api.reshape(dof, np.shape(var)))
    return E.where(np.reshape(bad, np.shape(var)), np.nan, var) if np.any(bad) else var


@implements(np.nanstd)
def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=np._NoValue, *, where=np._NoValue,
           mean=np._NoValue, correction=np._NoValue):
    return norm_root(nanvar(a, axis, dtype, None, ddof, keepdims, where=where, mean=mean, correction=correction), 2)


# --- covariance -----------------------------------------------------------------------
@implements(np.cov)
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *, dtype=None):
    api._reject("cov", dtype, "dtype")
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    m = as_float(m)
    if np.ndim(m) > 2:
        raise ValueError("m has more than 2 dimensions")
    X = api.atleast_2d(m)
    if not rowvar and np.ndim(m) != 1:
        X = api.transpose(X)
    if np.shape(X)[0] == 0:
        return np.array([]).reshape(0, 0)
    if y is not None:
        y = as_float(y)
        if np.ndim(y) > 2:
            raise ValueError("y has more than 2 dimensions")
        Y = api.atleast_2d(y)
        if not rowvar and np.shape(Y)[0] != 1:  # NumPy's test for y differs from m's: kept
            Y = api.transpose(Y)
        X = api.concatenate([X, Y], axis=0)
    ddof = (0 if bias else 1) if ddof is None else ddof
    w = _observation_weights(np.shape(X)[1], fweights, aweights)
    if w is None:
        fact = np.shape(X)[1] - ddof
        centred = E.subtract(X, api.mean(X, axis=1, keepdims=True))
    else:  # NumPy's: weighted means, and the degrees of freedom the weights leave
        avg, w_sum = average(X, axis=1, weights=w, returned=True)
        w_sum = api.getitem(w_sum, 0)
        if ddof == 0:
            fact = w_sum
        elif aweights is None:
            fact = E.subtract(w_sum, ddof)
        else:
            fact = E.subtract(w_sum, E.divide(E.multiply(ddof, R.sum(E.multiply(w, aweights), axis=(0,),
                                                                                keepdims=False)), w_sum))
        centred = E.subtract(X, api.reshape(avg, (-1, 1)))
    if (observe(_not_positive, primal(fact)) if is_traced(fact) else fact <= 0):  # traced weights: checked
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=2)
        fact = 0.0
    c = api.matmul(centred, api.transpose(centred if w is None else E.multiply(centred, w)))
    return api.squeeze(E.multiply(c, E.divide(1.0, fact) if is_traced(fact) else np.true_divide(1, fact)))


def _not_positive(value) -> bool:
    return bool(value <= 0)


def _any_negative(values) -> bool:
    return bool(np.any(values < 0))


def _observation_weights(n, fweights, aweights):
    """cov's weights per observation, fweights * aweights, checked as NumPy checks them; None for none.
    Frequency weights are counts, plain; analytic weights may be traced."""
    w = None
    if fweights is not None:
        fweights = np.asarray(primal(fweights), dtype=float)
        if not np.all(fweights == np.around(fweights)):
            raise TypeError("fweights must be integer")
        if fweights.ndim > 1:
            raise RuntimeError("cannot handle multidimensional fweights")
        if fweights.shape[0] != n:
            raise RuntimeError("incompatible numbers of samples and fweights")
        if np.any(fweights < 0):
            raise ValueError("fweights cannot be negative")
        w = fweights
    if aweights is not None:
        if not is_traced(aweights):
            aweights = np.asarray(aweights, dtype=float)
        if np.ndim(aweights) > 1:
            raise RuntimeError("cannot handle multidimensional aweights")
        if np.shape(aweights)[0] != n:
            raise RuntimeError("incompatible numbers of samples and aweights")
        if observe(_any_negative, primal(aweights)):
            raise ValueError("aweights cannot be negative")
        w = aweights if w is None else E.multiply(w, aweights)
    return w


@implements(np.corrcoef)
def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    api._reject("corrcoef", dtype, "dtype")
    c = cov(x, y, rowvar)
    if np.ndim(c) == 0:  # one variable: 1, or NaN where the variance is 0 or not finite
        return E.divide(c, c)
    stddev = E.sqrt(diagonal(c))
    c = E.divide(E.divide(c, api.reshape(stddev, (-1, 1))), api.reshape(stddev, (1, -1)))
    # NumPy clips rounding past ±1; the slope stays the ratio's (the clip's would be ½ at ±1, 0 past it)
    held = E.stop_gradient(c)
    return E.add(c, E.subtract(E.clip(held, lo=-1.0, hi=1.0), held))
