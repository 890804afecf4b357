"""Derivatives taken inside derivatives: jl.jacfwd(jl.grad(f)), grad of a loss that holds a gradient, ...

The references are analytic (exp(a x), whose every derivative is a power of a
times itself), or central differences of the inner derivative evaluated at
plain points, where it does not nest.
"""
import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import jacobian_lab as jl
from helpers import FD_RTOL, assert_close, central_differences

A = np.array([0.5, -1.5, 2.0])
X = np.array([0.3, -0.8, 1.1])


def exp_sum(x):
    return np.sum(np.exp(A * x))  # gradient A e^(Ax); k-th derivative A^k e^(Ax) on the diagonal


def _diagonal(values, order):
    """The order-`order` derivative tensor of `exp_sum`: `values` where every index is equal."""
    T = np.zeros((values.size,) * order)
    T[(np.arange(values.size),) * order] = values
    return T


INNER = {"grad": jl.grad, "jacrev": jl.jacrev, "jacfwd": jl.jacfwd, "jacobian": jl.jacobian}
OUTER = {"jacfwd": jl.jacfwd, "jacrev": jl.jacrev, "jacobian": jl.jacobian}


@pytest.mark.parametrize("outer", OUTER.values(), ids=OUTER.keys())
@pytest.mark.parametrize("inner", INNER.values(), ids=INNER.keys())
def test_a_jacobian_of_a_gradient_is_the_hessian(inner, outer):
    H = outer(inner(exp_sum))(X)
    assert_close(H, _diagonal(A ** 2 * np.exp(A * X), 2), 1e-14)


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_third_and_fourth_derivatives_nest_further(order):
    third = jl.jacobian(jl.hessian(exp_sum, mode=order), mode=order)(X)
    assert_close(third, _diagonal(A ** 3 * np.exp(A * X), 3), 1e-14)
    fourth = jl.jacrev(jl.jacfwd(jl.jacrev(jl.grad(exp_sum))))(X)
    assert_close(fourth, _diagonal(A ** 4 * np.exp(A * X), 4), 1e-14)


@pytest.mark.parametrize("outer", ["forward", "reverse"])
@pytest.mark.parametrize("inner", ["forward", "reverse"])
def test_each_derivative_keeps_its_own_perturbation(inner, outer):
    """d/dx [x d/dy (x + y)] = 1: a derivative that confused the two would give 2 (Siskind and Pearlmutter)."""
    def f(x):
        return x * jl.jacobian(lambda y: x + y, mode=inner)(np.ones(1))[:, 0]

    np.testing.assert_array_equal(jl.jacobian(f, mode=outer)(np.ones(1)), [[1.0]])


def test_a_gradient_penalty_is_differentiated():
    """A loss holding the gradient of another function of the parameters (a WGAN-GP penalty)."""
    def penalty(w, z):
        return np.sum(w ** 2) + np.sum(jl.grad(lambda z: np.sum(np.tanh(w * z)))(z) ** 2)

    def by_hand(w, z):  # the inner gradient written out: w (1 - tanh(w z)^2)
        return np.sum(w ** 2) + np.sum((w * (1 - np.tanh(w * z) ** 2)) ** 2)

    w = np.array([0.7, -0.2, 1.3])
    assert_close(jl.grad(penalty)(w, X), central_differences(lambda w: by_hand(w, X), w), FD_RTOL)
    assert_close(jl.grad(penalty, argnums=1)(w, X), central_differences(lambda z: by_hand(w, z), X), FD_RTOL)


INSIDE = {  # derivatives whose directions depend on x, as functions of x; each also runs at plain points
    "jvp along sin x": lambda x: jl.jvp(lambda y: np.sin(y) * y[::-1], x, np.sin(x))[1],
    "k tangents": lambda x: jl.jvp(np.tanh, x, np.stack([x, x ** 2]))[1].ravel(),
    "pullback of x": lambda x: jl.vjp(lambda y: np.exp(y) * np.sum(y), x)[1](x),
    "a traced direction at a plain point": lambda x: jl.jvp(lambda y: np.sin(y) * y[::-1], np.ones(3), x)[1],
    "a traced cotangent at a plain point": lambda x: jl.vjp(lambda y: np.exp(y) * np.sum(y), np.ones(3))[1](x),
    "hvp along x": lambda x: jl.hvp(exp_sum, x, x),
    "value_and_grad": lambda x: jl.value_and_grad(lambda y: np.sum(y ** 3) * y[0])(x)[1] * x,
    "a tree and argnums": lambda x: jl.grad(lambda p, s: np.sum(p["a"] ** 2 * p["b"]) * s)({"a": x, "b": x[::-1]},
                                                                                          2.0)["b"],
    "jit of grad": lambda x: jl.jit(jl.grad(exp_sum))(x) * x,
}


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("g", INSIDE.values(), ids=INSIDE.keys())
def test_derivatives_inside_f_are_differentiated(g, mode):
    assert_close(jl.jacobian(g, mode=mode)(X), central_differences(g, X), FD_RTOL)


