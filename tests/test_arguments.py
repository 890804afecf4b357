"""argnums and has_aux, as JAX's: derivatives in several arguments, and values returned beside them."""
import collections
import dataclasses
import inspect
import re
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab.arguments import Bound
from jacobian_lab.tracing import Tracer

from helpers import assert_fd_close, central_differences

RNG = np.random.default_rng(7)
W, X = RNG.standard_normal((3, 4)), RNG.standard_normal(4)


def layer(w, x, scale=1.0):
    return scale * np.tanh(w @ x)


def layer_in_x(w, x):
    """d layer / d x, by hand: diag(1 - t^2) W."""
    t = np.tanh(w @ x)
    return (1 - t ** 2)[:, None] * w


def layer_in_w(w, x):
    """d layer / d w, by hand: out_i depends on row i of w alone."""
    t = np.tanh(w @ x)
    J = np.zeros((3, 3, 4))
    for i in range(3):
        J[i, i] = (1 - t[i] ** 2) * x
    return J


@pytest.fixture(scope="module", autouse=True)
def _threads_shut_down():
    yield
    THREADS.shutdown()


THREADS = ThreadPoolExecutor(2)
JACOBIANS = [jl.jacfwd, jl.jacrev, lambda f, *a, **k: jl.jacobian(f, *a, mode="auto", **k)]
JACOBIAN_IDS = ["jacfwd", "jacrev", "auto"]


@pytest.mark.parametrize("make", JACOBIANS, ids=JACOBIAN_IDS)
@pytest.mark.parametrize("argnums", [1, -1])
def test_argnums_differentiates_one_argument_holding_the_others(make, argnums):
    np.testing.assert_allclose(make(layer, argnums=argnums)(W, X), layer_in_x(W, X), rtol=1e-13)
    np.testing.assert_allclose(make(layer)(W, X), layer_in_w(W, X), rtol=1e-13)  # argnums=0 by default


@pytest.mark.parametrize("make", JACOBIANS, ids=JACOBIAN_IDS)
@pytest.mark.parametrize("argnums", [(1, 0), [1, 0]], ids=["tuple", "list"])
def test_a_sequence_of_argnums_gives_a_tuple_of_jacobians(make, argnums):
    J = make(layer, argnums=argnums)(W, X)
    assert isinstance(J, tuple) and len(J) == 2
    np.testing.assert_allclose(J[0], layer_in_x(W, X), rtol=1e-13)
    np.testing.assert_allclose(J[1], layer_in_w(W, X), rtol=1e-13)


def test_a_tuple_of_argnums_nests_inside_a_structured_output():
    f = lambda w, x: {"out": np.tanh(w @ x), "norm": np.sum(x ** 2)}
    J = jl.jacrev(f, argnums=(0, 1))(W, X)
    np.testing.assert_allclose(J["out"][1], layer_in_x(W, X), rtol=1e-13)
    np.testing.assert_allclose(J["norm"][1], 2 * X, rtol=1e-13)
    np.testing.assert_array_equal(J["norm"][0], np.zeros((3, 4)))


def test_keyword_arguments_pass_to_f_undifferentiated():
    np.testing.assert_allclose(jl.jacrev(layer, argnums=1)(W, X, scale=3.0), 3 * layer_in_x(W, X), rtol=1e-13)


def test_grad_in_several_arguments_matches_finite_differences():
    A, b, w = RNG.standard_normal((5, 3)), RNG.standard_normal(5), RNG.standard_normal(3)

    def loss(w, A, b):
        return np.mean((A @ w - b) ** 2)

    g_w, g_b = jl.grad(loss, argnums=(0, 2))(w, A, b)
    assert_fd_close(g_w, central_differences(lambda v: loss(v, A, b), w))
    assert_fd_close(g_b, central_differences(lambda v: loss(w, A, v), b))
    np.testing.assert_allclose(g_w, 2 * A.T @ (A @ w - b) / 5, rtol=1e-13)


