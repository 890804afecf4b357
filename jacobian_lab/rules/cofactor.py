"""The cofactor matrix: the gradient of det, and its derivative, at every matrix.

The cofactor matrix C(a) = det(a) a⁻ᵀ is a polynomial in a's entries, defined
where a is singular too, and there det · a⁻ᵀ loses every digit. Both are
computed from the SVD a = U diag(s) Vᵀ, since C is multiplicative:
C(a) = det(U) det(V) U C(diag(s)) Vᵀ, where C(diag(s)) = diag(∏_{j≠i} s_j).
Perturbing diag(s) by E = Uᵀ ȧ V gives the derivative with no division:

    dC(diag(s))[E]_ij = δ_ij Σ_{k≠i} P_ik E_kk − (1 − δ_ij) P_ij E_ji,   P_ik = ∏_{l≠i,k} s_l.

The derivative is the Hessian of det applied to ȧ, a symmetric operator, so the
same map is its own transpose: `cofactor_tangent` serves both rules.
"""
from __future__ import annotations

import numpy as np

from ..primitives import DerivativeError, Primitive, register
from . import shape as S


def _svd(a):
    """U, s, Vᵀ of each matrix, and det(U) det(V) (±1) in the shape of s's batch; NaN where a is not finite."""
    finite = np.isfinite(a).all(axis=(-2, -1))
    u, s, vh = np.linalg.svd(np.where(finite[..., None, None], a, 0.0))
    sign = np.where(finite, np.sign(np.linalg.det(u) * np.linalg.det(vh)), np.nan)
    return u, s, vh, sign


def _exclusive_products(s):
    """∏_{j≠i} s_j along the last axis, from the products before and after each entry (no division)."""
    ones = np.ones_like(s[..., :1])
    before = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return before * after


def _cofactor_impl(a):
    u, s, vh, sign = _svd(a)
    return (u * (sign[..., None] * _exclusive_products(s))[..., None, :]) @ vh


def _pair_products(s):
    """P_ik = ∏_{l≠i,k} s_l for i ≠ k, and 0 on the diagonal: (…, n) -> (…, n, n)."""
    n = s.shape[-1]
    eye = np.eye(n, dtype=bool)
    without_i = np.where(eye, 1.0, s[..., None, :]).astype(s.dtype)  # row i: s with s_i replaced by 1
    return np.where(eye, 0.0, _exclusive_products(without_i)).astype(s.dtype)


def _cofactor_tangent_impl(a, t):
    u, s, vh, sign = _svd(a)
    pairs = sign[..., None, None] * _pair_products(s)
    e = np.swapaxes(u, -1, -2) @ t @ np.swapaxes(vh, -1, -2)  # Uᵀ ȧ V, for every seed
    on_diagonal = (pairs @ np.diagonal(e, axis1=-2, axis2=-1)[..., None])[..., 0]
    change = pairs * -np.swapaxes(e, -1, -2)
    diagonal = np.einsum("...ii->...i", change)  # a writable view: pairs' diagonal is 0
    diagonal += on_diagonal
    return u @ change @ vh


# --- costs: the SVD with vectors (14n³ + 8n³, Golub & Van Loan) and a factorization of U and of
# V for the sign ⌊2n³/3⌋ each, once per matrix of a; then what each formula computes from them.
def _factors(n):
    return 22 * n ** 3 + 2 * (2 * n ** 3 // 3)


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
    # per output matrix (each seed's): Uᵀ ȧ V and U (·) Vᵀ (8n³), P·diag(E) (2n² − n), −P ⊙ Eᵀ (2n²),
    # and the diagonal's n adds
    count, n = _matrices(a)
    per_a = _factors(n) + n * max(3 * n - 2, 0) + n * n
    return count * per_a + (out.size // (n * n) if n else 0) * (8 * n ** 3 + 4 * n * n), 0


def _cofactor_jvp(tangents, out, a):
    return cofactor_tangent(a, tangents[0])


def _cofactor_vjp(needs, out, a):
    return lambda g: (cofactor_tangent(a, g) if needs[0] else None,)


def _cofactor_tangent_jvp(tangents, out, a, t):
    if tangents[0] is not None:
        raise DerivativeError("third derivatives of det (the derivative of its cofactor matrix's derivative) "
                              "are not supported")
    return cofactor_tangent(a, S.align(tangents[1], np.ndim(out)))  # t's seeds before a's matrices


def _cofactor_tangent_vjp(needs, out, a, t):
    def pullback(g):  # the map is its own transpose (see the module's docstring)
        if needs[0]:
            raise DerivativeError("third derivatives of det (the derivative of its cofactor matrix's "
                                  "derivative) are not supported")
        return None, (S.unbroadcast(cofactor_tangent(a, g), np.shape(t)) if needs[1] else None)

    return pullback


#: The cofactor matrix det(a) a⁻ᵀ of each n×n matrix of a (…, n, n): det's gradient.
cofactor = register(Primitive("cofactor", _cofactor_impl, _cofactor_cost, jvp=_cofactor_jvp, vjp=_cofactor_vjp))
#: The cofactor matrix's derivative at a in the direction t (…, n, n): linear in t, and
#: broadcast against a (a seed axis of t included).
cofactor_tangent = register(Primitive(
    "cofactor_tangent", _cofactor_tangent_impl, _cofactor_tangent_cost,
    jvp=_cofactor_tangent_jvp, vjp=_cofactor_tangent_vjp,
))
