"""Reductions: sum, mean, prod, max, min over axes, and cumsum and cumprod along one axis.

`axis` is always a tuple of non-negative axes here (the NumPy layer normalizes
it). A reduction of L elements into one output costs L - 1 flops (mean: L, its
final division included). The derivative of prod/max/min is a weighted sum,
``sum(w * t)``, with the weights built once from primal values: ties in max/min
share the derivative equally, as in JAX; prod and cumprod are exact where inputs hold
zeros, in their first and second derivatives, prod's first derivative stays accurate
where the product over- or underflows, and their second derivatives at an element far
smaller than the others (`_spread`).
"""
from __future__ import annotations

import math

import numpy as np

from ..primitives import Primitive, is_traced, observe, primal, register
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
            t = _weighted(t, weights(out, x, axis))
        return reduce_tangent(t, axis, keepdims)

    def vjp(needs, out, x, axis, keepdims=False):
        if not needs[0]:
            return lambda g: (None,)  # symbolic zero: stage no weights either
        w = weights(out, x, axis) if weights is not None else None
        x_shape = np.shape(x)

        def pullback(g):
            g = spread(g, x_shape, axis)
            return (g if w is None else _weighted(g, w),)

        return pullback

    return register(Primitive(name, impl, cost, jvp=jvp, vjp=vjp, reads_values=reads_values,
                              structure="reduction", array_params=()))


def reduce_tangent(t, axis, keepdims):
    return sum(t, axis=_shift(axis), keepdims=keepdims)


def _prod_weights(out, x, axis):
    """prod of all other elements of each slice: out / x, or with zeros `_zero_terms`' sum; where the
    product over- or underflowed, `_exclusive_products`."""
    zeros = E.equal(x, 0.0)
    with_zeros = observe(np.any, primal(zeros))  # the route depends on values: see `reads_values`
    x_safe = E.where(zeros, 1.0, x) if with_zeros else x
    total = prod(x_safe, axis=axis, keepdims=True) if with_zeros else S.reshape(out, _kept_shape(np.shape(x), axis))
    if observe(_lost, primal(total)):  # values, not the tracers of an enclosing Hessian
        return _exclusive_products(x, axis, observe(_all_finite, primal(x)))
    if not with_zeros:
        # A Hessian differentiates the weights: total / x_j's slope in x_j is the difference of two terms
        # of about total / x_j², 0 exactly, which a small x_j leaves its rounding in; the products of the
        # others have no such term (their slope in x_j is 0 by construction)
        if is_traced(x) and observe(_spread, primal(x), axis):
            return _exclusive_products(x, axis)
        return E.divide(total, x)
    if is_traced(x) and (observe(_many_zeros, primal(zeros), axis) or observe(_spread, primal(x_safe), axis)):
        # a derivative of the weights' own derivatives (prod's third) reads products of 3 or more zeros,
        # which `_zero_terms` leaves out, and its 1 / x_j has the slope -1 / x_j², which underflows for a small
        # x_j beside the zero (NaN at [0, 1e-160, 3]); the products of the others hold each exactly, to any order
        return _exclusive_products(x, axis)
    terms = _zero_terms(zeros, x, x_safe, lambda v: sum(v, axis=axis, keepdims=True))
    weights = E.add(E.add(E.multiply(*terms[0]), E.multiply(*terms[1])), E.multiply(*terms[2]))
    return E.multiply(total, weights)


def _weighted(t, w, unreached=None):
    """t · w, a seed's derivative through the weights (prod: the products of the others). A weight that is not
    finite (a product past the float range, or of a NaN or infinite element) adds nothing along a seed that
    leaves its element alone (`unreached`, by default where t is 0), where its product with the seed's 0 would
    add NaN, to other slices' derivatives too; both orders give each element's slope so, the product of the
    others."""
    if not observe(_all_finite, primal(w)):
        w = E.where(E.equal(t, 0.0) if unreached is None else unreached, 0.0, w)
    return E.multiply(t, w)


