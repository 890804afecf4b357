"""jacobian_lab: forward vs reverse accumulation of Jacobians, measured exactly.

>>> import numpy as np, jacobian_lab as jl
>>> f = lambda x: np.sum(np.sin(np.exp(x ** 2)))
>>> x = np.linspace(-1.0, 1.0, 5)
>>> bool(np.allclose(jl.jacfwd(f)(x), jl.jacrev(f)(x)))
True
"""
from . import engines
from .accounting import Cost
from .jacobian import grad, jacfwd, jacobian, jacrev, jvp, vjp
from .prediction import count_flops
from .tracing import TracerConversionError

__all__ = [
    "Cost", "TracerConversionError", "count_flops", "engines", "grad", "jacfwd", "jacobian",
    "jacrev", "jvp", "vjp",
]
