"""Sparsity patterns, colorings and compressed (sparse) Jacobians.

References: which outputs move when one input is perturbed (plain NumPy, no
package code), dense Jacobians of the same mode (the compressed passes must
reproduce their entries bit for bit), and colorings checked by definition.
"""
from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
import scipy.sparse
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_rules import CASES, EXAMPLES

import jacobian_lab as jl
from jacobian_lab import problems
from jacobian_lab.accounting import counting
from jacobian_lab.primitives import REGISTRY

RNG = np.random.default_rng(7)


def moved(f, x, step=1e-3):
    """(m, n) booleans: output i changes when input j moves by ±step (plain NumPy only)."""
    x = np.asarray(x, dtype=float)
    out = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = step
        plus, minus = (np.ravel(f((x.ravel() + s * e).reshape(x.shape))) for s in (1, -1))
        out.append(plus != minus)
    return np.array(out).T.reshape(-1, x.size)


def pattern(f, x):
    return jl.sparsity(f, x).toarray()


# --- patterns -------------------------------------------------------------------------
A = RNG.standard_normal((3, 4))
EXACT = {  # the pattern is exactly the set of entries that move
    "stencil": (lambda x: x[:-2] - 2 * x[1:-1] + np.exp(x[2:]), 8),
    "reversed and reshaped": (lambda x: np.sin(x[::-1].reshape(2, 3).T), 6),
    "broadcast outer": (lambda x: x[:3, None] * x[None, 3:], 7),
    "concatenate with a constant": (lambda x: np.concatenate([x[2:], np.ones(2), x[:1] ** 2]), 5),
    "row sums": (lambda x: np.sum(x.reshape(3, 4), axis=1) * np.mean(x.reshape(3, 4), axis=0)[:3], 12),
    "take": (lambda x: np.take(x, [3, 0, 0, 2]) ** 3, 4),
    "bincount with weights (a scatter-add)": (lambda x: np.bincount([0, 2, 2, 1, 0, 3], weights=x ** 2, minlength=5), 6),
    "cumulative sum and product": (lambda x: np.cumsum(x.reshape(3, 4), axis=1)[:, ::2].ravel() + np.cumprod(x[:6].reshape(2, 3), axis=0).ravel()[:6], 12),
    "constant @ x": (lambda x: A @ x, 4),
    "x @ constant": (lambda x: x.reshape(2, 3) @ A[:, :2], 6),
    "x @ x": (lambda x: x.reshape(2, 3) @ x.reshape(3, 2), 6),
    "batched": (lambda x: x.reshape(2, 2, 3) @ A, 12),
    "vector dot": (lambda x: x[:3] @ x[3:], 6),
    "diagonal embedding": (lambda x: np.diag(x) @ np.ones(3), 3),
    "padding": (lambda x: np.pad(x, 2, mode="edge"), 3),
}


@pytest.mark.parametrize("name", EXACT)
def test_pattern_is_the_entries_that_move(name):
    f, n = EXACT[name]
    x = RNG.uniform(0.5, 1.5, n)
    np.testing.assert_array_equal(pattern(f, x), moved(f, x))


def test_a_choice_keeps_every_candidate():
    """max and where move with one operand at x, but the pattern is that of the operations."""
    x = np.array([1.0, 5.0, 2.0, 4.0, 3.0, 6.0])
    P = pattern(lambda x: np.max(x.reshape(2, 3), axis=0) + np.where(x[:3] > 2, x[3:], x[:3]), x)
    np.testing.assert_array_equal(P, [[1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1]])
    assert np.all(P[moved(lambda x: np.max(x.reshape(2, 3), axis=0) + np.where(x[:3] > 2, x[3:], x[:3]), x)])


def test_pattern_holds_every_entry_of_the_dense_jacobian_and_is_scipy_sparse():
    f = lambda x: np.linalg.solve(np.eye(3) * 2.0, x[:3] * x[4:])  # noqa: E731 -- solve has no structure: dense rows
    x = RNG.uniform(0.5, 1.5, 7)
    P = jl.sparsity(f, x)
    assert isinstance(P, scipy.sparse.csr_array) and P.dtype == bool and P.shape == (3, 7)
    J = jl.jacobian(f, x)
    assert np.all(P.toarray()[J != 0])  # every nonzero is in the pattern ...
    assert P.toarray()[0].tolist() == [True, True, True, False, True, True, True]  # ... and a row holds all x reaches


@pytest.mark.parametrize("axis", [0, 1])
def test_a_sorts_pattern_is_its_order_at_x_and_a_compiled_one_serves_every_order(axis):
    f = lambda v: np.sort(v, axis=axis) ** 2  # noqa: E731
    xs = np.random.default_rng(2).normal(size=(6, 4, 5))
    S = jl.sparse_jacobian(f, xs[0])
    assert S.nnz == 20 and jl.sparse_jacobian(f, xs[1]).nnz == 20  # one entry per output, wherever it moved
    np.testing.assert_array_equal(S.toarray(), jl.jacobian(f, xs[0]).reshape(20, 20))
    compiled, kept = jl.jit(jl.sparse_jacobian(f)), jl.sparse_jacobian(f)
    for x in xs:  # the program sorts at each x: its pattern is each slice along the axis
        np.testing.assert_allclose(compiled(x).toarray(), jl.jacobian(f, x).reshape(20, 20), rtol=1e-15)
        # the function keeps a pattern per tape signature, which holds the order: read again for each order
        np.testing.assert_array_equal(kept(x).toarray(), jl.jacobian(f, x).reshape(20, 20))
    assert compiled.compiles == 1


def test_a_sparse_hessian_function_reads_a_sorts_pattern_again_for_each_order():
    g = lambda v: np.sum(np.sort(v)[1:] * np.sort(v)[:-1])  # noqa: E731
    kept = jl.sparse_hessian(g)
    for x in np.random.default_rng(3).normal(size=(4, 12)):
        np.testing.assert_array_equal(kept(x).toarray(), jl.hessian(g)(x))


