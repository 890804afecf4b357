"""Traces in different threads never interfere: tapes and counters belong to their trace."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import jacobian_lab as jl
from jacobian_lab.accounting import counting


def work(i):
    rng = np.random.default_rng(i)
    A = rng.normal(size=(5, 4))
    f = lambda x: np.tanh(A @ x) * (i + 1)  # noqa: E731
    x = rng.normal(size=4)
    mode = ("forward", "reverse")[i % 2]
    with counting() as c:
        J = jl.jacobian(f, x, mode=mode, batch_size=1)
    expected = (i + 1) * (1 - np.tanh(A @ x) ** 2)[:, None] * A
    return np.max(np.abs(J - expected)), c.cost("primal"), mode


def test_concurrent_jacobians_are_correct_and_counted_separately():
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(64)))
    for i, (err, primal, mode) in enumerate(results):
        assert err < 1e-12, i
        one = jl.count_flops(lambda x: np.tanh(np.ones((5, 4)) @ x) * 2.0, np.ones(4))
        passes = 4 if mode == "forward" else 1
        assert primal == passes * one, (i, mode)


def test_concurrent_auto_jacobians_share_remembered_costs_safely():
    jl.prediction.clear_cache()

    def auto(i):
        n = 3 + i % 5  # ten tape signatures, each remembered by whichever thread sees it first
        x = np.linspace(0.1, 1.0, n) * (i + 1)
        if i % 2:  # ten outputs per input: forward wins
            f = lambda v: np.concatenate([np.sin(v)] * 10)  # noqa: E731
            expected = np.tile(np.diag(np.cos(x)), (10, 1))
        else:  # one output: reverse wins
            f = lambda v: np.sum(np.sin(v) * v)  # noqa: E731
            expected = np.cos(x) * x + np.sin(x)
        mode, _ = jl.predict(f, x).choose()
        return jl.jacobian(f, x), expected, mode, jl.measure(f, x, "auto", repeat=1).mode

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(auto, range(64)))
    for i, (J, expected, predicted, chosen) in enumerate(results):
        np.testing.assert_allclose(J, expected, rtol=1e-12, err_msg=str(i))
        assert chosen == predicted, i
    assert {r[2] for r in results} == {"forward", "reverse"}
    assert len(jl.prediction._DERIVATIVE_COSTS) == 10


def test_one_jitted_jacobian_shared_by_threads():
    """Threads compile and replay one jit(...) at once: every call gets its own x's Jacobian."""
    jitted = jl.jit(jl.jacobian(lambda x: np.tanh(x) * np.sum(x ** 2)))

    def call(i):
        x = np.linspace(-1.0, 1.0, 4 + i % 3) * (i + 1) / 64  # three shapes: three programs
        s = np.sum(x ** 2)
        expected = np.diag((1 - np.tanh(x) ** 2) * s) + np.outer(np.tanh(x), 2 * x)
        return float(np.max(np.abs(jitted(x) - expected)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        errors = list(pool.map(call, range(64)))
    assert max(errors) < 1e-12
