"""jit of functions of several arguments: f's other arrays are inputs of the program, other values compiled in."""
import re
import warnings

import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab.accounting import counting
from jacobian_lab.compiled import KEEP_PROGRAMS

from helpers import central_differences

RNG = np.random.default_rng(11)


def least_squares(w, X, y):
    return np.sum((X @ w - y) ** 2)


def least_squares_gradient(w, X, y):
    return 2 * X.T @ (X @ w - y)


def batches(count, rows=8, columns=3):
    return [(RNG.standard_normal((rows, columns)), RNG.standard_normal(rows)) for _ in range(count)]


@pytest.mark.parametrize("make", [jl.grad, jl.jacrev, jl.jacfwd, jl.jacobian])
def test_one_program_serves_every_batch(make):
    step, w = jl.jit(make(least_squares)), RNG.standard_normal(3)
    for X, y in batches(4):
        np.testing.assert_allclose(step(w, X, y), least_squares_gradient(w, X, y), rtol=1e-12, atol=1e-12)
    assert step.compiles == 1
    assert step.program(w, X, y).source.startswith("def program(x, a0, a1):")


def mlp(params, batch):
    """A two-layer network's mean squared error on a batch given as a dict."""
    h = np.tanh(batch["X"] @ params["W1"] + params["b1"])
    return np.mean((h @ params["w2"] - batch["y"]) ** 2)


def test_a_batch_as_a_dict_of_arrays_against_central_differences():
    params = {"W1": RNG.standard_normal((4, 5)), "b1": RNG.standard_normal(5), "w2": RNG.standard_normal(5)}
    step = jl.jit(jl.grad(mlp))
    for X, y in batches(3, rows=6, columns=4):
        batch = {"X": X, "y": y}
        g = step(params, batch)
        for name, leaf in params.items():
            def in_leaf(v, name=name):
                return mlp({**params, name: v.reshape(leaf.shape)}, batch)
            np.testing.assert_allclose(g[name].ravel(), central_differences(in_leaf, leaf.ravel()).ravel(),
                                       rtol=1e-7, atol=1e-9)
    assert step.compiles == 1


def test_argnums_picks_the_differentiated_arguments_and_keywords_pass_as_inputs():
    def f(X, w, b, *, scale):
        return scale * np.tanh(X @ w + b)

    X, w, b = RNG.standard_normal((5, 3)), RNG.standard_normal(3), RNG.standard_normal(5)
    jac = jl.jit(jl.jacrev(f, argnums=(1, 2)))
    for scale in (np.full(5, 2.0), np.linspace(1.0, 3.0, 5)):  # an array by keyword: an input, not compiled in
        J_w, J_b = jac(X, w, b, scale=scale)
        d = scale * (1 - np.tanh(X @ w + b) ** 2)
        np.testing.assert_allclose(J_w, d[:, None] * X, rtol=1e-12)
        np.testing.assert_allclose(J_b, np.diag(d), rtol=1e-12)
    assert jac.compiles == 1


def test_python_numbers_are_compiled_in_one_program_per_value():
    step, w = jl.jit(jl.grad(lambda w, X, c: c * np.sum((X @ w) ** 2))), RNG.standard_normal(3)
    X = RNG.standard_normal((4, 3))
    for c in (2.0, 3.0, 2.0, 3):
        np.testing.assert_allclose(step(w, X, c), 2 * c * X.T @ (X @ w), rtol=1e-12)
    assert step.compiles == 3  # 2.0, 3.0 and the int 3 (as jax.jit's static arguments, by type and value)


