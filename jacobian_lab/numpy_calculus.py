"""Differences, integrals, interpolation and evenly spaced values on traced arrays.

diff, ediff1d and gradient are subtractions of shifted slices (gradient with
NumPy's constant coefficients); unwrap adds a piecewise-constant correction, so
its derivative is 1; trapezoid is arithmetic on differences; interp gathers
the two samples around each x (its segment found on values) and weighs them;
linspace, logspace and geomspace follow NumPy's formulas with traced endpoints.
"""
from __future__ import annotations

import operator

import numpy as np

from . import numpy_api as api
from .numpy_api import implements, is_traced, one_axis
from .numpy_composites import numpy2, with_length
from .primitives import observe, primal
from .rules import elementwise as E
from .rules import reductions as R
from .rules import shape as S


# --- differences ----------------------------------------------------------------------
@implements(np.diff)
def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    if n == 0:  # a itself, without prepend and append, as NumPy's (n = 0.0 too)
        return a
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    if np.ndim(a) == 0:  # before any axis, as NumPy's check
        raise ValueError("diff requires input that is at least one dimensional")
    axis = one_axis(axis, np.ndim(a))
    parts = [v for v in (prepend, a, append) if v is not np._NoValue]
    if len(parts) > 1:
        edge = with_length(np.shape(a), axis, 1)  # a scalar prepend/append spans the other axes
        a = api.concatenate([v if np.ndim(v) else api.broadcast_to(v, edge) for v in parts], axis=axis)
    before = (slice(None),) * axis
    # of booleans (a mask, while compiling) NumPy's difference is not_equal: where the mask changes
    dtype = a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype  # (a dtype's truth is its field count)
    step = E.not_equal if dtype == np.bool_ else E.subtract
    for _ in range(n):
        a = step(S.getitem(a, before + (slice(1, None),)), S.getitem(a, before + (slice(None, -1),)))
    return a


@implements(np.ediff1d)
def ediff1d(ary, to_end=None, to_begin=None):
    """Differences of the flattened array, between to_begin and to_end (cast to its dtype)."""
    flat = api.ravel(ary)
    dtype = np.result_type(primal(flat))
    middle = E.subtract(S.getitem(flat, (slice(1, None),)), S.getitem(flat, (slice(None, -1),)))
    parts = []
    for name, extra in (("to_begin", to_begin), ("to_end", to_end)):
        if extra is None:
            continue
        if not np.can_cast(np.asarray(primal(extra)).dtype, dtype, casting="same_kind"):
            raise TypeError(f"dtype of `{name}` must be compatible with input `ary` under the `same_kind` rule.")
        parts.append(api.ravel(extra if is_traced(extra) else np.asarray(extra).astype(dtype)))
    if not parts:
        return middle
    if to_begin is not None:  # it is parts[0]
        parts.insert(1, middle)
    else:
        parts.insert(0, middle)
    return api.concatenate(parts)


def _even(spacings) -> bool:
    return bool((spacings == spacings[0]).all())


def _gradient_along(f, axis, dx, edge_order):
    """np.gradient along one axis, in NumPy's order of operations; the weights are constants."""
    def part(index):
        return S.getitem(f, (slice(None),) * axis + (index,))

    def weighted(a, b, c, f0, f1, f2):
        if np.ndim(a):  # weights per point, laid along `axis`
            shape = [1] * np.ndim(f)
            shape[axis] = -1
            a, b, c = (np.reshape(w, shape) for w in (a, b, c))
        return E.add(E.add(E.multiply(a, f0), E.multiply(b, f1)), E.multiply(c, f2))

    uniform = np.ndim(dx) == 0
    below, centre, above = part(slice(None, -2)), part(slice(1, -1)), part(slice(2, None))
    if uniform:  # second-order central differences inside
        interior = E.divide(E.subtract(above, below), 2. * dx)
    else:
        dx1, dx2 = dx[0:-1], dx[1:]
        interior = weighted(-(dx2) / (dx1 * (dx1 + dx2)), (dx2 - dx1) / (dx1 * dx2), dx1 / (dx2 * (dx1 + dx2)),
                            below, centre, above)
    if edge_order == 1:  # one-sided first-order differences at the edges
        first = E.divide(E.subtract(part(slice(1, 2)), part(slice(0, 1))), dx if uniform else dx[0])
        last = E.divide(E.subtract(part(slice(-1, None)), part(slice(-2, -1))), dx if uniform else dx[-1])
    else:  # one-sided second-order ones
        if uniform:
            a, b, c = -1.5 / dx, 2. / dx, -0.5 / dx
        else:
            dx1, dx2 = dx[0], dx[1]
            a = -(2. * dx1 + dx2) / (dx1 * (dx1 + dx2))
            b = (dx1 + dx2) / (dx1 * dx2)
            c = - dx1 / (dx2 * (dx1 + dx2))
        first = weighted(a, b, c, part(slice(0, 1)), part(slice(1, 2)), part(slice(2, 3)))
        if uniform:
            a, b, c = 0.5 / dx, -2. / dx, 1.5 / dx
        else:
            dx1, dx2 = dx[-2], dx[-1]
            a = (dx2) / (dx1 * (dx1 + dx2))
            b = - (dx2 + dx1) / (dx1 * dx2)
            c = (2. * dx2 + dx1) / (dx2 * (dx1 + dx2))
        last = weighted(a, b, c, part(slice(-3, -2)), part(slice(-2, -1)), part(slice(-1, None)))
    return api.concatenate([first, interior, last], axis=axis)


