"""cholesky, the symmetric eigenproblem (eigh, eigvalsh), the singular values, QR and the
pseudo-inverse on LAPACK's routines.

The rules build the other factors they need (L⁻¹, eigenvectors, singular
vectors, R⁻¹, Q) with primitives, once per pass or tape, so their work is
counted and they nest.
"""
from __future__ import annotations

import math

import numpy as np

from ..primitives import DerivativeError, Primitive, observe, primal, register
from . import elementwise as E
from . import reductions as R
from . import shape as S
from .linalg import finite_svd, matmul, swap
from .lu import inv, matrices, unneeded


# --- cholesky, eigh, singular values: factorizations of their operand ------------------
# Per matrix, by the usual counts (Golub & Van Loan, Matrix Computations, 4th ed.): Cholesky
# ⌊n³/3⌋ (§4.2); the symmetric QR algorithm ⌊4n³/3⌋ for the eigenvalues alone and 9n³ with the
# eigenvectors (§8.3); the Golub–Kahan–Reinsch SVD of an M×N matrix (M ≥ N, else its transpose)
# ⌊4MN² − 4N³/3⌋ for the singular values alone and 14MN² + 8N³ with the thin U and V (§8.6,
# Figure 8.6.1). Each primitive runs one LAPACK call and is charged for it; a rule that needs
# another factor (eigenvectors for the eigenvalues' rule, U and V for the singular values')
# runs the primitive that computes it, once per pass or tape, and is charged for that too.
#
# The eigen- and Cholesky routines read one triangle of their operand and never the other:
# the matrix they factorize is Ȧ_sym = tril(Ȧ) + tril(Ȧ, -1)ᵀ (UPLO 'L'). The rules take the
# tangent through that same map, a gather of flat positions (0 flops), so an entry of the
# unread triangle has derivative 0, as differencing NumPy's function finds; the VJPs end with
# its transpose, a scatter-add (1 flop per off-diagonal pair: the two halves of a symmetric
# cotangent meet on the read triangle).

#: Eigenvalues (singular values) closer than this times the largest magnitude count as equal:
#: the eigenvector (singular vector) derivatives divide by their differences, and are refused there.
#: In float32 the values' own rounding (about 1e-7) separates equal ones: see `degenerate_rtol`.
DEGENERATE_RTOL = 1e-10


def degenerate_rtol(dtype) -> float:
    """DEGENERATE_RTOL, or a thousand times the rounding unit of a coarser float (1.2e-4 in float32)."""
    return max(DEGENERATE_RTOL, 1e3 * float(np.finfo(dtype).eps))


def _read_positions(n, lower):
    """Flat positions of the entries LAPACK reads for each entry of a symmetric n×n matrix.

    With the lower triangle, (i, j) comes from (max(i, j), min(i, j)); with the upper one,
    from (min(i, j), max(i, j)).
    """
    i, j = np.indices((n, n))
    far, near = np.maximum(i, j), np.minimum(i, j)
    return (far * n + near if lower else near * n + far).ravel()


def _read_symmetric(t, lower):
    """The symmetric matrices a seed-batched t (k, …, n, n) stands for when one triangle is read."""
    n = t.shape[-1]
    flat = S.reshape(t, t.shape[:-2] + (n * n,))
    return S.reshape(S.take(flat, _read_positions(n, lower), flat.ndim - 1), t.shape)


def _read_symmetric_t(g, lower):
    """The transpose of `_read_symmetric`: g[i, j] + g[j, i] onto the read triangle, 0 on the other."""
    n = g.shape[-1]
    flat = S.reshape(g, g.shape[:-2] + (n * n,))
    return S.reshape(S.scatter_add(flat, _read_positions(n, lower), flat.ndim - 1, n * n), g.shape)


def _row(v):
    """(…, n) -> (…, 1, n): scales the columns of a matrix it multiplies."""
    return S.reshape(v, v.shape[:-1] + (1, v.shape[-1]))


def _column(v):
    """(…, n) -> (…, n, 1): scales the rows of a matrix it multiplies."""
    return S.reshape(v, v.shape + (1,))


def _off_diagonal_inverse(gaps, dtype):
    """1 / gaps off the diagonal and 0 on it, for gaps (…, n, n) whose diagonal is 0."""
    n = gaps.shape[-1]
    eye = np.eye(n, dtype=dtype)
    return E.divide(np.asarray(1.0 - eye, dtype=dtype), E.add(gaps, eye))


