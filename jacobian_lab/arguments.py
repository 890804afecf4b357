"""Functions of several arguments and functions with auxiliary outputs, as JAX's ``argnums`` and ``has_aux``.

The harness differentiates a function of one x. ``jacrev(f, argnums=1)(a, b, c)``
is the Jacobian of ``v -> f(a, v, c)`` at b, and ``argnums=(0, 2)`` of
``(u, w) -> f(u, b, w)`` at the tuple (a, c), so its Jacobian is nested in that
tuple. With ``has_aux`` f returns ``(output, aux)``: the output is differentiated
and aux comes back beside the derivative as plain arrays, from one evaluation of
f (the first pass's); inside another derivative, aux computed from its traced
values keeps their derivative, as in JAX.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import Callable

import numpy as np

from . import trees
from .engines.base import next_level
from .tracing import Tracer, from_objects


def check(argnums, has_aux):
    """`argnums` as an int or a tuple (a list becomes one, as JAX takes any sequence); refused if it is
    not an int or distinct ints, or if `has_aux` is no bool."""
    if not isinstance(has_aux, (bool, np.bool_)):
        raise TypeError(f"has_aux must be True or False, got {has_aux!r}")
    if isinstance(argnums, list):
        argnums = tuple(argnums)
    numbers = argnums if isinstance(argnums, tuple) else (argnums,)
    for i in numbers:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            point = isinstance(i, (float, np.floating, np.ndarray, dict))  # x, where JAX's transforms take argnums
            raise TypeError(f"argnums must be an int or a sequence of ints, got {argnums!r}" + (
                "; if that is x: jl.grad(f), jl.value_and_grad(f), jl.jacfwd(f) and jl.jacrev(f) return a function "
                "of f's arguments, called as jl.grad(f)(x) (jl.jacobian(f, x) takes x itself)" if point else ""))
    if isinstance(argnums, tuple) and (not argnums or len(set(argnums)) < len(argnums)):
        raise ValueError(f"argnums must name each argument once, and at least one, got {argnums!r}")
    return argnums


def not_argnums(f: Callable, x, name: str) -> None:
    """Refuse ``name(f, 0)`` for an f of several arguments: JAX's ``jax.hessian(f, argnums)``, where here
    x comes second. An int (or a tuple of ints) x is a valid point, so only an f that cannot be called
    with one argument is refused, before it fails with Python's "missing argument"."""
    numbers = x if isinstance(x, tuple) and x else (x,)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in numbers):
        return
    try:
        parameters = inspect.signature(f, follow_wrapped=False).parameters.values()  # a wrapper's own
    except (TypeError, ValueError):  # a builtin or a callable whose signature Python cannot read
        return
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p.name for p in parameters if p.kind in positional and p.default is p.empty]
    if len(required) > 1:
        raise TypeError(f"{name}(f, {x!r}) is the derivative at x = {x!r}, and f takes {len(required)} arguments "
                        f"({', '.join(required)}); x comes second here, argnums by keyword: write "
                        f"{name}(f, argnums={x!r})({', '.join(required)}) for JAX's jax.{name}(f, {x!r})")


def plain(argnums, has_aux) -> bool:
    """Whether a function of one x without aux is asked for: the harness takes it as it is."""
    return not has_aux and not isinstance(argnums, tuple) and argnums == 0


class Bound:
    """f as a function of its `argnums` arguments alone, the others fixed at their values in `args`.

    ``Bound(f, args, kwargs, argnums, has_aux, name)`` is called by the harness with the
    differentiated arguments (`x`: one argument, or a tuple of them); with `has_aux`
    it keeps f's aux and returns the output alone.
    """

    def __init__(self, f: Callable, args: tuple, kwargs: dict, argnums, has_aux: bool, name: str):
        numbers = argnums if isinstance(argnums, tuple) else (argnums,)
        if not args:
            keywords = f" ({', '.join(kwargs)} by keyword, which pass to f undifferentiated)" if kwargs else ""
            raise TypeError(f"{name} differentiates f's positional arguments, got none{keywords}; pass x "
                            "positionally")
        try:
            self.positions = [range(len(args))[i] for i in numbers]  # negative ones from the end
        except IndexError:
            raise TypeError(f"{name} differentiates argnums={argnums!r}, which needs at least "
                            f"{max(i + 1 if i >= 0 else -i for i in numbers)} positional arguments, "
                            f"got {len(args)}") from None
        if len(set(self.positions)) < len(self.positions):
            raise ValueError(f"argnums={argnums!r} names one argument twice among {len(args)} arguments")
        self.f, self.args, self.kwargs, self.has_aux = f, list(args), kwargs, has_aux
        self.single = not isinstance(argnums, tuple)
        chosen = [args[i] for i in self.positions]
        # a list of numbers is one array as one argument, but would merge with the others in a tuple
        self.x = chosen[0] if self.single else tuple(_array_if_numbers(a) for a in chosen)
        self.aux, self.seen = None, False
        self.level = next_level()  # traces above it are this derivative's own: f's aux loses only theirs

    def __call__(self, x):
        args = list(self.args)
        for i, value in zip(self.positions, [x] if self.single else x):
            args[i] = value
        out = self.f(*args, **self.kwargs)
        if not self.has_aux:
            return out
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"with has_aux=True f must return a pair (output, aux), got "
                            f"{_described(out)}; return (output, aux), or drop has_aux")
        if not self.seen:  # every pass evaluates f at the same x: the first aux is theirs
            self.aux, self.seen = primal(out[1], self.level), True
        return out[0]

    def argument(self, path: str) -> str:
        """Where a leaf of x (at `path` in it) sits among f's arguments, for a message: "f's argument 1['k']"."""
        position = self.positions[0]
        if not self.single:  # x is the tuple of the chosen arguments: its first index picks one
            index, _, path = path[1:].partition("]")
            position = self.positions[int(index)]
        return f"f's argument {position}{path}"

    def aux_value(self):
        """The aux of f at x: the one a pass kept, else (passes run elsewhere) from an evaluation here."""
        if not self.seen:
            self(self.x)
        return self.aux

    def returned(self, result, with_value: bool):
        """What the caller gets: the derivative (or (value, derivative)) with f's aux beside it when it has one."""
        if not self.has_aux:
            return result
        if with_value:  # value_and_grad: ((value, aux), gradient), as jax.value_and_grad
            return (result[0], self.aux_value()), result[1]
        return result, self.aux_value()


