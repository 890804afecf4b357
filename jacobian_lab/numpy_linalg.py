"""NumPy's linear algebra on traced arrays: products, norms, solvers and decompositions, composed from primitives.

tensordot, inner, vdot and dot of stacks reshape to one matmul; kron is one broadcast
multiply; multi_dot brackets its factors like a Jacobian chain; tensorsolve
and tensorinv reshape to one solve or inv; norms are reductions of elementwise
powers, or of the singular values (the matrix norms 2, -2 and nuc); cond is
the ratio of the extreme singular values or ‖x‖·‖x⁻¹‖. NumPy 2's array-API
names are registered only where the installed NumPy has them.
"""
from __future__ import annotations

import math
import operator
from typing import NamedTuple

import numpy as np

from . import numpy_api as api
from .bracketing import plan, run_tree, tree_from_split
from .numpy_api import implements, normalize_axis, one_axis
from .numpy_composites import diagonal, norm_root, numpy2
from .primitives import DerivativeError, is_traced, observe, primal
from .rules import decompositions as D
from .rules import elementwise as E
from .rules import linalg as L
from .rules import lu as LU
from .rules import reductions as R


# --- products -------------------------------------------------------------------------
@implements(np.tensordot)
def tensordot(a, b, axes=2):
    if not np.iterable(axes):  # the last `axes` of a with the first of b
        k = operator.index(axes)
        axes_a, axes_b = list(range(np.ndim(a) - k, np.ndim(a))), list(range(k))
    else:  # each side an axis or a sequence of them, as in NumPy
        axes_a, axes_b = ([int(i) for i in x] if np.iterable(x) else [operator.index(x)] for x in axes)
    return _contract(a, b, axes_a, axes_b, lambda: "shape-mismatch for sum")


def _contract(a, b, axes_a, axes_b, mismatch):
    """Σ over a's `axes_a` paired with b's `axes_b`, a's free axes then b's: one matmul. `mismatch()` is
    the ValueError's message when the paired axes differ in number or length (NumPy's wording)."""
    shape_a, shape_b = np.shape(a), np.shape(b)
    axes_a = [x % np.ndim(a) for x in axes_a]
    axes_b = [x % np.ndim(b) for x in axes_b]
    if len(axes_a) != len(axes_b) or any(shape_a[i] != shape_b[j] for i, j in zip(axes_a, axes_b)):
        raise ValueError(mismatch())
    free_a = [i for i in range(np.ndim(a)) if i not in axes_a]
    free_b = [i for i in range(np.ndim(b)) if i not in axes_b]
    out_a, out_b = tuple(shape_a[i] for i in free_a), tuple(shape_b[i] for i in free_b)
    # every size explicit: a reshape to (-1, 0) is ambiguous when the summed axes are empty
    k, m, n = (math.prod(shape_a[i] for i in axes_a), math.prod(out_a), math.prod(out_b))
    left = api.reshape(api.transpose(a, free_a + axes_a), (m, k))
    right = api.reshape(api.transpose(b, axes_b + free_b), (k, n))
    return api.reshape(api.matmul(left, right), out_a + out_b)


def not_aligned(sa: tuple, sb: tuple, dim_a: int, dim_b: int) -> str:
    """NumPy's message for np.dot and np.inner operands of shapes sa and sb whose summed axes differ in
    length."""
    dim_a, dim_b = dim_a % len(sa), dim_b % len(sb)
    shapes = ["(" + ",".join(map(str, s)) + ("," if len(s) == 1 else "") + ")" for s in (sa, sb)]
    return f"shapes {shapes[0]} and {shapes[1]} not aligned: {sa[dim_a]} (dim {dim_a}) != {sb[dim_b]} (dim {dim_b})"


@implements(np.inner)
def inner(a, b):
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return E.multiply(a, b)
    shape_b = np.shape(b)[-1:] + np.shape(b)[:-1]  # NumPy names b with its summed axis moved first
    return _contract(a, b, [-1], [-1], lambda: not_aligned(np.shape(a), shape_b, -1, 0))


