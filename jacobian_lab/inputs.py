"""f's other arguments as a compiled program takes them: ``jl.jit(jl.grad(loss))(w, X, y)``.

A compiled derivative differentiates with respect to its `argnums` and takes
f's other arguments (positional or by keyword, in tuples, lists and dicts too)
as ``jax.jit`` takes them:

* an array, or a NumPy scalar (``np.float64(t)``), is an input of the
  program: a new batch X is computed with, not compiled in, so one program
  serves every batch of the same shape and dtype;
* anything else (a Python number, a string, None, a function) is compiled in,
  as ``jax.jit`` compiles in its ``static_argnums``: a program serves the calls
  with equal values, and another value compiles another program. A Python
  number is one because NumPy promotes it differently from any array
  (``2.0 * x32`` is float32, ``np.float64(2.0) * x32`` float64), so that an
  input standing for it could change the dtypes f computes in.

While a program is recorded, f gets each array as an `Observable` over a copy
of it, as it gets a mask computed from x: what f computes from it with
primitives is recomputed from the new array on every call, and what f's code
reads of it as numbers (``float(y[0])``, ``np.asarray(X)``, ``X[idx]`` with an
index array) is checked first, a call where it differs recompiling rather
than replaying wrongly. An f that writes into an argument is computed eagerly
(`written`), and an object other than those above is refused by its place
among the arguments: one holding arrays would be compiled in with them.
"""
from __future__ import annotations

import enum
import functools
import math
import operator
import types

import numpy as np

from . import snapshots, trees
from .arguments import Bound
from .observables import Observable
from .tracing import Tracer

#: The kinds of arrays a program takes as inputs: booleans, integers, reals and complex numbers
_NUMERIC = frozenset("biufc")


class Inputs:
    """The call ``fun(*args, **kwargs)`` of a compiled derivative, split for its programs.

    `bound`: f as a function of its argnums (`arguments.Bound`), the other
    arguments as given, and `function` what is differentiated, ``wrap(bound)``
    (a Hessian's gradient); `arrays`: those arguments' arrays, the program's inputs
    after x; `key`: what a program is compiled for (their structure, shapes,
    dtypes and layouts, then the values compiled in, `values`); `traced`:
    whether one of them is traced by an enclosing derivative, which a program
    cannot take.

    >>> import numpy as np
    >>> from jacobian_lab import jacrev
    >>> call = Inputs(jacrev(lambda w, X, scale: scale * (X @ w)), (np.ones(2), np.eye(2), 2.0), {})
    >>> [a.shape for a in call.arrays], call.compiled_in()
    ([(2, 2)], ['argument 2'])
    """

    def __init__(self, fun, args: tuple, kwargs: dict, name: str | None = None, wrap=None):
        # name: fun's repr, for Bound's messages (a caller calling often passes it, computed once)
        self.args, self.kwargs, self._name, self._argnums = args, kwargs, name or repr(fun), fun.argnums
        self.bound = Bound(fun.f, args, kwargs, fun.argnums, False, self._name)
        self._wrap = wrap or (lambda bound: bound)
        self.function = self._wrap(self.bound)
        self._skipped = [i for i in range(len(args)) if i not in self.bound.positions]  # the others' positions
        others = [args[i] for i in self._skipped]
        if not kwargs and all(type(a) is np.ndarray for a in others):  # the usual call: arrays, in order
            leaves, self._treedef, structure = others, None, tuple([a.shape for a in others])
        else:
            leaves, self._treedef = trees.flatten((others, kwargs))
            structure = self._treedef
        self.traced = any(isinstance(leaf, (Tracer, Observable)) for leaf in leaves)
        self._leaves = leaves
        # a NumPy scalar as the 0-d array the recording took it as
        self.arrays = [leaf if type(leaf) is np.ndarray else np.asarray(leaf) for leaf in leaves if _is_input(leaf)]
        self._kinds = kinds = tuple([_kind(leaf, self._place, k) for k, leaf in enumerate(leaves)])
        self.values = tuple([_value_key(leaf) for leaf, kind in zip(leaves, kinds) if kind[0] == "compiled in"])
        self.key = (structure, kinds, self.values)
        self.family = (structure, kinds)  # the calls whose programs differ in `values` alone

    @property
    def alone(self) -> bool:
        """Whether f is called with its argnums alone: no other argument to take as an input or compile in."""
        return not self._leaves

    def compiled_in(self) -> list[str]:
        """Where the values compiled in sit among f's arguments, for a message."""
        return [self._place(k) for k, kind in enumerate(self._kinds) if kind[0] == "compiled in"]

    def _place(self, k: int) -> str:
        """Where leaf k sits among f's arguments, for a message: "argument 2['X']" or "keyword y"."""
        skipped = self._skipped
        if self._treedef is None:
            return f"argument {skipped[k]}"
        index, _, rest = trees.paths(self._treedef)[k][1:].partition("]")
        if index == "0":  # the positional arguments besides argnums
            number, _, rest = rest[1:].partition("]")
            return f"argument {skipped[int(number)]}{rest}"
        name, _, rest = rest[1:].partition("]")
        return f"keyword {name.strip(chr(39))}{rest}"

    def recording(self) -> tuple:
        """(`function` of the arguments f gets while a program is recorded, the arrays the program takes for
        them), the function also kept as `recorded`: each array as an `Observable` over a copy of its own,
        so that two arguments holding one array are two inputs, and an array f closes over stays a constant
        (as x does); a NumPy scalar as one standing for a scalar of its type."""
        copies = [snapshots.copy(a, faithful=True) for a in self.arrays]
        held = iter(copies)
        leaves = [Observable(next(held), scalar=type(leaf) is not np.ndarray) if _is_input(leaf) else leaf
                  for leaf in self._leaves]
        self._handed = [leaf for leaf in leaves if type(leaf) is Observable]
        others, kwargs = (leaves, {}) if self._treedef is None else self._treedef.unflatten(leaves)
        args = list(self.bound.args)
        for i, value in zip(self._skipped, others):
            args[i] = value
        self.recorded = self._wrap(Bound(self.bound.f, tuple(args), kwargs, self._argnums, False, self._name))
        return self.recorded, copies

    def written(self) -> list[str]:
        """Where the arguments sit that f wrote into (``X += 1``, ``X[0] = v``) in the last `recording`: a
        program would not write, while eager mode writes into the caller's arrays (and into any other name
        of the same memory), so such an f is computed eagerly, as written."""
        places = [k for k, kind in enumerate(self._kinds) if kind[0] in ("array", "scalar")]
        return [self._place(k) for k, given, held in zip(places, self.arrays, self._handed)
                if not snapshots.same_bytes(given, np.asarray(held._array))]