# --- cholesky -----------------------------------------------------------------------------
def _cholesky_cost(out, a, upper=False):
    count, n = matrices(a)
    return count * (n ** 3 // 3), 0


def _lower_form(v, upper):
    # chol_upper(A) = chol_lower(Aᵀ)ᵀ, the upper triangle of A being the lower one of Aᵀ: the rules
    # work on the lower factor and transpose in and out (free).
    return swap(v) if upper else v


def _half_lower(n, dtype):
    """Φ as a mask: the strict lower triangle, and 1/2 on the diagonal."""
    return np.asarray(np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n), dtype=dtype)


def _cholesky_jvp(tangents, out, a, upper=False):
    # A = L Lᵀ: L̇ = L Φ(L⁻¹ Ȧ_sym L⁻ᵀ), Φ taking the lower triangle with the diagonal halved
    # (Murray 2016, "Differentiation of the Cholesky decomposition"). L⁻¹ is one inv per pass.
    chol = _lower_form(out, upper)
    chol_inv = inv(chol)
    t = _read_symmetric(_lower_form(tangents[0], upper), lower=True)
    x = matmul(matmul(chol_inv, t), swap(chol_inv))
    return _lower_form(matmul(chol, E.multiply(x, _half_lower(out.shape[-1], out.dtype))), upper)


def _cholesky_vjp(needs, out, a, upper=False):
    # The exact transpose of the JVP: Ā = read_ᵀ(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹), the symmetric form of Murray
    # (2016) with Φ's ½ on the diagonal, summed onto the triangle NumPy reads.
    if not needs[0]:
        return unneeded
    chol = _lower_form(out, upper)
    chol_t, chol_inv = swap(chol), inv(chol)
    chol_inv_t, half = swap(chol_inv), _half_lower(out.shape[-1], out.dtype)

    def pullback(g):
        x = E.multiply(matmul(chol_t, _lower_form(g, upper)), half)
        return (_lower_form(_read_symmetric_t(matmul(matmul(chol_inv_t, x), chol_inv), lower=True), upper),)

    return pullback


#: NumPy's cholesky: the lower factor from A's lower triangle, or with upper=True the upper
#: factor from its upper triangle.
cholesky = register(Primitive(
    "cholesky", lambda a, upper=False: np.linalg.cholesky(a, upper=upper) if upper else np.linalg.cholesky(a),
    _cholesky_cost, jvp=_cholesky_jvp, vjp=_cholesky_vjp, raises=True, array_params=(),
))


# --- eigh: the symmetric eigenproblem ----------------------------------------------------------
# np.linalg.eigh returns two arrays and a primitive returns one, so eigh is two primitives,
# `eigh_values` and `eigh_vectors`, each running LAPACK's eigh and charged 9n³ (as slogdet's sign
# and log-determinant are each charged their factorization). Two primitives rather than one
# stacked array: a cotangent reaches eigh_vectors' rule only when the eigenvectors are used, so
# reverse mode differentiates the eigenvalues of np.linalg.eigh even at a repeated eigenvalue,
# where the eigenvector derivative does not exist. `eigvalsh` is a third primitive, for LAPACK's
# values-only routine (⌊4n³/3⌋), whose values may differ from eigh's in the last bits.
def _eigen_cost(per_matrix):
    def cost(out, a, UPLO="L"):
        count, n = matrices(a)
        return count * per_matrix(n), 0
    return cost


def _eigenvalues_jvp(tangents, out, a, UPLO="L"):
    # ẇ = diag(Vᵀ Ȧ_sym V) (first-order perturbation theory; e.g. Magnus 1985, "On differentiating
    # eigenvalues and eigenvectors"): ẇ_i = Σ_j V_ji (Ȧ_sym V)_ji. V is computed once per pass.
    v = eigh_vectors(a, UPLO=UPLO)
    tv = matmul(_read_symmetric(tangents[0], UPLO == "L"), v)
    return R.sum(E.multiply(v, tv), axis=(tv.ndim - 2,), keepdims=False)


