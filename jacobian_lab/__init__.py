"""jacobian_lab: forward vs reverse accumulation of Jacobians, measured exactly.

>>> import numpy as np, jacobian_lab as jl
>>> f = lambda x: np.sum(np.sin(np.exp(x ** 2)))
>>> x = np.linspace(-1.0, 1.0, 5)
>>> bool(np.allclose(jl.jacfwd(f)(x), jl.jacrev(f)(x)))
True
"""
from . import chain, engines, problems
from .accounting import Cost
from .chain import Chain
from .compare import Comparison, Measurement, compare, measure
from .constants import stop_gradient
from .jacobian import JacobianFunction, grad, jacfwd, jacobian, jacrev, jvp, value_and_grad, vjp
from .compiled import jit
from .compressed import SparseJacobian, coloring, sparse_jacobian
from .hessian import HessianFunction, SparseHessian, hessian, hvp, sparse_hessian
from .memory import MemoryBudgetError
from .prediction import Prediction, count_flops, predict
from .sparsity import sparsity
from .primitives import DerivativeError, own_registered
from .tracing import TracerConversionError

__all__ = [
    "Chain", "Comparison", "Cost", "DerivativeError", "HessianFunction", "JacobianFunction", "Measurement", "MemoryBudgetError", "Prediction",
    "SparseHessian", "SparseJacobian", "TracerConversionError",
    "chain", "coloring", "compare",
    "count_flops", "engines", "grad", "hessian", "hvp", "jacfwd", "jacobian", "jacrev", "jit", "jvp", "measure", "predict",
    "problems", "scipy", "sparse_hessian", "sparse_jacobian", "sparsity", "stop_gradient", "value_and_grad",
    "vjp",
]

own_registered()  # every primitive of the package is registered: one registered from now on is checked


def __getattr__(name: str):
    # jl.scipy imports with its first use: its modules import scipy.special and scipy.stats, which take longer
    # to load than jacobian_lab itself
    if name == "scipy":
        import importlib
        return importlib.import_module(".scipy", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
