"""Elementwise primitives: ufunc arithmetic, transcendentals, where, clip, comparisons.

An elementwise operation has a diagonal local Jacobian (after broadcasting), so
one function per primitive says everything: ``partials(needs, out, *args)``
returns, per operand, the diagonal factor as a `Linear` map, and the same map
serves the JVP (``t -> d * t``) and the VJP (``g -> d * g``, then summed back
over broadcast axes). Factors that depend only on primal values are built once
per pass (JVP) or once per tape (VJP), not once per seed.
"""
from __future__ import annotations

from functools import partial

import numpy as np
from numpy import ndarray  # for the hot paths' type tests: CPython 3.11 caches no attribute of numpy (a module __getattr__)

from ..accounting import free
from ..primitives import PerElement, Primitive, given, observe, recomputed, register
from . import shape as S


# Costs per output element (`out`, an array or a NumPy scalar, has `.size`).
flops, transcendental = PerElement(1, 0), PerElement(0, 1)


# --- diagonal factors -------------------------------------------------------
# A Linear is (kind, factor): "id" t, "neg" -t, "mul" t*factor, "div" t/factor,
# "select" where(cond, t, 0).
ID, NEG = ("id", None), ("neg", None)


def times(d):
    return ("mul", d)


def over(d):
    return ("div", d)


def select(cond, keep):
    """The diagonal 0/1 map of `where`: keep t where cond == keep, zero elsewhere."""
    return ("select", (cond, keep))


def apply(lin, t):
    kind, d = lin
    if kind == "mul":  # the most common factor first (every transcendental's)
        return multiply(t, d)
    if kind == "id":
        return t
    if kind == "neg":
        return negative(t)
    if kind == "div":
        return divide(t, d)
    cond, keep = d
    return where(cond, t, 0.0) if keep else where(cond, 0.0, t)


def _jvp(partials, tangents, out, *args, **params):
    if len(tangents) == 2:  # a binary operation, the usual one: `given`, written out
        ta, tb = tangents
        needs = ta is not None, tb is not None
    else:
        needs = given(tangents)
    lins = partials(needs, out, *args, **params) if params else partials(needs, out, *args)
    shape = out.shape  # an elementwise output is an ndarray or a NumPy scalar
    ndim = len(shape)
    if len(tangents) == 2:
        total = _binary_tangent(ta, tb, lins, ndim)
    else:
        total = None
        for t, lin in zip(tangents, lins):
            if t is not None:
                total = _add_term(total, t, lin, ndim)
    return total if total.shape[1:] == shape else S.broadcast_batched(total, shape)


def _add_term(total, t, lin, ndim):
    """`total` plus the term of an operand's tangent t (None: the first term): t aligned to the output's
    `ndim` axes when it has fewer, and its factor `lin` applied."""
    if t.ndim <= ndim:  # an operand of fewer axes than the output (`align`'s own test, without the call)
        t = S.align(t, ndim)
    if total is not None and lin[0] == "neg":  # ṫa - ṫb: one subtract, not a negate and an add
        return subtract(total, t)
    term = t if lin is ID else apply(lin, t)
    return term if total is None else add(total, term)


def _binary_tangent(ta, tb, lins, ndim):
    """`_add_term` over the two operands of a binary operation; written out where no tangent needs aligning."""
    la, lb = lins
    if (ta is None or ta.ndim > ndim) and (tb is None or tb.ndim > ndim):
        if tb is None:
            return ta if la is ID else apply(la, ta)
        if ta is None:
            return tb if lb is ID else apply(lb, tb)
        term = ta if la is ID else apply(la, ta)
        if lb[0] == "neg":  # ṫa - ṫb: one subtract, not a negate and an add
            return subtract(term, tb)
        return add(term, tb if lb is ID else apply(lb, tb))
    total = None if ta is None else _add_term(None, ta, la, ndim)
    return total if tb is None else _add_term(total, tb, lb, ndim)


def _pulled(lin, g, shape):
    """The cotangent of an operand from the output's, g (of the output's shape): the factor applied, then
    summed back to `shape` when the operand was broadcast (`unbroadcast`); None: it was not."""
    c = g if lin is ID else apply(lin, g)
    return c if shape is None else S.unbroadcast(c, shape)