@implements(np.dot)
def dot(a, b, out=None):
    if np.ndim(a) == 0 or np.ndim(b) == 0:  # NumPy's dot takes a Python number as an array: no weak promotion
        a, b = (np.asarray(v) if type(v) in (int, float, complex) else v for v in (a, b))
        return E.multiply(a, b)
    summed = -1 if np.ndim(b) == 1 else -2  # a's last axis against b's second-to-last (its only, 1-D)
    def mismatch():
        return not_aligned(np.shape(a), np.shape(b), -1, summed)

    if np.ndim(a) > 2 or np.ndim(b) > 2:
        return _contract(a, b, [-1], [summed], mismatch)
    if np.shape(a)[-1] != np.shape(b)[summed]:  # NumPy's message, not matmul's
        raise ValueError(mismatch())
    return api.matmul(a, b)


@implements(np.vdot)
def vdot(a, b):
    return api.matmul(api.ravel(a), api.ravel(b))


@implements(np.kron)
def kron(a, b):
    """Every product a[i] b[j], laid out block by block: one broadcast multiply, 1 flop per output."""
    a, b = map(api.as_array, (a, b))
    nd = max(np.ndim(a), np.ndim(b))
    sa, sb = (1,) * (nd - np.ndim(a)) + np.shape(a), (1,) * (nd - np.ndim(b)) + np.shape(b)
    # a's axes at even places and b's at odd ones, so that the product's axis pairs merge into blocks
    product = E.multiply(api.reshape(a, tuple(x for s in sa for x in (s, 1))),
                         api.reshape(b, tuple(x for s in sb for x in (1, s))))
    return api.reshape(product, tuple(x * y for x, y in zip(sa, sb)))


@implements(np.cross)
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """The cross product of 3-vectors along an axis, as NumPy computes it: 3 flops per component."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = (api.moveaxis(api.as_array(v), ax, -1) for v, ax in ((a, axisa), (b, axisb)))
    if np.shape(a)[-1] != 3 or np.shape(b)[-1] != 3:
        raise api.unsupported("numpy.cross of vectors with 2 components (NumPy 2 deprecates them; pad a 0)")
    a0, a1, a2 = (a[..., i] for i in range(3))
    b0, b1, b2 = (b[..., i] for i in range(3))
    components = [E.subtract(E.multiply(a1, b2), E.multiply(a2, b1)),
                  E.subtract(E.multiply(a2, b0), E.multiply(a0, b2)),
                  E.subtract(E.multiply(a0, b1), E.multiply(a1, b0))]
    return api.moveaxis(api.stack(components, axis=-1), -1, axisc)


@implements(np.linalg.matrix_power)
def matrix_power(a, n):
    """a @ a @ ... n times, by NumPy's own sequence of squarings (a negative n inverts first)."""
    a = _square("matrix_power", a)
    n = operator.index(n)
    if n == 0:  # the identity: a constant
        return np.broadcast_to(np.eye(np.shape(a)[-1], dtype=np.result_type(primal(a))), np.shape(a)).copy()
    if n < 0:
        a, n = np.linalg.inv(a), -n
    if n == 1:
        return a
    if n == 2:
        return api.matmul(a, a)
    if n == 3:
        return api.matmul(api.matmul(a, a), a)
    z = result = None
    while n > 0:  # binary decomposition, as numpy.linalg.matrix_power
        z = a if z is None else api.matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else api.matmul(result, z)
    return result


@implements(np.linalg.multi_dot)
def multi_dot(arrays, *, out=None):
    """A chain of matmuls in the cheapest order: the dynamic programme that brackets Jacobian chains."""
    arrays = [api.as_array(v) for v in arrays]
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    first, last = np.ndim(arrays[0]) == 1, np.ndim(arrays[-1]) == 1
    mats = [api.reshape(arrays[0], (1, -1)) if first else arrays[0], *arrays[1:-1],
            api.reshape(arrays[-1], (-1, 1)) if last else arrays[-1]]
    if any(np.ndim(m) != 2 for m in mats):
        raise ValueError("multi_dot: the arrays must be 2-D, except the first and last, which may be 1-D")
    # As a chain J_q ... J_1 the rightmost factor is J_1: widths run from its columns leftwards.
    stages = mats[::-1]
    widths = [np.shape(stages[0])[1]] + [np.shape(m)[0] for m in stages]
    tree = tree_from_split(plan(widths).split_table, len(stages))
    result = run_tree(stages, tree, api.matmul)
    shape = np.shape(result)
    return api.reshape(result, tuple(s for s, drop in zip(shape, (first, last)) if not drop))


