"""Exact FLOP counts against the conventions table of the design brief.

Expected numbers are computed here from the table (N elementwise flops,
N transcendentals, 2·m·k·n per matmul, L − 1 per reduced output, ...) or derived
by hand from the rules, with the derivation in a comment next to each number;
none is read from the package's own cost functions.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab.accounting import counting

Cost = jl.Cost
RNG = np.random.default_rng(3)


# --- the design table, restated --------------------------------------------------------
def elementwise(n):
    return Cost(n, 0)


def transcendental(n):
    return Cost(0, n)


def matmul_cost(a_shape, b_shape):
    """2·m·k·n per batch entry; a vector is a row (m = 1) on the left, a column (n = 1) on the right."""
    m, k = (1, a_shape[0]) if len(a_shape) == 1 else a_shape[-2:]
    n = 1 if len(b_shape) == 1 else b_shape[-1]
    batch = math.prod(np.broadcast_shapes(tuple(a_shape[:-2]), tuple(b_shape[:-2])))
    return Cost(2 * m * k * n * batch, 0)


def _lengths(shape, axis):
    axis = range(len(shape)) if axis is None else np.atleast_1d(axis) % len(shape)
    L = math.prod(shape[a] for a in axis)
    return L, math.prod(shape) // L


def reduce_cost(shape, axis=None):
    """sum / prod / max / min: L − 1 flops per output."""
    L, outputs = _lengths(shape, axis)
    return Cost((L - 1) * outputs, 0)


def mean_cost(shape, axis=None):
    """mean: L flops per output (the division included)."""
    L, outputs = _lengths(shape, axis)
    return Cost(L * outputs, 0)


def cumsum_cost(shape, axis):
    """cumsum: L − 1 per line along the axis."""
    L, lines = _lengths(shape, axis)
    return Cost((L - 1) * lines, 0)


FREE = Cost(0, 0)

X = RNG.uniform(0.5, 1.5, (3, 4))  # positive: log, sqrt and fractional powers are defined
N = X.size
C4 = RNG.standard_normal(4)


# --- elementwise ------------------------------------------------------------------------
FLOP_UFUNCS = [
    ("add", lambda x: x + C4), ("subtract", lambda x: np.subtract(C4, x)), ("multiply", lambda x: x * C4),
    ("divide", lambda x: x / C4), ("negative", lambda x: -x), ("abs", np.abs), ("square", np.square),
    ("x ** 2", lambda x: x ** 2), ("np.power(x, 2)", lambda x: np.power(x, 2)), ("x ** 2.0", lambda x: x ** 2.0),
    ("maximum", lambda x: np.maximum(x, C4)), ("minimum", lambda x: np.minimum(C4, x)),
    ("traced * traced", lambda x: x * x), ("1 / x (a divide)", lambda x: 1.0 / x),
    ("reciprocal (a divide)", np.reciprocal), ("sign", np.sign),
    ("clip", lambda x: np.clip(x, 0.7, 1.2)), ("clip lower only", lambda x: x.clip(min=0.7)),
    # comparisons give plain booleans; the float conversion after them is plain NumPy, uncounted
    ("greater", lambda x: (x > 1.0) * 1.0), ("less_equal", lambda x: (x <= C4) * 1.0),
    ("equal", lambda x: (x == C4) * 1.0), ("not_equal", lambda x: (np.not_equal(x, 1.0)) * 1.0),
    ("remainder", lambda x: x % C4), ("fmod", lambda x: np.fmod(C4, x)), ("floor_divide", lambda x: (x // 0.3) * 1.0),
    ("fmax", lambda x: np.fmax(x, C4)), ("fmin", lambda x: np.fmin(C4, x)),
]
TRANSCENDENTAL_UFUNCS = [
    ("exp", np.exp), ("log", np.log), ("sin", np.sin), ("cos", np.cos), ("tan", np.tan), ("tanh", np.tanh),
    ("sqrt", np.sqrt), ("log1p", np.log1p), ("expm1", np.expm1), ("arctan", np.arctan), ("sinh", np.sinh),
    ("cosh", np.cosh), ("x ** 3", lambda x: x ** 3), ("x ** 0.5", lambda x: x ** 0.5),
    ("x ** -1", lambda x: x ** -1), ("np.power(x, 3)", lambda x: np.power(x, 3)), ("2 ** x", lambda x: 2.0 ** x),
    ("x ** x", lambda x: x ** x), ("x ** array of 2s", lambda x: x ** np.full(4, 2.0)),
]


@pytest.mark.parametrize("f", [pytest.param(f, id=name) for name, f in FLOP_UFUNCS])
def test_elementwise_flops(f):
    assert jl.count_flops(f, X) == elementwise(N)


@pytest.mark.parametrize("f", [pytest.param(f, id=name) for name, f in TRANSCENDENTAL_UFUNCS])
def test_transcendentals(f):
    assert jl.count_flops(f, X) == transcendental(N)


@pytest.mark.parametrize("p, slope", [(3, elementwise(N) + elementwise(N)), (np.float64(3.0), elementwise(2 * N)),
                                      (2.5, transcendental(N) + elementwise(N))])
def test_a_constant_powers_slope_squares_where_its_exponent_less_one_is_two(p, slope):
    """3 x²: x ** 2 a square (N flops, as the table counts f's own x ** 2), then the product by 3; it was counted
    as a general power (N transcendentals)."""
    prediction = jl.predict(lambda x: x ** p, X)
    assert prediction.tangent.fixed == prediction.staging == slope


def test_a_plain_matrixs_dot_method_counts_numpys_object_loop():
    """W.dot(x) converts x to an object array of traced scalars: k products and k - 1 adds per output, as README
    says, where W @ x counts the table's 2k."""
    W = RNG.standard_normal((5, 7))
    assert jl.count_flops(lambda x: W.dot(x), np.ones(7)) == elementwise(5 * 7 + 5 * 6)
    assert jl.count_flops(lambda x: W @ x, np.ones(7)) == elementwise(2 * 5 * 7)


def test_broadcast_output_counts_output_elements():
    # N is the number of *output* elements: (4,) op (3, 4) writes 12 values.
    assert jl.count_flops(lambda x: x[0] * X, X) == elementwise(12)
    assert jl.count_flops(lambda x: np.exp(x[:, :1] + C4), X) == elementwise(12) + transcendental(12)


def test_where_counts_the_selection_and_the_comparison():
    assert jl.count_flops(lambda x: np.where(x > 1.0, x, 0.0), X) == elementwise(N) + elementwise(N)
    assert jl.count_flops(lambda x: np.where(C4 > 0, x, -x), X) == elementwise(N) + elementwise(N)


def test_copysign_and_heaviside_count_their_parts():
    # copysign(x, C4) is where(signbit(C4), -|x|, |x|): abs N, signbit 4, negative N, where N
    assert jl.count_flops(lambda x: np.copysign(x, C4), X) == elementwise(3 * N + 4)
    # heaviside(x, 0.5) is one elementwise step; with a traced h0, x == 0 and where select it: 3N
    assert jl.count_flops(lambda x: np.heaviside(x, 0.5) * x, X) == elementwise(2 * N)
    assert jl.count_flops(lambda x: np.heaviside(x, x), X) == elementwise(3 * N)


def test_compositions_add_up():
    f = lambda x: np.sin(x) * np.exp(x) + x ** 2 / 3.0
    assert jl.count_flops(f, X) == transcendental(2 * N) + elementwise(4 * N)


def test_seed_problem_at_n_1000():
    # x**2: 1000 flops; exp, sin: 1000 transcendentals each; sum: 999 flops.
    f = lambda x: np.sum(np.sin(np.exp(x ** 2)))
    assert jl.count_flops(f, np.linspace(-1, 1, 1000)) == Cost(1999, 2000)


def test_every_spelling_of_a_dot_product_counts_as_matmul():
    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))
    spellings = [lambda v: np.einsum("ij,ij->i", v, y), lambda v: np.stack([v[0] @ y[0], np.dot(v[1], y[1])])]
    if hasattr(np, "vecdot"):  # NumPy 2's names
        spellings += [lambda v: np.vecdot(v, y), lambda v: np.linalg.vecdot(v, y)]
    assert {jl.count_flops(f, x) for f in spellings} == {Cost(2 * 2 * 3, 0)}  # 2k per vector, k = 3


