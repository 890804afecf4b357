"""numpy.polynomial's evaluation functions at a traced x (`jacobian_lab.numpy_series`)."""
import inspect

import numpy as np
import pytest

import jacobian_lab as jl
from jacobian_lab.numpy_series import EVALUATIONS

from helpers import assert_close, assert_fd_close, central_differences, traced_value

EVALUATE = {name: getattr(module, name) for module, names in EVALUATIONS.items() for name in names}
RNG = np.random.default_rng(3)


@pytest.mark.parametrize("name", sorted(EVALUATE))
@pytest.mark.parametrize("c_shape", [(3,), (3, 2), (4, 2, 3)], ids=["1-d", "2-d", "3-d"])
@pytest.mark.parametrize("x_shape", [(), (2,), (2, 3)], ids=["0-d", "1-d", "2-d"])
def test_evaluations_lay_out_the_coefficients_as_numpy_does(name, c_shape, x_shape):
    """With coefficients of more than one axis, the axes were broadcast against a traced x's instead of laid
    before them: a (3, 2) c at x of shape (2,) gave NumPy's diagonal, a wrong value and Jacobian."""
    evaluate, c = EVALUATE[name], RNG.uniform(-1.0, 1.0, c_shape)
    x = RNG.uniform(0.2, 0.9, x_shape)
    for tensor in (True, False):
        def f(v, tensor=tensor):
            return evaluate(v, c, tensor=tensor)

        try:
            expected = f(x)
        except ValueError as error:  # tensor=False wants c's other axes to broadcast against x's
            with pytest.raises(ValueError, match=str(error)[:20]):
                jl.jacobian(f, x)
            continue
        assert_close(traced_value(f, x), expected, 1e-12, f"{name} tensor={tensor}")
        fd = central_differences(f, x)
        for mode in ("forward", "reverse"):
            assert_fd_close(jl.jacobian(f, x, mode=mode), fd, f"{name} {mode} tensor={tensor}")
        compiled = jl.jit(jl.jacobian(f))
        compiled(x + 0.05)
        assert_fd_close(compiled(x), fd, f"{name} jit tensor={tensor}")


@pytest.mark.parametrize("name", sorted(EVALUATE))
def test_evaluations_at_traced_coefficients_and_plain_arrays(name):
    evaluate, x = EVALUATE[name], np.array([0.3, 0.6])
    c = RNG.uniform(-1.0, 1.0, (3, 2))
    assert_fd_close(jl.jacobian(lambda w: evaluate(x, w), c), central_differences(lambda w: evaluate(x, w), c), name)
    assert_fd_close(jl.jacobian(lambda v: evaluate(v, v), x), central_differences(lambda v: evaluate(v, v), x), name)
    one = lambda v: evaluate(np.outer(v, v), v[0])  # noqa: E731  (a traced 0-d c: one coefficient or root)
    assert_close(traced_value(one, x), one(x), 1e-12, name)
    assert_fd_close(jl.jacobian(one, x), central_differences(one, x), name)
    np.testing.assert_array_equal(evaluate(x, c), getattr(evaluate, "__wrapped__")(x, c))  # NumPy's own, untraced
    by_name = dict(zip(inspect.signature(evaluate).parameters, (x, c, False)))  # keywords, r for polyvalfromroots
    assert_close(traced_value(lambda v: evaluate(**{**by_name, "x": v}), x), evaluate(**by_name), 1e-12, name)
    assert evaluate.__name__ == name and evaluate.__module__.startswith("numpy.polynomial")



@pytest.mark.parametrize("call, name", [
    (lambda v: np.polynomial.polynomial.polyfit(np.arange(5.0), v, 2), "numpy.polynomial.polynomial.polyfit"),
    (lambda v: np.polynomial.Polynomial.fit(np.arange(5.0), v, 2).coef, "numpy.polynomial.Polynomial.fit"),
    (lambda v: np.polynomial.chebyshev.chebfit(v, np.arange(5.0), 1), "numpy.polynomial.chebyshev.chebfit"),
    (lambda v: np.polynomial.polynomial.polydiv(v, [1.0, 2.0])[0], "numpy.polynomial.polynomial.polydiv"),
    (lambda v: np.polynomial.polynomial.polyroots(v), "numpy.polynomial.polynomial.polyroots"),
], ids=["polyfit", "Polynomial.fit", "chebfit", "polydiv", "polyroots"])
def test_the_other_series_functions_are_named_where_they_fail(call, name):
    """Their own failure on a traced array named NumPy's internals (a cast of an object array in lstsq, a write
    with out=, 'data type object not inexact'), not the function f called."""
    with pytest.raises((TypeError, ValueError)) as raised:
        jl.jacobian(call, np.array([1.0, -3.0, 2.0, 0.5, 4.0]))
    notes = " ".join(getattr(raised.value, "__notes__", ()))
    assert f"({name} is plain Python that computes on plain arrays" in notes
    assert ("np.polyfit(x, y, deg)[::-1]" in notes) == name.endswith("fit")


def test_an_evaluation_given_coefficients_that_do_not_broadcast_keeps_numpys_error_alone():
    """The note on numpy.polynomial's other functions was added to NumPy's error about f's own coefficients in
    polyval, which takes traced arrays."""
    c, x = np.ones((3, 4)), np.linspace(0.0, 1.0, 6)
    for call in (lambda v: np.polynomial.polynomial.polyval(v, c, tensor=False),
                 lambda v: np.polynomial.polynomial.polyval3d(v, v[:3], v, np.ones((2, 2, 2))),  # its x, y, z
                 lambda v: np.polynomial.legendre.legval2d(v, v[:3], np.ones((2, 2)))):
        with pytest.raises(ValueError, match="incompatible|could not be broadcast") as raised:
            jl.jacobian(call, x)
        assert not getattr(raised.value, "__notes__", None)
    with pytest.raises(TypeError, match=r"polyval\(\) got an unexpected keyword argument 'r'"):
        jl.jacobian(lambda v: np.polynomial.polynomial.polyval(v, r=c), x)  # Python's message, naming it