def call(fun, args: tuple, kwargs: dict, of: Callable, with_value: bool = False):
    """``of(f, x)`` for the derivative function `fun` (holding f, argnums and has_aux) called with `args`:
    f itself at the one argument, or f bound to the others, with aux returned as JAX returns it."""
    if len(args) == 1 and not kwargs and plain(fun.argnums, fun.has_aux):
        return of(fun.f, args[0])
    bound = Bound(fun.f, args, kwargs, fun.argnums, fun.has_aux, repr(fun))
    return bound.returned(of(bound, bound.x), with_value)


def numbers(f) -> frozenset:
    """The places in x of the arguments of f, when it is bound, that the caller gave as numbers (a float, a NumPy
    scalar), as paths begin them ("[1"): their 0-d arrays in x's tuple stand for immutable values, not 0-d
    arrays f may write into."""
    if isinstance(f, Bound) and not f.single:
        return frozenset(f"[{i}" for i, a in enumerate(f.args[p] for p in f.positions)
                         if isinstance(a, (int, float, np.generic)))
    return frozenset()


def naming(f) -> Callable | None:
    """`Bound.argument` of f, or of the f a Hessian's gradient (`hessian.Derivative`) differentiates, when
    it is bound: how a refusal names where a leaf of x sits among f's arguments."""
    for candidate in (f, getattr(f, "f", None)):
        if isinstance(candidate, Bound):
            return candidate.argument
    return None


def _array_if_numbers(value):
    return np.asarray(value, dtype=float) if trees.is_numbers(value) and not isinstance(value, bool) else value


def _described(out) -> str:
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)}"
    if hasattr(out, "shape"):  # a traced array is named as the array it stands for
        return f"an array of shape {np.shape(out)}"
    return f"a {type(out).__name__}"


def primal(aux, level: int):
    """aux with every array traced by traces above `level` (the derivative's own) replaced by a copy of
    its value: what f computed, without those derivatives, in arrays of its own (a traced value's is
    the tape's, which a pullback from `jl.vjp` reads later). A trace of an enclosing derivative stays:
    aux computed from its values carries its derivative on, as in JAX."""
    if isinstance(aux, (tuple, list)):
        return trees.sequence(type(aux), [primal(v, level) for v in aux])
    if isinstance(aux, dict):
        return trees.mapping(type(aux), [(k, primal(v, level)) for k, v in aux.items()],
                             getattr(aux, "default_factory", None))
    if dataclasses.is_dataclass(aux) and not isinstance(aux, type):  # a copy with its fields so (frozen ones too)
        plain = copy.copy(aux)
        for field in dataclasses.fields(aux):
            if hasattr(aux, field.name):  # (a field with init=False that nothing set has no value)
                object.__setattr__(plain, field.name, primal(getattr(aux, field.name), level))
        return plain
    aux = from_objects(aux)  # np.array([a, b]) of traced scalars: one traced array
    traced = isinstance(aux, Tracer) and aux._trace.level > level
    while isinstance(aux, Tracer) and aux._trace.level > level:  # a Hessian traces f twice
        aux = aux.primal
    return aux.copy() if traced and isinstance(aux, np.ndarray) else aux


def described(argnums, has_aux) -> str:
    """The options a function's repr shows: those that are not the default."""
    return (f", argnums={argnums!r}" if argnums != 0 else "") + (", has_aux=True" if has_aux else "")