@implements(np.linalg.tensorinv)
def tensorinv(a, ind=2):
    """The inverse of `a` read as a matrix: its first `ind` axes are the rows (NumPy's reshape, then inv)."""
    if ind <= 0:
        raise ValueError("Invalid ind argument.")
    shape = np.shape(a)
    rows = math.prod(shape[ind:])
    return api.reshape(np.linalg.inv(api.reshape(a, (rows, -1))), shape[ind:] + shape[:ind])


@implements(np.linalg.tensorsolve)
def tensorsolve(a, b, axes=None):
    """x with tensordot(a, x, x.ndim) == b: NumPy's reshape of a to a square matrix, then solve."""
    a, b = api.as_array(a), api.as_array(b)
    if axes is not None:  # the named axes of a move to the end, in the order given, as in NumPy
        order = [i for i in range(np.ndim(a)) if i not in normalize_axis(axes, np.ndim(a))]
        a = api.transpose(a, order + [one_axis(k, np.ndim(a)) for k in axes])
    x_shape = np.shape(a)[np.ndim(b):]
    size = math.prod(x_shape)
    if np.size(a) != size ** 2:
        raise np.linalg.LinAlgError(
            "Input arrays must satisfy the requirement prod(a.shape[b.ndim:]) == prod(a.shape[:b.ndim])")
    return api.reshape(np.linalg.solve(api.reshape(a, (size, size)), api.ravel(b)), x_shape)


# --- norms ----------------------------------------------------------------------------
@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    """Vector norms (None/2, 1, inf, -inf, p) and every matrix norm (fro, nuc, ±1, ±2, ±inf)."""
    nd = np.ndim(x)
    if axis is None and (ord is None or (ord == "fro" and nd == 2)):
        return norm_root(api._reduction(R.sum, E.square(x), None, keepdims), 2)
    axes = normalize_axis(tuple(range(nd)) if axis is None else axis, nd)
    if len(axes) not in (1, 2):  # one axis is a vector norm, two a matrix norm, as in NumPy
        raise ValueError("Improper number of dimensions to norm.")
    if len(axes) == 2:
        # in the order given: the first is the row axis (ord=1 sums along it, ord=inf across it)
        rows, cols = (one_axis(a, nd) for a in axis) if axis is not None else axes
        return _matrix_norm(x, ord, (rows, cols), keepdims)
    return _vector_norm(x, ord, axes, keepdims)


def _vector_norm(x, ord, axes, keepdims, name="numpy.linalg.norm"):
    """The ord-norm of the vectors along `axes` (all of them form one vector)."""
    reduce = lambda prim, v: api._reduction(prim, v, axes, keepdims)  # noqa: E731
    if ord is None or ord == 2:
        return norm_root(reduce(R.sum, E.square(x)), 2)
    if ord == 1:
        return reduce(R.sum, E.absolute(x))
    if ord == np.inf:
        if any(np.shape(x)[i] == 0 for i in axes):  # NumPy's initial=0: 0 over an empty axis
            return api._masked_reduction(R.max, name, E.absolute(x), axes, keepdims, 0, None)
        return reduce(R.max, E.absolute(x))
    if ord == -np.inf:
        return reduce(R.min, E.absolute(x))
    if ord == 0:  # how many entries are nonzero: piecewise constant, a plain count as NumPy's
        return reduce(R.sum, E.not_equal(x, 0).astype(np.result_type(x)))
    if isinstance(ord, (int, float)) and not isinstance(ord, bool):  # any other p, negative ones too
        return norm_root(reduce(R.sum, E.power(E.absolute(x), ord)), ord)
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")  # NumPy's error
    raise api.unsupported(f"{name} with ord={ord!r}")


