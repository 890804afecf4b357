"""Hessians, forward over reverse: closed forms, differences of hand-written gradients, exact counts."""
from __future__ import annotations

import collections

import numpy as np
import pytest
from helpers import assert_close, central_differences

import jacobian_lab as jl
from jacobian_lab.accounting import counting
from jacobian_lab.hessian import Derivative

RNG = np.random.default_rng(11)


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_hessian(x):
    n = x.size
    H = np.zeros((n, n))
    i = np.arange(n - 1)
    H[i, i] += 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
    H[i + 1, i + 1] += 200.0
    H[i, i + 1] = H[i + 1, i] = -400.0 * x[:-1]
    return H


def test_closed_forms():
    x = RNG.standard_normal(5)
    A = RNG.standard_normal((5, 5))
    np.testing.assert_allclose(jl.hessian(lambda x: x @ A @ x, x), A + A.T, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(jl.hessian(lambda x: np.sum(x ** 3), x), np.diag(6.0 * x), rtol=1e-13)
    np.testing.assert_allclose(jl.hessian(rosenbrock, x), rosenbrock_hessian(x), rtol=1e-12, atol=1e-9)
    p = np.exp(x) / np.sum(np.exp(x))
    np.testing.assert_allclose(jl.hessian(lambda x: np.log(np.sum(np.exp(x))), x), np.diag(p) - np.outer(p, p),
                               rtol=1e-12, atol=1e-15)


def test_against_differences_of_a_hand_written_gradient():
    W, b = RNG.standard_normal((4, 6)), RNG.standard_normal(4)

    def f(x):
        return np.sum(np.tanh(W @ x + b) ** 2) + np.prod(x[:3])

    def gradient(x):
        t = np.tanh(W @ x + b)
        g = W.T @ (2.0 * t * (1.0 - t ** 2))
        g[:3] += np.prod(x[:3]) / x[:3]
        return g

    x = RNG.uniform(0.5, 1.5, 6)
    H = jl.hessian(f)(x)
    assert_close(H, central_differences(gradient, x), 1e-6)
    assert np.abs(H - H.T).max() < 1e-12


def _others(x, skip):
    return np.prod([v for l, v in enumerate(x) if l not in skip])


def _cumprod_hessian(x, w):
    """Of sum(w * cumprod(x)), element by element: output k holds prod over l <= k but i and j."""
    n = x.size
    return np.array([[0.0 if i == j else sum(w[k] * _others(x[:k + 1], {i, j}) for k in range(max(i, j), n))
                      for j in range(n)] for i in range(n)])


ZEROS = {"none": [1.5, -2.0, 0.5, 3.0], "one": [1.5, 0.0, 0.5, 3.0], "two": [0.0, -2.0, 0.0, 3.0],
         "three": [0.0, 0.0, 0.5, 0.0]}


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
@pytest.mark.parametrize("zeros", ZEROS.values(), ids=ZEROS)
def test_products_have_exact_hessians_where_factors_are_zero(zeros, mode):
    # Each element's weight in prod's derivative, the product of the others, is 0 at such points,
    # but its derivative is not: H[i, j] is the product of all elements but i and j.
    x, w = np.array(zeros), np.array([1.0, -2.0, 0.5, 3.0])
    hessian = (lambda f: jl.jit(jl.hessian(f))) if mode == "jit" else lambda f: jl.hessian(f, mode=mode)
    expected = np.array([[0.0 if i == j else _others(x, {i, j}) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(hessian(np.prod)(x), expected, rtol=1e-14, atol=0)
    np.testing.assert_allclose(hessian(lambda x: w @ np.cumprod(x))(x), _cumprod_hessian(x, w), rtol=1e-14, atol=0)
    rows = hessian(lambda x: np.sum(np.prod(x.reshape(2, 2), axis=1) * w[:2]))(x)
    np.testing.assert_allclose(rows, np.kron(np.diag(w[:2]), [[0.0, 1.0], [1.0, 0.0]]), rtol=1e-14, atol=0)


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
@pytest.mark.parametrize("zeros", ZEROS.values(), ids=ZEROS)
def test_products_have_exact_third_derivatives_where_factors_are_zero(zeros, mode):
    """prod is multilinear: its third derivative in distinct elements i, j, l is the product of the others,
    nonzero at three zeros (it was 0 there), and its fourth at 0 is 1."""
    x = np.array(zeros)
    # the third derivative itself compiled for "jit" (a compiled Hessian inside a derivative runs uncompiled)
    third = {"forward": lambda f: jl.jacfwd(jl.hessian(f)),
             "reverse": lambda f: jl.jacrev(jl.hessian(f, mode="reverse")),
             "jit": lambda f: jl.jit(jl.jacfwd(jl.hessian(f)))}[mode]
    expected = np.array([[[_others(x, {i, j, k}) if len({i, j, k}) == 3 else 0.0 for k in range(4)]
                          for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(third(np.prod)(x), expected, rtol=1e-14, atol=0)
    np.testing.assert_allclose(third(lambda v: np.cumprod(v)[-1])(x), expected, rtol=1e-14, atol=0)
    fourth = (jl.jit if mode == "jit" else lambda fun: fun)(jl.jacfwd(third(np.prod)))(np.zeros(4))
    assert fourth[0, 1, 2, 3] == fourth[3, 2, 1, 0] == 1.0 and fourth[0, 0, 1, 2] == 0.0


def _cofactors(a):
    """The cofactor matrix of a 3×3 matrix (det's gradient), row i the cross product of the other two."""
    return np.stack([np.cross(a[1], a[2]), np.cross(a[2], a[0]), np.cross(a[0], a[1])])


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
def test_det_has_exact_second_derivatives_at_singular_matrices(mode):
    hessian = (lambda f: jl.jit(jl.hessian(f))) if mode == "jit" else lambda f: jl.hessian(f, mode=mode)
    a = np.outer([1.0, 2.0, -1.0], [0.5, 1.0, 3.0])  # rank 1: det, its gradient and det(u uᵀ) all vanish
    # det's gradient is quadratic, so a central difference of step 1 is its exact derivative
    steps = np.eye(9).reshape(9, 3, 3)
    expected = np.stack([(_cofactors(a + e) - _cofactors(a - e)).ravel() / 2 for e in steps])
    np.testing.assert_allclose(hessian(lambda v: np.linalg.det(v.reshape(3, 3)))(a.ravel()), expected,
                               rtol=0, atol=1e-14)
    u = np.array([0.7, -1.2, 2.0])
    assert np.abs(hessian(lambda u: np.linalg.det(np.outer(u, u)))(u)).max() < 1e-14


def test_vector_output_gives_each_outputs_hessian():
    x = np.array([0.5, -1.5, 2.0])
    H = jl.hessian(lambda x: x ** 2 * x[0], x)  # y_i = x_i^2 x_0
    expected = np.zeros((3, 3, 3))
    for i in range(3):
        expected[i, i, i] += 2.0 * x[0]
        expected[i, i, 0] += 2.0 * x[i]
        expected[i, 0, i] += 2.0 * x[i]
    np.testing.assert_allclose(H, expected, rtol=1e-14)


@pytest.mark.parametrize("mode", ["forward", "reverse", "jit"])
def test_a_tree_of_outputs_gives_a_hessian_per_array_in_its_structure(mode):
    def rhs(y):  # an ODE right-hand side returned as a list, and a dict of results
        return {"rhs": [y[1], (1.0 - y[0] ** 2) * y[1] - y[0]], "energy": np.sum(y ** 3)}

    y = np.array([0.5, 1.5])
    H = jl.jit(jl.hessian(rhs))(y) if mode == "jit" else jl.hessian(rhs, y, mode=mode)
    assert set(H) == {"rhs", "energy"} and type(H["rhs"]) is list
    np.testing.assert_array_equal(H["rhs"][0], np.zeros((2, 2)))
    np.testing.assert_allclose(H["rhs"][1], [[-2.0 * y[1], -2.0 * y[0]], [-2.0 * y[0], 0.0]], rtol=1e-15)
    np.testing.assert_allclose(H["energy"], np.diag(6.0 * y), rtol=1e-15)


def test_batch_size_sets_the_passes_and_keeps_the_values():
    x = RNG.standard_normal(6)
    with counting() as c:
        one = jl.hessian(rosenbrock, x, batch_size=1)
    np.testing.assert_array_equal(one, jl.hessian(rosenbrock, x))
    assert (c.passes, c.batch_size) == (2 * 6, 1)  # six forward passes, each around one gradient sweep


@pytest.mark.parametrize("n", [1, 4, 7])
def test_exact_counts_of_sum_of_sines(n):
    """f = sum(sin(x)) with all n seeds in one pass (k = n), phase by phase, from the conventions.

    primal: sin (n transcendentals), sum (n - 1 flops).
    cotangent, the sweep's values: its factor cos(x) (n transcendentals) and g * cos(x) (n flops).
    tangent: sin's JVP, t * cos(x) (n transcendentals, k n flops); sum's JVP (k (n - 1) flops);
    cos's JVP inside the sweep, t * -sin(x) (n transcendentals, n + k n flops); g * t (k n flops).
    """
    x, k = np.linspace(0.1, 0.9, n), n
    with counting() as c:
        H = jl.hessian(lambda x: np.sum(np.sin(x)), x)
    np.testing.assert_allclose(H, np.diag(-np.sin(x)), rtol=1e-15)
    assert c.cost("primal") == jl.Cost(n - 1, n)
    assert c.cost("cotangent") == jl.Cost(n, n)
    assert c.cost("tangent") == jl.Cost(k * n + k * (n - 1) + n + k * n + k * n, 2 * n)
    assert (c.passes, c.batch_size) == (2, n)


def test_float32_and_constant_and_linear_functions():
    x = np.ones(3, dtype=np.float32)
    assert jl.hessian(lambda x: np.sum(x ** 2), x).dtype == np.float32
    np.testing.assert_array_equal(jl.hessian(lambda x: np.sum(2.0 * x), np.ones(3)), np.zeros((3, 3)))
    assert jl.hessian(lambda x: np.ones(2), np.ones(3)).shape == (2, 3, 3)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_structured_x_gives_blocks_nested_twice(mode):
    """As jax.hessian nests them: H[a][b] is d2f / da db, of shape a.shape + b.shape."""
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])

    def f(p):
        return np.sum(p["a"] ** 2 * p["b"][0]) + p["b"][1] ** 3

    H = jl.hessian(f, {"a": a, "b": b}, mode=mode)
    np.testing.assert_array_equal(H["a"]["a"], 2 * b[0] * np.eye(2))
    np.testing.assert_array_equal(H["a"]["b"], [[2 * a[0], 0.0], [2 * a[1], 0.0]])
    np.testing.assert_array_equal(H["b"]["a"], H["a"]["b"].T)
    np.testing.assert_array_equal(H["b"]["b"], [[0.0, 0.0], [0.0, 6 * b[1]]])
    pair = jl.hessian(lambda t: t[0] * t[1] ** 2, (np.array(1.0), np.array(2.0)))
    assert [[float(v) for v in row] for row in pair] == [[0.0, 4.0], [4.0, 2.0]]


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="the function comes first"):
        jl.hessian(np.ones(3), np.sin)
    scalar = r"the Hessian in a structured x or a tuple of argnums needs f to return a scalar \(shape \(\)\), got "
    with pytest.raises(TypeError, match=scalar + r"shape \(2,\)"):
        jl.hessian(lambda p: p["a"] ** 2, {"a": np.ones(2)})
    with pytest.raises(TypeError, match=scalar + "a dict of 2 arrays"):  # not the size of their raveled values
        jl.hessian(lambda p: {"u": p["a"] ** 2, "v": p["a"].sum()}, {"a": np.ones(2)})
    with pytest.raises(TypeError, match=scalar + "an OrderedDict of 2 arrays"):
        jl.hessian(lambda p: collections.OrderedDict(u=p["a"] ** 2, v=p["a"].sum()), {"a": np.ones(2)})
    with pytest.raises(TypeError, match=scalar + r"shape \(2,\)"):
        jl.hessian(lambda a, b: a * b, argnums=(0, 1))(np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        jl.hessian(np.sum, np.ones(2), batch_size=0)
    with pytest.raises(TypeError, match="complex input is not supported"):
        jl.hessian(np.sum, np.ones(2, dtype=complex))
    assert repr(jl.hessian(np.sin)) == "hessian(sin)"


# --- sparse Hessians --------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_sparse_hessian_is_the_dense_one_bit_for_bit(mode):
    x = RNG.standard_normal(200)
    jac = jl.sparse_hessian(rosenbrock, mode=mode)
    H = jac(x)
    assert H.shape == (200, 200) and H.nnz == 3 * 200 - 2  # tridiagonal
    assert jac.colors.max() + 1 == 3
    np.testing.assert_array_equal(H.toarray(), jl.hessian(rosenbrock, x))
    np.testing.assert_allclose(H.toarray(), rosenbrock_hessian(x), rtol=1e-12, atol=1e-9)


def test_sparse_hessian_takes_three_seeds_where_the_dense_one_takes_n():
    """Tangent work is a + k b for k seeds (a: JVPs of factors computed once per pass); read a and b
    from forward passes of the gradient with 1 and 2 seeds, then check both Hessians' counts."""
    n = 60
    x = RNG.standard_normal(n)

    def tangent_work(k):
        with counting() as c:
            jl.jvp(Derivative(rosenbrock), x, np.eye(n)[:k])
        return c.cost("tangent").flops

    b = tangent_work(2) - tangent_work(1)
    a = tangent_work(1) - b
    with counting() as sparse:
        jl.sparse_hessian(rosenbrock, x, mode="forward")
    with counting() as dense:
        jl.hessian(rosenbrock, x, batch_size=n)
    assert (sparse.batch_size, dense.batch_size) == (3, n)
    assert sparse.cost("tangent").flops == a + 3 * b
    assert dense.cost("tangent").flops == a + n * b
    assert sparse.cost("primal") == dense.cost("primal") == jl.count_flops(rosenbrock, x)


def test_sparse_hessian_of_a_gather_reads_the_graph():
    """An energy over the edges of a ring, written with index arrays: its gradient scatters back
    (the transpose of take), and the Hessian's pattern is the ring's, not dense."""
    n = 30
    i, j = np.arange(n), (np.arange(n) + 1) % n

    def energy(x):
        return np.sum((x[i] - x[j]) ** 4)

    x = RNG.standard_normal(n)
    jac = jl.sparse_hessian(energy)
    H = jac(x)
    assert H.nnz == 3 * n and jac.seeds == 3
    np.testing.assert_array_equal(H.toarray(), jl.hessian(energy, x))


def test_sparse_hessian_of_a_tree_of_arrays_is_the_flat_hessian():
    params = {"w": np.linspace(-1.0, 1.0, 6), "b": np.array(0.5)}

    def loss(p):  # a chain in w, each link coupled to b
        return np.sum(p["w"][1:] * p["w"][:-1] ** 2 * p["b"]) + p["b"] ** 3

    hess = jl.sparse_hessian(loss)
    for scale in (1.0, 0.5):
        point = {"w": scale * params["w"], "b": scale * params["b"]}
        H = hess(point)
        dense = jl.hessian(lambda v: loss({"b": v[0], "w": v[1:]}), np.concatenate([[point["b"]], point["w"]]))
        np.testing.assert_array_equal(H.toarray(), dense)  # flat order: the dict's keys sorted, b before w
    # b's full row and column: a star coloring gives b a color and the chain of w three more, where
    # bidirectional pulls b's row and colors the tridiagonal rest with three
    assert H.shape == (7, 7) and (hess.chosen, hess.seeds) == ("star", 4)
    both = jl.sparse_hessian(loss, mode="bidirectional")
    both(params)
    assert (both.chosen, both.seeds) == ("bidirectional", 5)


def test_sparse_hessian_refuses_what_it_cannot_take():
    with pytest.raises(TypeError, match="needs f to return a scalar"):
        jl.sparse_hessian(lambda x: x ** 2, np.ones(3))
    with pytest.raises(ValueError, match="mode must be one of"):
        jl.sparse_hessian(np.sum, np.ones(2), mode="both")
    assert repr(jl.sparse_hessian(np.sum)) == "sparse_hessian(sum, mode='auto')"


# --- compiled Hessians ------------------------------------------------------------------
def test_jit_compiles_the_hessian_and_replays_it_exactly():
    jac = jl.jit(jl.hessian(rosenbrock))
    for x in (RNG.standard_normal(30), RNG.standard_normal(30)):
        np.testing.assert_array_equal(jac(x), jl.hessian(rosenbrock, x))
    assert jac.compiles == 1 and repr(jac) == "jit(hessian(rosenbrock))"
    x = RNG.standard_normal(30)
    with counting() as c:
        jac(x)
    assert c.total() == jac.program(x).cost  # a replay counts its program's known work
    assert jac.program(x).mode == "forward"  # forward over the recorded sweep


def test_jit_hessian_follows_the_branch_f_takes():
    jac = jl.jit(jl.hessian(lambda x: np.sum(x ** 3) if x[0] > 0 else np.sum(np.sin(x))))
    up, down = np.array([0.5, 2.0]), np.array([-0.5, 2.0])
    np.testing.assert_allclose(jac(up), np.diag(6.0 * up), rtol=1e-15)
    np.testing.assert_allclose(jac(down), np.diag(-np.sin(down)), rtol=1e-15)
    np.testing.assert_allclose(jac(2 * up), np.diag(12.0 * up), rtol=1e-15)
    assert jac.compiles == 2


def test_jit_hessian_of_a_tree_of_arrays_gives_the_blocks_of_hessian():
    def loss(p):
        return np.sum(np.tanh(p["w"] * p["b"]) ** 2) + p["b"] ** 3

    jac = jl.jit(jl.hessian(loss))
    for scale in (1.0, 0.5):
        params = {"w": scale * np.linspace(-1.0, 1.0, 3), "b": np.array(0.5 * scale)}
        H, K = jl.hessian(loss, params), jac(params)
        for row in params:
            for col in params:
                np.testing.assert_array_equal(K[row][col], H[row][col])
    assert jac.compiles == 1  # the second call replayed
    with counting() as c:
        jac(params)
    assert c.total() == jac.program(params).cost and jac.compiles == 1
    tuple_jac = jl.jit(jl.hessian(lambda t: t[0] * t[1]))((np.array(1.0), np.array(2.0)))
    assert tuple_jac[0][1] == 1.0 and tuple_jac[1][1] == 0.0


# --- Hessian-vector products ------------------------------------------------------------
def test_hvp_is_the_hessian_times_v_in_one_and_in_k_directions():
    x, V = RNG.standard_normal(8), RNG.standard_normal((3, 8))
    H = rosenbrock_hessian(x)
    np.testing.assert_allclose(jl.hvp(rosenbrock, x, V[0]), H @ V[0], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(jl.hvp(rosenbrock, x, V), V @ H, rtol=1e-12, atol=1e-9)
    assert jl.hvp(rosenbrock, x, V).shape == (3, 8) and jl.hvp(rosenbrock, x, V[0]).shape == (8,)


@pytest.mark.parametrize("n", [1, 5])
def test_hvp_counts_one_tangent_of_the_gradient(n):
    """sum(sin(x)): the counts of the Hessian test with k = 1 seed."""
    x, v = np.linspace(0.1, 0.9, n), np.ones(n)
    with counting() as c:
        product = jl.hvp(lambda x: np.sum(np.sin(x)), x, v)
    np.testing.assert_allclose(product, -np.sin(x), rtol=1e-15)
    assert (c.cost("primal"), c.cost("cotangent")) == (jl.Cost(n - 1, n), jl.Cost(n, n))
    assert c.cost("tangent") == jl.Cost(n + (n - 1) + n + n + n, 2 * n)
    assert (c.passes, c.batch_size) == (2, 1)


def test_hvp_refuses_what_it_cannot_take():
    with pytest.raises(TypeError, match="needs f to return a scalar"):
        jl.hvp(lambda x: x ** 2, np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"v must have shape \(3,\) or \(k, \*\(3,\)\)"):
        jl.hvp(np.sum, np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="v must have the same structure and leaf shapes as x"):
        jl.hvp(lambda p: np.sum(p["a"]), {"a": np.ones(2)}, np.ones(2))
    with pytest.raises(ValueError, match=r"at \['a'\]: an array of shape \(2, 2\) where \(2,\) is expected "
                                         r"\(k directions stacked .* for a tree of arrays, one direction per call\)"):
        jl.hvp(lambda p: np.sum(p["a"] ** 3), {"a": np.ones(2)}, {"a": np.eye(2)})


def test_hvp_of_a_tree_of_arrays_is_the_hessian_blocks_times_v():
    params = {"w": np.linspace(-1.0, 1.0, 3), "b": np.array(0.5)}
    v = {"w": np.array([1.0, -2.0, 0.5]), "b": np.array(2.0)}

    def loss(p):
        return np.sum(np.tanh(p["w"] * p["b"]) ** 2) + p["b"] ** 3

    H = jl.hessian(loss, params)  # blocks nested twice in the structure, as jax.hessian
    product = jl.hvp(loss, params, v)
    assert set(product) == {"w", "b"} and product["w"].shape == (3,) and product["b"].shape == ()
    for row in params:
        expected = sum(np.tensordot(H[row][col], v[col], axes=np.ndim(v[col])) for col in params)
        np.testing.assert_allclose(product[row], expected, rtol=1e-12, atol=1e-12)


# --- reverse over reverse -----------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 4, 7])
def test_reverse_over_reverse_counts_of_sum_of_sines(n):
    """All n cotangents in one sweep back through the recorded gradient sweep (k = n).

    primal: sin (n transcendentals), sum (n - 1 flops). cotangent, the gradient sweep: cos(x)
    (n transcendentals) and g * cos(x) (n flops); the sweep back through it: g * ḡ (k n flops),
    cos's factor -sin(x) (n transcendentals, n flops) and its product (k n flops). sin and sum
    get no cotangent: the gradient does not read f's value. No tangent work at all.
    """
    x, k = np.linspace(0.1, 0.9, n), n
    with counting() as c:
        H = jl.hessian(lambda x: np.sum(np.sin(x)), x, mode="reverse")
    np.testing.assert_allclose(H, np.diag(-np.sin(x)), rtol=1e-15)
    assert c.cost("primal") == jl.Cost(n - 1, n)
    assert c.cost("cotangent") == jl.Cost(n + k * n + n + k * n, 2 * n)
    assert c.cost("tangent") == jl.Cost(0, 0)
    assert (c.passes, c.batch_size) == (2, n)


@pytest.mark.parametrize("mode", ["reverse", "auto"])
def test_every_order_gives_the_hessian(mode):
    x = RNG.standard_normal(12)
    np.testing.assert_allclose(jl.hessian(rosenbrock, x, mode=mode), rosenbrock_hessian(x), rtol=1e-12, atol=1e-9)
    jac = jl.jit(jl.hessian(rosenbrock, mode=mode))
    np.testing.assert_allclose(jac(x), rosenbrock_hessian(x), rtol=1e-12, atol=1e-9)
    assert repr(jl.hessian(rosenbrock, mode=mode)) == f"hessian(rosenbrock, mode={mode!r})"
    with pytest.raises(ValueError, match="mode must be one of"):
        jl.hessian(rosenbrock, mode="sideways")


W0 = np.array([0.5, 1.0, -0.4])
CLOSURES = {  # a derivative at a constant point of an f that closes over the outer traced z
    "jacfwd": lambda z: jl.jacfwd(lambda w: np.sin(w) * z)(W0),
    "jacrev, one seed per pass": lambda z: jl.jacrev(lambda w: np.sin(w) * z, batch_size=1)(W0),
    "jacobian": lambda z: jl.jacobian(lambda w: np.outer(np.sin(w), z), W0),
    "hessian": lambda z: jl.hessian(lambda w: np.sum(np.sin(w) * z ** 2))(W0),
}


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("g", [pytest.param(g, id=n) for n, g in CLOSURES.items()])
def test_a_derivative_inside_f_may_close_over_its_traced_input(g, mode):
    z = np.array([0.3, -0.7, 1.2])
    J = jl.jacobian(g, z, mode=mode)
    assert_close(J, central_differences(g, z), 1e-7, mode)
    assert np.abs(J).max() > 0.1  # the inner derivative does depend on z


@pytest.mark.parametrize("g", [pytest.param(g, id=n) for n, g in CLOSURES.items()])
def test_the_hessian_of_an_f_with_a_derivative_inside(g):
    def scalar(z):
        return np.sum(g(z) ** 2)

    z = np.array([0.3, -0.7, 1.2])
    assert_close(jl.hessian(scalar, z), central_differences(jl.grad(scalar), z), 1e-6, "hessian")


KINKED = {  # f whose second derivatives follow masks of x
    "where": lambda x: np.sum(np.where(x > 0, x ** 3, x ** 2)),
    "maximum": lambda x: np.sum(np.maximum(x, 0.0) ** 3),
    "abs": lambda x: np.sum(np.abs(x) ** 3 + x ** 3),
    "row norms": lambda x: np.sum(np.linalg.norm(x.reshape(-1, 2), axis=1)),
}


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("g", KINKED.values(), ids=KINKED)
def test_jit_hessian_recomputes_the_masks_at_each_x(g, mode):
    jitted = jl.jit(jl.hessian(g, mode=mode))
    for x in (np.zeros(4), np.array([-1.0, -2.0, 0.5, 1.5]), np.array([1.0, 2.0, 3.0, 4.0])):
        np.testing.assert_allclose(jitted(x), jl.hessian(g, x, mode=mode), rtol=1e-12, atol=0)


def test_jit_hessian_reads_again_an_array_made_like_x_whose_values_follow_x():
    def g(x):
        c = np.ones_like(x)
        c[x > 0] = 2.0  # no derivative, but values that follow the signs of x
        return np.sum((c * x) ** 2)

    for fn in (jl.jit(jl.hessian(g)), jl.jit(jl.sparse_hessian(g))):
        for x in (np.array([1.0, -1.0, 2.0]), np.array([-1.0, 1.0, 2.0])):
            H = fn(x)
            np.testing.assert_array_equal(H.toarray() if hasattr(H, "toarray") else H, jl.hessian(g, x))


def test_a_sparse_jacobian_of_traced_entries_is_refused_naming_the_dense_one():
    g = lambda z: jl.sparse_jacobian(lambda w: np.sin(w) * z, W0).toarray()
    with pytest.raises(NotImplementedError, match=r"scipy\.sparse matrix cannot hold\. Use jl\.jacobian"):
        jl.jacobian(g, np.ones(3))


def test_the_gradient_sweep_frees_what_it_has_passed():
    """Forward over reverse kept every record of f's tape, with the pass's tangents of its values, alive to the end
    of the sweep: twice the peak memory of the same pass through jl.grad, whose one sweep frees them as it goes."""
    import tracemalloc

    x = RNG.standard_normal(400)
    peaks = []
    for hessian in (jl.hessian(rosenbrock), jl.jacfwd(jl.grad(rosenbrock))):
        hessian(x)
        tracemalloc.start()
        H = hessian(x)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        np.testing.assert_allclose(H, rosenbrock_hessian(x), rtol=1e-12, atol=1e-9)
    assert peaks[0] <= 1.1 * peaks[1], peaks
