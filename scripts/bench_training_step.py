"""Training steps: the gradient of a loss at a new batch on every call, ours compiled once against JAX.

The loss is mlp_loss's (a 20-100-1 tanh MLP's mean squared error, 2,200
parameters, float64), written as ``loss(w, X, y)`` with the batch as
arguments. Each step takes the next of a fixed list of batches, so no column
sees one batch twice in a row. Columns, seconds per step (median of rounds):

    ours jit(grad), batch as arguments   jl.jit(jl.grad(loss))(w, X, y): one program for every batch
    ours jit(grad(partial)) per batch    jl.jit(jl.grad(functools.partial(loss, X=X, y=y)))(w): what
                                         binding the batch costs, a recording on every step
    ours grad (eager)                    jl.grad(loss)(w, X, y)
    jax.jit(grad), batch as arguments    jax.jit(jax.grad(loss))(w, X, y), x64
    torch.func.grad                      eager PyTorch
    numpy analytic gradient              the backpropagation written out in NumPy: the floor

Every column's gradient is checked against the analytic one before anything is
timed. A peer that is not installed is skipped.

    python scripts/bench_training_step.py [--quick] [--json FILE]
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_overhead

import jacobian_lab as jl

SIZES = {"full": {"inputs": 20, "hidden": 100, "batch": 64}, "quick": {"inputs": 3, "hidden": 4, "batch": 5}}


def loss(w, X, y, xp=np):
    """mlp_loss with the batch as arguments; `xp` the array namespace (NumPy, jax.numpy or torch)."""
    n_in, n_hidden = X.shape[1], (w.shape[0] - 1) // (X.shape[1] + 2)
    W1 = w[: n_in * n_hidden].reshape(n_in, n_hidden)
    b1, w2 = w[n_in * n_hidden: n_in * n_hidden + n_hidden], w[n_in * n_hidden + n_hidden: -1]
    h = xp.tanh(X @ W1 + b1)
    return xp.mean((h @ w2 + w[-1] - y) ** 2)


def analytic_gradient(w, X, y):
    """loss's gradient by hand: backpropagation through the two layers."""
    n_in, n_hidden = X.shape[1], (w.shape[0] - 1) // (X.shape[1] + 2)
    W1 = w[: n_in * n_hidden].reshape(n_in, n_hidden)
    b1, w2 = w[n_in * n_hidden: n_in * n_hidden + n_hidden], w[n_in * n_hidden + n_hidden: -1]
    h = np.tanh(X @ W1 + b1)
    r = 2 * (h @ w2 + w[-1] - y) / len(y)
    dz = np.outer(r, w2) * (1 - h ** 2)
    return np.concatenate([(X.T @ dz).ravel(), dz.sum(axis=0), h.T @ r, [r.sum()]])


def problem(sizes: dict, batches: int = 8):
    rng = np.random.default_rng(0)
    n_in, n_hidden, batch = sizes["inputs"], sizes["hidden"], sizes["batch"]
    w = rng.standard_normal(n_in * n_hidden + 2 * n_hidden + 1) / np.sqrt(n_in)
    data = [(rng.standard_normal((batch, n_in)), rng.standard_normal(batch)) for _ in range(batches)]
    return w, data


def stepping(step, data):
    """A function taking the next batch on each call: ``step(X, y)`` over `data` in turn."""
    position = [0]

    def next_step():
        X, y = data[position[0] % len(data)]
        position[0] += 1
        return step(X, y)
    return next_step


def columns(w, data) -> tuple[dict, dict]:
    """({column: step(X, y) returning the gradient}, {peer: why it is missing})."""
    step = jl.jit(jl.grad(loss))
    calls = {
        "ours jit(grad), batch as arguments": lambda X, y: step(w, X, y),
        "ours jit(grad(partial)) per batch": lambda X, y: jl.jit(jl.grad(functools.partial(loss, X=X, y=y)))(w),
        "ours grad (eager)": lambda X, y: jl.grad(loss)(w, X, y),
        "numpy analytic gradient": lambda X, y: analytic_gradient(w, X, y),
    }
    missing = {}
    if importlib.util.find_spec("jax"):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        jax_step, w_jax = jax.jit(jax.grad(functools.partial(loss, xp=jnp))), jnp.asarray(w)
        calls["jax.jit(grad), batch as arguments"] = lambda X, y: jax_step(w_jax, X, y).block_until_ready()
    else:
        missing["jax"] = "not installed"
    if importlib.util.find_spec("torch"):
        import torch

        w_torch, torch_step = torch.from_numpy(w), torch.func.grad(functools.partial(loss, xp=torch))
        calls["torch.func.grad"] = lambda X, y: torch_step(w_torch, torch.from_numpy(X), torch.from_numpy(y))
    else:
        missing["torch"] = "not installed"
    return calls, missing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats: a smoke run")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    w, data = problem(SIZES["quick" if args.quick else "full"])
    repeat, min_seconds = (3, 0.0) if args.quick else (15, 0.2)
    calls, missing = columns(w, data)
    for name, step in calls.items():  # every column right before any is timed (and jit compiled)
        for X, y in data:
            np.testing.assert_allclose(np.asarray(step(X, y)), analytic_gradient(w, X, y), rtol=1e-9, atol=1e-12,
                                       err_msg=name)
    seconds = {name: bench_overhead.timed(stepping(step, data), repeat, min_seconds) for name, step in calls.items()}
    ours = "ours jit(grad), batch as arguments"
    ratios = {f"ours jit(grad) / {name}": seconds[ours] / s for name, s in seconds.items() if name != ours}
    print(f"training step: gradient of mlp_loss in {w.size} parameters at a new batch of {len(data[0][1])} per call, "
          "ms per step (median)")
    for name, s in seconds.items():
        print(f"  {name:<40}{s * 1e3:10.4f}")
    for name, r in ratios.items():
        print(f"  {name:<60}{r:8.3f}")
    for peer, why in missing.items():
        print(f"  ({peer}: {why})")
    if args.json:
        args.json.write_text(json.dumps({"quick": args.quick, "parameters": int(w.size), "seconds": seconds,
                                         "ratios": ratios, "missing": missing}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
