"""scipy.linalg's solvers, factorizations and expm on traced arrays (`jacobian_lab.scipy`), through np.linalg.

Each takes SciPy's arguments (``overwrite_*`` are accepted and ignored: a traced
array is never overwritten) and, as SciPy, refuses infinite or NaN entries
unless ``check_finite=False``. The work is np.linalg's: a triangular solve is
np.linalg.solve of the triangle, which a FLOP count prices as an LU solve,
since that is what runs. ``assume_a`` selects no other routine: every matrix is
solved as a general one, which for the symmetric matrices "sym" and "pos"
promise is the same solution.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from ._dispatch import or_scipy

__all__ = ["cho_factor", "cho_solve", "cholesky", "det", "expm", "inv", "solve", "solve_triangular"]


def _finite(check: bool, *arrays) -> None:
    if check and not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("array must not contain infs or NaNs")  # SciPy's message


def _triangle(a, lower: bool, unit_diagonal: bool = False):
    """The triangle of `a` a triangular routine reads: the other is not read (cho_factor leaves data there)."""
    if unit_diagonal:
        strict = np.tril(a, -1) if lower else np.triu(a, 1)
        return strict + np.eye(np.shape(a)[-1])
    return np.tril(a) if lower else np.triu(a)


@or_scipy(scipy.linalg.solve)
def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True, assume_a=None,
          transposed=False):
    """The x of a @ x = b (of a.T @ x = b with `transposed`), as ``scipy.linalg.solve``.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.linalg import solve
    >>> jl.jacobian(lambda b: solve(np.diag([2.0, 4.0]), b), np.ones(2))
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    _finite(check_finite, a, b)
    return np.linalg.solve(np.swapaxes(a, -1, -2) if transposed else a, b)


@or_scipy(scipy.linalg.solve_triangular)
def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False, check_finite=True):
    """The x of a @ x = b for a's triangle (trans 1 or "T": a.T @ x = b), as ``scipy.linalg.solve_triangular``.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.linalg import solve_triangular
    >>> x1 = lambda a: solve_triangular(a, np.ones(2), lower=True)[1]  # (1 - a₁₀ x₀) / a₁₁
    >>> float(jl.grad(x1)(np.eye(2))[1, 0])
    -1.0
    """
    if trans not in (0, 1, 2, "N", "T", "C"):
        raise ValueError(f"trans must be 0, 1, 2, 'N', 'T' or 'C', got {trans!r}")
    _finite(check_finite, a, b)
    a = _triangle(a, lower, unit_diagonal)
    return np.linalg.solve(a if trans in (0, "N") else np.swapaxes(a, -1, -2), b)  # real: "C" is "T"


@or_scipy(scipy.linalg.cholesky)
def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """The Cholesky factor of a symmetric positive definite a, upper unless `lower`, as ``scipy.linalg.cholesky``.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.linalg import cholesky
    >>> jl.jvp(cholesky, np.eye(2), np.eye(2))[1]  # d chol(I) along I is I / 2
    array([[0.5, 0. ],
           [0. , 0.5]])
    """
    _finite(check_finite, a)
    return np.linalg.cholesky(a, upper=not lower)


@or_scipy(scipy.linalg.cho_factor)
def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """(c, lower) for `cho_solve`, as ``scipy.linalg.cho_factor``; c's other triangle holds zeros.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.linalg import cho_factor, cho_solve
    >>> jl.grad(lambda a: np.sum(cho_solve(cho_factor(a), np.ones(2))))(np.eye(2))  # upper: a[1, 0] is not read
    array([[-1., -2.],
           [ 0., -1.]])
    """
    return cholesky(a, lower=lower, check_finite=check_finite), lower


@or_scipy(scipy.linalg.cho_solve)
def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """The x of a @ x = b from ``cho_factor(a)``, as ``scipy.linalg.cho_solve`` (c's triangle alone is read)."""
    c, lower = c_and_lower
    _finite(check_finite, c, b)
    factor = _triangle(c, lower)
    transposed = np.swapaxes(factor, -1, -2)
    first, second = (factor, transposed) if lower else (transposed, factor)  # a = L Lᵀ = Uᵀ U
    return np.linalg.solve(second, np.linalg.solve(first, b))


@or_scipy(scipy.linalg.inv)
def inv(a, overwrite_a=False, check_finite=True):
    """a⁻¹, as ``scipy.linalg.inv``."""
    _finite(check_finite, a)
    return np.linalg.inv(a)


@or_scipy(scipy.linalg.det)
def det(a, overwrite_a=False, check_finite=True):
    """det(a), as ``scipy.linalg.det``."""
    _finite(check_finite, a)
    return np.linalg.det(a)


# Higham's degree-13 Padé approximant of exp and the 1-norm up to which it is exact to rounding (SIAM J. Matrix
# Anal. Appl. 26 (2005), table 2.3): larger matrices are scaled by 2^-s into it and the result squared s times
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0, 129060195264000.0,
           10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def _squarings(a) -> int:
    """The s that brings a's largest 1-norm within the Padé approximant's reach, found by comparisons (decisions
    a compiled program checks again), not by reading the norm as a number."""
    norm = np.max(np.sum(np.abs(a), axis=-2))
    if not np.isfinite(norm):
        raise ValueError("array must not contain infs or NaNs")
    s = 0
    while norm > _THETA13 * 2.0 ** s:
        s += 1
    return s


@or_scipy(scipy.linalg.expm)
def expm(A):
    """The matrix exponential of A (of each matrix of a stack), as ``scipy.linalg.expm``.

    Scaling and squaring with the degree-13 Padé approximant (Higham 2005), each
    step a primitive, so its derivative is that of the computation, as in JAX.
    Values are SciPy's to rounding (SciPy takes lower degrees at small norms):
    1e-16 relative at norm 1, 1e-13 at norms of a few hundred, whose squarings amplify it.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.linalg import expm
    >>> N = np.array([[0.0, 1.0], [0.0, 0.0]])  # expm(t N) = I + t N
    >>> jl.jacfwd(lambda t: expm(t * N))(np.array(2.0))
    array([[0., 1.],
           [0., 0.]])
    """
    s = _squarings(A)
    A = A / 2.0 ** s
    b = _PADE13
    eye = np.eye(np.shape(A)[-1])
    A2 = A @ A
    A4 = A2 @ A2
    A6 = A4 @ A2
    U = A @ (A6 @ (b[13] * A6 + b[11] * A4 + b[9] * A2) + b[7] * A6 + b[5] * A4 + b[3] * A2 + b[1] * eye)
    V = A6 @ (b[12] * A6 + b[10] * A4 + b[8] * A2) + b[6] * A6 + b[4] * A4 + b[2] * A2 + b[0] * eye
    R = np.linalg.solve(V - U, V + U)
    for _ in range(s):
        R = R @ R
    return R