def _is_input(leaf) -> bool:
    """Whether a program takes `leaf` as an input: an ndarray, or a NumPy scalar of numbers."""
    return type(leaf) is np.ndarray or (isinstance(leaf, np.generic) and leaf.dtype.kind in _NUMERIC)


def _kind(leaf, place, k: int) -> tuple:
    """What a program compiled for `leaf`, the k-th, depends on: an array's dtype and layout (its shape is in
    the structure), another value's type (the value itself is compiled in). ``place(k)`` says where it is,
    for a refusal."""
    if type(leaf) is np.ndarray:
        if leaf.dtype.kind not in _NUMERIC:
            raise TypeError(f"jit takes f's other arrays as inputs of its program, which computes with numbers; "
                            f"{place(k)} is an array of dtype {leaf.dtype}: pass numbers, or bind it first "
                            "(functools.partial), which compiles it in as a constant")
        return "array", leaf.dtype.str, snapshots.layout(leaf)
    if _is_input(leaf):
        return "scalar", leaf.dtype.str
    if isinstance(leaf, (Tracer, Observable)):  # (an Observable passes for an ndarray)
        return "traced", id(leaf)  # never compiled: the call is computed without a program
    if isinstance(leaf, np.ndarray):
        raise TypeError(f"jit takes f's other arrays as inputs of its program as plain ndarrays; {place(k)} is a "
                        f"{type(leaf).__module__}.{type(leaf).__name__}: pass np.asarray of it, or bind it first "
                        "(functools.partial), which compiles it in as a constant")
    if not isinstance(leaf, _COMPILED_IN) or _bound(leaf):  # an object holding arrays would be frozen in
        raise TypeError(f"jit takes f's other arguments as arrays (inputs of its program) or as numbers, strings "
                        f"and functions (compiled in); {place(k)} is a {type(leaf).__name__}: pass its arrays (in "
                        "a tuple, list or dict), or bind it first (functools.partial), which compiles it in as it is")
    try:
        hash(leaf)
    except TypeError:
        raise TypeError(f"jit compiles in f's arguments that are not arrays, as jax.jit its static_argnums, which "
                        f"needs them hashable; {place(k)} is an unhashable {type(leaf).__name__}: make it hashable, "
                        "or bind it first (functools.partial), which compiles it in as it is") from None
    return "compiled in", type(leaf)


#: What jit compiles in: values that stay what they are, and functions (as closures, read when compiled):
#: Python's, NumPy's (np.mean is a dispatcher) and their wrappers; not an object's bound method or a callable
#: object, whose state (arrays) would be frozen in with them
_COMPILED_IN = (bool, int, float, complex, str, bytes, type(Ellipsis), np.dtype, np.generic, enum.Enum, type,
                types.FunctionType, types.BuiltinFunctionType, np.ufunc, type(np.mean), np.vectorize,
                functools.partial, operator.itemgetter, operator.attrgetter, operator.methodcaller)


def _bound(function) -> bool:
    """Whether `function` is a builtin bound to an object (A.dot of an array A): the object's state would be
    frozen in with it, as with an object's method. A module's builtins (len, math.sin), a ufunc's methods
    (np.add.reduce) and a class's are not."""
    owner = getattr(function, "__self__", None)
    return isinstance(function, types.BuiltinFunctionType) and owner is not None and not isinstance(
        owner, (types.ModuleType, np.ufunc, type))


def _value_key(value):
    """A value compiled in as a program tells it from others: a float by its bits (-0.0 is not 0.0, and a
    NaN is itself, where NaN != NaN would compile a program per call)."""
    if type(value) is float:
        return value.hex(), math.copysign(1.0, value)  # (NaN's hex has no sign)
    if type(value) is complex:
        return _value_key(value.real), _value_key(value.imag)
    return value