@implements(np.gradient)
def gradient(f, *varargs, axis=None, edge_order=1):
    """NumPy's finite differences: central inside, one-sided (edge_order 1 or 2) at the edges.

    Spacings (scalars or coordinate arrays) make the weights, by NumPy's formulas: constants where
    they are plain, computed (and differentiated) where they are traced.
    """
    if not is_traced(f) and np.issubdtype(np.asarray(f).dtype, np.integer):  # as NumPy: integers become float64
        f = np.asarray(f, dtype=np.float64)  # first, or their differences would truncate and wrap (uint8)
    shape = np.shape(f)
    if axis is None:
        axes = tuple(range(len(shape)))
    else:  # in the order given, as NumPy returns the gradients
        axes = tuple(one_axis(ax, len(shape)) for ax in ((axis,) if np.ndim(axis) == 0 else axis))
        if len(set(axes)) != len(axes):
            raise ValueError("repeated axis")
    if len(varargs) == 0:
        dx = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        dx = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        dx = list(varargs)
        for i, distances in enumerate(dx):
            distances = distances if is_traced(distances) else np.asanyarray(distances)
            if np.ndim(distances) == 0:
                continue
            if np.ndim(distances) != 1:
                raise ValueError("distances must be either scalars or 1d")
            if len(distances) != shape[axes[i]]:
                raise ValueError("when 1d, distances must match the length of the corresponding dimension")
            if np.issubdtype(distances.dtype, np.integer):
                distances = distances.astype(np.float64)
            diffx = diff(distances)
            # even plain spacing: a scalar, as NumPy takes it; traced coordinates keep the weights of uneven ones,
            # whose derivative in each coordinate the even ones' (of the first spacing alone) is not
            dx[i] = diffx[0] if not is_traced(diffx) and _even(diffx) else diffx
    else:
        raise TypeError("invalid number of arguments")
    if edge_order > 2:
        raise ValueError("'edge_order' greater than 2 not supported")
    outvals = []
    otype = np.result_type(primal(f))  # NumPy stores each gradient in f's float dtype, whatever the spacings'
    for ax, ax_dx in zip(axes, dx):
        if shape[ax] < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, "
                             "at least (edge_order + 1) elements are required.")
        out = _gradient_along(f, ax, ax_dx, edge_order)
        outvals.append(out if np.result_type(primal(out)) == otype else E.astype(out, dtype=otype))
    return outvals[0] if len(axes) == 1 else tuple(outvals)


@implements(np.unwrap)
def unwrap(p, discont=None, axis=-1, *, period=2 * np.pi):
    """NumPy's algorithm: the differences taken modulo the period, the corrections summed up.

    The corrections are piecewise constant (remainder's derivative in x is 1, so that of
    ddmod - dd is exactly 0): the derivative in p is 1, away from the jumps.
    """
    axis = one_axis(axis, np.ndim(p))
    dd = diff(p, axis=axis)
    if discont is None:
        discont = period / 2
    interval_high = period / 2
    interval_low = -interval_high
    ddmod = E.add(E.remainder(E.subtract(dd, interval_low), period), interval_low)
    # a difference of exactly period / 2 keeps its sign, as in NumPy
    ddmod = E.where(E.logical_and(E.equal(ddmod, interval_low), E.greater(dd, 0)), interval_high, ddmod)
    ph_correct = E.where(E.less(E.absolute(dd), discont), 0.0, E.subtract(ddmod, dd))
    before = (slice(None),) * axis
    tail = E.add(S.getitem(p, before + (slice(1, None),)), api.cumsum(ph_correct, axis))
    return api.concatenate([S.getitem(p, before + (slice(0, 1),)), tail], axis=axis)


