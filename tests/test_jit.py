"""jl.jit: compiled Jacobians replay exactly what eager mode computes, at any x.

References are the eager engines (themselves checked against finite
differences elsewhere) evaluated at the *new* point, so a value baked into a
program at compile time shows up as a wrong Jacobian.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import pickle
import re
import sys
import warnings

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import given
from hypothesis import strategies as st
from test_prediction import SMALL
from test_properties import SETTINGS, programs
from test_rules import CASES, EXAMPLES

import jacobian_lab as jl
from jacobian_lab import compiled
from jacobian_lab import problems, staging
from jacobian_lab.accounting import counting
from jacobian_lab.program import CompressedProgram
from jacobian_lab.primitives import REGISTRY
from jacobian_lab.staging import NotReplayable, Recorder


def _moved(x, seed=0, scale=1e-3):
    """x nudged by a relative `scale`: every derivative moves, no branch or domain changes."""
    rng = np.random.default_rng(seed)
    return x + scale * (1.0 + np.abs(x)) * rng.uniform(-1.0, 1.0, np.shape(x))


def _small(name):
    return problems.get(name, **SMALL[name])


def _eager(fun, x):
    return jl.jacobian(fun.f, x, fun.mode, fun.batch_size, flat=fun.flat)


def _operands_of(name, i):
    """f(v) applying primitive `name` to example i, its differentiable operands packed in v."""
    prim, e = REGISTRY[name], EXAMPLES[name][i]
    shapes = [a.shape for a, d in zip(e.args, e.diff) if d]
    ends = np.cumsum([int(np.prod(s)) for s in shapes])

    def f(v):
        pieces = iter([np.reshape(v[end - int(np.prod(s)):end], s) for s, end in zip(shapes, ends)])
        return prim(*[next(pieces) if d else a for a, d in zip(e.args, e.diff)], **e.params)

    x = np.concatenate([np.ravel(a) for a, d in zip(e.args, e.diff) if d])
    return f, x


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("name, i", CASES)
def test_every_rule_replays_correctly_at_another_point(name, i, mode):
    f, x = _operands_of(name, i)
    fun = jl.jacfwd(f) if mode == "forward" else jl.jacrev(f)
    jitted = jl.jit(fun)
    with np.errstate(all="ignore"):
        assert_close(jitted(x), _eager(fun, x), 1e-12, "at the compile point")
        for seed in (1, 2):
            x2 = _moved(x, seed)
            assert_close(jitted(x2), _eager(fun, x2), 1e-12, f"replayed at another point ({seed})")
    # Only a rule that chooses its route by values may need another program.
    assert jitted.compiles == 1 or REGISTRY[name].reads_values


def _with_operand_as_argument(name, i, k, dtype):
    """f(v, c) applying primitive `name` to example i, its operand k the argument c (in `dtype`, a program
    input under jit), its other differentiable operands packed in v."""
    prim, e = REGISTRY[name], EXAMPLES[name][i]
    traced = [j for j, d in enumerate(e.diff) if d and j != k]
    shapes = [e.args[j].shape for j in traced]
    ends = np.cumsum([int(np.prod(s)) for s in shapes])

    def f(v, c):
        args = list(e.args)
        for j, s, end in zip(traced, shapes, ends):
            args[j] = np.reshape(v[end - int(np.prod(s)):end], s)
        args[k] = c
        return prim(*args, **e.params)

    return f, np.concatenate([np.ravel(e.args[j]) for j in traced]), e.args[k].astype(dtype)


def _argument_operands(name, i) -> list[int]:
    """The array operands of example i that can be an argument, with another operand left to differentiate."""
    e = EXAMPLES[name][i]
    return [k for k, (a, d) in enumerate(zip(e.args, e.diff)) if isinstance(a, np.ndarray) and sum(e.diff) - d]


@pytest.mark.parametrize("name, i", [case for case in CASES if _argument_operands(*case.values)])
def test_every_rule_replays_an_operand_passed_as_an_argument(name, i):
    """Under jit(f)(v, c), c is an input the program recomputes with: a rule that converted it to the
    result's dtype, or read its values, in plain NumPy would freeze the first call's c into the program (in
    either order, and in a Hessian's second-order rules)."""
    e = EXAMPLES[name][i]
    for k in _argument_operands(name, i):
        for dtype in {e.args[k].dtype, np.dtype(np.float32) if e.args[k].dtype.kind == "f" else e.args[k].dtype}:
            f, x, c = _with_operand_as_argument(name, i, k, dtype)
            total = lambda v, c, f=f: np.sum(f(v, c))  # noqa: E731 - a scalar: its Hessian's second-order rules
            for fun in (jl.jacfwd(f), jl.jacrev(f), jl.hessian(total), jl.hessian(total, mode="reverse")):
                jitted = jl.jit(fun)
                with np.errstate(all="ignore"):
                    jitted(x, c)
                    for seed in (1, 2):
                        # integers (exponents, indices) rolled: other values, within the ones the example allows
                        c2 = _moved(c, seed + 10).astype(dtype) if dtype.kind == "f" else np.roll(c, seed)
                        x2 = _moved(x, seed)
                        assert_close(jitted(x2, c2), fun(x2, c2), 1e-10, f"operand {k} as {dtype}, {fun!r}")


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("name", problems.names())
def test_problems_replay_like_eager(name, mode):
    p = _small(name)
    fun = jl.jacobian(p.f, mode=mode)
    jitted = jl.jit(fun)
    for x in (p.x, _moved(p.x, 1), _moved(p.x, 2, scale=0.05)):
        assert_close(jitted(x), jl.jacobian(p.f, x, mode), 1e-12, f"{name} {mode}")
    assert jitted.compiles == 1


@pytest.mark.parametrize("name", problems.names())
def test_auto_keeps_the_cheapest_compiled_program(name):
    p = _small(name)
    costs = {mode: jl.jit(jl.jacobian(p.f, mode=mode)).program(p.x).cost.total() for mode in ("forward", "reverse")}
    program = jl.jit(jl.jacobian(p.f)).program(p.x)
    if isinstance(program, CompressedProgram):  # compressed seeds: the compiled sparse Jacobian's work
        assert program.cost == jl.jit(jl.sparse_jacobian(p.f)).program(p.x).cost
        assert program.cost.total() < min(costs.values())
    else:
        assert program.cost.total() == min(costs.values())
        assert costs[program.mode] == min(costs.values())


def test_auto_compiles_a_banded_jacobian_with_compressed_seeds():
    p = problems.get("bratu")
    jac = jl.jit(jl.jacobian(p.f))
    for x in (p.x, _moved(p.x, 1)):
        np.testing.assert_array_equal(jac(x), jl.jacobian(p.f, x, mode="forward"))  # the same entries, bit for bit
    program = jac.program(p.x)
    assert isinstance(program, CompressedProgram) and (program.mode, program.seeds, jac.compiles) == ("forward", [3], 1)
    with counting() as c:
        jac(p.x)
    assert c.total() == program.cost
    with counting() as first:  # 3 seeds instead of 1998: the dense orders (32 million flops each) are not recorded
        jl.jit(jl.jacobian(p.f))(p.x)
    assert first.cost("tangent").flops < 100 * p.x.size
    with pytest.raises(jl.MemoryBudgetError, match="dense 1998x2000 Jacobian"):
        jl.jit(jl.jacobian(p.f, max_memory=1 << 20))(p.x)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NumPy's, on the inf it is given
def test_a_compressed_program_gives_way_to_a_dense_one_where_eager_seeds_hold_nan():
    # off the pattern eager one-hot seeds compute 0 * (-sin(inf)) = NaN, where scattered entries leave 0
    index = np.array([0, 2, 2, 5, 1, 4])

    def f(x):
        return x[index] * np.cos(x[index[::-1]])

    x = np.linspace(0.1, 0.6, 6)
    jac = jl.jit(jl.jacobian(f))
    assert isinstance(jac.program(x), CompressedProgram)
    for v in (np.where(np.arange(6) == 1, np.inf, x), np.where(np.arange(6) == 4, np.nan, x), x):
        J = jac(v)
        program = jac.program(v)
        expected = jl.jacobian(f, v, mode="forward" if program.mode == "forward" else "reverse")
        np.testing.assert_array_equal(J, expected)
    assert not isinstance(jac.program(np.where(np.arange(6) == 1, np.inf, x)), CompressedProgram)


def test_auto_reads_no_pattern_through_a_matmul_or_for_a_gradient():
    # a dense layer's pattern is dense and costly to read; a gradient already takes one sweep
    for name in ("dense", "mlp_loss", "seed"):
        p = _small(name)
        assert not isinstance(jl.jit(jl.jacobian(p.f)).program(p.x), CompressedProgram), name


def test_a_compressed_program_returns_structured_outputs_in_their_blocks():
    def f(p):
        return {"r": p["u"][1:] * p["u"][:-1] + p["c"], "s": np.sin(p["u"])}

    params = {"u": np.linspace(0.1, 1.0, 9), "c": np.array(0.5)}
    jac = jl.jit(jl.jacobian(f))
    J, K = jac(params), jl.jacobian(f, params, mode="forward")
    assert isinstance(jac.program(params), CompressedProgram)
    for out in ("r", "s"):
        for leaf in ("u", "c"):
            np.testing.assert_array_equal(J[out][leaf], K[out][leaf])


def _two_layers(n):
    """sum(tanh(B (A x))): eager forward mode does n times reverse's matrix work, but its
    program folds the seeds through both constant layers into B A and beats reverse."""
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(n, n)), rng.normal(size=(n, n))
    return lambda x: np.sum(np.tanh(B @ (A @ x))), np.ones(n)


@pytest.mark.parametrize("n", [16, 64])
def test_auto_compiles_an_order_prediction_rules_out_only_when_close(n, monkeypatch):
    f, x = _two_layers(n)
    prediction = jl.predict(f, x)
    ratio = prediction.ops("forward") / prediction.ops("reverse")
    costs = {mode: jl.jit(jl.jacobian(f, mode=mode)).program(x).cost for mode in ("forward", "reverse")}
    assert costs["forward"].total() < costs["reverse"].total()
    recorded, columns = [], compiled.columns
    monkeypatch.setattr(compiled, "columns", lambda *a: recorded.append("forward") or columns(*a))
    program = jl.jit(jl.jacobian(f)).program(x)
    if ratio <= compiled.BOTH_ORDERS_WITHIN:  # both compiled: the folded forward program wins
        assert (program.mode, program.cost, recorded) == ("forward", costs["forward"], ["forward"])
    else:  # the first call pays for one eager order only, reverse, which is what auto keeps
        assert (program.mode, program.cost, recorded) == ("reverse", costs["reverse"], [])
        monkeypatch.setattr(compiled, "BOTH_ORDERS_WITHIN", float("inf"))
        assert jl.jit(jl.jacobian(f)).program(x).mode == "forward"


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
def test_the_first_call_evaluates_f_once(mode):
    """Auto decides its orders on the tape the program is recorded from, not on a tape of its own."""
    calls, (g, x) = [], _two_layers(8)
    jitted = jl.jit(jl.jacobian(lambda x: calls.append(1) or g(x), mode=mode))
    jitted(x)
    assert len(calls) == 1


def test_the_rules_a_new_tape_staged_to_decide_are_recomputed_by_the_program():
    """Deciding on a tape not seen before sweeps it, which stages its VJP rules (tanh's 1 - y**2 here) outside
    the recording: kept, the program would replay them as constants of the first x."""
    A = np.random.default_rng(0).normal(size=(5, 5))
    f = lambda x: np.sin(np.exp(A @ np.tanh(x)) / 3.0) * x[::-1]  # noqa: E731  (a tape no other test records)
    jitted = jl.jit(jl.jacobian(f))
    jitted(np.linspace(0.1, 0.5, 5))
    x = np.linspace(-0.7, 0.9, 5)
    np.testing.assert_allclose(jitted(x), jl.jacrev(f)(x), rtol=1e-13, atol=1e-15)


def test_only_the_program_a_replay_runs_is_compiled(monkeypatch):
    """Auto records both orders where they are close and keeps one; a compacted forward program keeps its dense
    code for non-finite values. CPython's compile of each was paid on the first call, whether it ever ran."""
    from jacobian_lab import program

    compiles, defined = [], program._defined
    monkeypatch.setattr(program, "_defined", lambda *a: compiles.append(a) or defined(*a))
    f, x = _two_layers(16)
    jitted = jl.jit(jl.jacobian(f))
    J = jitted(x)
    assert compiles == []
    np.testing.assert_allclose(jitted(2 * x), jl.jacobian(f, 2 * x), rtol=1e-13)
    assert len(compiles) == 1 and jitted.program(x).mode == "forward"
    np.testing.assert_allclose(jitted(x), J, rtol=1e-13)
    assert len(compiles) == 1


def test_dense_layer_forward_program_does_m_n_work():
    """tanh(W x + b), W m x n: the seeds pushed through W x give W, a constant, so the
    program is the primal plus tanh' = 1 - y**2 scaling W's rows: by the FLOP conventions
    matmul 2mn, add m, tanh m transcendentals; square m, subtract m, multiply m*n."""
    m, n = 7, 5
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(m, n)), rng.normal(size=m)
    program = jl.jit(jl.jacfwd(lambda x: np.tanh(W @ x + b))).program(np.zeros(n))
    assert program.costs["primal"] == jl.Cost(2 * m * n + m, m)
    assert program.costs["tangent"] == jl.Cost(m + m + m * n, 0)
    assert program.cost == jl.Cost(3 * m * n + 3 * m, m)


