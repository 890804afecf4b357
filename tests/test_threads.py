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