def test_cost_total_weights_transcendentals():
    assert Cost(1999, 2000).total() == 3999.0
    assert Cost(1999, 2000).total(weight=10.0) == 1999 + 10.0 * 2000


# --- LU-based linear algebra -----------------------------------------------------------------
# Per n×n matrix: factorization ⌊2n³/3⌋, 2n² per right-hand side, inv 2n³, det/slogdet ⌊2n³/3⌋.
W = RNG.uniform(-1, 1, (4, 4)) + 4 * np.eye(4)


def lu(n):
    return 2 * n ** 3 // 3


def test_solve_inv_det_count_lapacks_work():
    b, B = RNG.standard_normal(4), RNG.standard_normal((4, 3))
    assert jl.count_flops(lambda v: np.linalg.solve(W, v), b) == Cost(lu(4) + 2 * 16 * 1, 0)
    assert jl.count_flops(lambda v: np.linalg.solve(W, v), B) == Cost(lu(4) + 2 * 16 * 3, 0)
    stack = np.stack([W, W.T])
    assert jl.count_flops(lambda a: np.linalg.solve(a, B), stack) == Cost(2 * (lu(4) + 2 * 16 * 3), 0)
    assert jl.count_flops(np.linalg.inv, W) == Cost(2 * 4 ** 3, 0)
    assert jl.count_flops(np.linalg.det, stack) == Cost(2 * lu(4), 0)
    # slogdet runs two primitives: the sign and log|det|, one factorization each
    assert jl.count_flops(lambda a: np.linalg.slogdet(a).logabsdet, W) == Cost(2 * lu(4), 0)


def cofactor_flops(n):
    """det's rules at a well-conditioned matrix: det(a) a⁻ᵀ by LU (det's factorization, inv, n² products)."""
    return lu(n) + 2 * n ** 3 + n * n


def svd_cofactor_flops(n):
    """...and, where it is not, from the SVD as well: a's balancing, the SVD with vectors, the signs of
    det U and det V, U diag(±∏_{j≠i} s_j) Vᵀ."""
    return n * n + 22 * n ** 3 + 2 * lu(n) + (3 * n - 2) + n + n * n + 2 * n ** 3


@pytest.mark.parametrize("a, cofactor", [(W, cofactor_flops(4)),
                                         (np.diag([2.0, 1.0, 1.0, 1e-9]), cofactor_flops(4) + svd_cofactor_flops(4))],
                         ids=["well conditioned", "nearly singular"])
def test_det_derivatives_build_the_cofactor_matrix_once_per_pass(a, cofactor):
    # forward, 16 seeds in one pass: Σ C ⊙ ȧ per seed (n² products, n² - 1 adds)
    m = jl.measure(np.linalg.det, a, mode="forward", batch_size=16)
    assert m.passes == 1 and m.cost["tangent"] == Cost(cofactor + 16 * (2 * 16 - 1), 0)
    # reverse, one cotangent: ḡ C, n² products
    assert jl.measure(np.linalg.det, a, mode="reverse").cost["cotangent"] == Cost(cofactor + 16, 0)


def test_cofactor_derivative_pays_its_factors_once_and_each_seed_apart():
    from jacobian_lab.rules.cofactor import cofactor_tangent

    n, seeds = 4, RNG.standard_normal((3, 4, 4))
    once = n * n + 22 * n ** 3 + 2 * lu(n) + n * (3 * n - 2) + n * n  # balancing, SVD, signs, P_ik = ∏_{l≠i,k} s_l
    with counting() as c:
        cofactor_tangent(W, seeds)
    assert c.total() == Cost(once + 3 * (n * n + 8 * n ** 3 + 4 * n * n + n), 0)  # each seed balanced too


def test_solve_factorizes_once_per_pass_however_many_seeds():
    # The Jacobian of solve(W, b) in b, forward, 4 seeds in one pass: the tangents are the
    # 4 columns of one solve, so the tangent work is one factorization + 2n² per seed.
    m = jl.measure(lambda v: np.linalg.solve(W, v), RNG.standard_normal(4), mode="forward", batch_size=4)
    assert m.passes == 1
    assert m.cost["tangent"] == Cost(lu(4) + 2 * 16 * 4, 0)
    # Reverse, one sweep of 4 cotangent seeds: the same with Wᵀ
    m = jl.measure(lambda v: np.linalg.solve(W, v), RNG.standard_normal(4), mode="reverse", batch_size=4)
    assert m.cost["cotangent"] == Cost(lu(4) + 2 * 16 * 4, 0)