def test_lists_of_numbers_stay_separate_arguments_in_a_tuple_of_argnums():
    g = jl.grad(lambda a, b: np.sum(np.asarray(a) * b), argnums=(0, 1))([1.0, 2.0], 3.0)
    np.testing.assert_array_equal(g[0], [3.0, 3.0])
    np.testing.assert_array_equal(g[1], 3.0)


def test_value_and_grad_in_a_second_argument():
    value, g = jl.value_and_grad(lambda w, x: np.sum(w @ x), argnums=1)(W, X)
    assert value == pytest.approx(np.sum(W @ X))
    np.testing.assert_allclose(g, W.sum(axis=0), rtol=1e-13)


def test_hessian_blocks_of_two_arguments_match_the_closed_form():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    f = lambda a, b: np.sum(a ** 2 * b) + a[0] ** 3  # H_aa = diag(2b) + 6 a_0 e_0 e_0^T, H_ab = diag(2a), H_bb = 0
    H = jl.hessian(f, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(H[0][0], np.diag(2 * b) + np.diag([6 * a[0], 0.0]), rtol=1e-13)
    np.testing.assert_allclose(H[0][1], np.diag(2 * a), rtol=1e-13)
    np.testing.assert_allclose(H[1][0], np.diag(2 * a), rtol=1e-13)
    np.testing.assert_array_equal(H[1][1], np.zeros((2, 2)))
    np.testing.assert_allclose(jl.hessian(f, argnums=1)(a, b), np.zeros((2, 2)))


def metrics(w, x):
    """A loss with what a training loop logs beside it: a dict, a namedtuple and an array of traced scalars."""
    out = np.tanh(w @ x)
    Stats = collections.namedtuple("Stats", "mean peak")
    return np.sum(out ** 2), {"out": out, "stats": Stats(np.mean(out), np.max(out)), "pair": np.array([out[0], 2.0])}


def expected_aux(w, x):
    out = np.tanh(w @ x)
    return {"out": out, "stats": (np.mean(out), np.max(out)), "pair": np.array([out[0], 2.0])}


def assert_plain_aux(aux, w, x):
    """aux holds f's values as plain arrays, in f's structure."""
    expected = expected_aux(w, x)
    assert not any(isinstance(v, Tracer) for v in (aux["out"], *aux["stats"], aux["pair"]))
    assert type(aux["stats"]).__name__ == "Stats"
    np.testing.assert_allclose(aux["out"], expected["out"], rtol=1e-15)
    np.testing.assert_allclose(aux["stats"], expected["stats"], rtol=1e-15)
    assert aux["pair"].dtype == np.float64
    np.testing.assert_allclose(aux["pair"], expected["pair"], rtol=1e-15)


def loss_grad_in_w(w, x):
    t = np.tanh(w @ x)
    return (2 * t * (1 - t ** 2))[:, None] * x[None, :]


@pytest.mark.parametrize("make", [jl.grad, jl.jacrev, jl.jacfwd,
                                  lambda f, **k: jl.jacfwd(f, batch_size=1, **k),
                                  lambda f, **k: jl.jacobian(f, mode="auto", **k),
                                  lambda f, **k: jl.jacfwd(f, executor=THREADS, batch_size=1, **k)],
                         ids=["grad", "jacrev", "jacfwd", "jacfwd-one-seed-per-pass", "auto", "threads"])
def test_has_aux_returns_the_derivative_and_fs_values(make):
    J, aux = make(metrics, has_aux=True)(W, X)
    np.testing.assert_allclose(J, loss_grad_in_w(W, X), rtol=1e-12)
    assert_plain_aux(aux, W, X)


def test_value_and_grad_with_aux_nests_as_jax():
    (value, aux), g = jl.value_and_grad(metrics, argnums=0, has_aux=True)(W, X)
    assert value == pytest.approx(np.sum(np.tanh(W @ X) ** 2))
    np.testing.assert_allclose(g, loss_grad_in_w(W, X), rtol=1e-12)
    assert_plain_aux(aux, W, X)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_hessian_with_aux(mode):
    x = np.array([0.5, -1.0])
    H, aux = jl.hessian(lambda v: (np.sum(v ** 3), {"v2": v ** 2}), mode=mode, has_aux=True)(x)
    np.testing.assert_allclose(H, np.diag(6 * x), rtol=1e-14)
    assert not isinstance(aux["v2"], Tracer)
    np.testing.assert_array_equal(aux["v2"], x ** 2)


@dataclasses.dataclass(frozen=True)
class _Stats:
    activations: object
    count: int = 0
    later: object = dataclasses.field(init=False, default=None)


@pytest.mark.parametrize("make", [jl.grad, jl.jacfwd, jl.hessian], ids=["grad", "jacfwd", "hessian"])
def test_a_dataclass_aux_comes_back_with_plain_arrays(make):
    """It came back holding the evaluation's traced values, which failed at their first use."""
    x = np.array([0.3, -0.7, 1.2])
    _, aux = make(lambda v: (np.sum(v ** 3), _Stats(np.sin(v), 3)), has_aux=True)(x)
    assert type(aux) is _Stats and type(aux.activations) is np.ndarray and aux.count == 3
    np.testing.assert_array_equal(aux.activations * 2.0, 2.0 * np.sin(x))


def test_vjp_and_jvp_with_aux_return_it_last_as_jax():
    x = np.array([1.0, 2.0])
    y, pullback, aux = jl.vjp(lambda v: (v ** 2, v.sum()), x, has_aux=True)
    np.testing.assert_array_equal(pullback(np.ones(2)), 2 * x)
    assert float(aux) == 3.0 and not isinstance(aux, Tracer)
    y, y_dot, aux = jl.jvp(lambda v: (v ** 2, [v[0]]), x, np.ones(2), has_aux=True)
    np.testing.assert_array_equal(y_dot, 2 * x)
    assert aux == [1.0] and not isinstance(aux[0], Tracer)


def _weighted(w, x):
    return np.sum(w * x), 3.0 * w * x  # aux depends on both arguments


AUX_OF_AN_ENCLOSING_TRACE = {  # f's aux as a function of x, inside a derivative in w
    "grad, argnums": lambda x: jl.grad(_weighted, has_aux=True)(W2, x)[1],
    "vjp, x closed over": lambda x: jl.vjp(lambda w: _weighted(w, x), W2, has_aux=True)[2],
    "jvp, x closed over": lambda x: jl.jvp(lambda w: _weighted(w, x), W2, np.ones(2), has_aux=True)[2],
    "hessian, argnums": lambda x: jl.hessian(_weighted, has_aux=True)(W2, x)[1],
}
W2 = np.array([1.0, 2.0])


@pytest.mark.parametrize("make", AUX_OF_AN_ENCLOSING_TRACE.values(), ids=AUX_OF_AN_ENCLOSING_TRACE)
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_aux_computed_from_an_enclosing_derivatives_values_keeps_that_derivative(make, mode):
    """A derivative inside f drops its own traces from aux, not those of the derivative around it."""
    J = jl.jacobian(make, np.array([0.5, 1.5]), mode=mode)
    np.testing.assert_array_equal(J, np.diag(3.0 * W2))


def test_vjp_aux_is_the_callers_to_change():
    """aux holds copies: zeroing it leaves the pullback, which reads the same values on its tape, as it was."""
    def f(x):
        r = np.sin(x)
        return np.sum(r ** 2), r

    x = np.array([0.1, 0.5, 1.0])
    _, pullback, aux = jl.vjp(f, x, has_aux=True)
    aux[:] = 0.0
    np.testing.assert_allclose(pullback(1.0), 2 * np.sin(x) * np.cos(x), rtol=1e-15)


def test_has_aux_false_of_any_kind_returns_what_jvp_and_vjp_return_without_it():
    x = np.ones(2)
    assert len(jl.vjp(np.sin, x, has_aux=np.False_)) == len(jl.jvp(np.sin, x, x, has_aux=np.False_)) == 2
    for call in (lambda: jl.vjp(np.sin, x, has_aux=1), lambda: jl.jvp(np.sin, x, x, has_aux="yes")):
        with pytest.raises(TypeError, match="has_aux(, which)? must be True or False"):
            call()


def test_aux_of_passes_run_elsewhere_comes_from_an_evaluation_here():
    bound = Bound(metrics, (W, X), {}, 0, True, "grad")
    assert not bound.seen  # no pass ran here: the aux is evaluated
    assert_plain_aux(bound.aux_value(), W, X)


@pytest.mark.parametrize("bad, error, message", [
    ({"argnums": "0"}, TypeError, r"argnums must be an int or a sequence of ints, got '0'"),
    ({"argnums": True}, TypeError, r"argnums must be an int or a sequence of ints"),
    ({"argnums": (0, 0)}, ValueError, r"argnums must name each argument once"),
    ({"argnums": ()}, ValueError, r"argnums must name each argument once, and at least one"),
    ({"has_aux": 1}, TypeError, r"has_aux must be True or False, got 1"),
])
def test_bad_options_are_refused_when_the_function_is_built(bad, error, message):
    for make in (jl.grad, jl.jacrev, jl.jacfwd, jl.value_and_grad, jl.hessian):
        with pytest.raises(error, match=message):
            make(layer, **bad)


@pytest.mark.parametrize("x", [np.ones(3), 0.5, [0.1, 0.2], {"w": np.ones(2)}], ids=["array", "float", "list", "dict"])
def test_x_passed_where_argnums_goes_is_refused_naming_the_call_that_takes_it(x):
    """jl.jacobian(f, x) and jl.hessian(f, x) take x, so jl.grad(f, x) is tried too: it said only that argnums must
    be an int."""
    for make in (jl.grad, jl.value_and_grad, jl.jacfwd, jl.jacrev):
        with pytest.raises(TypeError, match=r"argnums must be an int .*; if that is x: .* as jl\.grad\(f\)\(x\)"):
            make(np.sum, x)


def test_arguments_that_argnums_does_not_find_are_refused():
    with pytest.raises(TypeError, match=r"argnums=2, which needs at least 3 positional arguments, got 2"):
        jl.jacrev(layer, argnums=2)(W, X)
    with pytest.raises(TypeError, match=r"argnums=-3, which needs at least 3 positional arguments, got 2"):
        jl.jacrev(layer, argnums=-3)(W, X)
    with pytest.raises(ValueError, match=r"argnums=\(1, -1\) names one argument twice among 2 arguments"):
        jl.jacrev(layer, argnums=(1, -1))(W, X)
    with pytest.raises(TypeError, match=r"grad\(layer\) differentiates f's positional arguments, got none; pass x"):
        jl.grad(layer)()
    with pytest.raises(TypeError, match=r"got none \(w, x by keyword, which pass to f undifferentiated\); pass x "
                                        r"positionally"):
        jl.jacrev(layer)(w=W, x=X)


def test_has_aux_without_a_pair_is_refused_naming_what_f_returned():
    with pytest.raises(TypeError, match=r"has_aux=True f must return a pair \(output, aux\), got an array of "
                                        r"shape \(\); return \(output, aux\), or drop has_aux"):
        jl.grad(lambda v: np.sum(v), has_aux=True)(np.ones(2))
    with pytest.raises(TypeError, match=r"got a tuple of 3"):
        jl.jacrev(lambda v: (v, v, v), has_aux=True)(np.ones(2))


def test_jit_refuses_aux_and_a_hessian_in_a_tuple_of_argnums():
    with pytest.raises(TypeError, match="no aux to return"):
        jl.jit(jl.grad(metrics, has_aux=True))
    with pytest.raises(TypeError, match=r"beside one array x, and x here is a tuple: ravel the parameters"):
        jl.jit(jl.hessian(lambda w, x: np.sum(w * x), argnums=(0,)))(W, X)


def test_jit_in_argnums_takes_the_other_arguments_at_each_call():
    jac = jl.jit(jl.jacrev(layer, argnums=1))
    for w in (W, 2 * W):
        np.testing.assert_allclose(jac(w, X), layer_in_x(w, X), rtol=1e-12)
    assert jac.compiles == 1


def test_reprs_show_the_options_that_are_set():
    assert repr(jl.jacrev(layer, argnums=1)) == "jacrev(layer, argnums=1)"
    assert repr(jl.grad(layer, argnums=(0, 1), has_aux=True)) == "grad(layer, argnums=(0, 1), has_aux=True)"
    assert repr(jl.value_and_grad(layer, has_aux=True)) == "value_and_grad(layer, has_aux=True)"
    assert repr(jl.hessian(layer, mode="reverse", argnums=1)) == "hessian(layer, mode='reverse', argnums=1)"
    assert repr(jl.jacfwd(layer)) == "jacfwd(layer)"


def test_jaxs_tuple_of_primals_gets_a_note_on_the_one_argument_f_is_passed():
    f = lambda a, b: a * b  # noqa: E731
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="missing 1 required positional argument") as info:
        jl.jvp(f, (x, x), (x, x))
    assert "jl.jvp(lambda p: f(*p), (a, b), (a_dot, b_dot))" in info.value.__notes__[0]
    y, y_dot = jl.jvp(lambda p: f(*p), (x, 2 * x), (x, x))  # the note's call
    np.testing.assert_array_equal(y_dot, 3 * x ** 2)  # ȧ b + a ḃ = x · 2x + x · x
    for call in (jl.jacobian(f), jl.grad(lambda a, b: np.sum(a * b)), jl.hessian(lambda a, b: np.sum(a * b))):
        with pytest.raises(TypeError, match="missing 1 required positional argument") as info:
            call((x, x))
        assert info.value.__notes__ == [info.value.__notes__[0]] and "argnums=(0, 1)" in info.value.__notes__[0]
    np.testing.assert_array_equal(jl.grad(lambda a, b: np.sum(a * b), argnums=(0, 1))(x, 2 * x)[1], x)  # as noted