def _eigenvalues_vjp(needs, out, a, UPLO="L"):
    if not needs[0]:
        return unneeded
    v = eigh_vectors(a, UPLO=UPLO)
    v_t = swap(v)
    # Ā = read_ᵀ(V diag(w̄) Vᵀ)
    return lambda g: (_read_symmetric_t(matmul(E.multiply(v, _row(g)), v_t), UPLO == "L"),)


def _close_pairs(values) -> np.ndarray:
    """For each matrix of sorted values (…, n): whether two neighbours lie within `degenerate_rtol`
    times its largest magnitude of each other."""
    values = np.asarray(values)
    if values.shape[-1] < 2:
        return np.zeros(values.shape[:-1], dtype=bool)
    scale = degenerate_rtol(values.dtype) * np.max(np.abs(values), axis=-1, keepdims=True)
    return np.any(np.abs(np.diff(values, axis=-1)) <= scale, axis=-1)


def _too_close(values) -> bool:
    return bool(np.any(_close_pairs(values)))


def _in_stack(degenerate) -> str:
    """" in matrix i of the stack": which matrix a refusal is about (the first), from a flag per matrix;
    "" for one matrix."""
    degenerate = np.asarray(degenerate)
    if degenerate.ndim == 0:
        return ""
    index = tuple(int(i) for i in np.argwhere(degenerate)[0])
    return f" in matrix {index[0] if len(index) == 1 else index} of the stack"


def _eigenvector_factor(a, UPLO):
    """F_ij = 1 / (w_j − w_i) off the diagonal, 0 on it: once per pass or tape."""
    w = eigvalsh(a, UPLO=UPLO)
    if observe(_too_close, primal(w)):  # a decision on values: a compiled replay checks it again
        where, tolerance = _in_stack(_close_pairs(primal(w))), degenerate_rtol(primal(w).dtype)
        raise DerivativeError(
            "the derivative of the eigenvectors of np.linalg.eigh does not exist at a repeated "
            f"eigenvalue{where} (two are within {tolerance:g} times the largest magnitude): the "
            "eigenvectors of a repeated eigenvalue are not unique. Differentiate the eigenvalues "
            "alone (np.linalg.eigvalsh; in reverse mode, eigh's eigenvalues when its eigenvectors "
            "are unused), or move the matrix away from the repeated eigenvalue. A second derivative "
            "of the eigenvalues (jl.hessian of a function of eigvalsh) needs the eigenvectors' and is "
            "refused there too: a symmetric function of them, such as sum(w ** 3) = trace(A @ A @ A), "
            "can be written without eigh"
        )
    return _off_diagonal_inverse(E.subtract(_row(w), _column(w)), w.dtype)


def _eigenvectors_jvp(tangents, out, a, UPLO="L"):
    # V̇ = V (F ∘ (Vᵀ Ȧ_sym V)), F_ij = 1/(w_j − w_i) for i ≠ j, 0 on the diagonal (Magnus 1985;
    # Giles 2008, "An extended collection of matrix derivative results").
    f = _eigenvector_factor(a, UPLO)
    t = _read_symmetric(tangents[0], UPLO == "L")
    return matmul(out, E.multiply(f, matmul(matmul(swap(out), t), out)))


def _eigenvectors_vjp(needs, out, a, UPLO="L"):
    if not needs[0]:
        return unneeded
    f, out_t = _eigenvector_factor(a, UPLO), swap(out)
    # Ā = read_ᵀ(V (F ∘ (Vᵀ V̄)) Vᵀ)
    return lambda g: (_read_symmetric_t(matmul(matmul(out, E.multiply(f, matmul(out_t, g))), out_t),
                                        UPLO == "L"),)


