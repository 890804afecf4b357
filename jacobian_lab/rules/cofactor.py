"""The cofactor matrix: the gradient of det, and its derivative, at every matrix.

The cofactor matrix C(a) = det(a) a⁻ᵀ is a polynomial in a's entries, defined
where a is singular too, and there det · a⁻ᵀ loses every digit: its relative
error is about cond(a) times the rounding unit. `lu_cofactor` computes it so, by
LU (about 3n³ flops); `cofactor_of` takes that where every matrix is well
conditioned (cond₁ ≤ ε^(-1/4), so within ε^(3/4) of C's largest entries) and
otherwise `cofactor`, which computes C and its derivative from the SVD
a = U diag(s) Vᵀ (about 25n³ flops; accurate relative to C's largest entries
at any matrix), since C is multiplicative:
C(a) = det(U) det(V) U C(diag(s)) Vᵀ, where C(diag(s)) = diag(∏_{j≠i} s_j).
Perturbing diag(s) by E = Uᵀ ȧ V gives the derivative with no division:

    dC(diag(s))[E]_ij = δ_ij Σ_{k≠i} P_ik E_kk − (1 − δ_ij) P_ij E_ji,   P_ik = ∏_{l≠i,k} s_l.

The derivative is the Hessian of det applied to ȧ, a symmetric operator, so the
same map is its own transpose: `cofactor_tangent` serves both rules.

The SVD's singular values are accurate relative to the largest one, so a
graded matrix (diag(1e-200, 1e-200, 1e300)) would lose its small ones, and the
cofactors built from them. Both impls therefore work on b = D_r a D_c, a's rows
and columns scaled by powers of 2 (exactly) to largest entries of about 1, and
scale back by C(a) = D_r C(b) D_c / det(D_r D_c), which follows from
C(m) = det(m) m⁻ᵀ; likewise dC(a)[ȧ] = D_r dC(b)[D_r ȧ D_c] D_c / det(D_r D_c).
"""
from __future__ import annotations

import numpy as np

from ..primitives import DerivativeError, Primitive, observe, primal, register
from . import elementwise as E
from . import reductions as R
from . import shape as S
from .linalg import finite_svd, matmul, swap


def _svd(a):
    """U, s, Vᵀ of each matrix, and det(U) det(V) (±1) in the shape of s's batch; NaN where a is not finite."""
    u, s, vh = finite_svd(a)
    finite = np.isfinite(s).all(axis=-1)
    ok = finite[..., None, None]  # det of a NaN matrix warns: the NaN ones are set apart first
    sign = np.sign(np.linalg.det(np.where(ok, u, 0.0)) * np.linalg.det(np.where(ok, vh, 0.0)))
    return u, s, vh, np.where(finite, sign, np.nan)


def _products_before(s):
    """The product of the entries before each one along the last axis, as mantissas and exponents
    of 2 (np.frexp's): a running product of singular values can leave the float range (a 300×300
    Gaussian matrix's largest ones multiply past 1e308) where the cofactors do not."""
    mantissas, exponents = np.empty_like(s), np.empty(s.shape, dtype=np.int64)
    m, e = np.ones(s.shape[:-1], dtype=s.dtype), np.zeros(s.shape[:-1], dtype=np.int64)
    for i in range(s.shape[-1]):
        mantissas[..., i], exponents[..., i] = m, e
        m, shift = np.frexp(m * s[..., i])
        e = e + shift
    return mantissas, exponents


def _exclusive_products(s):
    """∏_{j≠i} s_j along the last axis as mantissas and exponents, from the products before and after
    each entry (no division)."""
    (m_before, e_before), (m_after, e_after) = _products_before(s), _products_before(s[..., ::-1])
    return m_before * m_after[..., ::-1], e_before + e_after[..., ::-1]