def _binary_pullback(lin_a, shape_a, lin_b, shape_b, g):
    """The pullback of a binary operation: `_pulled` for each operand, written out; a factor of None
    where no cotangent is needed. Staged with `partial`, which leaves the garbage collector fewer
    objects to track than a closure over the six values would (one per tape record)."""
    a = b = None
    if lin_a is not None:
        a = g if lin_a is ID else apply(lin_a, g)
        if shape_a is not None:
            a = S.unbroadcast(a, shape_a)
    if lin_b is not None:
        b = g if lin_b is ID else apply(lin_b, g)
        if shape_b is not None:
            b = S.unbroadcast(b, shape_b)
    return a, b


def _broadcast_from(operand, out_shape):
    """The shape of an operand that was broadcast to the output's shape, or None where it has that shape."""
    shape = operand.shape if type(operand) is ndarray else np.shape(operand)
    return None if shape == out_shape else shape


def _vjp(partials, needs, out, *args, **params):
    lins = partials(needs, out, *args, **params) if params else partials(needs, out, *args)
    out_shape = out.shape if type(out) is ndarray else np.shape(out)
    if len(args) == 2:  # a binary operation, the usual one: `_broadcast_from`, written out
        (need_a, need_b), (lin_a, lin_b), (a, b) = needs, lins, args
        shape_a = shape_b = None
        if need_a:
            shape_a = a.shape if type(a) is ndarray else np.shape(a)
            shape_a = None if shape_a == out_shape else shape_a
        if need_b:
            shape_b = b.shape if type(b) is ndarray else np.shape(b)
            shape_b = None if shape_b == out_shape else shape_b
        return partial(_binary_pullback, lin_a if need_a else None, shape_a, lin_b if need_b else None, shape_b)
    shapes = [_broadcast_from(a, out_shape) if need else None for need, a in zip(needs, args)]

    def pullback(g):
        return tuple([_pulled(lin, g, shape) if need else None for need, lin, shape in zip(needs, lins, shapes)])

    return pullback


def elementwise(name, impl, partials, cost=flops, array_params=(), constant_key=None, reads_values=False):
    """Register an elementwise primitive from its diagonal partials (operands, and parameters that are
    numbers, unless `array_params` names those that may be arrays)."""
    return register(Primitive(
        name, impl, cost, jvp=partial(_jvp, partials), vjp=partial(_vjp, partials), structure="elementwise",
        array_params=array_params, constant_key=constant_key, reads_values=reads_values,
    ))


def in_result_dtype(partials):
    """`partials` given each plain operand as NumPy computed with it: in the result's dtype. For rules that
    compute on an operand alone (log(y), x²): an int8 operand would wrap there, a float16 one round,
    where NumPy's evaluation converted it first (np.arctan2(int8 a, x) is float64 throughout)."""
    def converted(needs, out, *args, **params):
        dtype = out.dtype  # an ndarray or a NumPy scalar
        # by the primitive, which a compiled program recomputes: the operand may be an input of it (jit's f(w, X))
        args = [astype(a, dtype=dtype) if isinstance(a, (ndarray, np.generic)) and a.dtype != dtype else a
                for a in args]
        return partials(needs, out, *args, **params)

    return converted


def _unary_pullback(lin, g):
    return (apply(lin, g),)


def unary(name, impl, factor, cost=flops, route=None):
    """Register a one-operand elementwise primitive from ``factor(out, x) -> Linear``.

    Its operand, tangent and cotangent all have the output's shape, so the rules
    apply the factor directly: there is no broadcasting to align or undo.
    """
    def jvp(tangents, out, x):
        return apply(factor(out, x), tangents[0])

    def vjp(needs, out, x):
        if not needs[0]:
            return lambda g: (None,)
        return partial(_unary_pullback, factor(out, x))  # a partial: fewer objects for the collector

    return register(Primitive(name, impl, cost, jvp=jvp, vjp=vjp, structure="elementwise", route=route))