def _many_zeros(zeros, axis) -> bool:
    """Whether a slice holds 3 zeros or more: beyond what `_zero_terms` differentiates exactly."""
    return bool(np.any(np.count_nonzero(zeros, axis=axis) >= 3))


def _spread(x, axis) -> bool:
    """Whether an element is below 2⁻²⁰ of its slice's largest: there the rounding total / x_j² leaves in a
    second derivative of prod would pass about 2e-10 (ε · 2²⁰) of its entries."""
    magnitudes = np.abs(x)
    return bool(np.any(magnitudes < 2.0 ** -20 * magnitudes.max(axis=axis, keepdims=True, initial=0.0)))


def _lost(total) -> bool:
    """Whether a product of nonzero numbers came out 0, infinite or NaN, so that dividing it by one of them no
    longer gives the product of the others: over- or underflowed, or of a NaN or infinite element, whose own
    slope is the (finite) product of the others ([nan, 1, 2, 3]: 6 for the first, as JAX's)."""
    return bool(not np.all(np.isfinite(total) & (total != 0)))


def _all_finite(x) -> bool:
    return bool(np.all(np.isfinite(x)))


def _exclusive_products(x, axis, finite: bool = True):
    """For every j, the product of its slice's elements before j times that of those after j: no
    division, so exact where the whole product over- or underflows ([2, 1e300, 1e10]: 2e10 for the
    middle one). Where one of the two parts over- or underflows itself (or is 0), the product of the
    others is taken from the sum of their logarithms instead, to about 1e-13; not where x holds a NaN or
    an infinity (not `finite`), whose parts are IEEE's products (inf · 0 is NaN, as JAX's)."""
    kept = [a for a in range(np.ndim(x)) if a not in axis]
    order = tuple(kept) + tuple(axis)
    moved = S.transpose(x, order)
    flat = S.reshape(moved, moved.shape[:len(kept)] + (-1,))  # each slice along the last axis
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # the parts may leave the range: see below
        before, after = _around(flat, cumprod, 1.0)
        weights = E.multiply(before, after)
        # a part that holds a zero of x is exactly 0, and cumprod differentiates it exactly (twice, too)
        zeros_before, zeros_after = _around(E.equal(flat, 0.0), cumsum, 0.0)
        if finite and observe(_any_lost, *map(primal, (before, after, zeros_before, zeros_after))):
            exact = E.logical_and(_kept(before, zeros_before), _kept(after, zeros_after))
            weights = E.where(exact, weights, _exclusive_by_logs(flat))
    return S.transpose(S.reshape(weights, moved.shape), tuple(np.argsort(order)))


def _kept(part, zeros):
    """Where a part neither over- nor underflowed: finite, and nonzero unless it holds a zero of x."""
    return E.logical_and(E.isfinite(part), E.logical_or(E.not_equal(part, 0.0), E.greater(zeros, 0.0)))


def _any_lost(before, after, zeros_before, zeros_after) -> bool:
    kept = lambda part, zeros: np.isfinite(part) & ((part != 0) | (zeros > 0))  # noqa: E731 - as `_kept`
    return not bool(np.all(kept(before, zeros_before) & kept(after, zeros_after)))


def _exclusive_by_logs(flat):
    """`_exclusive_products` as sign · exp(sum of log |x_i|) over the others: no part over- or underflows.
    A zero counts as log 1 with sign 0, and the products it is in are 0."""
    signs = E.sign(flat)
    logs = E.log(E.absolute(E.where(E.equal(flat, 0.0), 1.0, flat)))
    sign_before, sign_after = _around(signs, cumprod, 1.0)
    log_before, log_after = _around(logs, cumsum, 0.0)
    sign = E.multiply(sign_before, sign_after)
    # 0 where a zero is among the others, however large the rest (not 0 times an overflowed exp)
    return E.where(E.equal(sign, 0.0), 0.0, E.multiply(sign, E.exp(E.add(log_before, log_after))))


