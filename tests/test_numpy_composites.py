"""NumPy functions composed from primitives: derivatives in both modes, and their (zero) data-movement cost."""
import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab.accounting import Cost

from helpers import assert_fd_close, central_differences

rng = np.random.default_rng(1)
x3, x5, x6 = rng.normal(size=3), rng.normal(size=5), rng.normal(size=6)
x12, x34 = rng.normal(size=12), rng.normal(size=(3, 4))
positive4 = np.abs(rng.normal(size=4)) + 1.5
A = rng.normal(size=(4, 3))

CASES = {
    "diag of a vector": (lambda x: np.diag(x, 1) @ np.ones(4), x3),
    "diag and diagonal of a matrix": (lambda X: np.diag(X) * np.diagonal(X, 1).sum(), x34),
    "roll": (lambda x: np.roll(x, 2) * x + np.roll(x.reshape(3, 4), -1, axis=1).sum(axis=0).sum(), x12),
    "pad modes": (lambda x: np.pad(x, (2, 1)) + np.pad(x, 1, mode="edge").sum() + np.pad(x, 2, mode="reflect").sum(),
                  x3),
    "pad 2-d with a constant": (lambda X: np.pad(X, ((1, 0), (0, 2)), constant_values=3.0) ** 2, x34),
    "sort": (lambda x: np.sort(x) * np.arange(5.0) + np.sort(x.reshape(1, 5), axis=None), x5),
    "take_along_axis": (lambda X: np.take_along_axis(X, np.argsort(X, axis=1), axis=1), x34),
    "split": (lambda x: np.split(x, 3)[1] * np.array_split(x, 4)[0][0] + np.hsplit(x, [1, 4])[1].sum(), x6),
    "append": (lambda x: np.append(x, x ** 2), x3),
    "diff": (lambda x: np.diff(x) * 2 + np.diff(x, n=2).sum() + np.diff(x, prepend=0.0).sum(), x5),
    "diff along axis 0": (lambda X: np.diff(X, axis=0), x34),
    "var and std": (lambda X: np.var(X) + np.std(X, axis=0) + np.var(X, axis=1, ddof=1, keepdims=True).T[0, :1], x34),
    "average": (lambda X: np.average(X, axis=1, weights=np.arange(1.0, 5.0)) + np.average(X), x34),
    "tensordot and inner": (lambda X: np.tensordot(X, A, axes=([1], [0])).ravel() + np.tensordot(X, X, axes=2)
                            + np.inner(X, X).ravel()[:9], x34),
    "vdot": (lambda X: np.vdot(X, X) * np.inner(X[0], X[1]), x34),
    "vector norms": (lambda X: np.linalg.norm(X) + np.linalg.norm(X, axis=1) + np.linalg.norm(X, ord=1, axis=0)[:3]
                     + np.linalg.norm(X, ord=np.inf, axis=1) + np.linalg.norm(X, 3, axis=1), x34),
    "matrix norms": (lambda X: np.linalg.norm(X, "fro") + np.linalg.norm(X, 1) + np.linalg.norm(X, np.inf), x34),
    "value queries": (lambda x: x * (np.argmax(x) + np.any(x > 0) + np.allclose(x, x) + np.count_nonzero(x > 0)), x3),
    "round": (lambda x: x * np.round(x, 1) + np.around(x), x3),
    "real and imag": (lambda x: np.real(x) + np.imag(x), x3),
    "degrees, fabs, float_power": (lambda x: np.deg2rad(x) + np.degrees(x) * np.fabs(x) + np.float_power(x, 1.5),
                                   positive4),
}


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("name", CASES)
def test_composite_matches_finite_differences(name, mode):
    f, x = CASES[name]
    assert_fd_close(jl.jacobian(f, x, mode=mode), central_differences(f, x), name)


@pytest.mark.parametrize("f", [
    lambda x: np.roll(x, 1), lambda x: np.pad(x, 2), lambda x: np.sort(x), lambda x: np.diag(x),
    lambda x: np.split(x, 5)[2], lambda x: np.append(x, x), lambda x: np.pad(x, 1, mode="wrap"),
])
def test_index_maps_move_data_for_free(f):
    assert jl.count_flops(f, x5) == Cost(0, 0)


def test_statistics_count_their_arithmetic():
    # var over L = 12: mean (12), subtract (12), square (12), sum (11), divide (1)
    assert jl.count_flops(np.var, x34) == Cost(48, 0)
    assert jl.count_flops(np.std, x34) == Cost(48, 1)
    # diff of 5 values: 4 subtractions
    assert jl.count_flops(np.diff, x5) == Cost(4, 0)


def test_new_ufuncs_are_transcendentals():
    for f in (np.log2, np.log10, np.exp2, np.cbrt, np.arcsinh, np.arctanh):
        assert jl.count_flops(f, np.full(7, 0.5)) == Cost(0, 7)
    assert jl.count_flops(lambda x: np.arctan2(x, 2.0) + np.hypot(x, 1.0), np.ones(3)) == Cost(3, 6)


def test_sort_follows_the_values_not_the_positions():
    x = np.array([3.0, 1.0, 2.0])
    J = jl.jacrev(np.sort)(x)
    np.testing.assert_array_equal(J, [[0, 1, 0], [0, 0, 1], [1, 0, 0]])


def test_unsupported_norm_and_pad_variants_are_named():
    with pytest.raises(NotImplementedError, match="ord='nuc'"):
        jl.jacrev(lambda X: np.linalg.norm(X, "nuc"))(x34)
    with pytest.raises(NotImplementedError, match="mode='mean'"):
        jl.jacrev(lambda x: np.pad(x, 1, mode="mean"))(x3)


def test_padding_keeps_float32_values_float32():
    from jacobian_lab.engines import get

    x = np.ones(3, np.float32)
    y, y_dot = get("forward").jvp(lambda v: np.pad(v, 1) + np.diag(v).sum(), x, np.ones((1, 3), np.float32))
    assert y.dtype == np.pad(x, 1).dtype == np.float32 and y_dot.dtype == np.float32