def test_jaxs_call_of_a_function_of_one_array_warns_that_f_gets_the_tuple():
    """jax.jvp(f, (x,), (v,)) is jl.jvp(f, x, v): the tuple reaches f whole, so f sees another input."""
    x, v = np.array([1.0, 2.0]), np.array([1.0, 0.0])
    with pytest.warns(UserWarning, match=r"write jl.jvp\(f, x, x_dot\)"):
        y, y_dot = jl.jvp(np.sin, (x,), (v,))
    with pytest.warns(UserWarning) as caught:
        jl.jvp(lambda p: (np.sin(p), 1.0), (x,), (v,), has_aux=True)
    assert len(caught) == 1 and caught[0].filename == __file__  # once, at the caller's line
    assert y.shape == (1, 2)  # np.sin of the tuple: what f computes on it, shaped as NumPy reads it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, y_dot = jl.jvp(np.sin, x, v)
        jl.jvp(lambda p: p[0] * p[1], (x, x), (v, v))  # a tuple of two is f's own structure
    np.testing.assert_array_equal(y_dot, np.cos(x) * v)
    with pytest.warns(UserWarning, match=r"a 1-element array when x is a number"):
        assert jl.jvp(lambda p: p, (3.0,), (1.0,))[0].shape == (1,)  # a tuple of numbers reads as an array