eigvalsh = register(Primitive(
    "eigvalsh", lambda a, UPLO="L": np.linalg.eigvalsh(a, UPLO=UPLO), _eigen_cost(lambda n: 4 * n ** 3 // 3),
    jvp=_eigenvalues_jvp, vjp=_eigenvalues_vjp, raises=True, array_params=(),
))
eigh_values = register(Primitive(
    "eigh_values", lambda a, UPLO="L": np.linalg.eigh(a, UPLO=UPLO).eigenvalues, _eigen_cost(lambda n: 9 * n ** 3),
    jvp=_eigenvalues_jvp, vjp=_eigenvalues_vjp, raises=True, array_params=(),
))
eigh_vectors = register(Primitive(
    "eigh_vectors", lambda a, UPLO="L": np.linalg.eigh(a, UPLO=UPLO).eigenvectors, _eigen_cost(lambda n: 9 * n ** 3),
    jvp=_eigenvectors_jvp, vjp=_eigenvectors_vjp, raises=True, array_params=(),
))


# --- singular values ------------------------------------------------------------------------
def _svd_sizes(a):
    """How many matrices a (…, m, n) stacks, and the larger and smaller of m and n."""
    shape = np.shape(a)
    m, n = shape[-2:]
    return math.prod(shape[:-2]), max(m, n), min(m, n)


def _svdvals_cost(out, a):
    count, big, small = _svd_sizes(a)
    return count * ((12 * big * small ** 2 - 4 * small ** 3) // 3), 0  # ⌊4MN² − 4N³/3⌋


def _svd_vectors_cost(out, a):
    count, big, small = _svd_sizes(a)
    return count * (14 * big * small ** 2 + 8 * small ** 3), 0


def split_vectors(uv, m):
    """The stacked [U; V] (…, m + n, r) of `svd_vectors` (seed-batched or not) as U and V."""
    lead = (slice(None),) * (uv.ndim - 2)
    return S.getitem(uv, lead + (slice(0, m),)), S.getitem(uv, lead + (slice(m, None),))


def _svdvals_jvp(tangents, out, a):
    # ṡ = diag(Uᵀ Ȧ V) with the thin U and V (e.g. Townsend 2016, "Differentiating the singular
    # value decomposition"): ṡ_i = Σ_j U_ji (Ȧ V)_ji. U and V come from one svd_vectors per pass.
    u, v = split_vectors(svd_vectors(a), np.shape(a)[-2])
    tv = matmul(tangents[0], v)
    return R.sum(E.multiply(u, tv), axis=(tv.ndim - 2,), keepdims=False)


def _svdvals_vjp(needs, out, a):
    if not needs[0]:
        return unneeded
    u, v = split_vectors(svd_vectors(a), np.shape(a)[-2])
    v_t = swap(v)
    return lambda g: (matmul(E.multiply(u, _row(g)), v_t),)  # Ā = U diag(s̄) Vᵀ


#: np.linalg.svd(a, compute_uv=False): the singular values of a (…, m, n), in descending order.
svdvals = register(Primitive(
    "svdvals", lambda a: np.linalg.svd(a, compute_uv=False), _svdvals_cost, jvp=_svdvals_jvp, vjp=_svdvals_vjp,
    raises=True,
))
#: np.linalg.svd(a).S: the same values as LAPACK computes them alongside U and V, which can differ
#: from `svdvals`' in the last bits; charged, like the vectors, for the SVD with vectors.
svd_values = register(Primitive(
    "svd_values", lambda a: finite_svd(a)[1], _svd_vectors_cost,
    jvp=_svdvals_jvp, vjp=_svdvals_vjp, raises=True,
))


# The singular vectors are the residual factors of the singular values' rules, and np.linalg.svd's
# U and Vh (see numpy_linalg.svd). Their rules exist where the singular values are distinct and nonzero.
def _close_or_zero(s) -> np.ndarray:
    """Per matrix of singular values (…, r), descending: two within `degenerate_rtol` of the largest,
    or one that small."""
    s = np.asarray(s)
    return _close_pairs(s) | np.any(s[..., -1:] <= degenerate_rtol(s.dtype) * s[..., :1], axis=-1)


def _too_close_or_zero(s) -> bool:
    return bool(np.any(_close_or_zero(s)))


def _singular_vector_factors(a):
    """s as column and row scales, F_ij = 1/(s_j² − s_i²) (0 on the diagonal) and 1/s as a row."""
    s = svdvals(a)
    if observe(_too_close_or_zero, primal(s)):
        where, tolerance = _in_stack(_close_or_zero(primal(s))), degenerate_rtol(primal(s).dtype)
        raise DerivativeError(
            "the derivative of the singular vectors (np.linalg.svd's U and Vh; also inside second "
            f"derivatives of singular values and matrix 2-norms) does not exist{where} where two singular "
            f"values are equal or one is zero (within {tolerance:g} times the largest): the "
            "singular vectors are not unique there. Differentiate the singular values alone (np.linalg.svd(a, "
            "compute_uv=False); in reverse mode, svd's S when U and Vh are unused), or move the matrix "
            "away from the repeated singular value. A second derivative of the singular values (jl.hessian "
            "of a function of svdvals or of a matrix 2-norm) needs the vectors' and is refused there too: "
            "a symmetric function of the squared singular values, such as sum(s ** 2) = sum(a ** 2) or "
            "sum(s ** 4) = trace((aᵀa)²), can be written without the SVD"
        )
    s2 = E.square(s)
    f = _off_diagonal_inverse(E.subtract(_row(s2), _column(s2)), s.dtype)
    m, n = np.shape(a)[-2:]
    return _column(s), _row(s), f, (_row(E.reciprocal(s)) if m != n else None)


def _svd_vectors_jvp(tangents, out, a):
    # With P = Uᵀ Ȧ V and S = diag(s) (Townsend 2016, the thin SVD):
    #   U̇ = U (F ∘ (P S + S Pᵀ)) + (I − U Uᵀ) Ȧ V S⁻¹
    #   V̇ = V (F ∘ (S P + Pᵀ S)) + (I − V Vᵀ) Ȧᵀ U S⁻¹
    # The projector terms vanish for the square factor: U's when m ≤ n, V's when n ≤ m.
    m, n = np.shape(a)[-2:]
    u, v = split_vectors(out, m)
    s_col, s_row, f, s_inv = _singular_vector_factors(a)
    t = tangents[0]
    tv = matmul(t, v)
    p = matmul(swap(u), tv)
    ps, sp = E.multiply(p, s_row), E.multiply(p, s_col)
    du = matmul(u, E.multiply(f, E.add(ps, swap(ps))))
    dv = matmul(v, E.multiply(f, E.add(sp, swap(sp))))
    if m > n:
        du = E.add(du, E.multiply(E.subtract(tv, matmul(u, p)), s_inv))
    if n > m:
        dv = E.add(dv, E.multiply(E.subtract(matmul(swap(t), u), matmul(v, swap(p))), s_inv))
    return S.concatenate(du, dv, axis=du.ndim - 2)


def _svd_vectors_vjp(needs, out, a):
    # The transpose of the JVP (Townsend 2016, the adjoint for the thin SVD), with X = Uᵀ Ū, Y = Vᵀ V̄:
    #   Ā = U [(F ∘ (X − Xᵀ)) S + S (F ∘ (Y − Yᵀ))] Vᵀ + (I − U Uᵀ) Ū S⁻¹ Vᵀ + U S⁻¹ V̄ᵀ (I − V Vᵀ)
    if not needs[0]:
        return unneeded
    m, n = np.shape(a)[-2:]
    u, v = split_vectors(out, m)
    u_t, v_t = swap(u), swap(v)
    s_col, s_row, f, s_inv = _singular_vector_factors(a)

    def pullback(g):
        gu, gv = split_vectors(g, m)
        x, y = matmul(u_t, gu), matmul(v_t, gv)
        core = E.add(E.multiply(E.multiply(f, E.subtract(x, swap(x))), s_row),
                     E.multiply(E.multiply(f, E.subtract(y, swap(y))), s_col))
        left = matmul(u, core)
        if m > n:
            left = E.add(left, E.multiply(E.subtract(gu, matmul(u, x)), s_inv))
        ga = matmul(left, v_t)
        if n > m:
            ga = E.add(ga, matmul(E.multiply(u, s_inv), swap(E.subtract(gv, matmul(v, y)))))
        return (ga,)

    return pullback


def _svd_vectors_impl(a):
    u, _, vh = finite_svd(a)
    return np.concatenate([u, np.swapaxes(vh, -1, -2)], axis=-2)


#: The thin singular vectors of a (…, m, n) stacked as [U; V], shape (…, m + n, min(m, n)):
#: U and V are needed together, so one SVD serves both.
svd_vectors = register(Primitive("svd_vectors", _svd_vectors_impl, _svd_vectors_cost,
                                 jvp=_svd_vectors_jvp, vjp=_svd_vectors_vjp, raises=True))


# --- qr: Householder QR -----------------------------------------------------------------------
# np.linalg.qr returns Q and R. Unlike eigh's eigenvalues and eigenvectors, both have a derivative
# under the same condition (full column rank), and both rules start from the same X = Qᵀ Ȧ R⁻¹, so
# the reduced factorization is one primitive, `qr`, returning Q and R stacked: [Q; R], (…, m + n, n)
# for m ≥ n, and [Q R], (…, m, m + n) for m < n; numpy_api splits it with free slices. It runs one
# LAPACK call (geqrf, then orgqr for the thin Q) and is charged for both steps. mode='r' runs geqrf
# alone: the primitive `qr_r`, charged for R alone, whose rules run `qr` for Q once per pass or tape.
#
# Per matrix, with N = min(m, n) and M = max(m, n) (Golub & Van Loan, Matrix Computations, 4th ed.,
# §5.2.2 and §5.1.6; LAPACK's operation counts for geqrf and orgqr): R by Householder reflections
# ⌊2MN² − 2N³/3⌋, and the thin Q (m×N) accumulated from the N reflections ⌊2mN² − 2N³/3⌋ more; for
# m ≥ n both are ⌊2mn² − 2n³/3⌋.
def _qr_r_flops(m, n):
    big, small = max(m, n), min(m, n)
    return (6 * big * small ** 2 - 2 * small ** 3) // 3


def _thin_q_flops(m, n):
    small = min(m, n)
    return (6 * m * small ** 2 - 2 * small ** 3) // 3


def _qr_cost(out, a):
    m, n = np.shape(a)[-2:]
    return math.prod(np.shape(a)[:-2]) * (_qr_r_flops(m, n) + _thin_q_flops(m, n)), 0


def _qr_r_cost(out, a):
    m, n = np.shape(a)[-2:]
    return math.prod(np.shape(a)[:-2]) * _qr_r_flops(m, n), 0


def split_qr(qr_, m, n):
    """Q and R of the stacked output of `qr` (seed-batched or not), for an m×n operand."""
    lead = (slice(None),) * (qr_.ndim - 2)
    if m >= n:
        return S.getitem(qr_, lead + (slice(0, m),)), S.getitem(qr_, lead + (slice(m, None),))
    return (S.getitem(qr_, lead + (slice(None), slice(0, m))),
            S.getitem(qr_, lead + (slice(None), slice(m, None))))


def _rank_deficient(r):
    """Whether some matrix's R (…, n, n) has a diagonal entry within `degenerate_rtol` of its column's
    norm, which is the norm of a's column: a column (nearly) in the span of those before it. Relative
    to its own column, not R's largest entry, so that a column scaled by 1e11 is not taken for one."""
    return bool(np.any(_dependent_columns(r)))


def _dependent_columns(r) -> np.ndarray:
    r = np.asarray(r)
    d = np.abs(np.diagonal(r, axis1=-2, axis2=-1))
    return np.any(d <= degenerate_rtol(r.dtype) * np.linalg.norm(r, axis=-2), axis=-1)


def _qr_r_inverse(r, m, n):
    """R⁻¹ for the rules, once per pass or tape; refused for a wide or rank-deficient operand."""
    if m < n:
        raise NotImplementedError(
            f"the derivative of np.linalg.qr of a wide {m}×{n} matrix (fewer rows than columns) is not "
            "supported: the rule covers m ≥ n with full column rank (as JAX's does). Differentiate the "
            "QR of the transpose, or of a tall or square block of the matrix"
        )
    if observe(_rank_deficient, primal(r)):  # a decision on values: a compiled replay checks it again
        where, tolerance = _in_stack(_dependent_columns(primal(r))), degenerate_rtol(primal(r).dtype)
        raise DerivativeError(
            "the derivative of np.linalg.qr does not exist where the matrix does not have full column "
            f"rank{where} (a diagonal entry of R within {tolerance:g} times its column's norm): "
            "Q is not unique there. Move the matrix away from rank deficiency, or drop its dependent columns"
        )
    return inv(r)


def _upper_part(x):
    """Y = triu(X) + tril(X, −1)ᵀ: a scatter-add onto the upper triangle (n(n − 1)/2 flops)."""
    return _read_symmetric_t(x, lower=False)


def _qr_jvp(tangents, out, a):
    # For A = QR with m ≥ n and full column rank, and X = Qᵀ Ȧ R⁻¹ (Walter & Lehmann 2018, "Algorithmic
    # differentiation of linear algebra functions with application in optimum experimental design";
    # JAX's qr_jvp_rule): Qᵀ Q̇ = Ω is antisymmetric and Ṙ R⁻¹ = X − Ω upper triangular, so
    # Ω = tril(X, −1) − tril(X, −1)ᵀ, Ṙ = (X − Ω) R and Q̇ = Q Ω + (I − Q Qᵀ) Ȧ R⁻¹. With
    # Y = X − Ω = triu(X) + tril(X, −1)ᵀ these are Ṙ = Y R and Q̇ = Ȧ R⁻¹ − Q Y.
    m, n = np.shape(a)[-2:]
    q, r = split_qr(out, m, n)
    r_inv = _qr_r_inverse(r, m, n)
    b = matmul(tangents[0], r_inv)
    y = _upper_part(matmul(swap(q), b))
    dq, dr = E.subtract(b, matmul(q, y)), matmul(y, r)
    return S.concatenate(dq, dr, axis=dq.ndim - 2)


def _qr_vjp(needs, out, a):
    # The transpose of the JVP: Ȳ = R̄ Rᵀ − Qᵀ Q̄, X̄ = Ȳ's upper triangle gathered onto both halves,
    # Ā = (Q̄ + Q X̄) R⁻ᵀ.
    if not needs[0]:
        return unneeded
    m, n = np.shape(a)[-2:]
    q, r = split_qr(out, m, n)
    r_inv_t, q_t, r_t = swap(_qr_r_inverse(r, m, n)), swap(q), swap(r)

    def pullback(g):
        gq, gr = split_qr(g, m, n)
        gy = E.subtract(matmul(gr, r_t), matmul(q_t, gq))
        return (matmul(E.add(gq, matmul(q, _read_symmetric(gy, lower=False))), r_inv_t),)

    return pullback


def _qr_impl(a):
    q, r = np.linalg.qr(a)
    m, n = a.shape[-2:]
    return np.concatenate([q, r], axis=-2 if m >= n else -1)


#: np.linalg.qr(a) (mode 'reduced') of a (…, m, n): Q and R stacked, see `split_qr`.
qr = register(Primitive("qr", _qr_impl, _qr_cost, jvp=_qr_jvp, vjp=_qr_vjp))


def _qr_r_jvp(tangents, out, a):
    # Ṙ = Y R as in `qr`'s rule; Q comes from one `qr` per pass.
    m, n = np.shape(a)[-2:]
    r_inv = _qr_r_inverse(out, m, n)
    q = split_qr(qr(a), m, n)[0]
    return matmul(_upper_part(matmul(swap(q), matmul(tangents[0], r_inv))), out)


def _qr_r_vjp(needs, out, a):
    if not needs[0]:
        return unneeded
    m, n = np.shape(a)[-2:]
    r_inv_t = swap(_qr_r_inverse(out, m, n))
    q, r_t = split_qr(qr(a), m, n)[0], swap(out)
    # Ā = Q X̄ R⁻ᵀ, X̄ the gathered R̄ Rᵀ
    return lambda g: (matmul(matmul(q, _read_symmetric(matmul(g, r_t), lower=False)), r_inv_t),)


#: np.linalg.qr(a, mode='r'): R alone, (…, min(m, n), n).
qr_r = register(Primitive("qr_r", lambda a: np.linalg.qr(a, mode="r"), _qr_r_cost, jvp=_qr_r_jvp, vjp=_qr_r_vjp))


# --- pinv: the Moore–Penrose pseudo-inverse ------------------------------------------------------
# NumPy's pinv is one thin SVD A = U S Vᵀ, then A⁺ = V S⁺ Uᵀ with S⁺ the reciprocals of the singular
# values above rcond times the largest (0 for the others). Charged per m×n matrix (M = max(m, n),
# N = min(m, n)) the SVD with vectors, 14MN² + 8N³ (Golub & Van Loan §8.6, as `svd_vectors`), the N
# reciprocals, S⁺ Uᵀ (N·m products) and V (S⁺ Uᵀ) by the matmul convention (2·n·N·m).
#
# The derivative (Golub & Pereyra 1973, "The differentiation of pseudo-inverses and nonlinear least
# squares problems whose variables separate", Theorem 4.3), where the rank is locally constant:
#   d(A⁺) = −A⁺ Ȧ A⁺ + A⁺ A⁺ᵀ Ȧᵀ (I − A A⁺) + (I − A⁺ A) Ȧᵀ A⁺ᵀ A⁺.
# The rules take it at full rank, where A⁺ A = I (m ≥ n) or A A⁺ = I (m ≤ n) drops a term; at a
# singular value at or below NumPy's cutoff the rank can jump, A⁺ with it, and the rules refuse. The
# test reads the singular values (one `svdvals` per pass or tape) through `observe`.
def _pinv_cost(out, a, rcond):
    count, big, small = _svd_sizes(a)
    m, n = np.shape(a)[-2:]
    return count * (14 * big * small ** 2 + 8 * small ** 3 + small + small * m + 2 * n * small * m), 0


def _cut_off(s, rcond) -> np.ndarray:
    """Per matrix of singular values (…, N): whether one is at or below rcond times the largest."""
    s = np.asarray(s)
    if s.shape[-1] == 0:
        return np.zeros(s.shape[:-1], dtype=bool)
    return np.any(s <= rcond * np.max(s, axis=-1, keepdims=True), axis=-1)


def _below_cutoff(s, rcond) -> bool:
    return bool(np.any(_cut_off(s, rcond)))


def _full_rank(a, rcond):
    s = svdvals(a)
    if observe(_below_cutoff, primal(s), rcond=rcond):
        raise DerivativeError(
            "the derivative of np.linalg.pinv does not exist at a rank-deficient "
            f"matrix{_in_stack(_cut_off(primal(s), rcond))} (np.linalg.lstsq "
            f"runs pinv; a singular value at or below rcond = {rcond:g} times the largest, which pinv sets "
            "to zero): the pseudo-inverse jumps when that singular value moves off zero. Differentiate at a "
            "full-rank matrix, or regularize (e.g. solve (AᵀA + λI) x = Aᵀb)"
        )


def _pinv_jvp(tangents, out, a, rcond):
    # P = A⁺, Ṗ the formula above at full rank. Tall (m > n): with H = P Pᵀ Ȧᵀ,
    # Ṗ = H − (P Ȧ + H A) P; wide (m < n): with K = Ȧᵀ Pᵀ P, Ṗ = K − P (Ȧ P + A K); square: −P Ȧ P.
    _full_rank(a, rcond)
    m, n = np.shape(a)[-2:]
    t, p = tangents[0], out
    if m > n:
        h = matmul(matmul(p, swap(p)), swap(t))
        return E.subtract(h, matmul(E.add(matmul(p, t), matmul(h, a)), p))
    if m < n:
        k = matmul(swap(t), matmul(swap(p), p))
        return E.subtract(k, matmul(p, E.add(matmul(t, p), matmul(a, k))))
    return E.negative(matmul(matmul(p, t), p))


def _pinv_vjp(needs, out, a, rcond):
    # The transpose of the JVP. Tall: with Z = P̄ᵀ P Pᵀ, Ā = Z − A (P Z) − Pᵀ (P̄ Pᵀ);
    # wide: with V = Pᵀ P P̄ᵀ, Ā = V − (V P) A − (Pᵀ P̄) Pᵀ; square: Ā = −Pᵀ P̄ Pᵀ.
    if not needs[0]:
        return unneeded
    _full_rank(a, rcond)
    m, n = np.shape(a)[-2:]
    p, p_t = out, swap(out)
    if m > n:
        ppt = matmul(p, p_t)

        def pullback(g):
            z = matmul(swap(g), ppt)
            return (E.subtract(E.subtract(z, matmul(a, matmul(p, z))), matmul(p_t, matmul(g, p_t))),)
    elif m < n:
        ptp = matmul(p_t, p)

        def pullback(g):
            v = matmul(ptp, swap(g))
            return (E.subtract(E.subtract(v, matmul(matmul(v, p), a)), matmul(matmul(p_t, g), p_t)),)
    else:
        def pullback(g):
            return (E.negative(matmul(matmul(p_t, g), p_t)),)
    return pullback


#: np.linalg.pinv(a, rcond) of a (…, m, n), rcond a number (numpy_api resolves NumPy's defaults).
pinv = register(Primitive("pinv", lambda a, rcond: np.linalg.pinv(a, rcond=rcond), _pinv_cost,
                          jvp=_pinv_jvp, vjp=_pinv_vjp, raises=True, array_params=()))