@pytest.mark.parametrize("batch_size", [1, 2, 4])
def test_reverse_mode_factorizes_a_solves_matrix_once_per_tape(batch_size):
    # one LU of W for every sweep (however many), then two triangular solves per seed
    f = lambda v: np.linalg.solve(W, v)  # noqa: E731
    m = jl.measure(f, RNG.standard_normal(4), mode="reverse", batch_size=batch_size)
    assert m.passes == 4 // batch_size
    assert m.cost["cotangent"] == Cost(lu(4) + 2 * 16 * 4, 0)
    assert jl.predict(f, RNG.standard_normal(4)).total("reverse", batch_size) == m.cost["primal"] + m.cost["cotangent"]
    # a stack of matrices broadcasts against the seeds: each seed's two solves factorize again
    stack = np.stack([W, W.T])
    m = jl.measure(lambda v: np.linalg.solve(stack, v), RNG.standard_normal((2, 4, 1)), mode="reverse",
                   batch_size=batch_size)
    assert m.cost["cotangent"] == Cost(8 * 2 * (lu(4) + 2 * 16), 0)


# --- cholesky, eigh, singular values ---------------------------------------------------------
# Per matrix (Golub & Van Loan): cholesky ⌊n³/3⌋; eigvalsh ⌊4n³/3⌋; eigh's eigenvalues and its
# eigenvectors 9n³ each (two primitives, each one LAPACK call); the singular values of an m×n
# matrix, M = max(m, n), N = min(m, n), ⌊4MN² − 4N³/3⌋; the thin U and V 14MN² + 8N³.
def cholesky_flops(n):
    return n ** 3 // 3


def eigvalsh_flops(n):
    return 4 * n ** 3 // 3


def eigh_flops(n):
    return 9 * n ** 3


def svdvals_flops(m, n):
    big, small = max(m, n), min(m, n)
    return math.floor(4 * big * small ** 2 - 4 * small ** 3 / 3)


def svd_vectors_flops(m, n):
    big, small = max(m, n), min(m, n)
    return 14 * big * small ** 2 + 8 * small ** 3


Q4 = np.linalg.qr(RNG.standard_normal((4, 4)))[0]
SPD4 = (Q4 * [0.5, 1.5, 2.5, 4.0]) @ Q4.T
SPD3 = SPD4[:3, :3] + np.eye(3)
G53 = RNG.standard_normal((5, 3))


def test_decompositions_count_lapacks_work():
    assert cholesky_flops(4) == 21 and eigvalsh_flops(4) == 85 and eigh_flops(4) == 576
    assert svdvals_flops(5, 3) == 144 and svdvals_flops(4, 2) == 53  # 4·4·4 − 32/3 = 53.3
    assert jl.count_flops(np.linalg.cholesky, SPD4) == Cost(21, 0)
    assert jl.count_flops(lambda a: np.linalg.cholesky(a, upper=True), np.stack([SPD4, 2 * SPD4])) == Cost(42, 0)
    assert jl.count_flops(np.linalg.eigvalsh, SPD4) == Cost(85, 0)
    # eigh runs both primitives, whichever part f goes on to use
    assert jl.count_flops(lambda a: np.linalg.eigh(a).eigenvalues, SPD4) == Cost(2 * 576, 0)
    assert jl.count_flops(lambda a: np.linalg.svd(a, compute_uv=False), G53) == Cost(144, 0)
    assert jl.count_flops(lambda a: np.linalg.svd(a, compute_uv=False), G53.T) == Cost(144, 0)  # M, N as for a
    stack = RNG.standard_normal((2, 4, 2))
    assert jl.count_flops(lambda a: np.linalg.svd(a, compute_uv=False), stack) == Cost(2 * 53, 0)
    # svd with U and Vh: two primitives as for eigh, the thin U and V and svd's own S, each one SVD with vectors
    assert svd_vectors_flops(5, 3) == 846
    assert jl.count_flops(lambda a: np.linalg.svd(a, full_matrices=False).S, G53) == Cost(2 * 846, 0)
    assert jl.count_flops(lambda a: np.linalg.svd(a)[0], G53[:3]) == Cost(2 * svd_vectors_flops(3, 3), 0)
    # the hermitian route is NumPy's: eigvalsh, then |w| (1 flop each), sorted and reversed for free
    assert jl.count_flops(lambda a: np.linalg.svd(a, compute_uv=False, hermitian=True), SPD4) == Cost(85 + 4, 0)


@pytest.mark.parametrize("ord, reduce", [(2, "max"), (-2, "min"), ("nuc", "sum")])
def test_singular_value_norms_count_the_values_and_one_reduction(ord, reduce):
    # svdvals of the 5×3 matrix (144), then max / min / sum of its 3 values: 2 flops
    expected = Cost(svdvals_flops(5, 3) + 2, 0)
    assert jl.count_flops(lambda a: np.linalg.norm(a, ord), G53) == expected
    assert jl.count_flops(lambda a: np.linalg.norm(a, ord, axis=(1, 0), keepdims=True), G53) == expected


def _derivative_work(f, x, mode, seeds):
    m = jl.measure(f, x, mode=mode, batch_size=seeds, repeat=1)
    assert m.passes == 1
    return m.cost["tangent" if mode == "forward" else "cotangent"]


