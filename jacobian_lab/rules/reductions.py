"""Reductions: sum, mean, prod, max, min over axes, and cumsum and cumprod along one axis.

`axis` is always a tuple of non-negative axes here (the NumPy layer normalizes
it). A reduction of L elements into one output costs L - 1 flops (mean: L, its
final division included). The derivative of prod/max/min is a weighted sum,
``sum(w * t)``, with the weights built once from primal values: ties in max/min
share the derivative equally, as in JAX; prod is exact when inputs hold zeros.
"""
from __future__ import annotations

import math

import numpy as np

from ..primitives import Primitive, observe, register
from . import elementwise as E
from . import shape as S


# A reduction's operand and result are arrays (or NumPy scalars): `.size` is an
# attribute read, where np.size would go through NumPy's dispatch on every count.
def _reduce_cost(out, x, axis, keepdims=False):
    n_out, n_in = out.size, x.size
    return (n_in - n_out if n_in else 0), 0


def _mean_cost(out, x, axis, keepdims=False):
    return x.size, 0


def _shift(axis):
    return tuple([a + 1 for a in axis])


def _kept_shape(shape, axis):
    return tuple([1 if i in axis else s for i, s in enumerate(shape)])


def spread(g, x_shape, axis):
    """Broadcast a seed-batched reduced cotangent back over the reduced axes."""
    kept = (S.batch(g),) + _kept_shape(x_shape, axis)
    return S.broadcast_to(S.reshape(g, kept), (S.batch(g),) + tuple(x_shape))


def _reduction(name, impl, cost, weights=None, reads_values=False):
    """Register a reduction whose derivative is sum(w * t) (w = 1 when `weights` is None)."""

    def jvp(tangents, out, x, axis, keepdims=False):
        t = tangents[0]
        if weights is not None:
            t = E.multiply(t, weights(out, x, axis))
        return reduce_tangent(t, axis, keepdims)

    def vjp(needs, out, x, axis, keepdims=False):
        if not needs[0]:
            return lambda g: (None,)  # symbolic zero: stage no weights either
        w = weights(out, x, axis) if weights is not None else None
        x_shape = np.shape(x)

        def pullback(g):
            g = spread(g, x_shape, axis)
            return (g if w is None else E.multiply(g, w),)

        return pullback

    return register(Primitive(name, impl, cost, jvp=jvp, vjp=vjp, reads_values=reads_values,
                              structure="reduction", array_params=()))


def reduce_tangent(t, axis, keepdims):
    return sum(t, axis=_shift(axis), keepdims=keepdims)


def _prod_weights(out, x, axis):
    """prod of all other elements of each slice, exact when zeros are present."""
    kept = S.reshape(out, _kept_shape(np.shape(x), axis))
    zeros = E.equal(x, 0.0)
    if not observe(np.any, zeros):  # the route depends on values: see `reads_values`
        return E.divide(kept, x)
    x_safe = E.where(zeros, 1.0, x)
    p_safe = prod(x_safe, axis=axis, keepdims=True)
    n_zero = sum(zeros, axis=axis, keepdims=True)
    at_zero = E.where(E.equal(n_zero, 1), p_safe, 0.0)
    elsewhere = E.where(E.equal(n_zero, 0), E.divide(p_safe, x_safe), 0.0)
    return E.where(zeros, at_zero, elsewhere)


def _chooser_weights(out, x, axis):
    """Indicator of the extreme elements, divided by their count (ties share)."""
    hit = E.equal(x, S.reshape(out, _kept_shape(np.shape(x), axis)))
    return E.divide(hit, sum(hit, axis=axis, keepdims=True))


def _ufunc_reduce(ufunc):
    # What np.sum / np.prod / np.max / np.min run, minus their Python dispatch layer
    # (which costs more than the reduction itself on small arrays).
    return lambda x, axis, keepdims=False: ufunc.reduce(x, axis=axis, keepdims=keepdims)


sum = _reduction("sum", _ufunc_reduce(np.add), _reduce_cost)
prod = _reduction("prod", _ufunc_reduce(np.multiply), _reduce_cost, _prod_weights, reads_values=True)
max = _reduction("max", _ufunc_reduce(np.maximum), _reduce_cost, _chooser_weights)
min = _reduction("min", _ufunc_reduce(np.minimum), _reduce_cost, _chooser_weights)


