"""scripts/bench_peers.py --quick: runs with whatever peers are installed (none needed) and writes JSON.

A smoke test of the benchmark's plumbing only: no timing is asserted.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import central_differences

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"seed", "mlp_loss", "curve", "dense", "bratu"}
OURS = {"ours forward", "ours reverse", "ours auto", "ours sparse", "ours jit(sparse)"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    plot = out.with_suffix(".png")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_peers.py"), "--quick", "--json", str(out), "--plot", str(plot)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stdout, plot


def _number_or_null(v):
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))


def test_every_workload_with_our_modes_raw_numpy_and_the_analytic_floor(quick_run):
    data, _, _ = quick_run
    assert data["quick"] is True
    assert set(data["workloads"]) == WORKLOADS
    for name, w in data["workloads"].items():
        assert w["n"] >= 1 and w["m"] >= 1, name
        assert OURS | {"numpy f(x)", "numpy analytic J"} <= set(w["seconds"]), name
        assert all(isinstance(s, float) and s > 0 for s in w["seconds"].values()), name
        assert w["ratios"]["auto / numpy analytic J"] > 0 and "jax.jit steady / numpy analytic J" in w["ratios"], name
    assert data["workloads"]["dense"]["product"]["numpy"] > 0


def test_ratios_are_numbers_or_null(quick_run):
    data, _, _ = quick_run
    for name, w in data["workloads"].items():
        assert "auto / fastest eager peer" in w["ratios"] and "auto / jax.jit steady" in w["ratios"]
        assert all(_number_or_null(v) for v in w["ratios"].values()), (name, w["ratios"])
        # every peer column that ran agrees with our Jacobian
        assert all(_number_or_null(v) and v < 1e-6 for v in w["max_abs_diff"].values()), (name, w["max_abs_diff"])


def test_missing_peers_are_noted_not_fatal(quick_run):
    data, stdout, _ = quick_run
    for peer in ("jax", "torch", "autograd"):
        if peer in data["versions"]:
            continue
        assert all(w["notes"].get(peer) == "not installed" for w in data["workloads"].values())
        assert f"{peer}: not installed" in stdout


def test_overhead_counting_and_scaling_sections(quick_run):
    data, stdout, plot = quick_run
    overhead = data["overhead"]
    assert _number_or_null(overhead["forward_us"]) and _number_or_null(overhead["reverse_us"])
    assert all(_number_or_null(v["fraction"]) for v in data["counting"].values())
    rows = data["scaling"]["rows"]
    assert len(rows) >= 2 and all(set(data["scaling"]["series"]) <= set(r) for r in rows)
    assert plot.exists() and plot.stat().st_size > 0
    assert set(data["loops"]["seconds"]) == {"forward", "reverse", "auto", "jit(auto)"}
    assert all(_number_or_null(v) for v in data["loops"]["seconds"].values())
    assert "a stencil written element by element" in stdout
    assert "targets:" in stdout and "dispatch overhead per primitive" in stdout
    assert set(data["targets"]) >= {"bratu: sparse / fastest eager peer <= 0.5", "bratu: sparse / jax.jit steady <= 1.0"}
    assert stdout.count("numpy f(x) + analytic J = ") == 4  # under each targeted workload's eager target


def test_sharding_benchmark_runs_every_case_and_checks_its_jacobians(tmp_path):
    out = tmp_path / "sharding.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_sharding.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr  # a threaded Jacobian unequal to the serial one fails the run
    rows = json.loads(out.read_text())["rows"]
    assert {(r["workload"], r["mode"]) for r in rows} == {("bratu", "forward"), ("bratu", "reverse"),
                                                          ("curve", "reverse"), ("seed", "forward"),
                                                          ("mlp_loss", "forward")}
    assert all(r["passes"] > 1 and _number_or_null(r["ratio"]) and r["ratio"] > 0 for r in rows)
    assert "threads / serial" in proc.stdout


def test_training_step_benchmark_checks_every_gradient_and_writes_its_ratios(tmp_path):
    out = tmp_path / "training.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_training_step.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr  # a gradient unequal to the analytic one fails the run
    data = json.loads(out.read_text())
    assert set(data["workloads"]) == {"mlp_loss", "classifier", "hinge"}
    for name, w in data["workloads"].items():
        assert {"ours jit(grad), batch as arguments", "ours jit(grad(partial)) per batch", "ours grad (eager)",
                "numpy analytic gradient"} <= set(w["seconds"]), name
        assert all(_number_or_null(s) and s > 0 for s in w["seconds"].values()), name
        assert len(w["ratios"]) == len(w["seconds"]) - 1 and all(r > 0 for r in w["ratios"].values()), name
        # one program for every batch, the integer labels of the classifier and the hinge loss included
        assert w["compiles"] == 1 and w["calls"] > w["batches"] > 1, name
    assert proc.stdout.count("ours jit(grad) / numpy analytic gradient") == 3
    assert proc.stdout.count("training step, ") == 3 and "tanh MLP's softmax cross-entropy" in proc.stdout
    assert "programs ours jit(grad) compiled over its " in proc.stdout


@pytest.fixture(scope="module")
def bench():
    """scripts/bench_training_step.py as a module."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_training_step

    return bench_training_step


@pytest.mark.parametrize("name", ["mlp_loss", "classifier", "hinge"])
def test_training_step_benchmark_gradient_is_the_loss_gradient(name, bench):
    """The benchmark's hand-written backpropagation, the floor it times, against central differences."""
    work = bench.WORKLOADS[name]
    w, [(X, y), *_] = bench.problem(work, bench.SIZES["quick"], batches=1)
    np.testing.assert_allclose(work.gradient(w, X, y), central_differences(lambda v: work.loss(v, X, y), w),
                               rtol=1e-7, atol=1e-9)


def test_training_step_benchmark_classifier_loss_is_the_cross_entropy_at_its_labels(bench):
    work = bench.WORKLOADS["classifier"]
    w, [(X, labels), *_] = bench.problem(work, bench.SIZES["quick"], batches=1)
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < bench.CLASSES
    logits = bench.mlp(w, X, bench.CLASSES)[1]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.mean([np.log(p[i, labels[i]]) for i in range(len(labels))])
    assert np.isclose(work.loss(w, X, labels), expected, rtol=1e-12)


def test_training_step_benchmark_hinge_loss_is_the_same_in_every_array_namespace(bench):
    """The hinge loss writes at the labels' positions in NumPy and selects in JAX and PyTorch: one value."""
    class Selecting:  # NumPy under another name: the select the peers' namespaces take
        def __getattr__(self, name):
            return getattr(np, name)

    work = bench.WORKLOADS["hinge"]
    w, [(X, labels), *_] = bench.problem(work, bench.SIZES["quick"], batches=1)
    scores = bench.mlp(w, X, bench.CLASSES)[1]
    expected = sum(max(0.0, scores[i, j] - scores[i, labels[i]] + 1.0)
                   for i in range(len(labels)) for j in range(bench.CLASSES) if j != labels[i]) / len(labels)
    assert np.isclose(work.loss(w, X, labels), expected, rtol=1e-12)
    assert np.isclose(work.loss(w, X, labels, xp=Selecting()), expected, rtol=1e-12)