def test_gradient_program_drops_the_primal_output():
    """sum(sin(exp(x**2))): the gradient never reads sin or the sum, so neither runs.
    Per element: x**2 (1 flop), exp (1 transcendental); then the sweep: cos (1 transcendental),
    seed * cos, * exp (sin' and exp'), 2 * x and the product (square'): 4 flops."""
    n = 50
    program = jl.jit(jl.grad(lambda x: np.sum(np.sin(np.exp(x ** 2))))).program(np.linspace(-1, 1, n))
    assert program.cost == jl.Cost(5 * n, 2 * n)
    assert "sin(" not in program.source and "sum(" not in program.source


def test_counting_a_replay_adds_the_program_cost_and_passes():
    p = problems.get("curve", n=4, m=30)
    jitted = jl.jit(jl.jacfwd(p.f, batch_size=3))
    program = jitted.program(p.x)
    with counting() as c:
        J = jitted(p.x)
    assert c.total() == program.cost
    assert c.costs() == program.costs
    assert (c.passes, c.batch_size) == (2, 3) == (len(program.seeds), max(program.seeds))
    assert_close(J, jl.jacfwd(p.f)(p.x), 1e-12)


def test_folding_is_bounded_by_fold_bytes(monkeypatch):
    """Without room for constants, work on constants alone runs on every call (here the
    seed block through W x: 2 m n^2 flops) and the Jacobian is the same."""
    m, n = 6, 4
    W = np.random.default_rng(1).normal(size=(m, n))
    fun = jl.jacfwd(lambda x: np.tanh(W @ x))
    folded = jl.jit(fun).program(np.ones(n))
    monkeypatch.setattr(staging, "FOLD_BYTES", 0)
    unfolded_jit = jl.jit(fun)
    unfolded = unfolded_jit.program(np.ones(n))
    assert unfolded.cost.flops - folded.cost.flops == 2 * m * n * n
    x2 = _moved(np.ones(n), 3, 0.1)
    assert_close(unfolded_jit(x2), fun(x2), 1e-12)


def test_a_product_of_the_seeds_no_larger_than_they_are_is_folded_past_fold_bytes(monkeypatch):
    """W times the one-hot seeds is W, as large as the seed block a program keeps anyway; past FOLD_BYTES it was
    recomputed on every call: n^3 flops where the folded program does 3 n^2 (126 ms against 4.7 at n = 2500)."""
    n = 24
    W = np.random.default_rng(2).normal(size=(n, n))
    fun = jl.jacfwd(lambda x: np.tanh(W @ x))
    monkeypatch.setattr(staging, "FOLD_BYTES", 0)
    jitted = jl.jit(fun)
    program = jitted.program(np.ones(n))
    assert program.cost.flops < 4 * n * n
    x2 = _moved(np.ones(n), 3, 0.1)
    assert_close(jitted(x2), fun(x2), 1e-12)


# --- values f branches on ----------------------------------------------------------
def _branch_on_comparison(x):
    return np.sin(x) if x[0] > 0.3 else np.cos(x) * 2.0


def _branch_on_truth(x):
    return x * 2.0 if x[0] - 0.25 else x ** 3  # bool() of a traced value


def _gather_at_argmax(x):
    return x * x[np.argmax(x)]


def _argsorted(x):
    return x[np.argsort(x)] * np.arange(1.0, x.size + 1)  # indices f reads: a check


def _masked(x):
    return np.sum(x[x > 0] ** 2) * np.ones(2)


def _prod(x):
    return np.prod(x, keepdims=True)


def _count_of_mask(x):
    return x * (x > 0.4).sum()  # a method of the mask: Python reads its numbers


def _mask_as_array(x):
    return np.asarray(x > 0) * x  # converted, so no longer recomputed: a check instead


BRANCHING = [_branch_on_comparison, _branch_on_truth, _gather_at_argmax, _argsorted, _masked, _prod,
             _count_of_mask, _mask_as_array]


SORTING = {  # sorts the program recomputes at each x, as a comparison: one program for every ordering
    "np.sort": lambda x: np.sort(x) * np.arange(1.0, x.size + 1),
    "np.sort along rows": lambda x: (np.sort(x.reshape(2, -1), axis=1) * np.arange(1.0, x.size + 1).reshape(2, -1)),
    "x.sort()": lambda x: _sorted_in_place(x * 1.0) ** 2,
    "np.median": lambda x: np.median(x) * x,
    "np.quantile": lambda x: np.quantile(x, [0.3, 0.8]).sum() * x,
    "np.percentile, nearest": lambda x: np.percentile(x, 40, method="nearest") * x,
}


def _sorted_in_place(v):
    v.sort()
    return v


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("f", SORTING.values(), ids=list(SORTING))
def test_a_sort_is_recomputed_by_one_program_at_every_ordering(f, mode):
    fun = jl.jacobian(f, mode=mode)
    jitted = jl.jit(fun)
    for x in np.random.default_rng(5).normal(size=(12, 6)):  # 12 orderings, past KEEP_PROGRAMS
        assert_close(jitted(x), _eager(fun, x), 1e-12)
    assert jitted.compiles == 1


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("f", BRANCHING, ids=lambda f: f.__name__)
def test_a_decision_on_values_recompiles_instead_of_replaying_wrongly(f, mode):
    x = np.array([0.5, -1.0, 2.0, -0.3])
    other = np.array([0.25, 3.0, -2.0, 0.0])  # every decision above comes out differently
    fun = jl.jacobian(f, mode=mode)
    jitted = jl.jit(fun)
    assert_close(jitted(x), _eager(fun, x), 1e-12)
    assert_close(jitted(other), _eager(fun, other), 1e-12)
    assert jitted.compiles == 2
    nudged = other * np.array([1.0, 1.001, 1.002, 1.003])  # the same decisions: the new program replays
    assert_close(jitted(nudged), _eager(fun, nudged), 1e-12)
    assert jitted.compiles == 2


# Masks f passes only to primitives: a program recomputes them, whatever their pattern.
MASKED = [
    lambda x: np.where(x > 0, x ** 2, -x),
    lambda x: x * (x > 0) + np.sin(x) * (x <= 0.1),
    lambda x: np.where(~(x > 0) & (x > -1.0) | (x > 2.5), np.exp(x), x),
    lambda x: np.where(np.logical_xor(x > 0, x > 1.0), x, 2.0 * x) * np.sign(x),
    lambda x: np.where(np.isfinite(1.0 / x), x ** 3, 0.0),
    lambda x: x * (x > 0).astype(float) + np.sin(x) * (x < 0.5).astype(np.float32),
    lambda x: x * np.where(x > 0, 1.0, 0.5) + np.where(x < 1.0, 2, 0) * x ** 2,  # a select of constants
    lambda x: x * np.copysign(1.0, x[0]) + np.copysign(2.0, x),  # a sign, of a scalar too
    lambda x: x * (x > 0)[::-1] + np.append(x[1:] * (x > 0.5)[:-1], 0.0),  # moved: an upwind stencil's masks
    lambda x: x * (x > 0).astype(int) + np.where((x < 1).reshape(1, 5).T.ravel(), x, 2.0 * x),
]


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("i", range(len(MASKED)))
def test_masks_read_only_by_primitives_are_recomputed_not_guarded(i, mode):
    f, rng = MASKED[i], np.random.default_rng(i)
    fun = jl.jacobian(f, mode=mode)
    jitted = jl.jit(fun)
    for _ in range(6):  # a new sign pattern each time
        x = rng.uniform(-2.0, 3.0, 5)
        with np.errstate(divide="ignore"):
            assert_close(jitted(x), _eager(fun, x), 1e-12)
    assert (jitted.compiles, jitted.program(x).guards) == (1, 0)


# Every way Python can read a mask's numbers: each must make the program check it.
_MASK_READS = {
    "any": lambda m: m[1:2].any(), "argmax": lambda m: m.argmax(), "sum method": lambda m: m.sum(),
    "np.sum": np.sum, "np.asarray": np.asarray, "np.array": np.array, "list": list, "tolist": lambda m: m.tolist(),
    "str": str, "repr": repr, "f-string": lambda m: f"{m}", "count_nonzero": np.count_nonzero,
    "nonzero": np.nonzero, "slice": lambda m: m[1:], ".T": lambda m: m.T, "astype int": lambda m: m.astype(int),
    "reduce": np.add.reduce, "in": lambda m: True in m, "numpy on a copy": lambda m: np.copy(m) * 1,
    "copy.copy": copy.copy, "copy.deepcopy": copy.deepcopy, "pickle": lambda m: pickle.loads(pickle.dumps(m)),
    "dataclasses.asdict": lambda m: dataclasses.asdict(_Record(m)),
}
READS = {name: (lambda read: lambda x: read(x > 0.4))(read) for name, read in _MASK_READS.items()}
READS.update({  # of a 0-d mask
    "bool": lambda x: bool(x[0] > 0.4), "if": lambda x: 1 if x[0] > 0.4 else 2,
    "int": lambda x: int(x[2] > 0.4), "float": lambda x: float(x[2] > 0.4),
    "dict key": lambda x: {True: "yes", False: "no"}[x[0] > 0.4], "hash": lambda x: hash(x[1] > 0.4),
})


@dataclasses.dataclass
class _Record:
    mask: np.ndarray


@pytest.mark.parametrize("read", READS.values(), ids=READS)
def test_every_way_python_reads_a_mask_is_checked_before_replaying(read):
    def f(x):
        seen = repr(read(x))  # whatever Python got, as text: it steers the result below
        return x * float(sum(map(ord, seen)) % 97)

    fun = jl.jacfwd(f)
    jitted = jl.jit(fun)
    for x in (np.array([0.5, -1.0, 2.0]), np.array([-0.5, 1.0, 0.3])):  # every entry flips
        assert_close(jitted(x), fun(x), 1e-14)
    assert jitted.compiles == 2


def _rounded_then(write):
    def f(x):
        m = np.round(x)  # no derivative: an Observable while compiling
        write(m)
        return x * m
    return f


def _asarray_then(write):
    def f(x):
        m = np.round(x)
        write(m, np.asarray(m))  # np.asarray(m) is m itself in NumPy
        return x * m
    return f


WRITES_INTO_A_MASK = {  # each compiles, its write applied as NumPy applies it
    "np.copyto": _rounded_then(lambda m: np.copyto(m, 3.0)),
    "np.put": _rounded_then(lambda m: np.put(m, [0], 5.0)),
    "np.putmask": _rounded_then(lambda m: np.putmask(m, m > 0, 9.0)),
    "np.place": _rounded_then(lambda m: np.place(m, m > 0, 9.0)),
    "np.add.at": _rounded_then(lambda m: np.add.at(m, [0, 0], 1.0)),
    "np.clip out": _rounded_then(lambda m: np.clip(m, -1, 1, out=m)),
    "method out": _rounded_then(lambda m: m.clip(-1, 1, out=m)),
    "ufunc out": _rounded_then(lambda m: np.negative(m, out=m)),
    "fill": _rounded_then(lambda m: m.fill(2.0)),
    "sort": _rounded_then(lambda m: m.sort()),
    "put method": _rounded_then(lambda m: m.put([1], 4.0)),
    "partition": _rounded_then(lambda m: m.partition(1)),
    "asarray, write into it": _asarray_then(lambda m, a: a.__setitem__(0, 9.0)),
    "asarray, write into m": _asarray_then(lambda m, a: m.__setitem__(0, 9.0)),
    "asarray, m += 1": _asarray_then(lambda m, a: m.__iadd__(a)),
    "into a copy made by astype": _rounded_then(lambda m: m[::2].astype(int).__setitem__(0, 5)),
    "into a copy made by flatten": _rounded_then(lambda m: m.flatten().__setitem__(0, 5.0)),
}
_SIGNS = [np.array([0.7, -1.2, 2.6, 0.1]), np.array([-0.7, 1.2, 0.4, 3.1]), np.array([1.7, 1.2, -2.6, -0.1])]


@pytest.mark.parametrize("f", WRITES_INTO_A_MASK.values(), ids=WRITES_INTO_A_MASK)
def test_a_write_into_a_value_without_a_derivative_is_replayed_as_numpy_writes(f):
    jitted = jl.jit(jl.jacrev(f))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # each compiles
        for x in _SIGNS + _SIGNS:
            np.testing.assert_array_equal(jitted(x), jl.jacrev(f)(x))
    assert jitted.compiles == len(_SIGNS)  # one per x: each checks what it read, then replays


def _set_after_use(x):
    m = np.round(x)
    m[0] = 3.0
    y = x * m  # uses m as it is now
    m[1] = 7.0
    return y


def _buffer_reused(x):
    m = x > 0
    a = np.asarray(m)  # m itself
    y = np.where(m, x, 0.0)
    a[:] = False  # after the use
    return y


def _added_after_use(x):
    m = np.round(x)
    m[0] = 1.0
    y = x * m
    m += 1.0
    return y + m


def _scalar_written_through_asarray(x):
    m = x[0] > 0  # np.bool_, immutable: np.asarray gives a new array
    np.asarray(m)[()] = False
    return x * (2.0 if m else 3.0)


def _0d_array_updated(x):
    m = np.where(x[0] > 0, 1.0, 2.0)  # a 0-d array, mutable: n is m
    n = m
    m += 1.0
    return x * n


