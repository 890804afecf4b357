"""scipy.linalg's solvers, factorizations and expm on traced arrays (`jacobian_lab.scipy`), through np.linalg.

Each takes SciPy's arguments (``overwrite_*`` are accepted and ignored: a traced
array is never overwritten) and, as SciPy, refuses infinite or NaN entries
unless ``check_finite=False``. The work is np.linalg's: a triangular solve is
np.linalg.solve of the triangle, which a FLOP count prices as an LU solve,
since that is what runs. ``assume_a`` selects the part of a that SciPy's
solver for it reads, which is then solved as a general matrix: the same
solution, priced as an LU solve.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from ..rules.elementwise import as_float_dtype
from ._dispatch import in_precision, or_scipy

__all__ = ["cho_factor", "cho_solve", "cholesky", "det", "expm", "inv", "solve", "solve_triangular"]


def _finite(check: bool, *arrays) -> None:
    if check and not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("array must not contain infs or NaNs")  # SciPy's message


_SYMMETRIC = ("symmetric", "sym", "hermitian", "her", "positive definite", "pos")


def _assumed(a, assume_a, lower: bool):
    """The matrix SciPy's solver for `assume_a` reads: a diagonal, band or triangle of `a`, or the symmetric
    matrix of its upper (`lower`: lower) triangle; `a` itself for a general or banded one (None, "gen")."""
    if assume_a in (None, "general", "gen", "banded"):  # a band is found from a's own zeros: all of a
        return a
    if assume_a in _SYMMETRIC:
        return _triangle(a, lower) + np.swapaxes(_strict(a, lower), -1, -2)
    parts = {"diagonal": (0, 0), "tridiagonal": (-1, 1), "upper triangular": (0, None),
             "lower triangular": (None, 0)}
    if assume_a not in parts:
        raise ValueError(f"{assume_a} is not a recognized matrix structure")  # SciPy's message
    below, above = parts[assume_a]
    if above is not None:
        a = np.tril(a, above)
    return a if below is None else np.triu(a, below)


def _lapack(a):
    """`a` in a precision LAPACK has, as SciPy hands it over: float16 as float32 (NumPy's linalg refuses it)."""
    return in_precision(a, np.float32)


def _solved(b, *matrices):
    """x of ``matrices[-1] @ ... @ matrices[0] @ x = b``, solved one matrix after the other (one for solve,
    a factor and its transpose for cho_solve); a 1-D b is the right-hand side of every matrix of a stack, as
    SciPy's."""
    n = np.shape(matrices[0])[-1]
    if np.shape(b)[0 if np.ndim(b) == 1 else -2:][:1] != (n,):  # SciPy's check, before NumPy's gufunc message
        raise ValueError(f"incompatible shapes: a is {n}x{n} and b has shape {np.shape(b)}; b needs {n} rows, one "
                         f"for each of a's (a vector of length {n}, or a matrix of {n} rows)")
    vector = np.ndim(b) == 1 and np.ndim(matrices[0]) > 2
    x = _lapack(b[:, None] if vector else b)
    for a in matrices:
        x = np.linalg.solve(_lapack(a), x)
    return x[..., 0] if vector else x


def _strict(a, lower: bool):
    """The triangle of `a` below (`lower`) or above its diagonal."""
    return np.tril(a, -1) if lower else np.triu(a, 1)


def _triangle(a, lower: bool, unit_diagonal: bool = False):
    """The triangle of `a` a triangular routine reads: the other is not read (cho_factor leaves data there)."""
    if unit_diagonal:
        return _strict(a, lower) + np.eye(np.shape(a)[-1])
    return np.tril(a) if lower else np.triu(a)


@or_scipy(scipy.linalg.solve)
def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True, assume_a=None,
          transposed=False):
    """The x of a @ x = b (of a.T @ x = b with `transposed`), as ``scipy.linalg.solve``.

    `assume_a` reads what SciPy's solver for it reads (a diagonal, band or
    triangle of a; for "sym" and "pos" the symmetric matrix of a's upper
    triangle, or with `lower` its lower one), so derivatives in the entries it
    leaves are 0.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.linalg import solve
    >>> jl.jacobian(lambda b: solve(np.diag([2.0, 4.0]), b), np.ones(2))
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    _finite(check_finite, a, b)
    if np.shape(a) == (1, 1) and np.shape(b)[:1] != (1,):  # as SciPy, a 1x1 a divides a b of any shape
        return _lapack(b) / _lapack(a)[0, 0]
    a = _assumed(a, assume_a, lower)
    return _solved(b, np.swapaxes(a, -1, -2) if transposed else a)


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
    return _solved(b, a if trans in (0, "N") else np.swapaxes(a, -1, -2))  # real: "C" is "T"


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
    return np.linalg.cholesky(_lapack(a), upper=not lower)


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
    lower = bool(np.all(lower))  # SciPy's cho_factor of a stack gives one flag per matrix, all alike
    _finite(check_finite, c, b)
    factor = _triangle(c, lower)
    transposed = np.swapaxes(factor, -1, -2)
    return _solved(b, *((factor, transposed) if lower else (transposed, factor)))  # a = L Lᵀ = Uᵀ U


# The structures scipy.linalg.inv has a routine for: fewer than solve's (no "tridiagonal", no long names)
_INVERTIBLE = (None, "general", "gen", "diagonal", "upper triangular", "lower triangular", "pos", "sym", "her")


@or_scipy(scipy.linalg.inv)
def inv(a, overwrite_a=False, check_finite=True, *, assume_a=None, lower=False):
    """a⁻¹, as ``scipy.linalg.inv``; `assume_a` and `lower` read a as `solve`'s do (for "diagonal", the
    inverse of a's diagonal, where SciPy 1.17 leaves a's other entries in place). An `assume_a` SciPy's inv
    has no routine for raises its KeyError, not solve's ValueError."""
    _finite(check_finite, a)
    if assume_a not in _INVERTIBLE:
        raise KeyError(assume_a)  # SciPy's: the key missing from its table of structures
    return np.linalg.inv(_lapack(_assumed(a, assume_a, lower)))


