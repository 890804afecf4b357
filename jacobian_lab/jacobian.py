"""The public transforms, as JAX names them: `jacobian`, `jacfwd`, `jacrev`, `grad`, `value_and_grad`, `jvp` and
`vjp`, built on the harness (`jacobian_lab.harness`)."""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from . import arguments, engines, harness, sharding, snapshots, trees
from . import prediction as _prediction
from .engines.base import inside_a_trace
from .harness import (_FLOAT64, Flattened, _check_derivative, _described, check_flat, check_function, check_options,
                      columns, prepare, result_dtype, rows)
from .primitives import is_masked
from .tracing import Tracer


def function_name(f) -> str:
    """How a function object's repr names the f it wraps: its __name__, else its repr; for another of these
    objects, its repr (jacfwd(grad(f)), not the name of the f it shows as functools.wraps would)."""
    if type(f).__module__.startswith("jacobian_lab.") and "__name__" in vars(f):  # one that `wraps` named
        return repr(f)
    return getattr(f, "__name__", repr(f))


def wraps(fun, f, signature: bool = True):
    """Give the function object `fun` what functools.wraps gives a wrapper of f, as JAX's transforms do: f's
    __module__, __name__ and __qualname__ where f has them, and with `signature` f as __wrapped__, so that
    ``inspect.signature(fun)`` reads f's arguments (not for functions that take one x). Returns fun.

    >>> import inspect, numpy as np, jacobian_lab as jl
    >>> def loss(w, x):
    ...     return np.sum(w * x)
    >>> g = jl.grad(loss)
    >>> g.__name__, str(inspect.signature(g)), g
    ('loss', '(w, x)', grad(loss))
    """
    for attribute in ("__module__", "__name__", "__qualname__"):
        value = getattr(f, attribute, None)
        if isinstance(value, str):
            setattr(fun, attribute, value)
    if signature:
        fun.__wrapped__ = f
    return fun


_NO_X = object()


def jacobian(f: Callable, x=_NO_X, mode: str = "auto", batch_size=None, *, flat: bool = False, max_memory=None,
             executor=None, argnums=0, has_aux: bool = False):
    """The Jacobian of f at x, shape ``f(x).shape + x.shape``.

    Without x, the Jacobian as a function of x (what `jit` compiles):
    ``jl.jacobian(f, mode="auto")(x) == jl.jacobian(f, x)``.

    mode: "forward" (columns from JVPs), "reverse" (rows from VJPs of one tape)
    or "auto" (the order with fewer predicted FLOPs). batch_size: seeds per pass;
    1 = one pass per seed, None = as many as keep a pass's derivative arrays
    about cache-sized (`harness.PASS_ELEMENTS`) and within the memory budget.
    x (and f's output) may be nested tuples, lists or dicts of arrays: the
    Jacobian is then nested the same way, output structure outside, input
    structure inside (as in JAX), or one (m, n) matrix with ``flat=True``.
    max_memory: bytes the result and a pass's working set may take (default:
    half the available memory); a larger Jacobian is refused before allocation.
    executor: a `concurrent.futures` executor (or a Dask Client) to run the
    passes side by side: threads share the caller's tape, when there is one,
    other executors evaluate a picklable f again (see `jacobian_lab.sharding`).
    argnums and has_aux as in JAX (see `jacrev`), for the function form; with
    x, x is f's one argument, and has_aux gives ``(J, aux)`` there too.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.jacobian(lambda x: x[:2] * x[1:], np.array([1.0, 2.0, 3.0]), mode="forward")
    array([[2., 1., 0.],
           [0., 3., 2.]])
    >>> J = jl.jacobian(lambda p: p["a"] * p["b"], {"a": np.ones(2), "b": np.full(2, 3.0)})
    >>> J["a"]
    array([[3., 0.],
           [0., 3.]])
    """
    if x is not _NO_X:
        arguments.not_argnums(f, x, "jacobian")
    if x is _NO_X or not arguments.plain(argnums, has_aux):
        fun = JacobianFunction(f, mode, batch_size, flat=flat, max_memory=max_memory, executor=executor,
                               argnums=argnums, has_aux=has_aux)
        return fun if x is _NO_X else fun(x)
    check_options(mode, batch_size)
    check_flat(flat)
    sharding.check_executor(executor)
    g, x_flat = prepare(f, x, nested=True)
    recorded = None
    if inside_a_trace():  # inside another derivative, whose trace the passes extend: here, in turn
        executor = None
        if mode == "auto":
            mode, recorded = _order_by_shape(g, x_flat)
    elif mode == "auto":
        mode, recorded = _prediction.choose_order(g, x_flat, batch_size, max_memory)
    if mode == "forward":
        J = columns(g, x_flat, batch_size, max_memory, recorded, executor)
    else:
        J = rows(g, x_flat, batch_size, max_memory, recorded, executor)
    return finish(g, J, x_flat, flat)


