"""Training steps: the gradient of a loss at a new batch on every call, ours compiled once against JAX.

Three workloads, each a tanh MLP (float64) whose parameters are one vector w,
written as ``loss(w, X, y)`` with the batch as arguments:

    mlp_loss      mlp_loss's mean squared error of a 20-100-1 MLP (2,201 parameters)
    classifier    softmax cross-entropy of a 20-100-10 MLP (3,110 parameters), y integer labels
                  (int64) of 10 classes: -mean(logp[np.arange(n), y]), logp the log-softmax
    hinge         the same MLP's multiclass hinge loss, the right classes' margins set to 0 by
                  writing at the labels' positions: margins[np.arange(n), y] = 0

Each step takes the next of a fixed list of batches, so no column sees one
batch twice in a row. Columns, seconds per step (median of rounds):

    ours jit(grad), batch as arguments   jl.jit(jl.grad(loss))(w, X, y): one program for every batch
    ours jit(grad(partial)) per batch    jl.jit(jl.grad(functools.partial(loss, X=X, y=y)))(w): what
                                         binding the batch costs, a recording on every step
    ours grad (eager)                    jl.grad(loss)(w, X, y)
    jax.jit(grad), batch as arguments    jax.jit(jax.grad(loss))(w, X, y), x64
    torch.func.grad                      eager PyTorch
    numpy analytic gradient              the backpropagation written out in NumPy: the floor

Every column's gradient is checked against the analytic one before anything is
timed, and the programs our jit column compiled over all its calls are counted.
A peer that is not installed is skipped.

    python scripts/bench_training_step.py [--quick] [--json FILE]
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_overhead

import jacobian_lab as jl

SIZES = {"full": {"inputs": 20, "hidden": 100, "batch": 64}, "quick": {"inputs": 3, "hidden": 4, "batch": 5}}
CLASSES = 10
OURS = "ours jit(grad), batch as arguments"


# --- the MLP both losses share -------------------------------------------------------------------------------
def layers(w, n_in: int, n_out: int):
    """W1, b1, W2, b2 of an n_in-hidden-n_out MLP laid out in w in that order; W2 and b2 are a vector and a
    scalar when n_out is 1 (mlp_loss's layout)."""
    n_hidden = (w.shape[0] - n_out) // (n_in + 1 + n_out)
    first, second = n_in * n_hidden, n_in * n_hidden + n_hidden
    W1, b1, W2 = w[:first].reshape(n_in, n_hidden), w[first:second], w[second: second + n_hidden * n_out]
    return (W1, b1, W2, w[-1]) if n_out == 1 else (W1, b1, W2.reshape(n_hidden, n_out), w[-n_out:])


def mlp(w, X, n_out: int, xp=np):
    """(hidden activations, outputs) of the MLP; `xp` the array namespace (NumPy, jax.numpy or torch)."""
    W1, b1, W2, b2 = layers(w, X.shape[1], n_out)
    h = xp.tanh(X @ W1 + b1)
    return h, h @ W2 + b2


def backpropagation(w, X, h, d_out, n_out: int):
    """The gradient in w by hand, from d_out, the loss's gradient in the MLP's outputs."""
    _, _, W2, _ = layers(w, X.shape[1], n_out)
    dz = d_out.reshape(len(X), n_out) @ W2.reshape(-1, n_out).T * (1 - h ** 2)
    return np.concatenate([np.ravel(g) for g in (X.T @ dz, dz.sum(axis=0), h.T @ d_out, d_out.sum(axis=0))])


# --- the workloads ---------------------------------------------------------------------------------------------
def mse_loss(w, X, y, xp=np):
    """mlp_loss with the batch as arguments."""
    return xp.mean((mlp(w, X, 1, xp)[1] - y) ** 2)


def mse_gradient(w, X, y):
    h, out = mlp(w, X, 1)
    return backpropagation(w, X, h, 2 * (out - y) / len(y), 1)


def cross_entropy_loss(w, X, y, xp=np):
    """The classifier's mean softmax cross-entropy at the integer labels y."""
    logits = mlp(w, X, CLASSES, xp)[1]
    shifted = logits - xp.amax(logits, axis=1, keepdims=True)
    logp = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    return -xp.mean(logp[xp.arange(len(y)), y])


def cross_entropy_gradient(w, X, y):
    """Backpropagation through the softmax: d logits = (softmax - onehot) / n."""
    h, logits = mlp(w, X, CLASSES)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return backpropagation(w, X, h, p / len(y), CLASSES)


def hinge_loss(w, X, y, xp=np):
    """The classifier's multiclass hinge loss, the right classes' margins set to 0 as NumPy code writes it (JAX's
    arrays take no writes, and PyTorch's functional transforms none into a value they differentiate: a select)."""
    scores = mlp(w, X, CLASSES, xp)[1]
    rows = xp.arange(len(y))
    margins = xp.clip(scores - scores[rows, y][:, None] + 1.0, 0.0, None)
    if xp is np:
        margins[rows, y] = 0.0
    else:
        margins = xp.where(y[:, None] == xp.arange(CLASSES), 0.0, margins)
    return xp.sum(margins) / len(y)


def hinge_gradient(w, X, y):
    """Each active margin pulls its class's score up and the right class's down."""
    h, scores = mlp(w, X, CLASSES)
    rows = np.arange(len(y))
    active = (scores - scores[rows, y][:, None] + 1.0 > 0).astype(float)
    active[rows, y] = 0.0
    active[rows, y] = -active.sum(axis=1)
    return backpropagation(w, X, h, active / len(y), CLASSES)


class Workload(NamedTuple):
    what: str
    loss: Callable  # loss(w, X, y, xp=np)
    gradient: Callable  # the analytic gradient(w, X, y)
    outputs: int
    targets: Callable  # targets(rng, batch): a batch's y


WORKLOADS = {
    "mlp_loss": Workload("mean squared error", mse_loss, mse_gradient, 1,
                         lambda rng, batch: rng.standard_normal(batch)),
    "classifier": Workload(f"softmax cross-entropy over {CLASSES} classes", cross_entropy_loss,
                           cross_entropy_gradient, CLASSES,
                           lambda rng, batch: rng.integers(0, CLASSES, batch, dtype=np.int64)),
    "hinge": Workload(f"multiclass hinge loss over {CLASSES} classes", hinge_loss, hinge_gradient, CLASSES,
                      lambda rng, batch: rng.integers(0, CLASSES, batch, dtype=np.int64)),
}


def problem(work: Workload, sizes: dict, batches: int = 8):
    """(w, [(X, y), ...]): the parameters and `batches` batches."""
    rng = np.random.default_rng(0)
    n_in, n_hidden, batch = sizes["inputs"], sizes["hidden"], sizes["batch"]
    w = rng.standard_normal(n_in * n_hidden + n_hidden + (n_hidden + 1) * work.outputs) / np.sqrt(n_in)
    return w, [(rng.standard_normal((batch, n_in)), work.targets(rng, batch)) for _ in range(batches)]


# --- the columns -------------------------------------------------------------------------------------------
def stepping(step, data):
    """A function taking the next batch on each call: ``step(X, y)`` over `data` in turn; its `calls[0]`
    counts the calls."""
    position = [0]

    def next_step():
        X, y = data[position[0] % len(data)]
        position[0] += 1
        return step(X, y)
    next_step.calls = position
    return next_step


def columns(loss: Callable, gradient: Callable, w) -> tuple[dict, dict, object]:
    """({column: step(X, y) returning the gradient}, {peer: why it is missing}, our jit column's compiled step)."""
    step = jl.jit(jl.grad(loss))
    calls = {
        OURS: lambda X, y: step(w, X, y),
        "ours jit(grad(partial)) per batch": lambda X, y: jl.jit(jl.grad(functools.partial(loss, X=X, y=y)))(w),
        "ours grad (eager)": lambda X, y: jl.grad(loss)(w, X, y),
        "numpy analytic gradient": lambda X, y: gradient(w, X, y),
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
    return calls, missing, step


def run(work: Workload, sizes: dict, repeat: int, min_seconds: float) -> tuple[dict, dict]:
    """Check every column's gradient at every batch, then time each: ({figures}, {peer: why it is missing})."""
    w, data = problem(work, sizes)
    calls, missing, step = columns(work.loss, work.gradient, w)
    for name, call in calls.items():  # every column right before any is timed (and jit compiled)
        for X, y in data:
            np.testing.assert_allclose(np.asarray(call(X, y)), work.gradient(w, X, y), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{work.what}: {name}")
    steps = {name: stepping(call, data) for name, call in calls.items()}
    seconds = {name: bench_overhead.timed(next_step, repeat, min_seconds) for name, next_step in steps.items()}
    ratios = {f"ours jit(grad) / {name}": seconds[OURS] / s for name, s in seconds.items() if name != OURS}
    return {"layers": f"{sizes['inputs']}-{sizes['hidden']}-{work.outputs}", "parameters": int(w.size),
            "batch": len(data[0][1]), "batches": len(data), "seconds": seconds, "ratios": ratios,
            "compiles": step.compiles, "calls": len(data) + steps[OURS].calls[0]}, missing


def report(name: str, work: Workload, figures: dict) -> None:
    print(f"training step, {name}: gradient of a {figures['layers']} tanh MLP's {work.what} "
          f"({figures['parameters']} parameters) at a new batch of {figures['batch']} per call, ms per step (median)")
    for column, s in figures["seconds"].items():
        print(f"  {column:<40}{s * 1e3:10.4f}")
    for ratio, r in figures["ratios"].items():
        print(f"  {ratio:<60}{r:8.3f}")
    print(f"  programs ours jit(grad) compiled over its {figures['calls']} calls on {figures['batches']} batches: "
          f"{figures['compiles']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats: a smoke run")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    sizes = SIZES["quick" if args.quick else "full"]
    repeat, min_seconds = (3, 0.0) if args.quick else (15, 0.2)
    figures, missing = {}, {}
    for name, work in WORKLOADS.items():
        figures[name], missing = run(work, sizes, repeat, min_seconds)
        report(name, work, figures[name])
    for peer, why in missing.items():
        print(f"  ({peer}: {why})")
    if args.json:
        args.json.write_text(json.dumps({"quick": args.quick, "workloads": figures, "missing": missing}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
