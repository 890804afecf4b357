"""Seed-row compaction: forward programs skip structurally zero tangent rows, exactly.

References are eager `jl.jacfwd(f)` at the same point, compared bit for bit
(`assert_array_equal`, which counts NaN equal to NaN and -0.0 equal to 0.0):
a compact program must compute what eager mode computes, not an approximation.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from test_jit import _operands_of
from test_rules import CASES

import jacobian_lab as jl
from jacobian_lab import compaction
from jacobian_lab.accounting import counting

T = np.linspace(0.0, 10.0, 40)
P = np.array([1.0, 0.3, 2.0, 0.5])


def _moved(x, seed, scale=1e-2):
    rng = np.random.default_rng(seed)
    return (x + scale * (1.0 + np.abs(x)) * rng.uniform(-1.0, 1.0, np.shape(x))).astype(x.dtype)


def curve(p, t=T):
    return p[0:1] * np.exp(-p[1:2] * t) * np.sin(p[2:3] * t + p[3:4])


A = np.random.default_rng(3).normal(size=(40, 3))

# Each keeps the parameters' seed rows apart for a while, then mixes them.
FUNCTIONS = {
    "curve": curve,
    "sum of per-parameter terms":
        lambda p: p[0:1] * np.sin(T) + p[1:2] ** 2 * np.cos(T) + np.exp(p[2:3] * T / 10) - p[3:4] * T,
    "product of two sums": lambda p: (p[0:1] * T + p[1:2]) * (p[2:3] * T ** 2 - p[3:4]),
    "through a reduction": lambda p: np.exp(-p[0:1] * T) * np.sum(p[1:] ** 2),
    "quotients": lambda p: p[0:1] / (1.0 + p[1:2] * T ** 2) + np.tanh(p[2:3] * T) / p[3:4],
    "mixed inside a sine": lambda p: np.sin(p[0:1] * T + p[1:2] * T ** 2) * p[2:3] - p[3:4],
    "through a matrix": lambda p: np.tanh(A @ p[:3]) * p[3:4],
    "overlapping rows added":
        lambda p: np.exp(p[0:1] * T / 10 + p[1:2] * T ** 2 / 100) + np.sin(p[1:2] * T + p[2:3]) + p[3:4] * T,
    "overlapping rows subtracted":
        lambda p: np.exp(p[0:1] * T / 10 + p[1:2] * T ** 2 / 100) - np.sin(p[1:2] * T + p[2:3]) * p[3:4],
    "negated difference": lambda p: -(p[0:1] * np.cos(T) - np.exp(-p[1:2] * T)) * (p[2:3] - p[3:4] * T),
}


def _compact_program(fun, x):
    jitted = jl.jit(fun)
    program = jitted.program(x)
    assert program.mode == "forward"
    return jitted, program


def test_curve_program_computes_only_the_nonzero_seed_rows():
    """p0 exp(-p1 t) sin(p2 t + p3) over m samples, one pass of 4 seeds, by the FLOP conventions.

    Primal (its output is never read, so not computed): -p1 (1), * t (m), exp (m
    transcendentals), p0 * exp (m), p2 * t (m), + p3 (m), sin (m transcendentals).
    Tangents: exp' scales p1's seed row (m), the product p0 * exp adds p0's row times
    exp (m) and exp's row times p0 (m): disjoint rows, placed side by side (0); sin'
    is cos (m transcendentals) scaling the rows of p2 and p3 (2m); the last product
    takes rows 0-1 times sin (2m) and rows 2-3 times p0 exp (2m), disjoint again (0).
    Dense, each of those 8 tangent operations runs on all 4 rows: 32m.
    """
    m = T.size
    jitted, program = _compact_program(jl.jacfwd(curve), P)
    assert program.costs["primal"] == jl.Cost(1 + 4 * m, 2 * m)
    assert program.costs["tangent"] == jl.Cost(m + 2 * m + 2 * m + 2 * m + 2 * m, m)
    assert program.dense_costs["tangent"] == jl.Cost(8 * 4 * m, m)
    assert program.dense_costs["primal"] == program.costs["primal"]
    assert program.cost == program.costs["primal"] + program.costs["tangent"]
    assert program.cost.total() < program.dense_cost.total()
    with counting() as c:
        J = jitted(P)
    assert c.total() == program.cost
    assert c.costs() == program.costs
    assert (c.passes, c.batch_size) == (1, 4)
    np.testing.assert_array_equal(J, jl.jacfwd(curve)(P))
    assert "# tangent, rows 1" in program.source and "# tangent, rows 2-3" in program.source
    assert "out=v" in program.source  # disjoint rows are computed straight into one array
    assert "rows" not in program.dense_source
    J[...] = 0.0  # the caller owns the result: the next call is not affected
    np.testing.assert_array_equal(jitted(P), jl.jacfwd(curve)(P))


@pytest.mark.parametrize("batch_size", [None, 3, 2])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_compact_programs_equal_eager_exactly(name, batch_size):
    f = FUNCTIONS[name]
    fun = jl.jacfwd(f, batch_size=batch_size)
    jitted, program = _compact_program(fun, P)
    if batch_size is None:
        assert program.cost.total() < program.dense_cost.total(), program.source
    for point in (P, _moved(P, 1), _moved(P, 2, 0.3), -P):
        np.testing.assert_array_equal(jitted(point), fun(point), err_msg=f"{name} at {point}")
    assert jitted.compiles == 1
    assert sum(program.seeds) == 4 and max(program.seeds) == (batch_size or 4)


def test_float32_compact_program_equals_eager_exactly():
    t = T.astype(np.float32)
    f = lambda p: curve(p, t) + p[1:2] * t  # noqa: E731
    x = P.astype(np.float32)
    jitted, program = _compact_program(jl.jacfwd(f), x)
    assert program.cost.total() < program.dense_cost.total()
    for point in (x, _moved(x, 3), _moved(x, 4, 0.2)):
        J = jitted(point)
        assert J.dtype == np.float32
        np.testing.assert_array_equal(J, jl.jacfwd(f)(point))


def test_an_overflow_runs_the_dense_code_and_gives_eager_nans():
    """With p1 < 0, exp(-p1 t) overflows: eager's 0 * inf puts NaN in rows compaction skips."""
    jitted, program = _compact_program(jl.jacfwd(curve), P)
    bad = np.array([1.0, -100.0, 2.0, 0.5])  # exp(100 t) is inf for t > 7.1
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        eager = jl.jacfwd(curve)(bad)
        assert program._run(bad) is compaction.DENSE  # the compact code gives up ...
        with counting() as c:
            J = jitted(bad)  # ... and the dense code runs
    assert np.isnan(eager[:, 0]).any() and np.isfinite(eager[:5]).all()
    np.testing.assert_array_equal(J, eager)
    assert c.total() == program.dense_cost and c.costs() == program.dense_costs
    assert program.dense_cost != program.cost
    with counting() as c:  # a finite point: the compact code again, same program
        J = jitted(_moved(P, 5))
    assert c.total() == program.cost
    np.testing.assert_array_equal(J, jl.jacfwd(curve)(_moved(P, 5)))
    assert jitted.compiles == 1