def _asarray_after_a_view(x):
    m = np.round(x)
    v = m[1:]  # noqa: F841 - a view of m held
    np.asarray(m)[0] = 9.0  # m itself: the write reaches m (and v)
    return x * m


def _written_and_undone(x):
    m = np.round(x)
    v = m[1:]  # noqa: F841 - a view of m held: np.asarray(m) is the value a program recomputes
    a = np.asarray(m)
    a[0] = 9.0
    y = x * m
    a[0] = np.round(x[0])  # undone: the end of the recording sees m as it was
    return y


def _shares_memory(x):
    m = x > 0
    return x * (2.0 if np.shares_memory(m[::2], m) else 1.0)


WRITES_AFTER_USE = {f.__name__: f for f in (_set_after_use, _buffer_reused, _added_after_use,
                                            _scalar_written_through_asarray, _0d_array_updated, _asarray_after_a_view,
                                            _written_and_undone, _shares_memory)}


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("f", WRITES_AFTER_USE.values(), ids=WRITES_AFTER_USE)
def test_a_value_without_a_derivative_is_used_as_it_was_when_used(f, mode):
    """Compiled or computed eagerly (a write through a view), every call gives eager mode's Jacobian."""
    jitted = jl.jit(jl.jacobian(f, mode=mode))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what cannot be replayed is computed eagerly, with a warning
        for x in _SIGNS + _SIGNS:
            np.testing.assert_array_equal(jitted(x), jl.jacobian(f, x, mode=mode))


def test_a_longdouble_x_compiles():
    jitted = jl.jit(jl.jacrev(lambda x: x * (x > 0)))
    x = np.array([1.0, -2.0, 3.0], dtype=np.longdouble)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(jitted(x), np.diag([1.0, 0.0, 1.0]))
    assert jitted.compiles == 1


WRITES_THROUGH_A_VIEW = {  # the view shares the array a program recomputes from x: computed eagerly
    "slice": _rounded_then(lambda m: m[1:].__setitem__(0, 9.0)),
    "slice +=": _rounded_then(lambda m: m[1:].__iadd__(5.0)),
    "ravel": _rounded_then(lambda m: m.ravel().__setitem__(0, 9.0)),
    "transpose, then m +=": _rounded_then(lambda m: (m.T, m.__iadd__(1.0))),
    "reshape, then m[0] =": _rounded_then(lambda m: (m.reshape(2, 2), m.__setitem__(0, 9.0))),
    "a mask's slice": _rounded_then(lambda m: (m > 0)[1:].__setitem__(0, True)),
    "a view of a view": _rounded_then(lambda m: m.reshape(2, 2).T.__setitem__((0, 1), 9.0)),
}


@pytest.mark.parametrize("f", WRITES_THROUGH_A_VIEW.values(), ids=WRITES_THROUGH_A_VIEW)
def test_a_write_through_a_view_of_a_value_without_a_derivative_is_computed_eagerly(f):
    jitted = jl.jit(jl.jacrev(f))
    with pytest.warns(UserWarning, match="view of it"):
        np.testing.assert_array_equal(jitted(_SIGNS[0]), jl.jacrev(f)(_SIGNS[0]))
    for x in _SIGNS:
        np.testing.assert_array_equal(jitted(x), jl.jacrev(f)(x))


def _count_into(x):
    count = np.zeros((), dtype=np.int64)
    np.sum(x > 0, out=count)  # a summary written into a plain array: the whole mask is checked
    return x * (1.0 + count)


def test_a_summary_written_into_out_replays():
    jitted = jl.jit(jl.jacrev(_count_into))
    x = np.array([1.0, -2.0, 3.0, 4.0])
    np.testing.assert_array_equal(jitted(x), jl.jacrev(_count_into)(x))
    program, J = jitted._run(-x)  # the same signs flipped: another count, another program
    assert program is not None and jitted._run(x)[0] is not None and jitted.compiles == 2
    np.testing.assert_array_equal(J, jl.jacrev(_count_into)(-x))


def test_a_scipy_special_ufunc_imported_after_the_package_computes_on_a_mask(monkeypatch):
    import scipy.special as special

    from jacobian_lab import numpy_api, scipy_special
    monkeypatch.setattr(scipy_special, "_mapped", False)  # as if scipy.special had just been imported
    for name in scipy_special.PRIMITIVES:
        if getattr(special, name, None) in numpy_api.UFUNCS:
            monkeypatch.delitem(numpy_api.UFUNCS, getattr(special, name))
    f = lambda x: x * special.expit(np.round(x))  # noqa: E731
    jitted = jl.jit(jl.jacrev(f))
    for x in _SIGNS:  # other rounded values each time: recomputed by the program, not checked
        assert_close(jitted(x), jl.jacrev(f)(x), 1e-15)
    assert jitted.compiles == 1


def _types_of_0d_masks(x):
    scalar, array = x[0] > 0, np.where(x[0] > 0, True, False)  # np.bool_ and a 0-d ndarray, eagerly
    seen = (isinstance(scalar, np.ndarray), isinstance(array, np.ndarray), type(copy.copy(scalar)) is np.bool_,
            type(copy.deepcopy(array)) is np.ndarray, isinstance(pickle.loads(pickle.dumps(scalar)), np.bool_))
    return x * float(sum(2 ** i * s for i, s in enumerate(seen)))


SUMMARIES = {  # what f reads of a mask, and what eager mode gives at each x below
    "np.any": lambda x: x * (2.0 if np.any(x > 0) else 3.0),
    "np.all": lambda x: x * (2.0 if np.all(x > 0) else 3.0),
    "np.argmax": lambda x: x * float(np.argmax(x > 2.0)),
    "np.shape": lambda x: x * float(np.shape(x > 0)[0]),
    "np.ndim": lambda x: x * float(np.ndim(x > 0)),
}


@pytest.mark.parametrize("f", SUMMARIES.values(), ids=SUMMARIES)
def test_a_summary_of_a_mask_is_checked_not_every_element_it_summarizes(f):
    """The masks differ at every x, their summaries not: one program serves them all."""
    jitted = jl.jit(jl.jacrev(f))
    for x in ([2.5, -1.0, 1.0], [2.5, 1.0, -1.0], [2.5, 3.0, -0.5], [2.6, -1.0, 2.5]):
        x = np.array(x)
        assert_close(jitted(x), jl.jacrev(f)(x), 1e-15)
    assert jitted.compiles == 1


def _written_mask(x):
    m = x > 0
    m[0] = False  # f writes into its mask: it becomes a checked constant
    return x * m


def _isinstance_of_mask(x):
    return x * (2.0 if isinstance(x > 0, np.ndarray) else 3.0)


def _isinstance_of_a_0d_mask(x):  # NumPy's scalar in eager mode: np.bool_, no ndarray
    m = x[0] > 0
    return x * (isinstance(m, np.ndarray) + 2.0 * isinstance(m, np.bool_) + 4.0 * isinstance(m, np.generic))


def _unhashable_mask(x):
    try:
        hash(x > 0)
    except TypeError as error:  # as an array's, whatever its values
        return x * len(str(error))
    return x


@pytest.mark.parametrize("f", [_written_mask, _isinstance_of_mask, _isinstance_of_a_0d_mask, _unhashable_mask,
                               _types_of_0d_masks],
                         ids=lambda f: f.__name__)
def test_a_mask_behaves_as_the_plain_array_eager_mode_gives(f):
    fun = jl.jacfwd(f)
    jitted = jl.jit(fun)
    for x in (np.array([1.0, -2.0, 3.0]), np.array([-1.0, 2.0, -3.0]), np.array([2.0, -4.0, 6.0])):
        np.testing.assert_array_equal(jitted(x), fun(x))


def test_a_max_moving_elsewhere_is_recomputed_not_guarded():
    """max's rule finds the maximal element with primitives, so a replay follows it."""
    jitted = jl.jit(jl.jacrev(lambda x: np.max(x) * x))
    x, other = np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 5.0])
    jitted(x)
    assert_close(jitted(other), jl.jacrev(lambda x: np.max(x) * x)(other), 1e-12)
    assert jitted.compiles == 1


def test_an_array_f_closes_over_stays_a_constant_even_when_passed_as_x():
    X = np.array([1.0, 2.0, 3.0])
    jitted = jl.jit(jl.jacrev(lambda v: v * X))
    jitted(X)
    np.testing.assert_array_equal(jitted(2 * X), np.diag(X))


# --- interface ---------------------------------------------------------------------
def test_structured_inputs_and_outputs_and_flat():
    def f(p):
        return {"s": np.sum(p["a"] * p["b"]), "v": np.sin(p["a"])}

    x = {"a": np.array([0.1, 0.2]), "b": np.array([1.0, 2.0])}
    J, eager = jl.jit(jl.jacobian(f))(x), jl.jacobian(f, x)
    for out in ("s", "v"):
        for arg in ("a", "b"):
            assert_close(J[out][arg], eager[out][arg], 1e-14)
    flat = jl.jit(jl.jacobian(f, flat=True))
    assert_close(flat(x), jl.jacobian(f, x, flat=True), 1e-14)


def test_structured_output_of_a_plain_array():
    def f(v):
        return np.sin(v), (np.sum(v ** 2),)

    jitted = jl.jit(jl.jacrev(f))
    for x in (np.array([0.1, 0.7]), np.array([0.3, -0.2])):  # compiled, then replayed
        J, eager = jitted(x), jl.jacrev(f)(x)
        assert_close(J[0], eager[0], 1e-14)
        assert_close(J[1][0], eager[1][0], 1e-14)
    flat = jl.jit(jl.jacrev(f, flat=True))
    for x in (np.array([0.1, 0.7]), np.array([0.3, -0.2])):
        assert_close(flat(x), jl.jacrev(f, flat=True)(x), 1e-14)


def test_grad_and_its_error_for_vector_outputs():
    x = np.array([0.3, -0.2, 0.9])
    g = jl.jit(jl.grad(lambda v: np.sum(np.exp(v) * v)))
    for point in (x, 2 * x):
        assert_close(g(point), jl.grad(lambda v: np.sum(np.exp(v) * v))(point), 1e-14)
    with pytest.raises(TypeError, match="grad requires f to return a scalar"):
        jl.jit(jl.grad(np.sin))(x)
    for f, kind in ((lambda v: (v * 2, v * 3), "tuple"), (lambda v: {"a": v * 2}, "dict"),
                    (lambda v: [v[0], v[1]], "list")):
        with pytest.raises(TypeError, match=rf"scalar \(shape \(\)\), got a {kind}; use jacrev for structured"):
            jl.jit(jl.grad(f))(x)  # as eager grad says, not the shape of the ravelled leaves


def test_float32_inputs_give_float32_jacobians():
    x = np.linspace(0.1, 1.0, 4, dtype=np.float32)
    J = jl.jit(jl.jacfwd(np.tanh))(x)
    assert J.dtype == np.float32
    assert_close(J, jl.jacfwd(np.tanh)(x), 1e-6)


def test_a_new_shape_compiles_a_new_program():
    jitted = jl.jit(jl.jacrev(lambda x: np.cumsum(x) ** 2))
    for n in (3, 5, 3):
        x = np.linspace(0.1, 1.0, n)
        assert_close(jitted(x), jl.jacrev(lambda x: np.cumsum(x) ** 2)(x), 1e-14)
    assert jitted.compiles == 2


def test_the_caller_owns_the_result_even_when_the_jacobian_is_constant():
    A = np.arange(6.0).reshape(2, 3)
    for fun in (jl.jacfwd(lambda x: A @ x), jl.jacrev(lambda x: A @ x)):
        jitted = jl.jit(fun)
        jitted(np.ones(3))[...] = 0.0
        np.testing.assert_array_equal(jitted(np.ones(3)), A)


def test_only_jacobian_functions_can_be_compiled():
    with pytest.raises(TypeError, match=r"jl.jit compiles Jacobian functions, got function; pass jl.jacrev\(f\)"):
        jl.jit(lambda x: np.sin(x))
    with pytest.raises(TypeError, match=r"compile jl.grad\(f\) and evaluate f for its value"):
        jl.jit(jl.value_and_grad(np.sum))


def test_program_source_and_repr():
    jitted = jl.jit(jl.jacrev(np.sin))
    assert repr(jitted) == "jit(jacrev(sin))"
    program = jitted.program(np.zeros(3))
    assert program.mode == "reverse" and program.source.startswith("def program(x):")
    assert "cos(x)" in program.source


