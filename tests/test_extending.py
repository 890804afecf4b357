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