def test_a_number_changing_on_every_call_stops_compiling_with_one_warning():
    step, w = jl.jit(jl.grad(lambda w, X, lr: lr * np.sum((X @ w) ** 2))), RNG.standard_normal(3)
    X = RNG.standard_normal((4, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(KEEP_PROGRAMS + 4):
            lr = 1.0 / (k + 1)
            np.testing.assert_allclose(step(w, X, lr), 2 * lr * X.T @ (X @ w), rtol=1e-12)
    assert step.compiles == KEEP_PROGRAMS
    assert len(caught) == 1
    assert re.search(r"at values of f's argument 2 beyond the 8 it compiled in.*pass it as a NumPy scalar or an "
                     r"array \(np.float64\(lr\), np.asarray\(lr\)\)",
                     str(caught[0].message))
    with pytest.raises(jl.staging.NotReplayable, match="f's argument 2 took more than 8 values"):
        step.program(w, X, 0.3)  # not among the values 1 / (k + 1) compiled in
    np.testing.assert_allclose(step(w, X, np.asarray(0.5)), X.T @ (X @ w), rtol=1e-12)  # an input: compiles
    assert step.compiles == KEEP_PROGRAMS + 1


def test_a_numpy_scalar_is_an_input_as_an_odes_time_is():
    """solve_ivp's jac(t, y) with t as np.float64: one program for every t, the scalar's type as eager's."""
    def rhs(t, y):
        return np.array([y[1], -np.sin(t) * y[0] - 0.1 * y[1] ** 3])  # traced scalars, built into one array

    jac = jl.jit(jl.jacobian(rhs, argnums=1))
    y = np.array([0.5, -1.0])
    for t in np.linspace(0.0, 3.0, 12):
        np.testing.assert_allclose(jac(np.float64(t), y), [[0.0, 1.0], [-np.sin(t), -0.3 * y[1] ** 2]], rtol=1e-14)
    assert jac.compiles == 1
    seen = []
    jl.jit(jl.grad(lambda w, s: seen.append(isinstance(s, np.float32)) or s * np.sum(w ** 2)))(np.ones(2),
                                                                                                np.float32(2.0))
    assert seen == [True]  # f sees the scalar's own type while compiling, as it would eagerly


def test_a_stiff_solver_takes_the_compiled_jacobian_at_np_float64_times():
    """The README's solve_ivp(..., jac=lambda t, y: jac(np.float64(t), y)): one program for the whole solve,
    the solution the hand-written Jacobian gives."""
    from scipy.integrate import solve_ivp

    def rhs(t, y):  # a forced van der Pol oscillator, stiff at mu = 50
        return np.stack([y[1], 50.0 * (1 - y[0] ** 2) * y[1] - y[0] + np.cos(t)])

    def by_hand(t, y):
        return np.array([[0.0, 1.0], [-100.0 * y[0] * y[1] - 1.0, 50.0 * (1 - y[0] ** 2)]])

    jac = jl.jit(jl.jacobian(rhs, argnums=1))
    solve = dict(fun=rhs, t_span=(0.0, 20.0), y0=[2.0, 0.0], method="BDF", rtol=1e-8, atol=1e-10)
    ours, reference = solve_ivp(**solve, jac=lambda t, y: jac(np.float64(t), y)), solve_ivp(**solve, jac=by_hand)
    assert ours.success and ours.njev > 8
    np.testing.assert_allclose(ours.y[:, -1], reference.y[:, -1], rtol=1e-10)
    assert jac.compiles == 1


def test_a_hessian_in_a_scalar_exponent_argument_follows_the_exponent():
    """p(p - 1) w^(p - 2) on the diagonal: the recorded p - 1 of the second order is recomputed, not kept."""
    H, w = jl.jit(jl.hessian(lambda w, p: np.sum(w ** p))), np.array([1.0, 2.0, 4.0])
    for p in (np.float64(1.5), np.float64(2.5), np.float64(2.0), np.asarray(3.5)):
        np.testing.assert_allclose(H(w, p), np.diag(p * (p - 1) * w ** (p - 2)), rtol=1e-13)
    assert H.compiles == 2  # a NumPy scalar and a 0-d array: two kinds of input


def test_a_power_of_an_argument_that_is_2_on_the_first_call_is_not_a_square_on_the_next():
    step, w = jl.jit(jl.grad(lambda w, s: np.sum(w ** 2) * 2.0 ** s)), np.array([1.0, 3.0, 4.0])
    for s in (np.float64(2.0), np.float64(3.0), np.float64(0.5)):
        np.testing.assert_allclose(step(w, s), 2 * w * 2.0 ** s, rtol=1e-14)
    assert step.compiles == 1


def test_an_argument_compared_with_a_string_or_asked_a_scalars_method_answers_as_eager():
    def f(w, t):
        flag = 3.0 if t == "auto" or t != "auto" and t.is_integer() else 1.0
        return flag * np.linalg.norm(w, ord=t)

    step, w = jl.jit(jl.grad(f)), np.array([1.0, -2.0, 3.0])
    for t in (np.float64(2.0), np.float64(1.5), np.int64(1)):
        np.testing.assert_allclose(step(w, t), jl.grad(f)(w, t), rtol=1e-13)


def test_an_element_of_an_argument_is_recomputed():
    step, w = jl.jit(jl.grad(lambda w, y: y[0] * np.sum(w ** 2) + y[-1] * w[0])), np.array([1.0, 2.0])
    for y in (np.array([2.0, 5.0, 7.0]), np.array([-1.0, 0.5, 3.0])):
        np.testing.assert_allclose(step(w, y), 2 * y[0] * w + [y[-1], 0.0], rtol=1e-14)
    assert step.compiles == 1


def test_other_numpy_scalars_are_compiled_in():
    step = jl.jit(jl.grad(lambda w, day: np.sum(w ** 2) * (2.0 if day > np.datetime64("2026-01-01") else 1.0)))
    np.testing.assert_allclose(step(np.ones(2), np.datetime64("2026-06-01")), [4.0, 4.0])
    np.testing.assert_allclose(step(np.ones(2), np.datetime64("2025-06-01")), [2.0, 2.0])
    assert step.compiles == 2


def heat(t, y, k):
    """A reaction-diffusion right-hand side forced in time: its Jacobian in y is tridiagonal."""
    inner = k * (y[2:] - 2 * y[1:-1] + y[:-2]) - y[1:-1] ** 3 + np.cos(t)
    return np.concatenate([np.zeros(1), inner, np.zeros(1)])


def heat_jacobian(t, y, k):
    n = len(y)
    J = np.zeros((n, n))
    for i in range(1, n - 1):
        J[i, i - 1], J[i, i], J[i, i + 1] = k, -2 * k - 3 * y[i] ** 2, k
    return J


def test_a_sparse_jacobian_in_argnums_compiles_once_for_every_time_and_parameter():
    jac, y = jl.jit(jl.sparse_jacobian(heat, argnums=1)), np.linspace(0.0, 1.0, 12)
    assert repr(jl.sparse_jacobian(heat, argnums=1)) == "sparse_jacobian(heat, mode='auto', argnums=1)"
    for t, k in ((0.1, 2.0), (0.5, 3.0), (2.0, 1.0)):
        np.testing.assert_allclose(jl.sparse_jacobian(heat, argnums=1)(t, y, k).toarray(), heat_jacobian(t, y, k))
        S = jac(np.float64(t), y, np.float64(k))
        assert S.nnz == 3 * 10
        np.testing.assert_allclose(S.toarray(), heat_jacobian(t, y, k), rtol=1e-14)
    assert jac.compiles == 1


def test_a_compiled_sparse_jacobian_gathering_by_labels_keeps_their_exact_pattern():
    """The pattern of x[src] - x[dst] is the edges': read from the labels, and checked on each call (a new
    graph compiles another program, the same graph replays), never dense, never a stale graph's."""
    f = lambda x, src, dst: np.sin(x)[src] - 2.0 * x[dst]  # noqa: E731
    jac, x = jl.jit(jl.sparse_jacobian(f, argnums=0)), np.linspace(0.1, 1.0, 40)
    graphs = [(RNG.permutation(40)[:30], RNG.permutation(40)[:30]) for _ in range(2)]
    for src, dst in graphs + graphs:
        with counting() as counter:
            J = jac(x, src, dst)
        dense = jl.jacobian(f, argnums=0)(x, src, dst)
        np.testing.assert_array_equal(J.toarray(), dense)
        assert J.nnz == np.count_nonzero(dense) and counter.passes <= 3
    assert jac.compiles == 2


def test_a_compiled_sparse_jacobian_recorded_at_a_kept_pattern_still_checks_its_labels():
    """A second program recorded where the gathered positions had not changed (the labels' dtype had) took the
    pattern kept from the first without reading the labels, and replayed it for other labels: zeros."""
    f = lambda x, i: np.sin(x)[i] * 2.0  # noqa: E731
    jac, x = jl.jit(jl.sparse_jacobian(f, argnums=0)), np.linspace(0.1, 1.0, 8)
    for i in (np.array([-3]), np.array([5], dtype=np.int8), np.array([2], dtype=np.int8)):
        np.testing.assert_array_equal(jac(x, i).toarray(), jl.jacobian(f, argnums=0)(x, i))
    assert jac.compiles == 3


def test_a_stiff_solver_takes_the_compiled_sparse_jacobian_at_each_time():
    from scipy.integrate import solve_ivp

    jac, y0 = jl.jit(jl.sparse_jacobian(heat, argnums=1)), 10 * np.sin(np.linspace(0.0, np.pi, 40))
    solve = dict(fun=lambda t, y: heat(t, y, 400.0), t_span=(0.0, 10.0), y0=y0, method="BDF", rtol=1e-8, atol=1e-10)
    ours = solve_ivp(**solve, jac=lambda t, y: jac(np.float64(t), y, np.float64(400.0)))
    reference = solve_ivp(**solve, jac=lambda t, y: heat_jacobian(t, y, 400.0))
    assert ours.success and ours.njev > 3
    np.testing.assert_allclose(ours.y[:, -1], reference.y[:, -1], rtol=1e-9, atol=1e-12)
    assert jac.compiles == 1


def test_one_array_passed_twice_is_two_inputs():
    step, w = jl.jit(jl.grad(least_squares)), RNG.standard_normal(4)
    A = RNG.standard_normal((4, 4))
    b = A[0].copy()
    np.testing.assert_allclose(step(w, A, A[0]), least_squares_gradient(w, A, A[0]), rtol=1e-12)
    X, y = RNG.standard_normal((4, 4)), RNG.standard_normal(4)
    np.testing.assert_allclose(step(w, X, y), least_squares_gradient(w, X, y), rtol=1e-12)
    np.testing.assert_allclose(step(w, A, b), least_squares_gradient(w, A, b), rtol=1e-12)
    assert step.compiles == 1


def cross_entropy(W, X, labels):
    logits = X @ W
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return -np.sum(logp[np.arange(len(labels)), labels])


def cross_entropy_one_hot(W, X, labels):
    logits = X @ W
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return -np.sum(logp * np.eye(4)[labels])  # NumPy's own indexing of a constant: labels read


def softmax_gradient(W, X, labels):
    p = np.exp(X @ W)
    p /= p.sum(axis=1, keepdims=True)
    return X.T @ (p - np.eye(4)[labels])  # by hand


@pytest.mark.parametrize("make", [jl.grad, jl.jacobian])
def test_labels_used_as_an_index_are_recomputed_for_every_batch(make):
    """In auto mode (jl.jacobian) too, whose choice of order runs f once more before it is recorded."""
    W, X = RNG.standard_normal((3, 4)), RNG.standard_normal((6, 3))
    step = jl.jit(make(cross_entropy))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in range(KEEP_PROGRAMS + 2):
            labels = np.array([k % 4, k // 4, 0, 1, 2, 3])  # another pair of first labels on every call
            np.testing.assert_allclose(step(W, X, labels), softmax_gradient(W, X, labels), rtol=1e-12, atol=1e-14)
    assert step.compiles == 1


# Each reads z (8 x 3, from x) or X (8 x 4, an argument) at labels y of 8 rows, whose positions never repeat.
INDEXED = {
    "z[arange, y]": lambda W, X, y: np.sum(np.tanh(X @ W)[np.arange(8), y] ** 2),
    "take_along_axis": lambda W, X, y: np.sum(np.take_along_axis(np.exp(X @ W), y[:, None], axis=1)),
    "take_along_axis None": lambda W, X, y: np.sum(np.take_along_axis((X @ W).ravel(), 3 * np.arange(8) + y,
                                                                      axis=None) ** 3),
    "take flat": lambda W, X, y: np.sum(np.take(np.sin(X @ W), 3 * np.arange(8) + y) ** 2),
    "z[-1 - y]": lambda W, X, y: np.sum((X @ W)[np.arange(8), -1 - y.astype(np.int64)] ** 2),  # negative
    "z[2-d]": lambda W, X, y: np.sum((X @ W)[np.arange(8).reshape(2, 4), y.reshape(2, 4)] ** 2),
    "X[arange, y]": lambda W, X, y: np.sum(X[np.arange(8), y][:, None] * W[0] ** 2),
    "X[:, [0, 2]]": lambda W, X, y: np.sum((X[:, [0, 2]] @ W[:2]) ** 2),
    "X[::2][y[::2]]": lambda W, X, y: np.sum(X[::2][np.arange(4), y[::2]] * np.sum(W)),
    "W[rows]": lambda W, X, y: np.sum(np.cos(W[(np.arange(3) + y[0]) % 4]) * X[:3, :3]),
    "z[arange, clip(y)]": lambda W, X, y: np.sum(np.tanh(X @ W)[np.arange(8), np.clip(y, 0, 2)] ** 2),
}


def svm_loss(W, X, y):
    """The multiclass hinge loss as NumPy code writes it: the margins of the right classes set to 0."""
    scores = X @ W
    margins = np.maximum(0.0, scores - scores[np.arange(len(y)), y][:, None] + 1.0)
    margins[np.arange(len(y)), y] = 0.0
    return np.sum(margins) / len(y)


def svm_gradient(W, X, y):
    rows = np.arange(len(y))
    scores = X @ W
    active = (scores - scores[rows, y][:, None] + 1.0 > 0).astype(float)
    active[rows, y] = 0.0
    active[rows, y] = -active.sum(axis=1)
    return X.T @ active / len(y)


# Each writes into z (8 x 3, from x) at labels y of 8 rows, whose positions never repeat.
WRITTEN = {
    "hinge loss": svm_loss,
    "z[arange, y] -= v": lambda W, X, y: _written(W, X, y, lambda z, at: z.__setitem__(at, z[at] - z[at] ** 2)),
    "z[arange, y] = v of x": lambda W, X, y: _written(W, X, y, lambda z, at: z.__setitem__(at, np.sin(z[at]) * W[0, 0])),
    "z[y[:1]] = 1": lambda W, X, y: _written(W, X, y, lambda z, at: z.__setitem__(y[:1], 1.0)),  # a row
}


def _written(W, X, y, write):
    z = np.tanh(X @ W)
    write(z, (np.arange(8), y))
    return np.sum(z ** 3)


@pytest.mark.parametrize("make", [jl.grad, jl.jacfwd, jl.jacobian, jl.hessian])
@pytest.mark.parametrize("name", [*INDEXED, *WRITTEN])
def test_integer_indices_from_arguments_compile_once(name, make):
    """Labels index a value computed from x, or an argument, or select where f writes into one (an array that is
    no view, where they do not repeat): one program for every batch of int64 labels, one more for uint8 ones,
    its derivatives the uncompiled function's."""
    f = {**INDEXED, **WRITTEN}[name]
    step, W = jl.jit(make(f)), RNG.standard_normal((4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.int64,) * 4 + (np.uint8,) * 2:
            X, y = RNG.standard_normal((8, 4)), RNG.integers(0, 3, size=8).astype(dtype)
            np.testing.assert_allclose(step(W, X, y), make(f)(W, X, y), rtol=1e-12, atol=1e-13)
            if f is svm_loss and make is jl.grad:
                np.testing.assert_allclose(step(W, X, y), svm_gradient(W, X, y), rtol=1e-12, atol=1e-14)
    assert step.compiles == 2


@pytest.mark.parametrize("mask", ["y == 0", "(y == 0)[:, None] & (W[0] > 0)", "y[0] == 0"])
def test_a_write_by_a_mask_of_rows_from_labels_compiles_once(mask):
    """``Z[labels == 0] = 0`` selects rows: a select, as a mask of Z's shape is, where the write read it."""
    def f(W, X, y):
        z = np.tanh(X @ W)
        z[eval(mask)] = 0.5
        return np.sum(z ** 2)

    step, W = jl.jit(jl.grad(f)), RNG.standard_normal((4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(4):
            X, y = RNG.standard_normal((8, 4)), RNG.integers(0, 3, size=8)
            m = eval(mask)
            z, kept = np.tanh(X @ W), ~np.broadcast_to(np.reshape(m, np.shape(m) + (1,) * (2 - np.ndim(m))), (8, 3))
            np.testing.assert_allclose(step(W, X, y), X.T @ (2 * z * (1 - z ** 2) * kept), rtol=1e-12, atol=1e-15)
            np.testing.assert_array_equal(step(W, X, y), jl.grad(f)(W, X, y))
    assert step.compiles == 1


@pytest.mark.parametrize("write", ["z[np.arange(8), y] = t", "z[np.arange(8), y] = t[0]", "z[0] = X[0, :3]",
                                   "z[np.arange(8), y] = X[:, 0]", "z[y == 0] = t[:1]", "z[y == 0, :] = 0.5",
                                   "z[y == 1, ...] = t[0]", "z[1:] = (X[1:, :3] > 0).astype(np.int64)"])
def test_an_arguments_values_written_into_a_value_are_recomputed(write):
    """What f writes may be an argument's (a target t, a column of X): a program's operand, where the write read
    it and compiled a program per batch."""
    def f(W, X, y, t):
        z = np.tanh(X @ W)
        exec(write, {"np": np}, {"z": z, "X": X, "y": y, "t": t})
        return np.sum(z ** 3)

    step, W = jl.jit(jl.grad(f)), RNG.standard_normal((4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(4):
            X, y, t = RNG.standard_normal((8, 4)), RNG.integers(0, 3, size=8), RNG.standard_normal(8)
            np.testing.assert_allclose(step(W, X, y, t), jl.grad(f)(W, X, y, t), rtol=1e-12, atol=1e-14)
    assert step.compiles == 1


def test_a_write_at_repeated_positions_reads_them():
    """Where positions repeat, the last write wins, as in NumPy: such labels are read, a program per pattern."""
    def f(w, y):
        z = np.sin(w) * 1.0
        z[y] = w[:len(y)] ** 2
        return z
    step, w = jl.jit(jl.jacrev(f)), RNG.standard_normal(6)
    for y in ([0, 3, 3], [1, 1, 1], [5, 2, 0], [2, 4, 1]):
        y = np.array(y)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(step(w, y), jl.jacrev(f)(w, y))
    assert step.compiles == 3  # a program for each pattern of repeats, one for every distinct three


def test_a_compiled_sparse_jacobian_writing_at_labels_keeps_their_exact_pattern():
    f = lambda x, i: _put(x * 2.0, i, np.sin(x[:3]))  # noqa: E731
    jac, x = jl.jit(jl.sparse_jacobian(f, argnums=0)), np.linspace(0.1, 1.0, 10)
    for i in (RNG.permutation(10)[:3], RNG.permutation(10)[:3]):
        dense = jl.jacobian(f, argnums=0)(x, i)
        J = jac(x, i)
        np.testing.assert_array_equal(J.toarray(), dense)
        assert J.nnz == np.count_nonzero(dense)


def _put(z, i, v):
    z[i] = v
    return z


@pytest.mark.parametrize("strides", [False, True])
def test_positions_of_integer_indices_are_numpys(strides, monkeypatch):
    """`positions` computes an index of one integer array per axis into a large array from strides, without
    NumPy's indexing (`strides`: for every size here): the same positions, negative ones counted from the end,
    and NumPy's IndexError where it raises one."""
    from jacobian_lab.rules import shape
    from jacobian_lab.rules.shape import SLOT, positions
    if strides:
        monkeypatch.setattr(shape, "RAVEL_ABOVE", 0)
    for k in range(40):
        shape = tuple(RNG.integers(1, 5, size=RNG.integers(1, 4)))
        index = tuple(RNG.integers(-n, n, size=(2, 1, 3)[-RNG.integers(1, 4):]).astype(RNG.choice(["int64", "int32"]))
                      for n in shape[:RNG.integers(1, len(shape) + 1)])  # the other axes whole: W[tokens]
        expected = np.arange(int(np.prod(shape))).reshape(shape)[index]
        np.testing.assert_array_equal(positions(*index, shape=shape, index=(SLOT,) * len(index)), expected)
    for dtype in (np.int8, np.uint8, np.int16):  # a label times a stride beyond the label's dtype
        rows = np.array([-1, 0, 100, 127], dtype=dtype) if dtype != np.uint8 else np.array([255, 0, 100], dtype=dtype)
        index = (rows, np.arange(rows.size))
        np.testing.assert_array_equal(positions(*index, shape=(300, 300), index=(SLOT, SLOT)),
                                      np.arange(90_000).reshape(300, 300)[index])
    for index, message in [((np.array([3]), np.array([0])), "index 3 is out of bounds for axis 0 with size 3"),
                           ((np.array([0]), np.array([-5])), "index -5 is out of bounds for axis 1 with size 4"),
                           ((np.array([0, 1]), np.array([0, 1, 2])), "shape mismatch")]:
        for read in (lambda: positions(*index, shape=(3, 4), index=(SLOT, SLOT)), lambda: np.ones((3, 4))[index]):
            with pytest.raises(IndexError, match=re.escape(message)):
                read()


@pytest.mark.parametrize("make", [jl.grad, jl.hessian])
def test_a_gather_by_labels_counts_what_eager_mode_counts(make):
    """Labels gathering columns repeat: the adds of the gradient's scatter follow the repeats, which one program
    counts again at each replay (it had compiled a program per number of repeats): what a program compiled at
    those labels costs, and for a gradient what the uncompiled function counts. A Hessian's forward passes push
    tangents through that scatter."""
    f = lambda W, X, y: np.sum(np.sin(X @ W)[:, y] ** 2)  # noqa: E731
    step, W, X = jl.jit(make(f)), RNG.standard_normal((4, 3)), RNG.standard_normal((8, 4))
    step(W, X, np.array([1, 2, 0, 1]))  # compiled here: the calls below replay
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for y in ([0, 1, 2, 0], [2, 2, 1, 0], [1, 0, 2, 1], [2, 2, 2, 2], [0, 0, 1, 1], [0, 1, 2, 2]):
            y = np.array(y)  # 1, 1, 1, 3, 2 and 1 repeats
            with counting() as compiled:
                g = step(W, X, y)
            with counting() as eager:
                np.testing.assert_allclose(g, make(f)(W, X, y), rtol=1e-12, atol=1e-14)
            fresh = jl.jit(make(f)).program(W, X, y)
            assert {phase: compiled.cost(phase) for phase in fresh.costs} == fresh.costs
            assert make is jl.hessian or compiled.cost("cotangent") == eager.cost("cotangent")
    assert step.compiles == 1


def test_embeddings_of_tokens_whose_repeats_vary_compile_once():
    """W[tokens] with a new batch of tokens per call: how many repeat varies from batch to batch (it took a
    program per count, and after eight computed the gradient without compiling)."""
    loss = lambda E, tokens, t: np.sum((np.tanh(E[tokens]).sum(axis=1) - t) ** 2)  # noqa: E731
    step, E = jl.jit(jl.grad(loss)), RNG.standard_normal((50, 4))
    counts = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(KEEP_PROGRAMS + 4):
            tokens, t = RNG.integers(0, 50, size=40), RNG.standard_normal(40)
            counts.add(40 - np.unique(tokens).size)
            with counting() as compiled:
                g = step(E, tokens, t)
            with counting() as eager:
                np.testing.assert_allclose(g, jl.grad(loss)(E, tokens, t), rtol=1e-13, atol=1e-14)
            assert compiled.cost("cotangent") == eager.cost("cotangent")
    assert step.compiles == 1 and len(counts) > 2


def test_labels_out_of_bounds_raise_as_numpy_does():
    step = jl.jit(jl.grad(lambda w, y: np.sum(w[y] ** 2)))
    np.testing.assert_allclose(step(np.ones(3), np.array([0, 2])), [2.0, 0.0, 2.0])
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 with size 3"):
        step(np.ones(3), np.array([0, 3]))
    np.testing.assert_allclose(step(np.ones(3), np.array([1, 1])), [0.0, 4.0, 0.0])  # then on as before


def write_at(w, y):
    z = w * 1.0
    z[y] = 0.0
    return np.sum(z ** 2)


@pytest.mark.parametrize("f", [lambda w, y: np.sum(w[y] ** 2), lambda w, y: np.sum(np.outer(w, w)[np.arange(2), y]),
                               write_at], ids=["gather", "pairs", "write"])
def test_float_labels_raise_numpys_error_as_without_jit(f):
    message = re.escape("arrays used as indices must be of integer (or boolean) type")
    for step in (jl.grad(f), jl.jit(jl.grad(f))):
        with pytest.raises(IndexError, match=message):
            step(np.ones(3), np.array([0.0, 1.0]))


def test_asking_whether_an_argument_is_complex_reads_its_dtype_alone():
    """np.iscomplexobj(X), np.isrealobj(X): a program per batch, as if the numbers were read."""
    f = lambda w, X: np.sum((X @ w) ** 2) if np.isrealobj(X) and not np.iscomplexobj(X * 2.0) else 0.0  # noqa: E731
    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(3)
    for X, _ in batches(3):
        np.testing.assert_allclose(step(w, X), 2 * X.T @ (X @ w), rtol=1e-12)
    assert step.compiles == 1


def test_a_boolean_mask_of_an_argument_is_read():
    """X[y > 0] has as many rows as y has positive labels: a shape, which a program checks."""
    step, w = jl.jit(jl.grad(lambda w, X, y: np.sum(X[y > 0] @ w))), RNG.standard_normal(3)
    for y in ([1, 0, 1], [1, 1, 0], [0, 1, 1]):
        X, y = RNG.standard_normal((3, 3)), np.array(y)
        np.testing.assert_allclose(step(w, X, y), X[y > 0].sum(axis=0), rtol=1e-12)
    assert step.compiles == 3


@pytest.mark.parametrize("make", [jl.grad, jl.jacobian])
def test_labels_read_by_numpy_are_checked_and_a_new_batch_recompiles(make):
    W, X = RNG.standard_normal((3, 4)), RNG.standard_normal((6, 3))
    step = jl.jit(make(cross_entropy_one_hot))
    for k in range(KEEP_PROGRAMS + 1):
        labels = np.array([k % 4, k // 4, 0, 1, 2, 3])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            np.testing.assert_allclose(step(W, X, labels), softmax_gradient(W, X, labels), rtol=1e-12, atol=1e-14)
        if k < KEEP_PROGRAMS:
            assert not caught
    assert step.compiles == KEEP_PROGRAMS
    assert re.search(r"they differed at .*test_jit_arguments.py:\d+ \(return -np.sum\(logp", str(caught[0].message))


@pytest.mark.parametrize("make", [jl.grad, jl.jacobian])
def test_numbers_f_reads_from_an_argument_are_checked(make):
    def f(w, X):
        mean = np.asarray(X).mean(axis=0)  # plain NumPy on the numbers: a program checks them
        return np.sum((X - mean) @ w ** 2)

    step, w = jl.jit(make(f)), RNG.standard_normal(3)
    for X in (RNG.standard_normal((5, 3)), RNG.standard_normal((5, 3))):
        np.testing.assert_allclose(step(w, X), 2 * w * np.sum(X - X.mean(axis=0), axis=0), rtol=1e-12, atol=1e-12)
    assert step.compiles == 2


def test_arrays_shaped_like_an_argument_read_no_numbers():
    def weighted(w, X, y):
        weights = np.ones_like(y) + np.zeros_like(X[:, 0])  # shapes alone: one program for every batch
        return np.sum(weights * (X @ w - y) ** 2)

    step, w = jl.jit(jl.grad(weighted)), RNG.standard_normal(3)
    for X, y in batches(3):
        np.testing.assert_allclose(step(w, X, y), least_squares_gradient(w, X, y), rtol=1e-12)
    assert step.compiles == 1


A = RNG.standard_normal((3, 2))
ARITHMETIC = {  # what f computes from an argument X alone, by NumPy's functions and ndarray's methods
    "np.sum(X, axis=0)": lambda X: np.sum(X, axis=0), "X.mean(axis=0)": lambda X: X.mean(axis=0),
    "X - X.mean(0) over X.std(0)": lambda X: (X - X.mean(0)) / X.std(0),
    "np.var(X, ddof=1)": lambda X: np.var(X, ddof=1),
    "np.max(X, axis=1)": lambda X: np.max(X, axis=1), "X.min()": lambda X: X.min(), "np.amax(X)": np.amax,
    "X.prod(axis=1)": lambda X: X.prod(axis=1), "np.dot(X, A)": lambda X: np.dot(X, A), "X.dot(A)": lambda X: X.dot(A),
    "np.clip(X, -0.5, 0.5)": lambda X: np.clip(X, -0.5, 0.5), "X.clip(0.0)": lambda X: X.clip(0.0),
    "np.linalg.norm(X, axis=1)": lambda X: np.linalg.norm(X, axis=1), "np.average(X, axis=0)":
        lambda X: np.average(X, axis=0, weights=[1.0, 2.0, 3.0, 4.0, 5.0]),
    # products and linear algebra of X alone, and with plain constants of another dtype
    "np.einsum('ij,ij->i', X, X)": lambda X: np.einsum("ij,ij->i", X, X),
    "np.einsum('ij,jk->ik', X, A)": lambda X: np.einsum("ij,jk->ik", X, A),
    "np.einsum(optimize=True)": lambda X: np.einsum("ij,kj->ik", X[:3], X[:3], optimize=True),
    "np.outer": lambda X: np.outer(X[:, 0], X[:2, 1]), "np.inner": lambda X: np.inner(X[:3], X[:3]),
    "np.tensordot(axes=pairs)": lambda X: np.tensordot(X[:2], X[:3], axes=([1], [1])),
    "np.tensordot(axes=1)": lambda X: np.tensordot(X[:2, :2], X[:2, :2], 1),
    "np.kron": lambda X: np.kron(X[:2, :1], X[2:4, :2]), "np.vdot": lambda X: np.vdot(X, X),
    "np.trace(offset=1)": lambda X: np.trace(X, offset=1), "np.diag(X, k=-1)": lambda X: np.diag(X, k=-1),
    "np.diag of a vector": lambda X: np.diag(X[:3, 0]), "np.triu(X, k=1)": lambda X: np.triu(X, k=1),
    "np.tril": np.tril, "np.linalg.inv": lambda X: np.linalg.inv(X.T @ X),
    "np.linalg.det": lambda X: np.linalg.det(X[:3]), "np.linalg.solve": lambda X: np.linalg.solve(X[:3], X[3]),
    "np.linalg.cholesky": lambda X: np.linalg.cholesky(np.cov(X.T) + np.eye(3)),
    "np.linalg.pinv": np.linalg.pinv, "np.linalg.eigvalsh": lambda X: np.linalg.eigvalsh(X.T @ X),
    "np.cov(rowvar=False)": lambda X: np.cov(X, rowvar=False),
    "np.cov(bias, aweights)": lambda X: np.cov(X.T, bias=True, aweights=[1.0, 2.0, 1.0, 0.5, 3.0]),
    "np.corrcoef": lambda X: np.corrcoef(X.T), "np.ptp": lambda X: np.ptp(X, axis=0),
    "np.trapezoid(dx)": lambda X: np.trapezoid(X, dx=0.5, axis=0),
    "np.trapezoid(y, x)": lambda X: np.trapezoid(X[:, 0], np.sort(X[:, 1])),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32])
@pytest.mark.parametrize("name", ARITHMETIC)
def test_numpy_functions_of_an_argument_alone_are_recomputed(name, dtype):
    """Preprocessing a batch of floats inside f (centering, scaling, norms) compiles once, in eager mode's
    dtypes; integers (which NumPy converts first, where they may overflow) are read, and right."""
    compute = ARITHMETIC[name]

    def f(w, X):
        v = np.ravel(compute(X))
        return np.sum(w[:v.size] * v) * np.sum(w ** 2)

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(15)
    for _ in range(3):
        X = (10 * RNG.standard_normal((5, 3)) * (30_000 if np.dtype(dtype).kind == "i" else 1)).astype(dtype)
        got, expected = step(w, X), jl.grad(f)(w, X)  # int32 squares overflow where not converted first
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert step.compiles == 1 or np.dtype(dtype).kind != "f"


@pytest.mark.parametrize("compute", [
    lambda X: np.linalg.pinv(X.T @ X, hermitian=True), lambda X: np.cov(X.T, dtype=np.float32),
    lambda X: np.einsum("ij->ji", X[:3], order="C"), lambda X: np.trace(X, dtype=np.int64)],
    ids=["pinv hermitian", "cov dtype", "einsum order", "trace int dtype"])
def test_options_jacobian_lab_refuses_are_read_of_an_argument_alone(compute):
    """Options of those functions that jacobian_lab's implementations refuse on traced arrays are NumPy's to
    compute, on the numbers read (a program per batch), as they were before the functions were recorded."""
    def f(w, X):
        v = np.ravel(compute(X))
        return np.sum(w[:v.size] * v) * np.sum(w ** 2)

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(15)
    for X, _ in batches(3):
        np.testing.assert_allclose(step(w, X), jl.grad(f)(w, X), rtol=1e-12)


@pytest.mark.parametrize("call", ["np.einsum('ij,jk->ik', X, W)", "np.einsum('ij,jk', X, W, optimize=True)",
                                  "X.astype(np.float64, copy=False) @ W", "X.astype(np.float32, copy=False) @ W"])
def test_an_argument_converted_without_a_copy_is_recomputed(call):
    """einsum converts its plain operands to their common dtype with astype(copy=False), which read X: a program
    per batch for an einsum of X and W."""
    def f(W, X):
        return np.sum(np.tanh(eval(call, {"np": np, "X": X, "W": W})) ** 2)

    step, W = jl.jit(jl.grad(f)), RNG.standard_normal((3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for X, _ in batches(3):
            np.testing.assert_allclose(step(W, X), jl.grad(f)(W, X), rtol=1e-12)
    assert step.compiles == 1


def test_scipy_drop_ins_compute_with_arguments():
    """A likelihood over batches, written with jacobian_lab.scipy: the batch and the scale are inputs."""
    from jacobian_lab.scipy import spatial, special, stats

    def f(w, X, y, s, P):
        residual = y - X @ w
        return (np.sum(stats.norm.logpdf(y, X @ w, s)) + np.sum(stats.t.logpdf(residual, 3.0 + s))
                + special.logsumexp(X @ w, b=np.abs(y)) + np.sum(spatial.distance.cdist(w[None, :], P))
                + special.logsumexp(X[:, 0], b=np.exp(w[0]) * np.abs(y)))  # shifted by an argument's maximum

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(3)
    for X, y in batches(4):
        s, P = np.float64(RNG.uniform(0.5, 2.0)), RNG.standard_normal((4, 3))
        np.testing.assert_allclose(step(w, X, y, s, P), jl.grad(f)(w, X, y, s, P), rtol=1e-12)
    assert step.compiles == 1


POSITIONAL = {  # a parameter NumPy takes positionally, an argument d of f: read as a number, and checked
    "ddof": lambda X, d: np.var(X, 0, None, None, d),
    "initial": lambda X, d: np.max(X, 0, None, False, 5.0 - 10.0 * d),
    "ord": lambda X, d: np.linalg.norm(X, d, 0),
    "axis": lambda X, d: np.sum(X, d % 2)[:3],
}


@pytest.mark.parametrize("name", POSITIONAL)
def test_a_parameter_given_positionally_as_an_argument_is_read(name):
    compute = POSITIONAL[name]

    def f(w, X, d):
        return np.sum(w[:3] * compute(X, d))

    step, w, X = jl.jit(jl.grad(f)), RNG.standard_normal(4), RNG.standard_normal((4, 3))
    for d in (np.int64(1), np.int64(2), np.int64(1)):
        np.testing.assert_allclose(step(w, X, d), jl.grad(f)(w, X, d), rtol=1e-13)


def test_a_buffer_given_positionally_as_out_is_written_as_numpy_writes_it():
    def into_a_buffer(w, X):
        buffer = np.zeros(3)
        np.sum(X, 0, None, buffer)
        return np.sum(w * buffer)

    def into_an_argument(w, X, buffer):
        np.mean(X, 0, None, buffer)
        return np.sum(w * buffer)

    w = RNG.standard_normal(3)
    for X, _ in batches(2, rows=4):
        np.testing.assert_allclose(jl.jit(jl.grad(into_a_buffer))(w, X), X.sum(axis=0), rtol=1e-14)
        with pytest.warns(UserWarning, match="wrote into its argument 2"):  # as eager mode, into the caller's
            np.testing.assert_allclose(jl.jit(jl.grad(into_an_argument))(w, X, np.zeros(3)), X.mean(axis=0))


OUT_IN_PLACE = {  # NumPy writing into a buffer given in out's place, by functions and methods
    "np.cumsum(X, 0, None, buffer)": lambda X, buffer: np.cumsum(X, 0, None, buffer),
    "X.round(1, buffer)": lambda X, buffer: X.round(1, buffer),
    "np.max(X, 0, buffer, False)": lambda X, buffer: np.max(X, 0, buffer, False),
    "X.sum(0, None, buffer)": lambda X, buffer: X.sum(0, None, buffer),
}


@pytest.mark.parametrize("name", OUT_IN_PLACE)
def test_a_buffer_written_in_outs_place_holds_what_numpy_writes(name):
    def f(w, X):
        buffer = np.zeros_like(X if "round" in name or "cumsum" in name else X[0])
        OUT_IN_PLACE[name](X, buffer)
        return np.sum(w * np.ravel(buffer)[:3])

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(3)
    for X, _ in batches(2, rows=4):
        np.testing.assert_allclose(step(w, X), jl.grad(f)(w, X), rtol=1e-14)


def test_numpy_functions_and_wrappers_are_compiled_in_and_an_objects_method_refused():
    import operator

    def f(w, X, reduce, pick):
        return np.sum(w * reduce(pick(X), axis=0))

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(3)
    for reduce, pick in ((np.mean, operator.itemgetter(slice(1, None))), (np.max, np.vectorize(lambda v: 2 * v))):
        for X, _ in batches(2, rows=4):
            np.testing.assert_allclose(step(w, X, reduce, pick), jl.grad(f)(w, X, reduce, pick), rtol=1e-14)
    np.testing.assert_allclose(step(w, X, np.add.reduce, np.maximum.accumulate), jl.grad(f)(w, X, np.add.reduce,
                                                                                           np.maximum.accumulate))
    holder = type("Holder", (), {"scale": lambda self, X: X})()
    with pytest.raises(TypeError, match=r"argument 3 is a method: pass its arrays"):
        step(w, X, np.mean, holder.scale)


@pytest.mark.parametrize("call", ["np.clip(X, None, None)", "np.clip(X, 0.0, None)", "X.clip(max=0.5)",
                                  "np.var(X.astype(np.float16), 0)", "np.std(X, 0, None, None, 1, False)"])
def test_options_recorded_or_read_give_numpys_values(call):
    def f(w, X):
        return np.sum(w * eval(call, {"np": np, "X": X}).astype(float))

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(3)
    for X, _ in batches(2, rows=4):
        np.testing.assert_allclose(step(w, X), jl.grad(f)(w, X), rtol=1e-14)


def test_a_reduction_to_one_number_stands_for_numpys_scalar():
    """np.std(X) and a norm are NumPy scalars: immutable (s += 1 rebinds s), hashable, floats."""
    def f(w, X):
        s = np.std(X)
        t = s
        s += 1.0
        n = np.linalg.norm(X)
        return np.sum(w ** 2) * (t + {n: 2.0}[n] + (1.0 if isinstance(n, float) else 10.0))

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(3)
    for X, _ in batches(2, rows=4):
        np.testing.assert_allclose(step(w, X), 2 * w * (X.std() + 3.0), rtol=1e-13)  # (the key is read: checked)


def test_a_scalar_from_a_reduction_converts_prints_and_refuses_writes_as_numpys():
    def f(w, X):
        r = np.std(X).astype(np.float32)
        alias = r
        r += 1  # rebinds r: alias keeps the scalar
        assert isinstance(alias, np.float32) and repr(np.sum(X)).startswith("np.float64(")
        s = np.sum(X)
        try:
            s[()] = 1.0
        except TypeError:  # as NumPy's scalar refuses
            s = s * 2
        return np.sum(w * (float(alias) + s))

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(3)
    for X, _ in batches(2, rows=4):
        np.testing.assert_allclose(step(w, X), jl.grad(f)(w, X), rtol=1e-6)


def test_a_negative_zero_written_into_an_argument_keeps_its_sign():
    def f(w, X, b):
        np.round(-np.abs(X) * 0.0, 0, b)  # writes -0.0 into b, as eager mode does into the caller's b
        return np.sum(w * np.copysign(1.0, b))

    w, X = RNG.standard_normal(3), RNG.standard_normal(3)
    with pytest.warns(UserWarning, match="wrote into its argument 2"):
        np.testing.assert_array_equal(jl.jit(jl.grad(f))(w, X, np.zeros(3)), [-1.0, -1.0, -1.0])


@pytest.mark.parametrize("call", ["np.max(X, 0, where=True)", "np.sum(X, axis=np.array(0))", "np.sum(X, axis=None)",
                                  "np.max(X, None, keepdims=True)[0]",
                                  "np.linalg.norm(X, ord=np.array(2), axis=0)", "np.mean(X, 0, dtype=X.dtype)",
                                  "np.clip(X, min=0.0, max=1.0)", "X.clip(max=1.0)"])
def test_options_numpy_takes_in_other_forms_give_its_values(call):
    def f(w, X):
        return np.sum(w * eval(call, {"np": np, "X": X}))

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(3)
    for X, _ in batches(3, rows=4):
        np.testing.assert_allclose(step(w, X), jl.grad(f)(w, X), rtol=1e-14)
    assert step.compiles == 1 or "np.array(" in call or "min=" in call  # (read: 0-d arrays as options, min=)


def test_a_builtin_bound_to_an_array_is_refused_as_an_objects_method():
    A = RNG.standard_normal((3, 3))
    with pytest.raises(TypeError, match=r"argument 2 is a builtin_function_or_method: pass its arrays"):
        jl.jit(jl.grad(lambda w, X, apply: np.sum(apply(w))))(RNG.standard_normal(3), A, A.dot)


def test_dot_with_a_python_number_promotes_as_numpy():
    """np.dot takes a Python number as an array (float32 with 0.1 is float64), unlike the operators."""
    step, w = jl.jit(jl.grad(lambda w, X: np.sum(w * np.dot(X, 0.1)))), RNG.standard_normal(3)
    X = RNG.standard_normal(3).astype(np.float32)
    assert np.dot(X, 0.1).dtype == np.float64
    np.testing.assert_array_equal(step(w, X), np.dot(X, 0.1))


def test_masks_and_averages_give_numpys_results_through_their_methods_and_options():
    def f(w, X):
        mean, total = np.average(X, axis=0, returned=True)
        both = (w > 0).dot(w > 1)  # a method given another mask
        return np.sum(w * mean * total) * (2.0 if both else 1.0) + np.sum(np.zeros((0, 3)) + X[:0])

    step = jl.jit(jl.grad(f))
    for w in (np.array([2.0, -1.0, 0.5]), np.array([0.5, 2.0, 3.0])):
        X = RNG.standard_normal((4, 3))
        np.testing.assert_allclose(step(w, X), jl.grad(f)(w, X), rtol=1e-13)


def test_norms_and_variances_of_a_complex_argument_are_its_moduli():
    def f(w, Z):
        return np.sum(w ** 2) * (np.linalg.norm(Z) + np.var(Z) + Z.std())

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(3)
    for _ in range(2):
        Z = RNG.standard_normal(4) + 1j * RNG.standard_normal(4)
        np.testing.assert_allclose(step(w, Z), 2 * w * (np.linalg.norm(Z) + np.var(Z) + Z.std()), rtol=1e-13)


def test_conversions_and_copies_of_an_argument_are_recomputed():
    def f(w, X, counts):
        return np.sum((X.copy() @ w) * counts.astype(float))

    step, w = jl.jit(jl.grad(f)), RNG.standard_normal(3)
    for X, _ in batches(3):
        counts = RNG.integers(0, 5, len(X))
        np.testing.assert_allclose(step(w, X, counts), jl.grad(f)(w, X, counts), rtol=1e-12)
    assert step.compiles == 1


def test_a_non_finite_argument_gives_eager_values_in_a_compacted_forward_program():
    def decay(p, t):
        return p[0:1] * np.exp(-p[1:2] * t)

    jac, p = jl.jit(jl.jacfwd(decay)), np.array([2.0, 0.5])
    for t in (np.linspace(0.0, 1.0, 5), np.array([0.0, 1.0, np.inf, 2.0, -np.inf])):
        with np.errstate(invalid="ignore"):  # 0 * inf, in eager mode's products as in the program's
            np.testing.assert_array_equal(jac(p, t), jl.jacfwd(decay)(p, t))
    assert jac.compiles == 1
    assert "rows" in jac.program(p, np.ones(5)).source  # compacted: the multiplier t is checked, not the whole program


def test_an_operation_raising_on_a_new_argument_raises_as_eager_mode_does():
    step = jl.jit(jl.grad(lambda v, A: np.sum(np.linalg.solve(A, v))))
    v = np.ones(2)
    np.testing.assert_allclose(step(v, np.eye(2) * 2), [0.5, 0.5])
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        step(v, np.zeros((2, 2)))


def test_inside_another_derivative_the_uncompiled_function_runs():
    step, X, y = jl.jit(jl.grad(least_squares)), RNG.standard_normal((5, 3)), RNG.standard_normal(5)
    H = jl.jacfwd(lambda w: step(w, X, y))(RNG.standard_normal(3))
    np.testing.assert_allclose(H, 2 * X.T @ X, rtol=1e-12)
    assert step.compiles == 0


def test_a_new_shape_or_dtype_of_an_argument_compiles_another_program():
    step, w = jl.jit(jl.grad(least_squares)), RNG.standard_normal(3)
    for X, y in batches(1, rows=8) + batches(1, rows=5) + [(np.ones((5, 3), np.float32), np.ones(5, np.float32))]:
        np.testing.assert_allclose(step(w, X, y), least_squares_gradient(w, X, y), rtol=1e-6)
    assert step.compiles == 3


def test_an_argument_in_another_memory_layout_compiles_another_program():
    step, w = jl.jit(jl.grad(least_squares)), RNG.standard_normal(3)
    (X, y), = batches(1)
    for layout in (X, np.asfortranarray(X), X[::-1][::-1].T.copy().T, np.asfortranarray(2 * X)):
        np.testing.assert_allclose(step(w, layout, y), least_squares_gradient(w, layout, y), rtol=1e-12)
    assert step.compiles == 2  # C, then F (the third is C again, the fourth F)


def test_counting_a_replay_adds_its_programs_cost():
    step, w = jl.jit(jl.grad(least_squares)), RNG.standard_normal(3)
    (X, y), (X2, y2) = batches(2)
    step(w, X, y)
    with counting() as counter:
        step(w, X2, y2)
    assert counter.total() == step.program(w, X2, y2).cost
    assert counter.total().flops > 0


def centered(w, X):
    X -= X.mean(axis=0)
    return np.sum((X @ w) ** 2)


def aliased(w, A, B):
    A *= 2.0  # also B's values, where B is A
    return np.sum((A @ w) * (B @ w))


@pytest.mark.parametrize("make", [jl.grad, jl.jacobian, jl.jacfwd])
def test_f_writing_into_an_argument_is_computed_eagerly_as_written(make):
    """A program would not write into the caller's arrays, nor see a write through another argument of the
    same memory: such an f is computed as written, with one warning, from its first call on."""
    w, X = RNG.standard_normal(3), RNG.standard_normal((6, 3))
    step, expected, mine = jl.jit(make(centered)), make(centered)(w, X.copy()), X.copy()
    with pytest.warns(UserWarning, match=r"computed without compiling, because f wrote into its argument 1"):
        np.testing.assert_allclose(step(w, mine), expected, rtol=1e-12)
    np.testing.assert_allclose(mine, X - X.mean(axis=0), rtol=1e-15)  # written, as eager mode writes
    A = RNG.standard_normal((3, 3))
    with pytest.warns(UserWarning, match="wrote into its argument 1"):
        np.testing.assert_allclose(jl.jit(make(aliased))(w, A.copy(), A.copy()), make(aliased)(w, A.copy(), A.copy()))
    shared = A.copy()
    with pytest.warns(UserWarning, match="wrote into its argument 1"):
        got = jl.jit(make(aliased))(w, shared, shared)
    shared = A.copy()
    np.testing.assert_allclose(got, make(aliased)(w, shared, shared), rtol=1e-12)
    read_only = X.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jl.jit(make(centered))(w, read_only)


def test_compiled_in_values_are_told_apart_by_their_bits():
    def f(w, c):
        return np.sum(w ** 2) * (np.copysign(1.0, c) if c == c else 5.0)

    step, w = jl.jit(jl.grad(f)), np.array([2.0, 3.0])
    np.testing.assert_array_equal(step(w, 0.0), 2 * w)
    np.testing.assert_array_equal(step(w, -0.0), -2 * w)  # not 0.0's program
    for _ in range(3):
        np.testing.assert_array_equal(step(w, float("nan")), 10 * w)  # NaN != NaN, yet one program serves it
    assert step.compiles == 3


def test_a_zero_reaching_an_exponent_argument_recompiles_with_its_slope():
    """power's rules treat a zero exponent apart (the slope there is 0, not 0 * inf): whether the argument
    holds one is checked on every call."""
    step = jl.jit(jl.grad(lambda w, p: np.sum(w ** p)))
    w = np.array([0.0, 2.0, 3.0])
    np.testing.assert_allclose(step(w, np.array([1.0, 2.0, 3.0])), [1.0, 4.0, 27.0])
    np.testing.assert_allclose(step(w, np.array([0.0, 2.0, 3.0])), [0.0, 4.0, 27.0])
    assert step.compiles == 2


@pytest.mark.parametrize("value, message", [
    (np.array(["a", "b"]), r"argument 1 is an array of dtype <U1: pass numbers, or bind it first"),
    ({"k": {1, 2}}, r"argument 1\['k'\] is a set: pass its arrays \(in a tuple, list or dict\), or bind it"),
    (type("Batch", (), {})(), r"argument 1 is a Batch: pass its arrays"),
    (type("Scaler", (), {"__call__": lambda self, X: X})(), r"argument 1 is a Scaler: pass its arrays"),
    ({"k": slice(None)}, r"argument 1\['k'\] is a slice: pass its arrays"),
    (np.ma.masked_array(np.eye(2)), r"argument 1 is a numpy.ma.MaskedArray: pass np.asarray of it, or bind"),
])
def test_arguments_a_program_cannot_take_are_refused_by_place(value, message):
    step = jl.jit(jl.grad(lambda w, other: np.sum(w ** 2)))
    with pytest.raises(TypeError, match=message):
        step(np.ones(2), value)
    with pytest.raises(TypeError, match=r"keyword other is a set"):
        step(np.ones(2), other={1})
    assert step.compiles == 0


def logistic(w, X, y):
    return np.sum(np.log1p(np.exp(-y * (X @ w))))


def logistic_hessian(w, X, y):
    s = 1 / (1 + np.exp(y * (X @ w)))
    return X.T @ (X * (s * (1 - s))[:, None])


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_compiled_hessian_takes_the_batch_as_arguments(mode):
    """Newton's method on batches: one program for every batch, the logistic loss's Hessian by hand."""
    H, w = jl.jit(jl.hessian(logistic, mode=mode)), RNG.standard_normal(3)
    for X, _ in batches(4, rows=10):
        y = np.sign(RNG.standard_normal(10))
        np.testing.assert_allclose(H(w, X, y), logistic_hessian(w, X, y), rtol=1e-10)
    assert H.compiles == 1
    assert H.program(w, X, y).source.startswith("def program(x, a0, a1):")
    in_w = jl.jit(jl.hessian(lambda X, w: logistic(w, X, np.ones(10)), argnums=1))
    np.testing.assert_allclose(in_w(X, w), logistic_hessian(w, X, np.ones(10)), rtol=1e-10)
    with pytest.raises(TypeError, match=r"beside one array x, and x here is a dict: ravel the parameters"):
        jl.jit(jl.hessian(lambda p, X: logistic(p["w"], X, np.ones(10))))({"w": w}, X)


def test_a_compiled_hessian_in_a_tuple_of_argnums_alone_is_cut_in_blocks():
    """jl.hessian(f, argnums=(0, 1))(a, b) with no other argument is the Hessian in the tuple (a, b), as
    eager: it was refused, as if other arguments had to be bound."""
    f = lambda a, b: np.sum(a ** 3) * np.sum(b ** 2) + np.sin(a) @ b  # noqa: E731
    H = jl.jit(jl.hessian(f, argnums=(0, 1)))
    for _ in range(2):
        a, b = RNG.standard_normal(3), RNG.standard_normal(3)
        compiled, eager = H(a, b), jl.hessian(f, argnums=(0, 1))(a, b)
        for i, j in np.ndindex(2, 2):
            np.testing.assert_allclose(compiled[i][j], eager[i][j], rtol=1e-12)
    np.testing.assert_allclose(compiled[0][1], 6 * np.outer(a ** 2, b) + np.diag(np.cos(a)), rtol=1e-12)
    assert H.compiles == 1


@pytest.mark.parametrize("mode", ["raise", "clip", "wrap"])
@pytest.mark.parametrize("dtype", [np.uint64, np.uint32, np.int8])
def test_a_gather_by_unsigned_labels_has_the_gradient_of_its_tangents(dtype, mode):
    """uint64 labels with the int64 row offsets of the gradient's scatter-add added up in float64, which
    np.bincount refused: a TypeError naming neither the gather nor the labels."""
    f = lambda w, y: np.sum(np.take(w, y, mode=mode) ** 2)  # noqa: E731
    w, y = np.linspace(1.0, 2.0, 5), np.array([0, 1, 1, 4], dtype=dtype)
    expected = jl.jacfwd(f)(w, y)
    np.testing.assert_allclose(expected, 2 * w * np.bincount(y.astype(int), minlength=5), rtol=1e-15)
    np.testing.assert_array_equal(jl.grad(f)(w, y), expected)
    np.testing.assert_array_equal(jl.jit(jl.grad(f))(w, y), expected)


def test_class_sums_of_labels_by_bincount_compile_once():
    """np.bincount(labels, weights=..., minlength=k), a class-weighted loss's sums: the labels are the program's
    scatter-add's operand, and only the count of bins is read (a label past minlength adds a bin: a program)."""
    weights = np.array([1.0, 2.0, 0.5])

    def loss(W, X, y):
        per_sample = np.sum(np.tanh(X @ W) ** 2, axis=1)
        return np.sum(np.bincount(y, weights=per_sample, minlength=3) * weights)

    step, W = jl.jit(jl.grad(loss)), RNG.standard_normal((4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(KEEP_PROGRAMS + 2):
            X, y = RNG.standard_normal((8, 4)), RNG.integers(0, 3, size=8)
            z = np.tanh(X @ W)
            np.testing.assert_allclose(step(W, X, y), X.T @ (2 * z * (1 - z ** 2) * weights[y][:, None]), rtol=1e-12)
    assert step.compiles == 1
    with pytest.raises(ValueError, match="'list' argument must have no negative elements"):
        step(W, X, np.array([0, 1, 2, -1, 0, 1, 2, 0]))


def test_class_means_by_bincount_of_labels_compile_once():
    """The counts beside the sums, and sums of an argument's weights: recorded scatter-adds too, in NumPy's
    dtypes (the counts integers, the sums float64)."""
    def loss(W, X, y, sample_weights):
        sums = np.bincount(y, weights=np.sum(np.tanh(X @ W) ** 2, axis=1), minlength=3)
        counts, weights = np.bincount(y, minlength=3), np.bincount(y, weights=sample_weights, minlength=3)
        assert counts.dtype == np.intp and weights.dtype == np.float64
        return np.sum(sums / np.maximum(counts, 1) * weights)

    step, W = jl.jit(jl.grad(loss)), RNG.standard_normal((4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(4):
            X, y, s = RNG.standard_normal((8, 4)), RNG.integers(0, 3, size=8), RNG.random(8).astype(np.float32)
            z, counts = np.tanh(X @ W), np.maximum(np.bincount(y, minlength=3), 1)
            factor = (np.bincount(y, weights=s, minlength=3) / counts)[y]
            np.testing.assert_allclose(step(W, X, y, s), X.T @ (2 * z * (1 - z ** 2) * factor[:, None]), rtol=1e-12)
    assert step.compiles == 1


@pytest.mark.parametrize("make", [jl.jacfwd, jl.hessian])
def test_forward_passes_through_class_sums_skip_zero_seed_rows_and_count_each_batchs_repeats(make):
    """A forward program through a scatter-add whose repeats vary is compacted like any other: its count of
    repeats reads the labels, which stay whole, and each replay counts what a program compiled at its labels
    would; a weight that is not finite makes the replay run (and count) the dense code."""
    def loss(e, tokens, t):
        return np.sum(np.bincount(tokens, weights=np.tanh(e[:6]) * t, minlength=10) ** 2)

    step, e = jl.jit(make(loss)), RNG.standard_normal(12)
    program = step.program(e, np.array([1, 1, 3, 5, 5, 5]), np.ones(6))
    assert program.cost.flops < program.dense_cost.flops and program.variables
    for tokens, t in (([0, 2, 2, 4, 6, 8], RNG.standard_normal(6)), ([9] * 6, RNG.standard_normal(6)),
                      ([0, 1, 2, 3, 4, 4], np.array([1.0, np.inf, 1.0, 1.0, 1.0, 1.0]))):
        with np.errstate(invalid="ignore"):  # inf * 0 in the dense code
            tokens, fresh = np.array(tokens), jl.jit(make(loss)).program(e, np.array(tokens), t)
            with counting() as compiled:
                J = step(e, tokens, t)
            np.testing.assert_allclose(J, make(loss)(e, tokens, t), rtol=1e-12, atol=1e-14)
        assert compiled.total() == (fresh.cost if np.isfinite(t).all() else fresh.dense_cost)
    assert step.compiles == 1


def test_bincount_sums_weights_in_float64_and_refuses_deep_weights_as_numpy_does():
    labels, weights = np.array([0, 0]), np.array([1e8, 1.0], dtype=np.float32)
    y, _ = jl.jvp(lambda w: np.bincount(labels, weights=w), weights, np.ones(2, dtype=np.float32))
    assert y.dtype == np.float64 and y[0] == np.bincount(labels, weights=weights)[0] == 100_000_001
    with pytest.raises(ValueError, match="^object too deep for desired array$"):
        jl.grad(lambda w: np.sum(np.bincount(labels, weights=np.outer(w, w))))(np.ones(2))