def _order_by_shape(f: Callable, x) -> tuple:
    """(mode, (y, pullback)): auto mode's order inside another derivative, and the tape it recorded: reverse
    where f has fewer outputs than inputs, else forward (on a tie too, as `Prediction.choose`), replaying the
    tape. Its prediction would count, and probe with, the enclosing derivative's work on the values f reads
    from it, so the order would follow the enclosing derivative's."""
    y, pullback = engines.get("reverse").vjp(f, x)
    return ("reverse" if np.size(y) < np.size(x) else "forward"), (y, pullback)


def finish(g: Flattened, J: np.ndarray, x_flat: np.ndarray, flat: bool):
    """J (shape ``y.shape + x_flat.shape``) as the caller asked: flat, structured or as it is."""
    y_shape = J.shape[: J.ndim - x_flat.ndim]
    if flat:
        return J.reshape(int(np.prod(y_shape, dtype=np.int64)), x_flat.size)
    return g.unflatten_jacobian(J, y_shape) if g.structured else J


class JacobianFunction:
    """The Jacobian of f as a function of x: what jacfwd, jacrev and grad return, and `jit` compiles.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.jacrev(np.sin)
    jacrev(sin)
    """

    _NAMES = {"forward": "jacfwd", "reverse": "jacrev", "auto": "jacobian"}

    def __init__(self, f: Callable, mode: str, batch_size=None, *, flat=False, max_memory=None, scalar=False,
                 executor=None, argnums=0, has_aux=False):
        check_function(f)
        check_options(mode, batch_size)
        check_flat(flat)
        sharding.check_executor(executor)
        argnums = arguments.check(argnums, has_aux)
        self.f, self.mode, self.batch_size, self.flat, self.max_memory = f, mode, batch_size, flat, max_memory
        self.scalar = scalar  # grad: f must return a scalar, the result has x's structure
        self.executor, self.argnums, self.has_aux = executor, argnums, has_aux
        wraps(self, f)

    def __call__(self, *args, **kwargs):
        """The derivative at f's arguments: in the ones `argnums` names, the others passed to f as they are.

        >>> import numpy as np, jacobian_lab as jl
        >>> jl.jacrev(lambda w, c: np.sum(c * w ** 2))(np.ones(2), 3.0)  # in w; c passed as it is
        array([6., 6.])
        """
        return arguments.call(self, args, kwargs, self._of)

    def _of(self, f: Callable, x):
        if self.scalar:
            return _gradient(f, x)
        return jacobian(f, x, self.mode, self.batch_size, flat=self.flat, max_memory=self.max_memory,
                        executor=self.executor)

    def __repr__(self) -> str:
        name = "grad" if self.scalar else self._NAMES[self.mode]
        return f"{name}({function_name(self.f)}{arguments.described(self.argnums, self.has_aux)})"


def jacfwd(f: Callable, argnums=0, has_aux: bool = False, *, batch_size=None, flat: bool = False, max_memory=None,
           executor=None) -> Callable:
    """Jacobian by forward accumulation, as a function of f's arguments (like ``jax.jacfwd``).

    argnums and has_aux as for `jacrev`; batch_size, flat, max_memory and
    executor as for `jacobian`.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.jacfwd(np.sin)(np.zeros(2))
    array([[1., 0.],
           [0., 1.]])
    """
    return JacobianFunction(f, "forward", batch_size, flat=flat, max_memory=max_memory, executor=executor,
                            argnums=argnums, has_aux=has_aux)


