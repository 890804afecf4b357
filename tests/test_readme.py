"""The README's examples run and print what it says they print."""
import re
import textwrap
from pathlib import Path

import numpy as np

import jacobian_lab as jl

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_quick_tour_runs_and_its_comments_hold(capsys):
    tour = python_blocks()[0]
    namespace = {}
    exec(compile(tour, "README.md", "exec"), namespace)
    f, x = namespace["f"], namespace["x"]
    assert repr(jl.count_flops(f, x)) in tour
    forward, reverse = jl.predict(f, x).total("forward"), jl.predict(f, x).total("reverse")
    assert f"Cost(flops={forward.flops}, ...), Cost(flops={reverse.flops}, ...)" in tour
    assert "reverse is" in capsys.readouterr().out  # compare(...).table() ends with the verdict


def test_chain_example():
    assert ">>> jl.chain.plan([100, 1, 100, 100, 100]).bracketing" in README
    assert jl.chain.plan([100, 1, 100, 100, 100]).bracketing in README
    assert f"{jl.chain.plan([100, 1, 100, 100, 100]).reverse_flops:,}" in README


def test_structured_example():
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(2, 3)), "x": rng.normal(size=3), "b": rng.normal(size=2)}
    line = next(b for b in python_blocks() if 'p["W"]' in b)
    namespace = {"np": np, "jl": jl, "params": params}
    exec(line, namespace)
    assert namespace["J"]["W"].shape == (2, 2, 3)


def test_arguments_example():
    """value_and_grad and grad in several arguments with aux, against the least-squares gradient."""
    rng = np.random.default_rng(0)
    w, X, y = rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5)
    block = next(b for b in python_blocks() if "has_aux=True" in b)
    namespace = {"np": np, "jl": jl, "w": w, "X": X, "y": y}
    exec(block, namespace)
    residual = X @ w - y
    assert namespace["value"] == np.mean(residual ** 2)
    np.testing.assert_allclose(namespace["aux"]["residual"], residual)
    np.testing.assert_allclose(namespace["g"], 2 * X.T @ residual / 5, rtol=1e-13)
    np.testing.assert_allclose(namespace["g_w"], namespace["g"], rtol=1e-15)
    np.testing.assert_allclose(namespace["g_y"], -2 * residual / 5, rtol=1e-13)


def test_compiled_training_step_example(capsys):
    """The loop over batches compiles once, and each step is the least-squares gradient step."""
    rng = np.random.default_rng(2)
    batches = [(rng.normal(size=(6, 3)), rng.normal(size=6)) for _ in range(4)]
    block = next(b for b in python_blocks() if "for X, y in batches" in b)
    w = rng.normal(size=3)
    namespace = {"np": np, "jl": jl, "batches": batches, "w": w.copy()}
    exec(block, namespace)
    for X, y in batches:
        w = w - 0.1 * 2 * X.T @ (X @ w - y) / 6
    np.testing.assert_allclose(namespace["w"], w, rtol=1e-13)
    assert namespace["step"].compiles == 1
    X, y = batches[0]
    assert namespace["step"].program(w, X, y).source.startswith("def program(x, a0, a1):")


def test_nested_example():
    """The gradient penalty against its inner gradient written out, the third derivative against 24 z."""
    rng = np.random.default_rng(1)
    w, z = rng.normal(size=3), rng.normal(size=3)
    block = next(b for b in python_blocks() if "def penalized" in b)
    namespace = {"np": np, "jl": jl, "w": w, "z": z}
    exec(block, namespace)
    t = np.tanh(w * z)
    inner, d_inner = w * (1 - t ** 2), (1 - t ** 2) - 2 * w * z * t * (1 - t ** 2)  # d inner_i / d w_i
    np.testing.assert_allclose(namespace["g_w"], 2 * w + 2 * inner * d_inner, rtol=1e-13)
    T = np.zeros((3, 3, 3))
    T[np.arange(3), np.arange(3), np.arange(3)] = 24 * z
    np.testing.assert_allclose(namespace["T"], T, rtol=1e-14, atol=1e-15)
    # one tape of the loss (its inner gradient's sweep included) and one sweep back
    assert namespace["c"] == jl.predict(lambda x: namespace["penalized"](x, z), w).total("reverse")