def _mean_vjp(needs, out, x, axis, keepdims=False):
    if not needs[0]:
        return lambda g: (None,)
    x_shape = np.shape(x)
    scale = 1.0 / math.prod(x_shape[a] for a in axis)
    return lambda g: (spread(E.multiply(g, scale), x_shape, axis),)


mean = register(Primitive(
    "mean", lambda x, axis, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims), _mean_cost,
    jvp=lambda tangents, out, x, axis, keepdims=False: mean(tangents[0], axis=_shift(axis), keepdims=keepdims),
    vjp=_mean_vjp, structure="reduction", array_params=(),
))


# --- cumsum ---------------------------------------------------------------------
def _cumsum_cost(out, x, axis):
    length = np.shape(x)[axis]
    return (np.size(x) - np.size(x) // length if length else 0), 0


def _reverse_cumsum(g, axis):
    flip = (slice(None),) * axis + (slice(None, None, -1),)
    return S.getitem(cumsum(S.getitem(g, flip), axis=axis), flip)


cumsum = register(Primitive(
    "cumsum", lambda x, axis: np.cumsum(x, axis=axis), _cumsum_cost,
    jvp=lambda tangents, out, x, axis: cumsum(tangents[0], axis=axis + 1),
    vjp=lambda needs, out, x, axis: lambda g: (_reverse_cumsum(g, axis + 1) if needs[0] else None,),
    structure="scan", array_params=(),
))


# --- cumprod --------------------------------------------------------------------
def _cumprod_factors(out, x, axis):
    """What the rules of y = cumprod(x) multiply seeds by, built once from primal values.

    ẏ_i = Σ_{j ≤ i} ẋ_j Π_{l ≤ i, l ≠ j} x_l. Without zeros that is y_i · cumsum(ẋ / x)_i.
    At and after a line's first zero z, y is 0 and only j = z survives: ẏ_i = ẋ_z · q_i,
    q = the cumprod with that zero read as 1 (a second zero makes q 0 too, as it should).
    Returns (1 / x with zeros read as 1, the one-hot of each first zero and q after it,
    or None when x holds no zero): the route depends on values, see `reads_values`.
    """
    zeros = E.equal(x, 0.0)
    if not observe(np.any, zeros):
        return E.divide(1.0, x), None
    count = cumsum(E.where(zeros, 1.0, 0.0), axis=axis)
    first = E.logical_and(zeros, E.equal(count, 1.0))
    after = E.where(E.greater_equal(count, 1.0), cumprod(E.where(first, 1.0, x), axis=axis), 0.0)
    return E.divide(1.0, E.where(zeros, 1.0, x)), (E.where(first, 1.0, 0.0), after)


def _cumprod_jvp(tangents, out, x, axis):
    t = tangents[0]
    inverse, at_zero = _cumprod_factors(out, x, axis)
    dt = E.multiply(out, cumsum(E.multiply(t, inverse), axis=axis + 1))
    if at_zero is None:
        return dt
    first, after = at_zero
    return E.add(dt, E.multiply(after, sum(E.multiply(t, first), axis=(axis + 1,), keepdims=True)))


def _cumprod_vjp(needs, out, x, axis):
    if not needs[0]:
        return lambda g: (None,)
    inverse, at_zero = _cumprod_factors(out, x, axis)

    def pullback(g):  # the transpose of the JVP above, term by term
        ct = E.multiply(_reverse_cumsum(E.multiply(g, out), axis + 1), inverse)
        if at_zero is None:
            return (ct,)
        first, after = at_zero
        return (E.add(ct, E.multiply(first, sum(E.multiply(g, after), axis=(axis + 1,), keepdims=True))),)

    return pullback


cumprod = register(Primitive(
    "cumprod", lambda x, axis: np.cumprod(x, axis=axis), _cumsum_cost,
    jvp=_cumprod_jvp, vjp=_cumprod_vjp, reads_values=True, structure="scan", array_params=(),
))
