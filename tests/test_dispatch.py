"""Errors that name the problem and the fix, in both engines; and NumPy signatures honoured.

Anything that would drop a derivative or silently change a value must raise:
an unsupported NumPy function, converting a tracer to a plain value, in-place
writes, arguments the primitives do not model. Inputs, outputs and arguments of
the public API are validated with messages that say what was expected.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import pickle
import re
import warnings
import weakref
from fractions import Fraction
from operator import setitem

import numpy as np
import pytest
from scipy import integrate, optimize, sparse, special
from helpers import assert_close, assert_fd_close, central_differences, traced_value

import jacobian_lab as jl
from jacobian_lab import snapshots
from jacobian_lab.inplace import ReadOnlyError
from jacobian_lab.tracing import Tracer

MODES = ["forward", "reverse"]
X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])


def run(f, mode, x=X):
    """f's Jacobian at x in `mode`: an order or auto, "jit" (compiled) or "sparse" (as a dense array)."""
    if mode == "jit":
        return jl.jit(jl.jacobian(f))(x)
    if mode == "sparse":
        J = jl.sparse_jacobian(f, x).toarray()
        return J.reshape(np.shape(traced_value(f, x)) + np.shape(x))
    return jl.jacobian(f, x, mode=mode)


# --- unsupported NumPy functions ------------------------------------------------------
UNSUPPORTED = [
    ("numpy.linalg.eig", lambda x: np.linalg.eig(x[:, :2] @ x[:, :2].T)),  # general, complex in general
    ("numpy.linalg.eigvals", lambda x: np.linalg.eigvals(x[:, :2] @ x[:, :2].T)),
    ("numpy.fft.fft", lambda x: np.fft.fft(x, axis=1)),
    ("numpy.histogram_bin_edges", lambda x: np.histogram_bin_edges(x[0], bins=3)),
    ("numpy.ldexp", lambda x: np.ldexp(x, 2)),
    ("numpy.multiply.reduceat", lambda x: np.multiply.reduceat(x, [0, 1], axis=1)),
    ("numpy.logaddexp.accumulate", lambda x: np.logaddexp.accumulate(x, axis=1)),
    ("numpy.fft.ifft", lambda x: np.fft.ifft(x, axis=1)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, f", UNSUPPORTED, ids=[n for n, _ in UNSUPPORTED])
def test_unsupported_function_is_named(name, f, mode):
    with pytest.raises(NotImplementedError, match=re.escape(name)) as info:
        run(f, mode)
    assert "primitive" in str(info.value)  # says how to get past it


@pytest.mark.parametrize("small", [1e-3, 1e-6, 1e-9, 1e-12])
def test_determinants_gradient_keeps_its_accuracy_as_the_matrix_nears_singular(small):
    """LU's det · a⁻ᵀ loses cond(a) ε of C's largest entries; past ε^(-1/4) the SVD's is taken."""
    rng = np.random.default_rng(5)
    u, v = np.linalg.qr(rng.standard_normal((4, 4)))[0], np.linalg.qr(rng.standard_normal((4, 4)))[0]
    s = np.array([2.0, 1.5, 1.0, small])
    a = (u * s) @ v.T
    others = np.array([np.prod(np.delete(s, i)) for i in range(4)])  # C = det U det V U diag(∏_{j≠i} s_j) Vᵀ
    exact = np.linalg.det(u) * np.linalg.det(v) * (u * others) @ v.T
    for g in (jl.grad(np.linalg.det)(a), jl.jacfwd(np.linalg.det)(a), jl.jit(jl.grad(np.linalg.det))(a)):
        assert np.abs(g - exact).max() <= 1e-13 * np.abs(exact).max()


def test_determinants_gradient_at_a_subnormal_determinant_and_of_no_rows():
    a = 1e-20 * np.eye(16)  # det 1e-320 has lost bits in the subnormal range: LU's det · a⁻ᵀ would too
    exact = np.diag(np.full(16, 1e-300))  # each cofactor the product of the other fifteen entries
    for g in (jl.grad(np.linalg.det)(a), jl.jacfwd(np.linalg.det)(a)):
        np.testing.assert_allclose(g, exact, rtol=1e-14, atol=1e-314)
    for a in (np.zeros((0, 0)), np.zeros((3, 0, 0))):  # a 0 x 0 determinant is 1, with no entries to move
        for J in (jl.jacrev(np.linalg.det)(a), jl.jacfwd(np.linalg.det)(a)):
            assert J.shape == np.shape(np.linalg.det(a)) + a.shape


@pytest.mark.parametrize("mode", MODES)
def test_determinants_derivatives_at_a_graded_matrix_keep_its_small_singular_values(mode):
    """cond ≈ 1e500: the SVD of diag(1e-200, 1e-200, 1e300) as it is loses the two small singular values
    (accurate relative to the largest), and the cofactors [1e100, 1e100, 1e-400 → 0] with them; its rows
    balanced by powers of 2 first, nothing is lost. So for a matrix whose rows are 300 orders apart."""
    a = np.diag([1e-200, 1e-200, 1e300])
    np.testing.assert_array_equal(jl.jacobian(np.linalg.det, a, mode=mode), np.diag([1e100, 1e100, 0.0]))
    H = jl.hessian(np.linalg.det, mode=mode)(a).reshape(9, 9)  # ∂²det/∂a_ii∂a_jj = a_kk, k the third index
    np.testing.assert_allclose([H[0, 4], H[0, 8], H[4, 8]], [1e300, 1e-200, 1e-200], rtol=1e-15)
    graded = np.array([[1e-150, 2e-150, 0.0], [3.0, 1.0, 2.0], [1e150, 0.0, 4e150]])  # rows 300 orders apart
    exact = np.linalg.det(graded) * np.linalg.inv(graded).T  # well conditioned once its rows are balanced
    np.testing.assert_allclose(jl.jacobian(np.linalg.det, graded, mode=mode), exact, rtol=1e-13)


def test_a_compiled_det_gradient_takes_the_route_each_matrix_needs():
    g, rng = jl.jit(jl.grad(np.linalg.det)), np.random.default_rng(6)
    well, nearly = rng.standard_normal((3, 3)) + 3 * np.eye(3), np.diag([1.0, 1.0, 1e-10])
    for a in (well, nearly, well + 0.1, nearly * 2.0):
        np.testing.assert_allclose(g(a), np.linalg.det(a) * np.linalg.inv(a).T, rtol=1e-6)
    assert g.compiles == 2  # one program per route, each replayed where its check holds


@pytest.mark.parametrize("mode", MODES)
def test_determinant_derivative_at_a_singular_matrix_is_its_cofactor_matrix(mode):
    """d det/da is the cofactor matrix at every matrix; log|det| has none where det is 0."""
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert np.linalg.det(singular) == 0.0
    assert_close(jl.jacobian(np.linalg.det, singular, mode=mode), np.array([[4.0, -2.0], [-2.0, 1.0]]), 1e-14)
    with pytest.raises(jl.DerivativeError, match="log-determinant at a singular matrix.*np.linalg.det"):
        jl.jacobian(lambda a: np.linalg.slogdet(a).logabsdet, singular, mode=mode)


def test_determinant_derivative_where_running_products_of_singular_values_overflow():
    """A 300×300 Gaussian matrix's largest singular values multiply past 1e308 though det and its
    cofactors do not; a cofactor that does overflow is inf, not NaN through inf · 0."""
    a = np.random.default_rng(3).standard_normal((300, 300))
    assert np.isfinite(np.linalg.det(a))
    assert_close(jl.grad(np.linalg.det)(a), np.linalg.det(a) * np.linalg.inv(a).T, 1e-10)
    np.testing.assert_allclose(jl.grad(np.linalg.det)(np.diag([1e200, 1e200, 1e-200])), np.diag([1.0, 1.0, np.inf]),
                               rtol=1e-15, atol=0)


@pytest.mark.parametrize("mode", MODES)
def test_a_stack_of_matrices_solves_a_vector_with_each(mode):
    """NumPy 2: a 1-D b is one vector for every matrix of the stack, (2, 3) for two 3×3 systems."""
    stack = np.stack([2.0 * np.eye(3) + 0.1, 3.0 * np.eye(3) - 0.2])
    b = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(traced_value(lambda a: np.linalg.solve(a, b), stack), np.linalg.solve(stack, b),
                               rtol=1e-15)
    J = jl.jacobian(lambda v: np.linalg.solve(stack, v), b, mode=mode)
    np.testing.assert_allclose(J, np.linalg.inv(stack), rtol=1e-14)  # d(a⁻¹ b)/db = a⁻¹, per matrix
    assert_fd_close(jl.jacobian(lambda a: np.linalg.solve(a, b), stack, mode=mode),
                    central_differences(lambda a: np.linalg.solve(a, b), stack))


def test_slogdet_returns_numpys_named_pair():
    y, _ = jl.jvp(lambda a: np.linalg.slogdet(a).logabsdet * np.linalg.slogdet(a)[0], -np.eye(3) * 2.0, np.eye(3))
    assert y == np.log(8.0) * -1.0


# --- cholesky, eigh, singular values ---------------------------------------------------------
RNG = np.random.default_rng(11)
Q3 = np.linalg.qr(RNG.standard_normal((3, 3)))[0]
SPD = (Q3 * [0.7, 1.6, 2.9]) @ Q3.T + np.triu(RNG.standard_normal((3, 3)), 1)  # noise in the unread triangle
G43 = RNG.standard_normal((4, 3))
STACK = RNG.standard_normal((2, 3, 4))

DECOMPOSITIONS = [
    ("cholesky", lambda a: np.linalg.cholesky(a), SPD),
    ("cholesky upper", lambda a: np.linalg.cholesky(a.T, upper=True), SPD),
    ("eigh values", lambda a: np.linalg.eigh(a).eigenvalues, SPD),
    ("eigh vectors", lambda a: np.linalg.eigh(a)[1], SPD),
    ("eigh UPLO='U'", lambda a: np.linalg.eigh(a.T, UPLO="U").eigenvectors, SPD),
    ("eigvalsh", lambda a: np.linalg.eigvalsh(a, "u"), SPD.T),
    ("svd values", lambda a: np.linalg.svd(a, compute_uv=False), G43),
    ("svd values, stacked wide", lambda a: np.linalg.svd(a, full_matrices=False, compute_uv=False), STACK),
    ("svd hermitian", lambda a: np.linalg.svd(a - 1.5 * np.eye(3), compute_uv=False, hermitian=True), SPD),
    ("svd U, tall", lambda a: np.linalg.svd(a, full_matrices=False).U, G43),
    ("svd S, tall", lambda a: np.linalg.svd(a, full_matrices=False).S, G43),
    ("svd Vh, tall", lambda a: np.linalg.svd(a, full_matrices=False).Vh, G43),
    ("svd U and Vh, stacked wide", lambda a: np.linalg.svd(a, full_matrices=False)[0].sum(-1)
     + np.linalg.svd(a, full_matrices=False)[2].sum(-1)[..., :3], STACK),
    ("svd, square with full matrices", lambda a: np.linalg.svd(a)[0] * np.linalg.svd(a)[1] + np.linalg.svd(a)[2],
     G43[:3]),
    ("norm 2, -2, nuc", lambda a: np.stack([np.linalg.norm(a, 2), np.linalg.norm(a, -2), np.linalg.norm(a, "nuc")]),
     G43),
    ("norm over axes (2, 0), keepdims", lambda a: np.linalg.norm(a, "nuc", axis=(2, 0), keepdims=True), STACK),
]
# QR and the pseudo-inverse at full rank: NumPy's own routines, so the same values bit for bit
G53 = RNG.standard_normal((5, 3))
G35 = RNG.standard_normal((3, 5))
STACK_TALL = RNG.standard_normal((2, 4, 3))
DECOMPOSITIONS += [
    ("qr Q", lambda a: np.linalg.qr(a).Q, G43),
    ("qr R", lambda a: np.linalg.qr(a)[1], G43),
    ("qr square", lambda a: np.linalg.qr(a).Q @ np.diag(np.linalg.qr(a).R.diagonal()), G43[:3]),
    ("qr stacked", lambda a: np.linalg.qr(a).R, STACK_TALL),
    ("qr mode='r'", lambda a: np.linalg.qr(a, mode="r"), G53),
    ("qr mode='complete', square", lambda a: np.linalg.qr(a, mode="complete").Q, G53[:3]),
    ("pinv tall", lambda a: np.linalg.pinv(a), G53),
    ("pinv wide", lambda a: np.linalg.pinv(a), G35),
    ("pinv square", lambda a: np.linalg.pinv(a), G43[:3]),
    ("pinv stacked, rtol=None", lambda a: np.linalg.pinv(a, rtol=None), STACK_TALL),
    ("pinv rcond", lambda a: np.linalg.pinv(a, 1e-3), G35),
]
# cond, tensorsolve and tensorinv: compositions of the primitives above, NumPy's values bit for bit
T4 = RNG.standard_normal((4, 2, 4, 2))  # as a matrix: rows from the first two axes, 8×8
DECOMPOSITIONS += [
    ("cond", lambda a: np.linalg.cond(a), G43[:3]),
    ("cond -2, stacked", lambda a: np.linalg.cond(a, -2), STACK[:, :, :3]),
    ("cond 1, -inf, fro and nuc", lambda a: np.stack([np.linalg.cond(a, p) for p in (1, -np.inf, "fro", "nuc")]),
     G43[:3]),
    ("cond of a wide matrix", lambda a: np.linalg.cond(a, 2), G43.T),
    ("tensorsolve", lambda a: np.linalg.tensorsolve(a, T4[:, :, 0, 0]), T4),
    ("tensorsolve, axes", lambda a: np.linalg.tensorsolve(a, np.ones((4, 2)), axes=(1, 0)), T4),
    ("tensorinv", lambda a: np.linalg.tensorinv(a, ind=2), T4),
    ("tensorinv, ind=1", lambda a: np.linalg.tensorinv(a, ind=1), G43[:3]),
]
if hasattr(np.linalg, "svdvals"):
    DECOMPOSITIONS += [
        ("svdvals", lambda a: np.linalg.svdvals(a), STACK),
        ("matrix_norm", lambda a: np.linalg.matrix_norm(a, ord=-2, keepdims=True) + np.linalg.matrix_norm(a, ord=2),
         STACK),
    ]


@pytest.mark.parametrize("name, f, x", DECOMPOSITIONS, ids=[n for n, _, _ in DECOMPOSITIONS])
def test_decompositions_compute_numpys_values(name, f, x):
    np.testing.assert_array_equal(traced_value(f, x), f(x))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, f, x", DECOMPOSITIONS, ids=[n for n, _, _ in DECOMPOSITIONS])
def test_decompositions_match_central_differences(name, f, x, mode):
    assert_fd_close(jl.jacobian(f, x, mode=mode), central_differences(f, x), name)


NAMED_PAIRS = [
    ("eigh", np.linalg.eigh, SPD, "EighResult", ("eigenvalues", "eigenvectors")),
    ("qr", np.linalg.qr, G43, "QRResult", ("Q", "R")),
    ("svd", lambda a: np.linalg.svd(a, full_matrices=False), G43, "SVDResult", ("U", "S", "Vh")),
]


@pytest.mark.parametrize("name, fn, x, type_name, fields", NAMED_PAIRS, ids=[p[0] for p in NAMED_PAIRS])
def test_decompositions_return_numpys_named_pairs(name, fn, x, type_name, fields):
    seen = []

    def f(a):
        seen.append(fn(a))
        return seen[-1][1]

    jl.jacobian(f, x, mode="reverse")
    result, expected = seen[0], fn(x)
    assert type(result).__name__ == type(expected).__name__ == type_name
    assert result._fields == expected._fields == fields
    for traced, plain in zip(result, expected):
        np.testing.assert_array_equal(traced.primal, plain)


# lstsq: x = pinv(a) @ b, NumPy's solution up to rounding; residuals, rank and s as NumPy returns them
A63 = RNG.standard_normal((6, 3))
B6 = RNG.standard_normal(6)
B62 = RNG.standard_normal((6, 2))
LSTSQ = [("tall, b a vector", A63, B6), ("tall, b two columns", A63, B62), ("square", A63[:3], B6[:3]),
         ("square, b two columns", A63[:3], B62[:3]),
         ("wide 2×3: the minimum-norm solution", A63[:2], B62[:2])]


def _lstsq_traced(a, b):
    """np.linalg.lstsq's four results with a and b traced (forward engine, values only)."""
    out = []

    def f(v):
        x, residuals, rank, s = np.linalg.lstsq(v[:a.size].reshape(a.shape), v[a.size:].reshape(b.shape))
        out.append((x.primal, residuals if isinstance(residuals, np.ndarray) else residuals.primal, rank, s.primal))
        return x

    jl.engines.get("forward").jvp(f, np.concatenate([a.ravel(), b.ravel()]), np.ones((1, a.size + b.size)))
    return out[0]


@pytest.mark.parametrize("name, a, b", LSTSQ, ids=[n for n, _, _ in LSTSQ])
def test_lstsq_computes_numpys_results(name, a, b):
    x, residuals, rank, s = _lstsq_traced(a, b)
    x_np, residuals_np, rank_np, s_np = np.linalg.lstsq(a, b)
    np.testing.assert_allclose(x, x_np, rtol=1e-12, atol=1e-12 * np.abs(x_np).max())
    assert x.shape == x_np.shape and residuals.shape == residuals_np.shape and residuals.dtype == residuals_np.dtype
    np.testing.assert_allclose(residuals, residuals_np, rtol=1e-12)
    assert rank == rank_np and type(rank) is type(rank_np)
    np.testing.assert_allclose(s, s_np, rtol=1e-13)


def test_lstsq_of_a_rank_deficient_constant_matrix_reports_numpys_rank_and_no_residuals():
    a = np.column_stack([A63[:, :2], A63[:, 0] + A63[:, 1]])  # rank 2
    x_np, residuals_np, rank_np, _ = np.linalg.lstsq(a, B6)
    seen = []

    def f(b):
        seen.append(np.linalg.lstsq(a, b))
        return seen[-1][0]

    J = jl.jacobian(f, B6)  # x = a⁺ b: the derivative in b is a⁺, defined at any rank
    x, residuals, rank, _ = seen[0]
    assert rank == rank_np == 2 and residuals.shape == residuals_np.shape == (0,)
    np.testing.assert_allclose(x.primal, x_np, rtol=1e-12)
    np.testing.assert_allclose(J, np.linalg.pinv(a), rtol=1e-12, atol=1e-15)


def _lstsq_packed(a_shape, b_shape, part):
    """x (part 0) or the residuals (part 1) of lstsq as a function of a and b packed into one vector."""
    size = math.prod(a_shape)
    return lambda v: np.linalg.lstsq(v[:size].reshape(a_shape), v[size:].reshape(b_shape))[part]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("part", [0, 1], ids=["x", "residuals"])
@pytest.mark.parametrize("name, a, b", LSTSQ[:2], ids=[n for n, _, _ in LSTSQ[:2]])
def test_lstsq_matches_central_differences(name, a, b, part, mode):
    f, v = _lstsq_packed(a.shape, b.shape, part), np.concatenate([a.ravel(), b.ravel()])
    assert_fd_close(jl.jacobian(f, v, mode=mode), central_differences(f, v), name)


@pytest.mark.parametrize("mode", MODES)
def test_lstsq_of_a_wide_matrix_matches_central_differences(mode):
    _, a, b = LSTSQ[-1]
    f, v = _lstsq_packed(a.shape, b.shape, 0), np.concatenate([a.ravel(), b.ravel()])
    assert_fd_close(jl.jacobian(f, v, mode=mode), central_differences(f, v), "wide")


@pytest.mark.parametrize("mode", MODES)
def test_lstsq_singular_values_match_central_differences(mode):
    f = lambda a: np.linalg.lstsq(a, B6)[3]  # noqa: E731
    assert_fd_close(jl.jacobian(f, A63, mode=mode), central_differences(f, A63), "s")


# --- refusals of QR, pinv and lstsq --------------------------------------------------------------
RANK_DEFICIENT = np.column_stack([G53[:, :2], G53[:, 0] - 2.0 * G53[:, 1]])  # column 3 depends on 1 and 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [lambda a: np.linalg.qr(a).Q, lambda a: np.linalg.qr(a, mode="r")],
                         ids=["reduced", "r"])
def test_qr_derivative_of_a_wide_matrix_is_refused_naming_its_shape(f, mode):
    with pytest.raises(NotImplementedError, match="np.linalg.qr of a wide 3×5 matrix"):
        jl.jacobian(f, G35, mode=mode)


def test_qr_of_a_wide_matrix_has_numpys_value_when_no_derivative_reaches_it():
    assert jl.count_flops(lambda a: np.linalg.qr(a).Q, G35).flops > 0  # evaluated, not refused
    seen = []

    def f(a):
        seen.append(np.linalg.qr(a))
        return np.sum(a ** 2)  # Q and R go unused: reverse mode never asks for their derivative

    J = jl.jacobian(f, G35, mode="reverse")
    np.testing.assert_allclose(J, 2 * G35)
    np.testing.assert_array_equal(seen[0].Q.primal, np.linalg.qr(G35).Q)
    np.testing.assert_array_equal(seen[0].R.primal, np.linalg.qr(G35).R)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [lambda a: np.linalg.qr(a).Q, lambda a: np.linalg.qr(a).R,
                               lambda a: np.linalg.qr(a, mode="r")], ids=["Q", "R", "mode r"])