def test_vjp_of_two_arguments_as_jax_takes_them_names_vjps_one_x():
    f = lambda a, b: a * b  # noqa: E731
    x = np.array([1.0, 2.0])
    for b in (2 * x, 2):
        with pytest.raises(TypeError, match=rf"jl.vjp\(f, x\) takes one x.*type {type(b).__name__}.*jl.vjp\(lambda p"):
            jl.vjp(f, x, b)
    y, pullback = jl.vjp(lambda p: f(*p), (x, 2 * x))  # the call the message gives
    a_bar, b_bar = pullback(np.ones(2))
    np.testing.assert_array_equal(a_bar, 2 * x)
    np.testing.assert_array_equal(b_bar, x)


@pytest.mark.parametrize("argnums, position", [(1, 1), ((0, 2), 2), (-1, 2), ((2, 0), 2), ((2, 0), 0)])
def test_a_refused_argument_is_named_by_its_position_among_fs(argnums, position):
    x = np.array([1.0, 2.0])
    for bad, refusal in ((np.array([True, False]), "x must be a float array, got dtype bool"),
                         ({"k": "s"}, "x must be a float array, got str")):
        args = [x, x, x]
        args[position] = bad
        where = f"f's argument {position}" + ("['k']" if isinstance(bad, dict) else "")
        for derivative in (jl.jacrev, jl.hessian):
            with pytest.raises(TypeError, match=rf"^{re.escape(where)}: {refusal}"):
                derivative(lambda a, b, c: a * b, argnums=argnums)(*args)