def test_compiled_and_sparse_jacobians_of_a_nested_gradient_match_the_eager_one():
    g = jl.grad(lambda x: np.sum(np.sin(x) * x[::-1]) + exp_sum(x))
    compiled, sparse = jl.jit(jl.jacobian(g)), jl.sparse_jacobian(g)
    for x in (X, X + 0.25):  # the second call replays the program, and keeps the coloring
        np.testing.assert_array_equal(compiled(x), jl.jacobian(g)(x))
        np.testing.assert_array_equal(sparse(x).toarray(), jl.jacobian(g)(x))


def test_the_passes_of_a_derivative_inside_f_run_in_turn():
    """An executor, batch_size and max_memory inside: the passes extend the enclosing trace one by one."""
    def g(x, **options):
        return np.sum(jl.jacobian(lambda y: np.sin(y) * y[::-1], x, mode="forward", **options) ** 2)

    reference = jl.grad(g)(X)
    with ThreadPoolExecutor(2) as pool:
        np.testing.assert_array_equal(jl.grad(lambda x: g(x, executor=pool, batch_size=1))(X), reference)
    assert_close(reference, central_differences(g, X), FD_RTOL)


@pytest.mark.parametrize("batch_size", [None, 1, 2])
@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_work_inside_f_is_predicted_in_the_phase_that_counts_it(mode, batch_size):
    """The inner gradient's sweep counts as "cotangent" work, its forward passes as "tangent", in every pass that
    evaluates f; the prediction places it there too."""
    def g(x):
        return jl.grad(lambda y: np.sum(np.sin(y) * y ** 2))(x) * jl.jvp(np.exp, x, x)[1]

    predicted = jl.predict(g, X)
    measured = jl.measure(g, X, mode=mode, batch_size=batch_size, repeat=1)
    assert measured.cost == predicted.cost(mode, batch_size)
    inner = dict(predicted.inside)
    assert set(inner) == {"tangent", "cotangent"} and predicted.primal == jl.count_flops(g, X)


def test_count_flops_of_f_counts_the_derivatives_it_takes():
    """Evaluating grad(f) is f's tape and one sweep: what the reverse-mode Jacobian of scalar f costs; a jvp is
    one forward pass of one seed."""
    p = jl.predict(exp_sum, X)
    assert jl.count_flops(jl.grad(exp_sum), X) == p.total("reverse")
    assert jl.count_flops(lambda x: jl.jvp(exp_sum, x, x)[1], X) == p.primal + p.tangent.fixed + p.tangent.per_seed


REFUSED = {
    "count_flops": lambda x: jl.count_flops(np.sin, x).flops,
    "predict": lambda x: jl.predict(np.sin, x).primal.flops,
    "sparse_jacobian": lambda x: jl.sparse_jacobian(np.sin, x).nnz,
    "sparsity": lambda x: jl.sparsity(np.sin, x).nnz,
    "jit of sparse_jacobian": lambda x: jl.jit(jl.sparse_jacobian(np.sin))(x).nnz,
}


@pytest.mark.parametrize("call", REFUSED.values(), ids=REFUSED.keys())
def test_what_does_not_nest_is_refused_by_name(call):
    with pytest.raises(NotImplementedError, match=r"this call runs inside another derivative, where jacobian, "
                                                  r".* nest .* but counting, .* do not; call them on the outer"):
        jl.grad(lambda x: np.sum(x) * call(x))(X)


@pytest.mark.parametrize("inner", ["auto", "reverse", "forward"])
def test_a_compiled_jacobian_of_an_inner_jacobian_replays_at_another_x(inner):
    """Auto mode inside probes the tape it records, which stages the factors its sweeps then use: a compiled
    recording saw none of that work (it ran in a count of its own) and kept those factors as constants, so the
    replay at another x was wrong (0.1 off), with no warning."""
    def g(x):
        return jl.jacobian(lambda y: np.sum(np.sin(y[:, None] * y)), mode=inner)(x)

    compiled = jl.jit(jl.jacfwd(g))
    for x in (np.array([0.2, -0.5, 0.7, 0.1]), np.array([0.3, -0.4, 0.6, 0.05])):
        np.testing.assert_array_equal(compiled(x), jl.jacfwd(g)(x))
    assert compiled.compiles == 1

    def gradient(y):  # of sum(sin(y_i y_j)), by hand
        return 2 * np.cos(np.outer(y, y)) @ y

    assert_close(compiled(X), central_differences(gradient, X), FD_RTOL)