def jacrev(f: Callable, argnums=0, has_aux: bool = False, *, batch_size=None, flat: bool = False, max_memory=None,
           executor=None) -> Callable:
    """Jacobian by reverse accumulation, as a function of f's arguments (like ``jax.jacrev``).

    argnums: which positional argument to differentiate (negative counts from
    the end), or a tuple of them, whose Jacobians then come as a tuple (nested
    inside a structured output's). The other arguments, and keyword arguments,
    pass to f as they are. has_aux: f returns ``(output, aux)``; the result is
    ``(jacobian, aux)``, aux holding f's values without derivatives.
    batch_size (cotangent seeds per sweep), flat, max_memory and executor as
    for `jacobian`.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.jacrev(lambda x: np.sum(x ** 2))(np.array([1.0, 2.0]))
    array([2., 4.])
    >>> jl.jacrev(lambda w, x: w @ x, argnums=1)(np.eye(2), np.ones(2))
    array([[1., 0.],
           [0., 1.]])
    >>> jl.jacrev(lambda x: (x ** 2, x.sum()), has_aux=True)(np.array([3.0]))
    (array([[6.]]), np.float64(3.0))
    """
    return JacobianFunction(f, "reverse", batch_size, flat=flat, max_memory=max_memory, executor=executor,
                            argnums=argnums, has_aux=has_aux)