@pytest.mark.parametrize("bad", [np.array([np.inf, 0.3, 2.0, 0.5]), np.array([1.0, 0.3, np.nan, 0.5]),
                                 np.array([1e300, 0.3, 2.0, 0.5])])
def test_non_finite_inputs_give_eager_values(bad):
    jitted, _ = _compact_program(jl.jacfwd(curve), P)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_array_equal(jitted(bad), jl.jacfwd(curve)(bad))
    assert jitted.compiles == 1


def test_a_zero_divisor_runs_the_dense_code():
    """log(p0 t) + p1 t^2: log's tangent divides p0's row by p0 t; at p0 = 0 eager
    divides the other rows' zeros by zero too, giving NaN where compaction skips them."""
    t = np.linspace(1.0, 2.0, 11)
    f = lambda p: np.log(p[0:1] * t) + p[1:2] * t ** 2  # noqa: E731
    x = np.array([2.0, 3.0])
    jitted, program = _compact_program(jl.jacfwd(f), x)
    assert program.cost.total() < program.dense_cost.total()
    bad = np.array([0.0, 3.0])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        eager = jl.jacfwd(f)(bad)
        assert program._run(bad) is compaction.DENSE
        with counting() as c:
            J = jitted(bad)
    assert np.isnan(eager[:, 1]).all()
    np.testing.assert_array_equal(J, eager)
    assert c.total() == program.dense_cost
    for point in (x, _moved(x, 6)):
        np.testing.assert_array_equal(jitted(point), jl.jacfwd(f)(point))
    assert jitted.compiles == 1


