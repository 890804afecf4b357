"""A plain scipy.sparse matrix times a traced array: the `sparse_matmul` primitive.

``sparse_matmul(x, matrix=A, axis=a)`` contracts the (m, n) sparse matrix A with
axis a of x (of length n), which becomes an axis of length m in its place:
``A @ x`` for a vector or matrix x is a = 0, ``x @ B`` is a = -1 with A = Bᵀ.
It is linear in x and A is a constant (a finite-difference stencil, a graph
Laplacian, a mass matrix): its JVP applies it to the tangent, one axis further
along past the seed axis, and its VJP applies Aᵀ. Each stored entry of A costs
a multiply and an add per column of x (the elements of x over its length n
along a), 2·nnz·columns flops, as dense matmul's 2·m·k·n counts every entry.

A is read when the primitive runs: f must not change A's entries after using it.
"""
from __future__ import annotations

import numpy as np

from ..primitives import Primitive, register


def _impl(x, matrix, axis):
    # scipy's own product, in the matrix's own format: a vector's values are scipy's to the last bit
    moved = np.moveaxis(x, axis, 0)
    out = np.asarray(matrix @ (moved if moved.ndim == 1 else moved.reshape(moved.shape[0], -1)))  # np.matrix
    return np.moveaxis(out.reshape((matrix.shape[0],) + moved.shape[1:]), 0, axis)  # for an spmatrix


def _cost(out, x, matrix, axis):
    return 2 * matrix.nnz * (x.size // max(x.shape[axis], 1)), 0


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