def _around(flat, scan, empty: float):
    """(`scan` of the elements before each one, `scan` of those after it) along the last axis; `empty`
    where there are none."""
    last = flat.ndim - 1
    pad = np.full(flat.shape[:-1] + (1,), empty, dtype=flat.dtype)
    flip = (..., slice(None, None, -1))
    before = S.concatenate(pad, scan(S.getitem(flat, (..., slice(None, -1))), axis=last), axis=last)
    after = S.getitem(scan(S.getitem(flat, (..., slice(None, 0, -1))), axis=last), flip)
    return before, S.concatenate(after, pad, axis=last)


def _zero_terms(zeros, x, x_safe, total):
    """The product of all elements but one, as three terms ``F * G`` to multiply by the product of
    the nonzero elements; `total` sums over the elements a product spans (prod's slice, cumprod's
    prefix), F is per product and G per element.

    With z zeros among them, the product over all but element j is 0 unless z = 1 and j is the zero,
    but a Hessian also reads its derivative, which is not 0 where z <= 2: with one zero x_0, j's
    product is x_0 times the others; with two, the other zero for each zero, and x_0 x_1 times the
    others for the rest. So the zeros enter as traced values (value 0, derivative 1), summed as
    s1 and their squares as s2:
    - nonzero j: F = 1, x_0 or x_0 x_1 = (s1**2 - s2) / 2 as z = 0, 1, 2, and G = 1 / x_j;
    - zero j: 1 (z = 1) or s1 - x_j, the other zero (z = 2), as F = 1 or s1 with G = 1, plus
      F = -1 (z = 2) with G = x_j.
    With more zeros every product holds two zero factors: its value and first derivative are 0.
    """
    at_zero = E.where(zeros, 1.0, 0.0)
    xz = E.where(zeros, x, 0.0)  # the zeros, traced
    count, s1 = total(at_zero), total(xz)
    one, two = E.equal(count, 1.0), E.equal(count, 2.0)
    pair = E.multiply(E.subtract(E.square(s1), total(E.square(xz))), 0.5)
    nonzero = E.where(E.equal(count, 0.0), 1.0, E.where(one, s1, E.where(two, pair, 0.0)))
    return ((nonzero, E.where(zeros, 0.0, E.divide(1.0, x_safe))),
            (E.where(one, 1.0, E.where(two, s1, 0.0)), at_zero),
            (E.where(two, -1.0, 0.0), xz))


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
    count = math.prod(x_shape[a] for a in axis)
    scale = 1.0 / count if count else 0.0  # over an empty axis x has no element to take it
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
    """What the rules of y = cumprod(x) multiply seeds by, built once from primal values:
    ``(q, terms)`` with ``ẏ = q * Σ F * cumsum(ẋ * G)`` over the (F, G) in terms.

    ẏ_i = Σ_{j ≤ i} ẋ_j Π_{l ≤ i, l ≠ j} x_l. Without zeros that is y_i · cumsum(ẋ / x)_i. With
    zeros, q is the cumprod with zeros read as 1 and the terms are `_zero_terms` over each prefix,
    exact in value and first derivative: the route depends on values, see `reads_values`.
    """
    zeros = E.equal(x, 0.0)
    if not observe(np.any, zeros):
        return out, ((None, E.divide(1.0, x)),)
    x_safe = E.where(zeros, 1.0, x)
    return cumprod(x_safe, axis=axis), _zero_terms(zeros, x, x_safe, lambda v: cumsum(v, axis=axis))


def _out_of_range(x, axis) -> bool:
    """Whether `_cumprod_factors` would leave the float range: the running product of x's nonzero
    elements, or the reciprocal of one or of its square (which a second derivative of y / x reads), is 0,
    infinite or NaN (a product that underflows, an element below 1e-154, x holding an inf or NaN, where
    y / x_j is no product of the others)."""
    with np.errstate(all="ignore"):
        safe = np.where(x == 0, 1.0, x)
        running = np.cumprod(safe, axis=axis)
        kept = np.all(np.isfinite(running) & (running != 0)) and np.all(np.isfinite(1.0 / (safe * safe)))
        return bool(not kept)


def _step(value, i, axis):
    """value[..., i:i+1, ...] along `axis` (i < 0 or value None: None, for the empty product before the first)."""
    return None if i < 0 or value is None else S.getitem(value, (slice(None),) * axis + (slice(i, i + 1),))


