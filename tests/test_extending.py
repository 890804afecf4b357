"""Extending the package from outside it: engines, primitives and executors of your own."""
from __future__ import annotations

import numpy as np
import pytest

import jacobian_lab as jl


def test_an_engine_is_refused_under_a_name_registered_already():
    """An engine registered as "reverse" replaced the built-in one for every derivative of the process, silently;
    auto mode, predict, sparsity and jit then failed on the tape it has not."""
    built_in = jl.engines.get("reverse")

    class Mine:
        name = "reverse"

        def jvp(self, f, x, tangents, max_bytes=None):
            raise NotImplementedError

        def vjp(self, f, x):
            raise NotImplementedError

    with pytest.raises(ValueError, match=r"an engine named 'reverse' is registered already \(ReverseEngine\); "
                                         r"register yours under a name of its own"):
        jl.engines.register(Mine())
    assert jl.engines.get("reverse") is built_in
    np.testing.assert_allclose(jl.jacobian(np.sin, np.ones(2)), np.diag(np.cos(np.ones(2))))


def test_a_numpy_function_routed_already_is_refused_unless_replaced(monkeypatch):
    """implements replaced the package's own routing silently: np.nan_to_num's derivative became 0 for every
    caller in the process."""
    from jacobian_lab import numpy_api

    monkeypatch.setattr(numpy_api, "FUNCTIONS", dict(numpy_api.FUNCTIONS))  # undone after the test
    with pytest.raises(ValueError, match=r"numpy\.nan_to_num is routed already, to jacobian_lab's nan_to_num; "
                                         r"replace=True routes it to yours"):
        numpy_api.implements(np.nan_to_num)(lambda x, **kwargs: x * 0.0)
    np.testing.assert_array_equal(jl.jacobian(np.nan_to_num, np.ones(2)), np.eye(2))
    numpy_api.implements(np.nan_to_num, replace=True)(lambda x, **kwargs: x * 3.0)
    np.testing.assert_array_equal(jl.jacobian(np.nan_to_num, np.ones(2)), 3.0 * np.eye(2))

    for _ in range(2):  # the same routing again, a new function of the same name, as a reloaded module or a cell
        def spacing(x):  # run twice makes it: it takes its place
            return x * 2.0

        numpy_api.implements(np.spacing)(spacing)
    with pytest.raises(ValueError, match=r"numpy\.spacing is routed already, to (tests\.)?test_extending's "):
        numpy_api.implements(np.spacing)(lambda x: x)


@pytest.fixture
def own_registry():
    """Primitives a test registers are gone after it: the registry's tests walk every one."""
    from jacobian_lab import numpy_api
    from jacobian_lab.primitives import REGISTRY

    names, ufuncs = set(REGISTRY), dict(numpy_api.UFUNCS)
    yield
    for name in set(REGISTRY) - names:
        del REGISTRY[name]
    numpy_api.UFUNCS.clear()
    numpy_api.UFUNCS.update(ufuncs)


def _dawsn():
    """Dawson's integral as a primitive of its own, with its slope 1 - 2 x D(x) written with primitives."""
    import scipy.special as sc

    from jacobian_lab.primitives import PerElement, Primitive, register
    from jacobian_lab.rules.elementwise import multiply, subtract

    def slope(out, x):
        return subtract(1.0, multiply(2.0, multiply(x, out)))

    return register(Primitive("test_dawsn", sc.dawsn, PerElement(0, 1), structure="elementwise",
                              jvp=lambda tangents, out, x: multiply(tangents[0], slope(out, x)),
                              vjp=lambda needs, out, x: lambda g: (multiply(g, slope(out, x)),)))


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_a_primitive_with_a_ufunc_as_its_impl_computes_that_ufunc_on_traced_arrays(own_registry, mode):
    """Routing a ufunc took a write into numpy_api.UFUNCS, a table of the package's own."""
    import scipy.special as sc

    _dawsn()
    x = np.linspace(-1.0, 1.5, 4)
    slope = lambda v: 1.0 - 2.0 * v * sc.dawsn(v)  # noqa: E731
    np.testing.assert_allclose(jl.jacobian(sc.dawsn, x, mode=mode), np.diag(slope(x)), rtol=1e-14)
    compiled = jl.jit(jl.jacobian(lambda v: 2.0 * sc.dawsn(v), mode=mode))
    compiled(x)
    np.testing.assert_allclose(compiled(x + 1.0), np.diag(2.0 * slope(x + 1.0)), rtol=1e-14)
    assert jl.count_flops(sc.dawsn, x) == jl.Cost(0, 4)


