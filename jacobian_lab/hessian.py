"""Hessians: the Jacobian of the gradient sweep, forward or reverse over reverse.

The Hessian of f is the Jacobian of its gradient. The harness differentiates
a function that records f on the reverse engine and sweeps the tape; the
engines nest, so each pass differentiates the recording and the sweep
themselves. Forward over reverse (``jax.hessian``'s order) pushes k tangent
seeds through one gradient sweep per pass; reverse over reverse records the
sweep once and pulls k cotangents back through it, and skips the tangents of
f's own value that the forward order carries along.

Counted work keeps the phases' meanings: "primal" is f's evaluation,
"cotangent" the values the gradient sweep computes (and, reverse over
reverse, the sweeps back through it), "tangent" every forward-mode
derivative.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import arguments, engines, memory, sharding, trees
from .compressed import SparseJacobian
from .jacobian import _NO_X, JacobianFunction, _flat_like, _split_batch, function_name, wraps
from .harness import check_function, check_options, flat_output, prepare, result_dtype, seeds

__all__ = ["HessianFunction", "SparseHessian", "hessian", "hvp", "sparse_hessian"]


def hessian(f: Callable, x=_NO_X, *, mode: str = "forward", batch_size=None, max_memory=None, executor=None,
            argnums=0, has_aux: bool = False):
    """The Hessian of f at x, shape ``f(x).shape + x.shape + x.shape`` (like ``jax.hessian``).

    The Jacobian of f's gradient sweep, in `mode`: "forward" (forward over
    reverse, as ``jax.hessian``: one gradient sweep per forward pass, with
    `batch_size` tangent seeds per pass), "reverse" (reverse over reverse:
    the sweep recorded once and swept back with `batch_size` cotangents; it
    skips the tangents of f's own value, which the forward order carries) or
    "auto" (the order with fewer predicted FLOPs). batch_size=None: as many
    seeds as keep a pass's arrays about cache-sized, within `max_memory`. A
    vector-valued f gives each output's Hessian, its sweep pulling back every
    output at once, and one returning a tuple, list or dict of arrays a Hessian
    per array, in f's structure. Without x, the Hessian as a function of x.
    x may be a tree of arrays for a scalar f: the Hessian is then nested twice
    in x's structure. Both nest as ``jax.hessian`` does. executor: runs the
    passes side by side, as for `jacobian`. argnums and has_aux as for
    ``jl.jacrev``: ``hessian(f, argnums=(0, 1))(a, b)`` nests the blocks
    ``H[i][j]`` of arguments i and j, and has_aux returns ``(hessian, aux)``.
    The result is not symmetrized (neither is JAX's): H[i, j] and H[j, i] are
    computed by different passes and may differ in their last bits; take
    ``(H + H.T) / 2`` where exact symmetry matters.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.hessian(lambda x: x[0] ** 2 * x[1], np.array([1.0, 3.0]))
    array([[6., 2.],
           [2., 0.]])
    >>> jl.hessian(lambda x: np.log(np.sum(np.exp(x))))(np.zeros(2))  # diag(p) - p p^T, p = softmax(x)
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    fun = HessianFunction(f, mode, batch_size, max_memory, executor, argnums=argnums, has_aux=has_aux)
    if x is _NO_X:
        return fun
    arguments.not_argnums(f, x, "hessian")
    return fun(x)


def hvp(f: Callable, x, v):
    """The Hessian-vector product H(x) v of a scalar f, without forming H (like
    ``jax.jvp(jax.grad(f), (x,), (v,))[1]``).

    One forward pass over the recorded gradient sweep: about the work of one
    gradient and one tangent of it. v has x's shape, or ``(k, *x.shape)`` for k
    products in one pass (the result then has that shape too). For a tree of
    arrays x (a dict of parameters), v and the result have x's structure.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.hvp(lambda x: np.sum(x ** 3), np.array([1.0, 2.0]), np.array([1.0, 1.0]))  # 6 x * v
    array([ 6., 12.])
    >>> jl.hvp(lambda p: p["a"] ** 2 * p["b"], {"a": 1.0, "b": 3.0}, {"a": 1.0, "b": 0.0})
    {'a': array(6.), 'b': array(2.)}
    """
    check_function(f)
    g, x_flat = prepare(f, x, nested=True)
    v = _flat_like(v, g.in_def, "v")
    tangents, batched = _split_batch(v, x_flat.shape, "v", result_dtype(x_flat))
    _, products = engines.get("forward").jvp(Derivative(g, scalar="a Hessian-vector product"), x_flat, tangents)
    products = products.astype(tangents.dtype, copy=False)  # the derivative dtype, as for jvp
    return products if batched else g.unflatten(products[0, ...], "in")


def structured(x) -> bool:
    """Whether x is a tree of arrays (a nested list of plain numbers is one array)."""
    return trees.is_tree(x) and not trees.is_numbers(x)


_LAST = object()


class Derivative:
    """v -> the Jacobian of f at v, shape ``y.shape + v.shape``, from one reverse sweep of all outputs.

    What a Hessian differentiates: for a scalar f, its gradient. With
    `scalar` (naming what needs it) f must return a scalar.
    """

    def __init__(self, f: Callable, scalar: str | None = None):
        self.f, self.scalar = f, scalar
        self.out_def = None  # a tree of arrays f returned: its structure (`unflattened`)
        self.__name__ = getattr(f, "__name__", "f")  # what messages call it: f's own name

    def __call__(self, v):
        y, pullback = engines.get("reverse").vjp(self._flat, v)
        if self.scalar and np.shape(y) != ():
            raise TypeError(f"{self.scalar} needs f to return a scalar (shape ()), got {self._returned(y)}; "
                            "jl.hessian of one array x gives each output's Hessian")
        # float32 x: float32 seeds, as rows(); the one sweep frees each record as it passes it (as grad's does), so
        # that an enclosing forward pass's tangents of f's values do not all stay alive to its end
        rows = pullback(seeds(0, np.size(y), np.shape(y), result_dtype(v)), True)
        return np.reshape(rows, np.shape(y) + np.shape(v))

    def _returned(self, y) -> str:
        """What f returned, in words: a structured x's f (`Flattened`) ravels a tree of outputs into y."""
        out_def = getattr(self.f, "out_def", None)
        if out_def is None:
            return f"shape {np.shape(y)}"
        return f"{trees.with_article(out_def.kind.__name__)} of {len(out_def.leaves)} arrays"

    def _flat(self, v):
        out = self.f(v)
        y, out_def = flat_output(out)
        if out_def is not None and self.scalar:
            raise TypeError(f"{self.scalar} needs f to return a scalar (shape ()), got a {type(out).__name__}")
        self.out_def = out_def  # this evaluation's: f may return another tree at another x
        return y

    def unflattened(self, H, x_shape, out_def=_LAST):
        """The Hessian H of the vector of f's outputs as f returned them (`out_def`, the structure of a tree
        of outputs or None for one array; by default the last evaluation's): each array of a tree its own
        Hessian, of shape ``leaf.shape + x.shape + x.shape``, as jax.hessian nests them."""
        out_def = self.out_def if out_def is _LAST else out_def
        if out_def is None:
            return H
        pair = trees.TreeDef(None, shape=tuple(x_shape) * 2)
        return trees.blocks(np.reshape(H, (out_def.size, pair.size)), out_def, pair)


class HessianFunction:
    """The Hessian of f as a function of x: what `hessian` returns without x.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.hessian(np.sin)
    hessian(sin)
    """

    def __init__(self, f: Callable, mode: str = "forward", batch_size=None, max_memory=None, executor=None, *,
                 argnums=0, has_aux=False):
        check_function(f)
        check_options(mode, batch_size, name="hessian")
        sharding.check_executor(executor)
        argnums = arguments.check(argnums, has_aux)
        self.f, self.mode, self.batch_size, self.max_memory = f, mode, batch_size, max_memory
        self.executor, self.argnums, self.has_aux = executor, argnums, has_aux
        wraps(self, f)

    def __call__(self, *args, **kwargs):
        """The Hessian at f's arguments: in the ones `argnums` names, the others passed to f as they are.

        >>> import numpy as np, jacobian_lab as jl
        >>> jl.hessian(lambda w, c: c * np.sum(w ** 3))(np.ones(2), 2.0)
        array([[12.,  0.],
               [ 0., 12.]])
        """
        return arguments.call(self, args, kwargs, self._of)

    def _of(self, f: Callable, x):
        with memory.building("Hessian"):
            if not structured(x):
                fun = self.as_jacobian(Derivative(f))
                return fun.f.unflattened(fun(x), np.shape(x))
            g, x_flat, fun = self.flattened(x, f)
            return trees.blocks(fun(x_flat), g.in_def, g.in_def)

    def flattened(self, x, f: Callable | None = None) -> tuple:
        """For a tree of arrays x: ``(g, x_flat, fun)``, f (default: this Hessian's) on one flat vector
        (`prepare`), that vector, and the Jacobian function of g's gradient sweep;
        ``trees.blocks(fun(x_flat), g.in_def, g.in_def)`` cuts its Hessian into blocks as jax.hessian
        nests them."""
        g, x_flat = prepare(f or self.f, x, nested=True)
        return g, x_flat, self.as_jacobian(Derivative(g, scalar="the Hessian in a structured x or a tuple of argnums"))

    def as_jacobian(self, gradient=None) -> JacobianFunction:
        """The Jacobian of f's gradient sweep (`gradient`: a `Derivative` of f) in `mode`: the Hessian,
        as a Jacobian function (what `jit` compiles)."""
        return JacobianFunction(gradient or Derivative(self.f), self.mode, self.batch_size,
                                max_memory=self.max_memory, executor=self.executor)

    def __repr__(self) -> str:
        mode = "" if self.mode == "forward" else f", mode={self.mode!r}"
        return f"hessian({function_name(self.f)}{mode}{arguments.described(self.argnums, self.has_aux)})"


def sparse_hessian(f: Callable, x=_NO_X, mode: str = "auto", batch_size=None):
    """The Hessian of a scalar f at x as a `scipy.sparse.csr_array` (n, n), from compressed seeds.

    `sparse_jacobian` of f's gradient: the pattern is read from the tape of
    the gradient (f recorded and swept), its columns (forward) or rows
    (reverse) are colored, and one seed per color gives every stored entry,
    equal to ``hessian(f, x)``'s. mode="star" uses the symmetry: a star
    coloring of the columns (`jacobian_lab.symmetric`) reads each entry (i, j)
    where it stands alone, at (i, j) or at its mirror image (j, i), so an
    entry read at (j, i) is ``hessian(f, x)[j, i]``, equal to (i, j) up to
    rounding where both are finite (at a point where a second derivative is
    inf or NaN, the two places may differ in that). It can take far fewer
    seeds: 2 for an arrow-shaped Hessian, where a column coloring takes n.
    mode="auto" weighs it too, after the others. batch_size: colors per pass,
    as for `sparse_jacobian`. Without x, the sparse Hessian as a function of
    x, keeping its coloring.
    For a tree of arrays x the result is the flat (n, n) Hessian, its rows
    and columns in the order ``jacobian(..., flat=True)`` flattens x.

    >>> import numpy as np, jacobian_lab as jl
    >>> H = jl.sparse_hessian(lambda x: np.sum(x[1:] * x[:-1] ** 2), np.arange(1.0, 5.0))
    >>> H.nnz, H.toarray()[1]
    (9, array([2., 6., 4., 0.]))
    """
    hess = SparseHessian(f, mode, batch_size)
    return hess if x is _NO_X else hess(x)


class SparseHessian(SparseJacobian):
    """The sparse Hessian of f as a function of x: what `sparse_hessian` returns without x.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.sparse_hessian(np.sum)
    sparse_hessian(sum, mode='auto')
    """

    def __init__(self, f: Callable, mode: str = "auto", batch_size=None):
        check_function(f)
        super().__init__(Derivative(f, scalar="a sparse Hessian"), mode, batch_size, symmetric=True)
        self.of = f
        wraps(self, f)
        # x's structure, layouts and read-only leaves -> the sparse Jacobian of f's gradient on the flat vector
        self._flat: dict = {}

    def __call__(self, x, *more):
        """The sparse Hessian at x (`scipy.sparse.csr_array`); of a tree of arrays x, flat, rows and columns in the
        order ``jacobian(..., flat=True)`` flattens x.

        >>> import numpy as np, jacobian_lab as jl
        >>> jl.sparse_hessian(lambda t: np.sum(t["a"] ** 3))({"a": np.ones(2)}).toarray()
        array([[6., 0.],
               [0., 6.]])
        """
        if more or not structured(x):
            return super().__call__(x, *more)
        x_flat, flat = self.flattened(x)
        H = flat(x_flat)
        self.chosen, self.colors, self.seeds = flat.chosen, flat.colors, flat.seeds
        return H

    def flattened(self, x) -> tuple:
        """For a tree of arrays x: ``(x_flat, fun)``, x as one flat vector and the `SparseJacobian` of the
        gradient of f on that vector (one per structure, keeping its coloring): ``fun(x_flat)`` is the
        (n, n) Hessian, rows and columns in the order `jacobian(..., flat=True)` flattens x."""
        g, x_flat = prepare(self.of, x)
        key = g.in_def, g.layout, g.read_only  # f gets the leaves laid out as g lays them out
        flat = self._flat.get(key)
        if flat is None:
            flat = self._flat[key] = SparseJacobian(Derivative(g, scalar="a sparse Hessian"), self.mode,
                                                    self.batch_size, symmetric=True)
        return x_flat, flat

    def __repr__(self) -> str:
        return f"sparse_hessian({function_name(self.of)}, mode={self.mode!r})"
