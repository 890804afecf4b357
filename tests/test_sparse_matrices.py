"""A plain scipy.sparse matrix times a traced array (`rules.sparse`): every spelling NumPy and
scipy users write, checked against the same f on the dense matrix, with exact counts and patterns."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import assert_fd_close, central_differences

import jacobian_lab as jl

N = 6
X = np.linspace(0.2, 1.4, N)
# A second-difference stencil with one long-range coupling, as a discretised PDE has at a boundary
STENCIL = sp.diags([np.ones(N - 1), -2.0 * np.ones(N), 0.5 * np.ones(N - 1)], [-1, 0, 1]).tolil()
STENCIL[0, N - 1] = 3.0
KINDS = {"csr_array": sp.csr_array(STENCIL), "csr_matrix": sp.csr_matrix(STENCIL), "dia_array": sp.dia_array(STENCIL),
         "coo_matrix": sp.coo_matrix(STENCIL), "dok_array": sp.dok_array(STENCIL), "bsr_array": sp.bsr_array(STENCIL)}

PRODUCTS = {  # (f of (u, A)), each also run with A dense as the reference
    "A @ u": lambda u, A: A @ np.sin(u),
    "A.dot(u)": lambda u, A: A.dot(np.sin(u)),
    "u @ A": lambda u, A: np.sin(u) @ A,
    "A @ U": lambda u, A: (A @ np.outer(u, u[:2])).ravel(),
    "U @ A": lambda u, A: (np.outer(u[:3], u) @ A).ravel(),
}


def dense(A):
    return A.toarray()


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit", "sparse"])
@pytest.mark.parametrize("product, kind", [(p, k) for p in PRODUCTS for k in KINDS
                                           if (p, k) != ("A.dot(u)", "coo_matrix")])  # COO's n-d dot: refused
def test_products_with_a_sparse_matrix_are_the_dense_ones(product, kind, mode):
    A, g = KINDS[kind], PRODUCTS[product]
    f = lambda u: g(u, A)  # noqa: E731
    reference = jl.jacobian(lambda u: g(u, dense(A)), X)  # the dense matmul's own rules
    if mode == "jit":
        J = jl.jit(jl.jacobian(f))(X)
    elif mode == "sparse":
        J = jl.sparse_jacobian(f, X).toarray().reshape(reference.shape)
    else:
        J = jl.jacobian(f, X, mode=mode)
    np.testing.assert_allclose(J, reference, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(jl.jvp(f, X, np.zeros(N))[0], f(X))  # scipy's own values
    assert_fd_close(J, central_differences(f, X))


def test_a_product_costs_two_flops_per_stored_entry_and_column():
    A = KINDS["csr_array"]
    assert jl.count_flops(lambda u: A @ u, X) == jl.Cost(2 * A.nnz, 0)
    assert jl.count_flops(lambda u: np.outer(u[:3], u) @ A, X) == jl.Cost(3 * N + 2 * A.nnz * 3, 0)  # outer: 3 N
    # A vector's gradient sweeps one cotangent through Aᵀ: 2 nnz again
    measured = jl.measure(lambda u: np.sum(A @ u), X, mode="reverse")
    assert measured.cost["cotangent"] == jl.Cost(2 * A.nnz, 0)


def test_the_pattern_is_the_stored_entries_and_compresses():
    A = KINDS["csr_matrix"]
    f = lambda u: A @ u + u ** 2  # noqa: E731
    pattern = jl.sparsity(f, X)
    np.testing.assert_array_equal(pattern.toarray(), (dense(A) != 0) | np.eye(N, dtype=bool))
    columns = jl.sparsity(lambda U: (U.reshape(2, 3) @ A[:3, :3]).ravel(), X)  # rows of U times A
    np.testing.assert_array_equal(columns.toarray(), np.kron(np.eye(2), dense(A[:3, :3]).T != 0))
    assert np.unique(jl.coloring(pattern)).size < N  # fewer seeds than columns


def test_a_compiled_jacobian_through_a_sparse_matrix_pushes_compressed_seeds():
    n = 40
    A = sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n, n), format="csr")
    f = lambda u: A @ u + u * (1.0 - u)  # noqa: E731
    u = np.linspace(0.0, 1.0, n)
    jac = jl.jit(jl.jacobian(f))
    np.testing.assert_allclose(jac(u), A.toarray() + np.diag(1.0 - 2.0 * u), rtol=1e-15)
    assert type(jac.program(u)).__name__ == "CompressedProgram" and jac.program(u).seeds == [3]  # not n seeds


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_the_matrix_is_copied_where_f_uses_it(mode):
    A = sp.csr_array(STENCIL)
    f = lambda u: np.sin(A @ u)  # noqa: E731
    jac = jl.jit(jl.jacobian(f, mode=mode))
    compiled = jac(X)
    A.data *= 2.0  # a stencil updated between calls
    np.testing.assert_array_equal(jac(X), compiled)  # a compiled program keeps its matrix, as jax.jit does
    np.testing.assert_allclose(jl.jacobian(f, X, mode=mode), np.cos(A @ X)[:, None] * dense(A), rtol=1e-14)

    def changes_it_after_use(u):
        y = A @ u
        A.data[0] += 1.0  # after the product: the sweep must use the matrix the product used
        return np.sin(y)

    used = dense(A)
    J = jl.jacobian(changes_it_after_use, X, mode=mode)
    np.testing.assert_allclose(J, np.cos(used @ X)[:, None] * used, rtol=1e-14)


def test_tapes_with_equal_matrices_share_a_signature():
    def signature(A):
        _, pullback = jl.engines.get("reverse").vjp(lambda u: A @ u, X)
        return pullback.tape.signature(pullback.output)

    A = KINDS["csr_array"]
    assert hash(signature(A)) == hash(signature(A.copy())) and signature(A) == signature(A.copy())
    assert signature(A) != signature(2.0 * A) and signature(A) != signature(KINDS["csr_matrix"])


def test_hessians_of_a_quadratic_form_with_a_sparse_matrix():
    A = KINDS["csr_array"]
    energy = lambda u: 0.5 * u @ (A @ u) + np.sum(u ** 4)  # noqa: E731
    expected = 0.5 * (dense(A) + dense(A).T) + np.diag(12.0 * X ** 2)
    np.testing.assert_allclose(jl.hessian(energy)(X), expected, rtol=1e-13)
    np.testing.assert_allclose(jl.sparse_hessian(energy, X).toarray(), expected, rtol=1e-13)


REFUSED = {  # what scipy.sparse converts with np.asarray, refused naming what to write
    "elementwise A * u": (lambda u: KINDS["csr_array"] * u, r"A @ x for a matrix product"),
    "spmatrix A * u": (lambda u: KINDS["csr_matrix"] * u, r"A @ x for the matrix product"),
    "A.multiply(u)": (lambda u: KINDS["csr_array"].multiply(u), r"A\.toarray\(\) \* x"),
    "COO's A.dot(u)": (lambda u: KINDS["coo_matrix"].dot(u), r"A @ x for a scipy.sparse matrix A, which is differentiated"),
    "spsolve": (lambda u: sp.linalg.spsolve(KINDS["csr_array"], u), r"np\.linalg\.solve\(A\.toarray\(\), b\)"),
    "A / u": (lambda u: KINDS["csr_array"] / u, r"A\.toarray\(\) / x elementwise"),
}


@pytest.mark.parametrize("f, fix", REFUSED.values(), ids=REFUSED)
def test_what_scipy_sparse_converts_is_refused_naming_the_fix(f, fix):
    with pytest.raises(jl.TracerConversionError, match=fix):
        jl.jacobian(f, X)


ELEMENTWISE = {  # NumPy computes these element by element against the matrix, where scipy fails or gives objects
    "u * A": ("multiply", lambda u: u * KINDS["csr_array"]),
    "u + A": ("add", lambda u: u + KINDS["csr_array"]),  # scipy: "adding a nonzero scalar to a sparse array"
    "A - u": ("subtract", lambda u: KINDS["csr_matrix"] - u),
    "u / A": ("divide", lambda u: u / KINDS["csr_array"]),
    "np.maximum(u, A)": ("maximum", lambda u: np.maximum(u, KINDS["csr_array"])),
}


@pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")  # scipy's, comparing before it fails
@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
@pytest.mark.parametrize("name, f", ELEMENTWISE.values(), ids=ELEMENTWISE)
def test_elementwise_arithmetic_with_a_sparse_matrix_names_the_matrix_product(name, f, mode):
    fun = jl.jit(jl.jacobian(f)) if mode == "jit" else jl.jacobian(f, mode=mode)
    with pytest.raises(TypeError, match=rf"{name} of a traced array and a scipy.sparse matrix: .* A @ x or x @ A; "
                                        rf"for an elementwise {name}, make the matrix dense \(A\.toarray\(\)\)"):
        fun(X)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_u_times_a_scipy_sparse_matrix_is_refused_as_the_matrix_product_it_is(mode):
    A = KINDS["csr_matrix"]
    np.testing.assert_allclose(X * A, X @ A.toarray())  # SciPy's * of a matrix (not an array) is the product
    with pytest.raises(TypeError, match=r"multiply of a traced array and a scipy.sparse csr_matrix, whose \* is its "
                                        r"matrix product in SciPy .* write that product as x @ A"):
        jl.jacobian(lambda u: u * A, X, mode=mode)


def test_shapes_that_do_not_fit_fail_as_scipys():
    A = KINDS["csr_array"]
    for f, numpys in ((lambda u: u[:4] @ A, "dimension mismatch"),
                      (lambda u: np.ones((2, 1, 1)) * u @ A, "could not interpret dimensions")):
        with pytest.raises(ValueError, match=numpys):
            f(X)  # scipy's own error
        with pytest.raises(ValueError, match=numpys):
            jl.jacobian(f, X)


def _stored_bytes(matrix) -> int:
    """The bytes of the arrays a format stores; LIL's rows are Python lists: those of its CSR form."""
    m = sp.csr_array(matrix) if matrix.format == "lil" else matrix
    return sum(getattr(m, name).nbytes for name in ("data", "indices", "indptr", "offsets") if hasattr(m, name))


