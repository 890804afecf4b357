"""Twins: the built-in problems' functions written over an array namespace.

Every built-in problem (``jacobian_lab.problems``) is a plain-NumPy closure:
``p.f`` calls ``np.*`` directly on arrays it captured when the problem was
built. JAX, PyTorch and HIPS autograd cannot run that function, so each one
is written here a second time, as a *twin*: a function ``body(ns, x, **data)``
whose array operations go through the namespace ``ns`` (``numpy``,
``jax.numpy``, ``torch`` or ``autograd.numpy``) and which otherwise repeats
``p.f`` operation for operation.

The twin does not re-create the problem's data. Its keyword parameters are
the names ``p.f`` reads from its closure and module globals (``W``, ``b``,
``t``, ``h``, ...), and :func:`twin_constants` reads their values from there
by name. So a twin always runs on the very arrays ``p.f`` uses, at whatever
size and seed the problem was built with, and a change to a problem's data
needs no change here. :func:`mismatch` evaluates the twin with ``ns = numpy``
and compares it with ``p.f``: the value and the exact ``count_flops`` must
agree, which catches a twin that no longer matches its problem.

Used by ``crosscheck_flops.py`` (FLOP counts against XLA and PyTorch) and
``bench_peers.py`` (Jacobian timings against JAX, PyTorch and autograd)::

    p = jacobian_lab.problems.get("dense", n=300)
    constants = twin_constants("dense", p.f)     # {"W": ..., "b": ...}
    assert mismatch("dense", p, constants) is None
    f_jax = twin("dense", constants, jax.numpy, jax.numpy.asarray)

To add a twin for a new problem ``name``:

1. write ``_name(ns, x, ...)`` below, the problem's ``f`` with ``np.`` replaced
   by ``ns.``; after ``ns`` and the input, its parameters are named exactly
   like the closure variables or module globals ``f`` reads;
2. add it to :data:`TWINS` under the problem's name;
3. run ``scripts/crosscheck_flops.py --small``: it reports an error when the
   twin needs a name ``f`` does not define or computes something else.

Use only operations the three namespaces spell alike (``ns.sum``, ``ns.exp``,
``ns.tanh``, ``@``, slicing, ``reshape``, ...) and keep the order of the
operations of ``f``, so that the FLOP counts agree too.
"""
from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

import jacobian_lab as jl

__all__ = ["TWINS", "mismatch", "twin", "twin_constants"]


def _seed(ns, x):
    return ns.sum(ns.sin(ns.exp(x**2)))


def _mlp_loss(ns, theta, X, targets, split1, split2, h, _FEATURES):
    W1 = theta[:split1].reshape(_FEATURES, h)
    b1 = theta[split1:split2]
    w2 = theta[split2:]
    prediction = ns.tanh(X @ W1 + b1) @ w2
    return ns.mean((prediction - targets) ** 2)


def _curve(ns, p, t):
    return p[0:1] * ns.exp(-p[1:2] * t) * ns.sin(p[2:3] * t + p[3:4])


def _dense(ns, x, W, b):
    return ns.tanh(W @ x + b)


def _bratu(ns, u, h, lam):
    return (u[:-2] - 2 * u[1:-1] + u[2:]) / h**2 + lam * ns.exp(u[1:-1])


def _tanh_chain(ns, x, A, B):
    return ns.tanh(B @ ns.tanh(A @ x))


TWINS: dict[str, Callable] = {
    "seed": _seed, "mlp_loss": _mlp_loss, "curve": _curve, "dense": _dense, "bratu": _bratu,
    "wide_to_tall": _tanh_chain, "tall_to_wide": _tanh_chain,
}


def twin_constants(name: str, f: Callable) -> dict:
    """The values the twin of problem `name` needs, read from f's closure and globals."""
    wanted = list(inspect.signature(TWINS[name]).parameters)[2:]
    closure = inspect.getclosurevars(f)
    found = {k: v for k, v in {**closure.globals, **closure.nonlocals}.items()
             if not isinstance(v, types.ModuleType)}
    missing = [k for k in wanted if k not in found]
    if missing:
        raise LookupError(f"the twin of {name!r} needs {', '.join(missing)}, which problem f no longer "
                          f"defines; update TWINS in {Path(__file__).name}")
    return {k: found[k] for k in wanted}


def twin(name: str, constants: dict, ns, convert=lambda a: a) -> Callable:
    """Problem `name`'s f over namespace `ns`, its array constants passed through `convert`."""
    body = TWINS[name]
    converted = {k: convert(v) if isinstance(v, np.ndarray) else v for k, v in constants.items()}
    return lambda x: body(ns, x, **converted)


def mismatch(name: str, p, constants: dict) -> str | None:
    """Why the NumPy twin of problem `p` differs from p.f (value or exact FLOP count), or None."""
    as_numpy = twin(name, constants, np)
    if np.allclose(as_numpy(p.x), p.f(p.x), rtol=1e-12, atol=0) \
            and jl.count_flops(as_numpy, p.x) == jl.count_flops(p.f, p.x):
        return None
    return (f"the twin of {name!r} no longer matches the problem's f (value or count); "
            f"update TWINS in {Path(__file__).name}")