def test_cholesky_rules_invert_the_factor_once_per_pass():
    n, k = 3, 9  # all 9 seeds in one pass
    mm = 2 * n ** 3  # one n×n matmul
    # forward: L⁻¹ (inv, 2n³) once; per seed L⁻¹ Ȧ_sym (the read is a gather: free), · L⁻ᵀ,
    # Φ (a multiply, n²), L · : three matmuls and n²
    assert _derivative_work(np.linalg.cholesky, SPD3, "forward", k) == Cost(2 * n ** 3 + k * (3 * mm + n * n), 0)
    # reverse: L⁻¹ once per tape; per seed Lᵀ L̄, Φ, L⁻ᵀ · and · L⁻¹, then the scatter-add onto
    # the lower triangle: n(n − 1)/2 off-diagonal pairs meet, 1 flop each
    assert _derivative_work(np.linalg.cholesky, SPD3, "reverse", k) == Cost(
        2 * n ** 3 + k * (3 * mm + n * n + n * (n - 1) // 2), 0)


def test_eigen_rules_compute_their_other_factor_once_per_pass():
    n, mm = 3, 2 * 3 ** 3
    # eigvalsh forward, 9 seeds: V (eigh_vectors, 9n³) once; per seed Ȧ_sym V (a matmul), V ∘ (n²)
    # and the column sums (n outputs of n − 1 additions)
    assert _derivative_work(np.linalg.eigvalsh, SPD3, "forward", 9) == Cost(
        eigh_flops(n) + 9 * (mm + n * n + n * (n - 1)), 0)
    # eigvalsh reverse, 3 seeds: V once; per seed V diag(w̄) (n²), · Vᵀ (a matmul), the scatter-add
    assert _derivative_work(np.linalg.eigvalsh, SPD3, "reverse", 3) == Cost(
        eigh_flops(n) + 3 * (n * n + mm + n * (n - 1) // 2), 0)
    # eigh's eigenvectors, reverse, 9 seeds: w (eigvalsh) and F = 1/(w_j − w_i) (a subtract, an add
    # of the identity, a divide: 3n²) once; per seed Vᵀ V̄, F ∘, V ·, · Vᵀ, and the scatter-add.
    # No cotangent reaches the eigenvalues' primitive, so its rule does not run.
    vectors = lambda a: np.linalg.eigh(a).eigenvectors  # noqa: E731
    assert _derivative_work(vectors, SPD3, "reverse", 9) == Cost(
        eigvalsh_flops(n) + 3 * n * n + 9 * (3 * mm + n * n + n * (n - 1) // 2), 0)
    # forward computes both tangents: the eigenvectors' (per seed Vᵀ Ȧ_sym, · V, F ∘, V ·) and the
    # eigenvalues' (as eigvalsh's above)
    assert _derivative_work(vectors, SPD3, "forward", 9) == Cost(
        eigvalsh_flops(n) + 3 * n * n + 9 * (3 * mm + n * n) + eigh_flops(n) + 9 * (mm + n * n + n * (n - 1)), 0)


def test_singular_value_rules_compute_the_vectors_once_per_pass():
    m, n, r = 4, 2, 2
    a = RNG.standard_normal((m, n))
    values = lambda a: np.linalg.svd(a, compute_uv=False)  # noqa: E731
    # forward, 8 seeds: U and V (14MN² + 8N³) once; per seed Ȧ V (2·m·n·r), U ∘ (m·r), the
    # column sums (r outputs of m − 1 additions)
    assert _derivative_work(values, a, "forward", 8) == Cost(
        svd_vectors_flops(m, n) + 8 * (2 * m * n * r + m * r + r * (m - 1)), 0)
    # reverse, 2 seeds: U, V once; per seed U diag(s̄) (m·r) and · Vᵀ (2·m·r·n)
    assert _derivative_work(values, a, "reverse", 2) == Cost(svd_vectors_flops(m, n) + 2 * (m * r + 2 * m * r * n), 0)
    # svd's S has the same rules; in reverse mode, when U and Vh are unused, theirs never runs
    svd_s = lambda a: np.linalg.svd(a, full_matrices=False).S  # noqa: E731
    assert _derivative_work(svd_s, a, "reverse", 2) == _derivative_work(values, a, "reverse", 2)


def test_cond_and_tensor_solves_count_the_functions_they_compose():
    n = 3
    a = RNG.standard_normal((n, n)) + 3 * np.eye(n)
    # the singular values and one divide
    assert jl.count_flops(np.linalg.cond, a) == Cost(svdvals_flops(n, n) + 1, 0)
    # inv (2n³); per norm |·| (n²), n column sums of n − 1 additions and their max (n − 1); the product
    one_norm = n * n + n * (n - 1) + n - 1
    assert jl.count_flops(lambda a: np.linalg.cond(a, 1), a) == Cost(2 * n ** 3 + 2 * one_norm + 1, 0)
    # tensorsolve and tensorinv reshape for free around one solve (one right-hand side) or inv of the 8×8 matrix
    t = RNG.standard_normal((4, 2, 4, 2))
    assert jl.count_flops(lambda t: np.linalg.tensorsolve(t, np.ones((4, 2))), t) == Cost(lu(8) + 2 * 64, 0)
    assert jl.count_flops(np.linalg.tensorinv, t) == Cost(2 * 8 ** 3, 0)


def test_singular_vector_rule_builds_its_factors_once_per_tape():
    m, n, r = 4, 2, 2  # tall: U has a projector term
    a = RNG.standard_normal((m, n))
    vh = lambda a: np.linalg.svd(a, full_matrices=False).Vh  # noqa: E731
    # once per tape: s (svdvals), s², F = 1/(s_j² − s_i²) (a subtract, an add of the identity, a
    # divide: 3r²) and 1/s (r). Per seed: X = Uᵀ Ū and Y = Vᵀ V̄ (2r²m, 2r²n); the core
    # (F ∘ (X − Xᵀ)) S + S (F ∘ (Y − Yᵀ)) (7r²); U · core (2mr²); the projector term
    # (Ū − U X) S⁻¹ added (2mr² + 3mr); · Vᵀ (2mrn). Ū is zero-filled around V̄ for free.
    per_seed = 2 * r * r * m + 2 * r * r * n + 7 * r * r + 2 * m * r * r + 2 * m * r * r + 3 * m * r + 2 * m * r * n
    assert _derivative_work(vh, a, "reverse", 4) == Cost(svdvals_flops(m, n) + 2 * r + 3 * r * r + 4 * per_seed, 0)


# --- QR, pinv, lstsq --------------------------------------------------------------------------
# Per m×n matrix, M = max(m, n), N = min(m, n) (Golub & Van Loan §5.2.2, §5.1.6): Householder R
# ⌊2MN² − 2N³/3⌋, the thin Q (m×N) ⌊2mN² − 2N³/3⌋ more; pinv the SVD with vectors, then 1/s (N),
# S⁺ Uᵀ (N·m) and V (S⁺ Uᵀ) (2·n·N·m).
def qr_r_flops(m, n):
    big, small = max(m, n), min(m, n)
    return math.floor(2 * big * small ** 2 - 2 * small ** 3 / 3)


def thin_q_flops(m, n):
    small = min(m, n)
    return math.floor(2 * m * small ** 2 - 2 * small ** 3 / 3)


def pinv_flops(m, n):
    small = min(m, n)
    return svd_vectors_flops(m, n) + small + small * m + 2 * n * small * m


def test_qr_pinv_and_lstsq_count_lapacks_work():
    assert qr_r_flops(5, 3) == thin_q_flops(5, 3) == 72 and qr_r_flops(4, 2) == 26  # 32 − 16/3 = 26.7
    assert qr_r_flops(3, 5) == 72 and thin_q_flops(3, 5) == 36  # wide: R as for the transpose, Q 3×3
    assert pinv_flops(5, 3) == 630 + 216 + 3 + 15 + 90 and pinv_flops(3, 5) == 630 + 216 + 3 + 9 + 90
    assert jl.count_flops(lambda a: np.linalg.qr(a).Q, G53) == Cost(144, 0)  # R, then the thin Q
    assert jl.count_flops(lambda a: np.linalg.qr(a, mode="r"), G53) == Cost(72, 0)  # R alone
    assert jl.count_flops(lambda a: np.linalg.qr(a).R, G53.T) == Cost(72 + 36, 0)
    assert jl.count_flops(lambda a: np.linalg.qr(a).R, RNG.standard_normal((2, 4, 2))) == Cost(2 * (26 + 26), 0)
    assert jl.count_flops(np.linalg.pinv, G53) == Cost(954, 0)
    assert jl.count_flops(np.linalg.pinv, G53.T) == Cost(948, 0)
    # lstsq, 6×3 and one right-hand side: pinv, x = a⁺ b (2·3·6), the singular values for s and the rank
    # (⌊4·6·9 − 4·27/3⌋ = 180), and the residual: a x (2·6·3), b − a x (6), its squares (6), their sum (5)
    b6 = RNG.standard_normal(6)
    a63 = RNG.standard_normal((6, 3))
    assert jl.count_flops(lambda a: np.linalg.lstsq(a, b6)[0], a63) == Cost(
        pinv_flops(6, 3) + 36 + 180 + 36 + 6 + 6 + 5, 0)
    # wide 3×5: no residuals, so no residual work
    assert jl.count_flops(lambda a: np.linalg.lstsq(a, b6[:3])[0], G53.T) == Cost(948 + 30 + 144, 0)


def test_qr_rules_invert_r_once_per_pass():
    m, n, k = 5, 3, 15  # all 15 seeds in one pass
    q = lambda a: np.linalg.qr(a).Q  # noqa: E731
    # forward: R⁻¹ (inv, 2n³) once; per seed Ȧ R⁻¹ and Qᵀ · (2mn² each), Y = triu(X) + tril(X, −1)ᵀ
    # (a scatter-add: n(n − 1)/2), Q Y (2mn²), Ȧ R⁻¹ − Q Y (mn), Y R (2n³)
    assert _derivative_work(q, G53, "forward", k) == Cost(
        2 * n ** 3 + k * (6 * m * n * n + 2 * n ** 3 + m * n + 3), 0)
    # reverse: R⁻¹ once per tape; per seed R̄ Rᵀ (2n³), Qᵀ Q̄ (2mn²), their difference (n²), the gather
    # (free), Q X̄ (2mn²), Q̄ + Q X̄ (mn), · R⁻ᵀ (2mn²)
    assert _derivative_work(q, G53, "reverse", k) == Cost(
        2 * n ** 3 + k * (6 * m * n * n + 2 * n ** 3 + n * n + m * n), 0)
    # mode='r': Q from one `qr` (144) and R⁻¹ once; forward per seed two products (2mn² each), the
    # scatter-add and Y R; reverse per seed R̄ Rᵀ, Q X̄ and · R⁻ᵀ
    r = lambda a: np.linalg.qr(a, mode="r")  # noqa: E731
    once = qr_r_flops(m, n) + thin_q_flops(m, n) + 2 * n ** 3
    assert _derivative_work(r, G53, "forward", k) == Cost(once + k * (4 * m * n * n + 3 + 2 * n ** 3), 0)
    assert _derivative_work(r, G53, "reverse", 9) == Cost(once + 9 * (2 * n ** 3 + 4 * m * n * n), 0)


def test_pinv_rules_check_the_rank_on_the_singular_values_once_per_pass():
    m, n, k = 5, 3, 15
    svdvals_53 = svdvals_flops(m, n)
    # tall, forward: the singular values (the rank test) and P Pᵀ (2mn²) once; per seed H = P Pᵀ Ȧᵀ,
    # P Ȧ, H A and (P Ȧ + H A) P (2mn² each), the sum (n²) and H − … (nm)
    assert _derivative_work(np.linalg.pinv, G53, "forward", k) == Cost(
        svdvals_53 + 2 * m * n * n + k * (8 * m * n * n + n * n + n * m), 0)
    # tall, reverse: the same once per tape; per seed Z = P̄ᵀ P Pᵀ, P Z, A (P Z), P̄ Pᵀ, Pᵀ (P̄ Pᵀ) (2mn²
    # each) and two differences (mn each)
    assert _derivative_work(np.linalg.pinv, G53, "reverse", k) == Cost(
        svdvals_53 + 2 * m * n * n + k * (10 * m * n * n + 2 * m * n), 0)
    # wide 3×5, forward: Pᵀ P (2m²n with m = 3) once; per seed K = Ȧᵀ Pᵀ P, Ȧ P, A K, P (Ȧ P + A K)
    # (2m²n each), the sum (m²) and K − … (nm)
    assert _derivative_work(np.linalg.pinv, G53.T, "forward", k) == Cost(
        svdvals_53 + 2 * 9 * 5 + k * (8 * 9 * 5 + 9 + 15), 0)
    # square: −P Ȧ P, two n×n products and a negation (n²) per seed
    assert _derivative_work(np.linalg.pinv, G53[:3], "forward", 9) == Cost(svdvals_flops(3, 3) + 9 * (4 * 27 + 9), 0)


# --- matmul -------------------------------------------------------------------------------
MATMULS = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
           ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((4,), (2, 4, 3))]


@pytest.mark.parametrize("a_shape, b_shape", MATMULS)
def test_matmul_traced_times_constant(a_shape, b_shape):
    a, b = RNG.standard_normal(a_shape), RNG.standard_normal(b_shape)
    expected = matmul_cost(a_shape, b_shape)
    assert jl.count_flops(lambda x: x @ b, a) == expected
    assert jl.count_flops(lambda x: np.matmul(a, x), b) == expected


def test_matmul_traced_times_traced_and_dot():
    x = RNG.standard_normal((3, 4))
    assert jl.count_flops(lambda x: x @ x.T, x) == matmul_cost((3, 4), (4, 3))
    assert jl.count_flops(lambda x: np.dot(x, C4), x) == matmul_cost((3, 4), (4,))
    assert jl.count_flops(lambda x: np.dot(x[0], x[1]), x) == matmul_cost((4,), (4,))
    assert jl.count_flops(lambda x: x[0].dot(x.T), x) == matmul_cost((4,), (4, 3))


# --- reductions ---------------------------------------------------------------------------
X345 = RNG.uniform(0.5, 1.5, (3, 4, 5))
AXES = [None, 0, 1, -1, (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("reduction", [np.sum, np.prod, np.max, np.min], ids=lambda r: r.__name__)
def test_sum_prod_max_min(reduction, axis, keepdims):
    f = lambda x: reduction(x, axis=axis, keepdims=keepdims)
    assert jl.count_flops(f, X345) == reduce_cost(X345.shape, axis)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
def test_mean(axis, keepdims):
    assert jl.count_flops(lambda x: np.mean(x, axis=axis, keepdims=keepdims), X345) == mean_cost(X345.shape, axis)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_cumsum_and_cumprod(axis):
    assert jl.count_flops(lambda x: np.cumsum(x, axis=axis), X345) == cumsum_cost(X345.shape, axis)
    assert jl.count_flops(lambda x: np.cumprod(x, axis=axis), X345) == cumsum_cost(X345.shape, axis)


def test_cumprod_derivative_work_without_and_with_a_zero():
    # Reverse sweep of k = 4 seeds over cumprod of 4 values (one line), x without zeros:
    # staged once: x == 0 to choose the route (4), 1 / x (4); per sweep: g * y (16),
    # reversed cumsum (4 * 3), times 1 / x (16)
    x = np.array([0.5, 2.0, -1.5, 0.8])
    m = jl.measure(np.cumprod, x, mode="reverse", batch_size=4)
    assert m.cost["cotangent"] == Cost(4 + 4 + 16 + 12 + 16, 0)
    # With a zero, staging runs: x == 0, x with zeros read as 1 (where) and its cumprod (4 + 4 + 3);
    # `_zero_terms` over prefixes: the zeros as 1/0 and as x (where, where), their counts and sums
    # (2 cumsums), == 1, == 2, the pair (square, square, cumsum, subtract, halve), F for the nonzero
    # elements (== 0 and three wheres), 1 / x and where, and the zeros' two Fs (where, where; where):
    # 4 + 4 + 3 + 3 + 4 + 4 + (4 + 4 + 3 + 4 + 4) + 16 + 8 + 8 + 4.
    # Each sweep: g * q (16), then per term times F (16), reversed cumsum (4 * 3) and times G (16),
    # and the three terms added (2 * 16)
    z = np.array([0.5, 0.0, -1.5, 0.8])
    m = jl.measure(np.cumprod, z, mode="reverse", batch_size=4)
    staged = 4 + 4 + 3 + 4 + 4 + 3 + 3 + 4 + 4 + (4 + 4 + 3 + 4 + 4) + 16 + 8 + 8 + 4
    assert m.cost["cotangent"] == Cost(staged + 16 + 3 * (16 + 12 + 16) + 2 * 16, 0)


def test_cumsum_of_flattened_input_and_methods():
    assert jl.count_flops(np.cumsum, X345) == cumsum_cost((60,), 0)
    assert jl.count_flops(lambda x: x.sum(axis=1), X345) == reduce_cost(X345.shape, 1)
    assert jl.count_flops(lambda x: x.max(), X345) == reduce_cost(X345.shape)
    assert jl.count_flops(lambda x: np.trace(x[0]), X345) == reduce_cost((4,))  # x[0] is 4x5: 4 diagonal entries


# --- shape operations cost nothing --------------------------------------------------------
SHAPE_OPS = [
    ("reshape", lambda x: x.reshape(4, 15)), ("ravel", np.ravel), ("transpose", np.transpose),
    (".T", lambda x: x.T), ("swapaxes", lambda x: np.swapaxes(x, 0, 2)), ("moveaxis", lambda x: np.moveaxis(x, 0, -1)),
    ("expand_dims", lambda x: np.expand_dims(x, 1)), ("squeeze", lambda x: np.squeeze(x[:, :1])),
    ("slice", lambda x: x[::-1, 1:3, None]), ("integer gather", lambda x: x[[0, 0, 2], 1]),
    ("boolean mask", lambda x: x[X345 > 1.0]), ("take", lambda x: np.take(x, [1, 1], axis=2)),
    ("broadcast_to", lambda x: np.broadcast_to(x, (2, 3, 4, 5))), ("concatenate", lambda x: np.concatenate([x, x], 1)),
    ("stack", lambda x: np.stack([x, x])), ("hstack", lambda x: np.hstack([x, x])), ("vstack", lambda x: np.vstack([x, x])),
    ("tile", lambda x: np.tile(x, (2, 1, 1))), ("repeat", lambda x: np.repeat(x, 2, axis=0)), ("flip", np.flip),
]


@pytest.mark.parametrize("f", [pytest.param(f, id=name) for name, f in SHAPE_OPS])
def test_shape_operations_are_free(f):
    assert jl.count_flops(f, X345) == FREE


# --- derivative phases: symbolic zeros ----------------------------------------------------------
def _phases(fn, *args):
    with counting() as c:
        fn(*args)
    return c.cost("primal"), c.cost("tangent"), c.cost("cotangent")


def test_constant_factor_costs_no_tangent_work():
    # c * x: the constant c has no tangent, so a pass pays one multiply t * c of 4 elements
    # and nothing for c's side; 4 passes of one seed each.
    c = RNG.standard_normal(4)
    primal, tangent, cotangent = _phases(jl.jacfwd(lambda x: c * x, batch_size=1), np.ones(4))
    assert tangent == 4 * elementwise(4)
    assert primal == 4 * elementwise(4)
    assert cotangent == FREE


def test_adding_a_constant_costs_no_tangent_work():
    # x + c: the tangent of x passes through unchanged (identity partial, no broadcast needed).
    _, tangent, _ = _phases(jl.jacfwd(lambda x: x + C4, batch_size=1), np.ones(4))
    assert tangent == FREE


@pytest.mark.parametrize("f, operands", [
    (lambda x: x[1:] - x[:-1], "both traced: one subtract ṫa - ṫb"),
    (lambda x: x[1:] + x[:-1], "both traced: one add"),
    (lambda x: C4 - x, "the second alone: its negation"),
])
def test_a_difference_costs_one_flop_per_tangent_element(f, operands):
    """The tangent of a - b is one subtract per element and seed, as for a + b (not a negation and an add)."""
    x = np.ones(4)
    _, tangent, _ = _phases(jl.jacfwd(f, batch_size=4), x)
    assert tangent == 4 * elementwise(np.size(f(x))), operands


def test_constant_subexpression_costs_no_derivative_work():
    # np.sin(c) on a plain array is plain NumPy: it never reaches a primitive, so it is
    # neither traced nor counted (the counter sees primitives only). What matters is
    # that it adds no derivative work: the derivative phases hold the multiply alone.
    c = np.linspace(0.0, 1.0, 4)
    f = lambda x: x * np.sin(c)
    # forward, 4 passes of one seed: primal multiply 4 flops per pass; tangent t * sin(c),
    # 4 flops per pass, and no transcendental anywhere.
    primal, tangent, cotangent = _phases(jl.jacfwd(f, batch_size=1), np.ones(4))
    assert primal == 4 * elementwise(4)
    assert tangent == 4 * elementwise(4)
    assert cotangent == FREE
    # reverse: one primal evaluation; 4 sweeps of g * sin(c).
    primal, tangent, cotangent = _phases(jl.jacrev(f, batch_size=1), np.ones(4))
    assert primal == elementwise(4)
    assert tangent == FREE
    assert cotangent == 4 * elementwise(4)


def test_subexpression_without_derivative_costs_primal_work_only():
    # floor runs as a primitive (N flops, primal) and returns a plain array, a constant
    # for the derivative: the product's tangent is t * floor(x), with no work for floor.
    f = lambda x: x * np.floor(x)
    x = np.array([0.5, 1.5, 2.5, -0.5])
    primal, tangent, _ = _phases(jl.jacfwd(f, batch_size=4), x)
    assert primal == elementwise(4) + elementwise(4)   # floor + multiply, one pass
    assert tangent == 4 * elementwise(4)               # t * floor(x) for 4 seeds of 4 elements


# --- vector mode ------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size, passes", [(1, 4), (2, 2), (4, 1), (None, 1)])
def test_vector_mode_sum_of_squares(batch_size, passes):
    """f = sum(x * x), n = 4, k seeds per pass.

    multiply(x, x) with both operands traced: t·x twice (2·k·n) plus their sum (k·n);
    sum over n: k·(n − 1). Nothing is seed-independent, so a pass of k seeds costs
    k·(4n − 1) = 15k and every schedule pays 4 · 15 = 60 in all.
    The primal (n multiplies + n − 1 adds = 7) is paid once per pass.
    """
    n = 4
    primal, tangent, _ = _phases(jl.jacfwd(lambda x: np.sum(x * x), batch_size=batch_size), np.ones(n))
    assert tangent == Cost(n * (4 * n - 1), 0)
    assert primal == passes * Cost(2 * n - 1, 0)


@pytest.mark.parametrize("batch_size, passes", [(1, 5), (2, 3), (5, 1)])
def test_vector_mode_pays_per_seed_work_per_seed_and_factors_per_pass(batch_size, passes):
    """f = sum(sin(x)), n = 5, k seeds per pass.

    sin's JVP builds cos(x) once per pass (n transcendentals, seed-independent) and
    multiplies the k tangents by it (k·n flops); sum adds k·(n − 1). Over all passes
    the per-seed flops total n·(2n − 1) whatever the batching; cos is paid per pass.
    """
    n = 5
    _, tangent, _ = _phases(jl.jacfwd(lambda x: np.sum(np.sin(x)), batch_size=batch_size), np.ones(n))
    assert tangent == Cost(n * (2 * n - 1), passes * n)


def test_one_pass_of_k_seeds_costs_k_times_one_seed():
    # Through the public jvp: a tangent batch of k directions vs one direction (f as above).
    n, k = 5, 3
    f = lambda x: np.sum(x * x)
    _, one, _ = _phases(jl.jvp, f, np.ones(n), np.ones(n))
    _, many, _ = _phases(jl.jvp, f, np.ones(n), np.ones((k, n)))
    assert one == Cost(4 * n - 1, 0) and many == k * one


# --- reverse mode: staging once per tape, accumulation at fan-out -------------------------------
def test_vjp_staging_happens_once_per_tape():
    """f = sum(sin(x)), n = 6.

    Staging: sin's pullback builds cos(x) (n transcendentals); sum's needs nothing.
    Each sweep of k cotangents: the sum's pullback only broadcasts (free); sin's multiplies
    k·n values. So the first sweep costs n + n·tr, every later sweep n flops.
    """
    n = 6
    _, pullback = jl.vjp(lambda x: np.sum(np.sin(x)), np.linspace(0, 1, n))
    _, _, first = _phases(pullback, np.array(1.0))
    _, _, second = _phases(pullback, np.array(1.0))
    _, _, batch = _phases(pullback, np.ones(3))
    assert first == Cost(n, n)
    assert second == Cost(n, 0)
    assert batch == Cost(3 * n, 0)
    assert (first + second).total() < (2 * first).total()


def test_jacrev_stages_once_for_all_rows():
    # sin on 4 inputs, 4 rows one at a time: cos(x) once (4 tr), then 4 sweeps of 4 multiplies.
    primal, tangent, cotangent = _phases(jl.jacrev(np.sin, batch_size=1), np.linspace(0, 1, 4))
    assert primal == transcendental(4)
    assert tangent == FREE
    assert cotangent == Cost(16, 4)


def test_fan_out_accumulates_one_flop_per_added_element():
    # x * x in reverse: the pullback gives g·x to each operand slot (2·n per sweep), and the
    # two cotangents of the same x are added (n per sweep): 3·n per row, n rows.
    n = 3
    _, _, cotangent = _phases(jl.jacrev(lambda x: x * x, batch_size=1), np.ones(n))
    assert cotangent == n * elementwise(3 * n)


def test_slice_reads_add_their_own_elements_into_the_cotangent():
    # x[1:] * x[:-1] in reverse, one sweep of k = n - 1 seeds: multiply's VJP is 2 (n - 1) per seed;
    # x[1:]'s cotangent lands in zeros (a placement), x[:-1]'s adds its n - 1 elements per seed.
    n = 5
    _, _, cotangent = _phases(jl.jacrev(lambda x: x[1:] * x[:-1]), np.ones(n))
    assert cotangent == (n - 1) * elementwise(2 * (n - 1) + (n - 1))


def test_a_loop_over_elements_adds_each_read_once():
    # s = x0 x1 + x1 x2 + ... as a Python loop, in reverse (one seed): each product's VJP is 2 flops, the
    # adds of the running sum pass g on (no flops), and of the 2 (n - 1) reads of one element of x, all
    # but the first add that element into x's cotangent: 2 (n - 1) + 2 (n - 1) - 1, linear in n.
    n = 7

    def f(x):
        s = x[0] * x[1]
        for i in range(1, n - 1):
            s = s + x[i] * x[i + 1]
        return s

    x = np.linspace(0.5, 2.0, n)
    _, _, cotangent = _phases(jl.jacrev(f), x)
    assert cotangent == elementwise(4 * (n - 1) - 1)
    expected = np.concatenate([[0.0], x[:-1]]) + np.concatenate([x[1:], [0.0]])  # x[i-1] + x[i+1]
    np.testing.assert_allclose(jl.jacrev(f)(x), expected, rtol=1e-15)


def test_gathers_in_a_loop_add_their_elements_into_the_cotangent():
    # s = sum over i of x[[i, i + 1]] . x[[i + 1, i + 2]], one seed: each gather's cotangent (2 elements) is
    # the product's VJP (2 per product: 4 flops with the sum's broadcast free); the first gather of x is the
    # rule's scatter-add into zeros (no repeat: 0 flops), each later one adds its 2 elements in place.
    n = 6

    def f(x):
        s = np.sum(x[[0, 1]] * x[[1, 2]])
        for i in range(1, n - 2):
            s = s + np.sum(x[[i, i + 1]] * x[[i + 1, i + 2]])
        return s

    x = np.linspace(0.5, 2.0, n)
    gathers = 2 * (n - 2)
    _, _, cotangent = _phases(jl.jacrev(f), x)
    assert cotangent == elementwise(2 * 2 * (n - 2) + 2 * (gathers - 1))
    np.testing.assert_allclose(jl.jacrev(f)(x), jl.jacfwd(f)(x), rtol=1e-15)


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("axis", [0, 1])
def test_gathers_of_long_rows_add_seed_by_seed_with_the_same_values_and_count(axis, batch_size, monkeypatch):
    """Rows of GATHER_ROW elements or more add seed by seed, where np.add.at takes NumPy's fast loop (nine times
    faster on long rows: jacrev of Lorenz-96's np.roll stencil at n = 1000, 36 ms against 22 now)."""
    from jacobian_lab.engines import reverse

    rng = np.random.default_rng(axis)
    x = rng.standard_normal((40, 12) if axis == 0 else (3, 40))
    idx = rng.integers(0, 40, size=(7, 5))  # repeats, and a 2-d index

    def f(x):
        a, b = np.take(x, idx, axis=axis), np.take(x, idx[::-1], axis=axis)
        return np.sum(a * b, axis=axis + 1) + np.sum(np.roll(x, 3, axis=axis) * x, axis=axis)[..., None, None][:1]

    results = {}
    for row in (1, 10**9):  # every gather seed by seed, then none
        monkeypatch.setattr(reverse, "GATHER_ROW", row)
        results[row] = jl.jacrev(f, batch_size=batch_size)(x), _phases(jl.jacrev(f, batch_size=batch_size), x)
    np.testing.assert_allclose(results[1][0], jl.jacfwd(f)(x), rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(results[1][0], results[10**9][0])
    assert results[1][1] == results[10**9][1]


@pytest.mark.parametrize("size", [1, 50, 10**6], ids=["one", "few", "sparse positions"])
def test_add_at_finds_its_distinct_positions_as_np_unique_does(size):
    """Found by marking them where there are few positions to mark, with no sort; else by np.unique."""
    from jacobian_lab.inplace import _distinct

    positions = np.random.default_rng(size).integers(0, size, 300)
    for got, expected in zip(_distinct(positions, size), np.unique(positions, return_inverse=True)):
        np.testing.assert_array_equal(got, expected.reshape(-1))
    idx = positions % 50

    def f(u):
        y = np.zeros_like(u, shape=50)
        np.add.at(y, idx, u[:300] ** 2)
        return y

    x = np.linspace(0.1, 2.0, 300)
    np.testing.assert_allclose(jl.jacrev(f)(x), jl.jacfwd(f)(x), rtol=1e-15)
    np.testing.assert_allclose(jl.jacrev(f)(x), np.eye(50)[idx].T * 2 * x, rtol=1e-15)


def test_gather_with_repeats_scatter_adds_one_flop_per_repeat():
    # x[[0, 0, 1]]: x[0] is gathered twice, so each row's scatter-add adds one element.
    _, _, cotangent = _phases(jl.jacrev(lambda x: x[[0, 0, 1]], batch_size=1), np.ones(2))
    assert cotangent == 3 * elementwise(1)
    # All three rows in one sweep: the addition happens once per seed.
    _, _, cotangent = _phases(jl.jacrev(lambda x: x[[0, 0, 1]], batch_size=3), np.ones(2))
    assert cotangent == 3 * elementwise(1)


def test_count_flops_is_the_primal_phase_of_a_jacobian():
    f = lambda x: np.sum(np.tanh(x @ np.ones((3, 2))) ** 3, axis=0)
    x = RNG.standard_normal((4, 3))
    primal, _, _ = _phases(jl.jacrev(f), x)
    expected = matmul_cost((4, 3), (3, 2)) + transcendental(8) + transcendental(8) + reduce_cost((4, 2), 0)
    assert jl.count_flops(f, x) == expected == primal


@pytest.mark.parametrize("two", [2, 2.0, np.float64(2.0), np.int32(2), np.array(2.0)])
def test_every_spelling_of_the_constant_exponent_two_is_a_flop(two):
    assert jl.count_flops(lambda x: x ** two, np.ones(5)) == Cost(5, 0)
    assert jl.count_flops(lambda x: np.power(x, two), np.ones(5)) == Cost(5, 0)
