"""Hessians: forward accumulation over reverse accumulation (forward-over-reverse).

The Hessian of f is the Jacobian of its gradient. The forward harness pushes
one-hot tangent seeds through a function that records f on the reverse
engine and sweeps the tape; the engines nest, so each forward pass
differentiates the recording and the sweep themselves. One pass with k seeds
gives k columns of the Hessian for about the work of one gradient plus k
tangents of it, where reverse-over-reverse would need a tape of the sweep.

Counted work keeps the phases' meanings: "primal" is f's evaluation,
"cotangent" the values the gradient sweep computes, "tangent" every
forward-mode derivative of either.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import engines
from .jacobian import _NO_X, _check_batch_size, check_function, columns, prepare, seeds

__all__ = ["HessianFunction", "hessian"]


def hessian(f: Callable, x=_NO_X, *, batch_size=None, max_memory=None):
    """The Hessian of f at x, shape ``f(x).shape + x.shape + x.shape`` (like ``jax.hessian``).

    Forward mode over reverse mode: one gradient sweep per forward pass, with
    `batch_size` tangent seeds per pass (None: as many as keep a pass's
    arrays about cache-sized, within `max_memory`). A vector-valued f gives
    each output's Hessian, its sweep pulling back every output at once.
    Without x, the Hessian as a function of x. x is a plain float array.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.hessian(lambda x: x[0] ** 2 * x[1], np.array([1.0, 3.0]))
    array([[6., 2.],
           [2., 0.]])
    >>> jl.hessian(lambda x: np.log(np.sum(np.exp(x))))(np.zeros(2))  # diag(p) - p p^T, p = softmax(x)
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    check_function(f)
    _check_batch_size(batch_size)
    if x is _NO_X:
        return HessianFunction(f, batch_size, max_memory)
    g, x_flat = prepare(f, x)
    if g.in_def is not None:
        raise TypeError("hessian takes x as one float array, not a structure of arrays; concatenate the "
                        "leaves into one vector (np.concatenate) and split it inside f")

    def derivative(v):
        """The Jacobian of f at v, shape ``y.shape + v.shape``, from one sweep of all outputs."""
        y, pullback = engines.get("reverse").vjp(g, v)
        rows = pullback(seeds(0, np.size(y), np.shape(y)))
        return np.reshape(rows, np.shape(y) + np.shape(v))

    return columns(derivative, x_flat, batch_size, max_memory)


class HessianFunction:
    """The Hessian of f as a function of x: what `hessian` returns without x.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.hessian(np.sin)
    hessian(sin)
    """

    def __init__(self, f: Callable, batch_size=None, max_memory=None):
        self.f, self.batch_size, self.max_memory = f, batch_size, max_memory

    def __call__(self, x):
        return hessian(self.f, x, batch_size=self.batch_size, max_memory=self.max_memory)

    def __repr__(self) -> str:
        return f"hessian({getattr(self.f, '__name__', repr(self.f))})"