def nondifferentiable(name, impl, cost=flops):
    """Register an operation whose output carries no derivative (piecewise constant)."""
    return register(Primitive(name, impl, cost, differentiable=False))


# --- arithmetic ---------------------------------------------------------------
add = elementwise("add", np.add, lambda needs, out, x, y: (ID, ID))
subtract = elementwise("subtract", np.subtract, lambda needs, out, x, y: (ID, NEG))
multiply = elementwise("multiply", np.multiply, lambda needs, out, x, y: (needs[0] and times(y), needs[1] and times(x)))
negative = unary("negative", np.negative, lambda out, x: NEG)
square = unary("square", np.square, lambda out, x: times(multiply(2.0, x)))


def _divide_partials(needs, out, x, y):
    # d(x/y)/dy = -out/y, built only when y is traced.
    return over(y), needs[1] and times(negative(divide(out, y)))


divide = elementwise("divide", np.divide, _divide_partials)
reciprocal = unary("reciprocal", np.reciprocal, lambda out, x: times(negative(square(out))))


def horner(coefficients, z):
    """Σ_k coefficients[k] z^k for plain coefficients, by Horner's scheme: 2 flops per element and
    coefficient past the first (the series the special functions' and sinc's rules take near a point
    where a formula would cancel)."""
    total = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        total = add(multiply(total, z), c)
    return total


def _power_partials(needs, out, x, p):
    # Where p == 0, x ** p is 1 even at x = 0, and where x == 0 (p > 0) it is 0 for every p near
    # p: both slopes are 0 there, but p * x ** (p - 1) at x = 0 and out * log(x) would be 0 * inf =
    # NaN. So the base is read as 1 at those points, as JAX does. Only there: where p == 0 and x != 0
    # the slope p * x ** (p - 1) is 0 by itself, and its derivative in p, x ** -1, needs the true x.
    base = _one_at_zero_power(x, p, traced=needs[1]) if needs[0] else None
    # a constant p of 3 makes x ** 2 a square, as f's own would be; a traced one, whatever its value, the power
    dx = needs[0] and times(multiply(p, (_power if needs[1] else power)(base, _minus_one(p, needs[1]))))
    dp = needs[1] and times(multiply(out, log(_one_where(x, x, traced=needs[0]))))
    return dx, dp


def _has_zero(values) -> bool:
    return bool(np.any(np.equal(values, 0)))


def _one_at_zero_power(x, p, traced):
    """x, with 1 where both x and p are 0 (for x ** (p - 1), 0 ** -1 = inf there). Whether a plain p holds
    a zero is observed: a compiled program checks it where p is an input (jit's f(w, p))."""
    if not traced and not observe(_has_zero, p):
        return x
    return where(logical_and(equal(x, 0.0), equal(p, 0.0)), 1.0, x)


def _minus_one(p, traced):
    # a constant exponent: x ** 3 differentiates through a square (a recomputed one, p - 1 of an argument p or
    # of a Hessian's recorded p - 1, through the primitive a program runs)
    return subtract(p, 1.0) if traced or not np.isscalar(p) or recomputed(p) else p - 1


def _one_where(x, zeros, traced):
    """x, with 1 wherever `zeros` is 0. A traced `zeros` always takes the `where`, so that the
    work is the same at every value (a tape's signature omits the values of traced operands)."""
    if not traced and not observe(_has_zero, zeros):
        return x
    return where(equal(zeros, 0.0), 1.0, x)


def power(x, p):
    """x ** p; the constant exponent 2 is `square` (N flops, not N transcendentals).

    Its slopes are 0 where p == 0 or (for the exponent's) x == 0, not NaN:

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.grad(lambda x: np.sum(x ** np.arange(3.0)))(np.zeros(3))
    array([0., 1., 0.])
    """
    if type(p) is int or type(p) is float:  # the usual case: a Python number keeps x's dtype
        return square(x) if p == 2 else _power(x, p)
    if getattr(p, "_trace", None) is None and np.ndim(p) == 0 and not recomputed(p) and p == 2:
        # np.float64(2), array(2), ... (an argument's 2 is one value of many: the general route)
        # a NumPy exponent takes part in the result's dtype (float32 ** np.float64(2) is float64)
        return square(as_float_dtype(x, np.result_type(getattr(x, "dtype", x), p)))
    return _power(x, p)