def _softplus(jvp, vjp, name="test_softplus", structure="elementwise"):
    from jacobian_lab.primitives import PerElement, Primitive, register

    return register(Primitive(name, lambda x: np.logaddexp(0.0, x), PerElement(4, 2), jvp=jvp, vjp=vjp,
                              structure=structure))


def test_a_rule_that_drops_the_seeds_axis_is_named(own_registry):
    """A JVP rule returning one seed's tangent broadcast against the others: jacfwd of a sum came out wrong."""
    from jacobian_lab.rules.elementwise import multiply
    from jacobian_lab.rules.special import expit

    bad = _softplus(lambda tangents, out, x: multiply(tangents[0][0], expit(x)),
                    lambda needs, out, x: lambda g: (multiply(g[0], expit(x)),))
    x = np.linspace(-2.0, 2.0, 4)
    with pytest.raises(ValueError, match=r"^the JVP rule of the primitive 'test_softplus' returned a tangent of shape "
                                         r"\(4,\) for 4 seeds of an output of shape \(4,\): it must be \(4, 4\), the "
                                         r"seeds' axis first"):
        jl.jacfwd(lambda v: np.sum(bad(v) * 2.0))(x)
    with pytest.raises(ValueError, match=r"pullback of the primitive 'test_softplus' returned a cotangent of shape "
                                         r"\(4,\) for 1 seed of its operand 0 of shape \(4,\): it must be \(1, 4\)"):
        jl.grad(lambda v: np.sum(bad(v)))(x)


def test_a_pullback_must_return_a_cotangent_per_operand(own_registry):
    from jacobian_lab.rules.elementwise import multiply
    from jacobian_lab.rules.special import expit

    bad = _softplus(lambda tangents, out, x: multiply(tangents[0], expit(x)),
                    lambda needs, out, x: lambda g: multiply(g, expit(x)))  # the array, not a tuple of one
    with pytest.raises(ValueError, match=r"returned ndarray for 1 operand: it must return a tuple of one cotangent "
                                         r"\(or None\) per operand"):
        jl.jacrev(bad)(np.ones(3))


def test_a_rule_computing_with_numpy_on_x_is_not_compiled_and_an_error_in_one_is_named(own_registry):
    """Its derivative was kept as a constant of the program: every later x got the first x's Jacobian."""
    import scipy.special as sc

    raw = _softplus(lambda tangents, out, x: tangents[0] * sc.expit(np.asarray(x)),
                    lambda needs, out, x: (lambda s: lambda g: (g * s,))(sc.expit(np.asarray(x))))
    x = np.linspace(-2.0, 2.0, 5)
    for mode in ("forward", "reverse"):
        compiled = jl.jit(jl.jacobian(raw, mode=mode))
        with pytest.warns(UserWarning, match=r"rule of the primitive 'test_softplus' computes its derivative with "
                                             r"NumPy on values the program recomputes"):
            compiled(x)
        np.testing.assert_allclose(compiled(x + 1.0), np.diag(sc.expit(x + 1.0)), rtol=1e-15)
    with pytest.raises(TypeError) as raised:
        jl.hessian(lambda v: np.sum(raw(v)))(x)
    assert "(raised in the VJP rule of the primitive 'test_softplus', registered outside jacobian_lab)" in \
        raised.value.__notes__


def test_a_linear_rule_computing_with_numpy_on_seeds_is_compiled(own_registry):
    """A derivative that does not move with x is right to keep: the check moves x and sees it stay."""
    import warnings

    def diff(t):  # the seeds' differences along the last axis: linear, the same at every x
        return np.diff(t, axis=-1, prepend=0.0)

    def transposed(g):
        return (g - np.concatenate([g[..., 1:], np.zeros_like(g[..., :1])], axis=-1),)

    from jacobian_lab.primitives import PerElement, Primitive, register
    differences = register(Primitive("test_differences", lambda x: np.diff(x, prepend=0.0), PerElement(1, 0),
                                     jvp=lambda tangents, out, x: diff(tangents[0]),
                                     vjp=lambda needs, out, x: transposed))
    x = np.linspace(0.0, 1.0, 4)
    expected = np.eye(4) - np.eye(4, k=-1)
    for mode in ("forward", "reverse"):
        compiled = jl.jit(jl.jacobian(differences, mode=mode))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compiled(x)
            np.testing.assert_array_equal(compiled(x + 1.0), expected)
        assert compiled.compiles == 1


