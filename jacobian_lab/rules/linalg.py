"""matmul on BLAS, and solve, inv, det and slogdet on LAPACK's LU factorization.

(…, m, k) @ (…, k, n) costs 2·m·k·n flops per batch entry. The rules promote
1-D operands to matrices (a row on the left, a column on the right) and give
seed-batched values unit batch axes so they broadcast against the other
operand; a vector operand never meets the seed axis by accident.

When the other operand is one plain matrix or vector (the usual `W @ x`,
`X @ W`, `h @ w`), the seed axis folds into matrix rows instead: k seeds make
one BLAS matrix-matrix product rather than k broadcast products (for a vector
operand, k matrix-vector products). The flops are the same per seed either
way, so the counts do not depend on which form ran.

solve takes NumPy 2's matrix form, b (…, n, r); its rules solve with a (and
aᵀ) again rather than keep a factorization, folding the seeds of a pass into
extra right-hand sides so that one matrix is factorized once per pass. det and
slogdet differentiate through a⁻ᵀ, built once per pass or tape.
"""
from __future__ import annotations

import math

import numpy as np

from ..primitives import Primitive, register
from . import elementwise as E
from . import reductions as R
from . import shape as S


def _as_matrices(a_shape, b_shape):
    a2 = tuple(a_shape) if len(a_shape) >= 2 else (1,) + tuple(a_shape)
    b2 = tuple(b_shape) if len(b_shape) >= 2 else tuple(b_shape) + (1,)
    return a2, b2


def _out_matrix_shape(a2, b2):
    batch = a2[:-2] if a2[:-2] == b2[:-2] else np.broadcast_shapes(a2[:-2], b2[:-2])
    return batch + (a2[-2], b2[-1])


def _matmul_cost(out, a, b):
    # 2·m·k·n per batch entry = 2 · (elements of the output) · (inner dimension k):
    # the output holds every batch entry's m·n values (a 1-D operand's unit axis dropped).
    inner = a.shape[-1] if type(a) is np.ndarray else np.shape(a)[-1]  # np.shape dispatches: slow per call
    return 2 * out.size * inner, 0


def _seeded(t, shape2, ndim):
    """(k, *shape) -> (k, 1, ..., *shape2), ndim axes after the seed axis."""
    return S.align(S.reshape(t, (S.batch(t),) + shape2), ndim)


def _matrix(v, shape2):
    """A primal operand as its promoted matrix; no reshape when it already is one."""
    return v if np.shape(v) == shape2 else S.reshape(v, shape2)


def _swap(v):
    axes = tuple(range(np.ndim(v)))
    return S.transpose(v, axes[:-2] + (axes[-1], axes[-2]))


def _matmul_jvp(tangents, out, a, b):
    a_shape, b_shape = np.shape(a), np.shape(b)
    a2, b2 = _as_matrices(a_shape, b_shape)
    nd = len(_out_matrix_shape(a2, b2))
    ta, tb = tangents
    k = (ta if ta is not None else tb).shape[0]
    target = (k,) + np.shape(out)
    total = None
    rows = math.prod(a2[:-1])  # a's rows, its batch axes included
    if ta is not None:
        if len(b_shape) <= 2:  # (k·rows, n) @ b: one product for every seed
            term = matmul(S.as_shape(ta, (k * rows, a2[-1])), _matrix(b, b2))
        else:
            term = matmul(_seeded(ta, a2, nd), _matrix(b, b2))
        total = S.as_shape(term, target)
    if tb is not None:
        if len(b_shape) == 1:  # a @ t for k vectors t is (k, n) @ aᵀ
            term = matmul(tb, _swap(_matrix(a, (rows, a2[-1]))))
        else:
            term = matmul(_matrix(a, a2), _seeded(tb, b2, nd))
        term = S.as_shape(term, target)
        total = term if total is None else E.add(total, term)
    return total


