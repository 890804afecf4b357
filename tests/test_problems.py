"""Tests for the built-in problem suite."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jacobian_lab as jl
from jacobian_lab import problems
from jacobian_lab.problems import Problem, describe, get, names

from helpers import assert_fd_close, central_differences

SMALL = {
    "seed": dict(n=6),
    "mlp_loss": dict(n=44),
    "curve": dict(m=5),
    "dense": dict(n=6),
    "bratu": dict(n=6),
    "wide_to_tall": dict(n=6, m=5),
    "tall_to_wide": dict(n=6, m=5),
}


def test_names_in_teaching_order():
    assert names() == ["seed", "mlp_loss", "curve", "dense", "bratu",
                       "wide_to_tall", "tall_to_wide"]
    assert list(problems.PROBLEMS) == names()


def test_describe_lists_every_problem_once():
    rows = describe()
    assert [name for name, _ in rows] == names()
    for _, summary in rows:
        assert summary and "\n" not in summary


DEFAULT_SHAPES = {
    "seed": (1000, ()),
    "mlp_loss": (2200, ()),
    "curve": (4, (2000,)),
    "dense": (300, (300,)),
    "bratu": (2000, (1998,)),
    "wide_to_tall": (1000, (1000,)),
    "tall_to_wide": (10, (10,)),
}


@pytest.mark.parametrize("name", names())
def test_defaults(name):
    p = get(name)
    n, out_shape = DEFAULT_SHAPES[name]
    assert isinstance(p, Problem) and p.name == name
    assert p.x.dtype == np.float64 and p.x.shape == (n,)
    y = p.f(p.x)
    assert np.shape(y) == out_shape and np.all(np.isfinite(y))
    assert p.n == n and p.m == int(np.prod(out_shape))
    assert p.winner in {"forward", "reverse", "either"}
    assert p.why.strip() and p.summary.strip()
    assert p.jacobian_exact(p.x).shape == np.shape(y) + p.x.shape


@pytest.mark.parametrize("name", names())
def test_small_sizes_match_finite_differences(name):
    p = get(name, **SMALL[name])
    y = p.f(p.x)
    J = p.jacobian_exact(p.x)
    assert J.shape == np.shape(y) + p.x.shape
    assert p.m == np.size(y)
    assert_fd_close(J, central_differences(p.f, p.x))

    x2 = p.x + 0.1 * np.random.default_rng(1).standard_normal(p.x.shape)
    assert_fd_close(p.jacobian_exact(x2), central_differences(p.f, x2))


def test_small_sizes_are_honoured():
    assert (get("seed", n=6).n, get("seed", n=6).m) == (6, 1)
    assert (get("curve", m=5).n, get("curve", m=5).m) == (4, 5)
    assert (get("bratu", n=6).n, get("bratu", n=6).m) == (6, 4)
    assert (get("wide_to_tall", n=6, m=5).n, get("wide_to_tall", n=6, m=5).m) == (6, 5)
    assert get("curve", n=4).n == 4


def test_mlp_parameter_count_rounds_down_to_multiple_of_22():
    assert get("mlp_loss", n=44).n == 44
    assert get("mlp_loss", n=65).n == 44
    assert get("mlp_loss", n=22).n == 22


def test_bratu_jacobian_is_tridiagonal_in_shape():
    p = get("bratu", n=7)
    J = p.jacobian_exact(p.x)
    rows, cols = np.nonzero(J)
    assert np.all((cols - rows >= 0) & (cols - rows <= 2))


@pytest.mark.parametrize("name", names())
def test_deterministic_for_fixed_seed(name):
    a, b = get(name, **SMALL[name], seed=3), get(name, **SMALL[name], seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.f(a.x), b.f(b.x))
    np.testing.assert_array_equal(a.jacobian_exact(a.x), b.jacobian_exact(b.x))
    assert (a.summary, a.winner, a.why) == (b.summary, b.winner, b.why)


@pytest.mark.parametrize("name", names())
def test_other_seed_differs(name):
    a, b = get(name, **SMALL[name], seed=0), get(name, **SMALL[name], seed=1)
    assert not np.array_equal(a.x, b.x)


@pytest.mark.parametrize("name", ["mlp_loss", "dense", "wide_to_tall", "tall_to_wide"])
def test_other_seed_changes_fixed_data(name):
    a, b = get(name, **SMALL[name], seed=0), get(name, **SMALL[name], seed=1)
    assert not np.array_equal(a.f(a.x), b.f(a.x))


@pytest.mark.parametrize(
    "name, kwargs, param",
    [
        ("seed", dict(n=0), "n"),
        ("seed", dict(n=-3), "n"),
        ("seed", dict(n=2.5), "n"),
        ("seed", dict(n=True), "n"),
        ("seed", dict(m=3), "m"),
        ("mlp_loss", dict(n=21), "n"),
        ("mlp_loss", dict(m=1), "m"),
        ("curve", dict(n=3), "n"),
        ("curve", dict(m=0), "m"),
        ("dense", dict(m=6), "m"),
        ("dense", dict(n=-3), "n"),
        ("bratu", dict(n=2), "n"),
        ("wide_to_tall", dict(m=2.5), "m"),
        ("tall_to_wide", dict(n=0), "n"),
    ],
)
def test_bad_sizes_raise_value_error(name, kwargs, param):
    with pytest.raises(ValueError, match=rf"\b{param}\b") as info:
        get(name, **kwargs)
    assert name in str(info.value)


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown problem 'foo'; choose one of: seed, mlp_loss"):
        get("foo")


def test_numpy_integer_sizes_accepted():
    assert get("dense", n=np.int64(5)).n == 5


def _consistent(p):
    if p.winner == "reverse":
        return p.m < p.n
    if p.winner == "forward":
        return p.n < p.m
    return True


@pytest.mark.parametrize("name", names())
def test_winner_consistent_with_shapes(name):
    for kwargs in ({}, SMALL[name]):
        assert _consistent(get(name, **kwargs))


def test_a_small_bratu_is_not_called_square():
    small, large = get("bratu", n=6), get("bratu", n=20)
    assert small.winner == "reverse" and small.why.startswith("Reverse mode needs 4 cotangent seeds")
    assert large.winner == "either" and large.why.startswith("The 18x20 Jacobian is almost square: reverse mode "
                                                             "needs 18 cotangent seeds, forward mode 20 tangent seeds")


def test_default_winners():
    winners = {name: get(name).winner for name in names()}
    assert winners == {
        "seed": "reverse", "mlp_loss": "reverse", "curve": "forward", "dense": "either",
        "bratu": "either", "wide_to_tall": "either", "tall_to_wide": "either",
    }


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["wide_to_tall", "tall_to_wide"]),
       n=st.integers(1, 12), m=st.integers(1, 12))
def test_chain_winner_follows_smaller_side(name, n, m):
    p = get(name, n=n, m=m)
    assert _consistent(p)
    assert (p.winner == "either") == (n == m)
    assert p.jacobian_exact(p.x).shape == (m, n)


@pytest.mark.parametrize("n, m", [(1, 1), (30, 8), (10, 40), (11, 11), (11, 1000), (30, 100), (40, 40), (200, 50),
                                  (100, 30), (21, 21), (1000, 1000)])
def test_wide_to_tall_offers_the_bottleneck_only_where_it_saves_flops(n, m):
    """The route through the 10-wide layer, offered where its counted work (each local Jacobian in its cheaper
    order, then their product) is less than the whole Jacobian's in the cheaper order (it was offered at
    n = m = 11, where it costs 1.07 times more)."""
    problem = get("wide_to_tall", n=n, m=m)
    A, B = (problem.f.__closure__[problem.f.__code__.co_freevars.index(name)].cell_contents for name in "AB")

    def cheaper(f, x):
        prediction = jl.predict(f, x)
        return min(prediction.total(mode).total() for mode in ("forward", "reverse"))

    z = np.tanh(A @ problem.x)
    route = cheaper(lambda x: np.tanh(A @ x), problem.x) + cheaper(lambda z: np.tanh(B @ z), z) + 2 * m * 10 * n
    assert ("multiply through the bottleneck" in problem.why) == (route < cheaper(problem.f, problem.x))
    assert "multiply through" in problem.why or f"takes {min(n, m)} seed" in problem.why


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 40), m=st.integers(1, 40))
def test_seed_and_curve_winners_any_size(n, m):
    assert _consistent(get("seed", n=n))
    assert _consistent(get("curve", m=m))