def _chained_jvp(t, out, x, axis):
    """ẏ_i = ẏ_{i-1} x_i + y_{i-1} ẋ_i, one step per element along the axis: the derivative of the
    products as NumPy forms them, one after another, with no division (see `_out_of_range`)."""
    unreached = _unreached(t, out, x, axis, cumsum)
    steps = []
    for i in range(np.shape(x)[axis]):
        own = _weighted(_step(t, i, axis + 1), _step(out, i - 1, axis)) if i else _step(t, 0, axis + 1)
        if steps:
            own = E.add(_weighted(steps[-1], _step(x, i, axis), _step(unreached, i - 1, axis + 1)), own)
        steps.append(own)
    return S.concatenate(*steps, axis=axis + 1)


def _chained_vjp(g, out, x, axis):
    """Its transpose: x̄_j = y_{j-1} r_j, where r_j = ȳ_j + x_{j+1} r_{j+1} runs back along the axis."""
    unreached = _unreached(g, out, x, axis, _reverse_cumsum)
    steps, r = [], None
    for j in reversed(range(np.shape(x)[axis])):
        own = _step(g, j, axis + 1)
        r = own if r is None else E.add(own, _weighted(r, _step(x, j + 1, axis), _step(unreached, j + 1, axis + 1)))
        steps.append(r if j == 0 else _weighted(r, _step(out, j - 1, axis), _step(unreached, j, axis + 1)))
    return S.concatenate(*steps[::-1], axis=axis + 1)


def _unreached(seeds, out, x, axis, running):
    """Where no seed has reached a running derivative of the chained rules (`running`: cumsum along a forward
    pass, its reverse along a sweep), or None where x and y are finite, the weights `_weighted` multiplies by.
    A zero of x makes a derivative it reached 0, which an infinite weight after it must turn to NaN, as the
    product of the others (inf · 0) is: its value cannot tell it from a derivative no seed reached."""
    if observe(_all_finite, primal(x)) and observe(_all_finite, primal(out)):
        return None
    return E.equal(running(E.where(E.equal(seeds, 0.0), 0.0, 1.0), axis + 1), 0.0)


def _chained(x, axis) -> bool:
    """Whether cumprod's rules take the products one at a time (`_chained_jvp`): where y / x leaves the
    float range, or where a Hessian would differentiate it at a small element (see `_prod_weights`) or at 3
    zeros."""
    if observe(_out_of_range, primal(x), axis):
        return True
    # a Hessian differentiates y / x, and a derivative of it reads products of 3 zeros `_zero_terms` leaves out
    return is_traced(x) and (observe(_spread, primal(x), axis) or observe(_many_zeros, primal(x) == 0, (axis,)))


def _cumprod_jvp(tangents, out, x, axis):
    if _chained(x, axis):
        return _chained_jvp(tangents[0], out, x, axis)
    q, terms = _cumprod_factors(out, x, axis)
    dt = None
    for f, g in terms:
        term = cumsum(E.multiply(tangents[0], g), axis=axis + 1)
        term = term if f is None else E.multiply(f, term)
        dt = term if dt is None else E.add(dt, term)
    return E.multiply(q, dt)


def _cumprod_vjp(needs, out, x, axis):
    if not needs[0]:
        return lambda g: (None,)
    if _chained(x, axis):
        return lambda g: (_chained_vjp(g, out, x, axis),)
    q, terms = _cumprod_factors(out, x, axis)

    def pullback(g):  # the transpose of the JVP above, term by term
        gq, ct = E.multiply(g, q), None
        for f, factor in terms:
            term = E.multiply(_reverse_cumsum(gq if f is None else E.multiply(gq, f), axis + 1), factor)
            ct = term if ct is None else E.add(ct, term)
        return (ct,)

    return pullback


cumprod = register(Primitive(
    "cumprod", lambda x, axis: np.cumprod(x, axis=axis), _cumsum_cost,
    jvp=_cumprod_jvp, vjp=_cumprod_vjp, reads_values=True, structure="scan", array_params=(),
))