_SINGULAR_VALUE_NORMS = {2: R.max, -2: R.min, "nuc": R.sum}


def _matrix_norm(x, ord, axes, keepdims):
    """The ord-norm of the matrices in `axes` (row axis, column axis), as NumPy defines it."""
    row, col = axes
    if ord in (None, "fro"):
        return norm_root(api._reduction(R.sum, E.square(x), axes, keepdims), 2)
    if ord in (1, -1, np.inf, -np.inf):
        inner_axis, outer_axis = (row, col) if ord in (1, -1) else (col, row)
        sums = api._reduction(R.sum, E.absolute(x), inner_axis, True)
        reduce = R.max if ord > 0 else R.min
        return api._reduction(reduce, sums, outer_axis if keepdims else axes, keepdims)
    if ord not in _SINGULAR_VALUE_NORMS:
        raise ValueError("Invalid norm order for matrices.")  # NumPy's error
    # 2, -2, nuc: the largest, smallest and sum of the singular values (ties as in max/min)
    s = D.svdvals(api.moveaxis(x, (row, col), (-2, -1)))
    if np.shape(s)[-1] == 0 and ord == 2:  # NumPy's largest of no singular values: 0 (its initial=0)
        norm_ = api._masked_reduction(R.max, "numpy.linalg.norm", s, (-1,), False, 0, None)
    else:
        norm_ = api._reduction(_SINGULAR_VALUE_NORMS[ord], s, -1, False)
    if keepdims:
        shape = list(np.shape(x))
        shape[row] = shape[col] = 1
        norm_ = api.reshape(norm_, tuple(shape))
    return norm_


@implements(np.linalg.cond)
def cond(x, p=None):
    """The condition number: the ratio of extreme singular values (p None, 2, -2), else ‖x‖_p ‖x⁻¹‖_p.

    NumPy returns inf for a singular matrix; the condition number has no derivative there, so on
    traced arrays that is a LinAlgError.
    """
    x = api.as_array(x)
    if np.size(x) == 0 and math.prod(np.shape(x)[-2:]) == 0:
        raise np.linalg.LinAlgError("cond is not defined on empty arrays")  # NumPy's error
    if p is None or (not isinstance(p, str) and p in (2, -2)):
        s = svd(x, compute_uv=False)
        if observe(_has_zero_last, primal(s)):
            raise _singular_cond()
        largest, smallest = s[..., 0], s[..., -1]
        return E.divide(smallest, largest) if p == -2 else E.divide(largest, smallest)
    x = _square("cond", x)
    try:
        inverse = np.linalg.inv(x)
    except np.linalg.LinAlgError:
        raise _singular_cond() from None
    return E.multiply(norm(x, p, axis=(-2, -1)), norm(inverse, p, axis=(-2, -1)))


def _has_zero_last(s):
    return bool(np.any(np.asarray(s)[..., -1] == 0))


def _singular_cond():
    return DerivativeError(
        "numpy.linalg.cond of a singular matrix is infinite (NumPy returns inf) and has no derivative; "
        "differentiate it at a nonsingular matrix")


# --- NumPy 2's array-API names (registered only where NumPy has them) -----------------
@numpy2(np, "matrix_transpose")
@numpy2(np.linalg, "matrix_transpose")
def matrix_transpose(x, /):
    if np.ndim(x) < 2:
        raise ValueError(f"Input array must be at least 2-dimensional, but it is {np.ndim(x)}")
    return api.swapaxes(x, -1, -2)


@numpy2(np.linalg, "vecdot")
def vecdot(x1, x2, /, *, axis=-1):
    """sum(x1 * x2) over `axis` of each operand, the other axes broadcast (real: no conjugate): a row
    times a column, counted as np.dot's 2n flops per vector."""
    x1, x2 = (api.moveaxis(api.as_array(v), axis, -1) for v in (x1, x2))
    if np.shape(x1)[-1] != np.shape(x2)[-1]:
        raise ValueError(f"vecdot: the vectors have lengths {np.shape(x1)[-1]} and {np.shape(x2)[-1]}")
    return api.matmul(api.expand_dims(x1, -2), api.expand_dims(x2, -1))[..., 0, 0]


