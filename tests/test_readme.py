"""The README's examples run and print what it says they print."""
import re
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
