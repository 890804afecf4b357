"""matmul: NumPy's semantics (1-D promotion, broadcast batch axes), rules on BLAS.

(…, m, k) @ (…, k, n) costs 2·m·k·n flops per batch entry. The rules promote
1-D operands to matrices (a row on the left, a column on the right) and give
seed-batched values unit batch axes so they broadcast against the other
operand; a vector operand never meets the seed axis by accident.

When the other operand is one plain matrix or vector (the usual `W @ x`,
`X @ W`, `h @ w`), the seed axis folds into matrix rows instead: k seeds make
one BLAS matrix-matrix product rather than k broadcast products (for a vector
operand, k matrix-vector products). The flops are the same per seed either
way, so the counts do not depend on which form ran.
"""
from __future__ import annotations

import math

import numpy as np

from ..primitives import Primitive, register
from . import elementwise as E
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


def swap(v):
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
            term = matmul(tb, swap(_matrix(a, (rows, a2[-1]))))
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
    b_t = swap(b_mat) if needs[0] else None
    a_t = swap(a_mat) if needs[1] and not fold_b else None
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


matmul = register(Primitive("matmul", _matmul_impl, _matmul_cost, jvp=_matmul_jvp, vjp=_matmul_vjp,
                            structure="matmul"))


def finite_svd(a):
    """np.linalg.svd(a, full_matrices=False) of each matrix of a (…, m, n), NaN for those holding an
    inf or NaN: LAPACK's gesdd does not return on an infinite entry (NumPy's own svd hangs there)."""
    finite = np.isfinite(a).all(axis=(-2, -1))
    if finite.all():
        return tuple(np.linalg.svd(a, full_matrices=False))
    u, s, vh = np.linalg.svd(np.where(finite[..., None, None], a, 0.0), full_matrices=False)
    lost = ~finite
    return (np.where(lost[..., None, None], np.nan, u), np.where(lost[..., None], np.nan, s),
            np.where(lost[..., None, None], np.nan, vh))