def test_a_pattern_reads_only_what_the_output_is_computed_from(monkeypatch):
    """A gradient's tape holds f's values that its sweep never reads again: a sort's, whose pattern while a
    program is recorded is each element on its whole slice. It was read all the same: n^2 entries, 12.6 s
    for the first call of jit(sparse_hessian) at n = 10^4, where the Hessian is diagonal."""
    sparsity = importlib.import_module("jacobian_lab.sparsity")  # jl.sparsity is the function
    largest = []
    fits = sparsity._fits
    monkeypatch.setattr(sparsity, "_fits", lambda entries: largest.append(entries) or fits(entries))
    n = 200
    c = np.random.default_rng(4).normal(size=n)
    f = lambda v: np.sum(np.sort((v - c) ** 2 * (1.0 + 0.1 * v ** 2))[: n // 2])  # noqa: E731
    compiled = jl.jit(jl.sparse_hessian(f))
    for x in np.random.default_rng(5).normal(size=(3, n)):  # the program sorts at each x
        np.testing.assert_allclose(compiled(x).toarray(), jl.hessian(f)(x), rtol=1e-13)
    assert compiled.compiles == 1 and compiled.program(x).seeds == [1]  # a diagonal Hessian: one seed
    assert max(largest) <= 4 * n  # no n x n matrix of the sort's slice


def test_pattern_of_a_constant_output_is_empty():
    P = jl.sparsity(lambda x: np.ones((2, 3)), np.ones(4))
    assert P.shape == (6, 4) and P.nnz == 0


def test_pattern_follows_structured_inputs_and_outputs():
    P = jl.sparsity(lambda p: {"s": p["a"] * p["b"][0]}, {"a": np.ones(2), "b": np.ones(3)})
    np.testing.assert_array_equal(P.toarray(), [[1, 0, 1, 0, 0], [0, 1, 1, 0, 0]])


@pytest.mark.parametrize("name, i", [c for c in CASES if REGISTRY[c.values[0]].structure is not None])
def test_every_declared_structure_holds_the_entries_that_move(name, i):
    prim, e = REGISTRY[name], EXAMPLES[name][i]
    for j, differentiable in enumerate(e.diff):
        if not differentiable or e.args[j].size == 0:
            continue
        shape = e.args[j].shape

        def with_operand(fn, v, j=j, shape=shape):
            """fn (the primitive, or its NumPy implementation) with operand j replaced by v."""
            args = list(e.args)
            args[j] = v.reshape(shape)
            return fn(*args, **e.params)

        x = e.args[j].ravel()
        P = pattern(lambda v: with_operand(prim, v), x)
        assert np.all(P[moved(lambda v: with_operand(prim.impl, v), x)])


W = np.random.default_rng(5).standard_normal((5, 6))
DENSE = {  # f: whether the tape's structure shows its pattern dense
    "matmul": (lambda x: np.tanh(W @ x + 1.0), True), "row vector": (lambda x: x @ W.T, True),
    "gradient": (lambda x: np.sum(np.sin(x) ** 2), True), "max": (lambda x: np.max(x) + x, True),
    "sort": (lambda x: np.sort(x) * np.sum(x), True), "norm": (lambda x: np.linalg.norm(x) * np.ones(3), True),
    "cumsum of one": (lambda x: np.cumsum(np.sum(x) * x), True), "dot": (lambda x: np.dot(x, x) * x, True),
    "where": (lambda x: np.where(x > 0.5, np.mean(x), 0.0), True), "one x": (lambda x: 2 * x[:1], False),
    # each output on some inputs alone, or on all through steps whose structure does not say so
    "elementwise": (np.tanh, False), "cumsum": (np.cumsum, False), "outer": (lambda x: np.outer(x, x), False),
    "rows": (lambda x: np.sum(x.reshape(2, 3), axis=1), False), "batched": (lambda x: x.reshape(2, 3, 1) * 2, False),
    "padded": (lambda x: np.pad(np.sum(x) * np.ones(2), 1), False), "empty sum": (lambda x: np.sum(x[:0]) + x, False),
    "constant": (lambda x: np.ones(3) + 0 * np.sum(x[:2]), False), "solve": (lambda x: np.linalg.solve(
        np.eye(6) + np.outer(x, x), np.ones(6)), False), "matrix times constant vector": (
        lambda x: x.reshape(2, 3) @ np.ones(3), False),
}


@pytest.mark.parametrize("name", DENSE)
def test_a_pattern_the_tape_shows_dense_is_every_entry(name):
    """`dense` is read from the tape alone, for the sparse row of compare and the sparsity command, which refuse
    a dense pattern by its size before building it: where it says dense, every entry is there."""
    f, shown = DENSE[name]
    module = importlib.import_module("jacobian_lab.sparsity")  # jl.sparsity is the function
    pullback, m = module.recorded(f, np.linspace(0.1, 1.0, 6))
    P = module.recorded_pattern(pullback, m)
    assert module.dense(pullback) == shown
    if shown:
        assert P.toarray().all()


# --- coloring ---------------------------------------------------------------------------
def assert_valid_coloring(P, colors, mode):
    P = np.asarray(P, dtype=bool) if mode == "forward" else np.asarray(P, dtype=bool).T
    assert colors.shape == (P.shape[1],) and colors.dtype == np.int64
    for c in np.unique(colors):  # columns of one color never share a row
        assert P[:, colors == c].sum(axis=1).max(initial=0) <= 1


def test_coloring_of_a_band_takes_its_width():
    for width in (1, 2, 3, 5):
        P = sum(np.eye(40, k=k, dtype=int) for k in range(width)) > 0
        colors = jl.coloring(P)
        assert_valid_coloring(P, colors, "forward")
        assert colors.max() + 1 == width


def _laplacian(u, k=12):
    """The five-point stencil on the interior of a k x k grid."""
    U = u.reshape(k, k)
    return (U[:-2, 1:-1] + U[2:, 1:-1] + U[1:-1, :-2] + U[1:-1, 2:] - 4 * U[1:-1, 1:-1]).ravel()


def _padded_laplacian(u, k=30):
    """One residual per grid point, with zeros around it (np.pad): the boundary rows hold fewer columns."""
    U = u.reshape(k, k)
    P = np.pad(U, 1)
    return (P[:-2, 1:-1] + P[2:, 1:-1] + P[1:-1, :-2] + P[1:-1, 2:] - 4 * U).ravel() + np.exp(U).ravel()


def _seven_point(u, k=10):
    U = u.reshape(k, k, k)
    P = np.pad(U, 1)
    neighbours = (P[:-2, 1:-1, 1:-1] + P[2:, 1:-1, 1:-1] + P[1:-1, :-2, 1:-1] + P[1:-1, 2:, 1:-1]
                  + P[1:-1, 1:-1, :-2] + P[1:-1, 1:-1, 2:])
    return (neighbours - 6 * U).ravel() + U.ravel() ** 3


@pytest.mark.parametrize("f, n, fewest", [(_laplacian, 144, 5), (_padded_laplacian, 900, 5), (_seven_point, 1000, 10)],
                         ids=["interior", "padded", "3-D"])
def test_coloring_of_a_stencil_takes_about_its_width(f, n, fewest):
    """Largest first takes 7 colors for both five-point stencils and 12 for the seven-point one; the interior one
    takes incidence order's 5, the padded one saturation order's 5 (the fewest: a row holds five columns), the
    seven-point one saturation order's 10 ((i + 2j + 3l) mod 7 would take 7)."""
    P = jl.sparsity(f, np.ones(n))
    colors = jl.coloring(P)
    assert_valid_coloring(P.toarray(), colors, "forward")
    assert colors.max() + 1 == fewest


def _lists_and_neighbours(P):
    """The coloring's lists of a boolean P (column pointers and rows, row pointers and columns), and which
    columns share a row."""
    pattern = scipy.sparse.csr_array(P)
    by_column = pattern.tocsc()
    lists = (by_column.indptr.tolist(), by_column.indices.tolist(), pattern.indptr.tolist(), pattern.indices.tolist())
    shares = (P.T.astype(int) @ P.astype(int)) > 0
    np.fill_diagonal(shares, False)
    return lists, shares


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.integers(0, 14), st.integers(0, 14), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_saturation_coloring_is_its_definition(m, n, density, seed):
    P = np.random.default_rng(seed).random((m, n)) < density
    lists, shares = _lists_and_neighbours(P)
    # the definition, in quadratic time: next, the column whose neighbours hold the most distinct colors, then the
    # one with the most entries, then the lowest; it takes the smallest color none of its neighbours holds
    colors = np.full(n, -1)
    for _ in range(n):
        left = np.flatnonzero(colors < 0)
        held = [set(colors[shares[k] & (colors >= 0)]) for k in left]
        j = left[max(range(len(left)), key=lambda i: (len(held[i]), P[:, left[i]].sum(), -left[i]))]
        taken = set(colors[shares[j] & (colors >= 0)])
        colors[j] = next(c for c in range(n) if c not in taken)
    np.testing.assert_array_equal(jl.compressed._saturation_coloring(lists, n), colors)


def test_coloring_of_a_full_row_is_one_color_per_column():
    np.testing.assert_array_equal(jl.coloring(np.ones((2, 5), bool)), np.arange(5))
    np.testing.assert_array_equal(jl.coloring(np.ones((2, 5), bool), "reverse"), [0, 1])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 12), st.integers(0, 12), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_greedy_coloring_is_valid_and_needs_at_least_the_densest_row(m, n, density, seed):
    P = np.random.default_rng(seed).random((m, n)) < density
    for mode in ("forward", "reverse"):
        colors = jl.coloring(scipy.sparse.csr_array(P), mode)
        assert_valid_coloring(P, colors, mode)
        rows = P if mode == "forward" else P.T
        assert (colors.max() + 1 if colors.size else 0) >= rows.sum(axis=1).max(initial=0)


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.integers(0, 12), st.integers(0, 12), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_best_plan_skips_only_modes_that_cannot_win(m, n, density, seed):
    rng = np.random.default_rng(seed)
    P = rng.random((m, n)) < density
    P[rng.random(m) < 0.2] = n > 0  # some dense rows, for the bidirectional plan
    every = jl.compressed.plans(P)
    for mode, seeding in every.items():
        assert jl.compressed.least_seeds(P, mode) <= seeding.seeds, mode
    mode, seeding = jl.compressed.best_plan(P)
    assert mode == jl.compressed.fewest_seeds(every) and seeding.seeds == every[mode].seeds


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_compressed_forward_seeds_are_the_dense_passes_seeds(dtype):
    """Both push seeds in the Jacobian's dtype (float64 for a float16 x), so the entries are the dense ones bit for
    bit; when the two took different dtypes they differed in their last bits (0.09607 against 0.09606)."""
    def f(x):
        return np.sin(x) * x[::-1] + np.exp(x)

    x = np.linspace(0.1, 1.3, 6).astype(dtype)
    dense = jl.jacobian(f, x, mode="forward")
    np.testing.assert_array_equal(jl.sparse_jacobian(f, x, mode="forward").toarray(), dense)


def test_a_bidirectional_plan_pulls_rows_only_where_that_saves_seeds():
    """Its pulled rows are chosen from a lower bound, and on some of these patterns the colorings it led
    to needed more seeds than forward's alone."""
    pulling_costs = np.array([[0, 0, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1], [1, 0, 0, 1, 0, 1], [0, 1, 1, 0, 1, 1],
                              [1, 0, 1, 1, 1, 0], [1, 1, 0, 1, 0, 1]], dtype=bool)  # row 1 pulled: 7 seeds
    rng = np.random.default_rng(0)
    for P in [pulling_costs] + [rng.random((rng.integers(2, 7), rng.integers(2, 7))) < 0.5 for _ in range(400)]:
        every = jl.compressed.plans(P)
        assert every["bidirectional"].seeds <= every["forward"].seeds, P.astype(int)
    assert jl.compressed.plan(pulling_costs, "bidirectional").seeds == 6  # forward's


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.integers(0, 14), st.integers(0, 14), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_incidence_degree_order_is_its_definition(m, n, density, seed):
    P = np.random.default_rng(seed).random((m, n)) < density
    lists, shares = _lists_and_neighbours(P)
    # the definition, in quadratic time: next, the column sharing rows with the most ordered columns, lowest first
    order, left = [], list(range(n))
    while left:
        j = max(left, key=lambda k: (shares[k, order].sum(), -k))
        order.append(j)
        left.remove(j)
    assert jl.compressed._incidence_order(lists, n) == order


@pytest.mark.parametrize("mode", ["forward", "reverse", "star"])
def test_coloring_leaves_a_matrix_with_stored_zeros_as_it_was(mode):
    S = scipy.sparse.csr_array((np.array([0.0, 1.0, 2.0, 2.0]), np.array([0, 1, 2, 1]), np.array([0, 1, 3, 4])),
                               shape=(3, 3))  # symmetric, for the star coloring
    before = (S.data.copy(), S.indices.copy(), S.indptr.copy())
    colors = jl.coloring(S, mode)
    assert all(np.array_equal(a, b) for a, b in zip(before, (S.data, S.indices, S.indptr)))
    if mode == "forward":
        assert colors[0] == -1  # column 0 holds only the stored zero, which is not an entry


def test_other_orders_are_not_tried_for_a_saving_under_a_twentieth(monkeypatch):
    """Two full rows but for one column each: largest first takes n colors against a bound of n - 1, and the
    other orders, whose cost grows with the squares of the rows' sizes, could save one at most."""
    n = 400
    P = np.eye(n, dtype=bool)
    P[:2, 2:] = P[2:, :2] = True

    def refused(*args):
        raise AssertionError("another order tried")

    monkeypatch.setattr(jl.compressed, "_incidence_order", refused)
    monkeypatch.setattr(jl.compressed, "_saturation_coloring", refused)
    assert jl.coloring(P).max() + 1 == n
    stencil = (np.eye(n, dtype=bool) | np.eye(n, k=1, dtype=bool) | np.eye(n, k=20, dtype=bool)
               | np.eye(n, k=-1, dtype=bool) | np.eye(n, k=-20, dtype=bool))
    with pytest.raises(AssertionError, match="another order tried"):  # 7 colors against a bound of 5: tried
        jl.coloring(stencil)


def test_other_orders_are_not_tried_where_columns_sharing_rows_pairwise_need_greedys_colors(monkeypatch):
    """Each column of a 10x10 block of B @ B shares a row with the block's 99 others, though no row holds
    more than 19 of them: largest first's 100 colors are the fewest, and nothing else is tried."""
    monkeypatch.setattr(jl.compressed, "_incidence_order", None)
    monkeypatch.setattr(jl.compressed, "_saturation_coloring", None)

    def blocks(u):
        B = u.reshape(-1, 10, 10)
        return np.tanh(B @ B).ravel()

    colors = jl.coloring(jl.sparsity(blocks, np.ones(3000)))
    assert colors.max() + 1 == 100
    assert_valid_coloring(jl.sparsity(blocks, np.ones(3000)).toarray(), colors, "forward")


@settings(derandomize=True, max_examples=150, deadline=None)
@given(st.integers(5, 60), st.integers(5, 60), st.floats(0.02, 0.4), st.integers(0, 2**31))
def test_the_clique_bound_spares_the_other_orders_only_where_greedy_is_optimal(m, n, density, seed):
    """Spared where greedy came within a twentieth of the bound, they missed the color saturation order saves
    (27 colors where 26 do, for a 60-column pattern)."""
    P = np.random.default_rng(seed).random((m, n)) < density
    with_bound = jl.coloring(P)
    compressed = jl.compressed
    original = compressed._clique
    try:
        compressed._clique = lambda lists, row: ()  # no bound beyond the widest row's
        without = jl.coloring(P)
    finally:
        compressed._clique = original
    assert with_bound.max() == without.max()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_a_clique_holds_its_row_and_columns_that_pairwise_share_a_row(m, n, density, seed):
    P = np.random.default_rng(seed).random((m, n)) < density
    lists, shares = _lists_and_neighbours(P)
    row = int(P.sum(axis=1).argmax())
    assume(P[row].any())  # coloring returns before asking for the clique of an empty pattern
    members = sorted(jl.compressed._clique(lists, row))
    assert set(np.flatnonzero(P[row])) <= set(members)
    assert all(shares[a, b] for a in members for b in members if a != b)


def test_the_pattern_of_a_cumulative_sum_of_a_dense_operand_expands_only_what_it_holds(monkeypatch):
    """Each key of the operand was expanded to every later position before merging: the Hessian of
    sum(cumsum(u)^2), whose sweep takes the cumulative sum of a dense cotangent, held n^3 / 6 keys
    (35 s for sparse_hessian's first call at n = 1000, 0.4 s now). Now at most the pattern's own n^2."""
    sizes, module = [], importlib.import_module("jacobian_lab.sparsity")  # jl.sparsity is the function
    fits = module._fits
    monkeypatch.setattr(module, "_fits", lambda entries: sizes.append(entries) or fits(entries))

    def f(u):
        c = np.cumsum(u)
        return np.sum(c * c)

    n = 120
    P = jl.sparsity(jl.grad(f), np.ones(n))
    assert P.nnz == n * n and max(sizes) <= n * n
    np.testing.assert_allclose(jl.sparse_hessian(f)(np.ones(n)).toarray(), jl.hessian(f)(np.ones(n)))


@settings(derandomize=True, max_examples=80, deadline=None)
@given(st.integers(1, 10), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_a_star_colorings_bound_is_a_set_of_pairwise_adjacent_columns(n, density, seed):
    import itertools

    P = np.random.default_rng(seed).random((n, n)) < density
    P |= P.T
    adjacent = P & ~np.eye(n, dtype=bool)
    largest = max((len(s) for k in range(1, n + 1) for s in itertools.combinations(range(n), k)
                   if all(adjacent[a, b] for a, b in itertools.combinations(s, 2))), default=0)
    size = jl.symmetric.clique(P)
    assert (size <= largest if adjacent.any() else size == 0) and size >= 2 * adjacent.any()
    assert jl.compressed.least_seeds(P, "star") <= jl.compressed.plan(P, "star").seeds


def test_a_dense_hessian_pattern_is_not_star_colored(monkeypatch):
    """A star coloring of a dense pattern costs n^3 and saves nothing: its bound (2) let it run."""
    monkeypatch.setattr(jl.compressed, "star_coloring", None)
    mode, seeding = jl.compressed.best_plan(np.ones((50, 50), dtype=bool), symmetric=True)
    assert (mode, seeding.seeds) == ("forward", 50)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.floats(0.0, 1.0), st.integers(0, 2**31), st.booleans())
def test_where_read_gives_each_entry_its_place_in_the_derivatives_by_color(m, n, density, seed, symmetric):
    """A pass over a range of colors reads a run of entries: the mask over every entry that each pass built cost
    two thirds of an eager sparse Jacobian at n = 300,000 (44 ms, 21 without)."""
    P = np.random.default_rng(seed).random((m, n)) < density
    if symmetric:
        P = P[:min(m, n), :min(m, n)] | P[:min(m, n), :min(m, n)].T
    mode, seeding = jl.compressed.best_plan(P, symmetric)
    pattern = scipy.sparse.csr_array(P)
    rows, cols = np.repeat(np.arange(P.shape[0]), np.diff(pattern.indptr)), pattern.indices
    read = np.zeros(pattern.nnz, dtype=int)
    for order, (mine, colors, flat) in jl.compressed.where_read(pattern, seeding).items():
        assert (np.diff(colors) >= 0).all()
        width = P.shape[0] if order == "forward" else P.shape[1]
        color, place = np.divmod(flat, width)
        assert (color == colors).all()
        if order == "reverse":  # element j of the cotangent of row i's color
            assert (place == cols[mine]).all() and (colors == seeding.rows[rows[mine]]).all()
        elif not seeding.symmetric:  # element i of the tangent of column j's color
            assert (place == rows[mine]).all() and (colors == seeding.columns[cols[mine]]).all()
        read[mine] += 1
    assert (read == 1).all()


def test_a_sparse_jacobian_made_anew_for_each_call_colors_its_pattern_once(monkeypatch):
    """jl.sparse_jacobian(f, x) makes a new function each call, which colored the pattern again: 0.56 s a call for
    a 5-point stencil at n = 1e5. The plan is kept by the tape's signature, for any function to find, within
    PLANS_KEPT plans and PLANS_BYTES of their arrays."""
    colored = []
    best_plan = jl.compressed.best_plan
    monkeypatch.setattr(jl.compressed, "best_plan", lambda *a: colored.append(1) or best_plan(*a))
    monkeypatch.setattr(jl.compressed, "_PLANS", type(jl.compressed._PLANS)())

    def stencil(u):
        return u[2:] - 2.0 * u[1:-1] + u[:-2] * np.sin(u[:-2])

    x = np.linspace(0.0, 1.0, 50)
    first = jl.sparse_jacobian(stencil, x)
    for point in (x, x + 0.5):
        np.testing.assert_array_equal(jl.sparse_jacobian(stencil, point).toarray(), jl.jacobian(stencil, point))
    assert len(colored) == 1 and first.nnz == 3 * 48
    for n in range(60, 60 + jl.compressed.PLANS_KEPT + 2):  # other shapes: other signatures, kept in turn
        jl.sparse_jacobian(stencil, np.ones(n))
    assert len(jl.compressed._PLANS) == jl.compressed.PLANS_KEPT
    monkeypatch.setattr(jl.compressed, "PLANS_BYTES", 1000)  # larger than that: kept by its function alone
    jl.sparse_jacobian(stencil, np.ones(500))
    assert all(kept[1].shape != (498, 500) for kept in jl.compressed._PLANS.values())


def test_incidence_order_is_tried_only_where_saturation_order_saves_no_color(monkeypatch):
    """Each costs about what largest first's greedy pass costs many times over; saturation order found fewer
    colors than incidence degree on 169 of 301 random patterns, and more on 6."""
    tried = []
    incidence = jl.compressed._incidence_order
    monkeypatch.setattr(jl.compressed, "_incidence_order", lambda *args: tried.append(1) or incidence(*args))
    assert jl.coloring(jl.sparsity(_seven_point, np.ones(1000))).max() + 1 == 10 and not tried  # 12 before
    largest_first = jl.compressed._greedy
    monkeypatch.setattr(jl.compressed, "_saturation_coloring",  # a saturation order that saves nothing
                        lambda lists, n: largest_first(sorted(range(n), key=lambda j: lists[0][j] - lists[0][j + 1]),
                                                       lists, len(lists[2]) - 1))
    assert jl.coloring(jl.sparsity(_laplacian, np.ones(144))).max() + 1 == 5 and tried  # incidence order's 5


def test_a_star_coloring_refuses_a_pattern_that_is_no_hessians():
    """Colored as P | P.T: right for a Hessian stored as one triangle, wrong for any other pattern."""
    P = np.eye(4, dtype=bool)
    P[0] = True  # an arrow's upper triangle
    np.testing.assert_array_equal(jl.coloring(P, "star"), [0, 1, 1, 1])
    np.testing.assert_array_equal(jl.coloring(P.T, "star"), [0, 1, 1, 1])
    P[3, 1] = True  # and an entry below the diagonal without its mirror image: a Jacobian's pattern
    with pytest.raises(ValueError, match=re.escape("holds (0, 1) but not (1, 0), on both sides of the diagonal")):
        jl.coloring(P, "star")


@pytest.mark.parametrize("f", [lambda x: np.sum(x) * x, lambda x: np.outer(x, x).ravel(), lambda x: np.cumsum(x)],
                         ids=["broadcast", "dense rule", "scan"])
def test_a_pattern_too_large_for_the_memory_is_refused_before_it_is_built(monkeypatch, f):
    """A dense pattern of 50,000 inputs asked for 18.6 GiB, which the system could end the process for."""
    module = importlib.import_module("jacobian_lab.sparsity")  # jl.sparsity is the function
    monkeypatch.setattr(module, "budget", lambda: 24 * 1000 * 1000 // 2)  # half what a 1000 x 1000 pattern takes
    with pytest.raises(jl.MemoryBudgetError, match=r"holds [0-9,]+ entries.*Jacobian is \(nearly\) dense there"):
        jl.sparsity(f, np.ones(1000))
    assert jl.sparsity(f, np.ones(100)).nnz > 0  # a smaller size fits


def test_a_pattern_without_entries_is_colored_without_a_pass_over_its_columns(monkeypatch):
    """The rows a bidirectional plan leaves to forward seeds after pulling every row (a gradient's one row)
    have no entries: coloring them ran greedy, saturation and incidence orders over every column (21 s of the
    25 s of reading and coloring a gradient's pattern of 10,000,000 inputs)."""
    def refused(*args):
        raise AssertionError("an order was run")

    for name in ("_greedy", "_saturation_coloring", "_incidence_order"):
        monkeypatch.setattr(jl.compressed, name, refused)
    for P in (np.zeros((0, 5), dtype=bool), np.zeros((3, 5), dtype=bool)):
        np.testing.assert_array_equal(jl.coloring(P), [-1] * 5)
    gradient = np.ones((1, 5), dtype=bool)
    assert jl.compressed.plan(gradient, "bidirectional").seeds == 1


def test_coloring_refuses_a_bad_mode_and_shape():
    with pytest.raises(ValueError, match="'forward' .color columns., 'reverse' .color rows. or 'star'"):
        jl.coloring(np.eye(2), mode="auto")
    with pytest.raises(ValueError, match=r"star coloring needs a square \(n, n\) pattern.*got shape \(2, 3\)"):
        jl.coloring(np.ones((2, 3)), mode="star")
    with pytest.raises(ValueError, match=r"pattern must be a 2-D \(m, n\) matrix.*got shape \(2, 2, 2\)"):
        jl.coloring(np.ones((2, 2, 2)))


# --- compressed Jacobians -------------------------------------------------------------
@pytest.mark.parametrize("name", problems.names())
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_sparse_jacobian_reproduces_the_dense_entries_bit_for_bit(name, mode):
    p = problems.get(name)
    S = jl.sparse_jacobian(p.f, p.x, mode=mode)
    J = jl.jacobian(p.f, p.x, mode=mode, flat=True)
    assert isinstance(S, scipy.sparse.csr_array) and S.shape == J.shape
    np.testing.assert_array_equal(S.toarray(), J)  # off the pattern, J is exactly zero
    if p.jacobian_exact is not None:
        np.testing.assert_allclose(S.toarray(), p.jacobian_exact(p.x).reshape(J.shape), rtol=1e-12, atol=1e-12)


def test_bratu_takes_three_colors_and_a_three_seed_pass():
    p = problems.get("bratu")
    jac = jl.sparse_jacobian(p.f, mode="auto")
    with counting() as sparse:
        S = jac(p.x)
    with counting() as dense:
        jl.jacobian(p.f, p.x, mode="forward", batch_size=p.x.size)
    assert (jac.chosen, jac.colors.max() + 1, sparse.passes, sparse.batch_size) == ("forward", 3, 1, 3)
    # the tangent rules here are linear in the seeds: 3 seeds do 3/n of the n-seed work, exactly
    assert sparse.cost("tangent").flops * p.x.size == 3 * dense.cost("tangent").flops
    assert sparse.cost("primal") == jl.count_flops(p.f, p.x)  # one recording of f, no other evaluation
    assert S.nnz == 3 * (p.x.size - 2)


def test_batch_size_splits_the_colors_into_passes():
    p = problems.get("bratu")
    with counting() as c:
        S = jl.sparse_jacobian(p.f, p.x, mode="reverse", batch_size=1)
    assert (c.passes, c.batch_size) == (3, 1)
    np.testing.assert_array_equal(S.toarray(), jl.jacobian(p.f, p.x, mode="reverse"))


def test_auto_takes_the_mode_with_fewer_colors():
    gradient = jl.sparse_jacobian(lambda x: np.sum(x ** 2))
    gradient(np.ones(5))
    assert (gradient.chosen, gradient.colors.max() + 1) == ("reverse", 1)
    stencil = jl.sparse_jacobian(lambda x: x[1:] * x[:-1])
    stencil(np.ones(6))
    assert stencil.chosen == "forward"  # 2 colors both ways: the tie goes forward


def test_the_coloring_is_kept_while_the_pattern_stays(monkeypatch):
    from jacobian_lab import compressed

    calls = []
    monkeypatch.setattr(compressed, "coloring", lambda P, mode: calls.append(mode) or jl.coloring(P, mode))
    jac = jl.sparse_jacobian(lambda x: np.where(x > 0, x[::-1], x) * x, mode="forward")
    jac(np.arange(1.0, 5.0))
    jac(np.arange(2.0, 6.0))
    assert calls == ["forward"]
    jac(np.arange(1.0, 7.0))  # another size: another pattern
    assert calls == ["forward", "forward"]


def test_another_branch_reads_its_own_pattern():
    f = lambda x: x[1:] * x[:-1] if x[0] > 0 else np.concatenate([x[:1], x[2:] * 2])  # noqa: E731
    jac = jl.sparse_jacobian(f)
    for x in (np.arange(1.0, 6.0), -np.arange(1.0, 6.0), np.arange(2.0, 7.0)):
        np.testing.assert_array_equal(jac(x).toarray(), jl.jacobian(f, x, mode="forward"))


def test_structured_input_and_output_are_flattened():
    S = jl.sparse_jacobian(lambda p: (p["a"] * p["b"], p["a"][:1]), {"a": np.ones(2), "b": np.full(2, 3.0)})
    np.testing.assert_array_equal(S.toarray(), [[3, 0, 1, 0], [0, 3, 0, 1], [1, 0, 0, 0]])


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("f, shape", [(lambda x: np.zeros(3), (3, 2)), (lambda x: x[:0] * 2, (0, 2))])
def test_an_empty_pattern_gives_an_empty_matrix_without_a_pass(f, shape, mode):
    with counting() as c:
        S = jl.sparse_jacobian(f, np.ones(2), mode=mode)
    assert S.shape == shape and S.nnz == 0 and c.passes == 0


def test_float32_input_gives_a_float32_jacobian():
    S = jl.sparse_jacobian(lambda x: x[1:] * x[:-1], np.ones(4, dtype=np.float32))
    assert S.dtype == np.float32


def test_bad_arguments_are_refused_like_jacobian():
    with pytest.raises(ValueError, match="mode must be one of"):
        jl.sparse_jacobian(np.sin, np.ones(2), mode="sideways")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        jl.sparse_jacobian(np.sin, np.ones(2), batch_size=0)
    with pytest.raises(TypeError, match="the function comes first"):
        jl.sparse_jacobian(np.ones(2), np.sin)
    with pytest.raises(TypeError, match="complex input is not supported"):
        jl.sparse_jacobian(np.sin, np.ones(2, dtype=complex))
    with pytest.raises(TypeError, match="f returned an array of dtype int64"):
        jl.sparse_jacobian(lambda x: np.arange(3), np.ones(2))
    assert repr(jl.sparse_jacobian(np.sin)) == "sparse_jacobian(sin, mode='auto')"


def test_measure_and_compare_report_the_compressed_row():
    p = problems.get("bratu", n=50)
    c = jl.compare(p.f, p.x, modes=("forward", "sparse"), repeat=1)
    dense, sparse = c.measurements
    assert sparse.label == "sparse -> forward" and sparse.compressed and not dense.compressed
    assert sparse.passes == 1 and sparse.batch_size == 3
    assert sparse.cost["tangent"].flops * 50 == 3 * dense.cost["tangent"].flops
    assert c.max_abs_diff(sparse) == 0.0
    assert "3 seeds" in sparse.reason and "verdict" not in sparse.reason
    assert c.verdict().startswith("only forward mode was measured")  # the compressed row is not an order
    both = jl.compare(p.f, p.x, modes=("forward", "reverse", "sparse"), repeat=1)
    ratio = min(m.total.total() for m in both.measurements[:2]) / both.measurements[2].total.total()
    assert both.verdict().startswith("forward is 1.1x cheaper")
    assert both.verdict().endswith(f"; compressed seeds (the sparse row) need {ratio:.3g}x fewer FLOPs + "
                                   "transcendentals than forward")


# --- bidirectional: the densest rows pulled, the other rows' columns pushed --------------------
def arrow(x):
    """A full row (the sum) and a full column (x[0] scales every other output)."""
    return np.concatenate([np.sum(x, keepdims=True), x[1:] * x[0]])


def test_an_arrow_takes_three_seeds_where_either_mode_takes_n():
    x = np.linspace(1.0, 2.0, 40)
    seeds = {}
    for mode in ("forward", "reverse", "bidirectional", "auto"):
        jac = jl.sparse_jacobian(arrow, mode=mode)
        with counting() as c:
            S = jac(x)
        seeds[mode] = (jac.chosen, jac.seeds, c.passes)
        forward, reverse = jl.jacobian(arrow, x, mode="forward"), jl.jacobian(arrow, x, mode="reverse")
        expected = reverse if jac.chosen == "reverse" else forward
        if jac.chosen == "bidirectional":  # row 0 is pulled, the others pushed
            expected = np.vstack([reverse[:1], forward[1:]])
        np.testing.assert_array_equal(S.toarray(), expected)
    assert seeds == {"forward": ("forward", 40, 1), "reverse": ("reverse", 40, 1),
                     "bidirectional": ("bidirectional", 3, 2), "auto": ("bidirectional", 3, 2)}


def test_bidirectional_counts_one_sweep_and_one_pass():
    x = np.linspace(1.0, 2.0, 10)
    with counting() as both:
        jl.sparse_jacobian(arrow, x, mode="bidirectional")
    with counting() as pushed:
        jl.jvp(arrow, x, np.stack([np.eye(10)[0], np.ones(10) - np.eye(10)[0]]))  # the two column colors
    with counting() as pulled:
        jl.vjp(arrow, x)[1](np.eye(10)[:1])  # row 0
    assert both.cost("tangent") == pushed.cost("tangent")
    assert both.cost("cotangent") == pulled.cost("cotangent")
    assert both.cost("primal") == jl.count_flops(arrow, x)  # f recorded once, for both


def subset_sums(rows):
    """f_i(x) = sum of x over the subset rows[i]: a Jacobian whose pattern is exactly `rows`."""
    def f(x):
        return np.stack([np.sum(np.take(x, r)) if len(r) else 0.0 * np.sum(x[:0]) for r in rows])
    return f


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_every_mode_reads_every_entry_of_a_random_pattern(m, n, density, seed):
    rng = np.random.default_rng(seed)
    dense_rows = rng.random(m) < 0.3
    rows = [np.flatnonzero((rng.random(n) < density) | dense_rows[i]) for i in range(m)]
    f, x = subset_sums(rows), rng.uniform(0.5, 1.5, n)
    J = jl.jacobian(f, x)
    seeds = {}
    for mode in ("forward", "reverse", "bidirectional", "auto"):
        jac = jl.sparse_jacobian(f, mode=mode)
        np.testing.assert_array_equal(jac(x).toarray(), J)  # sums of ones: every order gives the same bits
        seeds[mode] = jac.seeds
    assert seeds["forward"] <= n and seeds["reverse"] <= m
    assert seeds["auto"] == min(seeds["forward"], seeds["reverse"], seeds["bidirectional"])
    assert (seeds["auto"] == 0) == (not any(len(r) for r in rows))  # no entry, no seed


# --- compiled sparse Jacobians ----------------------------------------------------------
def _same(S, T) -> bool:
    """Equal sparse arrays: the same pattern and the same entries, bit for bit."""
    return (S.shape == T.shape and np.array_equal(S.indptr, T.indptr) and np.array_equal(S.indices, T.indices)
            and np.array_equal(S.data, T.data))


@pytest.mark.parametrize("name", problems.names())
@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_jit_of_a_sparse_jacobian_replays_the_eager_entries_bit_for_bit(name, mode):
    p = problems.get(name)
    jac = jl.jit(jl.sparse_jacobian(p.f, mode=mode))
    for x in (p.x, p.x * 0.9 + 0.01):
        assert _same(jac(x), jl.sparse_jacobian(p.f, x, mode=mode))
    assert jac.compiles == 1  # the second point replayed the program
    with counting() as c:
        jac(p.x)
    program = jac.program(p.x)
    assert c.total() == program.cost and c.passes == len(program.seeds)


def test_jit_of_bratu_replays_one_compact_pass_of_three_seeds():
    p = problems.get("bratu")
    program = jl.jit(jl.sparse_jacobian(p.f)).program(p.x)
    assert (program.mode, program.seeds) == ("forward", [3])
    # the stencil's linear part folds into constants: what is left is exp and its product with the seeds
    assert program.cost.transcendentals == p.x.size - 2 and program.cost.flops < 10 * p.x.size


def test_jit_of_a_sparse_jacobian_follows_the_branch_f_takes():
    def f(x):  # two branches with two patterns
        return x[1:] * x[:-1] if x[0] > 0 else np.sin(x)

    jac = jl.jit(jl.sparse_jacobian(f))
    for x in (np.linspace(0.5, 1.0, 6), np.linspace(-1.0, -0.5, 6), np.linspace(0.2, 1.0, 6)):
        assert _same(jac(x), jl.sparse_jacobian(f, x))
    assert jac.compiles == 2


def test_jit_of_a_bidirectional_plan_replays_its_passes_then_its_sweeps():
    x = np.linspace(0.1, 1.0, 8)
    jac = jl.jit(jl.sparse_jacobian(arrow))
    for point in (x, 1.3 * x):
        assert _same(jac(point), jl.sparse_jacobian(arrow, point))
    program = jac.program(x)
    assert (program.mode, program.seeds, jac.compiles) == ("bidirectional", [2, 1], 1)  # two colors, one row
    with counting() as c:
        jac(x)
    assert c.total() == program.cost and c.passes == 2


def test_jit_of_sparse_jacobians_of_trees_and_of_sparse_hessians():
    params = {"a": np.linspace(0.1, 1.0, 5), "b": np.array(0.3)}
    f = lambda p: np.sin(p["a"]) * p["b"]  # noqa: E731
    assert _same(jl.jit(jl.sparse_jacobian(f))(params), jl.sparse_jacobian(f, params))
    rosen = lambda x: np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)  # noqa: E731
    x = np.linspace(-1.0, 1.0, 12)
    hess = jl.jit(jl.sparse_hessian(rosen))
    assert _same(hess(x), jl.sparse_hessian(rosen, x)) and _same(hess(2 * x), jl.sparse_hessian(rosen, 2 * x))
    tree = {"u": x, "c": np.array(0.7)}
    tree_loss = lambda p: rosen(p["u"]) * p["c"]  # noqa: E731
    hess = jl.jit(jl.sparse_hessian(tree_loss))
    for point in (tree, {"u": 0.5 * x, "c": np.array(1.1)}):
        assert _same(hess(point), jl.sparse_hessian(tree_loss, point))
    assert hess.compiles == 1


def test_importing_the_package_leaves_scipy_sparse_for_the_first_sparse_jacobian():
    import subprocess
    import sys

    code = ("import sys, numpy as np, jacobian_lab as jl; before = 'scipy.sparse' in sys.modules; "
            "jl.sparsity(np.sin, np.ones(2)); print(before, 'scipy.sparse' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def test_the_first_sparse_measurement_does_not_count_importing_scipy_sparse():
    import subprocess
    import sys

    # In a fresh interpreter the first sparse row used to report scipy.sparse's import (~12 MiB) as its peak.
    code = ("import numpy as np, jacobian_lab as jl; "
            "print(jl.measure(lambda x: np.sum(np.sin(x)), np.ones(1000), mode='sparse').peak_bytes)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) < 1 << 20


@pytest.mark.parametrize("compiled", [False, True])
def test_the_returned_matrix_and_colors_are_the_callers_to_change(compiled):
    """S.eliminate_zeros(), an edit of S.indices or sorting .colors changes the caller's copies: the pattern
    and coloring the next call reuses stay as they were (they were handed out, and the next call failed
    with an internal IndexError or returned a wrong Jacobian)."""
    f = lambda x: x[1:] * np.sin(x[:-1])  # noqa: E731
    x1, x2 = np.array([0.0, 1.0, 2.0, 0.0, 3.0]), np.linspace(1.0, 2.0, 5)
    fun = jl.sparse_jacobian(f, mode="forward")
    S = jl.jit(fun) if compiled else fun
    A = S(x1)
    A.eliminate_zeros()
    A.indices[:] = A.indices[::-1]
    if not compiled:
        fun.colors.sort()
        fun.colors[:] = 0
    np.testing.assert_allclose(S(x2).toarray(), jl.jacobian(f, x2), rtol=1e-15)
    np.testing.assert_allclose(S(x1).toarray(), jl.jacobian(f, x1), rtol=1e-15)