@pytest.mark.parametrize("derivative, name", [(jl.hessian, "hessian"), (jl.jacobian, "jacobian")])
@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_jaxs_argnums_in_xs_place_names_argnums_by_keyword(derivative, name, argnums):
    f = lambda x, y: np.sum(x ** 2 * y)  # noqa: E731
    call = f"{name}(f, argnums={argnums!r})(x, y)"
    with pytest.raises(TypeError, match=rf"f takes 2 arguments \(x, y\).*{re.escape(call)}"):
        derivative(f, argnums)
    a, b = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    assert np.all(np.isfinite(np.asarray(derivative(f, argnums=argnums)(a, b), dtype=float)))  # the call it names


def test_an_integer_x_of_a_function_of_one_argument_is_a_point():
    assert jl.hessian(lambda x: x ** 3, 2) == 12.0
    assert jl.jacobian(lambda x, scale=2.0: scale * x ** 2, 1) == 4.0  # a second argument with a default


def test_a_wrapper_of_one_argument_around_a_function_of_two_is_a_point():
    import functools

    def bind_y(fn):
        @functools.wraps(fn)  # __wrapped__ has (x, y); the wrapper itself takes x alone
        def wrapper(x):
            return fn(x, 3.0)
        return wrapper

    f = bind_y(lambda x, y: x * y)
    assert jl.jacobian(f, 3) == 3.0 and jl.hessian(lambda x: f(x) ** 2, 1) == 18.0


