"""Every primitive's rules, checked numerically at the rule level in float64.

A table of example operands per registered primitive drives the checks:
(a) the JVP against central differences of the implementation, (b) the
dot-product identity <u, J v> = <J^T u, v> between the JVP and the staged VJP,
(c) vector mode (k seeds in one call equal k single calls), (d) symbolic zeros
(a None tangent acts as a zero tangent; needs=False yields a None cotangent).
A primitive registered without an example, a rule or a cost fails a test here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from helpers import (
    assert_close,
    assert_fd_close,
    away_from,
    directional_difference,
    inner,
)

import jacobian_lab as jl
from jacobian_lab.accounting import counting
from jacobian_lab.primitives import REGISTRY, Primitive
from jacobian_lab.tracing import Tracer
from jacobian_lab.rules import shape as S

RNG = np.random.default_rng(20240611)


@dataclass
class Example:
    args: tuple
    params: dict = field(default_factory=dict)
    diff: tuple | None = None  # which operands take tangents; default: all
    label: str = ""

    def __post_init__(self):
        self.args = tuple(np.asarray(a, dtype=a.dtype if isinstance(a, np.ndarray) else np.float64)
                          for a in self.args)
        if self.diff is None:
            self.diff = (True,) * len(self.args)


def ex(*args, diff=None, label="", **params):
    return Example(args, params, diff, label)


# --- operand generators (deterministic) -----------------------------------------
def general(*shape):
    return RNG.uniform(-2.0, 2.0, shape)


def positive(*shape):
    return RNG.uniform(0.5, 2.0, shape)


def nonzero(*shape):
    return RNG.choice([-1.0, 1.0], shape) * RNG.uniform(0.3, 2.0, shape)


def inside_unit(*shape):
    return RNG.uniform(-0.9, 0.9, shape)


def distinct(*shape):
    """Values at least 0.3 apart: no ties, and no near-ties inside a difference step."""
    n = int(np.prod(shape, dtype=np.int64))
    return (RNG.permutation(n) * 0.37 - 1.5 + RNG.uniform(0, 0.05, n)).reshape(shape)


BROADCAST_PAIRS = [((3, 1), (4,)), ((), (2, 3)), ((2, 3), (2, 3)), ((2, 1, 3), (4, 1))]


def binary(make_x, make_y=None):
    make_y = make_y or make_x
    return [ex(make_x(*a), make_y(*b), label=f"{a}x{b}") for a, b in BROADCAST_PAIRS]


def unary(make):
    return [ex(make(3, 4), label="(3,4)"), ex(make(), label="()"), ex(make(2, 1, 3), label="(2,1,3)")]


def separated_pair(a_shape, b_shape):
    """Operands whose broadcast pairs differ by at least 0.3 (max/min away from ties)."""
    full = np.broadcast_shapes(a_shape, b_shape)
    while True:
        a, b = general(*a_shape), general(*b_shape)
        if away_from(np.broadcast_to(a, full) - np.broadcast_to(b, full), 0.0, 0.3):
            return a, b


def quotient_pair(a_shape, b_shape):
    """Operands whose broadcast quotients a / b stay at least 0.1 from an integer: the jumps of
    floor_divide, remainder and fmod."""
    full = np.broadcast_shapes(a_shape, b_shape)
    while True:
        a, b = general(*a_shape), nonzero(*b_shape)
        q = np.broadcast_to(a, full) / np.broadcast_to(b, full)
        if away_from(q - np.round(q), 0.0, 0.1):
            return a, b


def well_conditioned(*batch, n=3):
    """Square matrices near 3·I: far from singular, so solve, inv and det are smooth there."""
    return general(*batch, n, n) + 3.0 * np.eye(n)


def orthogonal(n):
    """A random orthogonal n×n matrix: the Q of a Gaussian matrix's QR factorization."""
    q, r = np.linalg.qr(RNG.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def with_spectrum(*eigenvalues, unread=None):
    """The symmetric Q diag(eigenvalues) Qᵀ; with unread="upper" or "lower", noise in that strict
    triangle, which cholesky and eigh (with UPLO 'L', resp. 'U') never read."""
    q = orthogonal(len(eigenvalues))
    a = (q * eigenvalues) @ q.T
    if unread is not None:
        triangle = np.triu if unread == "upper" else np.tril
        a = a + triangle(general(*a.shape), 1 if unread == "upper" else -1)
    return a


def with_singular_values(m, n, *values):
    """U diag(values) Vᵀ for random orthonormal columns U (m×r) and V (n×r), r = len(values)."""
    r = len(values)
    return (orthogonal(m)[:, :r] * values) @ orthogonal(n)[:, :r].T


#: Primitives on a factorization of their first operand, defined (or differentiable) only where
#: it is nonsingular (LU), positive definite (Cholesky), has distinct nonzero eigen- or singular
#: values (the vectors' derivatives) or full rank (QR, pinv): moved along the diagonal, never filled
#: with a constant.
FACTORIZED = {"solve", "inv", "det", "logabsdet", "det_sign", "cholesky", "eigh_vectors", "svd_vectors",
              "qr", "qr_r", "pinv"}


def sparse_matrix(m, n):
    import scipy.sparse

    from jacobian_lab.rules.sparse import SparseConstant

    random = scipy.sparse.random_array((m, n), density=0.5, format="csr", rng=RNG)
    return SparseConstant(random + scipy.sparse.eye_array(m, n))


def prod_with_zeros():
    x = positive(3, 4)
    x[0, 1] = 0.0               # one zero in row 0
    x[2, 0] = x[2, 3] = 0.0     # two zeros in row 2
    return x


def clip_operand():
    # Well away from the bounds -0.5 and 0.7 used below.
    return np.array([[-1.5, -0.9, -0.2, 0.1], [0.4, 1.2, 2.0, -0.6], [0.65, -0.45, 0.0, 1.0]])


EXAMPLES: dict[str, list[Example]] = {
    # arithmetic, with broadcasting operand shapes
    "add": binary(general),
    "subtract": binary(general),
    "multiply": binary(general),
    "divide": binary(general, nonzero),
    "negative": unary(general),
    "square": unary(general), "one_minus_square": unary(general), "rad2deg": unary(general), "deg2rad": unary(general),
    "reciprocal": unary(nonzero),
    "power": [
        ex(positive(3, 1), RNG.uniform(-1.5, 2.5, (4,)), label="(3,1)**(4,)"),
        ex(positive(2, 3), np.float64(0.5), label="(2,3)**()"),
        ex(positive(), RNG.uniform(-1.0, 3.0, (2, 3)), label="()**(2,3)"),
        # Negative base with a constant integer exponent: only the base takes a tangent.
        ex(general(3, 4), np.float64(3.0), diff=(True, False), label="neg base, p=3"),
    ],
    # transcendentals on their smooth domains
    "exp": unary(general), "expm1": unary(general), "log": unary(positive),
    "log1p": [ex(RNG.uniform(-0.5, 2.0, (3, 4))), ex(RNG.uniform(-0.5, 2.0, ()))],
    "sqrt": unary(positive), "sin": unary(general), "cos": unary(general),
    "tan": [ex(RNG.uniform(-1.2, 1.2, (3, 4))), ex(np.float64(0.3))],
    "arcsin": unary(inside_unit), "arccos": unary(inside_unit), "arctan": unary(general),
    "sinh": unary(general), "cosh": unary(general), "tanh": unary(general),
    "arcsinh": unary(general), "arctanh": unary(inside_unit),
    "arccosh": unary(lambda *shape: RNG.uniform(1.2, 3.0, shape)),
    "log2": unary(positive), "log10": unary(positive), "exp2": unary(general), "cbrt": unary(nonzero),
    "arctan2": binary(general, nonzero), "hypot": binary(nonzero), "hypot_share": binary(nonzero),
    # scipy.special, inside each smooth domain: (0, 1) for logit and ndtri, (-1, 1) erfinv, (0, 2)
    # erfcinv, x > 0 away from the poles for the gamma family, y > 0 for xlogy, y > -1 xlog1py
    "expit": unary(general), "log_expit": unary(lambda *s: RNG.uniform(-30.0, 30.0, s)),
    "logit": unary(lambda *s: RNG.uniform(0.05, 0.95, s)),
    "erf": unary(general), "erfc": unary(general), "erfinv": unary(inside_unit),
    "erfcinv": unary(lambda *s: RNG.uniform(0.1, 1.9, s)), "ndtr": unary(general),
    "log_ndtr": unary(lambda *s: RNG.uniform(-20.0, 5.0, s)), "ndtri": unary(lambda *s: RNG.uniform(0.05, 0.95, s)),
    "gammaln": unary(lambda *s: RNG.uniform(0.3, 6.0, s)), "digamma": unary(lambda *s: RNG.uniform(0.3, 6.0, s)),
    "polygamma": [ex(positive(3, 4), n=1, label="n=1 (3,4)"), ex(positive(), n=2, label="n=2 ()"),
                  ex(RNG.uniform(1.0, 4.0, (2, 1, 3)), n=3, label="n=3 (2,1,3)")],
    "xlogy": binary(general, positive), "xlog1py": binary(general, lambda *s: RNG.uniform(-0.5, 2.0, s)),
    "entr": unary(positive), "rel_entr": binary(positive), "kl_div": binary(positive),
    # the incomplete gamma functions take a tangent in x alone (the shape a held constant)
    **{name: [ex(positive(*a), positive(*b), diff=(False, True), label=f"{a}x{b}") for a, b in BROADCAST_PAIRS]
       for name in ("gammainc", "gammaincc")},
    "gamma": unary(lambda *s: RNG.uniform(0.3, 4.0, s)), "erfcx": unary(general),
    "beta": binary(positive), "betaln": binary(positive),
    # Bessel functions: Y0 and Y1 for x > 0; the scaled I0e and I1e away from their kink at 0
    **{name: unary(general) for name in ("j0", "j1", "i0", "i1", "numpy_i0")},
    "y0": unary(positive), "y1": unary(positive), "i0e": unary(nonzero), "i1e": unary(nonzero),
    **{name: unary(positive) for name in ("k0", "k1", "k0e", "k1e")},
    # of real order v, a constant, in x > 0 (K's and Y's domain, away from ive's kink at 0)
    **{name: [ex(general(*a), positive(*b), diff=(False, True), label=f"{a}x{b}") for a, b in BROADCAST_PAIRS]
       for name in ("jv", "yv", "iv", "kv", "jve", "yve", "ive", "kve")},
    # complete elliptic integrals for m < 1 (ellipkm1: p = 1 - m > 0), on both sides of the series' range |m| < 0.1
    "ellipk": unary(lambda *s: RNG.uniform(-2.0, 0.9, s)), "ellipe": unary(lambda *s: RNG.uniform(-2.0, 0.9, s)),
    "ellipkm1": unary(lambda *s: RNG.uniform(0.1, 3.0, s)), "exprel": unary(lambda *s: RNG.uniform(-3.0, 3.0, s)),
    # Huber losses for δ > 0, r on either side of |r| = δ, where huber is once differentiable
    "huber": binary(positive, general), "pseudo_huber": binary(positive, general),
    # Hurwitz's zeta(s, q) in q > 0, the exponent s > 1 a constant
    "zeta": [ex(RNG.uniform(1.5, 4.0, a), positive(*b), diff=(False, True), label=f"{a}x{b}")
             for a, b in BROADCAST_PAIRS],
    # kinks, sampled away from them
    "absolute": unary(nonzero),
    "maximum": [ex(*separated_pair(a, b), label=f"{a}x{b}") for a, b in BROADCAST_PAIRS],
    "minimum": [ex(*separated_pair(a, b), label=f"{a}x{b}") for a, b in BROADCAST_PAIRS],
    "clip": [
        ex(clip_operand(), lo=-0.5, hi=0.7, label="both bounds"),
        ex(clip_operand(), lo=-0.5, label="lower only"),
        ex(clip_operand(), hi=0.7, label="upper only"),
        ex(np.array([-1.5, -0.2, 0.3, 1.4]), lo=np.array([[-1.0], [0.0], [0.5]]), hi=1.0,
           label="array bound broadcasts (4,) to (3,4)"),
    ],
    "fmax": [ex(*separated_pair(a, b), label=f"{a}x{b}") for a, b in BROADCAST_PAIRS],
    "fmin": [ex(*separated_pair(a, b), label=f"{a}x{b}") for a, b in BROADCAST_PAIRS],
    "remainder": [ex(*quotient_pair(a, b), label=f"{a}x{b}") for a, b in BROADCAST_PAIRS],
    "fmod": [ex(*quotient_pair(a, b), label=f"{a}x{b}") for a, b in BROADCAST_PAIRS],
    # a cast: float64 -> float64 here (finite differences need float64); float32 in test_jacobian
    "astype": [ex(general(3, 4), dtype=np.dtype(np.float64)), ex(general(), dtype=np.dtype(np.float64))],
    "where": [
        ex(np.array([[True], [False], [True]]), general(4), general(), diff=(False, True, True),
           label="cond (3,1), x (4,), y ()"),
        ex(RNG.uniform(size=(2, 3)) > 0.5, general(2, 3), general(2, 3), diff=(False, True, True)),
    ],
    # reductions: axis / keepdims variants
    "sum": [
        ex(general(3, 4), axis=(0,)), ex(general(3, 4), axis=(1,), keepdims=True),
        ex(general(3, 4), axis=(0, 1)), ex(general(2, 3, 4), axis=(0, 2), keepdims=True),
        ex(general(), axis=()),
    ],
    "mean": [
        ex(general(3, 4), axis=(0,)), ex(general(3, 4), axis=(1,), keepdims=True),
        ex(general(3, 4), axis=(0, 1)), ex(general(2, 3, 4), axis=(0, 2), keepdims=True),
    ],
    "prod": [
        ex(prod_with_zeros(), axis=(1,), label="zeros: one and two in a row"),
        ex(prod_with_zeros(), axis=(0,), keepdims=True, label="zeros, axis 0"),
        ex(positive(3, 4), axis=(0, 1)), ex(general(2, 3, 2), axis=(1,)),
    ],
    "max": [
        ex(distinct(3, 4), axis=(1,)), ex(distinct(3, 4), axis=(0,), keepdims=True),
        ex(distinct(2, 3, 4), axis=(0, 2)), ex(distinct(5), axis=(0,)),
    ],
    "min": [
        ex(distinct(3, 4), axis=(1,)), ex(distinct(3, 4), axis=(0,), keepdims=True),
        ex(distinct(2, 3, 4), axis=(0, 2)), ex(distinct(5), axis=(0,)),
    ],
    "cumsum": [ex(general(3, 4), axis=0), ex(general(3, 4), axis=1), ex(general(5), axis=0)],
    "cumprod": [
        ex(nonzero(3, 4), axis=0), ex(nonzero(3, 4), axis=1),
        ex(np.array([0.5, 0.0, 2.0, -0.8, 1.1]), axis=0, label="one zero"),
        ex(np.array([[0.0, 1.5, 0.0, 0.3], [0.7, -1.2, 0.0, 0.0], [1.3, 0.9, -0.6, 1.4]]), axis=1,
           label="no, one and two zeros per line"),
    ],
    # shape operations
    "reshape": [
        ex(general(2, 3), shape=(3, 2)), ex(general(2, 3), shape=(6,)),
        ex(general(), shape=(1, 1)), ex(general(2, 3, 4), shape=(4, 6)),
    ],
    "transpose": [ex(general(2, 3, 4), axes=(2, 0, 1)), ex(general(3, 4), axes=(1, 0))],
    "broadcast_to": [
        ex(general(3, 1), shape=(2, 3, 4)), ex(general(), shape=(2, 3)), ex(general(4), shape=(3, 4)),
    ],
    "getitem": [
        ex(general(4, 5), index=(slice(None, None, -1), 2), label="[::-1, 2]"),
        ex(general(4, 5), index=(slice(1, None, 2), None, Ellipsis), label="[1::2, None, ...]"),
        ex(general(4, 5), index=(Ellipsis, slice(-1, 0, -2)), label="[..., -1:0:-2]"),
        ex(general(3), index=(1,), label="[1] -> 0-d"),
        ex(general(2, 3, 4), index=(0, slice(None), None, -1), label="[0, :, None, -1]"),
    ],
    "embed": [
        ex(general(2, 5), index=(slice(1, 4, 2),), shape=(4, 5)),
        ex(general(), index=(2, 3), shape=(4, 5)),
        ex(general(4, 1, 5), index=(slice(None, None, -1), None), shape=(4, 5)),
    ],
    "take": [
        ex(general(4, 3), indices=np.array([0, 2, 2, 3, 0]), axis=0, label="repeats, axis 0"),
        ex(general(2, 4), indices=np.array([3, 3, 1]), axis=1, label="repeats, axis 1"),
        ex(general(5), indices=np.array([4, 4, 4]), axis=0, label="one index thrice"),
    ],
    "scatter_add": [
        ex(general(5, 3), indices=np.array([0, 2, 2, 3, 0]), axis=0, size=4),
        ex(general(2, 3), indices=np.array([3, 3, 1]), axis=1, size=4),
        ex(general(2, 0), indices=np.array([], dtype=np.intp), axis=1, size=3, label="nothing gathered"),
    ],
    "take_at": [
        ex(general(4, 3), np.array([0, 2, 2, 3, 0]), axis=0, diff=(True, False), label="repeats, axis 0"),
        ex(general(2, 4), np.array([3, 1, 0]), axis=1, diff=(True, False), label="axis 1"),
    ],
    "scatter_add_at": [
        ex(general(5, 3), np.array([0, 2, 2, 3, 0]), axis=0, size=4, diff=(True, False)),
        ex(general(2, 3), np.array([3, 0, 1]), axis=1, size=4, diff=(True, False), label="no repeats"),
    ],
    "put_at": [
        ex(general(5), general(3), np.array([4, 0, 2]), diff=(True, True, False), label="3 of 5"),
        ex(general(2, 4), general(2, 2), np.array([3, 1]), diff=(True, True, False), label="in each row"),
    ],
    "positions": [
        ex(np.array([2, 0, 2]), shape=(3, 4), index=(np.arange(3), S.SLOT), label="z[np.arange(3), y]"),
        ex(np.array([[1], [0]]), np.array([3, 3]), shape=(2, 4), index=(S.SLOT, S.SLOT), label="broadcast"),
        ex(np.array([-1, 0]), shape=(2, 3, 2), index=(slice(None), S.SLOT), label="negative, beside a slice"),
    ],
    "put": [
        ex(general(5), general(3), indices=np.array([0, 2, 4]), picks=np.array([0, 1, 2]), label="3 of 5"),
        ex(general(2, 4), general(2, 2), indices=np.array([3, 1]), picks=np.array([1, 1]), label="one value twice"),
        ex(general(4), general(1), indices=np.array([1, 2]), picks=np.array([0, 0]), label="a scalar broadcast"),
        ex(general(3, 4), general(1, 2), indices=np.array([0, 3]), picks=np.array([1, 0]), label="v over rows"),
        ex(general(3), general(2), indices=np.array([], dtype=np.intp), picks=np.array([], dtype=np.intp),
           label="nothing written"),
    ],
    "concatenate": [
        ex(general(2, 3), general(1, 3), general(4, 3), axis=0),
        ex(general(2, 1), general(2, 3), general(2, 2), axis=1),
    ],
    "sparse_matmul": [
        ex(general(4), matrix=sparse_matrix(3, 4), axis=0, label="A @ vector"),
        ex(general(4, 2), matrix=sparse_matrix(5, 4), axis=0, label="A @ matrix"),
        ex(general(2, 3, 4), matrix=sparse_matrix(3, 4), axis=2, label="stack @ Bᵀ"),
    ],
    "matmul": [
        ex(general(3, 4), general(4, 2), label="matrix @ matrix"),
        ex(general(4), general(4, 2), label="vector @ matrix"),
        ex(general(3, 4), general(4), label="matrix @ vector"),
        ex(general(4), general(4), label="vector @ vector"),
        ex(general(2, 3, 4), general(4, 5), label="stacked @ matrix"),
        ex(general(2, 1, 3, 4), general(5, 4, 2), label="broadcast batch axes"),
        ex(general(4), general(2, 4, 3), label="vector @ stacked"),
    ],
    "solve": [
        ex(well_conditioned(), general(3, 2), label="(3,3) (3,2)"),
        ex(well_conditioned(2), general(2, 3, 1), label="stacked"),
        ex(well_conditioned(), general(4, 3, 2), label="one matrix, stacked b"),
        ex(well_conditioned(2), general(3, 2), label="stacked a, one b"),
    ],
    **{name: [ex(well_conditioned(), label="(3,3)"), ex(well_conditioned(2, n=2), label="(2,2,2)")]
       for name in ("inv", "det", "logabsdet")},
    "det_sign": [ex(well_conditioned()), ex(np.stack([well_conditioned(), -well_conditioned()]))],
    # a polynomial in the entries: also at singular matrices, of rank n - 1 and n - 2
    "cofactor": [
        ex(well_conditioned(), label="(3,3)"), ex(well_conditioned(2, n=2), label="(2,2,2)"),
        ex(with_singular_values(3, 3, 1.8, 0.6), label="rank 2 of 3"),
        ex(with_singular_values(4, 4, 1.6, 0.9), label="rank 2 of 4"), ex(general(1, 1), label="(1,1)"),
    ],
    # the factorization reverse mode keeps for a solve's sweeps, and a solve with it (linear in b)
    # a sort: the order read from values, then the move into it (linear in x, the order an operand)
    "argsort": [ex(general(3, 4), axis=1, label="rows"), ex(np.array([2.0, 1.0, 2.0, 0.5]), axis=0, label="ties")],
    "inverse_permutation": [ex(np.argsort(general(3, 4), axis=1), axis=1, label="rows"),
                            ex(np.argsort(general(3, 4), axis=0), axis=0, label="columns")],
    "reorder": [ex(general(3, 4), np.argsort(general(3, 4), axis=1), diff=(True, False), axis=1, label="rows"),
                ex(general(3, 4), np.argsort(general(3, 4), axis=0), diff=(True, False), axis=0, label="columns")],
    "lu_factor": [ex(well_conditioned(), label="(3,3)")],
    "lu_solve": [ex(REGISTRY["lu_factor"].impl(well_conditioned()), general(3, 2), diff=(False, True), label="a x"),
                 ex(REGISTRY["lu_factor"].impl(well_conditioned()), general(3, 4), diff=(False, True), trans=1,
                    label="a^T x")],
    # the same function by LU, at well-conditioned matrices (elsewhere det's rules take the SVD's)
    "lu_cofactor": [ex(well_conditioned(), label="(3,3)"), ex(well_conditioned(2, n=2), label="(2,2,2)")],
    # linear in its second operand, whose seed axis broadcasts against the matrices
    "cofactor_tangent": [
        ex(well_conditioned(), general(3, 3), diff=(False, True), label="(3,3)"),
        ex(with_singular_values(4, 4, 1.6, 0.9), general(2, 4, 4), diff=(False, True), label="rank 2, batched"),
        ex(well_conditioned(2, n=2), general(2, 2), diff=(False, True), label="stacked a, one t"),
    ],
    # factorizations, at spectra at least 0.4 apart (and singular values away from 0); the random
    # tangents also move the triangle the routines do not read, where the derivative is 0
    "cholesky": [
        ex(with_spectrum(0.5, 1.3, 2.4), label="(3,3)"),
        ex(np.stack([with_spectrum(0.6, 1.5, 2.7), with_spectrum(1.0, 2.0, 3.5)]), label="(2,3,3)"),
        ex(with_spectrum(0.7, 1.4, 2.2, 3.1, unread="upper"), label="(4,4), noise above"),
        ex(with_spectrum(0.8, 1.6, 2.5, unread="lower"), upper=True, label="upper=True, noise below"),
    ],
    **{name: [
        ex(with_spectrum(0.5, 1.3, 2.4, 3.6, unread="upper"), label="(4,4), noise above"),
        ex(with_spectrum(-1.5, 0.4, 2.0, unread="lower"), UPLO="U", label="indefinite, UPLO='U', noise below"),
        ex(np.stack([with_spectrum(-0.8, 0.3, 1.1), with_spectrum(0.5, 1.5, 2.5)]), label="(2,3,3)"),
    ] for name in ("eigvalsh", "eigh_values", "eigh_vectors")},
    **{name: [
        ex(with_singular_values(3, 3, 2.5, 1.2, 0.4), label="(3,3)"),
        ex(with_singular_values(4, 2, 2.0, 0.7), label="(4,2)"),
        ex(with_singular_values(2, 4, 1.8, 0.6), label="(2,4)"),
        ex(np.stack([with_singular_values(3, 2, 1.5, 0.5), with_singular_values(3, 2, 3.0, 1.0)]), label="(2,3,2)"),
    ] for name in ("svdvals", "svd_values", "svd_vectors")},
    # QR (m ≥ n) and the pseudo-inverse at full rank: singular values at least 0.4 from 0
    **{name: [
        ex(with_singular_values(4, 3, 2.5, 1.2, 0.5), label="(4,3)"),
        ex(with_singular_values(3, 3, 2.0, 1.1, 0.4), label="(3,3)"),
        ex(np.stack([with_singular_values(5, 2, 1.5, 0.6), with_singular_values(5, 2, 3.0, 1.0)]), label="(2,5,2)"),
    ] for name in ("qr", "qr_r")},
    "pinv": [
        ex(with_singular_values(4, 3, 2.5, 1.2, 0.5), rcond=1e-15, label="(4,3)"),
        ex(with_singular_values(3, 3, 2.0, 1.1, 0.4), rcond=1e-15, label="(3,3)"),
        ex(with_singular_values(2, 4, 1.8, 0.6), rcond=1e-15, label="(2,4)"),
        ex(np.stack([with_singular_values(3, 2, 1.5, 0.5), with_singular_values(3, 2, 3.0, 1.0)]), rcond=1e-15,
           label="(2,3,2)"),
    ],
    # no derivative: only impl and cost
    **{name: [ex(general(3, 4)), ex(np.array([0.0, -1.5, 2.5, np.nan, np.inf]))]
       for name in ("sign", "floor", "ceil", "rint", "trunc", "isnan", "isinf", "isfinite", "signbit",
                    "stop_gradient")},
    "floor_divide": [ex(*quotient_pair((3, 1), (4,))),
                     ex(np.array([7.0, -7.0, 2.5, np.inf]), np.array([2.0, 2.0, -0.5, 3.0]))],
    "heaviside": [ex(general(3, 4), np.float64(0.5)), ex(np.array([0.0, -1.5, 2.5, np.nan]), np.array([0.25]))],
    **{name: [ex(general(3, 1), general(4)), ex(np.array([1.0, 2.0]), np.array([1.0, 3.0]))]
       for name in ("greater", "greater_equal", "less", "less_equal", "equal", "not_equal")},
    "logical_not": [ex(np.array([True, False, True]))],
    **{name: [ex(np.array([[True], [False]]), np.array([True, False, False]))]
       for name in ("logical_and", "logical_or", "logical_xor")},
}

DIFFERENTIABLE = sorted(n for n, p in REGISTRY.items() if p.differentiable)
NONDIFFERENTIABLE = sorted(n for n, p in REGISTRY.items() if not p.differentiable)
CASES = [
    pytest.param(name, i, id=f"{name}-{e.label or i}")
    for name in DIFFERENTIABLE for i, e in enumerate(EXAMPLES.get(name, []))
]
# Examples with two or more operands that take tangents: one can be held constant.
MULTI_CASES = [c for c in CASES if sum(EXAMPLES[c.values[0]][c.values[1]].diff) >= 2]


# --- registry completeness -----------------------------------------------------------
def missing_parts(prim: Primitive) -> list[str]:
    """What a registered primitive lacks: impl and cost always, jvp and vjp when differentiable."""
    needed = ("impl", "cost") + (("jvp", "vjp") if prim.differentiable else ())
    return [part for part in needed if not callable(getattr(prim, part, None))]


def test_registry_holds_the_expected_families():
    # A floor, not an exact list: new primitives are welcome, losing one is not.
    expected = {"add", "multiply", "divide", "power", "exp", "sin", "sum", "max", "cumsum",
                "reshape", "getitem", "take", "scatter_add", "concatenate", "matmul", "where", "clip"}
    assert expected <= set(REGISTRY)
    assert all(REGISTRY[name].name == name for name in REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_primitive_is_complete(name):
    assert missing_parts(REGISTRY[name]) == []


@pytest.mark.parametrize("name", NONDIFFERENTIABLE)
def test_nondifferentiable_primitives_have_no_rules(name):
    prim = REGISTRY[name]
    assert prim.jvp is None and prim.vjp is None


def test_completeness_check_catches_a_missing_rule():
    bare = Primitive("bare", np.negative, lambda out, x: (np.size(out), 0))
    assert missing_parts(bare) == ["jvp", "vjp"]
    assert missing_parts(Primitive("flat", np.sign, None, differentiable=False)) == ["cost"]


def test_every_registered_primitive_has_an_example():
    assert sorted(set(REGISTRY) - set(EXAMPLES)) == []


def test_every_differentiable_primitive_has_a_rule_example():
    assert [name for name in DIFFERENTIABLE if not EXAMPLES.get(name)] == []


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_impl_and_cost_run_on_every_example(name):
    prim = REGISTRY[name]
    for e in EXAMPLES[name]:
        with np.errstate(invalid="ignore"):
            out = prim.impl(*e.args, **e.params)
        flops, transcendentals = prim.cost(out, *e.args, **e.params)
        assert int(flops) == flops >= 0 and int(transcendentals) == transcendentals >= 0


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("name", NONDIFFERENTIABLE)
def test_nondifferentiable_output_is_a_plain_array(name, mode):
    """Engines evaluate such primitives on primal values: no tracer, no derivative."""
    prim, e = REGISTRY[name], EXAMPLES[name][0]
    outputs, boolean = [], e.args[0].dtype == bool  # a logical operation: trace x, pass it on as x > 0.5
    integers = e.args[0].dtype.kind == "i"  # an index: its operands as they are, beside a traced x

    def f(x):
        outputs.append(prim(x > 0.5 if boolean else e.args[0] if integers else x, *e.args[1:], **e.params))
        return x * 2.0

    J = jl.jacobian(f, e.args[0] * 1.0, mode=mode)
    assert not isinstance(outputs[0], Tracer)
    np.testing.assert_array_equal(outputs[0], prim.impl(*e.args, **e.params))
    np.testing.assert_allclose(J.reshape(e.args[0].size, -1), 2.0 * np.eye(e.args[0].size))


# --- numerical checks of the rules --------------------------------------------------
def _setup(name, i):
    prim, e = REGISTRY[name], EXAMPLES[name][i]
    out = prim.impl(*e.args, **e.params)
    return prim, e, out


def _rng(name, i):
    """Random directions fixed per example, whatever subset or order of tests runs."""
    return np.random.default_rng([i, *name.encode()])


def _directions(e, k, rng):
    return [rng.standard_normal((k,) + a.shape) if d else None for a, d in zip(e.args, e.diff)]


def _jvp(prim, e, out, tangents):
    y_dot = prim.jvp(tuple(tangents), out, *e.args, **e.params)
    k = next(np.shape(t)[0] for t in tangents if t is not None)
    assert np.shape(y_dot) == (k,) + np.shape(out), "tangent must be (k, *out.shape)"
    return np.asarray(y_dot)


def _pullback(prim, e, out, needs=None):
    return prim.vjp(tuple(e.diff if needs is None else needs), out, *e.args, **e.params)


def _fd(prim, e, directions):
    return directional_difference(lambda *a: prim.impl(*a, **e.params), e.args,
                                  [None if d is None else d[0] for d in directions])


@pytest.mark.parametrize("name, i", CASES)
def test_jvp_matches_finite_differences(name, i):
    prim, e, out = _setup(name, i)
    before = [a.copy() for a in e.args]
    v = _directions(e, 1, _rng(name, i))
    assert_fd_close(_jvp(prim, e, out, v)[0], _fd(prim, e, v), "all operands")
    for j, d in enumerate(v):  # each operand on its own
        if d is not None:
            only = [d if jj == j else None for jj in range(len(v))]
            assert_fd_close(_jvp(prim, e, out, only)[0], _fd(prim, e, only), f"operand {j}")
    for a, b in zip(e.args, before):  # rules never write into their operands
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name, i", CASES)
def test_dot_product_identity(name, i):
    prim, e, out = _setup(name, i)
    rng = _rng(name, i)
    v = _directions(e, 1, rng)
    u = rng.standard_normal((1,) + out.shape)
    Jv = _jvp(prim, e, out, v)
    JTu = _pullback(prim, e, out)(u)
    assert len(JTu) == len(e.args)
    for ct, a, d in zip(JTu, e.args, e.diff):
        if d:
            assert np.shape(ct) == (1,) + a.shape, "cotangent must be (k, *operand.shape)"
    lhs = inner(u, Jv)
    rhs = sum(inner(ct, t) for ct, t in zip(JTu, v) if t is not None)
    scale = max(abs(lhs), abs(rhs), np.linalg.norm(u) * np.linalg.norm(Jv), 1e-300)
    assert abs(lhs - rhs) <= 1e-10 * scale, (lhs, rhs)


@pytest.mark.parametrize("name, i", CASES)
def test_vector_mode_equals_single_seeds(name, i):
    prim, e, out = _setup(name, i)
    k, rng = 3, _rng(name, i)
    V = _directions(e, k, rng)
    together = _jvp(prim, e, out, V)
    for s in range(k):
        single = _jvp(prim, e, out, [None if t is None else t[s:s + 1] for t in V])
        assert_close(together[s], single[0], 1e-13, f"tangent seed {s}")

    U = rng.standard_normal((k,) + out.shape)
    pullback = _pullback(prim, e, out)  # one staged pullback serves every sweep
    together = pullback(U)
    for s in range(k):
        single = pullback(U[s:s + 1])
        for j, (ct_all, ct_one) in enumerate(zip(together, single)):
            if e.diff[j]:
                assert np.shape(ct_all) == (k,) + e.args[j].shape
                assert_close(ct_all[s], ct_one[0], 1e-13, f"cotangent seed {s}, operand {j}")


@pytest.mark.parametrize("name, i", MULTI_CASES)
def test_symbolic_zero_tangent_acts_as_zero(name, i):
    prim, e, out = _setup(name, i)
    v = _directions(e, 2, _rng(name, i))
    for j in [j for j, d in enumerate(e.diff) if d]:
        with_none = [None if jj == j else t for jj, t in enumerate(v)]
        with_zero = [np.zeros_like(v[j]) if jj == j else t for jj, t in enumerate(v)]
        assert_close(_jvp(prim, e, out, with_none), _jvp(prim, e, out, with_zero), 1e-14, f"operand {j}")


@pytest.mark.parametrize("name, i", CASES)
def test_vjp_skips_operands_not_needed(name, i):
    prim, e, out = _setup(name, i)
    u = _rng(name, i).standard_normal((2,) + out.shape)
    full = _pullback(prim, e, out)(u)
    for j in range(len(e.args)):
        needs = tuple(d and jj != j for jj, d in enumerate(e.diff))
        partial = _pullback(prim, e, out, needs)(u)
        assert len(partial) == len(e.args)
        assert partial[j] is None, f"operand {j} was not needed but got a cotangent"
        for jj, need in enumerate(needs):
            if need:
                assert_close(partial[jj], full[jj], 1e-14, f"operand {jj}")
            else:
                assert partial[jj] is None


def _rule_work(prim, e, args):
    """Counted work of a JVP and a staged VJP with one sweep, 2 seeds each, at operands `args`."""
    e = Example(args, e.params, e.diff)
    with np.errstate(all="ignore"), counting() as c:
        out = prim.impl(*e.args, **e.params)
        _jvp(prim, e, out, [None if t is None else np.ones_like(t) for t in _directions(e, 2, RNG)])
        _pullback(prim, e, out)(np.ones((2,) + np.shape(out)))
    return c.total()


@pytest.mark.parametrize("name, i", CASES)
def test_rule_work_depends_on_shapes_unless_marked_reads_values(name, i):
    """Auto mode reuses costs for a tape of the same shapes; only `reads_values`
    primitives (whose operand values then enter the key) may do other work at
    other values, such as all zeros (prod's exact route) or all ties (max, min)."""
    prim, e, _ = _setup(name, i)
    keyed_by_value = [a.ndim == 0 and not d for a, d in zip(e.args, e.diff)]  # scalar constants

    def other(a, v):
        if name in FACTORIZED and a is e.args[0]:  # singular at a constant fill: shift the matrix instead
            return a + (1.0 + v) * np.eye(*a.shape[-2:])
        return np.full_like(a, v)

    work = {_rule_work(prim, e, [a if a.dtype.kind != "f" or by_value else other(a, v)
                                 for a, by_value in zip(e.args, keyed_by_value)])
            for v in (0.0, 1.0)} | {_rule_work(prim, e, e.args)}
    assert len(work) == 1 or prim.reads_values, work


# --- rules written with primitives nest: second derivatives of the decompositions ---------------
SPD_NOISY = with_spectrum(0.6, 1.4, 2.5, unread="upper")
NESTED = {
    "cholesky": (lambda a: np.linalg.cholesky(a), SPD_NOISY),
    "cholesky upper": (lambda a: np.linalg.cholesky(a.T, upper=True), SPD_NOISY),
    "eigvalsh": (lambda a: np.linalg.eigvalsh(a), SPD_NOISY),
    "eigh": (lambda a: np.linalg.eigh(a).eigenvectors * np.linalg.eigh(a).eigenvalues, SPD_NOISY),
    "singular values (4,3)": (lambda a: np.linalg.svd(a, compute_uv=False), with_singular_values(4, 3, 2.2, 1.3, 0.5)),
    "singular values (2,3)": (lambda a: np.linalg.svd(a, compute_uv=False), with_singular_values(2, 3, 1.9, 0.8)),
    "2-norm and nuclear norm": (lambda a: np.linalg.norm(a, 2) * np.linalg.norm(a, "nuc"),
                                with_singular_values(3, 3, 2.0, 1.1, 0.3)),
    "qr (4,3)": (lambda a: np.concatenate([np.linalg.qr(a).Q, np.linalg.qr(a, mode="r")]),
                 with_singular_values(4, 3, 2.1, 1.2, 0.6)),
    "pinv (4,3)": (lambda a: np.linalg.pinv(a), with_singular_values(4, 3, 2.1, 1.2, 0.6)),
    "det, rank 2 of 3": (lambda a: np.linalg.det(a), with_singular_values(3, 3, 1.8, 0.6)),
    "det, rank 2 of 4": (lambda a: np.linalg.det(a), with_singular_values(4, 4, 1.6, 0.9)),
    "pinv (2,3)": (lambda a: np.linalg.pinv(a), with_singular_values(2, 3, 1.7, 0.7)),
}


@pytest.mark.parametrize("inner", ["forward", "reverse"])
@pytest.mark.parametrize("name", NESTED)
def test_decomposition_rules_nest_for_second_derivatives(name, inner):
    """The forward engine differentiates the inner engine's derivative (the rules run on its
    tracers): the result matches central differences of that derivative."""
    f, a = NESTED[name]
    rng = np.random.default_rng(len(name))
    v, u = rng.standard_normal(a.shape), rng.standard_normal(a.shape)
    forward, reverse = jl.engines.get("forward"), jl.engines.get("reverse")
    w = rng.standard_normal(np.shape(f(a)))

    def derivative(b):  # J(b) v, or J(b)ᵀ w
        if inner == "forward":
            return forward.jvp(f, b, v[None])[1][0]
        return reverse.vjp(f, b)[1](w[None])[0]

    second = forward.jvp(derivative, a, u[None])[1][0]
    assert_fd_close(second, directional_difference(derivative, (a,), (u,)), name)
    assert np.abs(second).max() > 1e-3  # a second derivative that is there, not a constant rule's 0


def _shapes_and_orders(v):
    """Shape primitives, a sort, a cumulative sum and a max on values of an enclosing trace."""
    W = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [0.1, 0.2, 0.3]])
    return (np.sum(np.sin(v.reshape(3, 1)) * (v[::-1].reshape(1, 3) @ W)) + np.linalg.norm(np.sort(v)) ** 3
            + np.max(np.cumsum(v * v)) + np.exp(v).T @ np.tanh(np.concatenate([v[1:], v[:1]])))


