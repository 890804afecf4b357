"""SciPy functions that read their input with ``np.asarray``, written with NumPy operations (as ``jax.scipy``).

``scipy.special.logsumexp``, ``scipy.stats.norm.logpdf`` or ``scipy.linalg.solve``
convert their arguments to plain arrays first, which a traced array refuses
(it would drop the derivative). The functions here take the same arguments
and return the same values, computed with NumPy operations that traced
arrays carry through, so a derivative, a FLOP count or `jit` sees every step.
Called with plain arrays alone they are SciPy's own functions. Change the
import, not the code:

>>> import numpy as np, jacobian_lab as jl
>>> from jacobian_lab.scipy.special import logsumexp
>>> jl.grad(logsumexp)(np.zeros(2))
array([0.5, 0.5])
>>> float(logsumexp(np.zeros(2))) == float(np.log(2.0))
True

`special`: logsumexp, softmax, log_softmax, and scipy.special's functions
with derivative rules, which take traced arrays as they are (expit, gammaln,
erf, ...). `stats`: the normal, Student t,
logistic, Laplace, Cauchy, exponential, gamma, beta and Poisson distributions
and the multivariate normal, with their densities (and the normal's and a
few others' distribution functions). `linalg`: solve, solve_triangular,
cholesky, cho_factor, cho_solve, inv, det, expm. `spatial.distance`: cdist,
pdist, squareform. The modules load with their first use (``jl.scipy.stats``
imports ``scipy.stats``).
"""
from __future__ import annotations

import importlib

__all__ = ["linalg", "spatial", "special", "stats"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