def test_qr_derivative_at_a_rank_deficient_matrix_is_refused(f, mode):
    assert np.linalg.matrix_rank(RANK_DEFICIENT) == 2
    with pytest.raises(jl.DerivativeError, match="np.linalg.qr does not exist .* full column rank"):
        jl.jacobian(f, RANK_DEFICIENT, mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_qr_of_a_full_rank_matrix_with_a_scaled_column_is_differentiated(mode):
    """Rank is read per column (R's diagonal against its column's norm), not against R's largest
    entry: a column scaled by 1e11 is no dependent one. Q does not move with that column's scale."""
    b = np.array([[1.0, 0.5, -0.2], [0.3, -1.0, 0.7], [-0.4, 0.2, 1.5], [0.8, 0.9, 0.1]]) * [1e11, 1.0, 1.0]
    J = jl.jacobian(lambda a: np.linalg.qr(a).Q, b, mode=mode)
    direction = np.random.default_rng(5).standard_normal(b.shape) * [1e11, 1.0, 1.0]
    h = 1e-7
    fd = (np.linalg.qr(b + h * direction).Q - np.linalg.qr(b - h * direction).Q) / (2 * h)
    np.testing.assert_allclose(np.tensordot(J, direction, axes=2), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("a", [RANK_DEFICIENT, RANK_DEFICIENT.T, np.zeros((3, 3))], ids=["tall", "wide", "zero"])
def test_pinv_derivative_at_a_rank_deficient_matrix_is_refused(a, mode):
    with pytest.raises(jl.DerivativeError, match="np.linalg.pinv does not exist at a rank-deficient matrix"):
        jl.jacobian(np.linalg.pinv, a, mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_pinv_cutoff_is_numpys_rcond(mode):
    # singular values 2, 1e-3: full rank for the default rcond, rank-deficient for rcond 1e-2
    a = (np.eye(3)[:, :2] * [2.0, 1e-3]) @ np.array([[0.6, 0.8], [-0.8, 0.6]])
    assert np.all(np.isfinite(jl.jacobian(np.linalg.pinv, a, mode=mode)))
    with pytest.raises(jl.DerivativeError, match="rank-deficient"):
        jl.jacobian(lambda a: np.linalg.pinv(a, rcond=1e-2), a, mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_lstsq_derivative_in_a_rank_deficient_matrix_is_refused(mode):
    with pytest.raises(jl.DerivativeError, match="np.linalg.pinv does not exist at a rank-deficient matrix"):
        jl.jacobian(lambda a: np.linalg.lstsq(a, B6[:5])[0], RANK_DEFICIENT, mode=mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [lambda a: np.linalg.cond(a), lambda a: np.linalg.cond(a, np.inf)], ids=["2", "inf"])
def test_cond_of_a_singular_matrix_is_refused_where_numpy_returns_inf(f, mode):
    singular = np.outer([1.0, 2.0, 0.0], [0.0, 1.0, 1.0])
    assert f(singular) == np.inf
    with pytest.raises(jl.DerivativeError, match="cond of a singular matrix is infinite"):
        jl.jacobian(f, singular, mode=mode)


@pytest.mark.parametrize("f, match", [
    (lambda a: np.linalg.qr(a, mode="raw"), "numpy.linalg.qr with mode='raw'"),
    (lambda a: np.linalg.qr(a, mode="complete"), "numpy.linalg.qr with mode='complete' of a tall 5×3 matrix"),
    (lambda a: np.linalg.qr(a, mode="economic"), "numpy.linalg.qr with mode='economic'"),
    (lambda a: np.linalg.pinv(a, hermitian=True), "numpy.linalg.pinv with hermitian=True"),
    (lambda a: np.linalg.pinv(a, rcond=np.array([1e-3])), "numpy.linalg.pinv: a traced or array-valued rcond"),
    (lambda a: np.linalg.pinv(a, rcond=a[0, 0] ** 2 * 1e-3), "numpy.linalg.pinv: a traced or array-valued rcond"),
    (lambda a: np.linalg.lstsq(a, a[:, 0], rcond=a[0, 0] ** 2 * 1e-3),
     "numpy.linalg.lstsq: a traced or array-valued rcond"),
])
def test_unsupported_qr_pinv_and_lstsq_arguments_are_refused_by_name(f, match):
    for mode in MODES:
        with pytest.raises(NotImplementedError, match=re.escape(match)):
            jl.jacobian(f, G53, mode=mode)


@pytest.mark.parametrize("f, error, message", [
    (lambda x: np.linalg.qr(x[0]), np.linalg.LinAlgError, "1-dimensional array given"),
    (lambda x: np.linalg.qr(x, mode="x"), ValueError, "Unrecognized mode 'x'"),
    (lambda x: np.linalg.pinv(x[0]), np.linalg.LinAlgError, "1-dimensional array given"),
    (lambda x: np.linalg.pinv(x, rcond=1e-3, rtol=1e-3), ValueError, "`rtol` and `rcond` can't be both set."),
    (lambda x: np.linalg.lstsq(x, x[0]), np.linalg.LinAlgError, "Incompatible dimensions"),
    (lambda x: np.linalg.cond(x[:0]), np.linalg.LinAlgError, "cond is not defined on empty arrays"),
    (lambda x: np.linalg.cond(x[:, :2], 3), ValueError, "Invalid norm order for matrices."),
    (lambda x: np.linalg.tensorinv(x, ind=0), ValueError, "Invalid ind argument."),
    (lambda x: np.linalg.tensorsolve(x, x[0]), np.linalg.LinAlgError, "Input arrays must satisfy the requirement"),
])
def test_qr_pinv_and_lstsq_raise_numpys_errors(f, error, message):
    with pytest.raises(error, match=re.escape(message)):
        f(X)  # NumPy itself
    with pytest.raises(error, match=re.escape(message)):
        run(f, "reverse")


DEGENERATE = np.diag([2.0, 2.0, 5.0])  # a repeated eigenvalue: its eigenvectors are any basis of a plane


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("a", [DEGENERATE, np.diag([2.0, 2.0 + 1e-12, 5.0]), np.zeros((3, 3))],
                         ids=["equal", "within 1e-10 relative", "all zero"])
def test_eigenvector_derivative_at_a_repeated_eigenvalue_is_refused_by_name(a, mode):
    with pytest.raises(jl.DerivativeError, match="eigenvectors of np.linalg.eigh .* repeated eigenvalue"):
        jl.jacobian(lambda a: np.linalg.eigh(a).eigenvectors, a, mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_eigenvectors_just_outside_the_tolerance_are_differentiated(mode):
    a = np.diag([2.0, 2.0 + 1e-8, 5.0])  # 1e-8 apart: more than 1e-10 times the largest eigenvalue, 5
    J = jl.jacobian(lambda a: np.linalg.eigh(a).eigenvectors, a, mode=mode)
    assert np.all(np.isfinite(J)) and np.abs(J).max() > 1e6  # F = 1 / 1e-8, finite


@pytest.mark.parametrize("mode", MODES)
def test_eigenvalues_alone_are_differentiated_at_a_repeated_eigenvalue(mode):
    # The sum of the eigenvalues is the trace of the matrix NumPy reads: derivative 1 on the diagonal.
    J = jl.jacobian(lambda a: np.sum(np.linalg.eigvalsh(a)), DEGENERATE, mode=mode)
    np.testing.assert_allclose(J, np.eye(3), atol=1e-15)


def test_a_second_derivative_of_eigenvalues_at_a_repeated_one_names_itself():
    f = lambda u: np.sum(np.linalg.eigvalsh(np.diag(u)) ** 3)  # noqa: E731 - sum(u ** 3)
    with pytest.raises(jl.DerivativeError, match=r"second derivative of the eigenvalues .*trace\(A @ A @ A\)"):
        jl.hessian(f)(np.array([0.5, 0.5, 0.2]))


def test_eigh_eigenvalues_at_a_repeated_eigenvalue_need_reverse_mode_when_the_vectors_go_unused():
    f = lambda a: np.sum(np.linalg.eigh(a).eigenvalues)  # noqa: E731
    # reverse: no cotangent reaches the eigenvectors, so their rule never runs
    np.testing.assert_allclose(jl.jacobian(f, DEGENERATE, mode="reverse"), np.eye(3), atol=1e-15)
    # forward computes every traced value's tangent, the eigenvectors' included; auto prices forward
    for mode in ("forward", "auto"):
        with pytest.raises(jl.DerivativeError, match="repeated eigenvalue"):
            jl.jacobian(f, DEGENERATE, mode=mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f, match", [
    (lambda x: np.linalg.svd(x), "numpy.linalg.svd with full_matrices=True (the default) of a 2×3 matrix"),
    (lambda x: np.linalg.svd(x.T, full_matrices=True)[1], "of a 3×2 matrix"),
    (lambda x: np.linalg.svd(x[:, :2], hermitian=True)[0], "numpy.linalg.svd with hermitian=True and compute_uv=True"),
])
def test_svd_vectors_without_a_derivative_are_refused_by_name(f, match, mode):
    with pytest.raises(NotImplementedError, match=re.escape(match)) as info:
        run(f, mode)
    assert "Pass full_matrices=False" in str(info.value) or "Pass hermitian=False" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("a", [np.diag([2.0, 2.0, 5.0]), np.diag([3.0, 1.0, 0.0]), np.ones((4, 3))],
                         ids=["repeated", "zero", "rank one"])
def test_singular_vector_derivative_where_they_are_not_unique_is_refused_by_name(a, mode):
    with pytest.raises(jl.DerivativeError, match=r"singular vectors \(np.linalg.svd's U and Vh"):
        jl.jacobian(lambda a: np.linalg.svd(a, full_matrices=False).Vh, a, mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_float32_values_equal_up_to_their_rounding_count_as_repeated(mode):
    """In float32 rounding separates equal singular values (eigenvalues) by about 1e-7, past 1e-10:
    the tolerance is a thousand float32 rounding units there, and the refusal holds."""
    q = np.linalg.qr(np.random.default_rng(2).standard_normal((3, 3)))[0]
    for a in ((q * [2.0, 2.0, 1.0]) @ q.T).astype(np.float32), (q * [2.0, 2.0, 1.0]).astype(np.float32):
        with pytest.raises(jl.DerivativeError, match=r"within 0\.000119209 times"):
            jl.hessian(lambda v: np.sum(np.linalg.svd(v, compute_uv=False) ** 2), mode=mode)(a)
    with pytest.raises(jl.DerivativeError, match="repeated eigenvalue"):
        jl.jacobian(lambda v: np.linalg.eigh(v).eigenvectors, ((q * [1.0, 1.0, 2.0]) @ q.T).astype(np.float32),
                    mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_singular_value_rules_of_a_matrix_holding_inf_return_nan(mode):
    """LAPACK's SVD with vectors does not return on an infinite entry (NumPy's np.linalg.svd hangs):
    the rules that need U and V give NaN there, as the values NumPy gives are."""
    a = np.array([[2.0, 1.0, 0.0], [np.inf, 3.0, 1.0], [0.0, 1.0, 4.0]])
    with np.errstate(invalid="ignore"):
        for f in (lambda v: np.linalg.norm(v, 2), lambda v: np.linalg.norm(v, "nuc"), np.linalg.det):
            assert np.isnan(jl.jacobian(f, a, mode=mode)).all()


@pytest.mark.parametrize("f, bad, what", [
    (lambda a: np.linalg.eigh(a).eigenvectors, np.diag([2.0, 2.0, 5.0]),
     "repeated eigenvalue in matrix 1 of the stack"),
    (lambda a: np.linalg.svd(a, full_matrices=False).U, np.diag([2.0, 2.0, 5.0]), "exist in matrix 1 of the stack"),
    (lambda a: np.linalg.qr(a).Q, np.diag([1.0, 1.0, 0.0]), "full column rank in matrix 1 of the stack"),
    (np.linalg.pinv, np.diag([1.0, 1.0, 0.0]), "rank-deficient matrix in matrix 1 of the stack"),
], ids=["eigh", "svd", "qr", "pinv"])
def test_a_refusal_in_a_stack_names_the_matrix(f, bad, what):
    stack = np.stack([np.diag([1.0, 2.0, 3.0]), bad, np.diag([4.0, 5.0, 6.0])])
    with pytest.raises(jl.DerivativeError, match=what):
        jl.jacobian(f, stack, mode="reverse")


def test_a_zero_singular_value_of_a_square_matrix_refuses_second_derivatives():
    """s₂ = |σ₂| has a kink at 0 (the vectors' signs flip across it): differentiating the signed
    value gave −1 along (1, 1)/√2 at diag(1, 0), where s₂ = |det| / s₁ curves up (+1)."""
    with pytest.raises(jl.DerivativeError, match=r"singular vectors.*second derivative of the singular values.*"
                                                r"can be written without the SVD"):
        jl.hessian(lambda t: np.linalg.svd(t.reshape(2, 2), compute_uv=False)[1])(np.array([1.0, 0.0, 0.0, 0.0]))
    # what the message gives: sum(s ** 4) as trace((aᵀa)²), whose Hessian exists there
    a = np.array([1.0, 0.0, 0.0, 0.0])
    H = jl.hessian(lambda t: np.trace(np.linalg.matrix_power(t.reshape(2, 2).T @ t.reshape(2, 2), 2)))(a)
    assert_fd_close(H, central_differences(jl.grad(lambda t: np.sum(np.linalg.svd(t.reshape(2, 2),
                                                                                  compute_uv=False) ** 4)), a))


def test_svd_singular_values_alone_are_differentiated_in_reverse_mode_where_the_vectors_are_not_unique():
    # The singular values of diag(2, 2, 5) are |diagonal entries|: derivative 1 at each entry's own value
    f = lambda a: np.linalg.svd(a).S  # noqa: E731
    J = jl.jacobian(f, DEGENERATE, mode="reverse")
    np.testing.assert_allclose(J.sum(axis=0), np.eye(3), atol=1e-15)
    with pytest.raises(jl.DerivativeError, match="singular vectors"):
        jl.jacobian(f, DEGENERATE, mode="forward")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("a", [G43, G43.T, G43[:3], STACK], ids=["tall", "wide", "square", "stacked"])
def test_the_product_of_svds_factors_has_the_identity_as_derivative(a, mode):
    def product(a):
        u, s, vh = np.linalg.svd(a, full_matrices=False)
        return (u * s[..., None, :]) @ vh

    J = jl.jacobian(product, a, mode=mode)
    np.testing.assert_allclose(J.reshape(a.size, a.size), np.eye(a.size), atol=1e-13)


@pytest.mark.parametrize("f, error, message", [
    (lambda x: np.linalg.cholesky(x), np.linalg.LinAlgError, "must be square"),
    (lambda x: np.linalg.eigh(x), np.linalg.LinAlgError, "must be square"),
    (lambda x: np.linalg.eigvalsh(x), np.linalg.LinAlgError, "must be square"),
    (lambda x: np.linalg.svd(x[0], compute_uv=False), np.linalg.LinAlgError, "at least two-dimensional"),
    (lambda x: np.linalg.eigh(x[:, :2], UPLO="X"), ValueError, "UPLO argument must be 'L' or 'U'"),
    (lambda x: np.linalg.norm(x, 3), ValueError, "Invalid norm order for matrices."),
    (lambda x: np.linalg.norm(x, "max"), ValueError, "Invalid norm order for matrices."),
])
def test_decompositions_raise_numpys_errors(f, error, message):
    with pytest.raises(error, match=re.escape(message)):
        f(X)  # NumPy itself
    with pytest.raises(error, match=re.escape(message)):
        run(f, "reverse")


@pytest.mark.parametrize("mode", MODES)
def test_cholesky_of_a_matrix_that_is_not_positive_definite_fails_as_in_numpy(mode):
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        jl.jacobian(np.linalg.cholesky, np.diag([1.0, -1.0]), mode=mode)


def test_unsupported_function_also_refused_by_count_flops():
    with pytest.raises(NotImplementedError, match="numpy.fft.rfft"):
        jl.count_flops(lambda x: np.fft.rfft(x, axis=0), X)


# --- conversions of a traced value --------------------------------------------------------
CONVERSIONS = [
    ("np.asarray of a large array", lambda x: np.asarray(np.tile(x, 50))),
    ("np.array as floats", lambda x: np.array(x, dtype=float)), ("float", lambda x: float(x[0, 0])),
    ("item", lambda x: x[0, 0].item()), ("tolist of a large array", lambda x: np.tile(x, 50).tolist()), ("int", lambda x: int(x[0, 0])),
    ("complex", lambda x: complex(x[0, 0])),
    ("math.sin", lambda x: math.sin(x[0, 0])), ("as an index", lambda x: [1.0, 2.0][x[0, 0]]),
    ("stored into a plain array", lambda x: np.zeros(3).__setitem__(0, x[0, 0])),
    ("stored into plain arrays", lambda x: np.zeros(3).__setitem__(slice(0, 2), x[0, :2])),
    ("view as another dtype", lambda x: x.view(np.int64)),
    ("round() to an int", lambda x: round(x[0, 0])), ("a format spec", lambda x: f"{np.sum(x):.3f}"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [pytest.param(f, id=n) for n, f in CONVERSIONS])
def test_conversion_raises_tracer_conversion_error(f, mode):
    def g(x):
        return f(x) * x  # never reached: the conversion itself must fail

    with pytest.raises(jl.TracerConversionError, match="derivative") as info:
        run(g, mode)
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
def test_np_vectorize_with_float_otypes_is_refused_naming_otypes(mode):
    """It stores each traced result into a float array: refused, but as a store into a plain array, which f
    does not write, without a word about otypes."""
    def f(x, otypes):
        return np.vectorize(lambda v: v * v + 1.0, otypes=otypes)(x)

    with pytest.raises(jl.TracerConversionError, match=r"np\.vectorize with otypes=\[float\].*Drop otypes"):
        run(lambda x: f(x, [np.float32]), mode)

    def stores(v):  # a store of the function's own, which otypes has no part in
        buffer = np.zeros(1)
        buffer[0] = v
        return buffer[0]

    for otypes in (None, [object], [float]):
        with pytest.raises(jl.TracerConversionError, match=r"^storing a traced value into an element of a plain"):
            run(lambda x: np.vectorize(stores, otypes=otypes)(x), mode)
    with pytest.raises(jl.TracerConversionError, match=r"np\.vectorize with otypes=\[float\]"):  # two outputs: stored
        run(lambda x: np.vectorize(lambda v: (v * 2.0, v), otypes=[float, float])(x)[0], mode)  # in a generator
    np.testing.assert_array_equal(run(lambda x: f(x, [object]), mode, np.arange(3.0)), np.diag([0.0, 2.0, 4.0]))


def test_a_frompyfunc_ufunc_is_refused_naming_np_vectorize_which_works():
    def square(v):
        return v * v

    with pytest.raises(NotImplementedError, match=r"np\.frompyfunc of the Python function square .*np\.vectorize"):
        jl.jacrev(lambda x: np.frompyfunc(square, 1, 1)(x).astype(float))(np.ones(3))
    np.testing.assert_array_equal(jl.jacrev(np.vectorize(square))(np.arange(3.0)), np.diag([0.0, 2.0, 4.0]))


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
@pytest.mark.parametrize("dtype", [int, np.int32, np.uint8])
def test_an_integer_astype_truncates_toward_zero_without_a_derivative_as_numpy_and_jax(mode, dtype):
    """Cell indices as binning code writes them, (x / dx).astype(int): NumPy's cast, a step (it was refused)."""
    table = np.arange(1.0, 9.0)

    def f(x):
        cells = (x * 2).astype(dtype)
        assert cells.dtype == np.dtype(dtype)
        return table[cells.astype(int) % 8] * x ** 2

    x = np.array([0.3, 0.7, 1.9, 3.2]) if dtype is np.uint8 else np.array([0.3, -0.7, 1.9, -1.2])
    expected = np.diag(2 * table[(x * 2).astype(dtype).astype(int) % 8] * x)  # -1.4 casts to -1, as trunc
    np.testing.assert_allclose(run(f, mode, x), expected, rtol=1e-15)


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
def test_astype_bool_is_each_elements_truth_as_in_numpy_and_jax(mode):
    """It was refused as a conversion dropping the derivative; a bool carries none (NaN and -0.0 as NumPy)."""
    x = np.array([0.0, 2.0, -0.0, np.nan, -3.0])
    seen = []
    fun = jl.jacobian(lambda v: (seen.append(np.array(v.astype(bool))), np.where(v.astype(bool), v ** 2, 1.0))[1],
                      mode="auto" if mode == "jit" else mode)
    J = (jl.jit(fun) if mode == "jit" else fun)(x)
    np.testing.assert_array_equal(seen[0], x.astype(bool))
    np.testing.assert_array_equal(np.diagonal(J), [0.0, 4.0, 0.0, np.nan, -6.0])


def _van_der_pol(y):
    return np.array([y[1], (1.0 - y[0] ** 2) * y[1] - y[0]])  # as solve_ivp's examples write it


def _objects_computed_on(x):
    v = np.array([x[0] * x[1], x[2], x[1]])  # an object array of traced scalars, which NumPy's loops run on
    w = np.sin(v) * 2.0 + v @ np.ones(3) + np.arctan2(v, 1.5) + np.exp(v) ** 2 - np.sqrt(np.abs(v))
    return np.concatenate([x + w, np.array([np.sum(w), np.max(v)]), np.array([[1.0, x[0]]])[0]])


def _objects_in_a_numpy_function(x):
    return np.cross(np.array([x[0], 0.0, 1.0]), x)  # NumPy takes plain elements out of the object array too


def _objects_beside_masks(x):
    signs = np.array([x[0], x[1] > 0, np.where(x[1] > 0, 2.0, 3.0), np.sign(x[2])])  # a bool, a 0-d array, ...
    return np.sum(signs * x[[1, 0, 2, 0]] ** 2) + np.array([x[0], np.sign(x[1]) * 1.0, x[2]])


@pytest.mark.parametrize("mode", MODES + ["auto", "jit", "sparse"])
@pytest.mark.parametrize("f", [_van_der_pol, _objects_computed_on, _objects_in_a_numpy_function,
                               _objects_beside_masks])
def test_np_array_of_traced_scalars_is_one_traced_array(f, mode):
    x = np.array([0.5, -0.3, 1.2])
    J = run(f, mode, x)
    assert_fd_close(J, central_differences(f, x))
    np.testing.assert_array_equal(traced_value(f, x), f(x))
    H = jl.hessian(lambda z: np.sum(f(z) ** 2), x)
    assert_fd_close(H, central_differences(jl.grad(lambda z: np.sum(f(z) ** 2)), x))
    assert jl.count_flops(_van_der_pol, x) == jl.Cost(4, 0)  # y0 ** 2, 1 - , * y1, - y0: the stacking is free


@pytest.mark.parametrize("other", ["oops", None, np.datetime64("2026-01-01")], ids=["str", "None", "datetime"])
@pytest.mark.parametrize("mode", ["forward", "reverse", "sparse"])
def test_np_array_of_traced_scalars_beside_no_number_is_refused(mode, other):
    """A string was taken for a number, its row of the Jacobian 0; None failed far from the line that held it."""
    def f(x):
        return np.array([x[0] ** 2, other], dtype=object)

    with pytest.raises(TypeError, match=f"holds traced values and {re.escape(repr(other))}, which is no number"):
        run(f, mode, np.array([0.5, -0.3, 1.2]))


_A_PLAIN = np.array([[1.0, -2.0, 0.5], [0.3, 0.0, 2.0]])


def _small_arrays_made_plain(x):
    first, *_ = x.tolist()  # a list of traced scalars
    x = np.asarray(x) * (first / first)  # as library-style code starts: an object array of x's traced elements
    c, s = np.cos(x[:1]), np.sin(x[:1])  # one-element arrays
    rotation = np.array([[c, -s], [s, c]]).reshape(2, 2)
    moved = rotation @ _A_PLAIN[:, :2].dot(x[:2])  # ndarray.dot of a plain matrix
    squares = np.vectorize(lambda v: v * v)(x)
    return np.r_[moved, np.c_[x, squares].ravel()]


def _written_after_np_asarray(x):
    x = np.asarray(x)  # from here on object arrays of traced elements, NumPy's own loops
    y = np.zeros_like(x)
    y[1:] = x[:-1] * x[1:]
    np.add.at(y, [0, 0], x[2])  # into an object array: NumPy's add.at on the elements
    np.put(y, [2], x[0] * 2.0)
    return np.concatenate([y, np.array([x[0] ** 2, x[1]])])


@pytest.mark.parametrize("mode", MODES + ["jit", "sparse"])
@pytest.mark.parametrize("f", [_small_arrays_made_plain, _written_after_np_asarray])
def test_small_traced_arrays_convert_to_arrays_of_traced_elements(f, mode):
    x = np.array([0.4, -1.2, 0.7])
    assert_fd_close(run(f, mode, x), central_differences(f, x))
    np.testing.assert_array_equal(traced_value(f, x), f(x))


@pytest.mark.parametrize("mode", MODES + ["jit", "sparse"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_empty_traced_array_converts_to_numpys_empty_array_of_its_dtype(mode, dtype):
    def f(x):
        empty = np.asarray(x[:0] * 2.0)
        assert empty.dtype == dtype and empty.shape == (0,)
        return x * np.sum(empty) + np.sum(np.asarray(x[3:]))  # NumPy's sum of nothing: 0.0, a float
    x = np.array([0.4, -1.2, 0.7], dtype)
    np.testing.assert_array_equal(run(f, mode, x), np.zeros((3, 3)))
    np.testing.assert_array_equal(jl.grad(lambda x: np.sum(np.asarray(x)))(np.ones(0, dtype)), np.ones(0, dtype))


@pytest.mark.parametrize("mode", MODES)
def test_converting_a_large_traced_array_or_writing_into_its_conversion_is_refused(mode):
    with pytest.raises(jl.TracerConversionError, match=r"of more than 256 elements.*x = np.asarray\(x\)"):
        run(lambda x: np.asarray(x) * 2.0, mode, np.ones(300))

    def written(x):
        y = np.asarray(x)
        y[0] = 5.0  # NumPy would write into x; an array of x's elements cannot
        return x

    with pytest.raises(ValueError, match="read-only"):
        run(written, mode, np.ones(3))
    # dtype=float is no object array of x's elements (NumPy's dtype == None holds for float64)
    for size in (3, 300):
        with pytest.raises(jl.TracerConversionError, match=r"np\.asarray\(x, dtype=float64\).*drop the conversion"):
            run(lambda x: np.asarray(x, dtype=float) * 2.0, mode, np.ones(size))

    def into_a_slice(x):  # NumPy converts the value with the slice's dtype: the same call reaches x
        y = np.zeros(3)
        y[1:] = x[1:]
        return y

    with pytest.raises(jl.TracerConversionError, match=r"y\[1:\] = x\[1:\].*np\.zeros_like\(x, shape="):
        run(into_a_slice, mode, np.ones(3))


def test_a_jacobian_asked_for_by_a_scipy_solver_is_not_taken_for_the_solvers_conversion():
    from scipy.optimize import root

    def F(x):
        return np.array([x[0] ** 2 - 1.0, x[0] * x[1]])  # converted by NumPy, called from inside scipy

    solution = root(F, [2.0, 1.0], jac=lambda x: jl.jacobian(F, x))
    assert solution.success and np.allclose(solution.x, [1.0, 0.0], atol=1e-8)
    assert solution.njev < solution.nfev  # the Jacobians were ours, not finite differences


@pytest.mark.parametrize("mode", MODES)
def test_a_numpy_function_given_only_an_object_array_names_np_stack(mode):
    def f(s):
        M = np.array([[2.0, np.cos(s[0])], [np.cos(s[1]), 1.0]])  # a mass matrix of traced scalars
        return np.linalg.solve(M, np.ones(2))  # no traced argument: NumPy's own solve gets objects

    with pytest.raises(TypeError, match=r"dtype\('O'\).*np\.stack\(\[np\.stack\(\[a, b\]\)"):
        run(f, mode, np.array([0.4, -0.3]))


@pytest.mark.parametrize("mode", MODES)
def test_a_numpy_function_whose_dispatcher_returns_an_object_array_runs_numpys_object_loops(mode):
    """np.poly's dispatcher returns its argument, so NumPy handed the call to the traced elements, whose
    fallback called np.poly again, without end (RecursionError)."""
    x = np.array([0.3, 0.7])
    J = run(lambda s: np.poly(np.array([s[0], s[1]])), mode, x)  # (z - a)(z - b) = z² - (a + b) z + ab
    np.testing.assert_allclose(J, [[0.0, 0.0], [-1.0, -1.0], [x[1], x[0]]], rtol=1e-15)
    with pytest.raises(jl.TracerConversionError, match="storing a traced value into an element of a plain array"):
        run(lambda s: np.roots(np.array([1.0, -s[0] - s[1], s[0] * s[1]])).real, mode, x)


def test_an_np_testing_error_without_traced_values_is_left_as_numpy_raised_it():
    def f(x):
        np.testing.assert_allclose(np.array(["a"]), 1.0)  # NumPy's own TypeError, of plain values
        return x

    with pytest.raises(TypeError) as info:
        run(f, "reverse")
    assert "np.testing" not in str(info.value)


def test_an_attribute_error_of_numpys_object_loop_without_traced_values_is_left_as_numpy_raised_it():
    def f(x):
        return x * np.angle(np.array([1, 2], dtype=object)).sum()  # plain objects: NumPy's own error

    with pytest.raises(AttributeError, match="^'int' object has no attribute 'arctan2'$"):
        run(f, "reverse")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("check, error", [
    (lambda x: np.testing.assert_allclose(x, X), TypeError),  # its isnan of an object array
    (lambda x: np.testing.assert_almost_equal(x, X), TypeError),  # its float() of a traced element
    (lambda x: np.testing.assert_equal(x[0, 0], X[0, 0]), AssertionError),  # equal values, compared as objects
], ids=["assert_allclose", "assert_almost_equal", "assert_equal"])
def test_np_testing_inside_f_names_itself_and_an_assertion_that_works(check, error, mode):
    def f(x):
        check(x)
        return x * 2.0

    with pytest.raises(error, match=r"np\.testing\.assert_\w+ reads a traced array.*assert np\.allclose"):
        run(f, mode)


OBJECTS_REFUSED = {  # x = np.asarray(x) at the top of f gives an object array of traced values
    "np.mean": (lambda x: np.mean(np.asarray(x) ** 2), jl.TracerConversionError, "np.mean"),
    "np.isfinite": (lambda x: np.where(np.isfinite(np.asarray(x)), x, 0.0), TypeError, "isfinite"),
    "scipy.special.expit": (lambda x: special.expit(np.asarray(x)), TypeError, "expit"),
    "np.angle": (lambda x: np.angle(np.asarray(x)), TypeError, r"no attribute 'arctan2' \(NumPy's object loop"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f, error, numpys", OBJECTS_REFUSED.values(), ids=OBJECTS_REFUSED)
def test_numpy_functions_that_cannot_compute_on_objects_name_the_asarray_to_drop(f, error, numpys, mode):
    with pytest.raises(error, match=rf"{numpys}.*drop the np\.asarray") as info:
        run(f, mode, np.array([0.4, -0.3]))
    assert "array of traced values" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_writing_into_np_asarray_of_a_traced_array_names_the_arrays_to_write_into(mode):
    def f(x):
        c = np.asarray(x)  # x's traced elements: a write could not reach x
        c += 1.0
        return c

    # the array itself, where NumPy's asarray would give it (y computed in f), or a copy
    with pytest.raises(ReadOnlyError, match=r"output array is read-only\. If it is np\.asarray\(y\).*write into y "
                                            r"itself \(y\[i\] = v.*c = y\.copy\(\)"):
        run(f, mode)

    def contiguous(x):  # NumPy calls no function of ours for these: they convert as asarray does
        c = np.ascontiguousarray(x.T)
        c[0] = 1.0
        return c

    with pytest.raises(ReadOnlyError, match=r"read-only\. If it is np\.asarray\(y\) \(or np\.ascontiguousarray, "
                                            r"np\.asfortranarray.*y\.copy\(order='F'\)"):
        run(contiguous, mode, np.ones((2, 3)))
    with pytest.raises(jl.TracerConversionError, match=r"np\.ascontiguousarray\(x\) \(x\.copy\(order='C'\)"):
        run(lambda x: np.ascontiguousarray(x) * 2.0, mode, np.ones(300))


@pytest.mark.parametrize("mode", MODES)
def test_np_array_of_traced_scalars_and_numbers_is_left_to_numpys_loops(mode):
    def f(x):
        return np.sin(np.array([x[0], 2.0]))  # NumPy's object loop asks 2.0 for a sin method

    with pytest.raises(TypeError, match="sin method"):
        run(f, mode, np.ones(2))


@pytest.mark.parametrize("mode", MODES)
def test_control_flow_on_a_comparison_is_allowed(mode):
    # The message of the conversion error recommends this, so it must work.
    f = lambda x: x * 2.0 if x[0, 0] > 0 else x
    np.testing.assert_array_equal(run(f, mode).reshape(6, 6), 2.0 * np.eye(6))


def test_round_with_digits_shape_assignment_and_plain_formatting_work_as_in_numpy():
    def f(x):
        y = x * 3.0
        y.shape = (2, 1)  # reshapes y itself
        assert f"{y}".startswith(type(y).__name__)  # no spec: the traced value's repr
        return y * (round(x[0], 1) + x[1])  # round(scalar, digits) is np.round: derivative 0

    x = np.array([0.34, 2.0])
    expected = np.array([[3.0 * (0.3 + 2.0), 0.0], [0.0, 3.0 * (0.3 + 2.0)]])
    expected[:, 1] += 3.0 * x  # d/dx1 of y * x1
    for mode in MODES:
        np.testing.assert_allclose(jl.jacobian(f, x, mode=mode).reshape(2, 2), expected)
    with pytest.raises(TypeError, match=r"np\.round\(x, decimals\)"):
        jl.jacobian(lambda x: round(x, 1), x)


# --- in-place writes -----------------------------------------------------------------------
def _aliased(x):
    y = x * 1.0
    z = y  # another name for the same array
    z *= 2.0
    return y


def _accumulated(x):
    total = 0.0
    for k in range(1, 4):
        total += np.sin(k * x)  # 0.0 + array first, then in place
    total -= x
    total /= 2.0
    total **= 2
    return total


def _copied(x):
    y, z, w, v = x.copy(), np.copy(x), +x, x.astype(np.float64)
    y *= 2.0
    z += 1.0
    w -= x ** 2
    v @= np.ones((x.shape[1], x.shape[1]))
    return x + y + z + w + v


def _copied_by_the_copy_module(x):
    y = x * 2.0
    state = {"y": y, "rows": [y[0], y[1:]]}  # a state kept with deepcopy, as a simulation keeps its history
    kept = copy.deepcopy(state)
    kept["y"][0, 0] = 100.0  # a copy: y is unchanged
    shallow = copy.copy(y)
    shallow *= 3.0
    params = dataclasses.astuple(_Params(y, x[0]))  # deep-copies each field
    return np.concatenate([y.ravel(), kept["y"].ravel(), kept["rows"][1].ravel(), shallow.ravel(), params[1]])


@dataclasses.dataclass
class _Params:
    rates: object
    scale: object


def _views_gone(x):
    y = x ** 2
    d = y[1:] - y[:-1]  # views of y, dead once d is computed
    y += 1.0
    return np.concatenate([y, d])


def _views_kept(x):
    y = x * 1.0
    w = y[1:][::2]  # a view of a view: y owns the memory
    for row in y:  # the loop leaves `row` bound to the last row, a view of y
        pass
    y *= 3.0  # NumPy changes w and row too
    return np.concatenate([y.ravel(), w.ravel(), row])


def _overlapping(x):
    Y = x @ x.T
    Y += Y.T  # the operand is a view of Y itself, as NumPy allows
    Y -= Y[:, :1]
    return Y


def _scalars(x):
    e = np.sum(x ** 2)
    old = e  # a NumPy scalar is immutable: old keeps its value
    e += np.sum(x)
    s = x[0, 0]
    t = s
    s *= 2.0
    return np.stack([e - old, e, t, s])


def _reshaped_under_a_view(x):
    y = x.reshape(-1, 1) * 1.0
    v = y[:2, 0]  # elements 0 and 1 of y's memory
    w = y[:]
    w.shape = (3, 2)  # w alone takes the new shape
    y.shape = (2, 3)
    y *= 3.0  # v and w still see it, in their own shapes
    return np.concatenate([v, w.ravel(), y.ravel()])


def _zero_d_views(x):
    y = x.ravel() * 1.0
    s = y[..., 0]  # 0-d arrays sharing y's memory, as in NumPy
    r = y[3:4].reshape(())
    y *= x.ravel()  # reaches s and r
    return np.stack([s, r])


def _gathered_views(x):
    y = x * 1.0  # (2, 3)
    d, flipped, turned = np.diagonal(y), np.fliplr(y), np.rot90(y)  # views in NumPy, gathers here
    y *= 2.0
    return np.concatenate([d, flipped.ravel(), turned.ravel()])


def _zero_d_values(x):
    s = np.einsum("ij,ij->", x, x)  # NumPy scalars, immutable: t and v keep their values
    t = s
    s *= x[0, 1]
    u = np.interp(0.5, np.array([0.0, 1.0]), x[0, :2])
    v = u
    u *= x[1, 0]
    w = x.ravel()[np.array(2)]  # a 0-d view of a gather made inside the index, which no one else reaches
    w *= 2.0
    return np.stack([s, t, u, v, w])


def _through_a_view(x):
    out = x ** 2
    v = out[1:]
    v *= 3.0  # NumPy writes into out
    return out


def _through_a_0d_view(x):
    y = x.ravel() * 1.0
    r = y[3:4].reshape(())
    r *= 3.0  # NumPy writes into y
    return y


def _rows_in_a_loop(x):
    y = x * 1.0
    for row in y:
        row *= 2.0  # each row is a view of y
    return y


def _item_assigned(x):
    y = np.sin(x)
    y[0, 0] = x[1, 2] ** 2  # an element from another
    y[1] = x[0] * 3.0  # a row
    y[:, 1:] *= x[:, :2]  # an augmented assignment to a slice: the view is written through, then assigned
    y[y > 0.5] = 0.5  # a mask computed from x, a constant
    y[..., 2] = np.array([1.0, 2.0])  # plain values
    return y


def _assigned_through_views(x):
    Y = x * 1.0
    row = Y[1]
    row[0] = x[0, 2]  # NumPy writes into Y
    Y.T[2] += x[:, 0]  # a row of the transpose is a column of Y
    flipped = np.fliplr(Y)  # a view in NumPy, a gather here
    flipped[0, :2] = x[1, :2]
    return np.concatenate([Y.ravel(), row, flipped.ravel()])


def _fancy_assigned(x):
    y = x.ravel() * 2.0
    y[[0, 3, 0]] = x[1] ** 2  # a repeated index: the same write wins as in NumPy
    y[np.array([[1], [4]])] = x[0, :1]  # a value broadcast over the index's shape
    y[2:4] = np.stack([x[0, 1], 1.0])[None]  # a leading length-1 axis too many, as NumPy allows
    y[1:4] = y[:3]  # overlapping: NumPy reads before it writes
    return y


def _copies_and_views_by_method(x):
    y = x * 1.0  # (2, 3)
    flat = y.flatten()  # always a copy in NumPy
    flat[0] = 5.0
    v = y.view()  # another array on y's memory
    v.shape = (3, 2)  # v alone takes the shape
    v[2, 1] = x[0, 0]
    c = y.conj()  # real values: y itself
    c[1, 0] *= 3.0
    itself = np.linalg.matrix_power(y[:, :2], 1)  # NumPy returns its argument: a view of y
    itself[1, 1] = x[0, 2] * 10.0
    return np.concatenate([y.ravel(), flat, v.ravel()])


def _new_views_in_the_arrays_own_shape(x):
    y = x.ravel() * 1.0  # 1-d: its .T, ravel() and reshape to its shape are new views, as in NumPy
    t, r, s = y.T, y.ravel(), np.reshape(y, y.shape)
    t.shape = (2, 3)  # t alone takes the shape
    r.shape = (3, 2)
    s[0] = x[1, 1] ** 2  # reaches y, t and r
    itself = np.squeeze(y)  # NumPy's squeeze returns y itself here
    itself.shape = (6, 1)
    e = np.sum(x ** 2)  # a NumPy scalar: its .T, reshape(()) and view() are immutable scalars too
    scalars = [e.T, e.reshape(()), np.transpose(e), e.view()]
    for k, v in enumerate(scalars):
        v += x.ravel()[k]
    return np.concatenate([t.ravel(), r[:, 0], y.ravel(), np.stack([e] + scalars)])


def _written_through_einsum_views(x):
    A = x @ x.T + 1.0  # (2, 2)
    np.einsum("ii->i", A)[:] += x[:, 0]  # NumPy's einsum that sums nothing is a writeable view
    T = np.einsum("ij->ji", A)
    T[0, 1] = x[1, 2] ** 2  # A[1, 0]
    B = x * 1.0
    np.einsum("...ij->...ji", B[None])[0, 2, 1] = x[0, 1]  # B[1, 2]
    s = np.einsum("ij->i", B)  # a sum: an array of its own
    s[0] = 7.0
    return np.concatenate([A.ravel(), T.ravel(), B.ravel(), s])


def _written_through_views_of_an_array_made_like_x(x):
    C = np.zeros_like(x, shape=(3, 3))
    for row in C:  # each row a view of C
        row[:] = x[0] ** 2
    C.T[0] = x[1]  # a column, through the transpose
    np.transpose(a=C)[1, 2] = x[0, 2]  # a NumPy function's view, its array passed by keyword
    np.fliplr(m=C)[2, 0] *= x[1, 1]
    return C


def _copies_numpy_makes(x):
    y = x[0] * 1.0
    tiled = np.tile(y, 1)  # a copy in NumPy, whatever the reps
    tiled[0] = 0.0
    grid, _ = np.meshgrid(y, y)  # copies, by default
    column, _ = np.meshgrid(y, y, sparse=True)  # sparse ones too
    filled = np.full_like(y, y[1])
    y *= 3.0  # reaches none of them
    grid[0, 0] = x[1, 0]
    return np.concatenate([y, tiled, grid.ravel(), filled, column.ravel()])


def _objects_written(x):
    y = np.zeros_like(x)  # (2, 3)
    y[0, :2] = np.array([x[0, 0] * x[0, 1], x[1, 2]])  # an object array of traced scalars
    y[1:] = [[x[1, 0], 2.0, x[0, 2]]]  # a nested list holding traced scalars
    np.add.at(y, (0, [2, 2]), [x[1, 1], 1.0])
    y[1].fill(np.asarray(x[0, 0]))
    y[1, 1:] = [Fraction(1, 3), x[0, 1]]  # plain values of any kind beside traced ones
    return y + np.cross(np.array([x[0, 0], Fraction(1, 4), 2.0]), x)


def _copied_with_np_array(x):
    c = np.array(x)  # the usual copy of initial values: an array of f's own, written in place
    c += 1.0
    c[0, 1:] = c[1, :2] * x[0, 0]
    d = np.array(x[1], copy=True)
    d[::2] = 0.0
    return np.concatenate([c.ravel(), d, x.ravel()])


def _flat_reads_and_writes(x):
    Y = x * 1.0  # (2, 3)
    Y.flat[[1, 4]] = x[0, 0] ** 2  # C order over Y
    Y.T.flat[1] = x[1, 2] * 3.0  # C order over the transpose: Y[1, 0], whatever the strides
    read = Y.flat[1:3]  # a copy, as NumPy's flatiter reads
    read[0] = 100.0
    Z = x * 2.0
    Z.flat[0:4] = x[0, :2]  # repeated, as NumPy's flatiter writes
    W = x * 3.0
    W.flat = x[1]
    walk = W.flat  # an iterator too, as NumPy's flatiter
    return np.concatenate([Y.ravel(), read, np.stack(list(Y.flat)), Z.ravel(), W.ravel(), [next(walk), next(walk)]])


def _memory_order_decides_views(x):
    """Whether ravel and reshape(-1) give views depends on how the array lies in memory, as NumPy lays
    it out: ravel copies unless the array is contiguous (a reshape is a view wherever strides allow),
    a copy is C-ordered (np.copy and copy.copy keep the order), writes and *_like keep it."""
    y = x * 1.0
    y[0, ::2].ravel()[0] = 5.0  # a copy: y unchanged
    np.ravel(y[:, 1])[1] = 7.0  # a copy
    y[0, ::2].reshape(-1)[1] = x[1, 1] ** 2  # a view: y[0, 2]
    c = x.T.copy()  # C-ordered
    c.ravel()[0] = x[1, 0] * 3.0  # a view: c[0, 0]
    k = np.copy(x.T)  # F-ordered, as x.T
    k.reshape(-1)[1] = 9.0  # a copy: k unchanged
    w = x.T * 2.0  # F-ordered, and stays so through a write
    w[0, 0] = x[0, 2]
    w.ravel()[2] = 11.0  # a copy
    z = np.zeros_like(x.T)  # F-ordered too
    z[...] = x.T ** 2
    z.reshape(-1)[0] = 13.0  # a copy
    f = copy.copy(x.T).copy(order="F")
    f.ravel(order="F")[0] = x[0, 1]  # a view: f[0, 0]
    return np.concatenate([y.ravel(), c.ravel(), k.ravel(), w.ravel(), z.ravel(), f.ravel()])


IN_PLACE = [("through a view", _through_a_view), ("copies and views by method", _copies_and_views_by_method),
            ("flat", _flat_reads_and_writes), ("through einsum views", _written_through_einsum_views), ("new views in the array's own shape", _new_views_in_the_arrays_own_shape),
            ("through views of an array made like x", _written_through_views_of_an_array_made_like_x),
            ("copies NumPy makes", _copies_numpy_makes), ("objects written", _objects_written),
            ("copied with np.array", _copied_with_np_array), ("through a 0-d view", _through_a_0d_view),
            ("rows in a loop", _rows_in_a_loop), ("item assigned", _item_assigned),
            ("assigned through views", _assigned_through_views), ("fancy assigned", _fancy_assigned),
            ("aliased", _aliased), ("accumulated", _accumulated), ("copies", _copied),
            ("copied by the copy module", _copied_by_the_copy_module), ("views gone", _views_gone),
            ("views kept", _views_kept), ("overlapping", _overlapping), ("scalars", _scalars),
            ("reshaped under a view", _reshaped_under_a_view), ("gathered views", _gathered_views),
            ("0-d values", _zero_d_values), ("0-d views", _zero_d_views),
            ("memory order decides views", _memory_order_decides_views)]


@pytest.mark.parametrize("mode", MODES + ["auto", "jit"])  # auto: forward passes replay the tape, writes in place
@pytest.mark.parametrize("f", [pytest.param(f, id=n) for n, f in IN_PLACE])
def test_in_place_operators_have_numpys_semantics(f, mode):
    # The reference runs f on plain arrays: NumPy's own in-place semantics, aliases included.
    J = run(f, mode)
    assert_fd_close(J, central_differences(f, X))


def _reused_buffer(x):
    """A unit vector rebuilt in one plain buffer: each use must keep the values it had then."""
    e, rows = np.zeros(x.shape), []
    for i in range(x.shape[0]):
        e[:] = 0.0
        e[i] = i + 1.0
        rows.append(np.sum(np.sin(x) * e, axis=0))
    return np.stack(rows)


def test_forward_mode_writes_elements_into_the_arrays_only_the_written_array_holds():
    """A loop of ``y[i] = v`` costs O(1) a write in forward mode, not a copy of y and its tangent: the write goes
    into y's own arrays where nothing else holds them, and makes new ones where a copy or a view shares them."""
    from jacobian_lab.primitives import primal

    same = []

    def f(x):
        y = np.sin(x.ravel())  # its arrays are sin's, which nothing else holds
        kept = weakref.ref(primal(y))  # not a reference, which would share them
        for i in range(1, 4):
            y[i] = x[1, i - 1] ** 2
        same.append(primal(y) is kept())
        z = y.copy()  # shares y's arrays until one is written
        y[4] = 3.0 * x[0, 0]
        same.append(primal(y) is kept())
        kept = weakref.ref(primal(y))
        view = y[1:3]  # a view, which must see the write
        y[2] = x[0, 1]
        same.append(primal(y) is kept())
        return np.concatenate([y, z, view])

    J = jl.jacfwd(f)(X)
    assert same == [True, False, False]
    assert_fd_close(J, central_differences(f, X))
    assert_close(J, jl.jacrev(f)(X), 1e-12)


def test_auto_modes_forward_replay_writes_into_a_tangent_only_the_replay_holds(monkeypatch):
    """Auto mode builds a forward Jacobian by replaying its tape: a loop of y[i] = v copied y's k-seed tangent at
    each write. A write now goes into it where it dies there and nothing else holds it; where a copy or a view
    of y lives on, its tangent is left as it was."""
    from jacobian_lab.engines import reverse

    kept = []
    written = reverse._written_in_place
    monkeypatch.setattr(reverse, "_written_in_place", lambda *a: kept.append(written(*a)) or kept[-1])

    def f(x):
        y = np.sin(x)
        for i in range(3):
            y[i] = x[i + 1] ** 2
        z = y.copy()
        y[3] = 2.0 * x[0]  # z holds y's tangent as it was
        v = y[:2]
        y[0] = x[2]  # v sees the write
        return np.concatenate([y, z, v, y * z])

    x = np.linspace(0.2, 1.2, 5)
    assert jl.predict(f, x).mode() == "forward"
    J = jl.jacobian(f, x)
    assert kept[:3] == [True] * 3 and False in kept[3:]
    assert_fd_close(J, central_differences(f, x))
    assert_close(J, jl.jacrev(f)(x), 1e-12)


def test_an_element_write_into_a_vector_records_one_put():
    """A loop of y[i] = v records, per write, the put (and v as one element): a vector needs no reshape to a flat
    view and back."""
    def f(x):
        y = np.zeros_like(x)
        for i in range(3):
            y[i] = x[i] ** 2
        return y

    tape = jl.engines.get("reverse").vjp(f, X[0])[1].tape
    assert [r.prim.name for r in tape.records[1:] if r.out.shape == (3,)] == ["put"] * 3
    assert_fd_close(jl.jacrev(f)(X[0]), central_differences(f, X[0]))


def test_an_array_held_once_is_one_no_other_name_view_or_base_reaches():
    from jacobian_lab.primitives import sole

    class Slot:
        pass

    held = Slot()
    held.array = np.zeros(4)
    assert sole(held, "array")
    other = held.array
    assert not sole(held, "array")
    del other
    view = held.array[1:]
    assert not sole(held, "array")
    del view
    held.array = np.zeros(4).reshape(2, 2)  # a view of a base nothing else holds
    assert sole(held, "array")
    base = held.array.base
    assert not sole(held, "array")
    del base
    held.array.flags.writeable = False
    assert not sole(held, "array")
    held.array = 1.0
    assert not sole(held, "array")


@pytest.mark.parametrize("mode", MODES + ["auto", "jit"])
def test_a_plain_buffer_f_writes_into_after_using_it_keeps_each_use(mode):
    J = run(_reused_buffer, mode)
    assert_fd_close(J, central_differences(_reused_buffer, X))


def test_a_pullback_reads_the_arrays_as_f_used_them():
    W = np.array([1.0, 2.0, 3.0])
    y, pullback = jl.vjp(lambda x: x * W, np.ones(3))
    W *= 5.0
    np.testing.assert_array_equal(pullback(np.ones(3)), [1.0, 2.0, 3.0])
    frozen = np.arange(3.0)
    frozen.flags.writeable = False  # values that cannot change are kept without a copy
    assert snapshots.snapshot(frozen) is frozen and np.shares_memory(snapshots.snapshot(frozen[1:]), frozen)


@pytest.mark.parametrize("mode", MODES)
def test_in_place_operators_that_a_tracer_cannot_become_are_refused(mode):
    def floor_in_place(x):
        y = x * 3.0
        y //= 1.0  # no derivative: y would stop being traced under another name's feet
        return y

    with pytest.raises(TypeError, match=r"`//=` would make this traced array one without a derivative.*y = y // v"):
        run(floor_in_place, mode)

    def mixing_derivatives(x):  # f of an inner derivative writes its input into a value of the outer one
        def inner(z):
            y = x * 1.0
            y += z
            return np.sum(y * z)
        return jl.grad(inner)(np.ones(x.shape))

    with pytest.raises(TypeError, match=r"a value of another derivative"):
        run(mixing_derivatives, mode)


def test_an_array_of_a_structured_x_may_change_in_place():
    def f(p):
        p["a"] *= 2.0  # the leaves are cut from one flat vector f never sees: no view to write through
        return p["a"] * p["b"]

    J = jl.jacobian(f, {"a": np.ones(2), "b": np.array([0.5, 2.0])})
    np.testing.assert_array_equal(J["a"], np.diag([1.0, 4.0]))
    np.testing.assert_array_equal(J["b"], np.diag([2.0, 2.0]))


@pytest.mark.parametrize("mode", MODES)
def test_in_place_operators_keep_shape_and_dtype_as_in_numpy(mode):
    def widen(x):
        y = x * 1.0
        y += np.ones((2,) + x.shape)
        return y

    with pytest.raises(ValueError, match=re.escape(f"non-broadcastable output operand with shape {X.shape}")):
        run(widen, mode)

    def shift(x):
        y = x * 1.0
        y += np.ones(x.shape)  # float64 into float32: NumPy keeps float32
        return y

    assert traced_value(shift, X.astype(np.float32)).dtype == np.float32


ASSIGNMENT_ERRORS = [  # (what, the write into y = x * 1.0, of shape (2, 3), NumPy's error on a plain y)
    ("value too long", lambda y: setitem(y, (0, slice(1, None)), np.ones(5)), ValueError,
     "could not broadcast input array from shape (5,) into shape (2,)"),
    ("index out of range", lambda y: setitem(y, (0, 7), 1.0), IndexError,
     "index 7 is out of bounds for axis 1 with size 3"),
    ("a broadcast view", lambda y: setitem(np.broadcast_to(y[0], (4, 3)), 0, 1.0), ValueError, "read-only"),
    ("a broadcast view in its own shape", lambda y: setitem(np.broadcast_to(y, y.shape), 0, 1.0), ValueError,
     "read-only"),
    ("a diagonal", lambda y: setitem(np.diagonal(y), 0, 1.0), ValueError, "read-only"),
    ("a NumPy scalar", lambda y: setitem(np.sum(y), (), 1.0), TypeError, "does not support item assignment"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("write, error, numpys", [case[1:] for case in ASSIGNMENT_ERRORS],
                         ids=[case[0] for case in ASSIGNMENT_ERRORS])
def test_item_assignment_fails_where_numpys_does_with_its_message(write, error, numpys, mode):
    with pytest.raises(error, match=re.escape(numpys)):
        write(X * 1.0)  # the reference: NumPy on a plain array

    def f(x):
        write(x * 1.0)
        return x

    with pytest.raises(error, match=re.escape(numpys)):
        run(f, mode)


def _rebinds(x, c=1.0):
    """x += 1 binds x anew where x is a number, and writes into it where x is a 0-d array."""
    y = x
    x += 1.0
    return y * x * c


def test_a_number_stays_immutable_through_every_entry_point():
    """A float given as one of several argnums, or to measure and compare (which flatten x first), reached f as
    a writable 0-d array: 1.69 where f gives 0.39, and a slope of 2.6 where it is 1.6."""
    expected = (0.3 * 1.3 * 2.0, 1.6 * 2.0)
    for x in (0.3, np.float64(0.3)):
        value, (slope, _) = jl.value_and_grad(_rebinds, argnums=(0, 1))(x, 2.0)
        assert (value, slope) == pytest.approx(expected)
        assert jl.measure(_rebinds, x, repeat=1).jacobian == pytest.approx(1.6)
        assert all(np.asarray(m.jacobian.toarray() if hasattr(m.jacobian, "toarray") else m.jacobian) ==
                   pytest.approx(1.6) for m in jl.compare(_rebinds, x, repeat=1).measurements)
    value, (slope, _) = jl.value_and_grad(_rebinds, argnums=(0, 1))(np.array(0.3), 2.0)  # a 0-d array takes it
    assert (value, slope) == pytest.approx((1.3 * 1.3 * 2.0, 2.6 * 2.0))


def test_a_0d_array_x_takes_writes_inside_a_hessian():
    """Its second derivative ran f on the tracer of a tracer, which was taken for a NumPy scalar: refused,
    and a write into np.asarray(x) was dropped there."""
    def squared_in_place(x):
        x[...] = x ** 2
        return x ** 1.5  # x^3

    for hessian in (jl.hessian, lambda f: jl.jit(jl.hessian(f)), lambda f: (lambda x: jl.sparse_hessian(f, x))):
        np.testing.assert_allclose(np.reshape(_dense(hessian(squared_in_place)(np.array(0.3))), ()), 6 * 0.3)

    def through_asarray(x):
        np.asarray(x)[...] = 3.0
        return x ** 2

    for hessian in (jl.hessian, lambda f: (lambda x: jl.sparse_hessian(f, x))):
        with pytest.raises(ReadOnlyError, match=r"If it is np\.asarray\(y\)"):
            hessian(through_asarray)(np.array(0.3))


def _dense(matrix):
    return matrix.toarray() if hasattr(matrix, "toarray") else matrix


REDUCTIONS_OF_0D = ["sum", "prod", "min", "max", "nansum", "nanprod", "nanmin", "nanmax", "nanmean", "nanvar",
                    "nanstd", "ptp", "cumsum", "cumprod", "mean", "var", "std", "average", "median", "nanmedian"]


@pytest.mark.parametrize("axis", [0, -1, (0,), (-1,), ()], ids=["0", "-1", "(0,)", "(-1,)", "()"])
@pytest.mark.parametrize("name", REDUCTIONS_OF_0D + ["quantile", "nanquantile", "percentile"])
def test_an_axis_of_a_0d_array_is_taken_or_refused_as_numpy_does(name, axis):
    """NumPy's ufunc reductions take axis 0 and -1 of a 0-d array, as one integer (-1 was refused, (0,) taken),
    where its mean, var, std, average, median and quantiles refuse both (they were taken)."""
    fn = getattr(np, name)
    f = (lambda v: fn(v, 0.5, axis=axis)) if "quantile" in name or "percentile" in name else \
        (lambda v: fn(v, axis=axis) * 1.0)
    x = np.array(0.4)
    try:
        expected = f(x)
    except (np.exceptions.AxisError, TypeError) as error:
        with pytest.raises(type(error)):
            jl.jacobian(f, x)
        return
    assert traced_value(f, x).shape == np.shape(expected)
    assert_fd_close(jl.jacobian(f, x), central_differences(f, x), name)


@pytest.mark.parametrize("axis", [0, -1, (0,), ()], ids=["0", "-1", "(0,)", "()"])
@pytest.mark.parametrize("f", [
    lambda v, axis: np.flip(v, axis), lambda v, axis: np.linalg.vector_norm(v, axis=axis),
    lambda v, axis: np.take(v, 0, axis=axis) * 1.0, lambda v, axis: np.apply_over_axes(np.sum, v, axis),
    lambda v, axis: np.repeat(v, 2, axis=axis), lambda v, axis: np.diff(v, axis=axis),
    lambda v, axis: np.diff(v, n=0, axis=axis, prepend=1.0), lambda v, axis: np.diff(v, n=0.0, axis=axis),
], ids=["flip", "vector_norm", "take", "apply_over_axes", "repeat", "diff", "diff n=0", "diff n=0.0"])
def test_other_functions_of_an_axis_of_a_0d_array_take_or_refuse_it_as_numpys_do(f, axis):
    """flip and vector_norm took -1 where NumPy refuses it; take and apply_over_axes failed with an IndexError,
    repeat was refused, and diff refused the axis with a TypeError before the array with NumPy's ValueError."""
    x = np.array(0.4)
    try:
        expected = f(x, axis)
    except (np.exceptions.AxisError, TypeError, ValueError) as error:
        with pytest.raises(type(error)):
            jl.jacobian(lambda v: f(v, axis), x)
        return
    assert_fd_close(jl.jacobian(lambda v: f(v, axis), x), central_differences(lambda v: f(v, axis), x), "0-d")
    assert np.shape(jl.jvp(lambda v: f(v, axis), x, np.array(1.0))[0]) == np.shape(expected)


@pytest.mark.parametrize("axis", [(), (0,), [0]], ids=["()", "(0,)", "[0]"])
def test_a_cumulative_sum_takes_one_integer_axis_as_numpy_does(axis):
    for x in (np.array(0.4), np.ones(3), np.ones((2, 3))):
        with pytest.raises(TypeError):
            np.cumsum(x, axis=axis)
        with pytest.raises(TypeError):
            jl.jacobian(lambda v: np.cumsum(v, axis=axis), x)


_ACCUMULATIONS = {"add.accumulate": lambda a, axis: np.add.accumulate(a, axis=axis),
                  "multiply.accumulate": lambda a, axis: np.multiply.accumulate(a, axis=axis),
                  "maximum.accumulate": lambda a, axis: np.maximum.accumulate(a, axis=axis)}
if hasattr(np, "cumulative_sum"):
    _ACCUMULATIONS.update(cumulative_sum=lambda a, axis: np.cumulative_sum(a, axis=axis),
                          cumulative_prod=lambda a, axis: np.cumulative_prod(a, axis=axis))


@pytest.mark.parametrize("name", list(_ACCUMULATIONS))
def test_accumulations_take_the_axes_numpys_do(name):
    """ufunc.accumulate and the cumulative functions take a tuple of one axis (they refused it), and refuse a
    0-d array unless NumPy reads it as 1-d (add.accumulate of one was taken, as a 1-element array)."""
    f = _ACCUMULATIONS[name]
    for x in (np.array(0.6), np.linspace(0.5, 1.5, 3), np.linspace(0.5, 1.5, 6).reshape(2, 3)):
        for axis in (None, 0, -1, 1, np.int64(0), 0.0, True, (), (0,), (-1,), (1,), (0, 1), (1.0,), (False,)):
            try:
                f(x ** 2, axis)
            except (np.exceptions.AxisError, TypeError, ValueError) as error:
                with pytest.raises(type(error)):
                    jl.jacobian(lambda v: f(v ** 2, axis), x)
                continue
            assert_fd_close(jl.jacobian(lambda v: f(v ** 2, axis), x),
                            central_differences(lambda v: f(v ** 2, axis), x), f"{name} axis={axis}")


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
@pytest.mark.parametrize("write, slope", [
    (lambda x: x.__setitem__((), x ** 2), lambda v: 2 * v),
    (lambda x: x.__setitem__(Ellipsis, np.sin(x)), np.cos),
    (lambda x: np.copyto(x, 3.0 * x), lambda v: 3.0),
    (lambda x: np.sin(x, out=x), np.cos),
    (lambda x: x.fill(2.0), lambda v: 0.0),
], ids=["x[()] =", "x[...] =", "np.copyto", "out=x", "fill"])
def test_a_0d_x_takes_writes_as_numpys_0d_arrays_do(write, slope, mode):
    """A 0-d x was taken for a NumPy scalar, which is immutable: every write into it was refused, and
    into x.copy() too, where a shape-(1,) x took them. A Python float or NumPy scalar x stays immutable."""
    def f(x):
        write(x)
        return x * 1.0

    for make in (lambda x: x, lambda x: x.copy()):
        value = np.array(0.4)
        reference = make(value.copy())
        write(reference)  # NumPy itself: x is a 0-d array
        np.testing.assert_allclose(run(lambda x: f(make(x)), mode, value), slope(0.4), rtol=1e-15)
        assert jl.jvp(lambda x: f(make(x)), np.array(0.4), np.array(1.0))[0] == reference

    def through_asarray(x):  # np.asarray of a 0-d array is the array itself, whose write an array of its traced
        np.asarray(x)[...] = 3.0  # elements could not reach: refused, where it was dropped
        return x * 1.0

    with pytest.raises(ReadOnlyError, match=r"If it is np\.asarray\(y\)"):
        run(through_asarray, mode, np.array(0.4))
    def of_a_scalar(x):  # of a NumPy scalar (a reduction's), np.asarray makes an array of its own: it takes the write
        s = np.sum(x)
        np.asarray(s)[...] = 3.0
        return s * 1.0

    np.testing.assert_allclose(run(of_a_scalar, mode, np.array(0.4)), 1.0)

    def rebinds(x):  # x += 1 binds x anew where x is a number, and writes into it where x is a 0-d array
        y = x
        x += 1.0
        return y * x

    for x, slope_at in ((0.3, 2 * 0.3 + 1), (np.float64(0.3), 2 * 0.3 + 1), (np.array(0.3), 2 * 1.3),
                        ({"a": np.array(0.3)}, {"a": 2 * 1.3})):
        value, grad = jl.value_and_grad(lambda p: rebinds(p["a"]) if isinstance(p, dict) else rebinds(p))(x)
        leaf = x["a"] if isinstance(x, dict) else x
        assert value == pytest.approx(rebinds(leaf.copy() if isinstance(leaf, np.ndarray) else leaf))
        assert grad == pytest.approx(slope_at)


def _add_at(x):
    np.add.at(x, [0, 0], 1.0)


WRITES_INTO_X = {  # what f writes into its argument; NumPy refuses each for a read-only x
    "item": lambda x: setitem(x, (0, 1), 1.0),
    "in-place operator": lambda x: x.__imul__(2.0),
    "a view": lambda x: setitem(x[1:], 0, 1.0),
    "out=": lambda x: np.sin(x, out=x),
    "np.add.at": _add_at,
}
READ_ONLY_X = {
    "writeable=False": lambda: _frozen(X),
    "np.broadcast_to": lambda: np.broadcast_to(X[0], X.shape),
}


def _frozen(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("mode", MODES + ["jit", "auto"])
@pytest.mark.parametrize("given", READ_ONLY_X, ids=list(READ_ONLY_X))
@pytest.mark.parametrize("write", WRITES_INTO_X.values(), ids=list(WRITES_INTO_X))
def test_writes_into_a_read_only_x_fail_as_numpys_do(write, given, mode):
    def f(x):
        write(x)
        return x * 1.0

    with pytest.raises(ValueError, match="read-only"):
        f(READ_ONLY_X[given]())  # the reference: NumPy on the same x
    with pytest.raises(ValueError, match=r"assignment destination is read-only: .* into x, which was passed "
                                         r"read-only .* write into a copy \(y = x\.copy\(\)\)"):
        run(f, mode, READ_ONLY_X[given]())


@pytest.mark.parametrize("mode", MODES)
def test_a_copy_of_a_read_only_x_and_a_leaf_of_a_tree_x_follow_their_own_flags(mode):
    def f(x):
        y = x.copy()
        y[0] += 1.0  # a copy is writeable, as NumPy's is
        return y ** 2

    x = _frozen(X)
    np.testing.assert_array_equal(run(f, mode, x), run(f, mode, X * 1.0))

    def g(tree):
        tree["b"][0] = tree["a"][0]  # b was passed writeable; a was not
        tree["a"][0] = 1.0
        return tree["b"]

    with pytest.raises(ValueError, match="read-only"):
        jl.jacobian(g, {"a": _frozen(X), "b": X * 1.0}, mode=mode)

    def h(tree):
        tree["b"][0] = tree["a"][0]
        return tree["b"]

    J = jl.jacobian(h, {"a": _frozen(X), "b": X * 1.0}, mode=mode)  # b's row 0 is a's
    np.testing.assert_array_equal(J["a"].reshape(6, 6), np.eye(6) * (np.arange(6) < 3)[:, None])
    np.testing.assert_array_equal(J["b"].reshape(6, 6), np.eye(6) * (np.arange(6) >= 3)[:, None])


def test_a_compiled_jacobian_keeps_a_read_only_x_apart_from_a_writeable_one():
    def f(x):
        x[0, 0] = 1.0
        return x * 2.0

    jac = jl.jit(jl.jacobian(f))
    J = jac(X * 1.0)  # recorded with a writeable x, where the write is f's own business
    np.testing.assert_array_equal(J, jl.jacobian(f, X * 1.0, mode="reverse"))
    with pytest.raises(ValueError, match="read-only"):
        jac(_frozen(X))  # not a replay of the program that wrote into x
    np.testing.assert_array_equal(jac(X * 1.0), J)


HESSIANS = {
    "hessian": lambda f: jl.hessian(f),
    "hessian, reverse": lambda f: jl.hessian(f, mode="reverse"),
    "jit(hessian)": lambda f: jl.jit(jl.hessian(f)),
    "sparse_hessian": lambda f: (lambda x: jl.sparse_hessian(f, x)),
    "jit(sparse_hessian)": lambda f: jl.jit(jl.sparse_hessian(f)),
}


@pytest.mark.parametrize("hessian", HESSIANS.values(), ids=list(HESSIANS))
def test_second_derivatives_refuse_writes_into_a_read_only_x_or_leaf(hessian):
    def f(x):
        x[0] *= 2.0
        return np.sum(x ** 3)

    def g(tree):
        return f(tree["a"]) + np.sum(tree["b"] ** 2)

    H = hessian(f)
    with pytest.raises(ValueError, match="read-only"):
        H(_frozen(X[0]))
    H = hessian(g)
    writeable = {"a": X[0] * 1.0, "b": X[1] * 1.0}
    first = H(writeable)  # compiled with a writeable leaf a: then not replayed for a read-only one
    with pytest.raises(ValueError, match="read-only"):
        H({"a": _frozen(X[0]), "b": X[1] * 1.0})
    H({"a": X[0] * 1.0, "b": _frozen(X[1])})  # b is only read
    again = H(writeable)
    for ours, before in zip(_blocks(again), _blocks(first), strict=True):
        np.testing.assert_array_equal(ours, before)


def _blocks(H):
    """A Hessian's blocks (a dict of dicts, or one sparse matrix) as dense arrays."""
    if isinstance(H, dict):
        return [block for key in H for block in _blocks(H[key])]
    return [H.toarray() if hasattr(H, "toarray") else H]


@pytest.mark.parametrize("mode", MODES)
def test_item_assignment_keeps_the_arrays_dtype_and_is_counted_as_a_move(mode):
    def f(x):
        y = x * 2.0
        y[1:] = x[0] ** 2  # float64 into float32: NumPy keeps float32
        return y

    x = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    assert traced_value(f, x).dtype == np.float32
    # x * 2 and x[0] ** 2 (a square); the write moves values, as slicing does: 0 flops
    assert jl.count_flops(f, x.astype(np.float64)) == jl.Cost(3 + 1, 0)

    def masked(x):
        y = x * 2.0
        y[y > 0] = 0.0  # a boolean mask of y's shape: np.where(mask, 0.0, y), one select per element
        return y

    assert jl.count_flops(masked, x.astype(np.float64)) == jl.Cost(3 + 3 + 3, 0)  # x * 2, y > 0, the select
    np.testing.assert_array_equal(run(f, mode, x.astype(np.float64)),
                                  [[2.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])


def test_a_mask_assignment_compiles_once_whatever_the_mask():
    def f(x):
        y = np.sin(x)
        y[y > 0.5] = 0.5  # the select of np.where, which a program recomputes with the mask
        return y

    jac = jl.jit(jl.jacobian(f))
    for x in (np.array([1.0, 0.1, 2.0]), np.array([0.1, 1.0, -1.0])):
        assert_fd_close(jac(x), central_differences(f, x))
    assert jac.compiles == 1


@pytest.mark.parametrize("f", [_item_assigned, _assigned_through_views, _fancy_assigned])
def test_item_assignment_in_sparse_jacobians_and_hessians(f):
    J = central_differences(f, X)
    assert_fd_close(jl.sparse_jacobian(f, X).toarray().reshape(J.shape), J)
    H = jl.hessian(lambda x: np.sum(f(x) ** 2), X)
    assert_fd_close(H, central_differences(jl.grad(lambda x: np.sum(f(x) ** 2)), X))


def _robertson(y):
    """The right-hand side of Robertson's stiff chemical kinetics, written as for scipy's solve_ivp."""
    dydt = np.empty_like(y)
    dydt[0] = -0.04 * y[0] + 1e4 * y[1] * y[2]
    dydt[1] = 0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2
    dydt[2] = 3e7 * y[1] ** 2
    return dydt


def _robertson_jacobian(y):
    return np.array([[-0.04, 1e4 * y[2], 1e4 * y[1]],
                     [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]],
                     [0.0, 6e7 * y[1], 0.0]])


@pytest.mark.parametrize("mode", MODES + ["auto", "jit", "sparse"])
def test_an_array_made_like_x_takes_traced_values(mode):
    y = np.array([0.9, 3e-5, 0.1])
    J = run(_robertson, mode, y)
    np.testing.assert_allclose(J, _robertson_jacobian(y), rtol=1e-14, atol=0)
    # the arithmetic of the three rows; the writes move values: 0 flops
    assert jl.count_flops(_robertson, y) == jl.Cost(4 + 7 + 2, 0)


def test_the_sparsity_of_an_array_filled_by_writes_is_what_each_write_reads():
    def heat(u):
        du = np.empty_like(u)
        du[0] = u[1] - 2.0 * u[0]
        du[1:-1] = u[:-2] - 2.0 * u[1:-1] + u[2:]
        du[-1] = u[-2] - 2.0 * u[-1]
        return du

    u = np.linspace(0.0, 1.0, 6)
    tridiagonal = (np.abs(np.subtract.outer(np.arange(6), np.arange(6))) <= 1).astype(int)
    np.testing.assert_array_equal(jl.sparsity(heat, u).toarray(), tridiagonal)
    np.testing.assert_array_equal(jl.sparse_jacobian(heat, u).toarray(), jl.jacobian(heat, u))

    def overwritten(x):
        y = np.sin(x)
        y[0] = x[2]  # a move: the element depends on what is written into it alone
        return y

    np.testing.assert_array_equal(jl.sparsity(overwritten, u[:3]).toarray(), [[0, 0, 1], [0, 1, 0], [0, 0, 1]])


@pytest.mark.parametrize("mode", MODES)
def test_an_array_made_like_x_has_no_derivative_until_one_is_written(mode):
    def f(x):
        r = np.zeros_like(x)
        ones = np.ones_like(x) * 2.0  # no derivative either
        row = r[1]  # a view of r
        row[:2] = x[0, 1:] * ones[0, :2]  # written through into r
        return r

    J = run(f, mode)
    assert_fd_close(J, central_differences(f, X))
    np.testing.assert_array_equal(J[0], 0.0)
    for nothing in (lambda x: np.zeros_like(x), lambda x: np.full_like(x, 3.0) * 2.0 + 1.0):
        np.testing.assert_array_equal(run(nothing, mode), np.zeros(X.shape * 2))

    def accumulated(x):
        acc = np.zeros_like(x)
        for k in range(1, 3):
            acc += np.sin(k * x)
        return acc

    assert_fd_close(run(accumulated, mode), central_differences(accumulated, X))


@pytest.mark.parametrize("mode", MODES + ["count_flops"])
def test_an_array_without_a_derivative_converts_like_an_ndarray(mode):
    seen = {}

    def f(x):
        blank = np.ones_like(x)
        seen["n"] = int(blank.sum())  # plain numbers: nothing is dropped
        seen["first"] = float(blank[0, 0]), blank[0, 0].item(), f"{blank[0, 1]:.1f}", blank.tolist()
        seen["ints"] = blank.astype(int)
        seen["fft"] = np.fft.fft(blank[0]).real  # NumPy's own, for a function without a rule
        plain = np.asarray(blank)
        seen["read-only"] = not plain.flags.writeable  # writing into it could not reach blank
        blank[0, 0] = x[0, 0]
        with pytest.raises(jl.TracerConversionError):
            float(blank[0, 0])  # now it has a derivative
        return blank * x

    if mode == "count_flops":
        jl.count_flops(f, X)
    else:
        run(f, mode)
    assert seen["n"] == 6 and seen["first"] == (1.0, 1.0, "1.0", np.ones((2, 3)).tolist())
    assert seen["ints"].dtype == int and seen["read-only"]
    np.testing.assert_array_equal(seen["fft"], [3.0, 0.0, 0.0])


def test_a_compiled_program_checks_the_values_f_reads_of_an_array_made_like_x():
    def f(x):
        d = np.zeros_like(x)
        d[x > 0] = 1.0  # values that follow x, without a derivative
        return x * float(d[0]) + x[np.asarray(d, dtype=bool)].sum()

    jac = jl.jit(jl.jacobian(f))
    for x in (np.array([1.0, 2.0]), np.array([-1.0, 2.0]), np.array([-1.0, -2.0])):
        assert_fd_close(jac(x), central_differences(f, x))
    assert jac.compiles == 3  # each point read other values


@pytest.mark.parametrize("mode", MODES)
def test_a_copy_of_an_array_made_like_x_is_a_plain_array_of_its_own(mode):
    def f(x):
        copied = np.array(np.ones_like(x))  # NumPy's np.array copies: a plain array f may write into
        copied[0] = 2.0
        with pytest.raises(ValueError, match="read-only"):
            np.asarray(np.ones_like(x))[0] = 2.0  # np.asarray would share the memory, which cannot be written
        return x * copied

    np.testing.assert_array_equal(run(f, mode, np.ones(2)), np.diag([2.0, 1.0]))


EDGES = np.array([[0, 1], [1, 2], [2, 0], [0, 3], [3, 1]])


def _edge_forces(x):
    """Forces on a graph's nodes summed over its edges with np.add.at, as a mesh assembly does."""
    d = x[EDGES[:, 1]] - x[EDGES[:, 0]]
    f = np.zeros_like(x)
    np.add.at(f, EDGES[:, 0], d ** 3)  # node 0 is the tail of two edges: both add up
    np.subtract.at(f, EDGES[:, 1], np.sin(d))
    g = np.sin(x)
    np.add.at(g, [0, 0, 2], 1.5 * x[1])  # one value added at three places, twice at one
    np.add.at(g[1:], (np.array([0, 0]),), x[:2])  # through a view
    return f + g


@pytest.mark.parametrize("mode", MODES + ["auto", "jit", "sparse"])
def test_ufunc_at_adds_into_a_traced_array_as_numpy_does(mode):
    x = np.array([0.3, -0.5, 1.1, 0.7])
    J = run(_edge_forces, mode, x)
    assert_fd_close(J, central_differences(_edge_forces, x))
    np.testing.assert_array_equal(traced_value(_edge_forces, x), _edge_forces(x))  # NumPy's order of additions
    x32 = x.astype(np.float32)  # float32 sums rounded at every step, as NumPy's
    np.testing.assert_array_equal(traced_value(_edge_forces, x32), _edge_forces(x32))
    # one addition per index, as NumPy's (subtract.at negates first): 5 + 2 * 5 + 3 + 2, besides
    # the differences (5), 1.5 * x[1] and f + g (4); cube (power) and sines are transcendentals
    assert jl.count_flops(_edge_forces, x) == jl.Cost(5 + 5 + 2 * 5 + 1 + 3 + 2 + 4, 5 + 5 + 4)


def _other_ufuncs_at(x):
    """Scatter products and maxima (a segment max), a negation and a unary function, repeats applied in turn."""
    y = x[:4] + 1.0
    np.multiply.at(y, [0, 0, 2], x[1:4])  # y[0] * x[1] * x[2], in that order
    np.maximum.at(y, [1, 1, 3, 1], x * 2.0)
    np.negative.at(y[1:], ([0, 2, 2],))  # through a view; twice at one index: back to itself
    np.sin.at(y, [3])
    np.divide.at(y, (np.array([2, 2]),), 4.0)
    return y


@pytest.mark.parametrize("mode", MODES + ["auto", "jit", "sparse"])
def test_other_ufuncs_at_apply_each_index_in_turn_as_numpy_does(mode):
    x = np.array([0.3, -0.5, 1.1, 0.7])
    assert_fd_close(run(_other_ufuncs_at, mode, x), central_differences(_other_ufuncs_at, x))
    np.testing.assert_array_equal(traced_value(_other_ufuncs_at, x), _other_ufuncs_at(x))
    # one operation per index: multiply 3, maximum 4, negative 3, divide 2 (and sin a transcendental),
    # besides x[:4] + 1 (4) and x * 2 (4)
    assert jl.count_flops(_other_ufuncs_at, x) == jl.Cost(4 + 3 + 4 + 4 + 3 + 2, 1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ufunc", [np.add, np.multiply])
def test_ufunc_at_into_a_plain_array_is_refused_by_name(ufunc, mode):
    def plain(x):
        f = np.zeros(3)
        ufunc.at(f, [0], x[0])
        return f

    with pytest.raises(TypeError, match=rf"np.{ufunc.__name__}.at into a plain array .*np.zeros_like\(x\)"):
        run(plain, mode, np.ones(3))


BLANK_USES = {  # an array made like x, used where a plain array is taken
    "floor division in place": lambda x: _written_first(np.full_like(x, 5.0).__ifloordiv__(2.0), x),
    "a function without a derivative": lambda x: _written_first(np.floor(np.ones_like(x) * 2.5), x),
    "x of a derivative inside f": lambda x: jl.jacobian(np.sin, np.ones_like(x)) @ x,
    "a condition": lambda x: x[np.compress(np.ones_like(x) > 0, np.arange(3))] + np.extract(np.ones_like(x), x),
}


def _written_first(d, x):
    d[0] = x[0]
    return d * x


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("use", BLANK_USES.values(), ids=BLANK_USES.keys())
def test_an_array_made_like_x_is_taken_where_a_plain_array_is(use, mode):
    x = np.array([0.5, 1.5, 2.5])
    assert_fd_close(run(use, mode, x), central_differences(use, x))
    np.testing.assert_array_equal(traced_value(use, x), use(x))
    # what recording f prices as its evaluation is what f counts, the arrays without a derivative included
    assert jl.predict(use, x).primal == jl.count_flops(use, x)


@pytest.mark.parametrize("mode", MODES)
def test_item_assignment_converts_plain_values_as_numpy_does(mode):
    from fractions import Fraction

    def f(x):
        y = x * 1.0
        y[0], y[1], y[2] = "1.5", Fraction(1, 4), 2 ** 70  # each as a float, as NumPy stores it
        y[3] = None  # NaN
        return y

    x = np.arange(4.0)
    np.testing.assert_array_equal(traced_value(f, x), f(x))
    np.testing.assert_array_equal(run(f, mode, x), np.zeros((4, 4)))


def _numpy_writers(x):
    """Every NumPy function and ndarray method that writes into its array, into traced ones."""
    A = np.zeros_like(x, shape=(3, 3))
    np.fill_diagonal(A, x[:3])
    np.put(A, [1, -1, 7], x[3:5])  # two values for three places: repeated, as NumPy does
    np.putmask(A, np.eye(3, k=1, dtype=bool), x[::-1])  # values read at each masked element's position
    np.place(A, np.eye(3, k=-1, dtype=bool), x[4])
    B = np.ones_like(A)
    np.copyto(B, A * 2.0, where=A > 0.5)
    c = x[:4] * 1.0
    c.sort()
    d = np.zeros_like(x)
    d.fill(x[5])
    d.put([0, 8], x[:2], mode="wrap")
    e = x * 1.0
    e.partition(2)
    np.put_along_axis(e, np.array([0, 5]), x[1] * 2.0, axis=None)
    return np.concatenate([A.ravel(), B.ravel(), c, d, e[2:3], e[:1]])


@pytest.mark.parametrize("mode", MODES + ["jit", "sparse"])
def test_numpys_in_place_writers_write_into_traced_arrays(mode):
    x = np.array([0.3, 1.7, -0.4, 0.9, 2.2, -1.1])
    J = run(_numpy_writers, mode, x)
    assert_fd_close(J, central_differences(_numpy_writers, x))
    np.testing.assert_array_equal(traced_value(_numpy_writers, x), _numpy_writers(x))


EDGE_VALUES = {  # NumPy's values bit for bit, and its warnings, where they are easy to get otherwise
    "running maximum's ties": (lambda v: np.maximum.accumulate(v) + np.minimum.accumulate(v[::-1]),
                               np.array([-0.0, 0.0, 0.0, -0.0])),
    "running maximum of a vector, axis=None": (lambda v: np.maximum.accumulate(v, axis=None), np.array([1.0, 3.0, 2.0])),
    "logaddexp.reduce of nothing": (lambda v: np.logaddexp.reduce(v[:0]) + v, np.ones(2)),
    "tolist of float32, as Python floats": (lambda v: np.stack(v.tolist()) * 1.1, np.float32([1.5, 2.5])),
    "writeable sliding windows": (lambda v: _windows_written(v * 1.0), np.arange(1.0, 5.0)),
    "copyto by keyword": (lambda v: _copied_by_keyword(v), np.arange(1.0, 4.0)),
}


def _windows_written(y):
    w = np.lib.stride_tricks.sliding_window_view(y, 2, writeable=True)
    w[0, 0] = 7.0  # NumPy writes into y
    return y


def _copied_by_keyword(v):
    out = np.zeros_like(v)
    np.copyto(dst=out, src=v ** 2)
    return out


@pytest.mark.parametrize("f, x", EDGE_VALUES.values(), ids=EDGE_VALUES)
def test_edge_values_are_numpys(f, x):
    value = traced_value(f, x)
    expected = f(x)
    assert value.dtype == expected.dtype
    np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(np.signbit(value), np.signbit(expected))


def test_a_weighted_covariance_without_degrees_of_freedom_warns_as_numpy():
    X = np.arange(18.0).reshape(3, 6)
    with np.errstate(divide="ignore"):  # then 1 / 0, NumPy's and ours alike
        with pytest.warns(RuntimeWarning, match="Degrees of freedom <= 0"):
            value = traced_value(lambda w: np.cov(X, aweights=w, ddof=8), np.ones(6))
        with pytest.warns(RuntimeWarning, match="Degrees of freedom <= 0"):
            np.testing.assert_array_equal(value, np.cov(X, aweights=np.ones(6), ddof=8))


@pytest.mark.parametrize("weights, error", [
    ({"fweights": [1, 2, 1.5]}, TypeError), ({"aweights": [1.0, -2.0, 1.0]}, ValueError),
    ({"fweights": [[1, 2, 1]]}, RuntimeError), ({"aweights": [1.0, 2.0]}, RuntimeError),
], ids=["fractional counts", "negative weights", "2-d counts", "too few weights"])
def test_covariance_weights_are_checked_as_numpy_checks_them(weights, error):
    with pytest.raises(error):
        np.cov(X, **weights)  # NumPy's
    with pytest.raises(error):
        run(lambda x: np.cov(x, **weights), "reverse")


@pytest.mark.parametrize("write, error", [
    (lambda y: np.put(y, [0, 9], 1.0), IndexError), (lambda y: y.fill([1.0]), ValueError),
    (lambda y: np.fill_diagonal(y[0], 1.0), ValueError), (lambda y: np.put(y, [0], 1.0, mode="bend"), ValueError),
    (lambda y: np.putmask(y, np.ones(2, dtype=bool), 1.0), ValueError),
    (lambda y: np.place(y, y > 0, []), ValueError), (lambda y: y.sort(axis=None), TypeError),
    (lambda y: np.place(y, np.array([True, False, True]), [7.0]), ValueError),
], ids=["put out of range", "fill with a sequence", "fill_diagonal of a vector", "put's mode", "putmask's mask",
        "place of nothing", "sort along no axis", "place's mask"])
def test_numpys_in_place_writers_fail_where_numpys_do(write, error):
    with pytest.raises(error):
        write(X * 1.0)  # NumPy on a plain array

    def f(x):
        write(x * 1.0)
        return x

    with pytest.raises(error):
        run(f, "reverse")


@pytest.mark.parametrize("mode", MODES)
def test_numpys_in_place_writers_without_values_or_into_plain_arrays_of_values(mode):
    def f(x):
        y = x * 1.0
        np.put(y, [0], [])  # no values: NumPy writes nothing
        np.putmask(y, y > 0, [])
        np.fill_diagonal(y, [])
        plain = np.zeros(3)
        np.copyto(plain, np.ones_like(x)[0])  # a plain array takes values without a derivative
        return y * plain[0]

    np.testing.assert_array_equal(run(f, mode), np.eye(6).reshape(2, 3, 2, 3))


@pytest.mark.parametrize("mode", MODES)
def test_arrays_made_like_x_as_numpy_makes_them(mode):
    kinds = {}

    def f(x):
        kinds["subok=False"] = type(np.zeros_like(x, subok=False))  # NumPy's base class: a plain array
        kinds["int"] = type(np.zeros_like(x, dtype=int))  # no derivative in integers: a plain array
        kinds["traced"] = type(np.zeros_like(x))
        return x

    run(f, mode)
    assert kinds["subok=False"] is np.ndarray and kinds["int"] is np.ndarray
    assert issubclass(kinds["traced"], Tracer)


@pytest.mark.parametrize("mode", MODES)
def test_ufunc_out_argument_into_a_plain_array_is_refused_and_into_a_traced_one_written(mode):
    def plain(x):
        acc = np.zeros(X.shape)
        acc += x ** 2  # np.add(acc, x ** 2, out=acc) on a plain acc
        return acc

    with pytest.raises(TypeError, match=r"numpy\.add\(\.\.\., out=\.\.\.\) writes a traced result into a plain array"
                       r".*`a \+= v` on a plain a") as info:
        run(plain, mode)
    assert "np.zeros_like(x, shape=...)" in str(info.value) and "{" not in str(info.value)

    def traced(x):
        acc = np.zeros_like(x)
        np.add(acc, x ** 2, out=acc)
        return acc

    assert_fd_close(run(traced, mode), central_differences(traced, X))


@pytest.mark.parametrize("mode", MODES)
def test_ufunc_out_and_where_as_numpy_writes_them(mode):
    def f(x):
        out = np.zeros_like(x)
        np.divide(1.0, x, out=out, where=x > 0)  # the common guard against dividing by zero
        plain = np.zeros(X.shape)
        plain += np.ones_like(x)  # no derivative to drop: NumPy's own
        return out * plain + np.multiply.outer(x[0], 0.5)  # outer's plain operand an array first

    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    assert_fd_close(run(f, mode, x), central_differences(f, x))
    np.testing.assert_array_equal(traced_value(f, x), f(x))
    x32 = np.float32(x)
    assert traced_value(lambda x: np.multiply.outer(x, 0.1), x32).dtype == np.multiply.outer(x32, 0.1).dtype


AWAY = np.array([[-0.5, -1.5, 0.5], [1.5, 0.25, -0.75]])  # no element on a mask's edge, where differences straddle it
WHERE_GUARDED = {  # NumPy evaluates nothing where the mask is False: the elements a rule's slope is infinite at
    "safe division": (lambda x: np.divide(np.sin(x), x, out=np.ones_like(x), where=x != 0), AWAY * [[0], [1]]),
    "reciprocal of a plain operand": (lambda x: x * np.divide(1.0, AWAY + 0.5, out=np.zeros_like(x),
                                                              where=AWAY != -0.5), AWAY),
    "sqrt": (lambda x: np.sqrt(x, out=np.zeros_like(x), where=x > 0), AWAY),
    "log": (lambda x: np.log(x, out=np.zeros_like(x), where=x > 0), AWAY),
    "arcsin": (lambda x: np.arcsin(x, out=np.zeros_like(x), where=np.abs(x) < 1), AWAY),
    "arccosh": (lambda x: np.arccosh(x + 1.0, out=np.zeros_like(x), where=x > 0), AWAY),
    "power": (lambda x: np.power(x, 1.5, out=np.zeros_like(x), where=x > 0), AWAY),
    "power of a negative base": (lambda x: np.power(-2.0, x, out=np.zeros_like(x), where=x > 5.0), AWAY),
}


@pytest.mark.filterwarnings("error")  # NumPy's f warns of nothing: neither may its derivative
@pytest.mark.parametrize("mode", MODES + ["auto", "jit", "hessian"])
@pytest.mark.parametrize("f, x", WHERE_GUARDED.values(), ids=WHERE_GUARDED)
def test_a_ufuncs_where_mask_keeps_its_unevaluated_elements_out_of_the_derivative(f, x, mode):
    """The rule ran at every element and a select kept the mask's: a reverse sweep's 0 reached the slopes at the
    masked-out elements (1/0, log of a negative) as 0 · inf or 0 · NaN = NaN, in whole columns."""
    if mode == "hessian":
        assert np.isfinite(jl.hessian(lambda v: np.sum(f(v) ** 2))(x)).all()
    else:
        assert_fd_close(run(f, mode, x), central_differences(f, x))


@pytest.mark.parametrize("mode", MODES)
def test_a_ufuncs_integer_where_mask_is_refused_as_numpy_refuses_it(mode):
    with pytest.raises(TypeError, match=r"Cannot cast array data from dtype\('int64'\) to dtype\('bool'\)"):
        run(lambda x: np.add(x, 1.0, out=np.zeros_like(x), where=np.ones(X.shape, dtype=np.int64)), mode)
    for where in ([True, False, True], (True, False, True), 1):  # what NumPy takes besides a boolean array
        f = lambda x: np.divide(1.0, x, out=np.zeros_like(x), where=where)  # noqa: E731
        assert_fd_close(run(f, mode), central_differences(f, X))


def _functions_written_into_out(x):
    y = x * 2.0
    np.clip(y, -1.0, 1.0, out=y)  # in place, as NumPy code keeps a buffer
    rows = np.zeros_like(x, shape=(4, 3))
    np.sum(x, axis=0, out=rows[0])  # into a view: the array it views changes
    np.cumsum(x[1], out=rows[1])
    m = np.mean(x, axis=1, out=rows[2, :2])  # returns out itself
    m *= 3.0
    np.take(x, [5, 0, 2], out=rows[3])
    np.argmax(x, axis=1, out=(where := np.zeros(2, dtype=int)))  # no derivative: into a plain array too
    return np.concatenate([y.ravel(), rows.ravel(), where * 1.0, _written_by_position_and_methods(x)])


def _written_by_position_and_methods(x):
    """out= passed by position, through an array's methods and into ufuncs' reduce, accumulate and
    their several outputs: each written as NumPy writes it."""
    buf = np.zeros_like(x, shape=(9, 3))
    np.clip(x[0], 0.2, 0.9, buf[0])
    x[1].clip(-0.5, 0.5, out=buf[1])
    np.round(x[0] * 0.37, 1, buf[2])
    (x[1] * 0.37).round(1, out=buf[3])
    np.cumsum(x[0], 0, None, buf[4])
    np.take(x.ravel(), [4, 0, 3], None, buf[5], "clip")  # and the argument after out by position too
    np.add.reduce(x, axis=0, out=buf[6])
    np.multiply.accumulate(x[1], out=buf[7])
    np.divmod(x[0], 0.3, out=(quotient := np.zeros_like(x[0]), buf[8]))
    products = np.zeros_like(x, shape=(2, 2, 2))
    np.dot(x, x.T, products[0])
    x.dot(x.T, out=products[1])
    return np.concatenate([buf.ravel(), quotient, products.ravel()])


@pytest.mark.parametrize("mode", MODES + ["jit"])
def test_numpy_functions_write_into_out_as_numpy_does(mode):
    f = _functions_written_into_out
    assert_fd_close(run(f, mode), central_differences(f, X))
    np.testing.assert_array_equal(traced_value(f, X), f(X))
    with pytest.raises(ValueError, match=re.escape("numpy.sum: out has shape (3,), where the result has shape (2,)")):
        run(lambda x: np.sum(x, axis=1, out=np.zeros_like(x, shape=(3,))), mode)
    with pytest.raises(ValueError, match=re.escape("numpy.add.reduce: out has shape (2, 3), where the result has "
                                                   "shape (3,)")):
        run(lambda x: np.add.reduce(x, out=np.zeros_like(x)), mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [
    lambda x: np.sum(x, out=np.zeros(())),
    lambda x: np.exp(x, out=np.empty_like(X)),
    lambda x: np.matmul(x, x.T, out=np.zeros((2, 2))),
    lambda x: np.add.reduce(x, out=np.zeros(4)),
    lambda x: np.multiply.accumulate(x, out=np.zeros((2, 4))),
    lambda x: np.std(x, out=np.zeros(())),
], ids=["np.sum", "np.exp", "np.matmul", "np.add.reduce", "np.multiply.accumulate", "np.std"])
def test_out_argument_refused_everywhere(f, mode, request):
    name = request.node.callspec.id.split("-")[0].replace("np.", "numpy.")
    with pytest.raises((TypeError, NotImplementedError), match=re.escape(name) + r"\(\.\.\., out="):
        run(f, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [lambda x: np.copyto(np.zeros(3), x[0]),
                               lambda x: np.full_like(np.zeros(3), x[0, 0])],  # NumPy's own, writing with copyto
                         ids=["np.copyto", "np.full_like of a plain array"])
def test_writing_a_traced_value_into_a_plain_array_is_refused(f, mode):
    with pytest.raises(TypeError, match=r"numpy.copyto writes into an array in place.*np.broadcast_to"):
        run(f, mode)


@pytest.mark.parametrize("mode", MODES + ["auto", "jit"])
@pytest.mark.parametrize("indices, axis", [([0, 2], 1), ([0, 0, 1], 0), ([2, 0, 1], 1), ([1], -1)],
                         ids=["segments", "a repeated start", "decreasing", "one to the end"])
def test_add_reduceat_sums_segments_as_numpy_does(indices, axis, mode):
    """Along the axis, the sum from each index to the next, or the element alone where the next is not larger."""
    f = lambda x: np.add.reduceat(np.sin(x), indices, axis=axis)  # noqa: E731
    np.testing.assert_array_equal(traced_value(f, X), f(X))
    assert_fd_close(run(f, mode), central_differences(f, X))
    ends = np.append(indices[1:], X.shape[axis])
    adds = sum(max(end - start, 1) - 1 for start, end in zip(indices, ends)) * X.shape[1 - axis % 2]
    assert jl.count_flops(f, X) == jl.Cost(adds, X.size)  # NumPy's adds, after sin's transcendentals


@pytest.mark.parametrize("mode", MODES)
def test_add_reduceat_takes_every_form_of_indices_numpy_takes(mode):
    x = np.linspace(0.1, 1.0, 9)
    for f in (lambda v: np.add.reduceat(v, indices=[0, 3]), lambda v: np.add.reduceat(v, [0.0, 3.0]),
              lambda v: np.add.reduceat(v, (1, 2, 8)), lambda v: np.add.reduceat(v, [])):
        np.testing.assert_allclose(traced_value(f, x), f(x), rtol=1e-15)  # NumPy adds after the first pairwise
        assert_fd_close(run(f, mode, x), central_differences(f, x))


def test_add_reduceat_refuses_what_numpy_refuses():
    with pytest.raises(TypeError, match="cannot reduceat on a scalar"):
        jl.jacobian(lambda x: np.add.reduceat(x[0, 0], [0]), X)
    with pytest.raises(IndexError, match=r"index 5 out-of-bounds in add.reduceat \[0, 3\)"):
        jl.jacobian(lambda x: np.add.reduceat(x[0], [0, 5]), X)
    with pytest.raises(NotImplementedError, match="an integer result has no derivative"):
        jl.jacobian(lambda x: np.add.reduceat(x[0], [0, 2], dtype=np.int64), X)


# --- arguments that would change the value if dropped ------------------------------------------
DROPPED = [
    ("multiply.reduce", "dtype", lambda x: np.multiply.reduce(x, dtype=np.float16)),
    ("add.accumulate", "dtype", lambda x: np.add.accumulate(x, axis=1, dtype=np.int64)),
    ("matmul", "axes", lambda x: np.matmul(x, x.T, axes=[(0, 1), (0, 1), (0, 1)])),
    ("sum", "initial", lambda x: np.sum(x, initial=x[0, 0])),
    ("max", "initial", lambda x: np.max(x, axis=0, initial=np.array([1.0, 2.0, 3.0]))),
    ("mean", "where", lambda x: np.mean(x, where=x)),
    ("trace", "dtype", lambda x: np.trace(x, dtype=int)),
    ("sum", "dtype=int64", lambda x: np.sum(x, dtype=np.int64)),
    ("cumprod", "dtype=float16", lambda x: np.cumprod(x, dtype=np.float16)),
    ("mean", "dtype=float16", lambda x: np.mean(x, axis=0, dtype=np.float16)),
    ("add", "where", lambda x: np.add(x, 1.0, where=X > 0)),
    ("ravel", r"order='K' of a broadcast array \(a stride of 0\)",
     lambda x: np.ravel(np.broadcast_to(x[:, :1], (2, 3)), order="K")),
    ("ndarray.flatten", r"order='K' of a broadcast array", lambda x: np.broadcast_to(x[:1], (2, 3)).T.flatten("K")),
    ("clip", "where", lambda x: np.clip(x, 0.0, 1.0, where=X > 0)),
    ("var", "where", lambda x: np.var(x, where=x)),
    ("concatenate", "dtype=int64", lambda x: np.concatenate([x, x], dtype=np.int64)),
    ("sort", "order", lambda x: np.sort(x, order="a")),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, arg, f", DROPPED, ids=[f"{n}-{a}" for n, a, _ in DROPPED])
def test_arguments_that_change_the_value_are_refused(name, arg, f, mode):
    with pytest.raises(NotImplementedError, match=rf"numpy\.{re.escape(name)}.*{arg}"):
        run(f, mode)


def test_scipy_special_ufuncs_are_named_as_scipys_in_refusals():
    import scipy.special as sc

    with pytest.raises(NotImplementedError, match=r"^scipy\.special\.expit: the argument casting .*leave it at NumPy's"):
        run(lambda x: sc.expit(x, casting="unsafe"), "reverse")
    with pytest.raises(TypeError, match=r"^scipy\.special\.erf\(\.\.\., out=\.\.\.\).*y = scipy\.special\.erf"):
        run(lambda x: sc.erf(x, out=np.empty_like(X)), "forward")


# --- NumPy signatures and semantics honoured (checked against differences) ---------------------------
HONOURED = [
    ("np.reshape in order A of an F-ordered view", lambda x: np.reshape(x.T, 6, order="A")),
    ("ravel in order K of an F-ordered view", lambda x: x.T.ravel("K") * x.ravel("A")),
    ("flatten in orders K and A of an F-ordered view", lambda x: x.T.flatten("K") * x.T.flatten("A")),
    ("ravel and flatten in order K of strided views", lambda x: np.concatenate([
        x[:, ::2].T.ravel("K") * x[::-1, ::-2].flatten("K"), np.ravel(x.T[::-1, ::2], order="K")])),
    ("np.max positional keepdims", lambda x: np.max(x, 0, None, True)),
    ("np.min positional axis", lambda x: np.amin(x, 1)),
    ("np.sum positional keepdims", lambda x: np.sum(x, 1, None, None, True)),
    ("np.add.reduce positional axis", lambda x: np.add.reduce(x, 1)),
    ("np.take mode=clip", lambda x: np.take(x, [-1, 7, 2], mode="clip")),
    ("ufunc keywords at NumPy's defaults", lambda x: np.add(np.sin(x, where=True, subok=True), 1.0, casting="same_kind",
                                                          order="F")),
    ("np.take mode=wrap", lambda x: np.take(x, [-1, 7, -8], axis=None, mode="wrap")),
    ("np.zeros_like shape", lambda x: x[0, 0] + np.zeros_like(x, shape=(2, 2))),
    ("np.full_like", lambda x: x * np.full_like(x, 3.0)),
    ("np.ones_like dtype", lambda x: x + np.ones_like(x, dtype=np.float32)),
    ("np.result_type", lambda x: x * np.ones(3, dtype=np.result_type(x, np.float32))),
    ("np.var correction", lambda x: np.var(x, axis=0, correction=1) + np.std(x, correction=1)),
    ("column-major reshape, ravel and flatten", lambda x: np.reshape(x, (3, 2), order="F").ravel()
     + x.ravel("F") * x.flatten(order="F") + x.reshape(6, order="F")),
    ("x.view()", lambda x: x.view() * 2.0),
    ("np.full_like with a traced fill value", lambda x: np.full_like(x, x[0, 1]) + np.full_like(x, x[1], shape=(2, 2, 3))
     + np.full_like(x, x[:, :1], dtype=np.float64)),
]


@pytest.mark.parametrize("mode", MODES)
def test_a_dtype_argument_converts_as_in_numpy(mode):
    # float32 results: compared with NumPy's values, and with the identity as derivative
    # (finite differences cannot resolve a float32 rounding)
    identity = np.eye(6).reshape(2, 3, 2, 3)
    for join in (np.concatenate, np.stack):
        f = lambda x: join([x, x], dtype=np.float32)  # noqa: E731
        y, _ = jl.jvp(f, X, np.zeros_like(X))
        assert y.dtype == f(X).dtype == np.float32
        np.testing.assert_array_equal(y, f(X))
        np.testing.assert_array_equal(run(f, mode), join([identity, identity]))


@pytest.mark.parametrize("f, slope", [
    (lambda x: np.exp(x, dtype=np.float32), lambda x: np.exp(x.astype(np.float32))),  # float32 throughout
    (lambda x: np.add(x.astype(np.float32), 1, dtype=np.float64), lambda x: np.ones_like(x)),
    (lambda x: np.divmod(x, 2.0, dtype=np.float32)[1], lambda x: np.ones_like(x)),
], ids=["exp to float32", "add to float64", "divmod"])
def test_a_ufuncs_dtype_runs_its_loop_in_that_dtype(f, slope):
    x = np.array([1.0, 2.5, -0.7])
    y = jl.jvp(f, x, np.ones(3))[0]
    assert y.dtype == f(x).dtype
    np.testing.assert_array_equal(y, f(x))
    for mode in MODES:
        np.testing.assert_array_equal(np.diag(jl.jacobian(f, x, mode=mode)), slope(x))
    with pytest.raises(NotImplementedError, match="dtype=float64 .a non-float result has no derivative"):
        jl.jacobian(lambda v: np.less(v, 1.5, dtype=np.float64) * v, x)  # NumPy has no such loop either


@pytest.mark.parametrize("f", [
    lambda x: np.copysign(x.astype(np.float32), np.float64(-1.0)),  # a NumPy float64 scalar: float64
    lambda x: np.copysign(1.5, x.astype(np.float32)),  # a Python number is weak: float32
    lambda x: np.heaviside(1.5, x.astype(np.float32)) + np.heaviside(x.astype(np.float32), 0.5),
    lambda x: np.copysign(np.array([3, 1, 2]), x) + np.copysign(np.array([True, False, True]), x),  # float64
], ids=["float64 scalar", "weak number", "heaviside", "ints and bools"])
def test_copysign_and_heaviside_promote_as_numpys_ufuncs(f):
    x = np.array([0.5, -1.5, 2.5])
    y = jl.jvp(f, x, np.ones(3))[0]
    assert y.dtype == f(x).dtype
    np.testing.assert_array_equal(y, f(x))


MASK = np.array([[True, False, True], [False, True, True]])
MASKED = [
    ("sum, where", lambda x: np.sum(x, where=MASK)),
    ("sum, where a row, initial", lambda x: np.sum(x, axis=1, where=[True, False, True], initial=2.5)),
    ("prod, where, keepdims", lambda x: np.prod(x, axis=0, where=MASK, keepdims=True)),
    ("prod, initial", lambda x: np.prod(x, initial=-2.0)),
    ("max, where, initial", lambda x: np.max(x, axis=1, where=MASK, initial=-1.0)),
    ("min, where on values, initial", lambda x: np.min(x, where=x > 0, initial=5.0)),
    ("amax, initial above some", lambda x: np.amax(x, axis=0, initial=0.7)),
    ("max of nothing, initial", lambda x: np.max(x[:, :0], axis=1, initial=0.0) + x[:, 0]),
    ("mean, where", lambda x: np.mean(x, axis=1, where=MASK)),
    ("mean, where, keepdims", lambda x: np.mean(x, axis=1, where=[True, True, False], keepdims=True)),
    ("add.reduce, initial", lambda x: np.add.reduce(x, initial=5.0)),
    ("maximum.reduce, where", lambda x: np.maximum.reduce(x, axis=1, where=[True, False, True], initial=0.0)),
    ("var, where", lambda x: np.var(x, axis=1, where=[[True, True, False], [True, True, True]])),
    ("std, where, ddof", lambda x: np.std(x, where=MASK | np.eye(2, 3, dtype=bool), ddof=1)),
    ("std, mean given", lambda x: np.std(x, axis=1, keepdims=True, mean=np.zeros((2, 1)))),
    ("var, traced mean", lambda x: np.var(x, axis=0, mean=np.mean(x, axis=0, keepdims=True) * 0.5)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, f", MASKED, ids=[n for n, _ in MASKED])
def test_where_and_initial_of_reductions_are_numpys(name, f, mode):
    y, _ = jl.jvp(f, X, np.zeros_like(X))
    assert np.shape(y) == np.shape(f(X)) and y.dtype == f(X).dtype
    np.testing.assert_allclose(y, f(X), rtol=1e-15)  # up to rounding: NumPy groups masked sums otherwise
    J = run(f, mode)
    assert_fd_close(J, central_differences(f, X), name)


def test_entries_where_leaves_out_and_an_initial_that_wins_get_no_derivative():
    J = jl.jacobian(lambda x: np.sum(x, where=MASK), X)
    np.testing.assert_array_equal(J, MASK.astype(float))
    # max(0.7, column) picks the initial in the columns whose entries are all below it
    J = jl.jacobian(lambda x: np.max(x, axis=0, initial=0.7), X)
    below = X.max(axis=0) < 0.7
    assert np.all(J[below] == 0) and np.all(J[~below].sum(axis=(1, 2)) == 1)
    # initial joins as jax.numpy joins it, max(initial, result): a tie gives the element 1/2
    J = jl.jacobian(lambda x: np.max(x, initial=X.max()), X)
    assert J[np.unravel_index(np.argmax(X), X.shape)] == 0.5 and J.sum() == 0.5


def test_a_mean_over_nothing_is_nan_with_numpys_warning():
    f = lambda x: np.mean(x, axis=0, where=[True, True, False])  # noqa: E731
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        y, _ = jl.jvp(f, X, np.zeros_like(X))
    np.testing.assert_array_equal(np.isnan(y), [False, False, True])


def test_where_and_initial_count_what_runs():
    # where: one select per element, then the reduction; initial: one more operation per output
    assert jl.count_flops(lambda x: np.sum(x, where=MASK), X) == jl.Cost(6 + 5, 0)
    assert jl.count_flops(lambda x: np.max(x, axis=1, initial=0.0), X) == jl.Cost(2 * 2 + 2, 0)
    # mean with where: the select, the sums of three into one per row, the division by the count
    assert jl.count_flops(lambda x: np.mean(x, axis=1, where=MASK), X) == jl.Cost(6 + 2 * 2 + 2, 0)
    # var with where: that mean; the deviations, their squares and the select (6 each); their sums and
    # the division by the count
    assert jl.count_flops(lambda x: np.var(x, axis=1, where=MASK), X) == jl.Cost(12 + 3 * 6 + 2 * 2 + 2, 0)


ACCUMULATING = [
    ("sum", lambda x, dtype: np.sum(x, axis=1, dtype=dtype)),
    ("prod", lambda x, dtype: np.prod(x[:, :4] + 1.0, dtype=dtype)),
    ("mean", lambda x, dtype: np.mean(x, axis=0, dtype=dtype)),
    ("cumsum", lambda x, dtype: np.cumsum(x, dtype=dtype)),
    ("cumprod", lambda x, dtype: np.cumprod(x[:4] / 2.0 + 1.0, axis=0, dtype=dtype)),
]
ACCUMULATING += [("multiply.reduce", lambda x, dtype: np.multiply.reduce(x[:3, :4] + 1.0, axis=1, dtype=dtype)),
                 ("add.accumulate", lambda x, dtype: np.add.accumulate(x, axis=1, dtype=dtype))]
ACCUMULATING.append(("trace", lambda x, dtype: np.trace(x, dtype=dtype)))
if hasattr(np, "cumulative_sum"):
    ACCUMULATING.append(("cumulative_sum", lambda x, dtype: np.cumulative_sum(x, axis=1, dtype=dtype)))
if hasattr(np.linalg, "trace"):
    ACCUMULATING.append(("linalg.trace", lambda x, dtype: np.linalg.trace(x, offset=1, dtype=dtype)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, f", ACCUMULATING, ids=[n for n, _ in ACCUMULATING])
def test_a_reduction_accumulates_in_the_dtype_asked_for(name, f, dtype, mode):
    big = np.random.default_rng(5).normal(size=(37, 53))  # long enough for pairwise summation to differ
    for x in (big, big.astype(np.float32)):
        y, _ = jl.jvp(lambda v: f(v, dtype), x, np.zeros_like(x))
        assert y.dtype == f(x, dtype).dtype == dtype
        np.testing.assert_array_equal(y, f(x, dtype))  # NumPy's value, bit for bit
    # the conversion carries the derivative: equal to the float64 one, rounded
    small = big[:5, :6]
    in_float64 = jl.jacobian(lambda v: f(v, np.float64), small, mode=mode)
    assert_fd_close(in_float64, central_differences(lambda v: f(v, np.float64), small), name)
    np.testing.assert_allclose(jl.jacobian(lambda v: f(v, dtype), small, mode=mode), in_float64, rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_einsum_computes_in_the_dtype_asked_for(mode):
    """As NumPy: the operands cast to `dtype` under `casting` (its sums may round in another order)."""
    x = np.random.default_rng(6).normal(size=(4, 5))
    def f(v):
        return np.einsum("ij,ij->i", v, v, dtype=np.float32, casting="same_kind")

    y, _ = jl.jvp(f, x, np.zeros_like(x))
    assert y.dtype == f(x).dtype == np.float32
    np.testing.assert_allclose(y, f(x), rtol=1e-6)
    np.testing.assert_allclose(jl.jacobian(f, x, mode=mode), jl.jacobian(lambda v: np.einsum("ij,ij->i", v, v), x),
                               rtol=1e-6)
    assert jl.jacobian(lambda v: np.einsum("ij->", v, dtype=np.float64), x.astype(np.float32), mode=mode).shape == x.shape
    for casting in ("safe", "no"):  # float64 -> float32 is refused, with NumPy's message
        with pytest.raises(TypeError) as numpy_error:
            np.einsum("ij->", x, dtype=np.float32, casting=casting)
        with pytest.raises(TypeError, match=re.escape(str(numpy_error.value))):
            jl.jacobian(lambda v: np.einsum("ij->", v, dtype=np.float32, casting=casting), x, mode=mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [pytest.param(f, id=n) for n, f in HONOURED])
def test_numpy_signatures_are_honoured(f, mode):
    y, _ = jl.jvp(f, X, np.zeros_like(X))
    np.testing.assert_array_equal(y, f(X))  # same value as plain NumPy
    assert_fd_close(run(f, mode), central_differences(f, X))


@pytest.mark.parametrize("mode", MODES)
def test_take_out_of_bounds_still_raises(mode):
    with pytest.raises(IndexError, match="out of bounds"):
        run(lambda x: np.take(x, [6]), mode)


# --- inputs ------------------------------------------------------------------------------------
# Axes NumPy refuses are refused too, with NumPy's exception type, never quietly repaired
# (a duplicate dropped, a tuple cut to its first axis, an out-of-range axis wrapped around).
BAD_AXES = [
    ("duplicate axes in sum", lambda x: np.sum(x, axis=(0, 0))),
    ("duplicate axes in quantile", lambda x: np.quantile(x, 0.5, axis=(1, -1))),
    ("a tuple where one axis is expected", lambda x: np.cumsum(x, axis=(0, 1))),
    ("axis=None for stack", lambda x: np.stack([x, x], axis=None)),
    ("axis=None for diff", lambda x: np.diff(x, axis=None)),
    ("axis=None for swapaxes", lambda x: np.swapaxes(x, None, 0)),
    ("moveaxis out of range", lambda x: np.moveaxis(x, 2, 0)),
    ("moveaxis from -3", lambda x: np.moveaxis(x, -3, 0)),
    ("transpose out of range", lambda x: np.transpose(x, (1, -3))),
    ("transpose repeating an axis", lambda x: np.transpose(x, (1, 1))),
    ("norm over no axis", lambda x: np.linalg.norm(x, 1, axis=())),
    ("norm of a 3-d array with ord", lambda x: np.linalg.norm(x[None], 1)),
    ("a float axis", lambda x: np.sum(x, axis=1.0)),
    ("a bool axis", lambda x: np.mean(x, axis=True)),
    ("accumulate over every axis", lambda x: np.add.accumulate(x, axis=None)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, f", BAD_AXES, ids=[n for n, _ in BAD_AXES])
def test_axes_numpy_refuses_are_refused(name, f, mode):
    with pytest.raises(Exception) as numpy_error:
        f(X)
    # the same kind: NumPy's class or one of its bases short of Exception (AxisError is a ValueError)
    kinds = tuple(c for c in type(numpy_error.value).__mro__ if issubclass(c, Exception) and c is not Exception)
    with pytest.raises(kinds):
        run(f, mode)


BAD_INPUTS = [
    ("complex", np.array([1.0 + 2.0j, 0.5]), "complex"),
    ("bool", np.array([True, False]), "bool"),
    ("object", np.array([1.0, 2.0], dtype=object), "object"),
    ("string", "1.0", "str"),
    ("string array", np.array(["1.0"]), "<U3"),
    ("masked array", np.ma.array([1.0, 2.0], mask=[False, True]), "masked array.*x.filled"),
    ("np.matrix", np.array([[1.0, 2.0]]).view(np.matrix), "np.matrix, whose \\* is a matrix product"),
]


@pytest.mark.parametrize("mode", MODES + ["auto"])
@pytest.mark.parametrize("x, word", [pytest.param(x, w, id=n) for n, x, w in BAD_INPUTS])
def test_bad_input_is_refused(x, word, mode):
    with pytest.raises(TypeError, match=word):
        jl.jacobian(lambda x: x * 2.0, x, mode=mode)


CONVERSIONS = {  # (f, what the refusal names, the way out it offers)
    "'%.4f' % loss": (lambda x: ("loss=%.4f" % np.sum(x), x)[1], r'"%\.4f" % x', r'format it without a spec'),
    "np.arange to a traced bound": (lambda x: np.arange(0.0, x[0], 0.25).sum() * x, r"np\.arange\(0, x\[0\]\)",
                                    r"compare instead"),
    "int() of a traced count": (lambda x: np.linspace(0.0, 1.0, int(x[0] * 4)).sum() * x, r"^int\(\)",
                                r"round first: int\(np\.floor\(x\[0\] \* 4\)\) converts"),
}


@pytest.mark.parametrize("f, names, offers", CONVERSIONS.values(), ids=list(CONVERSIONS))
def test_conversions_to_python_numbers_name_themselves_and_a_way_out(f, names, offers):
    with pytest.raises(jl.TracerConversionError, match=names) as info:
        jl.jacobian(f, np.array([1.5, 2.0]))
    assert re.search(offers, str(info.value))
    np.testing.assert_allclose(jl.jacobian(lambda x: np.linspace(0.0, 1.0, int(np.floor(x[0] * 4))).sum() * x,
                                           np.array([1.5, 2.0])), np.diag([3.0, 3.0]))


@pytest.mark.parametrize("call", [
    lambda x: jl.jvp(np.sin, x, np.ones(2)), lambda x: jl.vjp(np.sin, x),
    lambda x: jl.grad(np.sum)(x), lambda x: jl.count_flops(np.sin, x),
], ids=["jvp", "vjp", "grad", "count_flops"])
def test_complex_input_refused_by_every_entry_point(call):
    with pytest.raises(TypeError, match="complex"):
        call(np.array([1.0 + 1.0j, 2.0]))


@pytest.mark.parametrize("call", [
    lambda f: jl.jacobian(f, X), lambda f: jl.jacobian(f), lambda f: jl.jacfwd(f), lambda f: jl.jacrev(f),
    lambda f: jl.grad(f), lambda f: jl.jvp(f, X, X), lambda f: jl.vjp(f, X), lambda f: jl.count_flops(f, X),
    lambda f: jl.predict(f, X), lambda f: jl.measure(f, X), lambda f: jl.compare(f, X),
], ids=["jacobian", "jacobian(f)", "jacfwd", "jacrev", "grad", "jvp", "vjp", "count_flops", "predict", "measure",
        "compare"])
def test_an_f_that_is_not_callable_is_refused_at_once(call):
    with pytest.raises(TypeError, match="f must be a function of x, got ndarray; the function comes first"):
        call(X)  # the arguments swapped: x where f goes


COMPLEX_INSIDE = [
    ("abs of a complex product", lambda x: np.abs(x * 1j)),  # real output, wrong derivative if let through
    ("complex constant array", lambda x: x * np.array([1.0, 1j, 1.0])),
    ("sum of exp(1j x)", lambda x: np.sum(np.exp(1j * x))),
    ("real part", lambda x: np.real(x + 2j)),
]


@pytest.mark.parametrize("call", [
    lambda f: run(f, "forward"), lambda f: run(f, "reverse"), lambda f: jl.jacobian(f, X),
    lambda f: jl.jit(jl.jacobian(f))(X), lambda f: jl.count_flops(f, X),
], ids=["forward", "reverse", "auto", "jit", "count_flops"])
@pytest.mark.parametrize("f", [pytest.param(f, id=n) for n, f in COMPLEX_INSIDE])
def test_complex_values_computed_inside_f_are_refused(f, call):
    with pytest.raises(TypeError, match="gave complex values.*real and imaginary parts"):
        call(f)


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
@pytest.mark.parametrize("dtype", [complex, np.complex64])
def test_a_cast_to_complex_is_refused_as_complex_values_are(dtype, mode):
    """It was refused as a conversion that "would drop its derivative", with no word about complex values."""
    with pytest.raises(TypeError, match=r"\.astype\(complex(128|64)\) of a traced array: jacobian_lab "
                                        r"differentiates real functions only.*real and imaginary parts"):
        run(lambda x: np.abs(x.astype(dtype)), mode)
    # an array without a derivative converts, as it did
    np.testing.assert_array_equal(run(lambda x: x + np.abs(np.zeros_like(x).astype(dtype)), mode), np.eye(X.size)
                                  .reshape(X.shape + X.shape))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("f", [lambda x: (x & 1) * x, lambda x: x | 2, lambda x: 3 ^ x, lambda x: ~x,
                               lambda x: x << 1, lambda x: 1 >> x], ids=["&", "|", "^ (reflected)", "~", "<<", ">>"])
def test_bitwise_operators_are_refused_naming_the_floats_a_traced_array_holds(f, mode):
    """Python's own error named the tracer's class: "unsupported operand type(s) for &: 'Node' and 'int'"."""
    with pytest.raises(NotImplementedError, match=r"numpy\.\w+ \(an operator &, \|, \^, ~, << or >>\) computes on "
                                                  r"the bits of integers, and a traced array holds floats"):
        run(f, mode, np.array([3.0, 5.0]))


@pytest.mark.parametrize("index", [0, slice(0, 2), np.array([True, False, True])], ids=["item", "slice", "mask"])
def test_writing_a_python_complex_into_a_traced_array_raises_as_numpy_does(index):
    """NumPy converts a Python complex written into floats with float(), which raises; an array of complex
    values only warns (ComplexWarning), there as here."""
    def f(x):
        z = x * 1.0
        z[index] = 1j
        return z

    with pytest.raises(TypeError, match="not 'complex'") as numpys:
        f(np.zeros(3))
    for mode in [*MODES, "jit"]:
        with pytest.raises(TypeError, match=re.escape(str(numpys.value))):
            run(f, mode, np.zeros(3))


def test_storing_a_traced_value_into_a_plain_array_names_the_assignment():
    def f(x):
        y = np.zeros(3)
        y[0] = x[0, 0]
        return y

    # NumPy takes the traced scalar for a sequence and raises its own error from ours; the
    # engines turn it back into a conversion error that names the fix
    for mode in MODES:
        with pytest.raises(jl.TracerConversionError, match=re.escape("y[i] = x[j]")) as info:
            run(f, mode)
        assert "np.stack" in str(info.value)
        numpys = info.value.__cause__
        assert type(numpys) is ValueError and isinstance(numpys.__cause__, jl.TracerConversionError)


def test_storing_a_traced_value_through_flat_names_the_assignment():
    def f(x):
        y = np.zeros(3)
        y.flat[0] = x[0, 0]  # NumPy's flat setter replaces our error by one without a cause
        return y

    for call in (lambda f: run(f, "forward"), lambda f: run(f, "reverse"), lambda f: jl.jit(jl.jacobian(f))(X),
                 lambda f: jl.count_flops(f, X)):
        with pytest.raises(jl.TracerConversionError, match=re.escape("y.flat[i] = x[j]")):
            call(f)

    def unconvertible(x):
        y = np.zeros(3)
        y.flat[0] = "a"  # f's own mistake, with no traced value: NumPy's error as it is
        return y + x[0, 0]

    with pytest.raises(ValueError, match=r"^Error setting single item of array\.$"):
        run(unconvertible, "reverse")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f, message", [
    (lambda x: np.frombuffer(x) * x, "has no memory for memoryview, np.frombuffer or bytes"),
    (lambda x: x * memoryview(x).nbytes, "has no memory for memoryview"),
    (lambda x: x * len(bytes(x[0, 0])), "has no memory"),  # not a length, as bytes(3) takes one
    (lambda x: x * hash(x[0, 0]), "unhashable, as an ndarray is.*functools.lru_cache"),
], ids=["frombuffer", "memoryview", "bytes", "hash"])
def test_reading_a_traced_arrays_bytes_or_hash_says_why_it_cannot(f, message, mode):
    with pytest.raises(TypeError, match=message):
        run(f, mode)


def test_the_bytes_of_an_array_without_a_derivative_are_numpys():
    f = lambda x: x * len(bytes(np.zeros_like(x)))  # noqa: E731
    np.testing.assert_array_equal(run(f, "reverse"), 8 * X.size * np.eye(X.size).reshape(X.shape + X.shape))


CONVERTED_BY_SCIPY = {  # scipy's compiled code converts what the function f passes it returns
    "scipy.integrate.quad": lambda p: np.array([integrate.quad(lambda s: np.exp(-p[0] * s), 0.0, 1.0)[0]]),
    # brentq's C code loses the error and fails another way (a SystemError, or "different signs")
    "scipy.optimize.brentq": lambda p: np.array([optimize.brentq(lambda z: z - p[0], -5.0, 5.0)]),
    # fsolve's raises its own minpack error, "not a proper array of floats"
    "scipy.optimize.fsolve": lambda p: optimize.fsolve(lambda z: z - p, np.zeros(1)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CONVERTED_BY_SCIPY)
def test_a_scipy_routine_converting_what_its_function_returns_is_named(name, mode):
    with pytest.raises(jl.TracerConversionError, match=re.escape(name) + " conver"):
        run(CONVERTED_BY_SCIPY[name], mode, np.array([0.8]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("permutation", [np.random.permutation, np.random.default_rng(0).permutation],
                         ids=["legacy", "generator"])
def test_np_random_permutation_of_a_traced_x_names_the_indexing_that_works(permutation, mode):
    with pytest.raises(ValueError, match=re.escape("x[rng.permutation(len(x))]")):
        run(lambda x: permutation(x.ravel()), mode)


@pytest.mark.parametrize("mode", MODES)
def test_an_error_from_a_scipy_routine_given_a_traced_array_carries_a_note_naming_it(mode):
    # scipy.sparse.diags takes a traced vector for a list of diagonals and says their count is wrong
    with pytest.raises(ValueError, match="diagonals") as caught:
        run(lambda x: sparse.diags(x) @ x, mode, np.ones(3))
    assert any("scipy's diags was given a traced array" in note for note in caught.value.__notes__)
    with pytest.raises(ValueError, match="diagonals") as caught:  # a Hessian's two evaluations meet it: one note
        jl.hessian(lambda x: np.sum(sparse.diags(x) @ x), np.ones(3), mode=mode)
    assert sum("was given a traced array" in note for note in caught.value.__notes__) == 1


@pytest.mark.parametrize("mode", MODES)
def test_an_error_of_f_s_own_function_that_a_scipy_routine_calls_carries_no_note(mode):
    def f(v):  # fixed_quad runs on traced limits; the integrand's own check fails
        def integrand(t):
            if np.any(t > 2.0):
                raise ValueError("valid for t <= 2 only")
            return np.sin(t)
        return np.atleast_1d(integrate.fixed_quad(integrand, 0.0, v[0], n=8)[0])

    with pytest.raises(ValueError, match="valid for t <= 2 only") as caught:
        run(f, mode, np.array([3.0]))
    assert not getattr(caught.value, "__notes__", [])


def test_an_error_after_a_refused_conversion_elsewhere_is_f_s_own():
    def f(x):
        try:
            float(x[0])  # refused, and the refusal caught (as logging catches a formatting error)
        except TypeError:
            pass
        return np.linalg.inv(np.zeros((2, 2))) @ x

    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        run(f, "reverse", np.ones(2))


@pytest.mark.parametrize("mode", MODES)
def test_pickling_a_traced_array_is_refused_naming_the_copies_that_work(mode):
    with pytest.raises(TypeError, match=r"cannot be pickled.*copy.deepcopy"):
        run(lambda x: pickle.loads(pickle.dumps(x)) * 2.0, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("itemsize", [8, 4])
def test_as_strided_is_refused_naming_sliding_window_view(itemsize, mode):
    # Its byte strides would walk the pointers of an object array of traced elements
    windows = lambda x: np.lib.stride_tricks.as_strided(x, shape=(4, 3), strides=(itemsize, itemsize))  # noqa: E731
    with pytest.raises(jl.TracerConversionError, match="as_strided.*sliding_window_view"):
        run(lambda x: windows(x.ravel().astype(f"f{itemsize}")).sum(1), mode)


@pytest.mark.parametrize("mode", MODES)
def test_as_strided_with_the_arrays_own_strides_names_sliding_window_view(mode):
    def windows(x):
        s0, s1 = x.strides  # the usual way to write it: read before as_strided is reached
        return np.lib.stride_tricks.as_strided(x, shape=(2, 3, 3), strides=(s0, s0, s1)).sum(1)

    with pytest.raises(AttributeError, match=r"ndarray\.strides describes an array's memory.*sliding_window_view"):
        run(windows, mode, np.arange(12.0).reshape(4, 3))


class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f, error, message", [
    (lambda z: z * z.flags.c_contiguous, AttributeError,
     r"^ndarray\.flags reads or writes an array's memory.*np\.ndim"),
    (lambda z: z if z.base is None else 2 * z, AttributeError, r"^ndarray\.base reads or writes an array's memory"),
    (lambda z: z * len(z.tobytes()), AttributeError, r"^ndarray\.tobytes reads or writes an array's memory"),
    (lambda z: z.view(_Sub), TypeError, r"^\.view\(_Sub\) on a traced array: a traced array is no ndarray subclass"),
    (lambda z: 1j, TypeError, r"^f returned a complex number; jacobian_lab differentiates real functions only"),
], ids=["flags", "base", "tobytes", "view-subclass", "complex"])
def test_reads_of_memory_and_complex_results_are_named_for_what_they_are(mode, f, error, message):
    """They were refused as operations without a derivative rule (pointing to 'Adding a primitive'), as a
    reinterpretation of the bytes, and as an object to give as a dict of its fields."""
    with pytest.raises(error, match=message):
        run(f, mode, np.array([0.3, -0.7, 1.2]))


@pytest.mark.parametrize("mode", MODES)
def test_a_view_as_the_same_type_and_dtype_is_the_array(mode):
    x = np.array([0.3, -0.7, 1.2])
    for f in (lambda z: z.view(np.ndarray) * 2.0, lambda z: z.view(np.float64) * 2.0):
        np.testing.assert_array_equal(run(f, mode, x), 2.0 * np.eye(3))


def _as_jax_refuses(x):
    """What jax.numpy raises for a traced array (its words; JAX is no dependency of these tests)."""
    raise TypeError(f"Argument '{x!r}' of type {type(x)} is not a valid JAX type.")


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jax_numpy_on_a_traced_array_is_named_with_the_fix(mode):
    with pytest.raises(TypeError, match=r"is not a valid JAX type\. f calls jax\.numpy.*np\.sin for jnp\.sin") as info:
        run(_as_jax_refuses, mode)
    assert "not a valid JAX type" in str(info.value.__cause__)


@pytest.mark.parametrize("write", [lambda y, v: y.__setitem__((), v[1]), lambda y, v: np.put(y, [0, 0], v),
                                   lambda y, v: np.copyto(y, v[1])], ids=["setitem", "np.put", "np.copyto"])
@pytest.mark.parametrize("mode", MODES)
def test_a_write_into_a_traced_0d_value_names_it_a_numpy_scalar(write, mode):
    def f(x):
        y = x * 1.0  # NumPy's product of a 0-d array is a scalar, which no write changes
        write(y, x * np.array([2.0, 3.0]))
        return y

    with pytest.raises(TypeError, match=r"a traced 0-d value is a NumPy scalar, immutable: bind the name anew"):
        run(f, mode, np.array(3.0))


@pytest.mark.parametrize("write", [lambda y, v: y.__setitem__((), v[1]), lambda y, v: np.put(y, [0, 0], v),
                                   lambda y, v: np.copyto(y, v[1]), lambda y, v: y.__iadd__(v[1]),
                                   lambda y, v: np.multiply(v[0], v[1], out=y)],
                         ids=["setitem", "np.put", "np.copyto", "+=", "out="])
@pytest.mark.parametrize("make", [lambda x: np.zeros_like(x), lambda x: np.zeros_like(x, shape=()),
                                  lambda x: np.copy(x[()] * 0.0), lambda x: np.zeros_like(x).copy()],
                         ids=["zeros_like", "shape=()", "np.copy of a scalar", "copy of an array"])
@pytest.mark.parametrize("mode", MODES + ["jit"])
def test_a_write_into_a_traced_0d_array_reaches_every_name_bound_to_it(write, make, mode):
    """NumPy's 0-d arrays (np.zeros_like(x), np.copy(s)) are mutable, unlike its scalars: a write
    changes the array that another name holds too."""
    def f(x):
        y = make(x)
        held = y
        write(y, x * np.array([2.0, 3.0]))
        return held * 1.0

    x = np.array(0.7)
    np.testing.assert_array_equal(traced_value(f, x), f(x))
    assert_fd_close(run(f, mode, x), central_differences(f, x))


@pytest.mark.parametrize("mode", MODES)
def test_np_nditer_of_a_traced_array_names_the_loops_that_work(mode):
    def summed(x, loop):
        s = 0.0
        for v in loop(x):
            s = s + v
        return s

    with pytest.raises(TypeError, match=r"NPY_ITER_REFS_OK.*np\.nditer reads a traced array.*for v in x\.flat"):
        run(lambda x: summed(x, np.nditer), mode)
    f = lambda x: summed(x, lambda x: x.flat)  # noqa: E731 - the loop the message names
    assert_fd_close(run(f, mode), central_differences(f, X))


def test_other_value_errors_of_f_pass_through_unchanged():
    def f(x):
        raise ValueError("setting an array element with a sequence. The requested array has an inhomogeneous shape")

    with pytest.raises(ValueError, match="inhomogeneous") as info:
        run(f, "reverse")
    assert type(info.value) is ValueError


# --- outputs -----------------------------------------------------------------------------------
BAD_OUTPUTS = [
    ("None", lambda x: None, "None"),
    ("string", lambda x: "result", "str"),
    ("integer array", lambda x: np.arange(3), "int"),
    ("boolean array", lambda x: x > 0, "bool"),
    ("generator", lambda x: (v for v in x), r"a generator, not an array; .* \(np\.stack\(list\(\.\.\.\)\) of its "
                                            r"values\)$"),
    ("set", lambda x: {1.0, 2.0}, r"a set, not an array; .* \(a set has no order .*as a sorted list\)$"),
    ("dict values", lambda x: {"a": x}.values(), r"\(np\.stack\(list\(\.\.\.\)\) of its values\)$"),
    ("function", lambda x: np.sin, r"\(it is a function, a class or a module itself: return what it computes\)$"),
    ("object", lambda x: object(), r"an object, not an array; it must return a float array, or a tuple, list or "
                                   r"dict of them$"),  # neither fields nor values: no hint
    ("masked array", lambda x: np.ma.masked_less(x, 1.0), r"masked array \(np.ma\).*np.where"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f, word", [pytest.param(f, w, id=n) for n, f, w in BAD_OUTPUTS])
def test_bad_output_is_refused_with_a_message(f, word, mode):
    with pytest.raises(TypeError, match=word) as info:
        run(f, mode)
    assert "f returned" in str(info.value)


@pytest.mark.parametrize("f, word", [pytest.param(f, w, id=n) for n, f, w in BAD_OUTPUTS])
def test_bad_output_refused_by_jvp_vjp_grad(f, word):
    for call in (lambda: jl.jvp(f, X, X), lambda: jl.vjp(f, X), lambda: jl.grad(f)(X)):
        with pytest.raises(TypeError, match=word):
            call()


@pytest.mark.parametrize("name", ["forward", "reverse"])
def test_engines_refuse_a_list_output(name):
    engine = jl.engines.get(name)
    f = lambda x: [x, x]
    with pytest.raises(TypeError, match="list"):
        engine.jvp(f, X, X[None]) if name == "forward" else engine.vjp(f, X)


def test_tracers_do_not_leak_out_of_results():
    for mode in MODES:
        J = run(lambda x: x * 2.0, mode)
        assert not isinstance(J, Tracer) and isinstance(J, np.ndarray)
    y, y_dot = jl.jvp(np.sin, X, X)
    y2, pullback = jl.vjp(np.sin, X)
    for value in (y, y_dot, y2, pullback(X)):
        assert type(value) is np.ndarray


# --- shapes of directions and cotangents ---------------------------------------------------------
@pytest.mark.parametrize("x_dot", [np.ones(3), np.ones((2, 2)), np.ones((4, 3, 2)), np.ones((1, 2, 3, 1))],
                         ids=["too few axes", "wrong sides", "transposed batch", "extra axis"])
def test_jvp_direction_shape_is_checked(x_dot):
    with pytest.raises(ValueError, match=re.escape("(2, 3)")) as info:
        jl.jvp(lambda x: np.sum(x, axis=0), X, x_dot)
    assert str(np.shape(x_dot)) in str(info.value)


@pytest.mark.parametrize("y_bar", [np.ones(2), np.ones((3, 1)), np.ones((2, 2, 3)), np.ones(())],
                         ids=["wrong side", "extra axis", "batched wrong", "scalar"])
def test_vjp_cotangent_shape_is_checked(y_bar):
    _, pullback = jl.vjp(lambda x: np.sum(x, axis=0), X)
    with pytest.raises(ValueError, match=re.escape("(3,)")) as info:
        pullback(y_bar)
    assert str(np.shape(y_bar)) in str(info.value)


def test_jvp_direction_must_be_real():
    with pytest.raises(TypeError, match="x_dot"):
        jl.jvp(np.sin, X, X * 1j)


@pytest.mark.parametrize("seed, what", [(np.ma.masked_array(X, mask=X > 1.0), "masked array, and its mask would be "
                                                                              "dropped"),
                                        (np.matrix(X[0]), "np.matrix, which is always 2-D")],
                         ids=["masked", "matrix"])
def test_a_direction_or_cotangent_np_asarray_would_change_is_refused_as_x_is(seed, what):
    """A masked direction would push the values under its mask; a matrix row would become a batch of one."""
    x = X[0]
    for name, call in (("x_dot", lambda: jl.jvp(np.sin, x, seed)), ("y_bar", lambda: jl.vjp(np.sin, x)[1](seed)),
                       ("v", lambda: jl.hvp(lambda z: np.sum(z ** 3), x, seed))):
        with pytest.raises(TypeError, match=f"^{name} is an? {what}"):
            call()


MASKED = np.ma.masked_array(X, mask=X > 1.0)
SUBCLASS_CONSTANTS = {
    "masked, x on the left": (lambda x: np.mean(x * MASKED), r"multiply met a masked array.*M\.filled"),
    "masked, added": (lambda x: np.sum(x + MASKED), "add met a masked array"),
    "matrix product": (lambda x: np.matrix(X) @ x[0], r"matmul met an np\.matrix.*np\.asarray\(M\)"),
    "masked, in a NumPy function": (lambda x: np.kron(x, MASKED), "a NumPy function met a masked array"),
    "masked weights": (lambda x: np.average(x, weights=MASKED), "a NumPy function met a masked array"),
    "masked, np.ma's own failure": (lambda x: np.dot(x[0], MASKED[0]), "met a masked array"),
}


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # NumPy's, for np.matrix
@pytest.mark.parametrize("mode", MODES + ["auto", "jit", "sparse", "hessian"])
@pytest.mark.parametrize("f, message", SUBCLASS_CONSTANTS.values(), ids=SUBCLASS_CONSTANTS)
def test_a_masked_or_matrix_constant_met_by_a_traced_array_is_refused(f, message, mode):
    """NumPy's value follows the mask (a mean over the unmasked elements), a matrix's products stay 2-D; the
    rules would read the data: the gradient of mean(x * M) was divided by all elements, with M's masked ones."""
    with pytest.raises(TypeError, match=message):
        jl.hessian(lambda x: np.sum(f(x)))(X) if mode == "hessian" else run(f, mode)


def test_a_masked_constant_on_the_left_runs_numpys_masked_code_on_traced_values():
    """M * x goes to np.ma's own multiply, which masks a traced result: the derivative follows the mask."""
    f = lambda x: np.mean(MASKED * x)  # noqa: E731
    for mode in MODES:
        assert_fd_close(run(f, mode), central_differences(f, X))


@pytest.mark.parametrize("mode", MODES)
def test_a_masked_constant_that_masks_nothing_is_its_data(mode):
    """np.ma.masked_invalid of clean data, np.ma.array(data): NumPy's value is the data's, and so is the derivative."""
    for M in (np.ma.array(X), np.ma.masked_invalid(X)):
        f = lambda x: np.sum(x * M) + np.kron(x, M).sum()  # noqa: E731
        assert_fd_close(run(f, mode), central_differences(f, X))


# --- harness arguments -------------------------------------------------------------------------
BAD_BATCH = [0, -1, 1.5, True, "2", np.int64(0)]


@pytest.mark.parametrize("batch_size", BAD_BATCH, ids=repr)
@pytest.mark.parametrize("mode", MODES + ["auto"])
def test_bad_batch_size(batch_size, mode):
    with pytest.raises(ValueError, match="batch_size") as info:
        jl.jacobian(np.sin, X, mode=mode, batch_size=batch_size)
    assert repr(batch_size) in str(info.value)


@pytest.mark.parametrize("batch_size", BAD_BATCH, ids=repr)
def test_bad_batch_size_in_jacfwd_jacrev(batch_size):
    for make in (jl.jacfwd, jl.jacrev):
        with pytest.raises(ValueError, match="batch_size"):
            make(np.sin, batch_size=batch_size)(X)


def test_numpy_integer_batch_size_is_accepted():
    J = jl.jacobian(np.sin, X, mode="forward", batch_size=np.int64(4))
    np.testing.assert_allclose(J.reshape(6, 6), np.diag(np.cos(X).ravel()), rtol=1e-15)


def test_unknown_mode_lists_the_modes():
    with pytest.raises(ValueError, match="sideways") as info:
        jl.jacobian(np.sin, X, mode="sideways")
    for mode in ("forward", "reverse", "auto"):
        assert mode in str(info.value)


def test_unknown_engine_lists_the_engines():
    with pytest.raises(ValueError, match="forward.*reverse"):
        jl.engines.get("sideways")


@pytest.mark.parametrize("mode", MODES)
def test_unsupported_ndarray_method_is_named(mode):
    with pytest.raises(AttributeError, match=r"ndarray\.resize is not supported on traced arrays"):
        run(lambda x: x.resize(6), mode)


@pytest.mark.parametrize("mode", MODES)
def test_statistics_and_query_methods_work_on_traced_arrays(mode):
    J = run(lambda x: x.std(axis=1) + x.var() + x.trace() + x.round().sum() + x.argmax() + x.any(), mode)
    reference = run(lambda x: np.std(x, axis=1) + np.var(x) + np.trace(x), mode)
    np.testing.assert_allclose(J, reference, rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_gathering_methods_work_like_the_functions(mode):
    # ndarray methods that return new arrays: the same value and Jacobian as the NumPy functions
    methods = lambda x: np.concatenate([  # noqa: E731
        x.take([0, 5]), x.take([2, 0], axis=1).ravel(), x.compress([True, False], axis=0).ravel(),
        x[x.nonzero()] * (x.nbytes / x.itemsize), x.imag.ravel() + x.cumprod(axis=1).ravel()])
    functions = lambda x: np.concatenate([  # noqa: E731
        np.take(x, [0, 5]), np.take(x, [2, 0], axis=1).ravel(), np.compress([True, False], x, axis=0).ravel(),
        x[np.nonzero(x)] * (np.size(x) * 1.0), np.cumprod(x, axis=1).ravel()])
    y, _ = jl.jvp(methods, X, np.zeros_like(X))
    np.testing.assert_array_equal(y, methods(X))
    np.testing.assert_array_equal(run(methods, mode), run(functions, mode))


# --- lists that hold traced values, where NumPy would build an array from them ---------------
LISTS = {
    "concatenate": lambda x: np.concatenate([[np.sum(x)], x[1:] ** 2]),
    "concatenate of a tuple": lambda x: np.concatenate(((x[0], x[1] * 2), x)),
    "concatenate, nested": lambda x: np.concatenate([x[None], [[x[0], 1.0, x[2] * x[1]]]]),
    "stack": lambda x: np.stack([x, [x[1], 2.0, x[0]]]),
    "hstack": lambda x: np.hstack([x[:1], [x[2] * x[0]]]),
    "vstack": lambda x: np.vstack([[x[0], x[1], 1.0], x]),
    "column_stack": lambda x: np.column_stack([x, [x[0], x[1], 5.0]]),
    "dstack": lambda x: np.dstack([x, [x[0], x[1], 5.0]]),
    "einsum": lambda x: np.einsum("i,i->", [x[0], x[1] * x[2]], x[:2]),
    "cross": lambda x: np.cross([x[0], x[1], 1.0], x),
    "polyval": lambda x: np.polyval([x[0], 2.0, x[2]], x),
}


@pytest.mark.parametrize("name", LISTS)
def test_a_list_holding_traced_values_is_built_as_numpy_builds_it(name):
    f, x = LISTS[name], np.array([1.5, -2.0, 3.0])
    np.testing.assert_array_equal(traced_value(f, x), f(x))
    for mode in ("forward", "reverse"):
        assert_fd_close(jl.jacobian(f, x, mode=mode), central_differences(f, x), name)


def _escape_a_tracer():
    kept = []
    jl.jacrev(lambda v: (kept.append(v), np.sin(v))[1])(np.linspace(0.1, 1.0, 3))
    return kept[0]


@pytest.mark.parametrize("call", [
    lambda old, x: jl.jacrev(lambda z: z * old)(x),
    lambda old, x: jl.jvp(lambda z: np.sin(old) + z, x, x),
    lambda old, x: jl.value_and_grad(lambda z: np.sum(z) + np.sum(old))(x),
    lambda old, x: jl.jacobian(lambda z: old, x),
    lambda old, x: jl.sparse_jacobian(lambda z: z * old, x),
    lambda old, x: jl.count_flops(lambda z: z + old, x),
    lambda old, x: old + 1.0,
], ids=["jacrev", "jvp", "value_and_grad", "returned", "sparse_jacobian", "count_flops", "outside f"])
def test_a_traced_value_kept_from_an_earlier_call_is_refused(call):
    # Kept in a list while f ran, it would otherwise come back as a stale tracer or a wrong value.
    with pytest.raises(TypeError, match="traced value of an evaluation of f that has ended"):
        call(_escape_a_tracer(), np.linspace(0.1, 1.0, 3))


def test_a_finished_call_does_not_refuse_the_enclosing_trace():
    # A Hessian's gradient sweep runs after its inner tape's call returned, on the outer trace's values.
    H = jl.hessian(lambda v: np.sum(np.sin(v) * v), np.array([0.3, 0.7]))
    x = np.array([0.3, 0.7])
    assert np.allclose(H, np.diag(2 * np.cos(x) - x * np.sin(x)))


# --- plain arrays given to a primitive as parameters ---------------------------------------------
def _bounds_moved_after_use(x):
    """clip's bounds are plain arrays f moves once it has clipped: the clip keeps the ones it used."""
    lo, hi = np.zeros(x.shape), np.ones(x.shape)
    y = np.clip(x, lo, hi)
    lo -= 10.0
    hi += 10.0
    return y * 1.0


def _indices_rewritten_after_use(x):
    """A gather, and its transpose, given f's own index array, which f rewrites once used."""
    from jacobian_lab.rules import shape as S

    idx = np.array([2, 0, 2])
    y = S.take(x, idx, axis=1)
    idx[:] = 1
    z = S.scatter_add(y, idx, axis=1, size=3)
    idx[:] = 0
    return z * np.array([1.0, 2.0, 3.0])


def _second_differences(g, x, step=1e-3):
    """The Hessian of a scalar g by central second differences of plain NumPy (exact for g
    piecewise quadratic, away from its kinks by more than 2 steps)."""
    n = x.size
    H = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            e_i, e_j = np.zeros(n), np.zeros(n)
            e_i[i], e_j[j] = step, step
            at = lambda d: g((x.ravel() + d).reshape(x.shape))  # noqa: E731
            H[i, j] = (at(e_i + e_j) - at(e_i - e_j) - at(e_j - e_i) + at(-e_i - e_j)) / (4 * step * step)
    return H.reshape(x.shape + x.shape)


PARAM_CALLS = {
    "forward": lambda f, x: jl.jacobian(f, x, mode="forward"),
    "reverse": lambda f, x: jl.jacobian(f, x, mode="reverse"),
    "auto": lambda f, x: jl.jacobian(f, x, mode="auto"),
    "jit forward": lambda f, x: jl.jit(jl.jacfwd(f))(x),
    "jit reverse": lambda f, x: jl.jit(jl.jacrev(f))(x),
    "sparse_jacobian": lambda f, x: jl.sparse_jacobian(f, x).toarray().reshape(f(x).shape + x.shape),
}


@pytest.mark.parametrize("call", PARAM_CALLS.values(), ids=PARAM_CALLS)
@pytest.mark.parametrize("f", [_bounds_moved_after_use, _indices_rewritten_after_use], ids=lambda f: f.__name__)
def test_a_plain_array_f_writes_into_after_passing_it_as_a_parameter_keeps_its_use(f, call):
    assert_fd_close(call(f, X), central_differences(f, X))


@pytest.mark.parametrize("call", [
    lambda g, x: jl.grad(g)(x),
    lambda g, x: jl.jit(jl.grad(g))(x),
], ids=["grad", "jit grad"])
def test_a_gradient_reads_the_parameters_as_f_used_them(call):
    g = lambda x: np.sum(_bounds_moved_after_use(x) ** 2)  # noqa: E731
    assert_fd_close(call(g, X), central_differences(g, X))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_hessian_reads_the_parameters_as_f_used_them(mode):
    g = lambda x: np.sum(_bounds_moved_after_use(x) ** 2)  # noqa: E731
    expected = _second_differences(g, X)
    assert_fd_close(jl.hessian(g, X, mode=mode), expected)
    assert_fd_close(jl.sparse_hessian(g, X, mode=mode).toarray().reshape(expected.shape), expected)


def test_a_pullback_reads_the_parameters_as_f_used_them():
    lo = np.zeros(3)
    y, pullback = jl.vjp(lambda x: np.clip(x, lo, None) * 1.0, np.array([0.5, -1.0, 2.0]))
    lo[:] = 5.0  # every x would now be clipped
    np.testing.assert_array_equal(pullback(np.ones(3)), [1.0, 0.0, 1.0])


def test_the_primitives_whose_parameters_may_be_arrays_say_so_at_registration():
    """A tape keeps the array parameters a primitive declares (None: it looks through them all);
    the shape and reduction primitives, dispatched most, declare none and pay nothing."""
    from jacobian_lab.primitives import REGISTRY

    declared = {name: prim.array_params for name, prim in REGISTRY.items() if prim.array_params}
    assert declared == {"clip": ("lo", "hi"), "take": ("indices",), "scatter_add": ("indices",)}
    assert all(REGISTRY[name].array_params == () for name in ("getitem", "reshape", "sum", "mean", "cumsum"))


@pytest.mark.parametrize("mode", MODES)
def test_a_missing_derivative_is_not_mistaken_for_numpys_linalg_error(mode):
    M = np.array([[1.0, 2.0], [2.0, 4.0]])

    def f(x):
        try:
            w = np.linalg.lstsq(M * x[1], np.ones(2), rcond=None)[0]
        except np.linalg.LinAlgError:  # NumPy's lstsq does not raise at this rank-deficient matrix
            w = np.zeros(2)
        return w + x

    with pytest.raises(jl.DerivativeError, match="rank-deficient") as info:
        run(f, mode, np.array([0.5, 1.0]))
    assert not isinstance(info.value, ValueError)  # neither a LinAlgError nor any ValueError f might catch


def test_a_large_constant_used_again_unchanged_is_kept_once():
    W = np.random.default_rng(0).normal(size=(100, 100)) / 20  # 80 kB: large enough to share its copy

    def layers(x):
        for _ in range(5):
            x = np.tanh(W @ x)
        return x

    _, pullback = jl.engines.get("reverse").vjp(layers, np.ones(100))
    assert pullback.tape.kept_bytes == W.nbytes

    def rescaled(x):  # the same buffer, rewritten between uses: a copy per use
        B, out = np.empty_like(W), x
        for k in range(3):
            B[:] = W * (k + 1)
            out = B @ out
        return out

    _, pullback = jl.engines.get("reverse").vjp(rescaled, np.ones(100))
    assert pullback.tape.kept_bytes == 3 * W.nbytes
    np.testing.assert_allclose(jl.jacrev(rescaled)(np.ones(100)), 6 * W @ W @ W, rtol=1e-12)


def test_a_large_buffer_rewritten_with_other_bytes_is_kept_anew():
    """-0.0 == 0.0 as numbers, not as bytes: a buffer changed between uses from one to the other is a
    new constant (arctan2's derivative tells them apart)."""
    c = np.zeros(8192)  # 64 kB: large enough to share a copy when unchanged

    def f(x):
        c[:] = 0.0
        a = x * c
        c[:] = -0.0
        return np.sum(a) + np.arctan2(c, x)[:3] * x[:3]

    x = -np.linspace(1.0, 2.0, 8192)
    np.testing.assert_array_equal(jl.jacobian(f, x, mode="reverse"), jl.jacobian(f, x, mode="forward"))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.longdouble])
@pytest.mark.parametrize("fn", [np.rad2deg, np.deg2rad, np.degrees, np.radians])
def test_angle_conversions_are_numpys_bit_for_bit(fn, dtype):
    """NumPy's loops take 180/π in x's precision (180f / πf for float32, float16 in float32): a float64 constant
    rounded to float32 left 1,616 of these 2,001 values 1 or 2 ulp away."""
    x = np.linspace(-10, 10, 2001).astype(dtype)
    y = traced_value(fn, x)
    assert y.dtype == fn(x).dtype
    np.testing.assert_array_equal(y, fn(x))
    # the slope in the Jacobian's dtype (float64 for a float16 x, whose value is computed in float32)
    slope = (np.pi / 180 if fn in (np.deg2rad, np.radians) else 180 / np.pi)
    for mode in ("forward", "reverse"):
        np.testing.assert_allclose(np.diag(jl.jacobian(fn, x[:3], mode=mode)), slope,
                                   rtol=np.finfo(np.float32).eps if dtype == np.float32 else 1e-15)


def test_a_reworded_error_is_reworded_once_inside_a_hessian():
    """The enclosing derivative's evaluation met the reworded error again and appended its advice a second time."""
    f = lambda x: np.sum(np.tanh(np.array([x[0], 2.0], dtype=object)).astype(float))  # noqa: E731
    with pytest.raises(TypeError) as refused:
        jl.hessian(f)(np.ones(2))
    assert str(refused.value).count("cannot compute on an array of traced values") == 1


def test_an_unrouted_ufunc_is_looked_for_again_only_after_a_registration():
    from jacobian_lab import numpy_api, primitives

    assert not numpy_api.routed(np.bitwise_and)
    assert numpy_api._UNROUTED[np.bitwise_and] == primitives.REGISTRATIONS
    with pytest.raises(NotImplementedError, match="bitwise_and"):
        jl.jacobian(lambda x: np.bitwise_and(x, x), np.ones(2))


@pytest.mark.skipif(not hasattr(np.ndarray, "__array_namespace__"), reason="the array API's methods are NumPy 2's")
@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
def test_array_api_code_and_the_index_methods_run_on_traced_arrays(mode):
    """x.__array_namespace__(), x.device and x.to_device failed naming the tracer's class, np.astype had no rule,
    and x.argpartition and x.searchsorted were refused though np.argpartition and np.searchsorted take traced
    arrays."""
    def f(x):
        xp = x.__array_namespace__()
        y = xp.sin(xp.astype(x.to_device(x.device), xp.float64, device=x.device)) * xp.asarray(2.0)
        order = x.argpartition(1)
        return y[order] + np.sort(x).searchsorted(0.5)

    x = np.array([0.9, 0.1, 0.7, 0.3])
    jacobian = jl.jit(jl.jacobian(f)) if mode == "jit" else jl.jacobian(f, mode=mode)
    assert_fd_close(jacobian(x), central_differences(f, x), mode)
    with pytest.raises(ValueError, match="Only 'cpu' is accepted"):
        jl.jacobian(lambda v: v.to_device("gpu"), x)
    with pytest.raises(ValueError, match='Only "cpu" is allowed'):
        jl.jacobian(lambda v: np.astype(v, np.float32, device="gpu"), x)


def test_a_difference_of_order_0_is_the_array_itself():
    """As NumPy's: without prepend and append, which were concatenated to it."""
    x = np.array([0.5, 2.0, 3.5])
    f = lambda v: np.diff(v, n=0, prepend=1.0, append=[2.0, 3.0])  # noqa: E731
    np.testing.assert_array_equal(traced_value(f, x), f(x))
    np.testing.assert_array_equal(jl.jacobian(f, x), np.eye(3))


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
def test_an_array_compared_with_a_string_equals_it_nowhere_as_numpys_does(mode):
    """x == 'a' raised NumPy's UFuncTypeError from the ufunc, where NumPy's array answers False everywhere (True
    for !=); an order (x < 'a') stays refused, as NumPy refuses it."""
    def f(x):
        return np.where(x == "a", 0.0, 2.0 * x) + (x != b"b") * x + (x[0] == "a")

    x = np.array([0.5, 1.5, 2.5])
    jacobian = jl.jit(jl.jacobian(f)) if mode == "jit" else jl.jacobian(f, mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # jit compiles it: no comparison raised while it recorded
        np.testing.assert_array_equal(jacobian(x), 3.0 * np.eye(3))
    assert traced_value(lambda v: (v == "a") + v, x).tolist() == [0.5, 1.5, 2.5]
    with pytest.raises(TypeError):
        jl.jacobian(lambda v: (v < "a") * v, x)
