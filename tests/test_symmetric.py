"""Star colorings and the sparse Hessians that read entries from their mirror images.

References: the definition of a star coloring checked path by path, products
of random symmetric integer matrices (exact), and dense Hessians (each entry
read at (i, j) or at (j, i) must be the dense one there, bit for bit).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from test_numpy_composites import CASES
from test_sparse import _same

import jacobian_lab as jl
from jacobian_lab.accounting import counting
from jacobian_lab.symmetric import star_coloring, symmetric_reads

RNG = np.random.default_rng(5)


def symmetric_pattern(n, density, seed):
    rng = np.random.default_rng(seed)
    P = rng.random((n, n)) < density / 2
    return P | P.T | np.diag(rng.random(n) < 0.5)


def assert_star_coloring(P, colors):
    """Adjacent columns differ, and no path through four columns alternates two colors."""
    A = (P | P.T) & ~np.eye(len(P), dtype=bool)
    assert colors.shape == (len(P),) and colors.dtype == np.int64
    assert ((colors >= 0) == (A.any(axis=1) | np.diag(P))).all()  # a color exactly where there are entries
    neighbours = [np.flatnonzero(row) for row in A]
    for a in range(len(P)):
        for b in neighbours[a]:
            assert colors[a] != colors[b]
            for c in neighbours[b]:
                for d in neighbours[c]:
                    if c != a and d not in (a, b):
                        assert not (colors[a] == colors[c] and colors[b] == colors[d]), (a, b, c, d)


def read_places(P, colors):
    """For each entry of P in csr order: whether it is read at (i, j) itself (else at (j, i))."""
    S = scipy.sparse.csr_array(P)
    rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
    return rows, S.indices, symmetric_reads(S, colors)[1] == rows


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.integers(0, 14), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_star_coloring_is_one_by_definition(n, density, seed):
    P = symmetric_pattern(n, density, seed)
    assert_star_coloring(P, star_coloring(P))
    assert_star_coloring(P, jl.coloring(scipy.sparse.csr_array(P), "star"))


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.integers(1, 14), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_products_with_star_seeds_hold_every_entry_alone(n, density, seed):
    """H @ seeds, with H symmetric integers on the pattern: each read is one entry, exactly."""
    P = symmetric_pattern(n, density, seed)
    rng = np.random.default_rng(seed)
    H = np.where(P, rng.integers(1, 100, (n, n)), 0)
    H = np.triu(H) + np.triu(H, 1).T
    colors = star_coloring(P)
    seeds = (colors[:, None] == np.arange(colors.max(initial=-1) + 1)).astype(int)
    color, place = symmetric_reads(scipy.sparse.csr_array(P), colors)
    rows, cols, _ = read_places(P, colors)
    np.testing.assert_array_equal((H @ seeds)[place, color], H[rows, cols])


def test_an_arrow_takes_two_colors_where_column_colorings_take_n():
    arrow = np.eye(50, dtype=bool)
    arrow[0] = arrow[:, 0] = True
    np.testing.assert_array_equal(star_coloring(arrow), np.r_[0, np.ones(49, dtype=np.int64)])
    assert jl.coloring(arrow).max() + 1 == 50
    assert jl.compressed.plan(arrow, "bidirectional").seeds == 3
    assert jl.compressed.plan(arrow, "star").seeds == 2


@pytest.mark.parametrize("colors, why", [([0, 1, 0, 1], "read mixed with another"),  # the path alternates 0, 1
                                         ([0, 0, 1, 2], "neighbouring columns share one"),
                                         ([0, 1, -1, 2], "has no color")])
def test_a_coloring_that_is_not_a_star_coloring_is_refused(colors, why):
    path = np.eye(4, dtype=bool) | np.eye(4, k=1, dtype=bool) | np.eye(4, k=-1, dtype=bool)
    with pytest.raises(ValueError, match=f"not a star coloring of this pattern.*{why}"):
        symmetric_reads(scipy.sparse.csr_array(path), np.array(colors))


@pytest.mark.parametrize("hubs", [1, 2, 3, 5])
def test_variables_coupled_to_all_others_take_one_color_each_and_the_rest_one(hubs):
    """k hubs coupled to every other variable but not to each other: k + 1 colors (the fewest-first order
    finds them; the most-first order colors the hubs alike and then needs a color per other column)."""
    P = np.eye(60, dtype=bool)
    P[:hubs, hubs:] = P[hubs:, :hubs] = True
    colors = star_coloring(P)
    assert_star_coloring(P, colors)
    assert colors.max() + 1 == hubs + 1


def test_reads_of_many_colors_need_no_table_of_every_column_and_color():
    """Two hubs over 20,000 columns colored one color per leaf: the reads count neighbours per (column, color)
    pair that occurs, not in an n x colors table (20,000 x 20,000 int64 would be 3.2 GB)."""
    n = 20_000
    P = scipy.sparse.lil_array((n, n), dtype=bool)
    P.setdiag(True)
    P[0, 2:] = P[1, 2:] = P[2:, 0] = P[2:, 1] = True
    colors = np.r_[0, 0, np.arange(1, n - 1)]  # a star coloring, though not a small one
    color, place = symmetric_reads(P.tocsr(), colors)
    assert color.size == P.nnz and (place >= 0).all()


def arrow_energy(x):
    """x[0] couples to every coordinate; the rest only to themselves: an arrow-shaped Hessian."""
    return x[0] * np.sum(x[1:] ** 2) + np.sum(np.sin(x))


def assert_read_from_the_dense_hessian(S, H, colors):
    """Each stored entry is the dense Hessian's at (i, j) or, where it is read, at (j, i): bit for bit."""
    rows, cols, direct = read_places(S, colors)
    np.testing.assert_array_equal(S.data, np.where(direct, H[rows, cols], H[cols, rows]))
    np.testing.assert_allclose(S.toarray(), H, rtol=1e-13, atol=1e-13 * np.abs(H).max())


