"""solve, inv, det and slogdet on LAPACK's LU factorization.

solve takes NumPy 2's matrix form, b (…, n, r); its rules fold the seeds of a
pass into extra right-hand sides, so that one matrix is factorized once per
pass, and reverse mode keeps one matrix's factorization for the whole tape
(`lu_factor`, then `lu_solve` per pass, as JAX's transpose of a solve does). slogdet
differentiates through a⁻ᵀ, det through its cofactor matrix (by LU where a is
well conditioned, else from the SVD, defined at a singular matrix too: see
`rules.cofactor`), each built once per pass or tape.
"""
from __future__ import annotations

import math

import numpy as np

from ..primitives import DerivativeError, Primitive, is_traced, register
from . import elementwise as E
from . import reductions as R
from . import shape as S
from .cofactor import by_lu, cofactor_of
from .linalg import matmul, swap


# --- solve, inv, det: LAPACK's LU factorization ---------------------------------------
# Per n×n matrix, by the usual LAPACK counts: the factorization ⌊2n³/3⌋, then 2n² per
# right-hand side (two triangular solves); inv 2n³; det and slogdet the factorization.
def matrices(a):
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
    return _folded(lambda columns: solve(a, columns), rhs)


def _folded(solved, rhs):
    """``solved`` (a solve of one (n, K) right-hand side) applied to seed-batched (k, …, n, r) ones,
    their columns side by side."""
    axes = tuple(range(rhs.ndim))
    moved = S.transpose(rhs, (axes[-2],) + axes[:-2] + axes[-1:])  # (n, k, …, r)
    n = rhs.shape[-2]
    x = solved(S.reshape(moved, (n, moved.size // n if n else 0)))
    back = S.reshape(x, moved.shape)
    return S.transpose(back, tuple(range(1, rhs.ndim - 1)) + (0, rhs.ndim - 1))


def _transposed_solver(a, dtype):
    """g -> a⁻ᵀ g for seed-batched g, in every pass of one tape. One plain matrix is factorized once,
    here, in the solve's dtype (as NumPy's: SciPy would factorize an int8 one in float32), and each pass
    solves with its factors; a stack, or a matrix an enclosing derivative traces (whose factors would need
    derivatives of their own), is solved again per pass."""
    a_t = swap(a)
    if np.ndim(a) > 2 or is_traced(a) or not np.size(a):
        return lambda g: _solve_seeded(a_t, g)
    factors = lu_factor(E.as_float_dtype(a, dtype))  # a primitive: `a` may be an input of a compiled program
    return lambda g: _folded(lambda columns: lu_solve(factors, columns, trans=1), g)


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
    out_t, solved_t = (swap(out) if needs[0] else None), _transposed_solver(a, out.dtype)

    def pullback(g):
        gb = solved_t(g)  # b̄ = a⁻ᵀ ḡ, and ā = −b̄ xᵀ
        ga = S.unbroadcast(E.negative(matmul(gb, out_t)), np.shape(a)) if needs[0] else None
        return ga, (S.unbroadcast(gb, np.shape(b)) if needs[1] else None)

    return pullback


#: solve(a, b) for a (…, n, n) and b (…, n, r): NumPy 2's matrix form (`numpy_api` turns a
#: vector b into one column).
solve = register(Primitive("solve", np.linalg.solve, _solve_cost, jvp=_solve_jvp, vjp=_solve_vjp, raises=True))


def _lu_factor_impl(a):
    """LAPACK's LU factorization of one n×n matrix (getrf, as np.linalg.solve runs it), its pivots
    in an extra row: one array, which a tape or a compiled program keeps as it keeps any other
    (the pivots, row numbers below n, are exact in a's float dtype)."""
    from scipy.linalg import lu_factor as factor  # scipy.linalg loads on first use

    lu, pivots = factor(a, check_finite=False)
    return np.concatenate([lu, pivots[None].astype(lu.dtype)])


def _lu_solve_impl(factors, b, trans=0):
    """a⁻¹ b (aᵀ⁻¹ b with trans=1) from `lu_factor`'s array: two triangular solves per column (getrs)."""
    from scipy.linalg import lu_solve as solved

    return solved((factors[:-1], factors[-1].astype(np.int32)), b, trans=trans, check_finite=False)


#: The factorization a solve runs, kept for several solves (reverse mode's sweeps). Only ever of a
#: plain matrix (`_transposed_solver`), so it needs no derivative.
lu_factor = register(Primitive("lu_factor", _lu_factor_impl, lambda out, a: (_lu(np.shape(a)[-1]), 0),
                               differentiable=False))
def _lu_solve_jvp(tangents, out, factors, b, trans=0):
    return _folded(lambda t: lu_solve(factors, t, trans=trans), tangents[1])  # linear in b


def _lu_solve_vjp(needs, out, factors, b, trans=0):
    if not needs[1]:
        return lambda g: (None, None)
    return lambda g: (None, _folded(lambda c: lu_solve(factors, c, trans=1 - trans), g))  # b̄ = a⁻ᵀ ḡ


#: A solve with those factors, of a plain or traced (n, r) right-hand side (a Hessian's cotangent).
lu_solve = register(Primitive(
    "lu_solve", _lu_solve_impl, lambda out, factors, b, trans=0: (2 * np.shape(b)[0] ** 2 * np.shape(b)[1], 0),
    jvp=_lu_solve_jvp, vjp=_lu_solve_vjp,
))


def _inv_jvp(tangents, out, a):
    return E.negative(matmul(matmul(out, tangents[0]), out))  # d(a⁻¹) = −a⁻¹ ȧ a⁻¹


def unneeded(g):
    return (None,)


def _inv_vjp(needs, out, a):
    if not needs[0]:
        return unneeded
    out_t = swap(out)
    return lambda g: (E.negative(matmul(matmul(out_t, g), out_t)),)


def _inv_cost(out, a):
    count, n = matrices(a)
    return count * 2 * n ** 3, 0


inv = register(Primitive("inv", np.linalg.inv, _inv_cost, jvp=_inv_jvp, vjp=_inv_vjp, raises=True))


def _inverse_transpose(a):
    """a⁻ᵀ, the gradient of log|det a|; at a singular a it does not exist, and neither does this rule's."""
    try:
        return swap(inv(a))
    except np.linalg.LinAlgError:
        raise DerivativeError(
            "the derivative of slogdet's log-determinant at a singular matrix does not exist (log|det| is "
            "-inf there); differentiate np.linalg.det, whose derivative is defined at every matrix"
        ) from None


def _contract(gradient, t):
    """Σ gradient ⊙ ṫ over the last two axes: a tangent of a function of each matrix."""
    return R.sum(E.multiply(gradient, t), axis=(t.ndim - 2, t.ndim - 1), keepdims=False)


def _logdet_jvp(tangents, out, a):
    return _contract(_inverse_transpose(a), tangents[0])  # d log|det a| = tr(a⁻¹ ȧ) = Σ a⁻ᵀ ⊙ ȧ


def _per_matrix(factor):
    """The pullback g -> ḡ · factor, one cotangent per matrix of a stack, scaling its factor."""
    return lambda g: (E.multiply(S.reshape(g, g.shape + (1, 1)), factor),)


def _logdet_vjp(needs, out, a):
    if not needs[0]:
        return unneeded
    return _per_matrix(_inverse_transpose(a))  # ā = ḡ a⁻ᵀ


def _det_cost(out, a):
    count, n = matrices(a)
    return count * _lu(n), 0


def _det_jvp(tangents, out, a):
    return _contract(cofactor_of(a, out), tangents[0])  # d det = Σ C(a) ⊙ ȧ; C(a) = det a⁻ᵀ where a is invertible


def _det_vjp(needs, out, a):
    return _per_matrix(cofactor_of(a, out)) if needs[0] else unneeded  # ā = ḡ C(a), C(a) once per tape


det = register(Primitive("det", np.linalg.det, _det_cost, jvp=_det_jvp, vjp=_det_vjp, route=by_lu))
logabsdet = register(Primitive(
    "logabsdet", lambda a: np.linalg.slogdet(a)[1], _det_cost, jvp=_logdet_jvp, vjp=_logdet_vjp,
))
#: slogdet's sign: piecewise constant, so no derivative (evaluated on values, like a comparison)
det_sign = register(Primitive("det_sign", lambda a: np.linalg.slogdet(a)[0], _det_cost, differentiable=False))