@or_scipy(scipy.linalg.det)
def det(a, overwrite_a=False, check_finite=True):
    """det(a), as ``scipy.linalg.det``: float64 for a float32 a, as SciPy's (its product of the pivots is
    float64, so it does not overflow where float32 would). Computed in float64 here, where SciPy factors in
    float32: the values agree to float32's rounding."""
    _finite(check_finite, a)
    return np.linalg.det(in_precision(a, np.float64))


# Higham's degree-13 Padé approximant of exp and the 1-norm up to which it is exact to rounding (SIAM J. Matrix
# Anal. Appl. 26 (2005), table 2.3): larger matrices are scaled by 2^-s into it and the result squared s times
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0, 129060195264000.0,
           10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def _squarings(a) -> np.ndarray:
    """The s of each matrix of `a` that brings its 1-norm within the Padé approximant's reach, found by
    comparisons (decisions a compiled program checks again), not by reading the norm as a number."""
    norm = np.max(np.sum(np.abs(a), axis=-2), axis=-1)
    s = np.zeros(np.shape(norm), dtype=int)
    while np.any(norm > _THETA13 * 2.0 ** s):
        s = s + (norm > _THETA13 * 2.0 ** s)
    return s


@or_scipy(scipy.linalg.expm)
def expm(A):
    """The matrix exponential of A (of each matrix of a stack), as ``scipy.linalg.expm``.

    Scaling and squaring with the degree-13 Padé approximant (Higham 2005), each
    step a primitive, so its derivative is that of the computation, as in JAX.
    Values are SciPy's to rounding (SciPy takes lower degrees at small norms):
    1e-16 relative at norm 1, 1e-13 at norms of a few hundred, whose squarings
    amplify it. A stiff matrix, whose norm takes many squarings, loses more
    (6 % of an entry of [[-1e15, 1], [0, 1]], where JAX's is NaN and SciPy's
    exact): SciPy's algorithm (Al-Mohy and Higham 2009) avoids it. Non-finite
    entries give NaN.

    >>> import numpy as np, jacobian_lab as jl
    >>> from jacobian_lab.scipy.linalg import expm
    >>> N = np.array([[0.0, 1.0], [0.0, 0.0]])  # expm(t N) = I + t N
    >>> jl.jacfwd(lambda t: expm(t * N))(np.array(2.0))
    array([[0., 1.],
           [0., 0.]])
    """
    A = in_precision(A, np.float32)  # SciPy's: float32 stays float32
    if np.ndim(A) < 2 and np.size(A) == 1:  # as SciPy, one number is a 1x1 matrix
        A = np.reshape(A, (1, 1))
    if np.ndim(A) < 2 or np.shape(A)[-1] != np.shape(A)[-2]:  # SciPy's errors
        raise np.linalg.LinAlgError("The input array must be at least two-dimensional" if np.ndim(A) < 2 else
                                    f"Last 2 dimensions of the array must be square, got shape {np.shape(A)}")
    if not np.size(A):  # 0x0 matrices: no norm to scale by
        return A + 0.0
    finite = np.all(np.isfinite(A), axis=(-2, -1))
    if not np.all(finite):  # a matrix holding inf or NaN gives NaN, as SciPy's; the others their exponentials
        return np.where(finite[..., None, None], expm(np.where(finite[..., None, None], A, 0.0)), np.nan)
    s = _squarings(A)  # each matrix of a stack its own: the largest's would cost the others digits
    A = A / as_float_dtype(2.0 ** s, np.result_type(A))[..., None, None]  # in A's dtype, as the rest
    b = _PADE13
    eye = np.eye(np.shape(A)[-1], dtype=np.result_type(A))
    A2 = A @ A
    A4 = A2 @ A2
    A6 = A4 @ A2
    U = A @ (A6 @ (b[13] * A6 + b[11] * A4 + b[9] * A2) + b[7] * A6 + b[5] * A4 + b[3] * A2 + b[1] * eye)
    V = A6 @ (b[12] * A6 + b[10] * A4 + b[8] * A2) + b[6] * A6 + b[4] * A4 + b[2] * A2 + b[0] * eye
    R = np.linalg.solve(V - U, V + U)
    for step in range(int(np.max(s, initial=0))):
        R = R @ R if np.all(s > step) else np.where((s > step)[..., None, None], R @ R, R)
    return R