def test_a_non_finite_constant_factor_keeps_its_product_dense():
    """The constant's inf times the zero seed rows is NaN in eager mode: that product is not compacted."""
    C = np.where(np.arange(T.size) % 7 == 0, np.inf, T)
    f = lambda p: np.exp(-p[0:1] * T) * C + p[1:2] * np.sin(p[2:3] * T)  # noqa: E731
    x = np.array([0.3, 1.0, 2.0])
    jitted = jl.jit(jl.jacfwd(f))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        eager = jl.jacfwd(f)(x)
        assert np.isnan(eager[::7, 1:]).all()
        for point in (x, _moved(x, 7)):
            np.testing.assert_array_equal(jitted(point), jl.jacfwd(f)(point))
        program = jitted.program(x)
    assert program.cost.total() < program.dense_cost.total()  # the rest is still compacted


def test_a_cheaper_compact_forward_program_wins_auto():
    """Two samples of the curve: dense, forward costs more than reverse; compacted, less."""
    t = np.linspace(0.0, 1.0, 2)
    f = lambda p: curve(p, t)  # noqa: E731
    forward = jl.jit(jl.jacfwd(f)).program(P)
    reverse = jl.jit(jl.jacrev(f)).program(P)
    assert forward.dense_cost.total() > reverse.cost.total() > forward.cost.total()
    chosen = jl.jit(jl.jacobian(f)).program(P)
    assert chosen.mode == "forward" and chosen.cost == forward.cost


def test_reverse_and_dense_forward_programs_are_unchanged():
    W = np.random.default_rng(0).normal(size=(5, 4))
    reverse = jl.jit(jl.jacrev(curve)).program(P)
    dense = jl.jit(jl.jacfwd(lambda x: np.tanh(W @ x))).program(P)  # every row of W x's seeds is nonzero
    for program in (reverse, dense):
        assert program.source == program.dense_source and "rows" not in program.source
        assert program.cost == program.dense_cost and program.costs == program.dense_costs


def test_a_value_read_whole_is_expanded_to_all_rows():
    """A sum over samples reads p1's compacted row expanded into all 4 rows (a copy, no flops)."""
    f = lambda p: np.sum(np.exp(-p[1:2] * T)) * p[0:1] + p[2:3] * p[3:4]  # noqa: E731
    jitted, program = _compact_program(jl.jacfwd(f), P)
    assert "expanded" in program.source
    for point in (P, _moved(P, 8)):
        np.testing.assert_array_equal(jitted(point), jl.jacfwd(f)(point))
    with counting() as c:
        jitted(P)
    assert c.total() == program.cost and program.cost.total() < program.dense_cost.total()


