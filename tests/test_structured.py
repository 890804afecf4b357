"""Structured inputs and outputs: nested tuples, lists and dicts of arrays (JAX's convention)."""
import numpy as np
import pytest

import jacobian_lab as jl

from helpers import central_differences

MODES = ["forward", "reverse", "auto"]
rng = np.random.default_rng(3)
W, B = rng.normal(size=(2, 3)), rng.normal(size=2)


def layer(params):
    return np.tanh(params["W"] @ params["x"] + params["b"])


PARAMS = {"W": W, "b": B, "x": rng.normal(size=3)}


def flat_reference(f, x_leaves, shapes):
    """Central differences of f over the concatenated leaves: an (m, n) matrix."""
    sizes = [int(np.prod(s)) for s in shapes]

    def g(v):
        parts = np.split(v, np.cumsum(sizes)[:-1])
        return np.ravel(f([p.reshape(s) for p, s in zip(parts, shapes)]))
    return central_differences(g, np.concatenate([np.ravel(a) for a in x_leaves]))


@pytest.mark.parametrize("mode", MODES)
def test_dict_input_gives_a_dict_of_blocks(mode):
    J = jl.jacobian(layer, PARAMS, mode=mode)
    assert set(J) == {"W", "b", "x"}
    assert J["W"].shape == (2, 2, 3) and J["b"].shape == (2, 2) and J["x"].shape == (2, 3)
    keys = ["W", "b", "x"]
    ref = flat_reference(lambda leaves: layer(dict(zip(keys, leaves))),
                         [PARAMS[k] for k in keys], [PARAMS[k].shape for k in keys])
    np.testing.assert_allclose(np.concatenate([J[k].reshape(2, -1) for k in keys], axis=1), ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_nested_tuple_and_list_input_and_tuple_output(mode):
    def f(args):
        a, (b, c) = args
        return (a * b, [np.sum(c * a[0]), c ** 2])

    x = (np.array([1.0, 2.0]), [np.array([3.0, -1.0]), np.array([[0.5, 0.25]])])
    J = jl.jacobian(f, x, mode=mode)
    assert isinstance(J, tuple) and isinstance(J[1], list)
    # output structure outside, input structure inside
    assert J[0][0].shape == (2, 2) and J[0][1][1].shape == (2, 1, 2)
    np.testing.assert_allclose(J[0][0], np.diag([3.0, -1.0]))
    np.testing.assert_allclose(J[0][1][0], np.diag([1.0, 2.0]))
    np.testing.assert_allclose(J[1][0][0], [0.75, 0.0])          # d sum(c * a0) / da
    np.testing.assert_allclose(J[1][1][1][1], np.diag([1.0, 0.5]).reshape(1, 2, 1, 2))  # d c**2 / dc
    np.testing.assert_allclose(J[1][1][0], np.zeros((1, 2, 2)))                       # d c**2 / da


@pytest.mark.parametrize("mode", MODES)
def test_flat_true_gives_one_matrix(mode):
    J = jl.jacobian(layer, PARAMS, mode=mode, flat=True)
    assert J.shape == (2, 6 + 2 + 3)
    J2 = jl.jacobian(lambda x: np.outer(x, x), np.arange(3.0), mode=mode, flat=True)
    assert J2.shape == (9, 3)


def test_jacfwd_jacrev_grad_accept_structures():
    f = lambda p: np.sum(p["W"] ** 2) + np.sum(p["b"])  # noqa: E731
    g = jl.grad(f)(PARAMS)
    np.testing.assert_allclose(g["W"], 2 * W)
    np.testing.assert_allclose(g["b"], np.ones(2))
    np.testing.assert_allclose(g["x"], np.zeros(3))
    Jf, Jr = jl.jacfwd(layer)(PARAMS), jl.jacrev(layer)(PARAMS)
    for k in PARAMS:
        np.testing.assert_allclose(Jf[k], Jr[k], rtol=1e-12, atol=1e-14)


def test_jvp_and_vjp_with_structures():
    tangent = {k: np.ones_like(v) for k, v in PARAMS.items()}
    y, y_dot = jl.jvp(layer, PARAMS, tangent)
    J = jl.jacobian(layer, PARAMS, flat=True)
    np.testing.assert_allclose(y_dot, J @ np.ones(J.shape[1]), rtol=1e-12)
    y, pullback = jl.vjp(lambda p: (layer(p), p["b"] * 2), PARAMS)
    x_bar = pullback((np.array([1.0, 0.0]), np.array([0.0, 1.0])))
    assert set(x_bar) == {"W", "b", "x"}
    np.testing.assert_allclose(x_bar["b"], jl.jacobian(layer, PARAMS)["b"][0] + [0.0, 2.0], rtol=1e-12)
    with pytest.raises(ValueError, match=r"same structure .*; at the top: keys \['W'\] where \['W', 'b', 'x'\] are"):
        jl.jvp(layer, PARAMS, {"W": np.ones((2, 3))})
    # the message names where the structures part and both sides
    for y_bar, found in [((np.ones(2), [np.ones(2)]), "at [1]: a list where an array of shape (2,) is expected"),
                         ((np.ones(3), np.ones(2)), "at [0]: an array of shape (3,) where (2,) is expected"),
                         ((np.ones(2),), "at the top: length 1 where 2 is expected"),
                         ([np.ones(2), np.ones(2)], "at the top: a list where a tuple is expected"),
                         ((np.ones(2), None), "at [1]: None where an array of shape (2,) is expected"),
                         (np.ones(4), "at the top: an array of shape (4,) where a tuple is expected")]:
        with pytest.raises(ValueError, match="y_bar must have the same structure and leaf shapes as f") as info:
            pullback(y_bar)
        assert f"; {found} (k directions stacked as (k, *shape) are taken for an array f(x)" in str(info.value)
    with pytest.raises(ValueError, match=r"at \[0\]: an array of shape \(5, 2\) where \(2,\) is expected "
                                         r"\(k directions stacked .* for a tree of arrays, one direction per call\)"):
        pullback((np.ones((5, 2)), np.ones((5, 2))))  # k cotangents, as an array f(x) takes them
    with pytest.raises(ValueError, match=r"x_dot must .*\(5, 2, 3\) where \(2, 3\) is expected \(k directions "
                                         r"stacked as \(k, \*shape\) are taken for an array x; for a tree of "
                                         r"arrays, one direction"):
        jl.jvp(layer, PARAMS, {"W": np.ones((5, 2, 3)), "b": np.ones((5, 2)), "x": np.ones((5, 3))})


def test_measure_and_compare_accept_structures():
    m = jl.measure(layer, PARAMS, mode="forward", repeat=1)
    assert m.jacobian.shape == (2, 11)
    c = jl.compare(layer, PARAMS, modes=["forward", "reverse"], repeat=1)
    assert c.prediction.n == 11 and c.max_abs_diff(c.measurements[1]) < 1e-12


@pytest.mark.parametrize("x", [{}, (), [], ((),), [[], []]], ids=["{}", "()", "[]", "((),)", "[[], []]"])
def test_empty_structure_is_refused(x):
    """A tuple or list holding no number was read as an empty float array (a (1, 0) one for ((),)), where {} was
    refused and JAX takes all of them for empty trees."""
    for call in (lambda: jl.jacobian(lambda p: p, x), lambda: jl.grad(lambda p: 0.0)(x)):
        with pytest.raises(ValueError, match=r"x is an empty structure \(.*\): it holds nothing to differentiate"):
            call()


@pytest.mark.parametrize("x, where, message", [
    ({"a": np.array([True, False]), "b": np.ones(2)}, r"x\['a'\]", "dtype bool"),
    ((np.ones(2), [np.ones(1), "w"]), r"x\[1\]\[1\]", "got str"),
    ({"w": np.ones(2) + 1j}, r"x\['w'\]", "complex input"),
])
def test_a_refused_leaf_of_x_is_named_by_where_it_sits(x, where, message):
    with pytest.raises(TypeError, match=f"^{where}: .*{message}"):
        jl.jacobian(lambda p: p, x)


def test_a_list_of_plain_numbers_is_an_array_as_in_numpy():
    J = jl.jacobian(np.sin, [0.0, 1.0])
    np.testing.assert_allclose(J, np.diag(np.cos([0.0, 1.0])))
    np.testing.assert_allclose(jl.grad(lambda x: np.sum(x ** 2))([[1.0, 2.0], [3.0, 4.0]]), [[2, 4], [6, 8]])
    # a list holding arrays stays a structure
    assert isinstance(jl.jacobian(lambda p: p[0] * p[1], [np.ones(2), np.full(2, 3.0)]), list)
    # and so is one of NumPy's scalars, as np.asarray reads it: in its dtype (float32 stays float32)
    for numbers, dtype in (([np.float32(0.0), np.float32(1.0)], np.float32), ([np.int64(0), 1.0], np.float64)):
        J = jl.jacobian(np.sin, numbers)
        assert type(J) is np.ndarray and J.dtype == dtype
        np.testing.assert_allclose(J, np.diag(np.cos([0.0, 1.0])), rtol=1e-7)


def test_namedtuple_and_ordered_dict_inputs_keep_their_type():
    # rebuilding them used to call Params([a, b]) and OrderedDict([leaf, leaf]), which fail
    from collections import OrderedDict, namedtuple

    Params = namedtuple("Params", "a b")
    a, b = np.array([0.3, -0.7]), np.array([1.2, 0.5, 2.0])
    g = jl.grad(lambda p: np.sum(p.a ** 2) * np.sum(p.b))(Params(a, b))
    assert type(g) is Params
    np.testing.assert_allclose(g.a, 2 * a * np.sum(b))
    np.testing.assert_allclose(g.b, np.full(3, np.sum(a ** 2)))
    g = jl.grad(lambda p: np.sum(p["a"] ** 2) * np.sum(p["b"]))(OrderedDict(b=b, a=a))
    assert type(g) is OrderedDict
    np.testing.assert_allclose(g["a"], 2 * a * np.sum(b))
    J = jl.jacobian(lambda t: Params(np.sin(t), t ** 2), a)
    assert type(J) is Params
    np.testing.assert_allclose(J.b, np.diag(2 * a))


def test_an_ordered_dict_keeps_its_order_as_in_jax():
    """f gets the OrderedDict in its own order (its values concatenated here), and its blocks come back so."""
    from collections import OrderedDict

    p = OrderedDict([("b", np.ones(2)), ("a", np.full(1, 2.0))])
    J = jl.jacrev(lambda q: np.concatenate(list(q.values())))(p)
    assert list(J) == ["b", "a"]
    np.testing.assert_array_equal(J["b"], np.eye(3)[:, :2])
    np.testing.assert_array_equal(J["a"], np.eye(3)[:, 2:])
    assert list(jl.jacfwd(lambda x: OrderedDict([("z", x.sum()), ("a", x[0])]))(np.ones(2))) == ["z", "a"]


def test_defaultdicts_and_namedtuples_of_numbers_are_trees():
    """A defaultdict is rebuilt with its default_factory, in x, f's output and aux; a namedtuple of
    Python floats has named fields, so it stays a namedtuple (it is not read as one array)."""
    from collections import defaultdict, namedtuple

    d = defaultdict(list, {"a": np.array([1.0, 2.0])})
    g = jl.grad(lambda p: np.sum(p["a"] ** 2))(d)
    assert type(g) is defaultdict and g.default_factory is list
    np.testing.assert_array_equal(g["a"], [2.0, 4.0])
    J = jl.jacrev(lambda x: defaultdict(list, {"a": 3 * x}))(np.ones(2))
    assert type(J) is defaultdict and J.default_factory is list
    np.testing.assert_array_equal(J["a"], 3 * np.eye(2))
    _, aux = jl.grad(lambda x: (np.sum(x), defaultdict(int, {"a": x})), has_aux=True)(np.ones(2))
    assert type(aux) is defaultdict and aux.default_factory is int
    Pair = namedtuple("Pair", "p q")
    g = jl.grad(lambda t: t.p ** 2 * t.q)(Pair(1.5, 2.0))
    assert type(g) is Pair and (g.p, g.q) == (6.0, 2.25)
    assert jl.jit(jl.grad(lambda t: t.p ** 2 * t.q))(Pair(1.5, 2.0)) == g


def test_a_dict_subclass_is_rebuilt_from_one_dict():
    class Config(dict):  # its constructor takes a mapping, as most dict subclasses' do
        def __init__(self, entries=None):
            super().__init__()
            for key, value in (entries or {}).items():
                self[key] = value

    g = jl.grad(lambda p: np.sum(p["a"] ** 2))(Config({"a": np.array([1.0, 2.0])}))
    assert type(g) is Config and np.array_equal(g["a"], [2.0, 4.0])
    _, aux = jl.grad(lambda x: (np.sum(x), Config({"x": x})), has_aux=True)(np.ones(2))
    assert type(aux) is Config


def test_none_is_an_empty_node_as_in_jax():
    """An absent optional entry: no derivative in x, none in f's output, None in its blocks."""
    x = {"a": np.array([1.0, 2.0]), "b": None}
    assert jl.grad(lambda p: np.sum(p["a"] ** 2))(x)["b"] is None
    np.testing.assert_array_equal(jl.grad(lambda p: np.sum(p["a"] ** 2))(x)["a"], [2.0, 4.0])
    J, nothing = jl.jacrev(lambda v: (v * 2, None))(np.ones(2))
    assert nothing is None and np.array_equal(J, 2 * np.eye(2))
    J = jl.jacfwd(lambda p: {"y": p["a"] * 2, "n": None})(x)
    assert J["n"] is None and J["y"]["b"] is None and np.array_equal(J["y"]["a"], 2 * np.eye(2))
    assert jl.hessian(lambda p: np.sum(p["a"] ** 3))(x)["a"]["b"] is None
    _, pullback = jl.vjp(lambda p: (p["a"] * 2, None), x)
    np.testing.assert_array_equal(pullback((np.ones(2), None))["a"], [2.0, 2.0])


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_a_python_float_beside_arrays_in_fs_output_is_a_0d_array_as_in_jax(mode):
    J, constant = jl.jacobian(lambda v: (np.sin(v), 1.0), np.ones(2), mode=mode)
    np.testing.assert_array_equal(J, np.diag(np.cos(np.ones(2))))
    np.testing.assert_array_equal(constant, np.zeros(2))  # a constant: no derivative
    with pytest.raises(TypeError, match="holding an array of dtype int64"):  # an int has none either
        jl.jacobian(lambda v: {"s": np.sin(v), "n": 3}, np.ones(2), mode=mode)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("out", [[1.0, 2.0], {"a": 1.0}, (np.float64(1.0), 2.0)], ids=["list", "dict", "tuple"])
def test_an_output_of_python_floats_alone_is_a_constant_as_in_jax(out, mode):
    compiled = jl.jit(jl.jacobian(lambda v: out, mode=mode))
    for J in (jl.jacobian(lambda v: out, np.ones(2), mode=mode), compiled(np.ones(2))):
        assert type(J) is type(out)
        for block in (J.values() if isinstance(J, dict) else J):
            np.testing.assert_array_equal(block, np.zeros(2))


@pytest.mark.parametrize("extra", [np.arange(2), np.array([True, False]), np.array([1j, 2.0])])
def test_a_structured_output_holding_a_non_float_array_is_refused(extra):
    # it used to be promoted to float and get a block of zeros, while the same array alone is refused
    with pytest.raises(TypeError, match=f"holding an array of dtype {extra.dtype}; every entry must hold floats"):
        jl.jacobian(lambda t: {"s": np.sin(t), "extra": extra}, np.ones(2))


def test_dict_keys_that_do_not_sort_are_refused_by_name():
    # sorting them used to fail with "'<' not supported between instances of 'str' and 'int'"
    with pytest.raises(TypeError, match="keys of a dict .* must be sortable .*'b', 1"):
        jl.grad(lambda p: np.sum(p["b"]) * p[1])({"b": np.ones(2), 1: 2.0})


@pytest.mark.parametrize("bad", [1j, True, "a"], ids=["complex", "bool", "str"])
def test_a_structured_tangent_or_cotangent_leaf_of_another_dtype_is_refused(bad):
    x = {"a": np.ones(2), "b": np.full(2, 2.0)}
    f = lambda p: {"y": p["a"] * p["b"], "z": np.sin(p["a"])}  # noqa: E731
    with pytest.raises(TypeError, match="x_dot must be a float array"):
        jl.jvp(f, x, {"a": np.full(2, bad), "b": np.ones(2)})
    _, pullback = jl.vjp(f, x)
    with pytest.raises(TypeError, match="y_bar must be a float array"):
        pullback({"y": np.full(2, bad), "z": np.ones(2)})


def test_k_directions_come_back_in_the_structure_with_k_first_on_each_leaf():
    """As jax.vmap over jax.jvp or a pullback: a flat (k, size) block would unpack into its k rows."""
    x, T = np.array([1.0, 2.0, 3.0]), np.stack([np.ones(3), np.arange(3.0)])
    f = lambda v: (v * 2.0, np.sum(v ** 2))  # noqa: E731
    (_, (a_dot, s_dot)), (_, each) = jl.jvp(f, x, T), jl.jvp(f, x, T[1])
    np.testing.assert_array_equal(a_dot, 2 * T)
    np.testing.assert_array_equal(s_dot, T @ (2 * x))
    np.testing.assert_array_equal(a_dot[1], each[0])
    _, y_dot, aux = jl.jvp(lambda v: (f(v), "aux"), x, T, has_aux=True)
    assert [np.shape(leaf) for leaf in y_dot] == [(2, 3), (2,)] and aux == "aux"
    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0, 5.0])}
    _, pullback = jl.vjp(lambda q: np.concatenate([q["a"] * 2.0, q["b"] ** 2]), p)
    Y = np.stack([np.ones(5), np.arange(5.0)])
    x_bar = pullback(Y)
    np.testing.assert_array_equal(x_bar["a"], 2 * Y[:, :2])
    np.testing.assert_array_equal(x_bar["b"], 2 * p["b"] * Y[:, 2:])
    np.testing.assert_array_equal(x_bar["b"][1], pullback(Y[1])["b"])


@pytest.mark.parametrize("flat", ["yes", None, 1])
def test_flat_must_be_a_bool(flat):
    with pytest.raises(TypeError, match=r"flat must be True or False, got"):
        jl.jacobian(np.sin, np.ones(2), flat=flat)
    with pytest.raises(TypeError, match=r"flat must be True or False, got"):
        jl.jacrev(np.sin, flat=flat)