# a constant operand's zeros add a `where` to the rules (`_one_where`, `_one_at_zero_power`): whether it holds
# one keys its costs
_power = elementwise("power", np.power, in_result_dtype(_power_partials), cost=transcendental,
                     constant_key=_has_zero)


# --- transcendentals ----------------------------------------------------------
def _unary(name, impl, factor):
    return unary(name, impl, factor, cost=transcendental)


def _sech_squared(out):
    """tanh's slope 1 - tanh², from its output."""
    return subtract(1.0, square(out))


# 1 - x² as (1 - x)(1 + x): near |x| = 1 the square's rounding is most of what is left (4e-9 relative error in
# arctanh's slope at x = 1 - 7e-9), where 1 - x is exact. Its own slope is -2x, not the (1 - x) - (1 + x) that
# differentiating the product would give: that cancels near 0 (arcsin'' lost 1e-3 of its value at x = 1e-5 in
# float32). (tanh's 1 - out² gains nothing from the product: out's own rounding is what is lost where out nears
# ±1, 1e-8 of the slope at |x| = 10 and all of it past 19, as in JAX; 1 / cosh(x)² would cost a transcendental
# per element.)
one_minus_square = unary("one_minus_square", lambda x: (1.0 - x) * (1.0 + x),
                         lambda out, x: times(multiply(-2.0, x)), cost=PerElement(3, 0))


exp = _unary("exp", np.exp, lambda out, x: times(out))
expm1 = _unary("expm1", np.expm1, lambda out, x: times(exp(x)))  # out + 1 would be 0 below x = -37
log = _unary("log", np.log, lambda out, x: over(x))
log1p = _unary("log1p", np.log1p, lambda out, x: over(add(x, 1.0)))
sqrt = _unary("sqrt", np.sqrt, lambda out, x: over(multiply(2.0, out)))
sin = _unary("sin", np.sin, lambda out, x: times(cos(x)))
cos = _unary("cos", np.cos, lambda out, x: times(negative(sin(x))))
tan = _unary("tan", np.tan, lambda out, x: times(add(1.0, square(out))))
arcsin = _unary("arcsin", np.arcsin, lambda out, x: over(sqrt(one_minus_square(x))))
arccos = _unary("arccos", np.arccos, lambda out, x: over(negative(sqrt(one_minus_square(x)))))
arctan = _unary("arctan", np.arctan, lambda out, x: over(add(1.0, square(x))))
sinh = _unary("sinh", np.sinh, lambda out, x: times(cosh(x)))
cosh = _unary("cosh", np.cosh, lambda out, x: times(sinh(x)))
tanh = _unary("tanh", np.tanh, lambda out, x: times(_sech_squared(out)))
# 1 / sqrt(x² ± 1) without forming x², which overflows past 1.34e154 (a slope of 0 where it is 1 / |x|)
arcsinh = _unary("arcsinh", np.arcsinh, lambda out, x: over(hypot(x, 1.0)))
arccosh = _unary("arccosh", np.arccosh, lambda out, x: over(multiply(sqrt(subtract(x, 1.0)), sqrt(add(x, 1.0)))))
arctanh = _unary("arctanh", np.arctanh, lambda out, x: over(one_minus_square(x)))
log2 = _unary("log2", np.log2, lambda out, x: over(multiply(x, np.log(2.0))))
log10 = _unary("log10", np.log10, lambda out, x: over(multiply(x, np.log(10.0))))
exp2 = _unary("exp2", np.exp2, lambda out, x: times(multiply(out, np.log(2.0))))
cbrt = _unary("cbrt", np.cbrt, lambda out, x: over(multiply(3.0, square(out))))


# NumPy's own loops, whose constant is taken in x's precision (180f / πf for float32, float16 computed in
# float32), so that values are NumPy's bit for bit; the slope is the constant itself, in the seeds' dtype
rad2deg = unary("rad2deg", np.rad2deg, lambda out, x: times(180 / np.pi))
deg2rad = unary("deg2rad", np.deg2rad, lambda out, x: times(np.pi / 180))