def test_a_difference_of_tangents_is_built_on_the_union_of_their_rows():
    """Recorded by hand, to choose the rows: with w = x0 t, in the tangent phase a = S_a sin(w)
    holds seed row 0, b = S_b cos(w) rows 0-1 and d = a - b rows 0-1 of 3; the program computes d
    as a copied into zeros, b subtracted: 2 rows, not 3."""
    from jacobian_lab.program import Program
    from jacobian_lab.rules import elementwise as E
    from jacobian_lab.rules import shape as S
    from jacobian_lab.staging import Recorder

    m = 5
    t = np.linspace(0.5, 1.5, m)
    S_a, S_b = np.zeros((3, m)), np.zeros((3, m))
    S_a[0], S_b[0], S_b[1] = 1.0, 2.0, -1.0

    def replay(x):  # the recorded computation, as eager NumPy
        w = x[0:1] * t
        return np.subtract(np.multiply(S_a, np.sin(w)), np.multiply(S_b, np.cos(w)))

    x = np.array([0.3, 0.2, 0.1])
    recorder = Recorder(x)
    recorder.segment = "forward"
    with counting(recorder):
        w = E.multiply(S.getitem(x, index=(slice(0, 1),)), t)
        s, c = E.sin(w), E.cos(w)
        recorder.phase = "tangent"
        d = E.subtract(E.multiply(S_a, s), E.multiply(S_b, c))
    recorder.output(d, 3)
    program = Program(recorder, "forward", (m,), x, None)
    assert "] -= " in program.source and "rows 0-1: rows 0 - rows 0-1" in program.source
    # x0 t (m), sin and cos (m transcendentals each); S_a's row 0 times sin (m), S_b's rows 0-1
    # times cos (2m), then b's 2 rows subtracted from zeros holding a (2m); dense, 3 rows each
    assert program.cost == jl.Cost(m + m + 2 * m + 2 * m, 2 * m)
    assert program.dense_cost == jl.Cost(m + 3 * m * 3, 2 * m)
    for point in (x, -x, np.array([1e308, 0.0, 0.0])):
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(program(point), replay(point).T)


def test_a_constant_subtracted_on_rows_of_its_own_is_negated_as_the_program_is_compiled():
    """p0 exp(-p1 t) - p2 t: the tangent of p2 t is seed row 2 times t, a constant, and rows 0-1 hold
    the other term's. The difference copies both parts into place, -t negated once, as the sum of
    disjoint rows does; it was a subtract of t at every call."""
    t = np.linspace(0.0, 1.0, 50)  # t[0] = 0: eager's 0 - 0.0 is +0.0, which a negation would make -0.0
    f = lambda p: p[0] * np.exp(-p[1] * t) - p[2] * t  # noqa: E731
    compiled, x = jl.jit(jl.jacfwd(f)), np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(compiled(x), jl.jacfwd(f)(x))
    assert not np.signbit(compiled(x)[0, 2]) and not np.signbit(jl.jacfwd(f)(x)[0, 2])
    program = compiled.program(x)
    assert "concatenate" in program.source and "-=" not in program.source
    # primal: -p1 (1), times t (50), exp (50 transcendentals); tangent: d exp(-p1 t) = -t exp(..),
    # times p0 (50 each), and p0's row exp(..) times its seed (50)
    assert program.cost == jl.Cost(1 + 50 + 3 * 50, 50)
    x2 = np.array([0.5, -1.0, 2.0])
    np.testing.assert_array_equal(compiled(x2), jl.jacfwd(f)(x2))


@pytest.mark.parametrize("batch_size", [None, 1])
@pytest.mark.parametrize("name, i", CASES)
def test_every_rule_replays_forward_exactly_at_finite_and_non_finite_points(name, i, batch_size):
    """Whether or not a program compacts, its values are eager's bit for bit, NaN and inf included."""
    f, x = _operands_of(name, i)
    fun = jl.jacfwd(f, batch_size=batch_size)
    jitted = jl.jit(fun)
    spots = np.arange(x.size).reshape(x.shape) % 2 == 1
    points = (x, _moved(x, 1), np.where(spots, np.inf, x), np.where(spots, np.nan, x), x * 1e300, np.zeros_like(x))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for point in points:
            try:
                expected = fun(point)
            except (ValueError, FloatingPointError, ZeroDivisionError, jl.DerivativeError):
                continue  # no Jacobian to compare with
            np.testing.assert_array_equal(jitted(point), expected, err_msg=f"{name} at {point}")
