"""Tests for the Jacobian chain planner, ``jacobian_lab.bracketing``."""

import doctest
import json
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jacobian_lab.bracketing
from jacobian_lab.bracketing import (
    ChainPlan,
    all_bracketings,
    bracketing_cost,
    format_bracketing,
    parse_bracketing,
    multiply,
    plan,
)


def forward_tree(q):
    tree = 1
    for k in range(2, q + 1):
        tree = (k, tree)
    return tree


def reverse_tree(q):
    tree = q
    for k in range(q - 1, 0, -1):
        tree = (tree, k)
    return tree


# --------------------------------------------------------------------------
# Hand-computed costs
# --------------------------------------------------------------------------


def test_hand_computed_three_stages():
    # widths [2, 3, 4, 5]: J1 is 3x2, J2 is 4x3, J3 is 5x4.
    # forward  J3 (J2 J1): J2 J1 = (4x3)(3x2) -> 2*4*3*2 = 48, result 4x2
    #                      J3 (.) = (5x4)(4x2) -> 2*5*4*2 = 80        total 128
    # reverse  (J3 J2) J1: J3 J2 = (5x4)(4x3) -> 2*5*4*3 = 120, result 5x3
    #                      (.) J1 = (5x3)(3x2) -> 2*5*3*2 = 60        total 180
    p = plan([2, 3, 4, 5])
    assert p.forward_flops == 128
    assert p.reverse_flops == 180
    assert p.optimal_flops == 128
    assert p.bracketing == "J3 (J2 J1)"
    assert p.order() == (3, (2, 1))
    assert p.best_mode == "forward"
    assert p.speedup == 1.0
    assert p.stages == 3
    assert bracketing_cost([2, 3, 4, 5], (3, (2, 1))) == 128
    assert bracketing_cost([2, 3, 4, 5], ((3, 2), 1)) == 180


def test_hand_computed_tables():
    # cost_table[i-1, j-1] = min FLOPs for J_j ... J_i on widths [2, 3, 4, 5]:
    # J2 J1 = 48, J3 J2 = 120, J3 J2 J1 = min(48 + 80, 120 + 60) = 128.
    p = plan([2, 3, 4, 5])
    expected_cost = [[0, 48, 128], [-1, 0, 120], [-1, -1, 0]]
    assert p.cost_table.tolist() == expected_cost
    assert all(type(v) is int for v in p.cost_table.ravel())
    # split k: J_j..J_i = (J_j..J_{k+1})(J_k..J_i); 0 on the diagonal, -1 below.
    assert p.split_table.tolist() == [[0, 1, 2], [-1, 0, 2], [-1, -1, 0]]
    assert not p.cost_table.flags.writeable
    assert not p.split_table.flags.writeable


def test_forward_and_reverse_formulas_general():
    # forward = sum_{k=2..q} 2 w0 w_k w_{k-1}; reverse = sum_{k=1..q-1} 2 w_q w_k w_{k-1}
    w = [3, 7, 2, 9, 4, 6]
    q = len(w) - 1
    p = plan(w)
    assert p.forward_flops == sum(2 * w[0] * w[k] * w[k - 1] for k in range(2, q + 1))
    assert p.reverse_flops == sum(2 * w[q] * w[k] * w[k - 1] for k in range(1, q))
    assert p.forward_flops == bracketing_cost(w, forward_tree(q))
    assert p.reverse_flops == bracketing_cost(w, reverse_tree(q))


def test_single_stage():
    p = plan([7, 3])
    assert (p.forward_flops, p.reverse_flops, p.optimal_flops) == (0, 0, 0)
    assert p.bracketing == "J1"
    assert p.order() == 1
    assert p.speedup == 1.0
    assert p.best_mode == "any"
    assert p.cost_table.tolist() == [[0]]
    assert multiply([np.eye(3, 7)], 1).shape == (3, 7)


def test_bracketing_strings():
    assert plan([4, 4, 4, 4]).bracketing == "J3 (J2 J1)"  # ties -> forward-like
    assert format_bracketing(forward_tree(3)) == "J3 (J2 J1)"
    assert format_bracketing(reverse_tree(3)) == "(J3 J2) J1"
    assert format_bracketing(((4, (3, 2)), 1)) == "(J4 (J3 J2)) J1"
    assert format_bracketing((12, 11)) == "J12 J11"


