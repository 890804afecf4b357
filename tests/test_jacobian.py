"""Full Jacobians of plain NumPy functions: forward vs reverse vs finite differences.

Each case is an unchanged NumPy function. Both accumulation orders, with one seed
per pass, two seeds per pass and the default batching, must agree with each
other to 1e-12 and with an independent reference (central differences of the
plain function, or a Jacobian written out by hand) to 1e-6.
"""
from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse
import scipy.special as sc
from helpers import assert_close, assert_fd_close, central_differences

import jacobian_lab as jl
from jacobian_lab import numpy_api, primitives, scipy_special

RNG = np.random.default_rng(7)
BATCH_SIZES = (1, 2, None)
MODES = ("forward", "reverse", "auto")

x4 = np.array([0.3, -1.2, 2.0, 0.8])
p4 = np.array([0.4, 1.3, 2.1, 0.7])          # positive
u4 = np.array([0.35, -0.6, 0.15, 0.8])       # inside (-1, 1)
X34 = RNG.uniform(-2, 2, (3, 4))
P34 = RNG.uniform(0.5, 1.5, (3, 4))
X234 = RNG.uniform(-1, 1, (2, 3, 4))
A42 = RNG.standard_normal((4, 2))
A23 = RNG.standard_normal((2, 3))
M44 = RNG.standard_normal((4, 4))
B142 = RNG.standard_normal((1, 4, 2))
W33 = RNG.uniform(-1, 1, (3, 3)) + 3 * np.eye(3)  # well conditioned, positive determinant
Q33 = np.linalg.qr(RNG.standard_normal((3, 3)))[0]
SPARSE34 = scipy.sparse.csr_array(np.array([[1.5, 0.0, 0.0, -2.0], [0.0, 0.5, 0.0, 0.0], [3.0, 0.0, 0.0, 1.0]]))
SPD33 = (Q33 * [0.6, 1.7, 3.1]) @ Q33.T + np.triu(RNG.uniform(-1, 1, (3, 3)), 1)  # noise where eigh does not read


def _prod_zeros():
    x = RNG.uniform(0.5, 1.5, (3, 4))
    x[0, 2] = 0.0
    x[2, 1] = x[2, 3] = 0.0
    return x


@dataclass
class Case:
    name: str
    f: Callable
    x: np.ndarray
    reference: Callable | None = None  # analytic Jacobian x -> J; default central differences

    def expected(self):
        if self.reference is not None:
            return self.reference(self.x)
        return central_differences(self.f, self.x)


def _fan_out(x):
    y = x
    for _ in range(4):
        y = y * x + np.sin(x)
    return y + sum(x)  # builtin sum iterates x: every element fans out again


def _branchy(x):
    if x[0] > 0:
        return x * x[1]
    return np.exp(x)


def _loop_until(x):
    y = x
    while np.max(y) < 5.0:
        y = y * 1.5 + 0.1
    return y


def _seed_grad(x):
    e = np.exp(x ** 2)
    return np.cos(e) * e * 2 * x


def _assigned(x):
    y = np.sin(x)
    y[[0, 2, 0]] = x[1:] ** 2  # a repeated index: the last write wins, as in NumPy
    y[1:3] *= x[:2]  # an in-place operator on a view writes through it
    z = np.zeros_like(x)  # an array made like x, without a derivative until written
    z[::2] = x[1::2]
    return y + z


def _outer_and_out(x):
    pairs = np.subtract.outer(x, x[:2]) * np.multiply.outer(x[::-1], x[:2])  # every pair, (4, 2)
    y = np.zeros_like(pairs)
    np.exp(pairs, out=y)  # out= a traced array: written into it, as NumPy writes
    return y.sum(axis=1)


def _eye(n):
    return np.eye(n)