def _arctan2_partials(needs, out, y, x):
    # x / r² and -y / r² as (x / r) / r with r = hypot(x, y): r² itself would under- or overflow where
    # x and y are below 1e-154 or above 1e154 (inf or 0 slopes where they are 5e199 or 5e-156)
    r = hypot(x, y)
    return needs[0] and times(divide(divide(x, r), r)), needs[1] and times(negative(divide(divide(y, r), r)))


arctan2 = elementwise("arctan2", np.arctan2, in_result_dtype(_arctan2_partials), cost=transcendental)


def _hypot_partials(needs, out, x, y):
    # x / out and y / out: each operand's share of the hypotenuse (`share`)
    return needs[0] and times(share(x, y)), needs[1] and times(share(y, x))


hypot = elementwise("hypot", np.hypot, _hypot_partials, cost=transcendental)


def _share_impl(a, b):
    """a / hypot(a, b), 0 where both are 0: a norm's slope 0 at the zero vector (`numpy_composites.norm_root`),
    not 0 / 0 = NaN, which a reverse sweep would spread to other rows."""
    r = np.hypot(a, b)
    return a / np.where(r == 0, 1.0, r)


def _share_partials(needs, out, a, b):
    # c = a / r, r = hypot(a, b): b² / r³ in a and -ab / r³ in b, as (s² / r, -c s / r) with s = b / r. As
    # 1/r - a² / r³ (a / r with r differentiated) the two terms cancel near the a axis (b ≪ a), and a
    # second derivative of hypot lost all its digits there (0 for 1e-18 at b / a = 1e-9).
    r, s = hypot(a, b), share(b, a)
    safe = where(equal(r, 0.0), 1.0, r)
    return needs[0] and times(divide(square(s), safe)), needs[1] and times(negative(divide(multiply(out, s), safe)))


#: a's share a / hypot(a, b) of the hypotenuse: hypot's slope in a, whose own slope stays accurate near an axis
share = elementwise("hypot_share", _share_impl, _share_partials, cost=PerElement(1, 1))


# --- kinks: one convention, JAX's -------------------------------------------
# At a tie the derivative is shared equally (maximum/minimum/clip give 1/2 to each
# side, as jax.numpy does); abs has derivative sign(x), so 0 at 0.
def tie_weight(a, b):
    """1 where a > b, 1/2 where a == b, 0 elsewhere: d max(a, b) / da."""
    return where(greater(a, b), 1.0, where(equal(a, b), 0.5, 0.0))


absolute = unary("absolute", np.absolute, lambda out, x: times(sign(x)))
maximum = elementwise(
    "maximum", np.maximum,
    lambda needs, out, x, y: (needs[0] and times(tie_weight(x, y)), needs[1] and times(tie_weight(y, x))),
)
minimum = elementwise(
    "minimum", np.minimum,
    lambda needs, out, x, y: (needs[0] and times(tie_weight(y, x)), needs[1] and times(tie_weight(x, y))),
)


def _clip_partials(needs, out, x, lo=None, hi=None):
    # Same derivative as jnp.clip = minimum(maximum(x, lo), hi).
    weights = [tie_weight(x, lo) if lo is not None else None, tie_weight(hi, x) if hi is not None else None]
    weights = [w for w in weights if w is not None]
    w = weights[0] if len(weights) == 1 else multiply(*weights)
    return (times(w),)


clip = elementwise("clip", lambda x, lo=None, hi=None: np.clip(x, lo, hi), _clip_partials, array_params=("lo", "hi"))


# fmax / fmin ignore a NaN operand: all of the derivative goes to the other one.
def nan_aware(weight, other):
    """`weight` (a `tie_weight`), and 1 where only the other operand is NaN."""
    return where(isnan(other), 1.0, weight)


fmax = elementwise("fmax", np.fmax, lambda needs, out, x, y: (
    needs[0] and times(nan_aware(tie_weight(x, y), y)), needs[1] and times(nan_aware(tie_weight(y, x), x))))