if getattr(np, "vecdot", None) is not None:
    # np.vecdot is a gufunc: it reaches tracers through __array_ufunc__, whose keyword
    # arguments (axis, axes, ...) numpy_api refuses by name.
    api.UFUNCS[np.vecdot] = vecdot


@numpy2(np.linalg, "vector_norm")
def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """axis None: all of x as one vector; a tuple: those axes as one vector (never a matrix norm)."""
    api.no_axis_of_0d(x, axis)
    return _vector_norm(x, ord, normalize_axis(axis, np.ndim(x)), keepdims, "numpy.linalg.vector_norm")


@numpy2(np.linalg, "matrix_norm")
def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    axes = normalize_axis((-2, -1), np.ndim(x))
    return _matrix_norm(x, ord, axes, keepdims)


numpy2(np.linalg, "matmul")(lambda x1, x2, /: api.matmul(x1, x2))


@numpy2(np.linalg, "outer")
def linalg_outer(x1, x2, /):
    if np.ndim(x1) != 1 or np.ndim(x2) != 1:
        raise ValueError(f"Input arrays must be one-dimensional, but they are x1.ndim={np.ndim(x1)} "
                         f"and x2.ndim={np.ndim(x2)}.")
    return api.outer(x1, x2)


@numpy2(np.linalg, "trace")
def linalg_trace(x, /, *, offset=0, dtype=None):
    """Traces of the matrices in x's last two axes (np.trace takes the first two)."""
    return api.trace(x, offset, -2, -1, dtype=dtype)


@numpy2(np.linalg, "diagonal")
def linalg_diagonal(x, /, *, offset=0):
    """Diagonals of the matrices in x's last two axes (np.diagonal takes the first two)."""
    return diagonal(x, offset, -2, -1)


numpy2(np.linalg, "tensordot")(lambda x1, x2, /, *, axes=2: tensordot(x1, x2, axes))


@numpy2(np.linalg, "cross")
def linalg_cross(x1, x2, /, *, axis=-1):
    if np.shape(x1)[axis] != 3 or np.shape(x2)[axis] != 3:
        raise ValueError("Both input arrays must be (arrays of) 3-dimensional vectors, but they are "
                         f"{np.shape(x1)[axis]} and {np.shape(x2)[axis]} dimensional instead.")
    return cross(x1, x2, axis=axis)


def matvec(x1, x2, /):
    """(..., m, n) times (..., n): a matmul with x2 as a column, 2mn flops per matrix."""
    x1, x2 = map(api.as_array, (x1, x2))
    return api.matmul(x1, api.expand_dims(x2, -1))[..., 0]


def vecmat(x1, x2, /):
    """(..., n) times (..., n, m): a matmul with x1 as a row (real: no conjugate), 2nm flops per matrix."""
    x1, x2 = map(api.as_array, (x1, x2))
    return api.matmul(api.expand_dims(x1, -2), x2)[..., 0, :]


for _name, _impl in (("matvec", matvec), ("vecmat", vecmat)):
    if getattr(np, _name, None) is not None:
        # gufuncs, like np.vecdot: they reach tracers through __array_ufunc__
        api.UFUNCS[getattr(np, _name)] = _impl


# --- solvers and decompositions ------------------------------------------------------
def _square(name, a):
    if np.ndim(a) < 2 or np.shape(a)[-1] != np.shape(a)[-2]:
        raise np.linalg.LinAlgError(f"{name}: last 2 dimensions of the array must be square")
    return a


@implements(np.linalg.solve)
def solve(a, b):
    a = _square("solve", a)
    if np.ndim(b) == 1:  # NumPy 2: only a 1-D b is a vector, solved as one column (with each matrix of a)
        column = LU.solve(a, api.reshape(b, (-1, 1)))
        return api.reshape(column, np.shape(column)[:-1])
    return LU.solve(a, b)