def test_an_inner_auto_mode_takes_its_order_from_shapes_on_every_call():
    """Inside another derivative, auto mode takes reverse where f has fewer outputs than inputs, else forward,
    on the tape it records. Its FLOP prediction probed traced values (counted on a first call only: count_flops
    of one f changed from call to call) and counted the enclosing derivative's work on values f reads from it,
    so the order followed the enclosing derivative's, and predict disagreed with measure."""
    def wide(y):  # 3 -> 1: reverse
        return np.sum(np.sin(y) * np.cos(y[::-1]))

    def tall(y):  # 3 -> 3: forward, as on a tie
        return np.sin(y) * np.cos(y[::-1]) + np.tanh(y)

    jl.prediction.clear_cache()
    for F, order in ((wide, "reverse"), (tall, "forward")):
        g = lambda x: jl.jacobian(F)(x)  # noqa: E731
        taken = jl.count_flops(lambda x: jl.jacobian(F, mode=order)(x), X)
        assert jl.count_flops(g, X) == jl.count_flops(g, X) == taken

    def closing_over(w):  # a plain z, and w of the enclosing derivative read from a closure
        return jl.jacobian(lambda z: np.sin(w * z) * np.cos(z[::-1]))(X[::-1]) @ w

    for g in (lambda x: jl.jacobian(tall)(x), closing_over):
        predicted = jl.predict(g, X)
        for mode in ("forward", "reverse", "auto"):
            for batch_size in (None, 1):
                measured = jl.measure(g, X, mode=mode, batch_size=batch_size, repeat=1).cost
                assert measured == predicted.cost(mode, batch_size), (mode, batch_size)


@pytest.mark.parametrize("make", [jl.jacobian, jl.jacrev, jl.jacfwd], ids=["jacobian", "jacrev", "jacfwd"])
def test_a_compiled_function_inside_a_derivative_sees_what_f_closes_over(make):
    """At a plain x, with f reading the enclosing derivative's traced w from a closure, a compiled function
    replayed the program it had built at a plain w, w a constant in it (the derivative in w dropped, no
    warning), or failed naming sparse_jacobian; inside any traced evaluation it now runs uncompiled."""
    params = {"w": np.array([0.7, -0.2, 1.3])}

    def inner(z):
        return np.tanh(params["w"] * z) * z[::-1]

    compiled = jl.jit(make(inner))
    compiled(X)  # a program built at the plain w

    def loss(w, derivative):
        params["w"] = w
        return np.sum(w ** 2) + np.sum(derivative(X) ** 2)

    w0 = params["w"].copy()
    with_jit = jl.grad(lambda w: loss(w, compiled))(w0)
    np.testing.assert_array_equal(with_jit, jl.grad(lambda w: loss(w, make(inner)))(w0))
    np.testing.assert_array_equal(jl.grad(lambda w: loss(w, jl.jit(make(inner))))(w0), with_jit)
    params["w"] = w0
    sparse = jl.jit(jl.sparse_jacobian(inner))
    sparse(X)  # replayed inside, its program dropped the derivative in w where the eager one refuses
    with pytest.raises(NotImplementedError, match="sparse_jacobian inside another derivative"):
        jl.grad(lambda w: loss(w, lambda z: sparse(z).toarray()))(w0)
    by_hand = central_differences(lambda w: loss(w, lambda z: central_differences(inner, z, step=1e-5)), w0)
    assert_close(with_jit, by_hand, 1e-5)


def _levi_civita(n):
    """ε of each index tuple of length n: the sign of the permutation, 0 where an index repeats."""
    eps = np.zeros((n,) * n)
    for p in itertools.permutations(range(n)):
        eps[p] = np.linalg.det(np.eye(n)[list(p)])
    return eps


@pytest.mark.parametrize("order", [(jl.jacfwd, "forward"), (jl.jacrev, "reverse"), (jl.jacrev, "forward")],
                         ids=["forward over forward over reverse", "reverse over reverse over reverse",
                              "reverse over forward over reverse"])