def _scaled(mantissas, exponents, axes):
    """The products over `axes` (one matrix's) as floats, and the exponent of a power of 2 they are
    divided by (keepdims): none (0) unless the largest would come within 2**24 of the float range
    (2**1000 in float64), so that the sums built from them stay in range where the result does, and an
    entry that overflows is inf, not NaN by inf · 0."""
    lowest = np.iinfo(np.int64).min
    largest = np.where(mantissas != 0, exponents, lowest).max(axis=axes, keepdims=True, initial=lowest)
    top = np.maximum(largest - (np.finfo(mantissas.dtype).maxexp - 24), 0)  # a 0 sets no scale
    return np.ldexp(mantissas, np.maximum(exponents - top, -(1 << 20))), top  # far below the largest: 0


def _balancing(a):
    """The exponents (…, n, n) that scale a's rows, then its columns, to largest entries in [1/2, 1): b =
    ldexp(a, shift) is D_r a D_c, exactly; and those C(b) is scaled back by, D_r (·) D_c / det(D_r D_c). A row
    or column of zeros (or of non-finite entries, which give NaN anyway) is left as it is."""
    magnitudes = np.abs(a)
    with np.errstate(invalid="ignore"):  # NaN entries: the NaN is the result, as without the scaling
        rows = -np.frexp(magnitudes.max(axis=-1, initial=0.0))[1]
        columns = -np.frexp((magnitudes * np.ldexp(1.0, rows)[..., None]).max(axis=-2, initial=0.0))[1]
    shift = rows[..., :, None] + columns[..., None, :]
    total = rows.sum(axis=-1) + columns.sum(axis=-1)
    return shift, shift - total[..., None, None]


def _cofactor_impl(a):
    shift, back = _balancing(a)
    u, s, vh, sign = _svd(np.ldexp(a, shift))
    scales, top = _scaled(*_exclusive_products(s), axes=-1)
    with np.errstate(over="ignore"):  # a cofactor past the float range is ±inf, as det's own value would be
        return np.ldexp((u * (sign[..., None] * scales)[..., None, :]) @ vh, top[..., None] + back)


def _pair_products(s):
    """P_ik = ∏_{l≠i,k} s_l for i ≠ k, and 0 on the diagonal, scaled as `_scaled`: (…, n) -> (…, n, n)
    and the exponent (…, 1, 1)."""
    eye = np.eye(s.shape[-1], dtype=bool)
    without_i = np.where(eye, 1.0, s[..., None, :]).astype(s.dtype)  # row i: s with s_i replaced by 1
    mantissas, exponents = _exclusive_products(without_i)
    return _scaled(np.where(eye, 0.0, mantissas).astype(s.dtype), exponents, axes=(-2, -1))


def _cofactor_tangent_impl(a, t):
    shift, back = _balancing(a)
    u, s, vh, sign = _svd(np.ldexp(a, shift))
    pairs, top = _pair_products(s)
    pairs = sign[..., None, None] * pairs
    e = np.swapaxes(u, -1, -2) @ np.ldexp(t, shift) @ np.swapaxes(vh, -1, -2)  # Uᵀ ȧ V, for every seed
    on_diagonal = (pairs @ np.diagonal(e, axis1=-2, axis2=-1)[..., None])[..., 0]
    change = pairs * -np.swapaxes(e, -1, -2)
    diagonal = np.einsum("...ii->...i", change)  # a writable view: pairs' diagonal is 0
    diagonal += on_diagonal
    with np.errstate(over="ignore"):
        return np.ldexp(u @ change @ vh, top + back)