def _matmul_vjp(needs, out, a, b):
    a_shape, b_shape = np.shape(a), np.shape(b)
    a2, b2 = _as_matrices(a_shape, b_shape)
    out2 = _out_matrix_shape(a2, b2)
    a_mat, b_mat = _matrix(a, a2), _matrix(b, b2)
    # b one matrix (or vector): g @ bᵀ for every seed at once. b a vector and a one
    # matrix: the cotangent of b is g @ a, seeds as rows. Batched operands keep the
    # broadcasting form, whose unbroadcast sums are part of the counted work.
    fold_a, fold_b = len(b_shape) <= 2, len(b_shape) == 1 and len(a_shape) <= 2
    b_t = _swap(b_mat) if needs[0] else None
    a_t = _swap(a_mat) if needs[1] and not fold_b else None
    rows = math.prod(a2[:-1])

    def pullback(g):
        k = g.shape[0]
        ga = gb = None
        if needs[0]:
            if fold_a:
                ga = S.as_shape(matmul(S.as_shape(g, (k * rows, b2[-1])), b_t), (k,) + a_shape)
            else:
                g2 = S.as_shape(g, (k,) + out2)
                ga = S.as_shape(S.unbroadcast(matmul(g2, b_t), a2), (k,) + a_shape)
        if needs[1]:
            if fold_b:
                gb = matmul(S.as_shape(g, (k, a2[-2])), a_mat)
            else:
                g2 = S.as_shape(g, (k,) + out2)
                gb = S.as_shape(S.unbroadcast(matmul(a_t, g2), b2), (k,) + b_shape)
        return ga, gb

    return pullback


def _matmul_impl(a, b):
    # Inner dimension 1 is an outer product: each entry is one product, no sum, so a
    # broadcast multiply gives the same values, about twice as fast as NumPy's matmul.
    if getattr(a, "ndim", 0) == 2 and getattr(b, "ndim", 0) == 2 and a.shape[1] == 1 == b.shape[0]:
        return np.multiply(a, b)
    return np.matmul(a, b)


matmul = register(Primitive("matmul", _matmul_impl, _matmul_cost, jvp=_matmul_jvp, vjp=_matmul_vjp))


# --- solve, inv, det: LAPACK's LU factorization ---------------------------------------
# Per n×n matrix, by the usual LAPACK counts: the factorization ⌊2n³/3⌋, then 2n² per
# right-hand side (two triangular solves); inv 2n³; det and slogdet the factorization.
def _matrices(a):
    """How many n×n matrices a (…, n, n) stacks, and n."""
    return math.prod(np.shape(a)[:-2]), np.shape(a)[-1]


def _lu(n):
    return 2 * n ** 3 // 3