fmin = elementwise("fmin", np.fmin, lambda needs, out, x, y: (
    needs[0] and times(nan_aware(tie_weight(y, x), y)), needs[1] and times(nan_aware(tie_weight(x, y), x))))


where = elementwise(
    "where", np.where, lambda needs, out, cond, x, y: (None, select(cond, True), select(cond, False))
)


# --- division with an integer quotient ------------------------------------------
# x % y and fmod(x, y) are x - q * y with q piecewise constant (floor, resp. trunc, of x / y):
# 1 for x and -q for y, as in jax.numpy. NumPy computes floor_divide and remainder together,
# so q and the remainder agree even next to a jump, where x / y rounds to an integer.
remainder = elementwise(
    "remainder", np.remainder,
    lambda needs, out, x, y: (ID, needs[1] and times(negative(floor_divide(x, y)))),
)
# fmod's quotient from its own exact remainder, (x - out) / y rounded: trunc(x / y) is one more where x / y
# rounds up to an integer (fmod(1.0, 0.1) = 0.09999999999999995: the quotient is 9, not 10)
fmod = elementwise(
    "fmod", np.fmod,
    lambda needs, out, x, y: (ID, needs[1] and times(negative(rint(divide(subtract(x, out), y))))),
)


# --- conversion between float dtypes ------------------------------------------------
def _astype_vjp(needs, out, x, dtype):
    source = np.result_type(x)  # the cotangent goes back in the operand's dtype
    return lambda g: (astype(g, dtype=source) if needs[0] else None,)


#: x as another float dtype (float32 -> float64 and back): the derivative is the identity, in
#: the new dtype; moving values costs nothing, as for reshape.
astype = register(Primitive(
    "astype", lambda x, dtype: np.asarray(x).astype(dtype), free,
    jvp=lambda tangents, out, x, dtype: astype(tangents[0], dtype=dtype), vjp=_astype_vjp,
    structure="elementwise", array_params=(),
))


def as_float_dtype(x, dtype):
    """x in the float dtype `dtype`: itself when it already is, else `astype` (plain arrays too, which may be
    inputs of a compiled program)."""
    dtype = np.dtype(dtype)
    if isinstance(x, (list, tuple)):  # a matrix written as lists (np.linalg.solve([[2., 1.], [1., 3.]], v))
        x = np.asarray(x)
    if np.result_type(x) == dtype:
        return x
    return astype(x, dtype=dtype) if isinstance(x, (ndarray, np.generic)) or getattr(x, "_trace", None) is not None \
        else np.asarray(x, dtype)


# --- operations without a derivative -------------------------------------------
sign = nondifferentiable("sign", np.sign)
floor = nondifferentiable("floor", np.floor)
ceil = nondifferentiable("ceil", np.ceil)
rint = nondifferentiable("rint", np.rint)
trunc = nondifferentiable("trunc", np.trunc)
floor_divide = nondifferentiable("floor_divide", np.floor_divide)
signbit = nondifferentiable("signbit", np.signbit)
heaviside = nondifferentiable("heaviside", np.heaviside)
greater = nondifferentiable("greater", np.greater)
greater_equal = nondifferentiable("greater_equal", np.greater_equal)
less = nondifferentiable("less", np.less)
less_equal = nondifferentiable("less_equal", np.less_equal)
equal = nondifferentiable("equal", np.equal)
not_equal = nondifferentiable("not_equal", np.not_equal)
isnan = nondifferentiable("isnan", np.isnan)
isinf = nondifferentiable("isinf", np.isinf)
isfinite = nondifferentiable("isfinite", np.isfinite)
logical_not = nondifferentiable("logical_not", np.logical_not)
logical_and = nondifferentiable("logical_and", np.logical_and)
logical_or = nondifferentiable("logical_or", np.logical_or)
logical_xor = nondifferentiable("logical_xor", np.logical_xor)
#: x's values with no derivative (jax.lax.stop_gradient): a rule's correction that must not
#: change the slope, as corrcoef's clip of rounding past ±1
stop_gradient = nondifferentiable("stop_gradient", lambda x: x, cost=PerElement(0, 0))