def test_a_structure_declared_outside_the_package_is_not_trusted_by_a_compiled_jacobian(own_registry):
    """A two-tap filter declared elementwise: the compiled auto Jacobian read a diagonal pattern off it and
    dropped the filter's other tap, where the eager Jacobian is right."""
    from jacobian_lab.primitives import PerElement, Primitive, register
    from jacobian_lab.rules.elementwise import add, multiply
    from jacobian_lab.rules.shape import concatenate, getitem

    def taps(v, head):  # v[0], v[1:] + 0.5 v[:-1], and its transpose: along the last axis, with primitives
        part = lambda s: getitem(v, index=(Ellipsis, s))  # noqa: E731
        if head:
            return concatenate(part(slice(0, 1)), add(part(slice(1, None)), multiply(0.5, part(slice(None, -1)))),
                               axis=v.ndim - 1)
        return concatenate(add(part(slice(None, -1)), multiply(0.5, part(slice(1, None)))), part(slice(-1, None)),
                           axis=v.ndim - 1)

    filtered = register(Primitive("test_taps", lambda v: np.concatenate([v[:1], v[1:] + 0.5 * v[:-1]]),
                                  PerElement(2, 0), jvp=lambda tangents, out, x: taps(tangents[0], True),
                                  vjp=lambda needs, out, x: lambda g: (taps(g, False),), structure="elementwise"))
    x = np.linspace(0.0, 1.0, 6)
    y = np.concatenate([x[:1], x[1:] + 0.5 * x[:-1]])
    expected = np.exp(y)[:, None] * (np.eye(6) + 0.5 * np.eye(6, k=-1))
    f = lambda v: np.exp(filtered(v))  # noqa: E731
    np.testing.assert_allclose(jl.jacobian(f, x), expected, rtol=1e-15)
    np.testing.assert_allclose(jl.jit(jl.jacobian(f))(x), expected, rtol=1e-15)


def test_a_rule_choosing_its_slope_by_sign_with_numpy_is_not_compiled_even_where_numpy_raises(own_registry):
    """The check moved x by a little only, where the slope NumPy picked by sign did not change: the program kept
    the first x's slope at -x. Under np.errstate(all="raise") the moved values' own warnings came out as a
    DerivativeError where eager mode computes."""
    slope = lambda x: np.where(np.asarray(x) > 0, 1.0, 0.1) + 0.0 * np.log(np.asarray(x) + 0.6)  # noqa: E731
    leaky = _softplus(lambda tangents, out, x: tangents[0] * slope(x),
                      lambda needs, out, x: (lambda s: lambda g: (g * s,))(slope(x)), name="test_leaky")
    x = np.array([0.5, 1.0, 2.0])
    for mode in ("forward", "reverse"):
        compiled = jl.jit(jl.jacobian(lambda v: leaky(v) * 2.0, mode=mode))
        with np.errstate(all="raise"), pytest.warns(UserWarning, match="'test_leaky' computes its derivative"):
            compiled(x)
        with np.errstate(invalid="ignore"):  # the slope's log is NaN beyond -0.6, in eager mode too
            np.testing.assert_array_equal(compiled(-x), jl.jacobian(lambda v: leaky(v) * 2.0, -x, mode=mode))
            assert compiled(-x)[0, 0] == 0.2


def test_a_ufunc_refused_before_is_routed_once_a_primitive_for_it_is_registered(own_registry):
    """A miss was remembered by the registry's size: a primitive removed and registered again with the right
    impl left the ufunc refused."""
    import scipy.special as sc

    from jacobian_lab.primitives import REGISTRY, PerElement, Primitive, register

    register(Primitive("test_filler", np.negative, PerElement(1, 0)))
    with pytest.raises(NotImplementedError):
        jl.jacobian(sc.dawsn, np.ones(2))
    del REGISTRY["test_filler"]
    _dawsn()  # as many primitives as at the miss
    np.testing.assert_allclose(jl.jacobian(sc.dawsn, np.ones(2)), np.diag(1.0 - 2.0 * sc.dawsn(np.ones(2))), rtol=1e-14)


def test_a_rule_that_refuses_values_outside_its_domain_is_still_compiled(own_registry):
    """A moved value where the rule raised counted as a stale derivative: a correct rule that checks its domain
    was never compiled, with a warning naming the wrong cause."""
    import warnings

    from jacobian_lab.primitives import PerElement, Primitive, register

    def jvp(tangents, out, x):
        if np.any(np.asarray(x) <= 0):
            raise ValueError("x must be positive")
        return 2.0 * np.asarray(tangents[0])  # the slope needs no x: the same at every x

    doubled = register(Primitive("test_doubled", lambda x: 2.0 * x, PerElement(1, 0), jvp=jvp,
                                 structure="elementwise"))
    compiled = jl.jit(jl.jacfwd(doubled))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled(np.array([0.5, 1.0, 2.0]))
        np.testing.assert_array_equal(compiled(np.array([1.5, 2.0, 3.0])), 2.0 * np.eye(3))
    assert compiled.compiles == 1