CASES = [
    # --- compositions of every supported ufunc ---
    Case("seed sum(sin(exp(x**2)))", lambda x: np.sum(np.sin(np.exp(x ** 2))), x4, _seed_grad),
    Case("arithmetic", lambda x: (x * 2.0 - 1.0) / (x ** 2 + 1.0) + (-x) + (+x) - np.positive(x) * x, x4),
    Case("ufunc calls", lambda x: np.subtract(np.add(x, 1.0), np.multiply(x, x)) / np.divide(3.0, x ** 2 + 1),
         x4),
    Case("powers", lambda x: x ** 3 + x ** 0.5 + x ** -1.5 + np.power(x, 2) + np.square(x) + 2.0 ** x + x ** x, p4),
    Case("x**2 on all signs", lambda x: x ** 2, x4, lambda x: np.diag(2 * x)),
    Case("sqrt reciprocal", lambda x: np.sqrt(x) + np.reciprocal(x) + 1.0 / x, p4,
         lambda x: np.diag(0.5 / np.sqrt(x) - 2.0 / x ** 2)),
    Case("exp log", lambda x: np.exp(x) * np.log(x) + np.expm1(x) - np.log1p(x), p4),
    Case("trig", lambda x: np.sin(x) * np.cos(x) + np.tan(x), u4),
    Case("inverse trig", lambda x: np.arcsin(x) + np.arccos(x / 2) * np.arctan(x), u4),
    Case("hyperbolic", lambda x: np.sinh(x) + np.cosh(x) * np.tanh(x), x4),
    Case("inverse hyperbolic", lambda x: np.arcsinh(x) + np.arctanh(x / 2) + np.arccosh(x ** 2 + 1.5), u4),
    Case("other bases", lambda x: np.log2(x) + np.log10(x) * np.exp2(x) + np.cbrt(x), p4),
    Case("angles", lambda x: np.rad2deg(x) * np.deg2rad(x ** 2), x4, lambda x: np.diag(3 * x ** 2)),
    Case("arctan2 hypot", lambda x: np.arctan2(x, x[::-1] + 3.0) * np.hypot(x, 1.0) + np.logaddexp(x, 0.5), x4),
    Case("scipy.special", lambda x: sc.expit(x) * sc.logit(x / 3) + sc.log_expit(-x) + sc.erf(x) * sc.erfc(x / 3)
         + sc.erfinv(x / 3 - 0.2) - sc.erfcinv(x / 2) + sc.ndtr(x) * sc.log_ndtr(x - 1.0) + sc.ndtri(x / 3)
         + sc.gammaln(x) * sc.psi(x) + sc.digamma(x[::-1]) + sc.xlogy(x, x[::-1]) + sc.xlog1py(x[::-1], x / 3)
         + sc.entr(x / 3) + sc.softplus(x) + sc.rel_entr(x, x[::-1]) * sc.kl_div(x / 2, x[::-1])
         + sc.gammainc(2.5, x) * sc.gammaincc(0.5, x), p4),
    Case("scipy.special gamma, beta and Bessel functions", lambda x: sc.gamma(x) * sc.beta(x, x[::-1])
         + sc.betaln(x, 2.0) + sc.j0(x) * sc.j1(x) + sc.y0(x) - sc.y1(x) + sc.i0(x) * sc.i1(x) + sc.i0e(x)
         + sc.i1e(x) * sc.erfcx(x) + np.i0(x / 2), p4),
    Case("scipy.special Bessel functions of real order, elliptic integrals, exprel, Huber losses and zeta in q",
         lambda x: sc.jv(1.5, x) * sc.yv(0.5, x) + sc.iv(2.0, x) + sc.kv(0.3, x) * sc.jve(2.5, x) + sc.yve(1.0, x)
         + sc.ive(0.5, x) * sc.kve(1.5, x) + sc.k0(x) + sc.k1(x) * sc.k0e(x) + sc.k1e(x) + sc.ellipk(x / 4)
         + sc.ellipkm1(x) * sc.ellipe(x / 5) + sc.exprel(x - 1.0) + sc.huber(x[::-1], x) + sc.pseudo_huber(x[::-1], x)
         + sc.zeta(2.5, x + 0.5),
         p4),
    Case("abs and sign", lambda x: np.abs(x) * np.sign(x) + np.absolute(x) ** 3 + abs(x), x4,
         lambda x: np.diag(1.0 + 3 * x * np.abs(x) + np.sign(x))),
    Case("casts between float dtypes", lambda x: x.astype(np.float32).astype(np.float64) * 0.0 + x.astype(np.float64) ** 2
         + np.float_power(x, 2.0), x4, lambda x: np.diag(4 * x)),
    Case("rounding is piecewise constant", lambda x: x * np.floor(x) + np.ceil(x) + np.rint(x) * np.trunc(x) * x,
         x4 + 0.05, lambda x: np.diag(np.floor(x) + np.rint(x) * np.trunc(x))),
    Case("comparisons as masks",
         lambda x: (x > 0) * x + (x >= 0.5) * x ** 2 + (x < 0) * np.sin(x) + (x <= 1) * x
         + (x == x[0]) * x + (x != 5.0) * x + np.isfinite(x) * x + np.isnan(x) + np.isinf(x) * x, x4),
    Case("logical operations on traced values", lambda x: np.logical_and(x, x > 0.5) * x
         + np.logical_or(x - 0.2, x < 0) * x ** 2 + np.logical_xor(x, x > 1.0) * x + np.logical_not(x - 2.5) * x, x4),
    Case("integer quotients", lambda x: x % 0.7 + np.fmod(x, 0.7) * (x // 0.45) + divmod(x, 0.9)[1]
         + 2.5 % (x + 3.0) + np.mod(x, -1.1), x4,
         lambda x: np.diag(3.0 + x // 0.45 - np.floor(2.5 / (x + 3.0)))),
    Case("NaN-ignoring extremes, copysign, heaviside",
         lambda x: np.fmax(x, [np.nan, 0.5, 1.0, np.nan]) + np.fmin(x ** 2, x)
         + np.copysign(x, [-1.0, 1.0, -1.0, 1.0]) * np.heaviside(x, 0.5) + np.heaviside(x - x, x), x4,
         lambda x: np.diag(np.where(np.isnan([np.nan, 0.5, 1.0, np.nan]) | (x > [0, 0.5, 1.0, 0]), 1.0, 0.0)
                           + np.where(x ** 2 < x, 2 * x, 1.0) + [-1.0, 0.0, -1.0, 1.0] + 1.0)),
    Case("maximum minimum", lambda x: np.maximum(x, 0.5) + np.minimum(x, x ** 2) + np.maximum(x[::-1], x), x4),
    Case("clip away from bounds", lambda x: np.clip(x, -1.0, 1.0) * x + x.clip(min=0.0) + np.clip(x, None, 1.0), x4),
    Case("where", lambda x: np.where(x > 0, np.log(np.abs(x) + 1), x ** 3), x4),
    Case("where with constant branch", lambda x: np.where(x > 0.5, x, np.zeros(4)) + np.where([1, 0, 1, 0], 2.0, x),
         x4, lambda x: np.diag((x > 0.5) + np.array([0.0, 1.0, 0.0, 1.0]))),
    # --- reductions ---
    Case("sum axis 0", lambda X: np.sum(X ** 2, axis=0), X34),
    Case("sum keepdims", lambda X: np.sum(np.sin(X), axis=1, keepdims=True) * X, X34),
    Case("sum over axes of 3-d", lambda X: X.sum(axis=(0, 2)) + np.sum(X, axis=-2).sum(axis=0)[:3], X234),
    Case("mean", lambda X: np.mean(X, axis=-1, keepdims=True) - X + X.mean() + np.mean(X ** 2, axis=0)[None, :], X34),
    Case("prod", lambda X: np.prod(X, axis=1) + X.prod() + np.prod(X, axis=0, keepdims=True).sum(), P34),
    Case("prod with zeros", lambda X: np.concatenate([np.prod(X, axis=1), np.prod(X, axis=0)]), _prod_zeros()),
    Case("sort, median and quantile away from ties", lambda X: np.sort(X, axis=1) * X + np.median(X, axis=0)
         + np.quantile(X, 0.3) - np.sort(X.ravel())[:4].reshape(1, 4), X34),
    Case("max min away from ties", lambda X: np.max(X, axis=0) + np.min(X, axis=1, keepdims=True) + np.amax(X), X34),
    Case("cumprod, with zeros", lambda X: np.cumprod(X, axis=1) + X.cumprod(axis=0) + np.cumprod(X).reshape(3, 4),
         _prod_zeros()),
    Case("cumsum", lambda X: np.cumsum(X, axis=1) * X + np.cumsum(X).reshape(3, 4) + np.cumsum(X, axis=-2), X34),
    Case("ufunc reduce and accumulate", lambda X: np.add.reduce(X) * np.multiply.reduce(X, axis=1).sum()
         + np.maximum.reduce(X, axis=1).sum() + np.add.accumulate(X, axis=1).sum(axis=0)
         + np.multiply.accumulate(X, axis=0)[-1], X34),
    # --- indexing ---
    Case("slices with negative steps and None", lambda X: X[::-1, None, 1::2] * 2.0 + X[-1, ::-2] + X[..., 0:1, None],
         X34),
    Case("integer array with repeats", lambda x: x[[0, 2, 2, 0, 3]] ** 2 + x[np.array([-1, -1, 1, 0, 0])], x4),
    Case("boolean mask", lambda X: X[X > 0] * 3.0 + np.sum(X[np.abs(X) < 1.0] ** 2), X34),
    Case("non-adjacent advanced indices", lambda X: X[[0, 1], :, [1, 3]] * X[1, [2, 2, 0], 0], X234),
    Case("mixed slice and advanced", lambda X: X[1:, [0, 0, 2]] + X[[2, 0], 1:3].sum(), X34),
    Case("item assignment", _assigned, x4),
    Case("ufunc outer and out=", _outer_and_out, x4),
    Case("weighted cov", lambda x: np.cov(np.outer(x, x[:3]), fweights=[1, 3, 2])[0]
         + np.cov(np.outer(x, x[:3]).T, rowvar=False, aweights=x[:3] ** 2)[1], p4),
    Case("running extremes (drawdown)", lambda x: (np.maximum.accumulate(x) - x) / np.maximum.accumulate(x)
         + np.minimum.accumulate(np.outer(x, x), axis=1)[:, -1], p4),
    Case("sliding windows, logaddexp.reduce",
         lambda x: np.lib.stride_tricks.sliding_window_view(x, 2) @ np.array([0.25, 0.75])
         + np.logaddexp.reduce(x) + np.logaddexp.reduce(np.outer(x, x), axis=1)[:3]
         + np.logaddexp2.reduce(x.reshape(2, 2), axis=0, keepdims=True).sum(), x4),
    Case("take", lambda x: np.take(x, [0, -1, 1, -1]) + np.take(np.outer(x, x), [[1, 2], [2, 2]], axis=1).sum(), x4),
    Case("iteration and indexing", lambda x: np.stack([xi * x[0] for xi in x]), x4),
    # --- linear algebra ---
    Case("traced @ constant", lambda X: X @ A42, X34,
         lambda X: np.einsum("ik,lj->ijkl", np.eye(3), A42)),
    Case("constant @ traced", lambda X: np.matmul(A23, X), X34,
         lambda X: np.einsum("ik,jl->ijkl", A23, np.eye(4))),
    Case("traced @ traced", lambda X: X @ X.T, X34),
    Case("vector @ matrix and matrix @ vector", lambda x: np.concatenate([x @ M44, M44 @ x, np.atleast_1d(x @ x)]),
         x4),
    Case("stacked matmul with broadcasting", lambda X: X @ B142 + np.matmul(X, X.transpose(0, 2, 1)).sum(axis=-1)[..., None],
         X234),
    Case("scipy.sparse matrix @ traced and traced @ matrix", lambda X: SPARSE34 @ X.T @ SPARSE34, X34,
         lambda X: np.einsum("ik,jl->ijlk", SPARSE34.toarray(), SPARSE34.toarray().T)),
    Case("np.dot", lambda X: np.dot(X, x4) + np.dot(X[0], X.T) + np.dot(2.0, X[1]).sum(), X34),
    Case("np.outer", lambda x: np.outer(x, x ** 2), x4,
         lambda x: np.einsum("ik,j->ijk", np.eye(4), x ** 2) + np.einsum("i,jk->ijk", x, np.diag(2 * x))),
    Case("np.trace with offsets", lambda X: np.trace(X) + np.trace(X, offset=1) * np.trace(X, offset=-1)
         + np.trace(X, offset=3), X34),
    Case("solve, inv, det, slogdet", lambda X: np.concatenate([
        np.linalg.solve(X, X[0]), np.linalg.solve(X, A23.T).ravel(), np.linalg.inv(X).ravel(),
        np.stack([np.linalg.det(X), np.linalg.slogdet(X).logabsdet * np.linalg.slogdet(-X).sign])]), W33),
    Case("cholesky, eigh, eigvalsh, singular values and norms", lambda A: np.concatenate([
        np.linalg.cholesky(A).ravel(), np.linalg.eigh(A).eigenvalues, np.linalg.eigh(A)[1][:, 1:].ravel(),
        np.linalg.eigvalsh(A.T, UPLO="U") * np.linalg.svd(A[:, :2], compute_uv=False).sum(),
        np.stack([np.linalg.norm(A, 2), np.linalg.norm(A.T @ A, "nuc")]),
        np.linalg.svd(A[:, :2], full_matrices=False).U.ravel() * np.linalg.svd(A).S[0]]), SPD33),
    Case("qr, pinv, lstsq", lambda X: np.concatenate([
        np.linalg.qr(X.T).Q.ravel(), np.linalg.qr(X.T)[1].ravel(), np.linalg.qr(X.T, mode="r")[0],
        np.linalg.pinv(X).ravel(), np.linalg.lstsq(X.T, x4)[0], np.linalg.lstsq(X.T, x4)[1]]), X34),
    Case("x.dot", lambda x: x.dot(M44).dot(x), x4),
    # --- shape functions ---
    Case("reshape ravel T", lambda X: np.ravel(X.reshape(2, -1).T * 2.0) + X.flatten() + np.reshape(X, 12), X34),
    Case("transpose swapaxes", lambda X: np.transpose(X, (1, 2, 0)) + np.swapaxes(X, 0, 2).transpose(1, 0, 2) * np.transpose(X.T, (1, 0, 2)),
         X234),
    Case("moveaxis", lambda X: np.moveaxis(X, 0, -1) * np.sin(np.moveaxis(X, [0, 1], [-1, 0])), X234),
    Case("expand_dims squeeze", lambda x: np.squeeze(np.expand_dims(x, (0, 2)), axis=0) * np.squeeze(x[None, :, None]),
         x4),
    Case("broadcast_to", lambda x: np.broadcast_to(x, (3, 4)) * X34 + np.broadcast_to(x[0], (2,)).sum(), x4),
    Case("concatenate", lambda X: np.concatenate([X, X ** 2, np.ones((1, 4))], axis=0).sum(axis=1)[4:]
         + np.concatenate([X, X[:, :1]], axis=1)[:, -1] + np.concatenate([X, X], axis=None)[10:13], X34),
    Case("stack hstack vstack", lambda x: np.stack([x, 2 * x, np.ones(4)], axis=1).sum(axis=1)
         + np.hstack([x, x[:2]])[2:5].sum() + np.vstack([x, x ** 2]).sum(axis=0) + np.stack([x, x], axis=-1)[:, 1], x4),
    Case("tile", lambda X: np.tile(X, (2, 2)) + np.tile(X[0], (6, 2)), X34),
    Case("repeat", lambda X: np.repeat(X, [1, 2, 0], axis=0).sum(axis=1) + X.repeat(2, axis=1)[0, :3]
         + np.repeat(X, 2)[::8], X34),
    Case("flip", lambda X: np.flip(X, axis=1) * np.flip(X) + np.flip(X, axis=0), X34),
    # --- shapes, dtypes and control flow ---
    Case("0-d input", lambda x: np.sin(x) * x + np.stack([x, x * x]), np.array(0.7)),
    Case("0-d input and output", lambda x: np.exp(-x) * x, np.array(-0.4),
         lambda x: np.exp(-x) * (1 - x)),
    Case("0-d output", lambda x: np.dot(x, x) + np.max(x), x4,
         lambda x: 2 * x + (x == x.max())),
    Case("3-d to scalar", lambda X: np.sum(np.tanh(X) ** 2), X234),
    Case("control flow on values (taken)", _branchy, x4),
    Case("control flow on values (other branch)", _branchy, -x4),
    Case("loop on values", _loop_until, p4),
    Case("returns a constant", lambda x: np.sin(np.arange(3.0)) + 1.0, x4, lambda x: np.zeros((3, 4))),
    Case("fan-out", _fan_out, x4),
]

CASE_PARAMS = [pytest.param(c, id=c.name) for c in CASES]


def test_suite_is_broad():
    assert len(CASES) >= 40


def _put(z, at, value):
    z[at] = value
    return z


def test_cases_exercise_every_primitive_and_ufunc(monkeypatch):
    """Running the suite in both modes executes every registered primitive (ufuncs included)."""
    executed = set()

    def recording(prim):
        impl = prim.impl

        def run(*args, **params):
            executed.add(prim.name)
            return impl(*args, **params)
        return run

    scipy_special.register()  # binds scipy.special's functions as impls: before they are wrapped, not after
    for prim in primitives.REGISTRY.values():
        monkeypatch.setattr(prim, "impl", recording(prim))
    for case in CASES:
        for mode in ("forward", "reverse"):
            jl.jacobian(case.f, case.x, mode=mode, batch_size=2)
    jl.hessian(lambda v: np.sum(v[1:] ** 3), np.ones(3))  # embed: a differentiated sweep's read of v[1:]
    jl.hessian(lambda v: np.linalg.det(v.reshape(2, 2)), np.ones(4))  # cofactor_tangent: det's second derivative
    jl.grad(lambda v: np.corrcoef(v, v ** 2)[0, 1])(np.arange(3.0))  # stop_gradient: corrcoef's clip
    labels = np.array([1, 0, 1])  # positions, take_at, scatter_add_at: an index of f's arguments, compiled
    jl.jit(jl.grad(lambda v, y: np.sum(v.reshape(3, 2)[np.arange(3), y] ** 2)))(np.ones(6), labels)
    jl.jit(jl.grad(lambda v, y: np.sum(_put(v * 1.0, y, 0.0) ** 2)))(np.ones(3), labels[:2])  # put_at: a write there
    assert sorted(set(primitives.REGISTRY) - executed) == []
    # In particular every primitive a NumPy ufunc maps to (np.sin -> "sin", ...).
    mapped = {p.name for p in numpy_api.UFUNCS.values() if isinstance(p, primitives.Primitive)}
    assert mapped <= executed


SHARED_COTANGENTS = {  # reads of x whose cotangents land where a rule's array already is, or hand one out
    "x + x[0]": lambda x: x + x[0],  # add's VJP gives the seeds themselves to x: not to be written into
    "sum(x) + x[0]": lambda x: np.sum(x) * x[1:] + x[0],  # sum's VJP: a read-only broadcast
    "x[:2] + x[1:3]": lambda x: x[:2] + x[1:3],  # one array to both reads
    # add's VJP gives one array to x and to sin(x), which is still to be swept when x[0]'s adds into x's
    "x[0] read between sin(x) and x + sin(x)": lambda x: (lambda q, a: (x + q) * a)(np.sin(x), x[0]),
    # the same, where the array add hands on is the one y[0] and y[1:] added into, y = x + sin(x)
    "reads of y = x + sin(x) handed on": lambda x: (lambda q, a: (lambda y: y[0] * y[1:] * a)(x + q))(
        np.sin(x), x[0]),
    "y + y of y = x[1:]": lambda x: (lambda y: y + y * y)(x[1:]),
    "reads of a reshaped x": lambda x: (lambda v: v[0] * v[1] + v[:, 0].sum())(x.reshape(2, 3)),
    "reads after a write": lambda x: written_then_read(x),
    "loop of scalar reads": lambda x: np.stack([x[i] * x[(i + 1) % 6] - x[0] for i in range(6)]),
    # writes: the cotangent of the array written goes on to the array written into, its written places
    # cleared in place, never in an array another value holds
    "loop of writes": lambda x: filled(x, lambda r, i: x[i] * x[(i + 1) % 6]),
    "writes reading what was written": lambda x: filled(x, lambda r, i: r[i - 1] * x[i] + x[0]),
    "written array used twice": lambda x: (lambda r: r * r[::-1] + r)(filled(x, lambda r, i: np.sin(x[i]))),
    "writes into a view": lambda x: viewed_writes(x),
    "one value written to several places": lambda x: (lambda r: (r.__setitem__(slice(0, 6, 2), x[1] ** 2), r)[1])(
        x * 1.0),
    # gathers (x[[i, j]]): repeated indices add up, into the sweep's own array only
    "loop of gathers": lambda x: np.stack([np.sum(x[[i, (i + 1) % 6, i]] * x[i]) for i in range(6)]),
    "a gather read between sin(x) and x + sin(x)": lambda x: (lambda q, a: (x + q) * np.sum(a))(
        np.sin(x), x[[0, 0, 2]]),
    "gathers of a 2-d x by rows": lambda x: (lambda v: v[[1, 0, 1]] * v[[0, 0, 1]].sum(axis=0))(x.reshape(2, 3)),
    # add's VJP gives one array to the filled r and to sin(x), swept after the writes clear their places
    "a filled array's cotangent shared": lambda x: (lambda q: filled(x, lambda r, i: x[i] ** 2) + q)(np.sin(x)),
    # ... and to x.reshape(2, 3) and sin(x), x[0]'s read adding into what the reshape gave x
    "a reshape's cotangent shared": lambda x: (lambda q, a: (x.reshape(2, 3) + q) * a)(np.sin(x).reshape(2, 3),
                                                                                       x[0]),
}


def filled(x, value):
    r = np.zeros_like(x)
    r[0] = x[0]
    for i in range(1, 6):
        r[i] = value(r, i)
    return r


def viewed_writes(x):
    r = np.zeros_like(x, shape=(2, 3))
    row = r[1]
    for i in range(3):
        row[i] = x[i] * x[i + 3]
    r[0, :2] = x[:2]
    return r.ravel() * x


def test_a_float32_sweep_adds_float64_reads_in_float64():
    """A write's float32 cotangent became the running sum that float64 reads (r[0:1] * c, c float64) were
    added into, each rounded to float32: 300 reads of 1e-8 vanished. Forward mode keeps them."""
    c = np.array([1e-8])

    def f(x):
        r = x * np.float32(1.0)
        total = sum(np.sum(r[0:1] * c) for _ in range(300))
        r[1] = x[1]
        return total + np.sum(r)

    x = np.array([0.3, -0.7], np.float32)
    np.testing.assert_allclose(jl.jacobian(f, x, mode="reverse"), jl.jacobian(f, x, mode="forward"), rtol=1e-7)
    assert jl.jacobian(f, x, mode="reverse")[0] > 1.0


def written_then_read(x):
    y = x.copy()
    y[1:3] = x[:2] ** 2
    return y[2:] * y[:-2]


@pytest.mark.parametrize("batch_size", [1, None])
@pytest.mark.parametrize("f", SHARED_COTANGENTS.values(), ids=SHARED_COTANGENTS)
def test_slice_reads_in_reverse_add_into_their_own_arrays_only(f, batch_size):
    """Reverse mode adds the cotangent of x[index] into x's in place: never into an array a rule made,
    which may be a seed, a broadcast or another value's cotangent. The forward engine is the reference."""
    x = np.linspace(0.3, 1.8, 6)
    np.testing.assert_allclose(jl.jacobian(f, x, mode="reverse", batch_size=batch_size),
                               jl.jacobian(f, x, mode="forward"), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_forward_and_reverse_agree_with_reference(case):
    y = np.asarray(case.f(case.x))
    ref = case.expected()
    J0 = jl.jacfwd(case.f)(case.x)
    assert J0.shape == y.shape + case.x.shape
    assert J0.dtype == np.float64
    scale = max(1.0, np.abs(J0).max(initial=0.0))
    for b in BATCH_SIZES:
        for J in (jl.jacfwd(case.f, batch_size=b)(case.x), jl.jacrev(case.f, batch_size=b)(case.x)):
            assert J.shape == y.shape + case.x.shape
            np.testing.assert_allclose(J, J0, rtol=1e-12, atol=1e-12 * scale)
    assert_fd_close(J0, ref)
    for mode in MODES:
        J = jl.jacobian(case.f, case.x, mode=mode)
        assert J.shape == y.shape + case.x.shape
        np.testing.assert_allclose(J, J0, rtol=1e-12, atol=1e-12 * scale)


def test_analytic_references_are_exercised():
    # The hand-written Jacobians above must agree with differences too (guards the references).
    for case in CASES:
        if case.reference is not None:
            assert_fd_close(case.reference(case.x).reshape(np.shape(case.f(case.x)) + case.x.shape),
                            central_differences(case.f, case.x), case.name)


# --- kinks and ties: one convention (JAX's), identical in both modes --------------------
def _both_modes(f, x):
    Jf, Jr = jl.jacfwd(f, batch_size=1)(x), jl.jacrev(f, batch_size=1)(x)
    np.testing.assert_allclose(Jf, Jr, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(jl.jacfwd(f)(x), Jf, rtol=1e-14, atol=1e-15)
    return Jf


def test_abs_has_zero_derivative_at_zero():
    J = _both_modes(np.abs, np.array([0.0, -2.0, 3.0]))
    np.testing.assert_array_equal(J, np.diag([0.0, -1.0, 1.0]))


def test_max_reduction_splits_a_tie_equally():
    J = _both_modes(np.max, np.array([1.0, 3.0, 3.0, 2.0]))
    np.testing.assert_array_equal(J, [0.0, 0.5, 0.5, 0.0])


def test_three_way_tie_and_axis_ties():
    J = _both_modes(lambda X: np.min(X, axis=1), np.array([[2.0, 2.0, 2.0], [1.0, 0.0, 0.0]]))
    expected = np.zeros((2, 2, 3))
    expected[0, 0] = 1 / 3
    expected[1, 1, 1:] = 0.5
    np.testing.assert_allclose(J, expected, rtol=1e-15)


@pytest.mark.parametrize("larger, smaller", [(np.maximum, np.minimum), (np.fmax, np.fmin)])
def test_maximum_minimum_ties_give_one_half(larger, smaller):
    x = np.array([1.0, 2.0, -0.5])
    c = np.array([1.0, 0.0, -0.5])
    np.testing.assert_array_equal(_both_modes(lambda x: larger(x, c), x), np.diag([0.5, 1.0, 0.5]))
    np.testing.assert_array_equal(_both_modes(lambda x: smaller(c, x), x), np.diag([0.5, 0.0, 0.5]))
    # Both sides traced: the halves add back up to the derivative of x itself.
    np.testing.assert_array_equal(_both_modes(lambda x: np.maximum(x, x), x), np.eye(3))


def test_clip_at_a_bound_gives_one_half():
    x = np.array([-1.0, 0.0, 1.0, 2.0])
    J = _both_modes(lambda x: np.clip(x, -1.0, 1.0), x)
    np.testing.assert_array_equal(J, np.diag([0.5, 1.0, 0.5, 0.0]))
    J = _both_modes(lambda x: x.clip(min=0.0), x)
    np.testing.assert_array_equal(J, np.diag([0.0, 0.5, 1.0, 1.0]))


def test_clip_without_bounds_as_numpy_answers():
    x = np.array([-1.0, 0.5])
    try:
        np.clip(x, None, None)
    except ValueError as error:  # NumPy before 2.1
        with pytest.raises(ValueError, match=str(error)):
            jl.jacrev(lambda x: x.clip())(x)
    else:  # a copy since
        np.testing.assert_array_equal(_both_modes(lambda x: x.clip() * np.clip(x, None, None), x), np.diag(2 * x))


def test_clip_with_traced_bounds_matches_composite():
    # Bounds that carry derivatives: a value clipped to a bound follows that bound.
    x = np.array([-2.0, 1.5, 3.0])
    J = _both_modes(lambda x: np.clip(np.ones(3), x - 1.0, x), x)
    np.testing.assert_array_equal(J, np.diag([1.0, 0.0, 1.0]))


# --- dtypes -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_float32_input_gives_float32_jacobian(mode):
    f = lambda x: np.sin(x) * x[::-1] + np.sum(x ** 2)
    x = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    J = jl.jacobian(f, x, mode=mode)
    assert J.dtype == np.float32
    np.testing.assert_allclose(J, jl.jacobian(f, x.astype(np.float64), mode=mode), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("dtype", [">f4", ">f8"])
def test_a_big_endian_x_is_differentiated_in_its_own_precision(dtype, mode):
    f = lambda x: np.sin(x) * x[::-1]
    x = np.array([0.5, -1.0, 2.0], dtype=dtype)
    native = x.astype(np.dtype(dtype).newbyteorder("="))
    for J, expected in ((jl.jacobian(f, x, mode=mode), jl.jacobian(f, native, mode=mode)),
                        (jl.grad(lambda x: np.sum(f(x)))(x), jl.grad(lambda x: np.sum(f(x)))(native)),
                        (jl.jit(jl.jacobian(f, mode=mode))(x), jl.jacobian(f, native, mode=mode))):
        assert J.dtype == expected.dtype == native.dtype
        np.testing.assert_array_equal(J, expected)


@pytest.mark.parametrize("dtype, expected", [(np.float16, np.float64), (np.float32, np.float32),
                                             (np.float64, np.float64), (np.longdouble, np.float64)])
def test_every_derivative_function_gives_the_same_derivative_dtype(dtype, expected):
    f = lambda x: np.sum(np.sin(x) * x)
    x, v = np.array([0.5, -1.0], dtype=dtype), np.ones(2)
    derivatives = {
        "jacobian": jl.jacobian(f, x), "grad": jl.grad(f)(x), "value_and_grad": jl.value_and_grad(f)(x)[1],
        "jvp": jl.jvp(f, x, v)[1], "vjp": jl.vjp(f, x)[1](np.ones(())), "hvp": jl.hvp(f, x, v),
        "hessian": jl.hessian(f)(x),
    }
    assert {name: d.dtype for name, d in derivatives.items()} == {name: np.dtype(expected) for name in derivatives}
    np.testing.assert_allclose(derivatives["grad"], np.sin(x.astype(float)) + x.astype(float) * np.cos(x.astype(float)),
                               rtol=2e-3)


@pytest.mark.parametrize("exponent", [2, 2.0, np.float32(2), np.float64(2), np.int64(2), np.array(2.0)],
                         ids=["int", "float", "float32", "float64", "int64", "0-d float64"])
def test_squaring_promotes_as_numpys_power(exponent):
    # x ** 2 runs as `square`; a NumPy exponent still takes part in the dtype (float32 ** float64 is float64)
    x = np.array([0.3, 1.2, -0.7], dtype=np.float32)
    y, _ = jl.jvp(lambda v: v ** exponent, x, np.ones(3, np.float32))
    assert y.dtype == (x ** exponent).dtype
    np.testing.assert_array_equal(y, x ** exponent)


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_integer_input_is_promoted_to_float64(mode):
    f = lambda x: x ** 3 / 2
    J = jl.jacobian(f, np.array([1, 2, 3]), mode=mode)
    assert J.dtype == np.float64
    np.testing.assert_allclose(J, np.diag([1.5, 6.0, 13.5]), rtol=1e-15)


# --- empty selections -------------------------------------------------------------------
def test_sum_over_an_empty_mask_has_zero_gradient_in_both_modes():
    f = lambda x: np.sum(x[x > 10.0]) + np.sum(x[[]] * 2.0)
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(jl.grad(f)(x), np.zeros(3))
    np.testing.assert_array_equal(jl.jacfwd(f)(x), np.zeros(3))


EMPTY = [
    pytest.param(lambda x: x[x > 10.0] * 2.0, np.array([1.0, -2.0, 3.0]), id="empty output"),
    pytest.param(lambda x: x * 2.0, np.zeros(0), id="empty input"),
    pytest.param(lambda x: np.sum(x), np.zeros((0, 2)), id="empty input, scalar output"),
]


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("f, x", EMPTY)
def test_empty_jacobians(f, x, mode):
    y = np.asarray(f(x))
    J = jl.jacobian(f, x, mode=mode)
    assert J.shape == y.shape + x.shape
    assert not J.any()


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("f, x", [
    pytest.param(lambda x: np.sin(x)[:0] * 2.0, np.linspace(0.0, 1.0, 20_000), id="no outputs"),
    pytest.param(lambda x: x[:0] * 2.0, np.linspace(0.0, 1.0, 20_000), id="no outputs, no work"),
    pytest.param(lambda x: np.sin(np.arange(20_000.0)) + np.sum(x), np.zeros(0), id="no inputs"),
])
def test_an_empty_jacobian_takes_one_pass_counted_as_predicted(f, x, mode):
    """With nothing on the other side, a pass per seed computed nothing: 10,000 passes of 2 seeds for no outputs
    at n = 20,000 (50,000 and 2 s at 1e5, more than 30 s at 1e6), auto taking them on the 0-flop tie."""
    measured = jl.measure(f, x, mode=mode, repeat=1)
    assert measured.jacobian.shape == np.shape(f(x)) + x.shape and measured.passes == 1
    assert measured.total == jl.predict(f, x).total(mode)


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_an_empty_jacobians_pass_is_counted_as_predicted_beside_an_executor(mode):
    """A worker's share of the budget gave an empty x's sweep fewer seeds than the prediction's: 99 flops counted,
    297 predicted. Its one sweep takes no seeds."""
    from concurrent.futures import ThreadPoolExecutor

    f, x = (lambda x: np.ones(50) * np.sum(x) + np.arange(50.0)), np.ones(0)
    with ThreadPoolExecutor(2) as pool:
        measured = jl.measure(f, x, mode=mode, repeat=1, max_memory=3000, executor=pool)
    assert measured.total == jl.predict(f, x).total(mode, max_memory=3000) and measured.passes == 1


# --- jvp, vjp, grad ---------------------------------------------------------------
JVP_CASES = [c for c in CASE_PARAMS if c.values[0].name in
             ("seed sum(sin(exp(x**2)))", "traced @ traced", "sum over axes of 3-d", "0-d input",
              "0-d input and output", "boolean mask", "fan-out", "stacked matmul with broadcasting")]


@pytest.mark.parametrize("case", JVP_CASES)
def test_jvp_single_and_batched(case):
    x = case.x
    J = jl.jacfwd(case.f)(x).reshape(-1, x.size)
    y_shape = np.shape(case.f(x))
    rng = np.random.default_rng(len(case.name))
    v = rng.standard_normal(x.shape)
    y, y_dot = jl.jvp(case.f, x, v)
    np.testing.assert_allclose(y, case.f(x), rtol=1e-15)
    assert np.shape(y_dot) == y_shape
    assert_close(y_dot, (J @ v.ravel()).reshape(y_shape), 1e-12)
    V = rng.standard_normal((3,) + x.shape)
    _, Y_dot = jl.jvp(case.f, x, V)
    assert Y_dot.shape == (3,) + y_shape
    assert_close(Y_dot, (V.reshape(3, -1) @ J.T).reshape((3,) + y_shape), 1e-12)
    assert_fd_close(y_dot, (np.asarray(case.f(x + 1e-6 * v)) - np.asarray(case.f(x - 1e-6 * v))) / 2e-6)


@pytest.mark.parametrize("case", JVP_CASES)
def test_vjp_single_and_batched(case):
    x = case.x
    J = jl.jacrev(case.f)(x).reshape(-1, x.size)
    y, pullback = jl.vjp(case.f, x)
    np.testing.assert_allclose(y, case.f(x), rtol=1e-15)
    rng = np.random.default_rng(len(case.name))
    u = rng.standard_normal(np.shape(y))
    x_bar = pullback(u)
    assert x_bar.shape == x.shape
    assert_close(x_bar, (np.ravel(u) @ J).reshape(x.shape), 1e-12)
    U = rng.standard_normal((3,) + np.shape(y))
    X_bar = pullback(U)
    assert X_bar.shape == (3,) + x.shape
    assert_close(X_bar, (U.reshape(3, -1) @ J).reshape((3,) + x.shape), 1e-12)
    assert_close(pullback(u), x_bar, 1e-15)  # the tape sweeps again with the same answer


@dataclass
class _Returned:
    y: object


def _inner(v):
    return np.sin(v) * v


MISUSES = {  # (the call, its error, what the message says)
    "count_flops inside f": (lambda x: jl.grad(lambda v: np.sum(v) * jl.count_flops(_inner, v).flops)(x),
                             NotImplementedError, r"x is itself a traced array: this call runs inside another "
                             r"derivative, where .* nest .* but counting, prediction, sparsity and chains "
                             r"\(count_flops, .*\) do not; call them on the outer function instead"),
    "mode=None": (lambda x: jl.jacobian(_inner, x, mode=None), TypeError,
                  r"got None; leave mode out for its default$"),
    "an np.matrix returned": (lambda x: jl.jacobian(lambda v: np.asmatrix(v * 2), x), TypeError,
                              r"f returned an np.matrix; .* return np.asarray"),
    "a dataclass returned": (lambda x: jl.jacobian(lambda v: _Returned(v * 2), x), TypeError,
                             r"f returned a .*_Returned, not an array; .* a tuple, list or dict of them"),
}


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # NumPy's, for np.matrix
@pytest.mark.parametrize("call, error, message", MISUSES.values(), ids=list(MISUSES))
def test_misuses_get_messages_that_name_them(call, error, message):
    with pytest.raises(error, match=message):
        call(np.arange(1.0, 5.0))


def test_a_value_kept_from_an_earlier_pass_of_one_call_is_named_so():
    cache = {}

    def kept(v):
        if "v" not in cache:
            cache["v"] = np.exp(v)  # from the first pass: forward mode evaluates f once per pass
        return cache["v"] * v

    with pytest.raises(TypeError, match=r"a traced value of an evaluation of f that has ended \(an earlier "
                                        r"jacobian_lab call, or an earlier pass of this one"):
        jl.jacfwd(kept, batch_size=2)(np.arange(1.0, 5.0))


def test_a_pullback_takes_one_y_bar_and_keeps_its_tape():
    x = np.array([1.0, 2.0, 3.0])
    y, pullback = jl.vjp(lambda v: (np.sin(v), np.cos(v)), x)
    expected = pullback((np.ones(3), np.ones(3)))
    for extra in (np.ones(3), 1):  # JAX's pullback(ct1, ct2); a truthy value once freed the tape
        with pytest.raises(TypeError, match=r"the pullback takes one y_bar, got 2; .* pullback\(\(y1_bar, y2_bar\)\)"):
            pullback(np.ones(3), extra)
    np.testing.assert_array_equal(pullback((np.ones(3), np.ones(3))), expected)
    np.testing.assert_allclose(expected, np.cos(x) - np.sin(x), rtol=1e-15)


def test_a_pullback_is_untouched_by_later_writes_into_x_or_y():
    """The pullback sweeps the tape later: writing into the caller's x, or into the y vjp returned, leaves
    the derivatives it gives as they were at x (JAX's arrays cannot change; NumPy's can)."""
    x = np.array([0.1, 0.5, 1.0])
    y, exp_pullback = jl.vjp(np.exp, x)
    _, sin_pullback = jl.vjp(np.sin, x)
    _, product_pullback = jl.vjp(lambda v: v * v[::-1], x)
    y -= 1.0
    x += 1.0
    x0 = x - 1.0
    np.testing.assert_allclose(exp_pullback(y), (np.exp(x0) - 1.0) * np.exp(x0), rtol=1e-15)
    np.testing.assert_allclose(sin_pullback(np.ones(3)), np.cos(x0), rtol=1e-15)
    np.testing.assert_allclose(product_pullback(np.ones(3)), 2 * x0[::-1], rtol=1e-15)


def test_jvp_and_vjp_of_a_constant_function_are_zero():
    f = lambda x: np.ones((2, 2))
    _, y_dot = jl.jvp(f, x4, np.ones(4))
    np.testing.assert_array_equal(y_dot, np.zeros((2, 2)))
    _, pullback = jl.vjp(f, x4)
    np.testing.assert_array_equal(pullback(np.ones((5, 2, 2))), np.zeros((5, 4)))


MOVES_ONLY = {"identity": lambda x: x, "reshape": lambda x: x.reshape(2, 2), "transpose": lambda x: x[:, None].T,
              "slice": lambda x: x[1:]}


@pytest.mark.parametrize("f", MOVES_ONLY.values(), ids=MOVES_ONLY)
@pytest.mark.parametrize("batched", [False, True])
def test_jvp_and_vjp_of_an_f_that_only_moves_x_return_arrays_of_their_own(f, batched):
    """Writing into x, x_dot or y_bar afterwards leaves the results as they were: they share no memory."""
    x, x_dot = np.arange(1.0, 5.0), np.arange(10.0, 14.0)
    x_dot = np.stack([x_dot, -x_dot]) if batched else x_dot
    y, y_dot = jl.jvp(f, x, x_dot)
    y_expected, y_dot_expected = f(x).copy(), np.array([f(t) for t in x_dot] if batched else f(x_dot))
    _, pullback = jl.vjp(f, x)
    y_bar = np.ones((2,) + y.shape) if batched else np.ones(y.shape)
    x_bar = pullback(y_bar)
    x_bar_expected = x_bar.copy()
    for given in (x, x_dot, y_bar):
        given[...] = np.nan
    np.testing.assert_array_equal(y, y_expected)
    np.testing.assert_array_equal(y_dot, y_dot_expected)
    np.testing.assert_array_equal(x_bar, x_bar_expected)
    assert np.all(x_bar_expected[..., 1:] == 1.0)  # every moved entry of y_bar came back whole


def test_jvp_of_an_f_returning_an_array_it_closes_over_returns_a_copy_as_vjp_does():
    kept = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    for y in (jl.jvp(lambda x: kept, np.ones(3), np.ones(3))[0], jl.vjp(lambda x: kept, np.ones(3))[0]):
        kept[0, 0] = 7.0
        np.testing.assert_array_equal(y, np.arange(6.0).reshape(2, 3))
        assert y.flags.f_contiguous  # laid out as f's own result
        kept[0, 0] = 0.0


def test_grad_of_scalar_functions():
    np.testing.assert_allclose(jl.grad(lambda x: np.sum(np.sin(np.exp(x ** 2))))(x4), _seed_grad(x4), rtol=1e-13)
    np.testing.assert_allclose(jl.grad(lambda X: np.sum(X ** 2) / 2)(X34), X34, rtol=1e-15)
    assert jl.grad(lambda x: x ** 3)(np.array(2.0)) == pytest.approx(12.0, rel=1e-15)
    assert jl.grad(lambda x: np.prod(x))(np.array([2.0, 0.0, 5.0])).tolist() == [0.0, 10.0, 0.0]


@pytest.mark.parametrize("f", [lambda x: x * 2, lambda x: x[None, :1]], ids=["vector", "shape (1, 1)"])
def test_grad_refuses_non_scalar_output(f):
    for transform in (jl.grad, jl.value_and_grad):
        with pytest.raises(TypeError, match=rf"^{transform.__name__} requires f to return a scalar.*jacrev"):
            transform(f)(x4)


def test_value_and_grad_evaluates_f_once():
    calls = []

    def f(p):
        calls.append(1)
        return np.sum(np.sin(p["w"]) * p["b"])

    p = {"w": x4, "b": np.arange(4.0)}
    value, gradient = jl.value_and_grad(f)(p)
    assert len(calls) == 1 and value == f(p)
    assert gradient.keys() == p.keys()  # x's structure, as jl.grad gives it
    np.testing.assert_allclose(gradient["w"], np.cos(x4) * np.arange(4.0), rtol=1e-15)
    np.testing.assert_array_equal(gradient["b"], np.sin(x4))
    assert repr(jl.value_and_grad(np.sum)) == "value_and_grad(sum)"


@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 4), (2, 0)])
def test_seeds_are_the_rows_of_the_identity(shape):
    from jacobian_lab.harness import seeds

    size = int(np.prod(shape))
    for lo in range(size + 1):
        for hi in range(lo, size + 1):
            expected = np.eye(size)[lo:hi].reshape((hi - lo,) + shape)
            e = seeds(lo, hi, shape)
            assert e.shape == expected.shape and e.dtype == np.float64
            np.testing.assert_array_equal(e, expected)


@pytest.mark.parametrize("mode", MODES)
def test_float32_values_convert_as_in_numpy(mode):
    x = np.array([0.1, 0.7, 1.3], np.float32)
    # astype(float64) really converts: the square is computed in float64, as NumPy computes it
    f = lambda v: v.astype(np.float64) ** 2  # noqa: E731
    y, _ = jl.jvp(f, x, np.ones_like(x))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, f(x))
    J = jl.jacobian(f, x, mode=mode)
    np.testing.assert_allclose(J, np.diag(2 * x.astype(np.float64)), rtol=1e-15)
    # and back: float32 values in, float32 derivatives out
    g = lambda v: (v.astype(np.float64) * 3.0).astype(np.float32)  # noqa: E731
    assert jl.jvp(g, x, np.ones_like(x))[0].dtype == np.float32
    assert jl.jacobian(g, x, mode=mode).dtype == np.float32
    # float_power computes in float64 whatever its operands, as NumPy's does
    assert jl.jvp(lambda v: np.float_power(v, 1.5), x, np.ones_like(x))[0].dtype == np.float64


def test_engines_name_a_derivative_without_its_seed_axis():
    """The engines take (k, *shape) seeds; the public jvp/vjp take either. A missing seed axis used to
    fail deep inside a rule (an IndexError from getitem)."""
    forward, reverse = jl.engines.get("forward"), jl.engines.get("reverse")
    with pytest.raises(ValueError, match=r"tangents must have shape \(k, \*x.shape\) = \(k, 3\) .* got \(3,\)"):
        forward.jvp(lambda x: x[1:] * 2, np.ones(3), np.ones(3))
    _, pullback = reverse.vjp(lambda x: x[1:] * 2, np.ones(3))
    with pytest.raises(ValueError, match=r"cotangents must have shape \(k, \*y.shape\) = \(k, 2\) .* got \(2,\)"):
        pullback(np.ones(2))
    np.testing.assert_array_equal(pullback(np.ones((1, 2))), [[0.0, 2.0, 2.0]])


def test_a_second_argument_is_refused_naming_the_fixes():
    """A sparse Hessian takes one x (jacfwd, jacrev, grad, hessian and sparse_jacobian, and jit of them, pass
    further arguments to f, as JAX's do)."""
    fun = jl.sparse_hessian(lambda v: np.sum(np.sin(v)))
    for compiled in (jl.jit(fun).program, jl.jit(fun)):
        with pytest.raises(TypeError, match=r"takes one x; bind f's other arguments first"):
            compiled(np.ones(3), 2.0)
    with pytest.raises(TypeError, match=r"takes one x; bind f's other arguments first .* as one tuple x"):
        fun(np.ones(3), np.ones(3))


def test_a_second_array_where_mode_goes_is_refused_naming_the_tuple_fix():
    with pytest.raises(TypeError, match=r"got ndarray; .* jacobian\(lambda p: f\(\*p\), \(x, y\)\), or use "
                                        r"jacobian\(f, argnums=\(0, 1\)\)\(x, y\)"):
        jl.jacobian(np.multiply, np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match=r"got ndarray; .* sparse_jacobian\(f, argnums=\(0, 1\)\)\(x, y\)"):
        jl.sparse_jacobian(np.multiply, np.ones(3), np.ones(3))
    # sparse_hessian takes no argnums: the tuple alone, under its own name
    with pytest.raises(TypeError, match=r"got ndarray; .* one tuple: sparse_hessian\(lambda p: f\(\*p\), \(x, y\)\)$"):
        jl.sparse_hessian(lambda a, b: np.sum(a * a * b), np.ones(3), np.ones(3))


def test_a_ragged_nested_list_is_refused_as_such():
    with pytest.raises(ValueError, match="ragged nested list"):
        jl.grad(lambda v: np.sum(v))([[1.0], [1.0, 2.0]])


def test_grad_of_a_structured_output_names_its_type():
    with pytest.raises(TypeError, match="got a list; use jacrev"):
        jl.grad(lambda v: [np.sin(v), 2 * v])(np.ones(3))


def test_float32_x_gives_float32_derivatives_everywhere():
    # As in JAX: the seeds, tangents and cotangents take x's precision, whatever dtype v or y_bar has.
    x = np.linspace(0.1, 1.0, 4, dtype=np.float32)
    f = lambda v: np.sum(np.sin(v) * v)  # noqa: E731
    v64 = np.ones(4)
    results = {
        "grad": jl.grad(f)(x), "value_and_grad": jl.value_and_grad(f)(x)[1], "jacrev": jl.jacrev(f)(x),
        "jvp": jl.jvp(np.sin, x, v64)[1], "vjp": jl.vjp(np.sin, x)[1](v64), "hvp": jl.hvp(f, x, v64),
        "hessian": jl.hessian(f, x), "hessian reverse": jl.hessian(f, x, mode="reverse"),
    }
    assert {name: r.dtype for name, r in results.items()} == {name: np.float32 for name in results}
    assert np.allclose(results["grad"], np.sin(x) + x * np.cos(x), rtol=1e-6)
    assert np.allclose(results["hvp"], 2 * np.cos(x) - x * np.sin(x), rtol=1e-6)


def test_derivatives_at_a_0d_x_are_0d_arrays_from_every_function_and_jit():
    """As JAX's are, and alike eagerly and compiled: a 0-d ndarray, not a NumPy scalar."""
    f, x = (lambda x: x ** 3), np.array(2.0)
    results = [jl.grad(f)(x), jl.jit(jl.grad(f))(x), jl.value_and_grad(f)(x)[1], jl.jvp(f, x, 1.0)[1],
               jl.vjp(f, x)[1](1.0), jl.jacrev(f)(x), jl.jit(jl.jacrev(f))(x), jl.hvp(lambda x: x ** 4 / 4, x, 1.0)]
    assert [type(r) for r in results] == [np.ndarray] * len(results)
    assert [r.shape for r in results] == [()] * len(results)
    assert [float(r) for r in results] == [12.0] * len(results)


@pytest.mark.parametrize("x, given, fix", [
    ({1.0, 2.0}, "set", "a set has no order"),
    ((v for v in (1.0, 2.0)), "generator", r"np\.fromiter"),
    (Fraction(1, 2), "Fraction", r"np\.asarray\(x, dtype=float\)"),
    (np.array(["a"]), "dtype <U1", r"np\.asarray\(x, dtype=float\)"),
    (None, "NoneType", "the point to differentiate at"),
    (np.zeros(2, dtype=[("a", "f8")]), r"dtype \[\('a', '<f8'\)\]", r"its fields as a dict of arrays"),
    (types.SimpleNamespace(w=np.ones(2), b=np.zeros(1)), "SimpleNamespace", "the arrays it holds in a tuple"),
    (np.array([np.ones(2), np.ones(3)], dtype=object), "dtype object", "the arrays it holds in a tuple"),
    (types.SimpleNamespace(a=1.0, b=2.0), "SimpleNamespace", r"the numbers it holds in an array \(np\.array"),
    (np.array(1.5, dtype=object), "dtype object", r"np\.asarray\(x, dtype=float\)"),
])
def test_an_x_of_no_numbers_is_named_by_its_type_or_dtype(x, given, fix):
    with pytest.raises(TypeError, match=rf"^x must be a float array, got {given}; .*{fix}"):
        jl.jacobian(np.sin, x)


@pytest.mark.parametrize("call, name", [
    (lambda d: jl.jvp(np.sin, np.ones(2), d), "x_dot"),
    (lambda d: jl.vjp(np.sin, np.ones(2))[1](d), "y_bar"),
    (lambda d: jl.hvp(lambda x: np.sum(x ** 3), np.ones(2), d), "v"),
])
def test_a_direction_of_none_is_named_none(call, name):
    with pytest.raises(TypeError, match=rf"^{name} must be a float array, got None$"):
        call(None)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # f's own x * 1e5, as NumPy's
@pytest.mark.parametrize("c", [1.1, 1e5, 1e-8])
def test_a_float16_x_has_one_jacobian_in_both_orders(c):
    """Its Jacobian is float64; forward passes pushed float16 tangents, which rounded f's constant (x * 1.1 had slope
    1.0996 forward, 1.1 reverse) and overflowed (x * 1e5: inf forward)."""
    x = np.array([0.3, -1.2, 2.5], np.float16)

    def f(v):
        return v * c + np.sin(v)

    fwd, rev = jl.jacfwd(f)(x), jl.jacrev(f)(x)
    assert fwd.dtype == rev.dtype == np.float64
    np.testing.assert_array_equal(fwd, rev)
    np.testing.assert_array_equal(jl.jit(jl.jacfwd(f))(x), fwd)
    np.testing.assert_allclose(np.diag(fwd), c + np.cos(x.astype(np.float64)), rtol=1e-3)


def test_jaxs_tuple_call_of_jvp_names_the_tuple_where_f_fails_on_it():
    """jl.jvp(f, (x,), (v,)) gives f the 1-tuple; where f then fails (here inside another derivative, with
    "multiply of a traced array got an object array"), the error says where the tuple came from."""
    def outer(a):
        return np.sum(jl.jvp(lambda x: np.sin(a * x), (np.ones(2),), (np.ones(2),))[1])

    for call in (lambda: outer(0.5), lambda: jl.grad(outer)(0.5)):  # Python's refusal, and the traced one
        with pytest.warns(UserWarning, match="passes x to f as one argument"):
            with pytest.raises(TypeError) as raised:
                call()
        assert any("f got x as the 1-tuple (x,)" in note for note in raised.value.__notes__)


@pytest.mark.parametrize("make", [jl.jacfwd, jl.jacrev])
def test_a_constant_matrix_written_as_lists_solves_as_numpy_reads_it(make):
    """np.linalg.solve([[2., 1.], [1., 3.]], v): the lists are the matrix, in float64."""
    A = [[2.0, 1.0], [1.0, 3.0]]
    np.testing.assert_allclose(make(lambda v: np.linalg.solve(A, v))(np.ones(2)), np.linalg.inv(A), rtol=1e-15)