def test_what_cannot_be_replayed_is_computed_eagerly_with_a_warning(monkeypatch):
    def refuse(fun, g, x, inputs=()):
        raise NotReplayable("of a reason given here")

    monkeypatch.setattr(compiled, "compile_jacobian", refuse)
    jitted = jl.jit(jl.jacrev(np.exp))
    x = np.array([0.0, 1.0])
    with pytest.warns(UserWarning, match="computed without compiling, because of a reason given here"):
        J = jitted(x)
    np.testing.assert_array_equal(J, np.diag(np.exp(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per shape
        np.testing.assert_array_equal(jitted(2 * x), np.diag(np.exp(2 * x)))
    with pytest.raises(NotReplayable):
        jitted.program(x)


def test_a_numpy_view_of_a_recorded_value_is_not_replayed_as_a_constant():
    """A rule that sliced a value computed from x (or an argument) with NumPy, outside the primitives, would
    hand the program the recording's slice as a constant."""
    x = np.array([0.0, 1.0])
    recorder = Recorder(x)
    out = recorder.evaluate(REGISTRY["sin"], (x,), {})
    recorder.evaluate(REGISTRY["add"], (out[1:], np.ones(1)), {})
    with pytest.raises(NotReplayable, match="through a view NumPy took of it outside the primitives"):
        recorder.check()


def test_a_parameter_computed_from_x_cannot_be_recorded():
    x = np.array([0.0, 1.0])
    recorder = Recorder(x)
    with pytest.raises(NotReplayable, match="took a parameter computed from x"):
        recorder.evaluate(REGISTRY["take"], (np.ones(2),), {"indices": x, "axis": 0})


@SETTINGS
@given(programs(), st.integers(0, 2 ** 32 - 1))
def test_random_programs_replay_like_eager(program, seed):
    f, x, batch_size = program
    jitted = jl.jit(jl.jacobian(f, batch_size=batch_size))
    for point in (x, _moved(x, seed)):
        expected = jl.jacobian(f, point, batch_size=batch_size)
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        np.testing.assert_allclose(jitted(point), expected, rtol=1e-10, atol=1e-10 * scale, err_msg=f.__name__)


def test_a_zero_dimensional_comparison_inside_a_rule_is_tracked():
    """max's rule compares 0-d values, which NumPy answers with its shared bool objects."""
    f = lambda x: np.max(x) * x  # noqa: E731
    jitted = jl.jit(jl.jacrev(f))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # compiled, not computed eagerly
        for point in (2.0, -3.0):
            assert_close(jitted(np.array(point)), jl.jacrev(f)(np.array(point)), 1e-14)
    assert jitted.compiles == 1


def test_forward_passes_shrunk_to_the_memory_budget_are_what_the_program_replays():
    def head(x):
        return np.tanh(np.outer(x, x)).ravel()[:50]

    x = np.linspace(0, 1, 20)
    jitted = jl.jit(jl.jacfwd(head, max_memory=60_000))
    program = jitted.program(x)  # passes sized to the budget from the recorded tape, before any ran
    assert 1 < max(program.seeds) < 20 and sum(program.seeds) == 20
    for point in (x, _moved(x, 4)):
        assert_close(jitted(point), jl.jacrev(head)(point), 1e-12)


def test_a_decision_reading_x_and_a_recorded_constant_is_checked():
    """An observation may read a constant computed by primitives after the value from x."""
    from jacobian_lab.rules import elementwise as E

    def f(x):
        y = x * 2.0
        ones = E.exp(np.zeros(2))  # a primitive on constants: recorded, then kept as a constant
        return np.sin(x) if np.allclose(y, ones) else np.cos(x)

    jitted = jl.jit(jl.jacfwd(f))
    for point in (np.array([0.5, 0.5]), np.array([0.1, 0.2])):
        assert_close(jitted(point), jl.jacfwd(f)(point), 1e-14)
    assert jitted.compiles == 2


def test_disjoint_pieces_of_a_gradient_are_placed_not_added():
    """x0 x1 + x2: the cotangents of x[0], x[1], x[2] are embeds into disjoint positions,
    so their sum is a placement (no flops); what remains is the multiply's VJP, g x1 and
    g x0: 2 flops. The eager sweep also counts the primal (2) and the adds of the reads
    after the first into x's cotangent (2)."""
    f = lambda x: x[0] * x[1] + x[2]  # noqa: E731
    x = np.array([1.0, 2.0, 3.0])
    program = jl.jit(jl.grad(f)).program(x)
    assert program.cost == jl.Cost(2, 0)
    assert "add(" not in program.source and "3 disjoint parts, placed" in program.source
    assert jl.measure(f, x, mode="reverse").total == jl.Cost(6, 0)
    np.testing.assert_array_equal(jl.jit(jl.grad(f))(np.array([4.0, 5.0, 6.0])), [5.0, 4.0, 1.0])


def test_overlapping_pieces_are_still_added():
    f = lambda x: np.sum(x[:3] * x[1:])  # noqa: E731  x[1] and x[2] are in both pieces
    x = np.array([1.0, 2.0, 3.0, 4.0])
    jitted = jl.jit(jl.grad(f))
    assert "add(" in jitted.program(x).source
    for point in (x, x[::-1].copy()):
        assert_close(jitted(point), jl.grad(f)(point), 1e-14)


@pytest.mark.parametrize("f, x, error, match", [
    (lambda v: None, np.ones(2), TypeError, "f returned None"),
    (np.sin, np.ones(2) + 1j, TypeError, "complex input is not supported"),
    (lambda v: np.fft.fft(v).real, np.ones(4), NotImplementedError, "numpy.fft.fft"),
    (lambda v: float(v[0]) * v, np.ones(2), jl.TracerConversionError, "float"),
])
def test_bad_input_gets_the_eager_error_and_nothing_is_kept(f, x, error, match):
    jitted = jl.jit(jl.jacobian(f))
    for _ in range(2):  # a failed first call leaves no program behind
        with pytest.raises(error, match=match):
            jitted(x)
    with pytest.raises(error, match=match):
        jl.jacobian(f, x)


def test_relu_as_maximum_replays_across_sign_patterns():
    """The README's advice: np.maximum's rule compares with primitives, so no guard."""
    relu = lambda v: np.maximum(v, 0.0) * v  # noqa: E731
    jitted = jl.jit(jl.jacfwd(relu))
    for point in (np.array([1.0, -2.0, 3.0]), np.array([-1.0, 2.0, -3.0])):
        assert_close(jitted(point), jl.jacfwd(relu)(point), 1e-14)
    assert jitted.compiles == 1


def test_a_function_alternating_between_branches_keeps_a_program_for_each():
    jitted = jl.jit(jl.jacfwd(_branch_on_comparison))
    points = [np.array([0.5, -1.0]), np.array([0.1, 2.0])]  # x[0] > 0.3, then not
    for step in range(6):
        x = points[step % 2] * (1.0 + 0.01 * step)
        assert_close(jitted(x), jl.jacfwd(_branch_on_comparison)(x), 1e-14)
    assert jitted.compiles == 2


def test_past_keep_programs_a_call_none_fits_is_eager_with_a_warning_naming_the_read(monkeypatch):
    monkeypatch.setattr(compiled, "KEEP_PROGRAMS", 1)
    jitted = jl.jit(jl.jacfwd(_branch_on_comparison))
    points = [np.array([0.1, 2.0]), np.array([0.5, -1.0])]
    assert_close(jitted(points[0]), jl.jacfwd(_branch_on_comparison)(points[0]), 1e-14)
    with pytest.warns(UserWarning, match=r"without compiling where none of its 1 programs fits.*differed at "
                                         r".*test_jit\.py:\d+ \(return np\.sin\(x\) if x\[0\] > 0\.3 else"):
        assert_close(jitted(points[1]), jl.jacfwd(_branch_on_comparison)(points[1]), 1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once
        for step in range(4):
            x = points[step % 2] * (1.0 + 0.01 * step)
            assert_close(jitted(x), jl.jacfwd(_branch_on_comparison)(x), 1e-14)
    assert jitted.compiles == 1  # the program kept still replays where it fits
    with pytest.raises(NotReplayable, match=r"more paths .* than the 1 programs"):
        jitted.program(points[1])


@pytest.mark.parametrize("make, matrix", [(jl.grad, "gradient"), (jl.jacrev, "Jacobian"), (jl.hessian, "Hessian"),
                                          (jl.sparse_hessian, "Hessian")])
def test_the_warning_past_keep_programs_names_what_was_asked_for(make, matrix, monkeypatch):
    """jit(grad) and jit(sparse_hessian) warned about 'the Jacobian of f', and at a tree x the compiled Hessians
    about 'the Jacobian of f' or 'the Hessian of f', named so for the function of a flat vector."""
    def peak(x):
        return np.sum(x * x[np.argmax(x)] ** 2)  # a program per position of the maximum

    def tree(p):
        return peak(p["a"]) + np.sum(p["b"] ** 2)

    monkeypatch.setattr(compiled, "KEEP_PROGRAMS", 1)
    for f, x, shape in ((peak, np.array([3.0, 0.1, 0.2]), "(3,)"),
                        (tree, {"a": np.array([3.0, 0.1, 0.2]), "b": np.ones(2)}, "(5,)")):
        jitted = jl.jit(make(f))
        jitted(x)
        later = np.array([0.1, 3.0, 0.2]) if f is peak else {**x, "a": np.array([0.1, 3.0, 0.2])}
        with pytest.warns(UserWarning, match=rf"^jit: the {matrix} of {f.__name__} at x of shape {re.escape(shape)}"):
            jitted(later)


def test_a_mask_read_by_numpy_code_settles_on_eager_after_keep_programs_patterns():
    def f(x):
        return x * (np.argsort(x > 0, kind="stable") > 2)  # argsort reads the mask: a program per sign pattern

    jitted, rng = jl.jit(jl.jacrev(f)), np.random.default_rng(3)
    with pytest.warns(UserWarning, match=r"differed at .*np\.argsort\(x > 0") as warned:
        for _ in range(40):
            x = rng.normal(size=6)
            assert_close(jitted(x), jl.jacrev(f)(x), 1e-14)
    assert jitted.compiles == compiled.KEEP_PROGRAMS and len(warned) == 1


_BUILT_FROM_MASKS = {
    "cumsum": lambda x: x * np.cumsum(x > 0),
    "cumsum along an axis": lambda x: x * np.cumsum((x > 0).reshape(2, 3), axis=1).ravel(),
    "cumprod": lambda x: x * np.cumprod(x > -0.5),
    "concatenate": lambda x: np.where(np.concatenate([(x > 0)[:1], (x[1:] > 0) & (x[:-1] < 0)]), x, 2 * x),
    "stack": lambda x: x * np.where(np.stack([x > 0, x < 0.5]), 1.0, 2.0)[1],
    "hstack": lambda x: x * np.hstack([x[:3] > 0, x[3:] < 0]),
    "vstack": lambda x: np.sum(x.reshape(2, 3) * np.vstack([x[:3] > 0, x[3:] < 0]), axis=0),
    "column_stack": lambda x: np.sum(x.reshape(3, 2) * np.column_stack([x[:3] > 0, x[3:] < 0]), axis=1),
    "roll": lambda x: x * np.roll(x > 0, 1),
    "tile": lambda x: np.tile(x[:3], 2) * np.tile(x[3:] > 0, 2),
    "cumsum of a rounding": lambda x: x * np.cumsum(np.round(x)),
    "diff": lambda x: x[1:] * np.diff(x > 0),  # of booleans, NumPy's diff is not_equal
    "flip": lambda x: x * np.flip(x > 0),  # NumPy's functions that move elements, as the methods m.T, m[::-1]
    "transpose and reshape": lambda x: np.sum(x.reshape(2, 3) * np.transpose(np.reshape(x > 0, (3, 2))), axis=0),
    "ravel, squeeze, expand_dims": lambda x: x * np.squeeze(np.expand_dims(np.ravel((x > 0).reshape(2, 3).T), 0)),
    "moveaxis and swapaxes": lambda x: np.sum(np.moveaxis(np.swapaxes((x > 0).reshape(3, 2), 0, 1), 0, 1).T
                                              * x.reshape(2, 3), axis=1),
    "diagonal": lambda x: x[:2] * np.diagonal((x > 0).reshape(2, 3), 1) + x[2:4] * (x < 0.5).reshape(2, 3).diagonal(),
    "linalg.diagonal": lambda x: x[:2] * np.linalg.diagonal((x > 0).reshape(2, 3), offset=1),
    "diff of a sign, prepended": lambda x: x * np.diff(np.sign(x), prepend=0.0),
    "second diff along an axis": lambda x: np.sum(x.reshape(2, 3)[:, 2:] * np.diff((x > 0.1).reshape(2, 3), 2), 1),
    "a mask beside x": lambda x: np.concatenate([x, x > 0]) * 2.0,
}


@pytest.mark.parametrize("name", _BUILT_FROM_MASKS)
def test_numpy_functions_building_arrays_from_masks_are_recomputed_by_one_program(name):
    f, rng = _BUILT_FROM_MASKS[name], np.random.default_rng(7)
    jitted = jl.jit(jl.jacobian(f))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(12):  # 12 sign patterns of 6 values
            x = rng.normal(size=6)
            assert_close(jitted(x), jl.jacfwd(f)(x), 1e-14)
    assert jitted.compiles == 1


def test_a_mask_as_a_builders_parameter_is_read_and_checked():
    f = lambda x: x * np.roll(x > 0, np.where(x[0] > 0, 1, 2))  # noqa: E731  (a shift computed from x)
    jitted = jl.jit(jl.jacobian(f))
    for x in (np.array([1.0, -2.0, 3.0]), np.array([-1.0, -2.0, 3.0]), np.array([1.0, -2.0, 3.0])):
        assert_close(jitted(x), jl.jacfwd(f)(x), 1e-14)
    assert jitted.compiles == 2


# --- decompositions ---------------------------------------------------------------------------
def _factorized(v):
    """cholesky and eigh of the symmetric matrix v packs: its eigenvalues 1.5 apart at v = 0."""
    a = v.reshape(3, 3) + np.diag([1.0, 2.5, 4.0])
    w, V = np.linalg.eigh(a, UPLO="U")
    return np.concatenate([np.linalg.cholesky(a).ravel(), w * V[0], np.linalg.eigvalsh(a) ** 2])




@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_compiled_eigenvector_derivative_checks_for_a_repeated_eigenvalue(mode):
    """The degeneracy test reads values: a program compiled at distinct eigenvalues must not
    replay at repeated ones, where eager mode refuses."""
    jitted = jl.jit(jl.jacobian(_factorized, mode=mode))
    jitted(np.zeros(9))
    repeated = np.zeros(9)
    repeated[4] = -1.5  # diag 1, 1, 4
    with pytest.raises(jl.DerivativeError, match="repeated eigenvalue"):
        jitted(repeated)
    with pytest.raises(jl.DerivativeError, match="repeated eigenvalue"):
        jl.jacobian(_factorized, repeated, mode=mode)


def _qr_and_least_squares(v):
    """QR and pinv of the 4×3 matrix v's first 12 entries pack, and lstsq with the last 4 as b."""
    a = v[:12].reshape(4, 3) + np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 1.0]])
    q, r = np.linalg.qr(a)
    x, residuals, _, s = np.linalg.lstsq(a, v[12:])
    return np.concatenate([q.ravel(), r[0], np.linalg.qr(a, mode="r")[1], np.linalg.pinv(a)[0], x, residuals, s])


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("f, x", [(_factorized, 0.1 * np.random.default_rng(5).standard_normal(9)),
                                  (_qr_and_least_squares, 0.2 * np.random.default_rng(6).standard_normal(16))],
                         ids=["cholesky and eigh", "qr, pinv and lstsq"])
def test_decomposition_jacobians_compile_like_eager(f, x, mode):
    jitted = jl.jit(jl.jacobian(f, mode=mode))
    for point in (x, _moved(x, 1), _moved(x, 2, 0.05)):
        assert_close(jitted(point), jl.jacobian(f, point, mode=mode), 1e-12, mode)
    assert jitted.compiles == 1


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_compiled_qr_derivative_checks_the_rank(mode):
    """The rank tests read values: a program compiled at a full-rank matrix must not replay at a
    rank-deficient one, where eager mode refuses."""
    f = lambda v: np.linalg.qr(v.reshape(3, 2)).Q  # noqa: E731
    jitted = jl.jit(jl.jacobian(f, mode=mode))
    jitted(np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0]))
    deficient = np.array([1.0, 2.0, 0.5, 1.0, -1.0, -2.0])  # the second column twice the first
    with pytest.raises(jl.DerivativeError, match="full column rank"):
        jitted(deficient)
    with pytest.raises(jl.DerivativeError, match="full column rank"):
        jl.jacobian(f, deficient, mode=mode)