@pytest.mark.parametrize("outer", ["forward", "reverse"])
@pytest.mark.parametrize("inner", ["forward", "reverse"])
def test_engines_nest_in_either_order_for_hessians(outer, inner):
    """An engine differentiates the other's (or its own) gradient: each primitive, on values that
    are themselves traced, is dispatched again to the enclosing trace. Reference: central
    differences of the exact gradient."""
    x = np.array([0.3, 1.2, -0.7])
    engine = jl.engines.get

    def gradient(v):
        if inner == "forward":
            return engine("forward").jvp(_shapes_and_orders, v, np.eye(3))[1]
        return engine("reverse").vjp(_shapes_and_orders, v)[1](np.ones(1))[0]

    if outer == "forward":
        hessian = engine("forward").jvp(gradient, x, np.eye(3))[1]
    else:
        hessian = engine("reverse").vjp(gradient, x)[1](np.eye(3))
    reference = np.stack([(jl.grad(_shapes_and_orders)(x + 1e-5 * e) - jl.grad(_shapes_and_orders)(x - 1e-5 * e))
                          / 2e-5 for e in np.eye(3)])
    assert_close(hessian, reference, 1e-8, f"{outer} over {inner}")
    assert np.abs(hessian - hessian.T).max() < 1e-12  # symmetric, as a Hessian is


@pytest.mark.parametrize("a", [with_singular_values(3, 3, 2.0, 2.0, 0.5), with_singular_values(4, 2, 1.5, 0.0)],
                         ids=["repeated", "zero"])
def test_second_derivative_of_singular_values_needs_distinct_nonzero_ones(a):
    forward, ones = jl.engines.get("forward"), np.ones((1,) + a.shape)

    def derivative(b):
        return forward.jvp(lambda c: np.linalg.svd(c, compute_uv=False), b, ones)[1]

    assert np.all(np.isfinite(derivative(a)))  # the first derivative needs only the vectors' values
    with pytest.raises(jl.DerivativeError, match="singular vectors .* equal or one is zero"):
        forward.jvp(derivative, a, ones)