def test_det_has_third_and_fourth_derivatives(order):
    """They were refused (det's Hessian is the cofactor matrix's derivative, which had no rule of its own). det
    of an n×n matrix is a sum of products of n entries, one per row and column, so its n-th derivative is
    ε_rows ε_columns: the third of a 3×3 det, the fourth of a 4×4 one; the third of a 2×2 det is 0."""
    outer, mode = order
    rng = np.random.default_rng(3)
    for n, derivative in ((3, lambda f: outer(jl.hessian(f, mode=mode))),
                          (4, lambda f: jl.jacfwd(outer(jl.hessian(f, mode=mode)))),
                          (2, lambda f: outer(jl.hessian(f, mode=mode)))):
        x = rng.standard_normal(n * n)
        T = derivative(lambda v: np.linalg.det(v.reshape(n, n)))(x)
        if n == 2:
            assert_close(T, np.zeros((4, 4, 4)), 1e-11)
            continue
        eps = _levi_civita(n)  # T[(i1, j1), ..., (in, jn)] = ε(i1..in) ε(j1..jn)
        expected = np.einsum(eps, list(range(n)), eps, list(range(n, 2 * n)),
                             [k for i in range(n) for k in (i, n + i)]).reshape((n * n,) * n)
        assert_close(T, expected, 1e-12)


def test_a_compiled_derivative_records_what_runs_inside_a_count():
    """A Chain's Jacobian counts its products in a counting block of its own, which jit's recording did not see:
    the program kept what the block computed from w as constants, 0.73 off at another w, with no warning."""
    def g(w):
        return jl.Chain([lambda z: w * z, np.sin, lambda z: z * w[::-1]]).jacobian(X) @ w

    compiled = jl.jit(jl.jacobian(g))
    for w in (np.array([0.7, -0.2, 1.3]), np.array([0.5, 0.1, 1.0])):
        np.testing.assert_array_equal(compiled(w), jl.jacobian(g)(w))
        assert_close(compiled(w), central_differences(g, w), FD_RTOL)
    assert compiled.compiles == 1


def test_det_third_derivative_is_refused_near_a_singular_matrix():
    """Through a⁻¹ it lost every digit there (2e17 off at a rank-2 3×3 matrix, where it is ε ε) or raised NumPy's
    LinAlgError; it is refused by name, as other derivatives that do not hold are."""
    rng = np.random.default_rng(0)
    for a in (np.arange(1.0, 10.0).reshape(3, 3), rng.standard_normal((3, 2)) @ rng.standard_normal((2, 3))):
        with pytest.raises(jl.DerivativeError, match=r"det's third derivative .* a is singular or nearly so"):
            jl.jacfwd(jl.hessian(lambda v: np.linalg.det(v.reshape(3, 3))))(a.ravel())
    np.testing.assert_allclose(jl.hessian(lambda v: np.linalg.det(v.reshape(3, 3)))(a.ravel())[0, 4],
                               a[2, 2], rtol=1e-12)  # its Hessian stays defined there: ∂²det/∂a00∂a11 = a22


def test_stop_gradient_holds_values_constant_in_every_enclosing_derivative():
    """As jax.lax.stop_gradient: d/dx of x·c is c, and its Hessian is 0 where c = sg(x); trees keep their structure."""
    def f(x):
        return np.sum(x ** 2 * jl.stop_gradient(x))

    np.testing.assert_array_equal(jl.grad(f)(X), 2 * X * X)
    np.testing.assert_array_equal(jl.hessian(f)(X), np.diag(2 * X))  # sg(x) is 0 in the second derivative too
    np.testing.assert_array_equal(jl.hessian(f, mode="reverse")(X), np.diag(2 * X))
    compiled = jl.jit(jl.grad(f))
    for x in (X, X + 0.5):
        np.testing.assert_array_equal(compiled(x), 2 * x * x)
    plain = {"a": X, "b": [1.0]}
    assert jl.stop_gradient(plain)["a"] is X and jl.stop_gradient(plain)["b"] == [1.0]


def test_first_order_maml_through_stop_gradient():
    """The inner step's gradient held constant: the outer gradient is the validation loss's at the adapted
    parameters, with no second-order term (here a least-squares loss, its gradient by hand)."""
    rng = np.random.default_rng(0)
    A, y = rng.standard_normal((8, 3)), rng.standard_normal(8)

    def loss(p, A, y):
        return np.mean((A @ p["w"] + p["b"] - y) ** 2)

    def outer(p):
        g = jl.stop_gradient(jl.grad(loss)(p, A[:4], y[:4]))
        return loss({k: p[k] - 0.1 * g[k] for k in p}, A[4:], y[4:])

    p = {"w": rng.standard_normal(3), "b": np.array(0.3)}
    r = A[:4] @ p["w"] + p["b"] - y[:4]
    q = {"w": p["w"] - 0.1 * A[:4].T @ r / 2, "b": p["b"] - 0.1 * np.mean(r) * 2}  # one step of 2/N Aᵀ r
    s = A[4:] @ q["w"] + q["b"] - y[4:]
    g = jl.grad(outer)(p)
    assert_close(g["w"], A[4:].T @ s / 2, 1e-14)
    assert_close(g["b"], 2 * np.mean(s), 1e-14)