# --- interp with traced samples -----------------------------------------------------------------
def _interp_at_zero(xp):
    """interp at 0 over the samples xp: below, inside or above them as xp moves."""
    return np.interp(np.array([0.0, 0.5]), xp, np.array([0.0, 1.0, 4.0]))


def _interp_all_traced(v):
    """x, xp and fp all from v: the points cross the ends of the samples as v moves."""
    return np.interp(v[:2], np.cumsum(np.exp(v[2:5])) + v[0], v[5:] ** 2)


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("f, points", [
    (_interp_at_zero, [[1.0, 2.0, 3.0], [-1.0, 1.0, 2.0], [-3.0, -2.0, -1.0], [-1.0, 0.5, 2.0], [-2.0, -1.0, 0.5]]),
    (_interp_all_traced, [[0.3, 5.0, 0.1, 0.2, 0.3, 1.0, 2.0, 3.0], [0.3, -2.0, -1.0, 0.2, 0.3, 1.0, 2.0, 3.0],
                          [2.0, 1.5, -3.0, 0.2, 0.3, 1.0, 2.0, 3.0], [-1.0, 0.0, -0.5, -0.1, 0.0, 1.0, 2.0, 3.0]]),
], ids=["traced xp", "traced x, xp and fp"])
def test_interp_compares_with_the_ends_of_this_calls_samples(f, points, mode):
    """The ends of a traced xp are recomputed on each call, never kept from the first one."""
    jitted = jl.jit(jl.jacobian(f, mode=mode))
    for point in map(np.array, points + points[::-1]):  # each end crossed in both directions
        assert_close(jitted(point), jl.jacobian(f, point, mode=mode), 1e-12, f"{f.__name__} at {point}")


# --- operations that raise ----------------------------------------------------------------------
def _cholesky_or_else(x):
    """f catches the error of cholesky at a matrix that is not positive definite."""
    try:
        return np.linalg.cholesky(np.diag(x)).sum() * np.ones(1)
    except np.linalg.LinAlgError:
        return 100.0 * x[:1]


def _positive_definite_test(x):
    """cholesky called only to see whether it raises: the Jacobian never reads its factor."""
    try:
        np.linalg.cholesky(np.diag(x))
    except np.linalg.LinAlgError:
        return -x
    return x ** 2


def _log_or_else(x):
    """f makes NumPy raise on a division by zero (log(0)) and catches it."""
    with np.errstate(divide="raise"):
        try:
            return np.log(x)
        except FloatingPointError:
            return 3.0 * x


def _log_or_else_warned(x):
    """The same through the warnings module: log(0)'s RuntimeWarning made an error, and caught."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            return np.log(x)
        except RuntimeWarning:
            return 3.0 * x


def _log_unless_it_warned(x):
    """The same decision read from the warnings log(0) leaves in a record."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = np.log(x)
    return 3.0 * x if caught else y


CATCHING = [_cholesky_or_else, _positive_definite_test, _log_or_else, _log_or_else_warned, _log_unless_it_warned]
_GOOD, _BAD = [np.array([1.0, 4.0]), np.array([2.0, 3.0])], [np.array([0.0, 4.0]), np.array([0.0, 3.0])]


def test_a_call_whose_f_raises_compiles_nothing():
    jac = jl.jit(jl.jacobian(lambda x: x * float(x[0])))  # float() of a traced value is refused
    for _ in range(3):
        with pytest.raises(jl.TracerConversionError):
            jac(np.ones(2))
    assert jac.compiles == 0


@pytest.mark.filterwarnings("ignore:jit. the (Jacobian|Hessian):UserWarning")
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # log's rules at 0, where f took 3 x
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("first", ["good", "bad"])
@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("f", CATCHING, ids=lambda f: f.__name__)
def test_f_catching_an_error_gets_eager_jacobians_on_both_sides(f, mode, first):
    """Compiled where nothing raises, a call where an operation raises falls back to eager mode;
    compiled where f caught an error, nothing is replayed. Either way J is eager's."""
    points = [_GOOD[0], _BAD[0], _GOOD[1], _BAD[1]]
    if first == "bad":
        points = points[1:] + points[:1]
    jitted = jl.jit(jl.jacobian(f, mode=mode))
    for x in points + points:
        assert_close(jitted(x), jl.jacobian(f, x, mode=mode), 1e-14, f"{f.__name__} at {x}")
    assert jitted.compiles == 1  # a fallback compiles nothing, and a refused recording is not retried


@pytest.mark.filterwarnings("ignore:jit. the (Jacobian|Hessian):UserWarning")
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("f", CATCHING, ids=lambda f: f.__name__)
def test_compiled_hessians_and_sparse_jacobians_of_f_catching_an_error_are_eager(f):
    scalar = lambda v: np.sum(f(v) ** 2)  # noqa: E731
    for first in (_GOOD, _BAD):
        hessian, sparse = jl.jit(jl.hessian(scalar)), jl.jit(jl.sparse_jacobian(f))
        for x in first + _BAD + _GOOD:
            assert_close(hessian(x), jl.hessian(scalar, x), 1e-14, f"hessian at {x}")
            assert_close(sparse(x).toarray(), jl.jacobian(f, x), 1e-14, f"sparse_jacobian at {x}")


def test_a_recording_in_which_f_caught_an_error_is_not_replayed():
    jitted = jl.jit(jl.jacobian(_cholesky_or_else))
    with pytest.warns(UserWarning, match=r"cholesky raised LinAlgError \(Matrix is not positive definite\) on "
                                         "values computed from x and f went on"):
        jitted(_BAD[0])
    with pytest.raises(NotReplayable, match="cholesky raised LinAlgError"):
        jitted.program(_GOOD[0])
    with pytest.warns(UserWarning, match=r"f set NumPy's floating-point errors to raise \(np.errstate\)"):
        jl.jit(jl.jacobian(_log_or_else))(_GOOD[0])  # refused even where nothing raised: a replay could not
    for f in (_log_or_else_warned, _log_unless_it_warned):
        with pytest.warns(UserWarning, match=r"f made warnings errors or recorded them \(warnings.catch_warnings\)"
                                             r" around log") as caught:
            jl.jit(jl.jacobian(f))(_GOOD[0])
        assert caught[0].filename == __file__  # the line that called the compiled function


def _printed_where_negative(x):
    if x[0] > 0:
        return x ** 2
    return x * len(repr(x))  # f reads values computed from x as text: no program can check it


