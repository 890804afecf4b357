"""`or_scipy`: a NumPy version of a SciPy function where an argument is traced, SciPy's own where none is."""
from __future__ import annotations

import functools

import numpy as np

from ..observables import Observable
from ..primitives import is_traced
from ..rules.elementwise import as_float_dtype


def traced(value) -> bool:
    """Whether `value`, or an element of a tuple or list it is (cho_solve's ``(c, lower)``), is traced."""
    if isinstance(value, (tuple, list)):
        return any(map(traced, value))
    return is_traced(value)


def as_array(value):
    """`value` as an array to compute with: a traced one, or one a compiled program recomputes (an argument of
    jit's f, an Observable), as it is, so that a program recomputes what is computed from it; anything else
    (a list, a number) through np.asarray."""
    return value if is_traced(value) or type(value) is Observable else np.asarray(value)


def in_precision(value, at_least):
    """`value` (`as_array`) in the precision SciPy computes it in: its dtype promoted with `at_least`
    (``np.promote_types(value.dtype, np.float64)``: a float32 value in float64, a longdouble one as it is);
    a traced value through ``astype``, whose derivative follows it."""
    value = as_array(value)
    return as_float_dtype(value, np.promote_types(value.dtype, at_least))


def stacked(value):
    """A list as the array SciPy reads it as, one traced array where it holds traced values
    (logsumexp([log_p, log_q])); anything else as it is (a tuple may be cho_solve's (c, lower))."""
    if not isinstance(value, list):
        return value
    try:
        return np.stack([stacked(v) for v in value]) if traced(value) else np.asarray(value, dtype=float)
    except (ValueError, TypeError):  # no array: a pair such as SciPy's cho_factor of a stack gives, as it is
        return value


def or_scipy(scipy_function):
    """Decorate a NumPy version of `scipy_function`: calls with a traced argument run it, the others
    `scipy_function` itself, so that plain arrays get SciPy's values (and its checks) exactly."""
    def decorate(numpy_version):
        @functools.wraps(numpy_version)
        def call(*args, **kwargs):
            if any(map(traced, args)) or any(map(traced, kwargs.values())):
                args, kwargs = [stacked(a) for a in args], {k: stacked(v) for k, v in kwargs.items()}
                return numpy_version(*args, **kwargs)
            return scipy_function(*args, **kwargs)

        return call

    return decorate