def _loss(w, x, scale=1.0):
    return np.sum(w * x) * scale


@pytest.mark.parametrize("make", [
    jl.grad, jl.jacfwd, jl.jacrev, jl.jacobian, jl.value_and_grad, jl.hessian, jl.sparse_hessian,
    lambda f: jl.jacfwd(jl.grad(f)), lambda f: jl.jit(jl.grad(f)), lambda f: jl.jit(jl.hessian(f)),
], ids=["grad", "jacfwd", "jacrev", "jacobian", "value_and_grad", "hessian", "sparse_hessian", "jacfwd(grad)",
        "jit(grad)", "jit(hessian)"])
def test_a_derivative_function_shows_f_as_functools_wraps_does(make):
    """As JAX's transforms: f's name and signature (what logging, inspect and frameworks read), and its repr
    still says what it computes."""
    fun = make(_loss)
    assert (fun.__name__, fun.__qualname__, fun.__module__) == ("_loss", "_loss", __name__)
    assert str(inspect.signature(fun)) == "(w, x, scale=1.0)"
    assert "_loss" in repr(fun) and repr(fun) != "_loss"
    assert repr(jl.jacfwd(jl.grad(_loss))) == "jacfwd(grad(_loss))"
    assert repr(jl.jit(jl.jacfwd(jl.grad(_loss)))) == "jit(jacfwd(grad(_loss)))"
