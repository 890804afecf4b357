"""Traces in different threads never interfere: tapes and counters belong to their trace."""
import threading
import time
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
    assert jitted.compiles == 3  # threads that miss at once wait for the one that compiles


def _branches(x):
    return np.tanh(x) * x[1] if x[0] > 0 else np.exp(x) * x[2]


def test_threads_missing_a_branch_at_once_compile_it_once():
    jitted, xs = jl.jit(jl.jacobian(_branches)), np.random.default_rng(0).normal(size=(400, 3))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(jitted, xs))
    for x, J in zip(xs, results):
        np.testing.assert_allclose(J, jl.jacobian(_branches, x), rtol=1e-14)
    assert jitted.compiles == 2 and len(jitted._programs[None, (3,), "d", "C", False]) == 2


def _six_paths(x):  # the first positive one of x[0..4], or none
    for k, g in enumerate((np.sin, np.cos, np.tanh, np.exp, np.square)):
        if x[k] > 0:
            return g(x) * x[(k + 1) % 5]
    return np.tanh(x) ** 2


def test_threads_replaying_programs_that_move_to_the_front_compile_each_path_once():
    """A replay moves the program that fits to the front of the list other threads were trying: one of them
    skipped the program its x fits, compiled it again, and the duplicates filled the 8 kept, after which
    every call no program fitted was eager, with a warning."""
    rng, xs = np.random.default_rng(1), []
    for k in range(6):
        v = np.abs(rng.standard_normal(12))
        v[:k] *= -1
        xs.append(v)
    for trial in range(4):
        jitted = jl.jit(jl.jacobian(_six_paths))
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(jitted, [xs[i % 6] for i in range(8 * 100)]))
        assert jitted.compiles == 6, trial
        for i in range(6):
            np.testing.assert_allclose(results[i], jl.jacobian(_six_paths, xs[i]), rtol=1e-14)


def test_one_sparse_jacobian_shared_by_threads_keeps_each_pattern_with_its_plan():
    """Two branches with different patterns, called from 8 threads at once: every result must be the
    dense Jacobian of its own branch (a pattern paired with another's plan would misplace entries)."""
    def f(x):
        if x[0] > 0:  # a stencil
            return x[2:] - 2 * x[1:-1] + x[:-2] ** 2
        return np.concatenate([np.sum(x, keepdims=True), x[1:] * x[0]])  # an arrow

    jac = jl.sparse_jacobian(f)

    def one(i):
        x = np.linspace(0.5, 1.5, 30) * (1 if i % 2 else -1) * (1 + i / 100)
        forward, reverse = jl.jacobian(f, x, mode="forward"), jl.jacobian(f, x, mode="reverse")
        expected = forward if x[0] > 0 else np.vstack([reverse[:1], forward[1:]])  # the arrow pulls row 0
        return np.array_equal(jac(x).toarray(), expected)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(one, range(64)))


def _calls_the_other(x):
    time.sleep(0.2)  # long enough for the other thread to start compiling its own
    return np.sin(x) * float(_OTHER[1](np.ones(2)).sum()) if x.size == 3 else np.sin(x)


def _calls_back(x):
    time.sleep(0.2)
    return np.cos(x) * float(_OTHER[0](np.ones(1)).sum()) if x.size == 2 else np.cos(x)


_OTHER = [jl.jit(jl.jacrev(_calls_the_other)), jl.jit(jl.jacrev(_calls_back))]


def test_compiled_functions_calling_each_other_at_other_shapes_from_two_threads_finish():
    """A thread compiling one shape waits only for threads compiling that shape."""
    results = {}
    threads = [threading.Thread(target=lambda: results.__setitem__(0, _OTHER[0](np.ones(3))), daemon=True),
               threading.Thread(target=lambda: results.__setitem__(1, _OTHER[1](np.ones(2))), daemon=True)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    np.testing.assert_allclose(results[0], jl.jacrev(_calls_the_other)(np.ones(3)), rtol=1e-14)
    np.testing.assert_allclose(results[1], jl.jacrev(_calls_back)(np.ones(2)), rtol=1e-14)
