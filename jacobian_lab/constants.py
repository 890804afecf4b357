"""Values held constant inside a derivative: `stop_gradient`, as ``jax.lax.stop_gradient``."""
from __future__ import annotations

from . import trees
from .rules.elementwise import stop_gradient as _stopped
from .tracing import Tracer


def stop_gradient(x):
    """x's values, with no derivative in any enclosing derivative (like ``jax.lax.stop_gradient``).

    A target held fixed in a loss, a first-order MAML step, the detached
    half of a straight-through estimator: every derivative taken around it
    sees a constant. Plain arrays come back as they are; x may be a tuple,
    list or dict of arrays, which keeps its structure.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.grad(lambda x: np.sum(x * jl.stop_gradient(x)))(np.array([1.0, 2.0]))  # d/dx of x * c is c
    array([1., 2.])
    """
    if trees.is_tree(x):
        leaves, treedef = trees.flatten(x)
        return treedef.unflatten([stop_gradient(leaf) for leaf in leaves])
    return _stopped(x) if isinstance(x, Tracer) and not x.constant else x