def test_sparse_hessian_of_an_arrow_takes_two_seeds():
    x = np.linspace(0.1, 1.0, 40)
    hess = jl.sparse_hessian(arrow_energy)
    S = hess(x)
    assert (hess.chosen, hess.seeds) == ("star", 2)
    assert_read_from_the_dense_hessian(S, jl.hessian(arrow_energy, x), hess.colors)
    counts = {}
    for mode in ("star", "bidirectional"):
        with counting() as counts[mode]:
            jl.sparse_hessian(arrow_energy, x, mode=mode)
    with counting() as gradient:  # one gradient sweep, differentiated (a plain one adds its reads in place)
        jl.hvp(arrow_energy, x, np.ones_like(x))
    star = counts["star"]
    # the gradient's own sweep, then one forward pass of two seeds over its tape, as bidirectional's
    # two column colors; bidirectional also pulls the dense row
    assert (star.passes, star.batch_size) == (2, 2)
    assert star.cost("primal") == gradient.cost("primal") and star.cost("cotangent") == gradient.cost("cotangent")
    assert star.cost("tangent") == counts["bidirectional"].cost("tangent")
    assert counts["bidirectional"].cost("cotangent").flops > star.cost("cotangent").flops


def test_two_global_parameters_take_three_seeds():
    def f(x):  # x[0] and x[1] each couple to every other coordinate, not to each other
        return x[0] * np.sum(x[2:] ** 2) + x[1] * np.sum(np.sin(x[2:]))

    x = np.linspace(0.1, 1.0, 40)
    hess = jl.sparse_hessian(f)
    S = hess(x)
    assert (hess.chosen, hess.seeds) == ("star", 3)
    assert jl.compressed.plan(S, "bidirectional").seeds == 5
    assert_read_from_the_dense_hessian(S, jl.hessian(f, x), hess.colors)


def test_auto_takes_the_star_coloring_only_for_fewer_seeds():
    """A tridiagonal Hessian takes three colors either way: the tie goes to the column coloring,
    whose entries are all read where the dense Hessian computes them."""
    def chain(x):
        return np.sum(x[1:] * x[:-1] ** 2)

    x = RNG.standard_normal(30)
    hess = jl.sparse_hessian(chain)
    np.testing.assert_array_equal(hess(x).toarray(), jl.hessian(chain, x))
    assert (hess.chosen, hess.seeds) == ("forward", 3)
    star = jl.sparse_hessian(chain, mode="star")
    assert_read_from_the_dense_hessian(star(x), jl.hessian(chain, x), star.colors)
    assert star.seeds == 3


@pytest.mark.parametrize("name", CASES)
def test_star_hessians_of_the_composites_squared_norm(name):
    """sum(f(x)**2) for every composite NumPy function of the suite: each entry is the dense
    Hessian's at the place it is read from."""
    f, x = CASES[name]

    def g(v):
        return np.sum(f(v) ** 2)

    H = jl.hessian(g, x).reshape(x.size, x.size)
    hess = jl.sparse_hessian(g, mode="star")
    S = hess(x)
    rows, cols, direct = read_places(S, hess.colors)
    expected = np.where(direct, H[rows, cols], H[cols, rows])
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(S.data[finite], expected[finite])


def test_compiled_star_hessians_replay_the_eager_entries():
    hess = jl.jit(jl.sparse_hessian(arrow_energy, mode="star"))
    for x in (np.linspace(0.1, 1.0, 12), np.linspace(-2.0, 0.5, 12)):
        assert _same(hess(x), jl.sparse_hessian(arrow_energy, x, mode="star"))
    params = {"a": np.array(0.3), "w": np.linspace(-1.0, 1.0, 5)}

    def tree_energy(p):
        return p["a"] * np.sum(p["w"] ** 2) + np.sum(np.cos(p["w"]))

    tree = jl.jit(jl.sparse_hessian(tree_energy, mode="star"))
    assert _same(tree(params), jl.sparse_hessian(tree_energy, params, mode="star"))


def test_star_is_a_mode_of_sparse_hessians_only():
    with pytest.raises(ValueError, match="mode must be one of 'forward', 'reverse', 'bidirectional', 'auto'"):
        jl.sparse_jacobian(np.sin, np.ones(3), mode="star")