@pytest.mark.parametrize("kind", ["dia_array", "lil_array"])
def test_a_compiled_program_counts_a_transpose_with_arrays_of_its_own(kind):
    """DIA's and LIL's transposes make new arrays: a program keeping A for the value and Aᵀ for the sweep
    holds both."""
    A = getattr(sp, kind)(STENCIL)
    program = jl.jit(jl.grad(lambda u: np.sum(np.sin(A @ u)))).program(X)
    own = _stored_bytes(A) + _stored_bytes(A.T)
    dense = STENCIL.toarray()
    dense_program = jl.jit(jl.grad(lambda u: np.sum(np.sin(dense @ u)))).program(X)
    assert program.constant_bytes - own == dense_program.constant_bytes - dense.nbytes


@pytest.mark.parametrize("kind", ["csr_array", "coo_matrix"])
def test_a_compiled_program_counts_the_sparse_matrix_it_keeps_once(kind):
    """Its gradient sweep multiplies by Aᵀ, which shares A's arrays: the program keeps their bytes, once,
    where the same program over the dense matrix keeps the dense one."""
    A = getattr(sp, kind)(STENCIL)
    arrays = [getattr(A, name) for name in ("data", "indices", "indptr", "row", "col")
              if isinstance(getattr(A, name, None), np.ndarray)]
    sparse_program = jl.jit(jl.grad(lambda u: np.sum(np.sin(A @ u)))).program(X)
    dense = STENCIL.toarray()
    dense_program = jl.jit(jl.grad(lambda u: np.sum(np.sin(dense @ u)))).program(X)
    assert (sparse_program.constant_bytes - sum(a.nbytes for a in arrays)
            == dense_program.constant_bytes - dense.nbytes)