def test_compiled_example(capsys):
    block = next(b for b in python_blocks() if "jac.program(x).source" in b)
    f = lambda v: np.sum(np.sin(np.exp(v ** 2)))  # noqa: E731
    x, x2 = np.linspace(-1.0, 1.0, 5), np.linspace(-0.5, 0.5, 5)
    namespace = {"np": np, "jl": jl, "f": f, "x": x, "x2": x2}
    exec(block, namespace)
    np.testing.assert_allclose(namespace["J"], jl.jacobian(f, x2), rtol=1e-13)
    assert capsys.readouterr().out.startswith("def program(x):")
    assert "jac.program(x).cost" in README and "FOLD_BYTES` (32 MiB)" in README
    assert jl.staging.FOLD_BYTES == 32 << 20


def test_compare_excerpt_counts_are_what_compare_counts():
    """Every counted column of the README's `jacobian-lab compare` excerpt (times excepted)."""
    block = README.split("$ jacobian-lab compare", 1)[1].split("```", 1)[0]
    printed = [[cell.strip() for cell in line.strip("│").split("│")] for line in block.splitlines()
               if line.startswith("│")]
    p = jl.problems.get("seed")
    rows = jl.compare(p.f, p.x, repeat=1).rows()
    assert [r[0] for r in printed] == [row["mode"] for row in rows]
    keys = ("passes", "primal flops", "primal transc", "deriv flops", "deriv transc", "total")
    for cells, row in zip(printed, rows):
        assert cells[1:7] == [f"{row[k]:,.0f}" for k in keys], row["mode"]


def test_ode_example_gives_the_solution_the_finite_difference_jacobian_gives():
    from scipy.integrate import solve_ivp

    block = next(b for b in python_blocks() if "solve_ivp" in b)
    namespace = {"np": np, "jl": jl}
    exec(compile(block, "README.md", "exec"), namespace)
    sol, robertson = namespace["sol"], namespace["robertson"]
    y = np.array([0.9, 3e-5, 0.1])
    exact = np.array([[-0.04, 1e4 * y[2], 1e4 * y[1]],
                      [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]],
                      [0.0, 6e7 * y[1], 0.0]])
    np.testing.assert_allclose(namespace["jac"](y), exact, rtol=1e-14)
    reference = solve_ivp(lambda t, y: robertson(y), (0.0, 1e5), [1.0, 0.0, 0.0], method="BDF",
                          rtol=1e-8, atol=1e-10)  # scipy's own finite-difference Jacobian
    assert sol.status == 0 and sol.njev > 1
    np.testing.assert_allclose(sol.y[:, -1], reference.y[:, -1], rtol=1e-6, atol=1e-12)


def test_sparse_stencil_example_is_the_stencil_plus_the_reaction_diagonal():
    block = next(b for b in python_blocks() if "fisher" in b)
    namespace = {"np": np, "jl": jl}
    exec(compile(block, "README.md", "exec"), namespace)
    L, u0, S = namespace["L"], namespace["u0"], namespace["S"]
    np.testing.assert_allclose(S.toarray(), L.toarray() + np.diag(1.0 - 2.0 * u0), rtol=1e-15)
    assert S.nnz == L.nnz and np.unique(jl.coloring(jl.sparsity(namespace["fisher"], u0))).size == 3


def test_scipy_drop_in_example_gives_the_normal_likelihoods_gradient():
    block = textwrap.dedent(next(b for b in python_blocks() if "jacobian_lab.scipy.stats" in b))
    data = np.array([0.3, -1.2, 2.0, 0.7])
    namespace = {"np": np, "jl": jl, "data": data}
    exec(block, namespace)
    # at mu = 0, sigma = 1: -d/d mu = sum(x - mu) / sigma², -d/d log sigma = sum((x - mu)² / sigma²) - n
    np.testing.assert_allclose(namespace["g"], [-np.sum(data), len(data) - np.sum(data ** 2)], rtol=1e-14)