def _solve_cost(out, a, b):
    n, r = np.shape(a)[-1], out.shape[-1]
    return (out.size // (n * r) if n * r else 0) * (_lu(n) + 2 * n * n * r), 0


def _solve_seeded(a, rhs):
    """solve(a, rhs) for seed-batched right-hand sides (k, …, n, r).

    With one matrix a, every seed's columns join one solve, so a is factorized
    once per pass rather than once per seed; a stack of matrices broadcasts.
    """
    if np.ndim(a) > 2:
        return solve(a, rhs)
    axes = tuple(range(rhs.ndim))
    moved = S.transpose(rhs, (axes[-2],) + axes[:-2] + axes[-1:])  # (n, k, …, r)
    n = np.shape(a)[-1]
    x = solve(a, S.reshape(moved, (n, moved.size // n if n else 0)))
    back = S.reshape(x, moved.shape)
    return S.transpose(back, tuple(range(1, rhs.ndim - 1)) + (0, rhs.ndim - 1))


def _solve_jvp(tangents, out, a, b):
    # x = a⁻¹ b: ẋ = a⁻¹ (ḃ − ȧ x)
    ta, tb = (None if t is None else S.align(t, np.ndim(out)) for t in tangents)
    rhs = None if ta is None else E.negative(matmul(ta, out))
    if tb is not None:
        rhs = tb if rhs is None else E.add(rhs, tb)
    k = rhs.shape[0]
    rhs = S.as_shape(S.broadcast_batched(rhs, np.shape(out)), (k,) + np.shape(out))
    return _solve_seeded(a, rhs)


def _solve_vjp(needs, out, a, b):
    a_t, out_t = _swap(a), (_swap(out) if needs[0] else None)

    def pullback(g):
        gb = _solve_seeded(a_t, g)  # b̄ = a⁻ᵀ ḡ, and ā = −b̄ xᵀ
        ga = S.unbroadcast(E.negative(matmul(gb, out_t)), np.shape(a)) if needs[0] else None
        return ga, (S.unbroadcast(gb, np.shape(b)) if needs[1] else None)

    return pullback


#: solve(a, b) for a (…, n, n) and b (…, n, r): NumPy 2's matrix form (`numpy_api` turns a
#: vector b into one column).
solve = register(Primitive("solve", np.linalg.solve, _solve_cost, jvp=_solve_jvp, vjp=_solve_vjp))


def _inv_jvp(tangents, out, a):
    return E.negative(matmul(matmul(out, tangents[0]), out))  # d(a⁻¹) = −a⁻¹ ȧ a⁻¹


def _unneeded(g):
    return (None,)


def _inv_vjp(needs, out, a):
    if not needs[0]:
        return _unneeded
    out_t = _swap(out)
    return lambda g: (E.negative(matmul(matmul(out_t, g), out_t)),)


def _inv_cost(out, a):
    count, n = _matrices(a)
    return count * 2 * n ** 3, 0


inv = register(Primitive("inv", np.linalg.inv, _inv_cost, jvp=_inv_jvp, vjp=_inv_vjp))


def _inverse_transpose(a):
    """a⁻ᵀ, the gradient of log|det a|; at a singular a it does not exist, and neither does this rule's."""
    try:
        return _swap(inv(a))
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(
            "the derivative of det/slogdet at a singular matrix is not supported (it needs the adjugate); "
            "perturb the matrix or differentiate a formula that avoids the determinant"
        ) from None


def _logdet_jvp(tangents, out, a):
    # d log|det a| = tr(a⁻¹ ȧ) = Σ a⁻ᵀ ⊙ ȧ over the last two axes
    t = tangents[0]
    return R.sum(E.multiply(_inverse_transpose(a), t), axis=(t.ndim - 2, t.ndim - 1), keepdims=False)


def _logdet_vjp(needs, out, a):
    if not needs[0]:
        return _unneeded
    a_inv_t = _inverse_transpose(a)
    return lambda g: (E.multiply(S.reshape(g, g.shape + (1, 1)), a_inv_t),)  # ḡ a⁻ᵀ per matrix


def _det_cost(out, a):
    count, n = _matrices(a)
    return count * _lu(n), 0


def _det_jvp(tangents, out, a):
    return E.multiply(_logdet_jvp(tangents, out, a), out)  # d det = det · tr(a⁻¹ ȧ)


def _det_vjp(needs, out, a):
    if not needs[0]:
        return _unneeded
    pullback = _logdet_vjp(needs, out, a)
    scale = S.reshape(out, np.shape(out) + (1, 1)) if np.ndim(out) else out
    return lambda g: (E.multiply(pullback(g)[0], scale),)


det = register(Primitive("det", np.linalg.det, _det_cost, jvp=_det_jvp, vjp=_det_vjp))
logabsdet = register(Primitive(
    "logabsdet", lambda a: np.linalg.slogdet(a)[1], _det_cost, jvp=_logdet_jvp, vjp=_logdet_vjp,
))
#: slogdet's sign: piecewise constant, so no derivative (evaluated on values, like a comparison)
det_sign = register(Primitive("det_sign", lambda a: np.linalg.slogdet(a)[0], _det_cost, differentiable=False))