implements(np.linalg.inv)(lambda a: LU.inv(_square("inv", a)))
implements(np.linalg.det)(lambda a: LU.det(_square("det", a)))


class SlogdetResult(NamedTuple):
    sign: np.ndarray
    logabsdet: np.ndarray


@implements(np.linalg.slogdet)
def slogdet(a):
    a = _square("slogdet", a)
    return SlogdetResult(LU.det_sign(a), LU.logabsdet(a))


@implements(np.linalg.cholesky)
def cholesky(a, /, *, upper=False):
    return D.cholesky(_square("cholesky", a), upper=bool(upper))


class EighResult(NamedTuple):
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


def _uplo(UPLO):
    uplo = str(UPLO).upper()
    if uplo not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    return uplo


@implements(np.linalg.eigh)
def eigh(a, UPLO="L"):
    # Two primitives, each one LAPACK call (see rules/decompositions.py): the eigenvectors' rule runs
    # only when they are used, and it is refused at a repeated eigenvalue.
    a, uplo = _square("eigh", a), _uplo(UPLO)
    return EighResult(D.eigh_values(a, UPLO=uplo), D.eigh_vectors(a, UPLO=uplo))


@implements(np.linalg.eigvalsh)
def eigvalsh(a, UPLO="L"):
    return D.eigvalsh(_square("eigvalsh", a), UPLO=_uplo(UPLO))


def _at_least_2d(a):
    if np.ndim(a) < 2:
        raise np.linalg.LinAlgError(
            f"{np.ndim(a)}-dimensional array given. Array must be at least two-dimensional")
    return a


class SVDResult(NamedTuple):
    U: np.ndarray
    S: np.ndarray
    Vh: np.ndarray


@implements(np.linalg.svd)
def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    a = _at_least_2d(a)
    if not compute_uv:
        if hermitian:  # NumPy's own route: the eigenvalues' magnitudes, in descending order
            return np.sort(E.absolute(D.eigvalsh(_square("svd", a), UPLO="L")), axis=-1)[..., ::-1]
        return D.svdvals(a)
    if hermitian:
        raise NotImplementedError(
            "numpy.linalg.svd with hermitian=True and compute_uv=True is not supported on traced arrays: "
            "NumPy then builds U and Vh from eigh's eigenvectors with its own signs. Pass hermitian=False "
            "(the same factorization up to those signs), or use np.linalg.eigh")
    m, n = np.shape(a)[-2:]
    if full_matrices and m != n:
        raise NotImplementedError(
            f"numpy.linalg.svd with full_matrices=True (the default) of a {m}×{n} matrix is not supported "
            "on traced arrays: the full U and Vh complete the thin ones with an orthonormal basis that is "
            "not unique, so it has no derivative. Pass full_matrices=False")
    # Two primitives, each one LAPACK call (see rules/decompositions.py), as for eigh: U and V's
    # rule runs only when they are used, and it is refused at a repeated or zero singular value.
    u, v = D.split_vectors(D.svd_vectors(a), m)
    return SVDResult(u, D.svd_values(a), L.swap(v))


if getattr(np.linalg, "svdvals", None) is not None:  # NumPy 2
    implements(np.linalg.svdvals)(lambda x, /: svd(x, compute_uv=False))


class QRResult(NamedTuple):
    Q: np.ndarray
    R: np.ndarray


@implements(np.linalg.qr)
def qr(a, mode="reduced"):
    # One primitive for Q and R stacked (see rules/decompositions.py), split by free slices; mode='r'
    # runs the factorization without forming Q. The derivative needs m ≥ n and full column rank.
    m, n = np.shape(_at_least_2d(a))[-2:]
    if mode == "complete" and m <= n:
        mode = "reduced"  # the same factors: Q is m×m either way
    if mode == "r":
        return D.qr_r(a)
    if mode == "complete":
        raise NotImplementedError(
            f"numpy.linalg.qr with mode='complete' of a tall {m}×{n} matrix is not supported on traced "
            "arrays: no rule covers the m − n columns of Q beyond the reduced ones. Use mode='reduced' "
            "(the default) or mode='r'")
    if mode in ("raw", "economic", "e", "full", "f"):
        raise NotImplementedError(
            f"numpy.linalg.qr with mode={mode!r} is not supported on traced arrays: it returns LAPACK's "
            "Householder form (or is a deprecated alias). Use mode='reduced' (the default) or mode='r'")
    if mode != "reduced":
        raise ValueError(f"Unrecognized mode '{mode}'")
    q, r = D.split_qr(D.qr(a), m, n)
    return QRResult(q, r)


