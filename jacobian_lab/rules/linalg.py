"""matmul: NumPy's semantics (1-D promotion, broadcast batch axes), rules on BLAS.

(…, m, k) @ (…, k, n) costs 2·m·k·n flops per batch entry. The rules promote
1-D operands to matrices (a row on the left, a column on the right) and give
seed-batched values unit batch axes so they broadcast against the other
operand; a vector operand never meets the seed axis by accident.
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
    return np.broadcast_shapes(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])


def _matmul_cost(out, a, b):
    a2, b2 = _as_matrices(np.shape(a), np.shape(b))
    return 2 * math.prod(_out_matrix_shape(a2, b2)) * a2[-1], 0


def _seeded(t, shape2, ndim):
    """(k, *shape) -> (k, 1, ..., *shape2), ndim axes after the seed axis."""
    return S.align(S.reshape(t, (S.batch(t),) + shape2), ndim)


def _swap(v):
    axes = tuple(range(np.ndim(v)))
    return S.transpose(v, axes[:-2] + (axes[-1], axes[-2]))


def _matmul_jvp(tangents, out, a, b):
    a2, b2 = _as_matrices(np.shape(a), np.shape(b))
    nd = len(_out_matrix_shape(a2, b2))
    ta, tb = tangents
    total = None
    if ta is not None:
        total = matmul(_seeded(ta, a2, nd), S.reshape(b, b2))
    if tb is not None:
        term = matmul(S.reshape(a, a2), _seeded(tb, b2, nd))
        total = term if total is None else E.add(total, term)
    return S.reshape(total, (S.batch(total),) + np.shape(out))


def _matmul_vjp(needs, out, a, b):
    a_shape, b_shape = np.shape(a), np.shape(b)
    a2, b2 = _as_matrices(a_shape, b_shape)
    out2 = _out_matrix_shape(a2, b2)
    a_mat, b_mat = S.reshape(a, a2), S.reshape(b, b2)

    def pullback(g):
        k = S.batch(g)
        g2 = S.reshape(g, (k,) + out2)
        ga = gb = None
        if needs[0]:
            ga = S.reshape(S.unbroadcast(matmul(g2, _swap(b_mat)), a2), (k,) + a_shape)
        if needs[1]:
            gb = S.reshape(S.unbroadcast(matmul(_swap(a_mat), g2), b2), (k,) + b_shape)
        return ga, gb

    return pullback


matmul = register(Primitive("matmul", np.matmul, _matmul_cost, jvp=_matmul_jvp, vjp=_matmul_vjp))