def test_programs_compiled_before_a_call_that_cannot_be_replayed_still_replay():
    jitted = jl.jit(jl.jacobian(_printed_where_negative))
    good, bad = [np.array([1.0, 4.0]), np.array([2.0, 3.0])], [np.array([-1.0, 4.0]), np.array([-2.0, 3.0])]
    jitted(good[0])
    program = jitted.program(good[0])
    with pytest.warns(UserWarning, match="as text"):
        assert_close(jitted(bad[0]), jl.jacobian(_printed_where_negative, bad[0]), 1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: a later call neither warns nor records again
        for x in (good[1], bad[1]):  # the program where its guards hold, eager mode elsewhere
            assert_close(jitted(x), jl.jacobian(_printed_where_negative, x), 1e-15)
    assert jitted.program(good[1]) is program and jitted.compiles == 2
    with pytest.raises(NotReplayable, match="as text"):
        jitted.program(bad[1])


def test_f_that_silences_warnings_still_compiles():
    def quiet_log(x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.log(x)

    jitted = jl.jit(jl.jacobian(quiet_log))
    for x in _GOOD + _BAD:
        with np.errstate(divide="ignore", invalid="ignore"):  # log's slope at 0: the rules' 1/0, outside f
            assert_close(jitted(x), jl.jacobian(quiet_log, x), 1e-14)
    assert jitted.compiles == 1


def test_an_operation_a_program_needs_only_for_its_error_still_runs():
    program = jl.jit(jl.jacrev(_positive_definite_test)).program(_GOOD[0])
    assert "cholesky(" in program.source


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_replay_that_raises_gives_the_eager_error_unchanged(mode):
    """slogdet's derivative at a singular matrix: eager mode's clear error, not the program's bare one."""
    f = lambda v: np.linalg.slogdet(v.reshape(2, 2)).logabsdet + v  # noqa: E731
    singular = np.array([1.0, 2.0, 2.0, 4.0])
    with pytest.raises(jl.DerivativeError) as eager:
        jl.jacobian(f, singular, mode=mode)
    jitted = jl.jit(jl.jacobian(f, mode=mode))
    jitted(np.array([1.0, 0.0, 0.0, 2.0]))
    with pytest.raises(jl.DerivativeError, match="log-determinant at a singular matrix") as replayed:
        jitted(singular)
    assert str(replayed.value) == str(eager.value)
    x = np.array([2.0, 1.0, 0.5, 3.0])
    assert_close(jitted(x), jl.jacobian(f, x, mode=mode), 1e-14)
    assert jitted.compiles == 1


def test_an_error_that_is_not_about_values_is_not_hidden_by_a_fallback(monkeypatch):
    jitted = jl.jit(jl.jacrev(np.sin))
    program = jitted.program(np.zeros(3))

    def broken(x):
        raise TypeError("a bug in a program")

    monkeypatch.setattr(program, "_run", broken)
    with pytest.raises(TypeError, match="a bug in a program"):
        jitted(np.ones(3))


def test_the_operations_that_may_raise_are_marked_at_their_registration():
    raising = {name for name, prim in REGISTRY.items() if prim.raises}
    assert {"cholesky", "inv", "solve", "pinv", "svdvals", "eigh_vectors"} <= raising
    assert not {"add", "matmul", "det", "qr_r"} & raising  # det and qr return a value at every matrix


# --- arrays f closes over -----------------------------------------------------------------------
def _closing(W, M, idx, xp):
    """f reading the arrays it closes over in every way a program may keep them: as operands, in
    folded values, as a view, as indices and as the samples a decision reads."""
    def f(x):
        y = W * x ** 2 + np.sum(W) * x + M.T @ np.sin(x) + x[idx] * M[0] + np.minimum(x, M[1])
        y = y + np.interp(x, xp, W)
        return y if x[0] > 0 else -y
    return f


def _closed_over():
    return [np.array([1.0, 2.0, 3.0]), np.arange(9.0).reshape(3, 3), np.array([2, 0, 1]), np.array([-1.0, 0.0, 1.0])]


CLOSING_KINDS = {
    "auto": jl.jacobian, "forward": jl.jacfwd, "reverse": jl.jacrev,
    "grad": lambda f: jl.grad(lambda x: np.sum(f(x) ** 2)),
    "hessian": lambda f: jl.hessian(lambda x: np.sum(f(x) ** 2)),
    "sparse_jacobian": jl.sparse_jacobian,
    "sparse_hessian": lambda f: jl.sparse_hessian(lambda x: np.sum(f(x) ** 2)),
}


@pytest.mark.parametrize("kind", CLOSING_KINDS)
def test_arrays_f_closes_over_are_read_when_it_is_compiled(kind):
    """Changed in place after a program was compiled, they do not reach it: it replays the values
    of its compile, and a program compiled after the change (another branch) reads the new ones."""
    make, arrays = CLOSING_KINDS[kind], _closed_over()
    jitted, before = jl.jit(make(_closing(*arrays))), make(_closing(*[a.copy() for a in arrays]))
    positive = [np.array([0.5, -0.4, 0.9]), np.array([0.6, -0.3, 0.8])]  # the same segments of xp
    negative = [-positive[0], -positive[1]]  # x[0] < 0: another branch, compiled after the change

    def check(x, expected):
        J, K = jitted(x), expected(x)
        assert_close(getattr(J, "toarray", lambda: J)(), getattr(K, "toarray", lambda: K)(), 1e-12, f"{kind} at {x}")

    check(positive[0], before)
    W, M, idx, xp = arrays
    W[:] = 10.0
    M *= -2.0
    idx[:] = [1, 2, 0]
    xp[:] = [-2.0, 0.7, 1.5]  # x[0] in another segment: a guard reading the new xp would recompile
    after = make(_closing(*arrays))
    for x in positive:
        check(x, before)
    for x in negative:
        check(x, after)
    for x in positive:
        check(x, before)
    assert jitted.compiles == 2


def test_a_program_keeps_a_copy_of_each_array_f_closes_over_and_counts_it():
    """W and W.T: the reverse tape keeps a snapshot of each operand as f used it, and the program
    those two, counted in `constant_bytes`, and no third copy."""
    W = np.random.default_rng(0).normal(size=(30, 30))
    f = lambda x: np.sum(np.tanh(W @ x)) + np.sum(np.sin(W.T @ x))  # noqa: E731
    jitted = jl.jit(jl.grad(f))
    x = np.linspace(-1.0, 1.0, 30)
    program = jitted.program(x)
    assert 2 * W.nbytes <= program.constant_bytes < 3 * W.nbytes
    expected = jl.grad(f)(x)
    W[:] = 0.0
    assert_close(jitted(x), expected, 1e-12)


def _flipped_mask(x):
    """f changes in place the array Python read of its mask: by how much depends on what it read."""
    m = np.asarray(x > 0)
    m[0] = not m[0]
    return x * m


@pytest.mark.parametrize("f", [_flipped_mask, _written_mask], ids=lambda f: f.__name__)
def test_a_read_mask_f_changes_in_place_is_checked_as_it_was_read(f):
    """The check compares with what f read, not with what f made of it afterwards."""
    fun = jl.jacfwd(f)
    jitted = jl.jit(fun)
    points = [np.array([1.0, 2.0, -3.0]), np.array([-1.0, 2.0, -3.0]), np.array([2.0, 1.0, -1.0])]
    for x in points + points:
        np.testing.assert_array_equal(jitted(x), fun(x))
    assert jitted.compiles == 2  # one per sign pattern of x[0], each replayed the second time round


# --- masks beside plain arrays ------------------------------------------------------------------
_A = np.array([1.0, 2.0, 3.0])


def _copied_into(x):
    buffer = np.zeros(3, dtype=bool)
    np.copyto(buffer, x > 0)
    return x * buffer


def _put_into(x):
    buffer = np.zeros(4)
    np.put(buffer, [3, 0, 1], np.sign(x))
    return x * buffer[:3]


# NumPy functions given a mask and a plain array (or a NumPy scalar): NumPy reads the mask, so
# the program checks it, and eager mode's values come out at every sign pattern. np.where is a
# select, joins build arrays without reading them, and np.clip, einsum and tensordot of numbers (not a
# mask) compute with primitives: recorded and recomputed from the mask (one program).
SELECTS = {
    "where": lambda x: x * np.where(x > 0, _A, -_A),
    "numpy scalar": lambda x: np.where(x > 0, np.float64(2.0), _A) * x,
    "concatenate": lambda x: np.concatenate([x[:2] > 0, np.array([True])]) * x,
    "stack": lambda x: np.stack([np.sign(x), _A])[0] * x,
    "clip": lambda x: np.clip(np.sign(x), 0.0, _A) * x,
    "einsum": lambda x: np.einsum("i,i->", _A, (x > 0).astype(float)) * x,  # products of float masks too
    "tensordot": lambda x: np.tensordot(_A, np.sign(x), axes=1) * x,
}
BESIDE_ARRAYS = {
    **SELECTS,
    "compress": lambda x: np.compress(x > 0, x) ** 2,
    "extract": lambda x: np.extract(x > 0, x) * 3.0,
    "dot": lambda x: np.dot(np.ones(3), x > 0) * x,
    "kron": lambda x: np.kron(np.ones(1), x > 0) * x,
    "copyto": _copied_into,
    "put": _put_into,
    "bytes": lambda x: x * float(sum(bytes(x > 0))),
}


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("f", BESIDE_ARRAYS.values(), ids=BESIDE_ARRAYS)
def test_numpy_functions_take_a_mask_beside_plain_arrays(f, mode):
    jitted = jl.jit(jl.jacobian(f, mode=mode))
    points = [np.array([0.5, -1.0, 2.0]), np.array([-0.5, 1.0, 2.0]), np.array([0.7, -0.2, 1.5])]
    for x in points + points:  # the sign pattern changes, then comes back
        assert_close(jitted(x), jl.jacobian(f, x, mode=mode), 1e-14, f"at {x}")
    # a program per sign pattern where the mask was read, and is checked; one for a select
    assert jitted.compiles == (1 if f in SELECTS.values() else 2)


# np.asarray(x) of a traced x is an array of its traced elements (NumPy's own loops run on them), which meets a
# mask under jit as it meets a plain one without
TRACED_OBJECTS = {
    "where": lambda x: np.where(x > 0, np.asarray(x), 0.0),
    "multiply": lambda x: np.asarray(x) * (x > 0),
    "rounded": lambda x: np.asarray(x) * np.round(x),
    "concatenate": lambda x: np.concatenate([np.asarray(x) * (x > 0), x]),
}


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("f", TRACED_OBJECTS.values(), ids=TRACED_OBJECTS)
def test_an_array_of_traced_elements_computes_with_a_mask(f, mode):
    jitted = jl.jit(jl.jacobian(f, mode=mode))
    for x in (np.array([0.5, -1.0, 2.0]), np.array([-0.5, 1.0, 2.3])):
        assert_close(jitted(x), jl.jacobian(f, x, mode=mode), 1e-14, f"at {x}")
    assert jitted.compiles == 1


def test_memoryview_of_a_mask_is_observed_or_refused():
    """Python 3.12 lets a class export a buffer: memoryview(m) views an observed copy. Before, memoryview
    refuses the mask rather than read it unnoticed, and the Jacobian is computed without compiling."""
    f = lambda x: x * float(sum(bytes(memoryview(x > 0))))  # noqa: E731
    jitted = jl.jit(jl.jacfwd(f))
    points = [np.array([0.5, -1.0, 2.0]), np.array([-0.5, 1.0, 2.0])]
    if sys.version_info >= (3, 12):
        for x in points + points:
            assert_close(jitted(x), jl.jacfwd(f)(x), 1e-14)
        assert jitted.compiles == 2
    else:
        with pytest.warns(UserWarning, match=r"memoryview: a bytes-like object is required, not 'Observable'"):
            assert_close(jitted(points[0]), jl.jacfwd(f)(points[0]), 1e-14)


def test_a_mask_leaves_numpy_functions_with_a_traced_operand_to_the_tracer():
    """np.where(m, x, a) with x traced: the program recomputes the mask instead of checking it."""
    f = lambda x: np.where(x > 0, x, _A) ** 2  # noqa: E731
    jitted = jl.jit(jl.jacfwd(f))
    for x in (np.array([0.5, -1.0, 2.0]), np.array([-0.5, 1.0, 2.0]), np.array([1.5, 1.0, -2.0])):
        assert_close(jitted(x), jl.jacfwd(f)(x), 1e-14)
    assert (jitted.compiles, jitted.program(x).guards) == (1, 0)


def test_a_solve_with_a_constant_matrix_is_not_kept_for_whether_it_raises():
    """Whether solve(A, x) raises depends on A alone: a program of a linear map keeps no solve."""
    A = np.array([[4.0, 1.0], [1.0, 3.0]])
    jitted = jl.jit(jl.jacfwd(lambda x: np.linalg.solve(A, x)))
    x = np.array([1.0, 2.0])
    assert_close(jitted(x), np.linalg.inv(A), 1e-14)
    assert "solve(" not in jitted.program(x).source


# --- plain arrays f writes into after reading them ---------------------------------------------
def _edges_moved_after_use(x):
    """A decision reads plain edges, which f then moves: a guard checks what the decision read."""
    edges = np.array([0.0, 0.5, 1.0])
    i = np.searchsorted(edges, x)
    edges += 10.0
    return x * i


def _sorter_rewritten_after_use(x):
    """The same with the edges' order, an array given as a keyword, rewritten."""
    edges, order = np.array([1.0, 0.0, 0.5]), np.array([1, 2, 0])
    i = np.searchsorted(edges, x, sorter=order)
    order[:] = 0
    return x * i


def _weights_beside_a_mask_rewritten(x):
    """A mask times a plain array, a recorded operation, then the array rewritten."""
    w = np.array([1.0, 2.0, 3.0])
    scale = (x > 0) * w
    w[:] = -7.0
    return x * scale


@pytest.mark.parametrize("f", [_edges_moved_after_use, _sorter_rewritten_after_use], ids=lambda f: f.__name__)
@pytest.mark.parametrize("make", [jl.jacfwd, jl.jacrev, jl.jacobian], ids=["forward", "reverse", "auto"])
def test_a_guard_checks_the_plain_arrays_as_the_decision_read_them(make, f):
    from helpers import central_differences

    jitted = jl.jit(make(f))
    x = np.array([0.3, 0.7, 1.1, -0.4])
    for point in (x, x + 10.0, x, x + 10.0):  # at x + 10 a guard reading the moved edges would pass
        assert_close(jitted(point), central_differences(f, point), 1e-6, f"at {point}")
    assert jitted.compiles == 2  # one program per segment pattern, each replayed the second time round


@pytest.mark.parametrize("make", [jl.jacfwd, jl.jacrev, jl.jacobian], ids=["forward", "reverse", "auto"])
def test_a_program_reads_a_plain_operand_as_the_recorded_operation_did(make):
    from helpers import central_differences

    jitted = jl.jit(make(_weights_beside_a_mask_rewritten))
    for point in (np.array([0.5, -1.0, 2.0]), np.array([-0.5, 1.0, 2.0]), np.array([0.5, -1.0, 2.0])):
        assert_close(jitted(point), central_differences(_weights_beside_a_mask_rewritten, point), 1e-6,
                     f"at {point}")
    assert jitted.compiles == 1  # the mask is recomputed, not checked


def _mask_written_after_use(x):
    m = (x > 0).astype(float)
    before = np.sum(m * x ** 3)  # the mask as it is here
    m[0] = 5.0  # then changed: the product above keeps what it read
    return before + np.sum(m * x ** 2)


def _mask_written_by_a_ufunc(x):
    m = x > 0
    np.logical_not(m, out=m)
    return np.sum(np.where(m, x ** 3, x ** 2))


@pytest.mark.parametrize("f", [_mask_written_after_use, _mask_written_by_a_ufunc])
def test_a_mask_f_writes_into_is_read_as_f_read_it(f):
    for jitted, eager in ((jl.jit(jl.grad(f)), jl.grad(f)), (jl.jit(jl.hessian(f)), jl.hessian(f))):
        for x in (np.array([1.0, 2.0, 3.0, 4.0]), np.array([-1.0, 2.0, -3.0, 4.0]), np.array([1.0, -2.0, 3.0, -4.0])):
            np.testing.assert_allclose(jitted(x), eager(x), rtol=1e-13)


def test_a_running_maximum_is_read_again_where_the_order_changes():
    f = lambda x: np.maximum.accumulate(x) * x  # noqa: E731
    jitted = jl.jit(jl.jacobian(f))
    for x in (np.array([1.0, 3.0, 2.0, 4.0]), np.array([4.0, 3.0, 2.0, 1.0]), np.array([1.5, 3.5, 2.5, 4.5])):
        np.testing.assert_array_equal(jitted(x), jl.jacobian(f, x))
    assert jitted.compiles == 2  # the last point sets its maxima where the first did


def _named_terms(x):
    return {"pos": np.sum(x ** 3)} if x[0] > 0 else {"neg": np.sum(x ** 4)}


def _scalar_or_tuple(x):
    return np.sum(x ** 3) if x[0] > 0 else (np.sum(x ** 4),)


def _pairs(x):
    return [np.sum(x[i:i + 2] ** 3) for i in range(0, x.size, 2)]


def _leaves(tree):
    if isinstance(tree, dict):
        return [tree[k] for k in sorted(tree)]
    return list(tree) if isinstance(tree, (tuple, list)) else [tree]


@pytest.mark.parametrize("f, points", [
    (_named_terms, [np.array([1.0, 2.0]), np.array([-1.0, 2.0])]),
    (_scalar_or_tuple, [np.array([-1.0, 2.0]), np.array([1.0, 2.0])]),
    (_pairs, [np.arange(1.0, 5.0), np.arange(1.0, 7.0)]),
], ids=["keys follow a branch", "a tuple or an array", "terms follow x's size"])
def test_a_compiled_hessian_nests_each_program_as_its_recording(f, points):
    """Each program keeps the tree of outputs f returned when it was recorded: one kept for every program
    labelled another branch's Hessians with its keys, or failed to reshape at another size."""
    hess = jl.jit(jl.hessian(f))
    for x in points + points:
        expected = jl.hessian(f)(x)
        got = hess(x)
        assert type(got) is type(expected)
        for e, g in zip(_leaves(expected), _leaves(got)):
            np.testing.assert_allclose(g, e, rtol=1e-14)
        if isinstance(expected, dict):
            assert got.keys() == expected.keys()


def test_f_reading_values_as_text_is_computed_eagerly(capsys):
    """A decision on repr(x) (a cache or a log keyed by the printed values) is one no program can check:
    jit computes such an f eagerly, as it computes one that caught an error."""
    def f(x):
        print(x)
        return np.sin(x) if "-" not in repr(x) else np.cos(x)

    jitted = jl.jit(jl.jacobian(f))
    with pytest.warns(UserWarning, match=r"f read the values of an array computed from x as text"):
        jitted(np.array([0.5, 1.0]))
    x = np.array([-0.5, 1.0])
    assert_close(jitted(x), np.diag(-np.sin(x)), 1e-15)  # the cosine's, as eager mode takes it
    assert "primal=array([-0.5,  1. ])" in capsys.readouterr().out


FROM_VALUES_WITHOUT_DERIVATIVE = {  # f gets a value computed from x that carries no derivative, then uses it
    "round to one decimal": lambda x: np.sum(np.round(x, 1)) * x[0],
    "copysign of a constant": lambda x: np.sum(np.copysign(1.0, x)) * x,
    "round, then arithmetic": lambda x: (np.round(x, 2) + 0.0)[::-1] * x,
    "a rounded scalar": lambda x: x * (np.round(x.sum(), 1) * 2.0),
    "a branch on a rounded scalar": lambda x: 2.0 * x if np.round(x[0], 1) > 0.5 else 3.0 * x,
    "an in-place update in a helper": lambda x: (lambda r: (_shift(r), x * np.sum(r))[1])(np.round(x, 1)),
    "a matrix product, +, divmod": lambda x: (lambda r: x * (r @ r) + +r - divmod(r, 0.3)[1])(np.round(x, 1)),
}


def _shift(a):
    a += 1.0  # the caller's array changes, as NumPy's would


def _floor_alias(x):
    s = np.floor(x.sum())
    t = s
    s += 1.0  # a NumPy scalar: s alone changes
    return x * t


def _rounded_in_a_list(x):
    s = np.round(x.sum(), 1)
    kept = [s]
    s *= 2.0
    return x * kept[0]


def _mask_alias(x):
    m = x[0] > 0.5
    keep = m
    m |= x[1] > 2.0
    return x * (2.0 if keep else 1.0)


SCALAR_LIKE = {  # values eager mode gives as NumPy scalars: immutable, floats, formatted, rounded
    "an alias of s after s += 1": _floor_alias,
    "a rounded scalar in a list": _rounded_in_a_list,
    "an alias of a mask scalar after |=": _mask_alias,
    "isinstance float": lambda x: x * s if isinstance(s := np.round(x.sum(), 1), float) else x * 2.0,
    "formatted": lambda x: x * float(f"{np.round(x.sum(), 1):.1f}"),
    "round()": lambda x: x * round(np.round(x.sum(), 1), 1),
    "searchsorted of it": lambda x: x * np.searchsorted(x, np.round(x.sum(), 1)),
    "math.floor, ceil, trunc and complex": lambda x: x * (math.floor(s := np.round(x.sum(), 1)) + math.ceil(s)
                                                          + math.trunc(s) + complex(s).real),
    "shifted": lambda x: x * (1 << (x > 0.5).astype(int)) * ((x > 1.0).astype(int) >> 1),
}


@pytest.mark.parametrize("f", SCALAR_LIKE.values(), ids=SCALAR_LIKE)
def test_scalars_computed_from_x_behave_as_eager_scalars(f):
    jitted = jl.jit(jl.jacobian(f))
    for x in (np.array([0.3, 1.4]), np.array([-1.3, 2.6]), np.array([0.94, 1.0]), np.array([0.3, 1.4])):
        assert_close(jitted(x), jl.jacobian(f, x), 1e-15, f"at {x}")


def test_a_scalar_computed_from_x_without_a_derivative_is_recomputed_not_checked():
    """np.round(x.sum(), 1) is a NumPy scalar: computing with it is recorded, so one program serves every x."""
    def f(x):
        return x * np.round(x.sum(), 1)

    jitted = jl.jit(jl.jacobian(f))
    for x in (np.array([0.3, 1.4]), np.array([-1.3, 2.6]), np.array([0.94, 1.0])):
        assert_close(jitted(x), np.diag(np.full(2, np.round(x.sum(), 1))), 1e-15, f"at {x}")
    assert jitted.compiles == 1


def _bits(x):
    k = (x > 0.5) * 7
    k &= 6
    return x * (k[0] + (k | 1)[1] + (3 ^ k)[0])


def test_integer_values_from_x_combine_bitwise_and_masks_stay_in_the_program():
    """&, |, ^ are NumPy's bitwise operators on integers ((x > 0.5) * 7 & 6 is 6); on masks, the logical
    primitives a program recomputes, so a mask combined with |= compiles once."""
    bits, masked = jl.jit(jl.jacobian(_bits)), jl.jit(jl.jacobian(_mask_alias_or))
    for x in (np.array([0.7, 1.4]), np.array([0.3, 2.6]), np.array([0.7, 1.4]), np.array([0.8, 1.5])):
        assert_close(bits(x), jl.jacobian(_bits, x), 1e-15, f"at {x}")
        assert_close(masked(x), jl.jacobian(_mask_alias_or, x), 1e-15, f"at {x}")
    assert masked.compiles == 1


def _mask_alias_or(x):
    m = (x > 0.5) & (x < 2.0)
    m |= x > 5
    return np.where(m, x, 0.0)


def test_an_array_written_after_f_took_a_view_of_it_is_computed_eagerly():
    """NumPy's view sees the write; what f got from a recording would not, so no program is replayed."""
    def f(x):
        r = np.round(x, 1)
        first = r[:1]
        r += 1.0
        return x * first[0]

    jitted = jl.jit(jl.jacobian(f))
    with pytest.warns(UserWarning, match=r"f wrote into an array computed from x \(or from an argument\) after taking a "
                                         "view of it"):
        assert_close(jitted(np.array([0.3, 1.4])), np.eye(2) * 1.3, 1e-15)


def test_an_in_place_update_that_would_reshape_is_refused_as_numpy_refuses_it():
    def f(x):
        r = np.round(x, 1)
        r += np.ones((3, 2))
        return x

    with pytest.raises(ValueError, match=r"non-broadcastable output operand with shape \(2,\)"):
        f(np.array([0.3, 1.4]))
    with pytest.raises(ValueError, match=r"non-broadcastable output operand with shape \(2,\)"):
        jl.jit(jl.jacobian(f))(np.array([0.3, 1.4]))


@pytest.mark.parametrize("make", [jl.jacfwd, jl.jacrev, jl.jacobian, jl.sparse_jacobian],
                         ids=["jacfwd", "jacrev", "auto", "sparse"])
@pytest.mark.parametrize("f", FROM_VALUES_WITHOUT_DERIVATIVE.values(), ids=FROM_VALUES_WITHOUT_DERIVATIVE)
def test_values_derived_from_x_without_a_derivative_are_not_folded(f, make):
    """np.round(x, 1) divides rint's result, and copysign(1, x) selects by signbit's: differentiable steps
    on values without a derivative, whose result f used as a constant the first call's values froze."""
    jitted = jl.jit(make(f))
    for x in (np.array([0.3, 1.4]), np.array([0.3, 2.6]), np.array([-1.3, 2.6]), np.array([0.94, 1.0]),
              np.array([0.3, 1.4])):
        expected, got = jl.jacobian(f, x), jitted(x)
        got = got.toarray().reshape(expected.shape) if make is jl.sparse_jacobian else got  # (m, n) as a matrix
        assert_close(got, expected, 1e-15, f"at {x}")


def test_a_compiled_hessian_of_a_rounded_factor_is_not_folded():
    h = lambda x: np.sum(np.round(x, 1)) * np.sum(x ** 2)  # noqa: E731  (H = 2 sum(round(x, 1)) I)
    jitted = jl.jit(jl.hessian(h))
    for x in (np.array([0.3, 1.4]), np.array([0.3, 2.6])):
        assert_close(jitted(x), 2 * np.sum(np.round(x, 1)) * np.eye(2), 1e-15)


def test_a_guard_tells_minus_zero_from_zero():
    """np.round(-0.03, 1) is -0.0, whose copysign is -1: a program recorded at +0.0 must not replay there."""
    def f(x):
        return x * np.copysign(1.0, np.round(x.sum(), 1))

    jitted = jl.jit(jl.jacobian(f))
    for x in (np.array([0.01, 0.02]), np.array([-0.01, -0.02]), np.array([0.01, 0.02])):
        assert_close(jitted(x), jl.jacobian(f, x), 1e-15, f"at {x}")
    assert np.diag(jitted(np.array([-0.01, -0.02]))).tolist() == [-1.0, -1.0]



_W = np.arange(1.0, 7.0)


def _memory_weighted(x):
    return x.ravel("K") * _W  # reads x in the order its elements lie in memory


def _memory_cubed(x):
    return _memory_weighted(x ** 3) @ np.ones(6) / 6


def _memory_order(x):
    """x's element numbers (C order) in the order they lie in memory: NumPy's ravel("K") of them."""
    return np.arange(x.size).reshape(x.shape).ravel("F" if x.flags.f_contiguous else "C")


def _memory_jacobian(x):
    J = np.zeros((x.size, x.size))
    J[np.arange(x.size), _memory_order(x)] = _W
    return J.reshape((x.size,) + x.shape)


def _memory_gradient(x):
    return np.tensordot(_W, _memory_jacobian(x), 1)


def _memory_hessian(x):
    weights = np.empty(x.size)
    weights[_memory_order(x)] = _W
    return np.diag(weights * x.ravel()).reshape(x.shape + x.shape)


LAYOUT_CASES = {  # (the derivative at x, its expected value)
    "jacrev": (lambda x: jl.jacrev(_memory_weighted)(x), _memory_jacobian),
    "jacfwd": (lambda x: jl.jacfwd(_memory_weighted)(x), _memory_jacobian),
    "vjp": (lambda x: jl.vjp(_memory_weighted, x)[1](np.eye(x.size)), _memory_jacobian),
    "grad": (lambda x: jl.grad(lambda x: _memory_weighted(x) @ _W)(x), _memory_gradient),
    "value_and_grad": (lambda x: jl.value_and_grad(lambda x: _memory_weighted(x) @ _W)(x)[1],
                       _memory_gradient),
    "hessian": (lambda x: jl.hessian(_memory_cubed)(x), _memory_hessian),
    "dict leaf": (lambda x: jl.jacrev(lambda p: _memory_weighted(p["a"]))({"a": x})["a"], _memory_jacobian),
    "jit(jacrev)": (jl.jit(jl.jacrev(_memory_weighted)), _memory_jacobian),
    "jit(jacfwd)": (jl.jit(jl.jacfwd(_memory_weighted)), _memory_jacobian),
    "jit(grad)": (jl.jit(jl.grad(lambda x: _memory_weighted(x) @ _W)), _memory_gradient),
    "jit(hessian)": (jl.jit(jl.hessian(_memory_cubed)), _memory_hessian),
    "jit(sparse_jacobian)": (lambda x, jac=jl.jit(jl.sparse_jacobian(_memory_weighted)): jac(x).toarray(),
                             lambda x: _memory_jacobian(x).reshape(6, 6)),
}


@pytest.mark.parametrize("name", LAYOUT_CASES)
def test_an_x_in_fortran_order_reaches_f_so_laid_out_and_each_layout_gets_its_program(name):
    derivative, expected = LAYOUT_CASES[name]
    c = np.arange(1.0, 7.0).reshape(2, 3)
    for x in (np.asfortranarray(c), c, np.asfortranarray(c)):  # a compiled function keeps one program each
        assert_close(derivative(x), expected(x), rtol=1e-15)


def _layout_reader(x):
    r = x.reshape(-1)  # a view of f's x exactly where NumPy's reshape is one
    r *= 10.0  # so this reaches x there alone
    return x.T.ravel("A") * np.arange(1.0, x.size + 1)  # "A": x.T's memory order, C or F


_VIEWS = {  # x as a view of a larger array: 2 x 3 values, each layout NumPy reads differently
    "C": lambda base: base[:2, :3].copy(),
    "F": lambda base: np.asfortranarray(base[:2, :3]),
    "strided": lambda base: base[:2, :6:2],
    "wide": lambda base: base[:2, :3],
    "wide transposed": lambda base: base[:3, :2].T,
    "negative": lambda base: base[1::-1, 2::-1],
}


def _in_layout(view, values):
    x = view(np.zeros((400, 400)))
    x[...] = values
    return x


def _differences(f, view, values, h=1e-3):
    """Central differences of f in NumPy, each x laid out by `view`: the reference."""
    columns = []
    for i in range(values.size):
        step = np.zeros(values.size)
        step[i] = h
        plus, minus = (f(_in_layout(view, values + s.reshape(values.shape))) for s in (step, -step))
        columns.append((plus - minus) / (2 * h))
    return np.stack(columns, axis=-1).reshape(-1, *values.shape)


_LAYOUT_READERS = {
    "jacrev": lambda x: jl.jacrev(_layout_reader)(x), "jacfwd": lambda x: jl.jacfwd(_layout_reader)(x),
    "vjp": lambda x: jl.vjp(_layout_reader, x)[1](np.eye(6)),
    "jvp": lambda x: np.moveaxis(jl.jvp(_layout_reader, x, np.eye(6).reshape(6, 2, 3))[1], 0, -1).reshape(6, 2, 3),
    "dict leaf": lambda x: jl.jacrev(lambda p: _layout_reader(p["a"]))({"a": x, "b": x.T})["a"],
    "jit(jacrev)": jl.jit(jl.jacrev(_layout_reader)), "jit(jacfwd)": jl.jit(jl.jacfwd(_layout_reader)),
    "jit(sparse_jacobian)": lambda x, s=jl.jit(jl.sparse_jacobian(_layout_reader)): s(x).toarray().reshape(6, 2, 3),
}


@pytest.mark.parametrize("name", _LAYOUT_READERS)
def test_f_reading_its_x_layout_is_differentiated_at_x_as_the_caller_lays_it_out(name):
    """Every layout in turn, then again: compiled functions keep one program per layout NumPy reads."""
    values = np.arange(1.0, 7.0).reshape(2, 3)
    for layout in list(_VIEWS) * 2:
        x = _in_layout(_VIEWS[layout], values)
        expected = _differences(_layout_reader, _VIEWS[layout], values)
        assert_close(_LAYOUT_READERS[name](x), expected, 1e-9, f"{name} at a {layout} x")
    assert np.array_equal(_VIEWS["wide"](np.arange(160000.0).reshape(400, 400)), [[0, 1, 2], [400, 401, 402]])


@pytest.mark.parametrize("hessian", [jl.hessian, lambda f: jl.jit(jl.hessian(f))], ids=["eager", "jit"])
def test_a_hessian_of_f_reading_its_x_layout_follows_each_layout(hessian):
    square = lambda x: np.sum(_layout_reader(x) ** 2) / 2  # noqa: E731 - H = J^T J, J of _layout_reader
    H = hessian(square)
    values = np.arange(1.0, 7.0).reshape(2, 3)
    for layout in list(_VIEWS) * 2:
        J = _differences(_layout_reader, _VIEWS[layout], values).reshape(6, 6)
        assert_close(H(_in_layout(_VIEWS[layout], values)).reshape(6, 6), J.T @ J, 1e-9, layout)


def test_columns_of_matrices_of_any_width_share_one_program():
    """The key is the layout NumPy reads (a strided vector), not the strides themselves."""
    jitted = jl.jit(jl.jacrev(_layout_reader))
    for width in range(4, 40, 5):
        x = np.arange(float(6 * width)).reshape(6, width)[:, 3]
        assert_close(jitted(x), jl.jacrev(_layout_reader)(x), 1e-15)
    assert jitted.compiles == 1


def test_a_layout_of_axes_with_one_stride_is_read_as_numpy_reads_it():
    from jacobian_lab import snapshots

    base = np.arange(1000.0)
    for shape, strides in (((3, 3), (800, 800)), ((3, 2, 2), (8000, 8, 8000))):
        view = np.lib.stride_tricks.as_strided(base, shape, strides)  # overlapping axes: a tie in strides
        copied = snapshots.laid_out(view, snapshots.layout(view))
        np.testing.assert_array_equal(copied.ravel("K"), view.ravel("K"))


@pytest.mark.parametrize("f", [lambda v: v * np.can_cast(v, np.float64),
                               lambda v: v * (np.common_type(v) is np.float64)], ids=["can_cast", "common_type"])
def test_a_program_may_keep_a_scalar_type_f_passed_to_numpy(f):
    """np.float64, the class, is a constant of the call: the program counts no bytes for it."""
    x = np.array([0.5, 1.5, 2.5])
    np.testing.assert_array_equal(jl.jit(jl.jacobian(f))(x), np.eye(3))
    np.testing.assert_array_equal(jl.jit(jl.sparse_jacobian(f))(x).toarray(), np.eye(3))


def test_programs_are_kept_for_the_latest_shapes_only(monkeypatch):
    """A function called at a new shape every time kept every program: 690 MB for n = 1..400."""
    monkeypatch.setattr(compiled, "KEEP_SHAPES", 3)
    jitted = jl.jit(jl.jacobian(np.sin))
    for n in range(1, 6):
        jitted(np.ones(n))
    assert sorted(key[1] for key in jitted._programs) == [(3,), (4,), (5,)]
    assert_close(jitted(np.full(1, 0.5)), np.cos([[0.5]]), 1e-15)  # compiled again
    assert jitted.compiles == 6 and len(jitted._programs) == 3


def test_a_program_holds_what_constant_bytes_counts_before_and_after_its_first_replay():
    """Until its first replay a program held its whole recording (the seeds, every recorded value): 2.9 MB for
    0.72 MB of constants; a compressed one's pattern and the places it gathers J from went uncounted."""
    import gc
    import tracemalloc

    x = np.linspace(0.1, 1.0, 300)
    gc.collect()
    tracemalloc.start()
    try:
        jitted = jl.jit(jl.jacobian(lambda v: np.cumsum(v) ** 2, mode="forward"))
        jitted(x)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    [program] = jitted._programs[None, (300,), "d", "C", False]
    assert program.constant_bytes <= held < 1.3 * program.constant_bytes + 200_000
    banded = jl.jit(jl.jacobian(lambda u: u[2:] - 2 * u[1:-1] + np.exp(u[:-2])))
    program = banded.program(np.ones(1000))
    assert isinstance(program, CompressedProgram)
    assert program.constant_bytes >= program.pattern.indices.nbytes + program._flat_index.nbytes


def test_a_shape_dropped_while_a_thread_replays_it_is_compiled_again(monkeypatch):
    """A thread whose replay missed at a shape, while another thread's compiles dropped that shape's programs,
    read them again by their key: KeyError out of the call."""
    import threading

    def f(x):
        return np.sin(x) if x[0] > 0 else np.cos(x)

    monkeypatch.setattr(compiled, "KEEP_SHAPES", 2)
    jitted = jl.jit(jl.jacobian(f))
    jitted(np.array([1.0, 2.0, 3.0]))
    missed, go, replay = threading.Event(), threading.Event(), compiled._replay

    def held(programs, x, inputs=()):
        result = replay(programs, x, inputs)
        if threading.current_thread().name == "held" and result[1] is None and not missed.is_set():
            missed.set()
            go.wait(10)
        return result

    monkeypatch.setattr(compiled, "_replay", held)
    out = {}
    x = np.array([-1.0, 2.0, 3.0])
    thread = threading.Thread(target=lambda: out.update(J=jitted(list(x))), name="held")  # the general path
    thread.start()
    assert missed.wait(10)
    for n in (4, 5):  # the other thread's shapes drop (3,)
        jitted(np.ones(n))
    go.set()
    thread.join()
    assert_close(out["J"], jl.jacobian(f, x), 1e-15)


@pytest.mark.parametrize("build", [jl.grad, jl.jacrev, jl.jacfwd, jl.hessian], ids=lambda b: b.__name__)
def test_a_first_call_counts_what_the_eager_call_counts(build):
    """The recording ran in two counting blocks on one recorder, each adding all of it to the caller's count:
    f's evaluation was counted twice."""
    f, x = (lambda v: np.sum(np.sin(v) * v)), np.linspace(-1.0, 1.0, 20)
    with counting() as eager:
        build(f)(x)
    with counting() as first:
        jl.jit(build(f))(x)
    assert first.total() == eager.total()


def test_a_hessian_of_a_tree_keeps_compiled_functions_for_the_latest_structures_only(monkeypatch):
    monkeypatch.setattr(compiled, "KEEP_SHAPES", 3)
    f = lambda t: np.sum(t["a"] ** 3) + np.sum(t["b"] ** 2)  # noqa: E731
    jitted = jl.jit(jl.hessian(f))
    for n in range(1, 6):  # a new leaf shape: a new structure
        H = jitted({"a": np.ones(n), "b": np.ones(2)})
        assert_close(H["a"]["a"], 6 * np.eye(n), 1e-15)
    assert len(jitted._flat) == 3


@pytest.mark.parametrize("view", [lambda m: np.diagonal(m.reshape(2, 2)), lambda m: m.reshape(2, 2).diagonal(),
                                  lambda m: np.broadcast_to(m, (2, 4))], ids=["diagonal", "method", "broadcast_to"])
def test_a_write_into_a_read_only_view_of_a_mask_fails_as_in_eager_mode(view):
    """NumPy's view is read-only: the recording took the write for one into a view it cannot replay, warned that
    it computed without compiling, and then failed as eager mode does."""
    def f(x):
        v = view(x > 0)
        v[0] = True
        return x * 2.0

    def g(x):  # a write into m itself after the view, which NumPy allows
        m = x > 0
        np.broadcast_to(m, m.shape)
        m[0] = True
        return x * m

    for call in (lambda: jl.jacobian(f, np.ones(4)), lambda: jl.jit(jl.jacobian(f))(np.ones(4))):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="assignment destination is read-only"):
                call()
    with pytest.warns(UserWarning, match="after taking a view of it"):  # m stays writeable, as NumPy's
        assert_close(jl.jit(jl.jacobian(g))(-np.ones(4)), jl.jacobian(g, -np.ones(4)), 1e-15)


def test_a_shape_called_between_new_ones_keeps_its_programs(monkeypatch):
    """The oldest compiled shape was dropped even where it was the one called all along: a loop over a hot shape
    and ever new ones compiled the hot shape again every KEEP_SHAPES calls."""
    monkeypatch.setattr(compiled, "KEEP_SHAPES", 3)
    jitted = jl.jit(jl.jacobian(np.sin))
    hot = np.full(2, 0.5)
    for n in range(3, 9):
        jitted(hot)
        jitted(np.ones(n))
    assert_close(jitted(hot), np.diag(np.cos(hot)), 1e-15)
    assert jitted.compiles == 7  # the hot shape's once, and each new shape's
    assert (None, (2,), "d", "C", False) in jitted._programs and len(jitted._programs) == 3


@pytest.mark.parametrize("read", [lambda m: bool(memoryview(m)[0]), lambda m: bool(np.frombuffer(m, np.uint8)[0]),
                                  lambda m: m.__array_interface__["shape"] == (3,),
                                  lambda m: bool(np.from_dlpack(m)[0])],
                         ids=["memoryview", "frombuffer", "array_interface", "dlpack"])
def test_a_read_of_a_masks_memory_is_computed_without_compiling(read):
    """The stand-in jit hands f for a mask has no memory to export on Python 3.11: a bare TypeError or
    AttributeError came out of the call, where eager mode computes."""
    def f(z):
        return z * 2.0 if read(z > 0) else z * 3.0

    x = np.array([0.3, -0.7, 1.2])
    jitted = jl.jit(jl.jacobian(f))
    with pytest.warns(UserWarning, match=r"computed without compiling, because f reads the memory of a mask"):
        J = jitted(x)
    np.testing.assert_array_equal(J, jl.jacobian(f, x))


def test_threads_keep_and_drop_shapes_of_a_structured_x_without_errors(monkeypatch):
    """A tree's structure hashes in Python, which let one thread move a shape to the end of the cache while another
    walked it to drop the oldest: 'OrderedDict mutated during iteration' out of a call."""
    import threading

    monkeypatch.setattr(compiled, "KEEP_SHAPES", 4)
    interval = sys.getswitchinterval()
    jitted = jl.jit(jl.jacobian(lambda d: np.sin(d["a"]) * np.sum(d["b"] ** 2)))
    failures = []

    def work(seed):
        try:
            for i in range(40):
                n = 2 + (i + seed) % 9
                x = {"a": np.linspace(0.1, 1.0, n), "b": np.ones(1 + i % 3)}
                J = jitted(x)
                assert_close(J["a"], np.diag(np.cos(x["a"])) * np.sum(x["b"] ** 2), 1e-14)
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []


def test_code_that_runs_while_a_cache_is_reordered_may_call_compiled_functions(monkeypatch):
    """The caches' lock was not reentrant, and an evicted program was freed holding it: a key whose hash calls a
    compiled function, or a finalizer of an evicted key that does, waited for the lock forever."""
    import threading

    inner = jl.jit(jl.grad(lambda v: np.sum(v ** 2)))
    calls = []

    class Key(str):
        def __hash__(self):
            calls.append(inner(np.ones(2)))
            return str.__hash__(self)

        def __eq__(self, other):
            return str.__eq__(self, other)

        def __del__(self):
            calls.append(inner(np.ones(2)))

    monkeypatch.setattr(compiled, "KEEP_SHAPES", 2)
    outer = jl.jit(jl.hessian(lambda t: sum(np.sum(v ** 3) for v in t.values())))
    done = []

    def run():
        for i in range(5):  # a new structure each time: the oldest are evicted
            H = outer({Key(f"k{i}"): np.ones(2)})
            assert_close(H[f"k{i}"][f"k{i}"], 6.0 * np.eye(2), 1e-14)
        done.append(True)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert done == [True] and calls
