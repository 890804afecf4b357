"""A plain scipy.sparse matrix times a traced array: the `sparse_matmul` primitive.

``sparse_matmul(x, matrix=A, axis=a)`` contracts the (m, n) sparse matrix A with
axis a of x (of length n), which becomes an axis of length m in its place:
``A @ x`` for a vector or matrix x is a = 0, ``x @ B`` is a = -1 with A = Bᵀ.
It is linear in x and A is a constant (a finite-difference stencil, a graph
Laplacian, a mass matrix): its JVP applies it to the tangent, one axis further
along past the seed axis, and its VJP applies Aᵀ. Each stored entry of A costs
a multiply and an add per vector of x it multiplies (x.size / n of them),
2·nnz·(x.size / n) flops, as dense matmul's 2·m·k·n counts every entry.

The matrix is a `SparseConstant`: a copy taken where f used it, as a tape keeps
the dense arrays f passes, so that changing the matrix afterwards (a stencil
updated between calls) changes neither a sweep nor a compiled program, which
keeps the matrix it was compiled with, as jax.jit does.
"""
from __future__ import annotations

import numpy as np

from ..primitives import Primitive, register


class SparseConstant:
    """A scipy.sparse matrix as the `sparse_matmul` parameter: a copy in its own format, equal to another
    (and hashed alike) when format, shape, dtype and entries are, so that tapes using equal matrices
    share a cost prediction or a sparsity pattern (`Tape.signature`)."""

    __slots__ = ("matrix", "_key", "origin")

    def __init__(self, matrix, copy: bool = True, origin: "SparseConstant | None" = None):
        self.matrix = matrix.copy() if copy else matrix
        self._key = None
        self.origin = origin or self  # the constant whose arrays it holds: a transpose shares them

    @property
    def T(self) -> "SparseConstant":
        transposed = self.matrix.T  # CSR's, CSC's and COO's keep the arrays; DIA's, BSR's, LIL's make their own
        data = getattr(transposed, "data", None), getattr(self.matrix, "data", None)  # DOK has none
        shares = all(isinstance(d, np.ndarray) for d in data) and np.shares_memory(*data)
        return SparseConstant(transposed, copy=False, origin=self.origin if shares else None)

    def key(self) -> tuple:
        if self._key is None:
            m = self.matrix
            csr = m.tocsr()  # one form for every format: the stored entries, in order
            # nnz counts what the format stores, duplicates of COO included: the product's cost (2 nnz)
            self._key = (type(m).__name__, m.shape, m.dtype.str, m.nnz, csr.indptr.tobytes(), csr.indices.tobytes(),
                         csr.data.tobytes())
        return self._key

    @property
    def nbytes(self) -> int:
        """The bytes of the arrays its format stores (what a compiled program keeping it holds)."""
        m = self.matrix
        if not isinstance(getattr(m, "data", None), np.ndarray) or m.data.dtype == object:  # LIL, DOK: objects
            m = m.tocsr()
        return sum(a.nbytes for a in (getattr(m, name, None) for name in ("data", "indices", "indptr", "row",
                                                                          "col", "coords", "offsets"))
                   if isinstance(a, np.ndarray))

    def __eq__(self, other) -> bool:
        return type(other) is SparseConstant and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return f"SparseConstant({type(self.matrix).__name__} {self.matrix.shape}, nnz={self.matrix.nnz})"


def _impl(x, matrix, axis):
    # scipy's own product, in the matrix's own format: a vector's values are scipy's to the last bit
    a, moved = matrix.matrix, np.moveaxis(x, axis, 0)
    out = np.asarray(a @ (moved if moved.ndim == 1 else moved.reshape(moved.shape[0], -1)))  # (an spmatrix
    return np.moveaxis(out.reshape((a.shape[0],) + moved.shape[1:]), 0, axis)  # gives an np.matrix)


def _cost(out, x, matrix, axis):
    return 2 * matrix.matrix.nnz * (x.size // max(x.shape[axis], 1)), 0


def _jvp(tangents, out, x, matrix, axis):
    return sparse_matmul(tangents[0], matrix, axis + 1)


def _vjp(needs, out, x, matrix, axis):
    transposed = matrix.T  # built once for every sweep of the tape
    return lambda g: (sparse_matmul(g, transposed, axis + 1) if needs[0] else None,)


sparse_matmul = register(Primitive(
    "sparse_matmul", _impl, _cost, jvp=_jvp, vjp=_vjp, positional_params=("matrix", "axis"),
    structure="sparse_matmul", array_params=(),
))


def is_sparse(value) -> bool:
    """Whether `value` is a scipy.sparse matrix or array, read from its type (scipy.sparse need not be
    imported, which takes about as long as the rest of the package)."""
    return type(value).__module__.startswith("scipy.sparse") and hasattr(value, "tocsr")


def elementwise_error(name: str, matrix) -> TypeError:
    """The refusal of an operation other than the matrix product between a traced array and a scipy.sparse
    `matrix` (`name`: the primitive's), which NumPy would compute element by element against the matrix.
    A scipy.sparse *matrix* (csr_matrix, not csr_array) multiplies as np.matrix does: its * is the product."""
    import scipy.sparse

    if name == "multiply" and isinstance(matrix, scipy.sparse.spmatrix):
        return TypeError(
            f"multiply of a traced array and a scipy.sparse {type(matrix).__name__}, whose * is its matrix product "
            "in SciPy (as np.matrix's is): write that product as x @ A or A @ x, which jacobian_lab differentiates")
    return TypeError(
        f"{name} of a traced array and a scipy.sparse matrix: jacobian_lab differentiates their matrix "
        f"product, A @ x or x @ A; for an elementwise {name}, make the matrix dense (A.toarray())")