# --- integration and interpolation ----------------------------------------------------
@numpy2(np, "trapezoid")
def trapezoid(y, x=None, dx=1.0, axis=-1):
    """The trapezoidal rule, in NumPy's order of operations: sum(d * (y[1:] + y[:-1]) / 2)."""
    axis = one_axis(axis, np.ndim(y))
    x = None if x is None else api.as_array(x)
    if x is None:
        d = dx
    elif np.ndim(x) == 1:  # spacings along `axis`, broadcast over the other axes
        d = api.reshape(diff(x), with_length((1,) * np.ndim(y), axis, -1))
    else:
        d = diff(x, axis=axis)
    before = (slice(None),) * axis
    upper, lower = S.getitem(y, before + (slice(1, None),)), S.getitem(y, before + (slice(None, -1),))
    return api._reduction(R.sum, E.divide(E.multiply(d, E.add(upper, lower)), 2.0), axis)


def _segment(xp, x):
    """The interval of xp holding each x: j with xp[j] <= x < xp[j + 1], kept inside 0..len(xp) - 2."""
    return np.clip(np.searchsorted(xp, x, side="right") - 1, 0, max(len(xp) - 2, 0))


@implements(np.interp)
def interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation: the derivative in x is the slope of x's segment, in fp
    the two weights, in xp that of the segment's ends; 0 outside [xp[0], xp[-1]], where the
    value is left / right. With a period, NumPy's reduction: x and xp taken modulo the
    period (slope 1: the quotients are piecewise constant), the samples sorted, and each end
    joined to the other across the period."""
    if period is not None:
        return interp(*_periodic(x, xp, fp, period))
    # as NumPy's, a plain xp or fp in float64 (an int8 fp's differences would wrap)
    xp = xp if is_traced(xp) else np.asarray(xp, dtype=float)
    fp = fp if is_traced(fp) else np.asarray(fp, dtype=float)
    samples = primal(xp)  # where the segments are: decisions on values
    if np.ndim(xp) != 1 or np.ndim(fp) != 1 or len(samples) != np.shape(fp)[0] or not len(samples):
        raise ValueError("fp and xp are not of the same length, or are empty")
    x = x if is_traced(x) else np.asarray(x, dtype=float)
    last = api.take(fp, len(samples) - 1)
    first_x, last_x = _ends(xp, samples)
    if len(samples) == 1:  # one sample: fp[0] at it, left / right elsewhere
        value = api.broadcast_to(last, np.shape(x))
    else:
        j = observe(_segment, samples, primal(x))  # which segment: a decision on values
        f0, f1 = api.take(fp, j), api.take(fp, j + 1)
        x0, x1 = api.take(xp, j), api.take(xp, j + 1)
        slope = E.divide(E.subtract(f1, f0), E.subtract(x1, x0))
        value = E.add(E.multiply(slope, E.subtract(x, x0)), f0)
        value = E.where(E.equal(x, last_x), last, value)  # NumPy returns fp[-1] there exactly
    lo = api.take(fp, 0) if left is None else left
    hi = last if right is None else right
    return E.where(E.less(x, first_x), lo, E.where(E.greater(x, last_x), hi, value))


def _periodic(x, xp, fp, period):
    """(x, xp, fp) of `interp` with a period, as NumPy reduces them: modulo |period|, xp sorted, and its last
    sample repeated a period before the first, its first a period after the last."""
    if observe(_has_zero, primal(period)):
        raise ValueError("period must be a non-zero value")
    period = E.absolute(period) if is_traced(period) else abs(period)
    xp = xp if is_traced(xp) else np.asarray(xp, dtype=float)
    fp = fp if is_traced(fp) else np.asarray(fp, dtype=float)
    if np.ndim(xp) != 1 or np.ndim(fp) != 1:
        raise ValueError("Data points must be 1-D sequences")
    if np.shape(xp)[0] != np.shape(fp)[0]:
        raise ValueError("fp and xp are not of the same length")
    x = E.remainder(x if is_traced(x) else np.asarray(x, dtype=float), period)
    xp = E.remainder(xp, period)
    order = observe(np.argsort, primal(xp))  # the samples' order: a decision on values
    xp, fp = api.take(xp, order), api.take(fp, order)
    xp = api.concatenate([E.subtract(xp[-1:], period), xp, E.add(xp[:1], period)])
    return x, xp, api.concatenate([fp[-1:], fp, fp[:1]])


def _ends(xp, samples):
    """xp's first and last sample, for the comparisons that place x outside them or at the end.

    A traced xp's are gathered with primitives, not read from `samples`: the comparisons then
    take the values of the call at hand, and a compiled program recomputes them instead of
    keeping the first call's ends as constants.
    """
    if is_traced(xp):
        return api.take(xp, 0), api.take(xp, len(samples) - 1)
    return samples[0], samples[-1]


# --- evenly spaced values with traced endpoints ---------------------------------------
def _has_zero(values):
    return bool(np.any(values == 0))


@implements(np.linspace)
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *, device=None):
    """NumPy's formula: step = (stop - start) / div, y = arange(num) * step + start, then y[-1] = stop.

    Flops: 1 subtraction and 1 division per endpoint element, 2 per output element.
    """
    if device not in (None, "cpu"):
        api._reject("linspace", device, "device")
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    div = (num - 1) if endpoint else num
    dt = np.result_type(primal(start), primal(stop))
    dt = dt if np.issubdtype(dt, np.inexact) else np.dtype(np.float64)
    start, stop = (v if is_traced(v) else np.asarray(v, dtype=dt) for v in (start, stop))
    delta = E.subtract(stop, start)
    y = np.arange(0, num, dtype=dt).reshape((-1,) + (1,) * np.ndim(delta))
    if div > 0:
        step = E.divide(delta, div)
        if observe(_has_zero, primal(step)):  # NumPy's route for denormal steps (gh-5437)
            y = E.multiply(y / div, delta)
        else:
            y = E.multiply(y, step)
    else:
        step = np.nan  # no step for fewer than two points
        y = E.multiply(y, delta)
    y = E.add(y, start)
    if endpoint and num > 1:
        last = api.reshape(api.broadcast_to(stop, np.shape(delta)), (1,) + np.shape(delta))
        y = api.concatenate([S.getitem(y, (slice(None, -1),)), last], axis=0)
    if axis != 0:
        y = api.moveaxis(y, 0, axis)
    y = api.in_dtype("linspace", y, dtype)  # computed in dt, then converted, as NumPy does
    return (y, step) if retstep else y


def _with_ndim(v, ndim):
    return api.reshape(v, (1,) * (ndim - np.ndim(v)) + np.shape(v))


@implements(np.logspace)
def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    if not isinstance(base, (float, int)) and np.ndim(base):
        # as NumPy: an array base broadcasts with the endpoints and gets the new axis too
        ndmax = len(np.broadcast_shapes(np.shape(start), np.shape(stop), np.shape(base)))
        start, stop, base = (_with_ndim(api.as_array(v), ndmax) for v in (start, stop, base))
        base = api.expand_dims(base, axis)
    y = linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    return api.in_dtype("logspace", E.power(base, y), dtype)


@implements(np.geomspace)
def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """NumPy's route: logspace between the log10 of the endpoints (made positive), which are then
    put back exactly."""
    start, stop = map(api.as_array, (start, stop))
    if observe(_has_zero, primal(start)) or observe(_has_zero, primal(stop)):
        raise ValueError("Geometric sequence cannot include zero")
    dt = np.result_type(primal(start), primal(stop), float(num), np.zeros((), dtype))
    if dt.kind == "c":
        raise NotImplementedError("numpy.geomspace: complex endpoints are not supported on traced arrays")
    start, stop = (E.as_float_dtype(v, dt) for v in (start, stop))  # traced ones too: NumPy computes in dt
    out_sign = E.sign(start)  # no derivative: a negative sequence is the positive one turned over
    start, stop = E.divide(start, out_sign), E.divide(stop, out_sign)
    result = logspace(E.log10(start), E.log10(stop), num=num, endpoint=endpoint, base=10.0)
    if num > 0:  # the endpoints exactly: 10 ** log10(x) need not be x
        shape = np.shape(result)[1:]
        ends = [api.reshape(api.broadcast_to(start, shape), (1,) + shape)]
        middle = (slice(1, -1 if num > 1 and endpoint else None),)
        ends.append(S.getitem(result, middle))
        if num > 1 and endpoint:
            ends.append(api.reshape(api.broadcast_to(stop, shape), (1,) + shape))
        result = api.concatenate(ends, axis=0)
    result = E.multiply(result, out_sign)
    return api.in_dtype("geomspace", api.moveaxis(result, 0, axis) if axis != 0 else result, dtype)
