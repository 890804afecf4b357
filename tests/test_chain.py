"""Tests for running Jacobian chains: ``Chain`` and the counted products in ``jacobian_lab.chain``."""

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jacobian_lab as jl
from jacobian_lab.accounting import Cost, counting
from jacobian_lab.chain import (
    BRACKETINGS,
    Chain,
    ChainMeasurement,
    all_bracketings,
    bracketing_cost,
    local_mode,
    multiply,
    multiply_counted,
    plan,
)


def dense(rng, rows, cols):
    A = rng.standard_normal((rows, cols)) / np.sqrt(cols)
    return lambda z: np.tanh(A @ z)


def linear(rng, rows, cols):
    A = rng.standard_normal((rows, cols))
    return lambda z: A @ z


def make_chain(spec, seed=0):
    """Build a chain from widths and stage kinds: "dense" (tanh(A z)), "linear" (A z), "sin"."""
    rng = np.random.default_rng(seed)
    widths, kinds = spec
    stages = []
    for i, kind in enumerate(kinds, 1):
        if kind == "sin":
            assert widths[i] == widths[i - 1]
            stages.append(np.sin)
        else:
            stages.append({"dense": dense, "linear": linear}[kind](rng, widths[i], widths[i - 1]))
    x = rng.uniform(-1.0, 1.0, size=widths[0])
    return Chain(stages), x


CHAINS = {
    "2 stages": ([5, 3, 2], ["dense", "dense"]),
    "3 stages, width-1 bottleneck": ([6, 1, 4, 4], ["dense", "dense", "sin"]),
    "4 stages, mixed optimum": ([12, 1, 12, 12, 12], ["dense", "linear", "sin", "dense"]),
    "5 stages": ([3, 7, 1, 5, 5, 6], ["dense", "linear", "dense", "sin", "dense"]),
    "scalar output": ([8, 6, 6, 1], ["dense", "sin", "linear"]),
}


