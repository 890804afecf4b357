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
