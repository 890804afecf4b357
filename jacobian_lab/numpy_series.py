"""numpy.polynomial's evaluation functions at a traced x: polyval, chebval, legval, hermval, hermeval, lagval
and polyvalfromroots.

They are plain Python, not NumPy functions that dispatch, and with ``tensor=True`` (their default) they lay
the coefficients' other axes before x's only where ``isinstance(x, np.ndarray)``, which a traced array is
not: coefficients of shape (3, 2) were then broadcast against x's (2,) instead of evaluated at each of its
points, a wrong value and Jacobian without an error. Each is wrapped, once, as jacobian_lab is imported: at
a traced x the wrapper lays the axes out as NumPy would and calls NumPy's function with ``tensor=False``,
which then does the same arithmetic; at any other x it calls NumPy's function as it was called.

>>> import numpy as np, jacobian_lab as jl
>>> c = np.arange(6.0).reshape(3, 2)  # two polynomials, one per column
>>> jl.jacobian(lambda x: np.polynomial.polynomial.polyval(x, c), np.array([0.5, 1.0])).shape
(2, 2, 2)
"""
from __future__ import annotations

import functools
import inspect

import numpy as np
import numpy.polynomial as series

from .numpy_api import is_traced

#: The evaluation functions, by module: each computes with its argument's own arithmetic and reads x's type
#: only to lay out the coefficients.
EVALUATIONS = {series.polynomial: ("polyval", "polyvalfromroots"), series.chebyshev: ("chebval",),
               series.legendre: ("legval",), series.hermite: ("hermval",), series.hermite_e: ("hermeval",),
               series.laguerre: ("lagval",)}


def _at_traced(evaluate):
    """`evaluate` with its coefficients (or roots) laid out for a traced x as NumPy lays them for an array."""
    signature = inspect.signature(evaluate)  # (x, c, tensor=True); polyvalfromroots names c r

    @functools.wraps(evaluate)
    def laid_out(*args, **kwargs):
        if not (args and is_traced(args[0]) or is_traced(kwargs.get("x"))):
            return evaluate(*args, **kwargs)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # Python's own message, which names the function
            return evaluate(*args, **kwargs)
        bound.apply_defaults()
        x, c, tensor = bound.arguments.values()
        c = np.atleast_1d(c) if is_traced(c) else np.array(c, ndmin=1, copy=None)  # as NumPy's own first step
        if not tensor and evaluate.__name__ == "polyvalfromroots" and np.ndim(x) >= np.ndim(c):
            raise ValueError("x.ndim must be < r.ndim when tensor == False")  # NumPy's check, made for arrays
        if tensor:
            c = np.reshape(c, np.shape(c) + (1,) * np.ndim(x))
        return evaluate(x, c, False)

    laid_out.at_traced = True
    return laid_out


for _module, _names in EVALUATIONS.items():
    for _name in _names:
        if not getattr(getattr(_module, _name), "at_traced", False):  # a reloaded module wraps once
            setattr(_module, _name, _at_traced(getattr(_module, _name)))