# --- costs: a's balancing (n² scalings), the SVD with vectors (14n³ + 8n³, Golub & Van Loan) and a
# factorization of U and of V for the sign ⌊2n³/3⌋ each, once per matrix of a; then what each formula
# computes from them.
def _factors(n):
    return n * n + 22 * n ** 3 + 2 * (2 * n ** 3 // 3)


def _matrices(x):
    shape = np.shape(x)
    return int(np.prod(shape[:-2], dtype=np.int64)), shape[-1]


def _cofactor_cost(out, a):
    # the n exclusive products (2(n − 1) for the running products, n to join them), n sign
    # multiplies, n² to scale U's columns, 2n³ for the product with Vᵀ
    count, n = _matrices(a)
    return count * (_factors(n) + max(3 * n - 2, 0) + n + n * n + 2 * n ** 3), 0


def _cofactor_tangent_cost(out, a, t):
    # once per matrix of a: P (n rows of exclusive products, 3n − 2 each, and n² sign multiplies);
    # per output matrix (each seed's): ȧ's balancing (n²), Uᵀ ȧ V and U (·) Vᵀ (8n³), P·diag(E) (a matmul,
    # 2n²), −P ⊙ Eᵀ (2n²) and the diagonal's n adds
    count, n = _matrices(a)
    per_a = _factors(n) + n * max(3 * n - 2, 0) + n * n
    return count * per_a + (out.size // (n * n) if n else 0) * (8 * n ** 3 + 5 * n * n + n), 0


def _cofactor_jvp(tangents, out, a):
    return cofactor_tangent(a, tangents[0])


def _cofactor_vjp(needs, out, a):
    return lambda g: (cofactor_tangent(a, g) if needs[0] else None,)


def _second_change(out, a, t, h):
    """d²C[t, h], the cofactor matrix's derivative at a in the direction t (`out`: dC[t]) differentiated in
    the direction h: det's third derivative, from C(a) = det(a) Bᵀ with B = a⁻¹,

        d²C[t, h] = tr(Bh) dC[t] + det(a) ((BhBtB + BtBhB)ᵀ − tr(BhBt) Bᵀ − tr(Bt) (BhB)ᵀ),

    written with primitives, so that every further order follows. Accurate where a is well conditioned
    (`_conditioned_for_inverse`, a decision on values), and refused elsewhere: through a⁻¹ it would lose
    every digit near a singular matrix, where it still exists."""
    from .lu import det, inv  # lu takes det's gradient from this module

    if not observe(_conditioned_for_inverse, primal(a)):
        raise DerivativeError(
            "det's third derivative (the derivative of its Hessian) is computed through a⁻¹, and a is singular or "
            "nearly so (cond₁(a) > ε^(-1/4), 1e4 in float64), where that would lose every digit: it is supported "
            "at well-conditioned matrices only")

    def trace(x, y=None):  # tr(xy), or tr(x), of each matrix, as (…, 1, 1)
        product = E.multiply(x, swap(y) if y is not None else np.eye(np.shape(x)[-1]))
        return R.sum(product, axis=(product.ndim - 2, product.ndim - 1), keepdims=True)

    b = inv(a)
    bh, bt = matmul(b, h), matmul(b, t)
    bhb, btb = matmul(bh, b), matmul(bt, b)
    paths = E.add(matmul(bh, btb), matmul(bt, bhb))  # BhBtB + BtBhB
    inner = E.subtract(swap(paths), E.add(E.multiply(trace(bh, bt), swap(b)), E.multiply(trace(bt), swap(bhb))))
    return E.add(E.multiply(trace(bh), out), E.multiply(S.reshape(det(a), np.shape(a)[:-2] + (1, 1)), inner))


def _conditioned_for_inverse(a) -> bool:
    """Whether every matrix of a has cond₁(a) ≤ ε^(-1/4) (1e4 in float64), as `_well_conditioned` asks of the
    LU route to the cofactor matrix."""
    with np.errstate(all="ignore"):
        cond = np.linalg.cond(a, 1) if np.size(a) else np.zeros(0)
    return bool(np.all(cond * np.finfo(np.result_type(a, np.float32)).eps ** 0.25 <= 1.0))


def _cofactor_tangent_jvp(tangents, out, a, t):
    ta, tt = tangents
    result = None if tt is None else cofactor_tangent(a, S.align(tt, np.ndim(out)))  # t's seeds before a's matrices
    if ta is None:
        return result
    second = _second_change(out, a, t, S.align(ta, np.ndim(out)))
    return second if result is None else E.add(result, second)


def _cofactor_tangent_vjp(needs, out, a, t):
    def pullback(g):  # the map is its own transpose (see the module's docstring), and det's third derivative
        # symmetric in its three directions: a's cotangent is d²C[t, g]
        return (S.unbroadcast(_second_change(out, a, t, g), np.shape(a)) if needs[0] else None,
                S.unbroadcast(cofactor_tangent(a, g), np.shape(t)) if needs[1] else None)

    return pullback


#: The cofactor matrix det(a) a⁻ᵀ of each n×n matrix of a (…, n, n): det's gradient.
cofactor = register(Primitive("cofactor", _cofactor_impl, _cofactor_cost, jvp=_cofactor_jvp, vjp=_cofactor_vjp))
#: The cofactor matrix's derivative at a in the direction t (…, n, n): linear in t, and
#: broadcast against a (a seed axis of t included).
cofactor_tangent = register(Primitive(
    "cofactor_tangent", _cofactor_tangent_impl, _cofactor_tangent_cost,
    jvp=_cofactor_tangent_jvp, vjp=_cofactor_tangent_vjp,
))


# --- the LU route, where a is well conditioned ------------------------------------------------
def _lu_cofactor_impl(a):
    with np.errstate(all="ignore"):  # an overflowing det is inf, as det's own value
        try:
            inverse = np.linalg.inv(a)
        except np.linalg.LinAlgError:  # an exactly singular matrix: `cofactor_of` takes the SVD's
            return np.full(np.shape(a), np.nan, np.result_type(a, np.float64) if np.ndim(a) else float)
        return np.linalg.det(a)[..., None, None] * np.swapaxes(inverse, -1, -2)


def _lu_cofactor_cost(out, a):
    # det's factorization ⌊2n³/3⌋ and inv's 2n³ (LAPACK's counts, as `rules.lu`), then n² products
    count, n = _matrices(a)
    return count * (2 * n ** 3 // 3 + 2 * n ** 3 + n * n), 0


#: C(a) = det(a) a⁻ᵀ by LU: accurate where a is well conditioned (see `cofactor_of`), NaN where it is singular.
lu_cofactor = register(Primitive("lu_cofactor", _lu_cofactor_impl, _lu_cofactor_cost, jvp=_cofactor_jvp,
                                 vjp=_cofactor_vjp))


def _well_conditioned(a, c, det) -> bool:
    """Whether every matrix of a has cond₁(a) = ‖a‖₁ ‖a⁻¹‖₁ ≤ ε^(-1/4), with a⁻¹ = Cᵀ / det, so that
    C = det a⁻ᵀ by LU is within ε^(3/4) of C's largest entries (1.8e-12 in float64), and a det that is
    a normal float (a subnormal one has lost bits, and C with it)."""
    if not np.isfinite(c).all() or np.any(np.abs(det) < np.finfo(c.dtype).tiny):  # a subnormal det lost bits
        return False
    if not c.size:  # 0 x 0 matrices: nothing to lose
        return True
    with np.errstate(all="ignore"):
        norm_a = np.abs(a).sum(axis=-2).max(axis=-1)  # the largest column sum
        norm_inverse = np.abs(c).sum(axis=-1).max(axis=-1) / np.abs(det)  # Cᵀ's largest column sum
        return bool(np.all(norm_a * norm_inverse * np.finfo(c.dtype).eps ** 0.25 <= 1.0))


def by_lu(det, a) -> bool:
    """The route `cofactor_of` takes at a (det's `Primitive.route`): LU, or the SVD. Plain NumPy on the
    values, uncounted: the key of a cost, not work of the Jacobian's.

    >>> a, singular = np.eye(3), np.ones((3, 3))
    >>> by_lu(np.linalg.det(a), a), by_lu(np.linalg.det(singular), singular)
    (True, False)
    """
    return _well_conditioned(a, _lu_cofactor_impl(a), det)


def cofactor_of(a, det):
    """det(a) a⁻ᵀ for det's rules (`det` its value): by LU where every matrix of a is well conditioned,
    else from the SVD. Which route is a decision on values: a compiled replay checks it again."""
    c = lu_cofactor(a)
    if observe(_well_conditioned, primal(a), primal(c), primal(det)):
        return c
    return cofactor(a)