@pytest.fixture(params=list(CHAINS), ids=list(CHAINS))
def chain_case(request):
    widths, _ = CHAINS[request.param]
    chain, x = make_chain(CHAINS[request.param])
    return chain, x, tuple(widths)


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bracketing", BRACKETINGS)
def test_jacobian_equals_jacrev_and_jacfwd(chain_case, bracketing):
    chain, x, widths = chain_case
    J = chain.jacobian(x, bracketing=bracketing)
    assert J.shape == (widths[-1], widths[0])
    np.testing.assert_allclose(J, jl.jacrev(chain)(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(J, jl.jacfwd(chain)(x), rtol=1e-12, atol=1e-12)


def test_default_bracketing_is_optimal(chain_case):
    chain, x, _ = chain_case
    m = chain.measure(x)
    assert m.bracketing == "optimal"
    assert m.order == chain.plan(x).order()
    assert chain.measure(x, bracketing=None).order == m.order  # None is the default, as in NumPy's signatures


def test_call_applies_stages_in_order():
    chain = Chain([lambda z: z + 1.0, lambda z: 2.0 * z, lambda z: z[::-1]])
    np.testing.assert_array_equal(chain(np.array([0.0, 1.0])), [4.0, 2.0])
    assert len(chain) == 3


def test_single_stage_chain():
    chain = Chain([np.sin])
    x = np.array([0.0, 1.0])
    m = chain.measure(x, bracketing="reverse")
    np.testing.assert_allclose(m.jacobian, np.diag(np.cos(x)))
    assert (m.product_flops, m.predicted_flops, m.order) == (0, 0, 1)
    assert chain.measure(x, bracketing=1).product_flops == 0


def test_integer_input_is_promoted():
    chain = Chain([lambda z: 3.0 * z])
    np.testing.assert_array_equal(chain.jacobian(np.array([1, 2])), 3.0 * np.eye(2))


# --------------------------------------------------------------------------
# Counted product FLOPs == plan
# --------------------------------------------------------------------------


def test_counted_products_equal_plan(chain_case):
    chain, x, widths = chain_case
    p = plan(widths)
    expected = {"forward": p.forward_flops, "reverse": p.reverse_flops, "optimal": p.optimal_flops}
    for bracketing, flops in expected.items():
        m = chain.measure(x, bracketing=bracketing)
        assert m.predicted_flops == flops
        assert m.product_flops == flops
        assert m.matches and m.difference == 0
        assert "exact match" in m.summary()
        assert bracketing_cost(widths, m.order) == flops


def test_every_tree_counted_equals_bracketing_cost(chain_case):
    chain, x, widths = chain_case
    q = len(widths) - 1
    expected = jl.jacrev(chain)(x)
    trees = list(all_bracketings(q))
    for tree in trees:
        m = chain.measure(x, bracketing=tree)
        assert m.bracketing == "explicit"
        assert m.order == tree
        assert m.product_flops == m.predicted_flops == bracketing_cost(widths, tree)
        np.testing.assert_allclose(m.jacobian, expected, rtol=1e-12, atol=1e-12)


def test_explicit_tree_as_nested_lists():
    chain, x = make_chain(CHAINS["4 stages, mixed optimum"])
    m = chain.measure(x, bracketing=[[4, [3, 2]], 1])
    assert m.order == ((4, (3, 2)), 1)
    assert m.product_flops == plan([12, 1, 12, 12, 12]).optimal_flops


@pytest.mark.parametrize("q", range(1, 7))
def test_multiply_counted_every_tree(q):
    rng = np.random.default_rng(100 + q)
    widths = rng.integers(1, 7, size=q + 1).tolist()
    mats = [rng.standard_normal((widths[i], widths[i - 1])) for i in range(1, q + 1)]
    for tree in all_bracketings(q):
        product, flops = multiply_counted(mats, tree)
        assert flops == bracketing_cost(widths, tree)
        np.testing.assert_allclose(product, multiply(mats, tree), rtol=1e-12, atol=1e-12)


def test_multiply_counted_validates_like_multiply():
    with pytest.raises(ValueError, match="J2"):
        multiply_counted([np.ones((3, 2)), np.ones((4, 5))], (2, 1))
    with pytest.raises(ValueError, match="stages"):
        multiply_counted([np.ones((3, 2)), np.ones((4, 3))], 1)


def test_showcase_widths_100_1_100_100_100():
    chain, x = make_chain(([100, 1, 100, 100, 100], ["dense", "linear", "sin", "dense"]))
    counted = {b: chain.measure(x, bracketing=b).product_flops for b in BRACKETINGS}
    assert counted == {"forward": 4_020_000, "reverse": 2_040_000, "optimal": 60_000}
    m = chain.measure(x, bracketing="optimal")
    assert m.order == ((4, (3, 2)), 1)
    assert "counted 60,000 == predicted 60,000" in m.summary()


def test_measure_inside_an_outer_counter_is_still_counted():
    chain, x = make_chain(CHAINS["2 stages"])
    with counting() as outer:
        m = chain.measure(x, bracketing="reverse")
    assert outer.total() == m.total
    assert outer.total().flops >= m.product_flops > 0


def test_a_wrong_bracketing_of_a_long_chain_is_refused_in_a_few_lines():
    """The message spelled out the chain's whole reverse tree (8,430 characters at 600 stages, a RecursionError
    at 1,000)."""
    chain, x = Chain([np.sin] * 1000), np.ones(2)
    example = re.escape("such as '((J4 J3) J2) J1' = (((4, 3), 2), 1) for 4 of them")
    with pytest.raises(ValueError, match=example) as err:
        chain.jacobian(x, bracketing=(1, 2))
    assert len(str(err.value)) < 400


def test_a_derivative_a_stage_takes_is_part_of_its_evaluation():
    """A stage jl.grad(g) does tangent or cotangent work to compute its value: the chain's evaluation
    counts all of it, as count_flops of the stage does."""
    g, x = jl.grad(lambda z: np.sum(z ** 3)), np.linspace(0.1, 1.0, 4)
    chain = Chain([g, np.tanh])
    m = chain.measure(x)
    assert m.evaluation_cost == jl.count_flops(g, x) + jl.count_flops(np.tanh, g(x))
    with counting() as outer:
        chain.measure(x)
    assert outer.total() == m.total


@settings(max_examples=25, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=9), min_size=2, max_size=6))
def test_counted_equals_predicted_random_widths(widths):
    chain, x = make_chain((widths, ["dense"] * (len(widths) - 1)), seed=len(widths))
    expected = jl.jacrev(chain)(x)
    for bracketing in BRACKETINGS:
        m = chain.measure(x, bracketing=bracketing)
        assert m.product_flops == m.predicted_flops
        np.testing.assert_allclose(m.jacobian, expected, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------
# Widths, plan and local Jacobians
# --------------------------------------------------------------------------


def test_plan_widths_are_real(chain_case):
    chain, x, widths = chain_case
    point, real = x, [x.size]
    for stage in chain.stages:
        point = stage(point)
        real.append(point.size)
    assert tuple(real) == widths
    assert chain.plan(x).widths == widths
    assert chain.widths(x) == widths
    assert chain.plan(x) == plan(widths)


def test_local_jacobians_use_the_cheaper_engine(chain_case):
    chain, x, widths = chain_case
    m = chain.measure(x)
    expected = tuple("forward" if widths[i - 1] < widths[i] else "reverse"
                     for i in range(1, len(widths)))
    assert m.modes == expected
    assert m.modes == tuple(local_mode(widths[i - 1], widths[i]) for i in range(1, len(widths)))
    # The reported costs are those of jl.jacobian with the reported engine at each intermediate point.
    point = x
    for stage, mode, cost in zip(chain.stages, m.modes, m.local_costs):
        with counting() as c:
            J = jl.jacobian(stage, point, mode=mode)
        assert c.total() == cost
        point = stage(point)
        assert J.shape == (point.size, J.shape[1])
    assert m.local_cost == sum(m.local_costs, Cost())
    assert m.total == m.evaluation_cost + m.local_cost + Cost(m.product_flops, 0)
    for i, mode in enumerate(m.modes, 1):
        assert f"J{i}" in m.summary() and mode in m.summary()


@pytest.mark.parametrize("rows, cols", [(40, 2), (2, 40)])
def test_chosen_engine_is_cheaper_for_skewed_stages(rows, cols):
    stage = dense(np.random.default_rng(3), rows, cols)
    x = np.linspace(-1.0, 1.0, cols)
    chain = Chain([stage])
    chosen = chain.measure(x).modes[0]
    other = "reverse" if chosen == "forward" else "forward"
    assert chosen == ("forward" if cols < rows else "reverse")
    with counting() as c_chosen:
        jl.jacobian(stage, x, mode=chosen)
    with counting() as c_other:
        jl.jacobian(stage, x, mode=other)
    assert c_chosen.total().total() < c_other.total().total()


def test_local_jacobians_shapes_and_product():
    chain, x = make_chain(CHAINS["5 stages"])
    mats = chain.local_jacobians(x)
    widths = chain.widths(x)
    assert [J.shape for J in mats] == [(widths[i], widths[i - 1]) for i in range(1, len(widths))]
    np.testing.assert_allclose(multiply(mats, chain.plan(x).order()), jl.jacrev(chain)(x),
                               rtol=1e-12, atol=1e-12)


def test_evaluation_cost_is_one_counted_evaluation():
    chain, x = make_chain(CHAINS["3 stages, width-1 bottleneck"])
    m = chain.measure(x)
    assert m.evaluation_cost == jl.count_flops(chain, x)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def test_summary_reports_a_mismatch():
    chain, x = make_chain(CHAINS["2 stages"])
    m = chain.measure(x, bracketing="forward")
    assert isinstance(m, ChainMeasurement)
    off = dataclasses.replace(m, product_flops=m.predicted_flops + 100)
    assert not off.matches and off.difference == 100
    text = off.summary()
    assert f"!= predicted {m.predicted_flops:,}" in text
    assert "+100" in text
    assert "widths 5 -> 3 -> 2" in m.summary()
    assert "bracketing (forward): J2 J1" in m.summary()


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_unknown_bracketing_lists_choices():
    chain, x = make_chain(CHAINS["2 stages"])
    for bad in ("best", "Forward", 3.0, (1, 2), (2, 1, 0)):
        with pytest.raises(ValueError, match=r"'forward', 'reverse', 'optimal' \(None: 'optimal'\)"):
            chain.measure(x, bracketing=bad)
        with pytest.raises(ValueError, match="bracketing"):
            chain.jacobian(x, bracketing=bad)


def test_a_bracketing_as_the_plan_writes_it_is_taken():
    chain, x = make_chain(CHAINS["3 stages, width-1 bottleneck"])
    written = chain.plan(x).bracketing
    m = chain.measure(x, bracketing=written)
    assert m.bracketing == "explicit" and m.order == chain.plan(x).order() and m.matches
    np.testing.assert_allclose(chain.jacobian(x, bracketing="J3 (J2 J1)"), jl.jacrev(chain)(x), rtol=1e-12)
    with pytest.raises(ValueError, match=r"stages 1..3 .* cannot read 'J3 J2 J1' as a bracketing: three factors"):
        chain.jacobian(x, bracketing="J3 J2 J1")


def test_tree_for_the_wrong_number_of_stages():
    chain, x = make_chain(CHAINS["3 stages, width-1 bottleneck"])
    with pytest.raises(ValueError, match="stages 1..3"):
        chain.jacobian(x, bracketing=(2, 1))


def test_an_error_in_a_stage_keeps_its_type_and_says_which_stage():
    def singular(z):
        return np.linalg.solve(np.zeros((3, 3)), z)

    with pytest.raises(np.linalg.LinAlgError) as info:
        Chain([np.sin, singular]).jacobian(np.ones(3))
    assert info.value.__notes__ == ["raised in stage 2 (singular) of the chain"]


def test_stage_returning_2d_is_named():
    chain = Chain([np.sin, lambda z: np.outer(z, z), np.cos])
    x = np.ones(3)
    with pytest.raises(ValueError, match=r"stage 2 \(<lambda>\).*1-D.*\(3, 3\)"):
        chain.jacobian(x)
    with pytest.raises(ValueError, match=r"stage 2 \(<lambda>\)"):
        chain.plan(x)
    with pytest.raises(ValueError, match=r"stage 2 \(<lambda>\)"):
        chain(x)
    with pytest.raises(ValueError, match=r"stage 2 \(<lambda>\)"):
        jl.jacrev(chain)(x)


def test_stage_returning_scalar_or_none():
    with pytest.raises(ValueError, match=r"stage 1 \(<lambda>\).*1-D.*shape \(\)"):
        Chain([lambda z: np.sum(z)]).jacobian(np.ones(3))
    with pytest.raises(TypeError, match=r"stage 1 \(<lambda>\).*None"):
        Chain([lambda z: None]).jacobian(np.ones(3))
    with pytest.raises(TypeError, match=r"stage 2 \(<lambda>\)"):
        Chain([np.sin, lambda z: [z[0], z[1]]]).jacobian(np.ones(3))


@pytest.mark.parametrize("bracketing", ["forward", "reverse", "optimal"])
def test_a_stage_whose_width_changes_between_calls_is_named(bracketing):
    calls = []

    def counting_stage(z):  # keeps a count between calls: 3 values, then 2, then 3, ...
        calls.append(1)
        return z[: 2 + len(calls) % 2] * 2.0

    chain = Chain([np.sin, counting_stage, lambda z: np.sum(z, keepdims=True)])
    with pytest.raises(ValueError, match=r"stage 2 \(counting_stage\) returned 2 values when its Jacobian was "
                                         r"formed, where it returned 3 .* a function of its input alone"):
        chain.jacobian(np.ones(4), bracketing=bracketing)


def test_a_stages_error_of_a_subclass_of_typeerror_keeps_its_type():
    class Refused(TypeError):
        pass

    def refusing(z):
        raise Refused("the stage's own")

    for stage, error in ((lambda z: z * float(z[0]), jl.TracerConversionError), (refusing, Refused)):
        with pytest.raises(error) as info:
            Chain([np.sin, stage]).jacobian(np.ones(3))
        assert "raised in stage 2 (" in "".join(info.value.__notes__)


def test_empty_stage_list():
    with pytest.raises(ValueError, match="at least one stage"):
        Chain([])


def test_bad_stages():
    with pytest.raises(TypeError, match="sequence of stages"):
        Chain(np.sin)
    with pytest.raises(TypeError, match="stage 2 is not callable"):
        Chain([np.sin, 3])


@pytest.mark.parametrize("x", [np.ones((2, 3)), np.float64(1.0), np.ones(0)])
def test_x_must_be_a_nonempty_vector(x):
    chain = Chain([np.sin])
    with pytest.raises(ValueError, match="x must"):
        chain.jacobian(x)
    with pytest.raises(ValueError, match="x must"):
        chain.plan(x)
    with pytest.raises(ValueError, match="x must"):
        chain(x)


def test_complex_x_is_refused():
    with pytest.raises(TypeError, match="complex"):
        Chain([np.sin]).jacobian(np.ones(2, dtype=complex))