def _static_rcond(name, value):
    if is_traced(value) or np.ndim(value) != 0:
        raise NotImplementedError(
            f"numpy.linalg.{name}: a traced or array-valued rcond/rtol is not supported on traced arrays; "
            "pass one number")
    return float(value)


@implements(np.linalg.pinv)
def pinv(a, rcond=None, hermitian=False, *, rtol=np._NoValue):
    if hermitian:
        raise NotImplementedError(
            "numpy.linalg.pinv with hermitian=True is not supported on traced arrays (NumPy's route reads "
            "one triangle through eigh); pass hermitian=False, the same pseudo-inverse from the SVD")
    a = _at_least_2d(a)
    if rcond is None:  # NumPy's defaults, resolved here so the primitive takes one number
        if rtol is np._NoValue:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(np.shape(a)[-2:]) * np.finfo(np.result_type(a)).eps
        else:
            rcond = rtol
    elif rtol is not np._NoValue:
        raise ValueError("`rtol` and `rcond` can't be both set.")
    rcond = _static_rcond("pinv", rcond)
    if np.size(a) == 0:  # nothing to differentiate: NumPy's empty result
        m, n = np.shape(a)[-2:]
        return np.empty(np.shape(a)[:-2] + (n, m), dtype=np.result_type(a))
    return D.pinv(a, rcond=rcond)


def _lstsq_rank(s, rcond):
    """The number of singular values above rcond times the largest, as LAPACK's gelsd counts them."""
    s = np.asarray(s)
    return np.intc(np.count_nonzero(s > rcond * np.max(s, initial=0.0)))


@implements(np.linalg.lstsq)
def lstsq(a, b, rcond=None):
    # x = pinv(a) @ b: for a full-rank a the least-squares (minimum-norm, when m < n) solution that
    # NumPy's gelsd returns, equal to it up to rounding (not bit for bit). s are the singular values of
    # the `svdvals` primitive (differentiable; LAPACK's gesdd, equal to gelsd's up to rounding); rank
    # counts those above rcond times the largest (a value query, a plain integer); the residuals are
    # NumPy's: the squared norm of each column of b − a x, empty unless rank == n < m.
    if np.ndim(a) != 2 or np.ndim(b) not in (1, 2):
        raise np.linalg.LinAlgError(
            f"{np.ndim(a) if np.ndim(a) != 2 else np.ndim(b)}-dimensional array given. "
            "Array must be two-dimensional")
    (m, n), rows = np.shape(a), np.shape(b)[0]
    if m != rows:
        raise np.linalg.LinAlgError("Incompatible dimensions")
    eps = np.finfo(np.float64).eps  # NumPy solves in double precision
    if rcond is None:
        rcond = eps * max(m, n)
    rcond = _static_rcond("lstsq", rcond)
    if rcond < 0:  # LAPACK: machine precision instead
        rcond = eps / 2
    if m == 0 or n == 0:
        raise NotImplementedError("numpy.linalg.lstsq of an empty matrix is not supported on traced arrays")
    x = L.matmul(pinv(a, rcond=rcond), b)
    s = D.svdvals(a)
    rank = observe(_lstsq_rank, primal(s), rcond=rcond)
    if rank != n or m <= n:
        residuals = np.array([], dtype=np.result_type(a, b, np.float32))
    else:
        r = E.subtract(b, L.matmul(a, x))
        residuals = R.sum(E.square(r), axis=(0,), keepdims=False)
        if np.ndim(b) == 1:
            residuals = api.reshape(residuals, (1,))
    return x, residuals, rank, s
