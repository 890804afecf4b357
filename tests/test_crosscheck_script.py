"""scripts/crosscheck_flops.py runs without JAX or PyTorch and prints our counts for every problem."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import jacobian_lab as jl

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "crosscheck_flops.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, str(SCRIPT), *args], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("crosscheck") / "crosscheck.json"
    proc = _run("--small", "--json", str(out))
    return proc, json.loads(out.read_text()) if out.exists() else None


def test_exits_zero_and_notes_missing_peers(small_run):
    proc, _ = small_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if importlib.util.find_spec("jax") is None:
        assert "JAX not installed: skipped" in proc.stdout
    if importlib.util.find_spec("torch") is None:
        assert "torch not installed: skipped" in proc.stdout


def test_prints_our_counts_for_every_problem(small_run):
    proc, data = small_run
    assert data is not None, proc.stdout + proc.stderr
    rows = {row["problem"]: row for row in data["problems"]}
    assert sorted(rows) == sorted(jl.problems.names())
    table = {}
    for line in proc.stdout.splitlines():
        if line.split():
            table.setdefault(line.split()[0], line.split())  # the table row comes before any gap note
    for name, row in rows.items():
        p = jl.problems.get(name, **row["size"])
        cost = jl.count_flops(p.f, p.x)
        assert row["size"], f"{name} ran at its default size under --small"
        assert (row["ours"]["flops"], row["ours"]["transcendentals"]) == (cost.flops, cost.transcendentals)
        assert not row["errors"], row["errors"]
        cells = table[name]
        assert cells[1] == f"{p.n}->{p.m}"
        assert cells[2:4] == [str(cost.flops), str(cost.transcendentals)], cells


def _load_script(monkeypatch):
    spec = importlib.util.spec_from_file_location("crosscheck_flops", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_stale_twin_is_reported(monkeypatch):
    script = _load_script(monkeypatch)
    no_peers = script.Peers(jax=False, torch=False)
    assert script.check_problem("dense", {"n": 5}, no_peers)["errors"] == []
    monkeypatch.setitem(script.TWINS, "dense", lambda ns, x, W, b: ns.tanh(W @ x))  # forgets the bias
    assert "no longer matches" in " ".join(script.check_problem("dense", {"n": 5}, no_peers)["errors"])