@pytest.mark.parametrize("q", [1, 2, 3, 4, 6])
def test_parse_bracketing_reads_back_every_tree_format_writes(q):
    for tree in all_bracketings(q):
        assert parse_bracketing(format_bracketing(tree)) == tree
        assert parse_bracketing(f"({format_bracketing(tree)})") == tree  # the outermost may be bracketed too


@pytest.mark.parametrize("text, says", [
    ("J3 J2 J1", "three factors side by side"), ("(J3 J2", "an unclosed '('"), ("J3 J2) J1", "an unmatched ')'"),
    ("", "a factor is missing"), ("(J2 J1) X", "at 'X'"), ("J2 ()", "a factor is missing"),
])
def test_parse_bracketing_names_what_it_cannot_read(text, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_bracketing(text)


def test_a_chain_longer_than_plan_takes_is_refused_at_once():
    """1,000 stages ran minutes of the O(q^3) programme, then failed in Python's recursion limit."""
    with pytest.raises(ValueError, match=r"a chain of 1000 stages is longer than plan takes \(500\).*plan parts"):
        plan([3] * 1001)
    assert bracketing_cost([3] * 601, forward_tree(600)) == 599 * 2 * 27  # pricing a bracketing is not planning it
    with pytest.raises(ValueError, match="nests deeper than Python's recursion limit"):  # was a RecursionError
        bracketing_cost([3] * 1201, forward_tree(1200))
    with pytest.raises(ValueError, match="bracket the chain in parts"):
        multiply([np.eye(2)] * 1200, forward_tree(1200))
    with pytest.raises(ValueError, match="bracket the chain in parts"):
        format_bracketing(forward_tree(1200))
    text = " (".join(f"J{k}" for k in range(600, 0, -1)) + ")" * 599  # a forward bracketing's text: read recursively
    with pytest.raises(ValueError, match="bracket the chain in parts"):
        parse_bracketing(text)


def test_a_speedup_close_to_one_is_not_printed_as_one():
    p = plan([336, 364, 192, 324, 184])
    assert p.best_mode == "optimal" and 1 < p.speedup < 1.001
    assert f"best pure mode: {p.speedup:.5g}x" in p.table()  # 1.0002x, not 1.00x


def test_big_widths_use_exact_integers():
    w = [10**12] * 6
    p = plan(w)
    assert p.forward_flops == 4 * 2 * 10**36  # 4 products of 2*n^3, n = 10**12
    assert p.optimal_flops == p.forward_flops == p.reverse_flops
    assert type(p.optimal_flops) is int
    json.dumps(p.to_dict())


# --------------------------------------------------------------------------
# Optimality against brute force
# --------------------------------------------------------------------------

widths_strategy = st.integers(min_value=1, max_value=8).flatmap(
    lambda q: st.lists(st.integers(min_value=1, max_value=50), min_size=q + 1, max_size=q + 1)
)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(widths_strategy)
def test_dp_matches_brute_force(widths):
    q = len(widths) - 1
    p = plan(widths)
    costs = [bracketing_cost(widths, t) for t in all_bracketings(q)]
    assert p.optimal_flops == min(costs)
    assert bracketing_cost(widths, p.order()) == p.optimal_flops
    assert format_bracketing(p.order()) == p.bracketing
    assert p.optimal_flops <= min(p.forward_flops, p.reverse_flops)
    assert p.forward_flops == costs[0]  # all_bracketings yields forward first ...
    assert p.reverse_flops == costs[-1]  # ... and reverse last
    assert p.speedup >= 1.0
    # a pure order that is optimal is the one shown: forward first, then reverse (a mixed tree of equal
    # cost beside "best mode: reverse" read as a contradiction)
    if p.optimal_flops == p.forward_flops:
        assert p.order() == forward_tree(q)
    elif p.optimal_flops == p.reverse_flops:
        assert p.order() == reverse_tree(q) and p.best_mode == "reverse"
    # every table entry is optimal for its sub-chain J_j ... J_i
    for i in range(1, q + 1):
        for j in range(i, q + 1):
            sub = widths[i - 1 : j + 1]
            best = min(bracketing_cost(sub, t) for t in all_bracketings(j - i + 1))
            assert p.cost_table[i - 1, j - 1] == best
    # tie rule: if forward is optimal, the plan is exactly the forward bracketing
    if p.forward_flops == p.optimal_flops:
        assert p.order() == forward_tree(q)


def test_ties_are_deterministic():
    assert plan([5, 5, 5, 5, 5]).order() == forward_tree(4)
    assert plan([5, 5, 5, 5, 5]) == plan((5, 5, 5, 5, 5))


# --------------------------------------------------------------------------
# Enumeration of bracketings
# --------------------------------------------------------------------------


def test_number_of_bracketings_is_catalan():
    counts = [sum(1 for _ in all_bracketings(q)) for q in range(1, 9)]
    assert counts == [1, 1, 2, 5, 14, 42, 132, 429]
    for q in range(1, 9):
        n = q - 1
        assert counts[q - 1] == math.comb(2 * n, n) // (n + 1)


def test_bracketings_are_distinct_and_ordered():
    trees = list(all_bracketings(4))
    assert len(set(trees)) == 5
    assert trees[0] == forward_tree(4)
    assert trees[-1] == reverse_tree(4)
    assert ((4, (3, 2)), 1) in trees
    assert ((4, 3), (2, 1)) in trees


@pytest.mark.parametrize("q", [0, -1, 2.0, True, "3"])
def test_all_bracketings_rejects_bad_q(q):
    with pytest.raises(ValueError, match="positive integer"):
        list(all_bracketings(q))


# --------------------------------------------------------------------------
# Multiplying actual matrices
# --------------------------------------------------------------------------


@pytest.mark.parametrize("q", range(1, 7))
def test_multiply_every_bracketing_matches_plain_product(q):
    rng = np.random.default_rng(1234 + q)
    widths = rng.integers(1, 6, size=q + 1).tolist()
    mats = [rng.standard_normal((widths[i], widths[i - 1])) for i in range(1, q + 1)]
    expected = mats[0]
    for m in mats[1:]:
        expected = m @ expected
    assert expected.shape == (widths[-1], widths[0])
    for tree in all_bracketings(q):
        np.testing.assert_allclose(multiply(mats, tree), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(multiply(mats, plan(widths).order()), expected, rtol=1e-10, atol=1e-12)


def test_multiply_accepts_json_round_trip_order():
    rng = np.random.default_rng(7)
    widths = [3, 1, 4, 2, 5]
    mats = [rng.standard_normal((widths[i], widths[i - 1])) for i in range(1, 5)]
    order = json.loads(json.dumps(plan(widths).to_dict()))["order"]
    np.testing.assert_allclose(multiply(mats, order), mats[3] @ mats[2] @ mats[1] @ mats[0])


def test_multiply_rejects_mismatched_shapes_and_bad_trees():
    J1, J2 = np.ones((3, 2)), np.ones((4, 5))
    with pytest.raises(ValueError, match="J2"):
        multiply([J1, J2], (2, 1))
    J2 = np.ones((4, 3))
    with pytest.raises(ValueError, match="stages"):
        multiply([J1, J2], 1)
    with pytest.raises(ValueError, match="left factor"):
        multiply([J1, J2], (1, 2))
    with pytest.raises(ValueError, match="2-D"):
        multiply([np.ones(3)], 1)
    with pytest.raises(ValueError):
        multiply([], 1)


def test_bracketing_cost_rejects_bad_trees():
    with pytest.raises(ValueError, match="stages 1..3"):
        bracketing_cost([2, 3, 4, 5], (2, 1))
    with pytest.raises(ValueError, match="left factor"):
        bracketing_cost([2, 3, 4, 5], ((1, 2), 3))
    with pytest.raises(ValueError, match="invalid bracketing tree"):
        bracketing_cost([2, 3, 4, 5], (3, 2, 1))


# --------------------------------------------------------------------------
# Showcase chains
# --------------------------------------------------------------------------


def test_docstring_example_10_1000_10_1000_1():
    # w = 10, 1000, 10, 1000, 1 (scalar output):
    # forward = 2*10*(1000*10 + 10*1000 + 1*1000) = 420,000
    # reverse = 2*1*(1000*10 + 10*1000 + 1000*10) = 60,000
    # Reverse is already optimal for this chain: no bracketing beats 60,000.
    p = plan([10, 1000, 10, 1000, 1])
    assert (p.forward_flops, p.reverse_flops, p.optimal_flops) == (420_000, 60_000, 60_000)
    assert p.bracketing == "((J4 J3) J2) J1"
    assert p.best_mode == "reverse"
    assert p.speedup == 1.0


def test_mixed_bracketing_beats_both_pure_modes():
    # w = 100, 1, 100, 100, 100 (width-1 bottleneck after stage 1):
    # forward = 2*100*(100*1 + 100*100 + 100*100) = 4,020,000
    # reverse = 2*100*(1*100 + 100*1 + 100*100)   = 2,040,000
    # (J4 (J3 J2)) J1: J3 J2 = 2*100*100*1 = 20,000 (-> 100x1),
    #   J4 (.) = 2*100*100*1 = 20,000 (-> 100x1), (.) J1 = 2*100*1*100 = 20,000
    #   total 60,000
    p = plan([100, 1, 100, 100, 100])
    assert (p.forward_flops, p.reverse_flops, p.optimal_flops) == (4_020_000, 2_040_000, 60_000)
    assert p.optimal_flops < p.forward_flops
    assert p.optimal_flops < p.reverse_flops
    assert p.bracketing == "(J4 (J3 J2)) J1"
    assert p.order() == ((4, (3, 2)), 1)
    assert p.best_mode == "optimal"
    assert p.speedup == pytest.approx(34.0)
    assert p.speedup > 1


def test_forward_optimal_case():
    # scalar input (w0 = 1): forward propagates a single column.
    p = plan([1, 100, 100, 100])
    assert p.forward_flops == p.optimal_flops < p.reverse_flops
    assert p.best_mode == "forward"
    assert p.bracketing == "J3 (J2 J1)"


def test_reverse_optimal_case():
    # scalar output (wq = 1): reverse propagates a single row.
    p = plan([100, 100, 100, 1])
    assert p.reverse_flops == p.optimal_flops < p.forward_flops
    assert p.best_mode == "reverse"
    assert p.bracketing == "(J3 J2) J1"
    assert p.order() == ((3, 2), 1)


def test_equal_widths_any_mode():
    p = plan([6, 6, 6, 6])
    assert p.best_mode == "any"
    assert p.forward_flops == p.reverse_flops == p.optimal_flops


# --------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------


def test_table_and_to_dict():
    p = plan([100, 1, 100, 100, 100])
    text = p.table()
    for fragment in ("4,020,000", "2,040,000", "60,000", "(J4 (J3 J2)) J1", "34.00x", "optimal"):
        assert fragment in text
    d = p.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["order"] == [[4, [3, 2]], 1]
    assert d["forward_bracketing"] == "J4 (J3 (J2 J1))"
    assert d["reverse_bracketing"] == "((J4 J3) J2) J1"
    assert d["cost_table"][0][3] == 60_000
    assert d["cost_table"][3][0] == -1
    assert d["widths"] == [100, 1, 100, 100, 100]
    assert isinstance(p, ChainPlan)


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "widths, pattern",
    [
        ([], r"at least 2 entries.*got 0"),
        ([5], r"at least 2 entries.*got 1"),
        ([3, 0, 2], r"positive integers; got 0 at position 1 \(w1\)"),
        ([3, -1], r"positive integers; got -1 at position 1 \(w1\)"),
        ([2.5, 3], r"positive integers; got 2\.5 \(float\) at position 0 \(w0\)"),
        ([True, 3], r"positive integers; got True \(bool\) at position 0 \(w0\)"),
        ([3, 2.0], r"got 2\.0 \(float\) at position 1"),
        ("34", r"string"),
        (None, r"sequence of positive integers"),
    ],
)
def test_bad_widths_raise(widths, pattern):
    with pytest.raises(ValueError, match=pattern):
        plan(widths)
    with pytest.raises(ValueError, match=pattern):
        bracketing_cost(widths, 1)


def test_numpy_integer_widths_accepted():
    p = plan(np.array([2, 3, 4, 5]))
    assert p.widths == (2, 3, 4, 5)
    assert all(type(w) is int for w in p.widths)
    assert type(p.optimal_flops) is int


# --------------------------------------------------------------------------
# Doctests
# --------------------------------------------------------------------------


def test_module_doctests():
    result = doctest.testmod(jacobian_lab.bracketing, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