def grad(f: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """Gradient of a scalar-valued f, as a function of f's arguments (like ``jax.grad``); same structure as
    the argument it differentiates.

    argnums: which positional argument (or a tuple of them, giving a tuple of
    gradients); has_aux: f returns ``(loss, aux)`` and the result is
    ``(gradient, aux)``.

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.grad(lambda x: np.sum(np.sin(x)))(np.zeros(3))
    array([1., 1., 1.])
    >>> loss = lambda w, X, y: np.mean((X @ w - y) ** 2)
    >>> jl.grad(loss)(np.zeros(2), np.eye(2), np.array([1.0, -1.0]))
    array([-1.,  1.])
    """
    return JacobianFunction(f, "reverse", scalar=True, argnums=argnums, has_aux=has_aux)


def value_and_grad(f: Callable, argnums=0, has_aux: bool = False) -> "ValueAndGrad":
    """f's value and its gradient, from one evaluation of f (like ``jax.value_and_grad``).

    argnums as for `grad`; with has_aux the result is ``((value, aux), gradient)``.

    >>> import numpy as np, jacobian_lab as jl
    >>> value, gradient = jl.value_and_grad(lambda x: np.sum(x ** 2))(np.array([1.0, 2.0]))
    >>> float(value), gradient
    (5.0, array([2., 4.]))
    """
    return ValueAndGrad(f, argnums, has_aux)


class ValueAndGrad:
    """``x -> (f(x), grad f(x))`` for a scalar f: what `value_and_grad` returns."""

    def __init__(self, f: Callable, argnums=0, has_aux: bool = False):
        check_function(f)
        argnums = arguments.check(argnums, has_aux)
        self.f, self.argnums, self.has_aux = f, argnums, has_aux
        wraps(self, f)

    def __call__(self, *args, **kwargs):
        return arguments.call(self, args, kwargs, _value_and_gradient, with_value=True)

    def __repr__(self) -> str:
        return f"value_and_grad({function_name(self.f)}{arguments.described(self.argnums, self.has_aux)})"


def one_input_error(fun) -> TypeError:
    """The refusal of a second argument: these functions differentiate with respect to one x."""
    return TypeError(f"{fun!r} takes one x; bind f's other arguments first (functools.partial), or pass "
                     "several arrays as one tuple x, differentiating lambda p: f(*p) at (x, y)")


def _with_aux(f: Callable, x, name: str) -> arguments.Bound:
    """f as jvp and vjp take it with has_aux: returning its output alone, and keeping its aux."""
    check_function(f)
    return arguments.Bound(f, (x,), {}, 0, True, name)


def _value_and_gradient(f: Callable, x, name: str = "value_and_grad"):
    y, pullback = vjp(f, x)
    check_scalar(y, name)
    return y, pullback(np.ones((), dtype=np.result_type(y)), _last=True)


def _gradient(f: Callable, x):
    return _value_and_gradient(f, x, "grad")[1]


def check_scalar(y, name: str = "grad") -> None:
    """What grad (or value_and_grad, `name`) requires of f's output."""
    if isinstance(y, (list, tuple, dict)):
        raise TypeError(f"{name} requires f to return a scalar (shape ()), got a {type(y).__name__}; "
                        "use jacrev for structured outputs")
    if np.shape(y) != ():
        raise TypeError(f"{name} requires f to return a scalar (shape ()), got shape {np.shape(y)}; "
                        "use jacrev for vector outputs")


def _split_batch(value, shape, name, dtype=_FLOAT64):
    """Accept `shape` (one direction) or `(k, *shape)` (k directions): -> (batched, was_batched).

    The directions are cast to `dtype`, the derivative dtype of x (`result_dtype`).
    """
    value = _real(value, name).astype(dtype, copy=False)
    if value.shape == tuple(shape):
        return value[None], False
    if value.ndim == len(shape) + 1 and value.shape[1:] == tuple(shape):
        return value, True
    raise ValueError(f"{name} must have shape {tuple(shape)} or (k, *{tuple(shape)}) for k directions, "
                     f"got {value.shape}")


def _flat_like(value, treedef, name):
    """Ravel a structured tangent/cotangent that must match `treedef` exactly."""
    if treedef is None or treedef.kind is None:
        return value
    leaves, d = trees.flatten(value)
    found = trees.difference(d, treedef)
    if found is not None:
        of = "f(x)" if name == "y_bar" else "x"
        raise ValueError(f"{name} must have the same structure and leaf shapes as {of}; {found} (k directions "
                         f"stacked as (k, *shape) are taken for an array {of}; for a tree of arrays, one direction "
                         "per call)")
    return np.concatenate([np.ravel(_real(leaf, name)) for leaf in leaves])


def _real(value, name) -> np.ndarray:
    """A tangent or cotangent (or one leaf of it) as an array of real numbers, or a clear refusal;
    as for x, a subclass whose meaning np.asarray would drop is refused (a mask, a matrix's 2-D shape)."""
    if is_masked(value):
        raise TypeError(f"{name} is a masked array, and its mask would be dropped (the values under it used); "
                        "pass the array's .filled(0.0), 0 where it is masked")
    if isinstance(value, np.matrix):
        raise TypeError(f"{name} is an np.matrix, which is always 2-D (a vector becomes a batch of one); "
                        f"pass np.asarray({name}).ravel() for a vector, np.asarray({name}) for a matrix")
    if isinstance(value, Tracer) and not value.constant:  # a derivative taken around this call: its values
        return value
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a float array, got {_described(value, array)}")
    return array


def jvp(f: Callable, x, x_dot, has_aux: bool = False):
    """Evaluate f at x and its Jacobian-vector product J @ x_dot (one forward pass).

    x_dot has x's shape, or ``(k, *x.shape)`` to push k tangents in one pass;
    y_dot then has ``y.shape`` or ``(k, *y.shape)`` (for structured y, y's
    structure with the k axis first on each leaf, as ``jax.vmap`` over
    ``jax.jvp`` gives). For structured x, x_dot has x's structure (one
    direction). With has_aux f returns ``(y, aux)`` and the result is
    ``(y, y_dot, aux)``, as ``jax.jvp``'s. Unlike
    ``jax.jvp(f, primals, tangents)``, x is f's one argument: a tuple x is
    passed to f as a tuple (for f(a, b), ``jl.jvp(lambda p: f(*p), (a, b),
    (a_dot, b_dot))``); ``jl.jvp(f, (x,), (x_dot,))``, jax's call of a
    function of one array, warns. y and y_dot are arrays of their own.

    >>> import numpy as np, jacobian_lab as jl
    >>> y, y_dot = jl.jvp(lambda x: x ** 3, np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    >>> y, y_dot
    (array([1., 8.]), array([3., 0.]))
    """
    arguments.check(0, has_aux)
    tupled = type(x) is tuple and type(x_dot) is tuple and len(x) == len(x_dot) == 1
    if tupled:
        warnings.warn("jl.jvp(f, x, x_dot) passes x to f as one argument, here (x,): a 1-tuple (a 1-element "
                      "array when x is a number), where "
                      "jax.jvp(f, (x,), (x_dot,)) passes x; for f of one array write jl.jvp(f, x, x_dot)",
                      stacklevel=2)
    try:
        if has_aux:
            bound = _with_aux(f, x, "jvp")
            return (*_pushed(bound, bound.x, x_dot), bound.aux_value())
        return _pushed(f, x, x_dot)
    except TypeError as error:  # f computing with the tuple: a refusal that cannot say where the tuple came from
        if tupled:
            error.add_note("f got x as the 1-tuple (x,), as jl.jvp(f, (x,), (x_dot,)) passes it (JAX's call of f, "
                           "see the warning): for f of one array write jl.jvp(f, x, x_dot)")
        raise


def _pushed(f: Callable, x, x_dot):
    """`jvp` without aux."""
    g, x_flat = prepare(f, x, nested=True)
    tangents, batched = _split_batch(_flat_like(x_dot, g.in_def, "x_dot"), x_flat.shape, "x_dot",
                                     result_dtype(x_flat))
    y, y_dot = engines.get("forward").jvp(g, x_flat, tangents)
    # in the derivative dtype, as Jacobians are: a longdouble f would otherwise give longdouble tangents
    y_dot = _check_derivative(y_dot, len(tangents), np.shape(y), "tangent").astype(result_dtype(x_flat), copy=False)
    # y is f's output (perhaps an array it closes over, or x itself), copied as vjp's is
    y, y_dot = (y.copy(order="K") if isinstance(y, np.ndarray) else y), _own(y_dot, tangents)
    return g.unflatten(y, "out"), g.unflatten(y_dot if batched else y_dot[0, ...], "out")  # k: on each leaf


def _own(result: np.ndarray, given: np.ndarray) -> np.ndarray:
    """`result`, copied if it shares memory with an array the caller `given` (f's x, a direction): f that
    only moves x (an identity, a reshape) would otherwise return the caller's own array, which a later
    write into either changes."""
    return result.copy() if np.may_share_memory(result, given) else result


def vjp(f: Callable, x, has_aux: bool = False):
    """Evaluate f at x and return ``(y, pullback)``, pullback(y_bar) = y_bar @ J.

    One tape is recorded; every call of pullback sweeps it backward. y_bar has
    y's shape, or ``(k, *y.shape)`` for k cotangents in one sweep. For
    structured x and y, y_bar has y's structure and x_bar x's (k cotangents of
    an array y: the k axis first on each leaf of x_bar). With has_aux
    f returns ``(y, aux)`` and the result is ``(y, pullback, aux)``, as
    ``jax.vjp``'s. Unlike jax's, the pullback returns x_bar itself, not a
    tuple of one: ``pullback(y_bar)[0]`` is x_bar's first entry. y and x_bar
    are arrays of their own.

    >>> import numpy as np, jacobian_lab as jl
    >>> y, pullback = jl.vjp(lambda x: x * x, np.array([1.0, 2.0]))
    >>> pullback(np.array([1.0, 1.0]))
    array([2., 4.])
    """
    if not isinstance(has_aux, (bool, np.bool_)):  # jl.vjp(f, a, b), as jax.vjp takes f's arguments
        raise TypeError(f"jl.vjp(f, x) takes one x, and its third argument is has_aux, which must be True or "
                        f"False (got one of type {type(has_aux).__name__}); for f(a, b) write "
                        "jl.vjp(lambda p: f(*p), (a, b)), or bind a: jl.vjp(functools.partial(f, a), b)")
    arguments.check(0, has_aux)
    if has_aux:
        bound = _with_aux(f, x, "vjp")
        return (*vjp(bound, bound.x), bound.aux_value())
    g, x_flat = prepare(f, x, nested=True)
    # The pullback sweeps later, reading values on the tape: x's own copy (laid out as x is, for f may read
    # the layout), and y's, which the caller gets a copy of: a write into either would otherwise change
    # the derivatives it gives.
    y, sweep = harness.record(g, snapshots.copy(x_flat, faithful=True))

    def pullback(y_bar, *more, _last=False):  # _last: grad's one sweep, which may free the tape as it goes
        if more:
            raise TypeError(f"the pullback takes one y_bar, got {1 + len(more)}; for an f returning several "
                            "arrays, pass their cotangents as one structure, as f returned them: "
                            "pullback((y1_bar, y2_bar))")
        cotangents, batched = _split_batch(_flat_like(y_bar, g.out_def, "y_bar"), np.shape(y), "y_bar",
                                           result_dtype(x_flat))
        x_bar = _check_derivative(sweep(cotangents, _last), len(cotangents), x_flat.shape, "cotangent")
        x_bar = _own(x_bar.astype(cotangents.dtype, copy=False), cotangents)  # the derivative dtype, as jvp's
        return g.unflatten(x_bar if batched else x_bar[0, ...], "in")  # k cotangents: k on each leaf

    return g.unflatten(y.copy(order="K"), "out"), pullback
