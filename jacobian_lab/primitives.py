"""Primitives: the one place an operation is defined.

A `Primitive` bundles an operation's NumPy implementation, its FLOP cost (from
the arrays it ran on), its JVP rule and its staged VJP rule. `bind` applies a
primitive to operands: plain arrays are evaluated (and counted) directly; when
an operand is a tracer, the trace owning the highest-level tracer interprets
the call. Engines are interpreters over this one table, so a new engine (or a
sparsity detector, or a nested engine for Hessians) reuses every rule.

Rule conventions (see docs/architecture.md):

* Derivative values always carry a leading *seed axis*: a tangent of an operand
  of shape ``s`` has shape ``(k, *s)``, a cotangent of an output of shape ``s``
  has shape ``(k, *s)``. One pass with k seeds is "vector mode".
* ``jvp(tangents, out, *args, **params)`` gets one tangent per operand, None for
  a constant operand (a symbolic zero), and returns the output tangent or None.
* ``vjp(needs, out, *args, **params)`` is staged: it may precompute residual
  factors once and returns ``pullback(g) -> tuple`` with one cotangent per
  operand (None where ``needs[i]`` is False). One staged pullback serves every
  backward sweep of a tape.
* Rules compute with `bind` (through the helper functions of `jacobian_lab.rules`),
  never with raw NumPy arithmetic, so their work is counted and nestable.
"""
from __future__ import annotations

import sys
import sysconfig
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .accounting import active_counter

REGISTRY: dict[str, "Primitive"] = {}


class PerElement:
    """The cost of an elementwise operation: fixed flops and transcendentals per output element.

    A cost function like any other, and also plain data: for one flop or one
    transcendental per element -- most primitives -- counting adds the output's
    size instead of calling it (`Primitive.unit`, `Counter.evaluate`), which keeps
    counting cheap.

    >>> import numpy as np
    >>> PerElement(0, 1)(np.ones(3), np.ones(3))
    (0, 3)
    """

    __slots__ = ("flops", "transcendentals")

    def __init__(self, flops: int, transcendentals: int):
        self.flops, self.transcendentals = flops, transcendentals

    def __call__(self, out, *args, **params) -> tuple[int, int]:
        return self.flops * out.size, self.transcendentals * out.size


@dataclass(eq=False)
class Primitive:
    """An operation known to every engine.

    ``cost(out, *args, **params) -> (flops, transcendentals)`` prices one
    execution from the shapes of the arrays it ran on. ``differentiable=False``
    marks operations whose output carries no derivative (comparisons, sign,
    floor): engines evaluate them on primal values and return plain arrays.
    ``reads_values=True`` marks a primitive whose rules do different work
    depending on its operands' values, not only their shapes (prod takes
    another route when a zero is present), and ``pattern_reads_values=True`` one
    whose sparsity pattern does (reorder): a cached cost prediction, or a cached
    pattern, is then keyed on those values too (see `Tape.signature`); ``constant_key`` maps a
    constant operand to what of its values its rules' work depends on (power:
    whether it holds a zero), which joins that key, and ``route(out, *args,
    **params)`` names the route its rules take where they choose one by
    values (det: LU or SVD; gammaln: a reflection where x holds a negative
    number), which joins it too: a cheaper key than the values themselves. ``structure`` says how
    each output element depends on the operands' elements, for interpreters
    that need only that (`jacobian_lab.sparsity`): "elementwise" (the same
    element, after broadcasting), "move" (a copy of one operand element, or a
    zero: reshape, indexing, concatenate), "reduction" (the elements reduced
    over ``axis``), "scan" (the elements up to its own along ``axis``: cumsum),
    "scatter" (the elements whose ``indices`` entry along ``axis`` is its own), "move_at" and
    "scatter_at" (as "move" and "scatter", the index an operand: take_at, put_at, scatter_add_at),
    "matmul" (a row of one operand and a column of the other), "sparse_matmul"
    (the elements a scipy.sparse matrix's stored entries join to it) or None (any
    output element may depend on any element). ``raises=True`` marks an
    operation that raises on some values (LinAlgError: cholesky of a matrix
    that is not positive definite, inv of a singular one): a compiled program
    runs it even where the Jacobian does not read it, since f may call it to
    see whether it raises (`jacobian_lab.compiled`). ``array_params`` names the
    parameters that may hold a plain array f can write into later (clip's
    bounds, a gather's indices), which a reverse tape keeps as they were
    (`jacobian_lab.snapshots`): ``()`` for none, None (the default) to look
    through them all.
    """

    name: str
    impl: Callable[..., Any]
    cost: Callable[..., tuple[int, int]]
    jvp: Callable[..., Any] | None = None
    vjp: Callable[..., Any] | None = None
    differentiable: bool = True
    positional_params: tuple[str, ...] = ()
    reads_values: bool = False
    pattern_reads_values: bool = False
    constant_key: Callable[[Any], Any] | None = None
    route: Callable[..., Any] | None = None
    structure: str | None = None
    raises: bool = False
    array_params: tuple[str, ...] | None = None
    #: What counting adds ``out.size`` to, for a cost of exactly one flop (0) or one
    #: transcendental (1) per output element -- most primitives -- else None (`Counter.evaluate`).
    unit: int | None = field(init=False, repr=False)
    #: Whether it is the package's own, whose rules and structure its tests check; one registered after
    #: jacobian_lab was imported is not, and has its rules checked as they run (`rule_checks`).
    builtin: bool = field(default=True, init=False, repr=False)

    def __post_init__(self):
        per, cost = type(self.cost) is PerElement, self.cost
        self.unit = cost.transcendentals if per and cost.flops + cost.transcendentals == 1 else None

    def __call__(self, *args, **params):
        # Unary shape primitives read like NumPy: reshape(x, shape), take(x, idx, axis).
        if self.positional_params and len(args) > 1:
            params.update(zip(self.positional_params, args[1:]))
            args = args[:1]
        # `apply`, written out: every primitive a rule uses is called this way, mostly on plain
        # arrays (a rule of a trace that is not nested), which `find_trace`'s test finds at once.
        for a in args:
            if getattr(a, "_trace", None) is not None:
                break
        else:
            counter = active_counter()  # `evaluate`, written out
            if counter is None:
                return self.impl(*args, **params) if params else self.impl(*args)
            return counter.untraced(self, args, params)
        out = find_trace(args).process(self, args, params)
        if self.structure == "move":  # reshape, transpose, x[1:], ...: NumPy returns a view
            note_view(out, self, args[0], params)
        return out

    def __repr__(self) -> str:
        return f"Primitive({self.name!r})"


class DerivativeError(Exception):
    """The derivative f asks for does not exist where it is asked (eigenvectors at a repeated eigenvalue,
    pinv at a rank-deficient matrix, ...). Deliberately not NumPy's LinAlgError (nor a ValueError):
    f's own ``except np.linalg.LinAlgError`` is for what NumPy raises, and must not take this for it
    and compute another branch's Jacobian."""


def derivative_raised(prim: Primitive, error: Exception) -> DerivativeError:
    """A rule's FloatingPointError (NumPy set to raise: np.errstate, np.seterr) or RuntimeWarning (warnings
    made errors), as the derivative's own error: f's ``except FloatingPointError`` is for f's arithmetic,
    and in forward mode a rule runs inside f."""
    return DerivativeError(
        f"the derivative of {prim.name} raised {type(error).__name__} ({error}), as NumPy is set to raise "
        "(np.errstate, np.seterr) or warnings are errors: it is infinite or undefined here (sqrt's slope at 0, "
        "log's at 0), where f itself is not. Let NumPy warn instead (np.errstate(divide='warn', invalid='warn')) "
        "to get its inf or NaN entries, or differentiate at a point where it is finite")


def note_view(out, prim: Primitive, source, params: dict) -> None:
    """Remember that traced `out` = ``prim(source, **params)`` shares memory with traced `source`.

    NumPy writes an in-place operator (``y *= 3``) through to every array sharing
    the memory. `jacobian_lab.inplace` does the same for the views of an array
    (each keeps its owner, the array whose memory it is, and the moves that
    derive it from the owner, to derive it again from the owner's new value),
    and refuses an in-place operator on a view itself.
    """
    view = primal(out)
    if type(view) is not np.ndarray or view.base is None:
        return  # a scalar or a fresh array (fancy indexing, a reshape that had to copy)
    viewed = primal(source)
    if view.base is not viewed and view.base is not getattr(viewed, "base", None):
        return  # the base of a view is the array that owns the memory: here, not the operand's
    link_view(out, source, (prim, params))


def link_view(out, source, step) -> None:
    """Record traced `out` as a view of traced `source`, derived from it by ``step = (fn, params)``:
    ``fn(source, **params)``. Also for what NumPy returns as a view and jacobian_lab gathers
    (np.diagonal, np.fliplr, ...)."""
    if getattr(out, "_trace", None) is None or getattr(source, "_trace", None) is None:
        return
    owner = getattr(source, "_owner", None)
    if owner is None:
        owner, path = source, ()
    else:
        path = source._path
    out._owner, out._path = owner, path + (step,)
    views = getattr(owner, "_views", None)
    if views is None:
        owner._views = views = []
    elif len(views) >= 64 and len(views) & (len(views) - 1) == 0:  # now and then, forget the dead ones
        views[:] = [ref for ref in views if ref() is not None]
    views.append(weakref.ref(out))


def register(prim: Primitive) -> Primitive:
    """Add `prim` to the registry; every name is defined exactly once. One registered after jacobian_lab's own
    (yours) has its rules' results checked as they run (`jacobian_lab.rule_checks`)."""
    global REGISTRATIONS
    if prim.name in REGISTRY:
        raise ValueError(f"primitive {prim.name!r} is already registered")
    if _OWN_REGISTERED:
        from .rule_checks import check
        check(prim)
    REGISTRY[prim.name] = prim
    REGISTRATIONS += 1
    return prim


REGISTRATIONS = 0  # registrations so far: what a lookup that found nothing in the registry was made after


_OWN_REGISTERED = False  # set at the end of jacobian_lab's import (`own_registered`)


def own_registered() -> None:
    """Mark the end of the package's own registrations: a primitive registered from now on is checked."""
    global _OWN_REGISTERED
    _OWN_REGISTERED = True


class Trace:
    """Base of engine traces. Higher `level` = created later = interprets first."""

    level: int = 0
    #: Whether values of an enclosing trace flow through this one: its input was traced, or an
    #: operation met an outer tracer (whose result carries one as its primal). From then on every
    #: primitive is dispatched again on its primals, so that the enclosing trace interprets it too;
    #: before, the primals are plain arrays and are evaluated directly.
    nested: bool = False
    #: Set when the traced call of f has returned (`finish`).
    finished: bool = False
    #: Set once f holds an array of this trace without a derivative (`constant`): from then on an
    #: operation on such arrays and plain ones alone gives one too, and reaches no derivative rule.
    constants: bool = False
    #: The last conversion of one of its values a scipy routine asked for and this trace refused, with the
    #: routine's name (`Tracer._plain`): its compiled code (brentq calling f) may lose the error and fail
    #: another way, which then names it.
    refused: tuple | None = None
    #: The last conversion of one of its values to a number that f's own code asked for and this trace
    #: refused: NumPy's ``y.flat[i] = v`` into a plain y replaces the refusal by an error without a cause.
    converting: Exception | None = None

    def constant(self, value):
        """`value` as an array of this trace without a derivative, which f can write traced values
        into: what ``np.zeros_like(x)`` gives for a traced x. A trace without them returns `value`.

        Engines make such values read-only (`frozen`): a write makes a new array, never changes
        one, and a tape or a recording keeps a read-only array as it is, without a copy whose
        views would no longer be views of it. (The one exception, `wrote`, changes only arrays
        nothing else holds.)
        """
        return value

    def wrote(self, owner, values, indices, picks) -> bool:
        """Write ``values[..., picks]`` into `owner`'s own arrays at its flat `indices`, in place, where this
        engine can and nothing but owner reaches them; False, as here, and the write makes a new array
        (`rules.shape.put`). `picks` index `values` (a value of this trace or a plain array) flattened."""
        return False

    def finish(self) -> None:
        """The traced call of f returned: refuse any later operation on this trace's values.

        A value that escaped f (kept in a closure, a global or a list) would otherwise be
        interpreted by a trace whose result nobody reads, and come back as a stale tracer.
        The refusal replaces `process` on the instance, so live traces pay nothing for it.
        """
        self.finished = True
        self.process = _escaped

    def process(self, prim: Primitive, args: tuple, params: dict):
        raise NotImplementedError

    def evaluate(self, prim: Primitive, primals, params: dict, counter):
        """`prim` on the operands' primals: dispatched again once values of an enclosing trace flow
        through this one (`nested`), else run, and counted when `counter` (the active one) is set."""
        try:
            if self.nested:
                return apply(prim, primals, params)
            if counter is None:
                out = prim.impl(*primals, **params) if params else prim.impl(*primals)
            else:
                out = counter.evaluate(prim, primals, params)
        except Exception as error:  # x + A of a scipy.sparse A fails in scipy, which takes x for a scalar
            from .rules.sparse import elementwise_error, is_sparse
            matrices = [a for a in primals if is_sparse(a)]
            if matrices:
                raise elementwise_error(prim.name, matrices[0]) from error
            if any(is_masked(a) for a in primals):  # np.ma's own wrapping failed (np.dot(x, M))
                raise _masked_error(prim.name) from error
            raise
        return out if type(out) in _PLAIN_RESULTS else plain_result(prim, out)


def frozen(value):
    """`value`, read-only if it is an array (see `Trace.constant`)."""
    if type(value) is np.ndarray:
        value.flags.writeable = False
    return value


#: The types of most results, which no subclass check needs to look at: arrays and NumPy's scalars.
_PLAIN_RESULTS = frozenset([np.ndarray, np.float64, np.float32, np.bool_, np.int64, np.intp, np.longdouble])


def plain_result(prim: Primitive, out):
    """`out`, unless a constant operand made it a masked array or an np.matrix: NumPy's value then follows the
    mask (or the matrix's 2-D rules) where the derivative rules, which read the data, would not. A mask that
    masks nothing changes nothing: its data.

    >>> from jacobian_lab.rules.linalg import matmul
    >>> plain_result(matmul, np.ones(2))
    array([1., 1.])
    >>> plain_result(matmul, np.ma.masked_invalid([1.0, np.nan]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: matmul met a masked array (np.ma) among its constants: ...
    """
    out = unmasked(out, prim.name)
    if isinstance(out, np.matrix):
        raise TypeError(f"{prim.name} met an np.matrix among its constants, whose results are always 2-D: pass "
                        "np.asarray(M) and write matrix products with @")
    return out


def unmasked(value, where: str):
    """`value`, or the data of a masked array (np.ma) that masks nothing; one that masks an element is refused:
    traced arrays carry no mask, so the derivative would not follow the mask NumPy's value follows. `where`
    names the operation that met it.

    >>> unmasked(np.ma.masked_invalid(np.array([1.0, 2.0])), "add")
    array([1., 2.])
    >>> unmasked(np.ma.masked_invalid(np.array([1.0, np.nan])), "add")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: add met a masked array (np.ma) among its constants: ...
    """
    if not is_masked(value):
        return value
    if not np.ma.getmaskarray(value).any():
        return np.ma.getdata(value)
    raise _masked_error(where)


def is_masked(value) -> bool:
    """Whether `value` is a masked array (np.ma), which np.asarray would strip of its mask. numpy.ma is
    imported on first use, and only then can a value be one: checking first spares the import.

    >>> is_masked(np.ma.masked_less(np.arange(3.0), 1.0)), is_masked(np.arange(3.0))
    (True, False)
    """
    return "numpy.ma" in sys.modules and isinstance(value, np.ma.MaskedArray)


def _masked_error(where: str) -> TypeError:
    return TypeError(f"{where} met a masked array (np.ma) among its constants: traced arrays carry no mask, so the "
                     "derivative would not follow the mask the value follows. Fill it first (M.filled(0.0), or "
                     "np.where(M.mask, 0.0, x * M.data) to keep the masked places out)")


def sole(holder, slot: str) -> bool:
    """Whether the array in `holder`'s `slot` (an attribute) is a writeable array that only this slot reaches:
    no other name, tracer, tape or view holds it, nor the memory it views (its `base`, then held by it alone).
    Writing into it changes nothing anyone else sees. A reference count says so, as NumPy's own reuse of
    temporaries does; the count for an array held once is measured (`_HELD_ONCE`), not assumed.

    >>> held = _Held(np.zeros(3))
    >>> sole(held, "array")
    True
    >>> view = held.array[1:]  # a view holds the memory too
    >>> sole(held, "array")
    False
    """
    return _references(holder, slot) == _HELD_ONCE and _alone(getattr(holder, slot))


def sole_item(items: list, i: int, also: int = 0) -> bool:
    """`sole` for the array in a list's slot i, which `also` other references the caller knows of hold too.

    >>> items = [np.zeros(3)]
    >>> sole_item(items, 0)
    True
    >>> shared = items[0]
    >>> sole_item(items, 0), sole_item(items, 0, also=1)
    (False, True)
    """
    return _item_references(items, i) == _ITEM_ONCE + also and _alone(items[i])


def _alone(array) -> bool:
    """Whether `array` is a writeable array whose memory no other array views."""
    if type(array) is not np.ndarray or not array.flags.writeable:
        return False
    if array.base is None:
        return True
    return type(array.base) is np.ndarray and array.base.base is None and _references(array, "base") == _HELD_ONCE


def _references(holder, slot: str) -> int:
    return sys.getrefcount(getattr(holder, slot))


def _item_references(items: list, i: int) -> int:
    return sys.getrefcount(items[i])


class _Held:
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


# A free-threaded CPython counts references per thread, approximately: never write in place there
_FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
_HELD_ONCE = -1 if _FREE_THREADED else _references(_Held(np.empty(1)), "array")
_ITEM_ONCE = -1 if _FREE_THREADED else _item_references([np.empty(1)], 0)


def _escaped(prim, args, params):
    raise TypeError(escaped_message(f"the operation {prim.name!r} got"))


def escaped_message(what: str) -> str:
    """The refusal of a value that escaped a finished trace; `what` says who met it ("f returned")."""
    return (f"{what} a traced value of an evaluation of f that has ended (an earlier jacobian_lab call, or an "
            "earlier pass of this one: forward mode evaluates f once per pass), kept in a closure, a global or a "
            "list while f ran, or returned as has_aux's aux inside an object other than a tuple, list, dict or "
            "dataclass (whose arrays come back plain); its derivative is gone. Compute the value inside f from its "
            "argument, or pass it in as part of x")


def find_trace(args) -> Trace | None:
    """The innermost (highest-level) trace among the tracer operands, if any."""
    top = None
    for a in args:
        trace = getattr(a, "_trace", None)
        if trace is not None and (top is None or trace.level > top.level):
            top = trace
    return top


def bind(prim: Primitive, *args, **params):
    """Apply `prim`: interpret it on the innermost trace, or evaluate it."""
    return apply(prim, args, params)


def apply(prim: Primitive, args, params: dict):
    """`bind` with the operands as one sequence: the dispatch every primitive call goes through.

    Engines call it with the primal operands they unwrapped, which saves
    re-packing them; an operand may still belong to an outer trace (nesting).
    """
    trace = None  # `find_trace`, written out: every traced operation comes through here
    for a in args:
        found = getattr(a, "_trace", None)
        if found is not None and (trace is None or found.level > trace.level):
            trace = found
    if trace is None:
        return evaluate(prim, args, params)
    return trace.process(prim, args, params)


def evaluate(prim: Primitive, args, params: dict):
    """Run the NumPy implementation on plain arrays and count its cost (and record it, when recording)."""
    counter = active_counter()
    if counter is None:
        return prim.impl(*args, **params)
    return counter.untraced(prim, args, params)


def given(values) -> tuple:
    """Which of `values` are not None, as a tuple of bools: a rule's `needs` from the parents of a
    record, or from the tangents of the operands."""
    n = len(values)  # one or two, mostly: written out, without a comprehension's frame
    if n == 2:
        return values[0] is not None, values[1] is not None
    if n == 1:
        return (values[0] is not None,)
    return tuple([v is not None for v in values])


def is_traced(value) -> bool:
    """Whether `value` is a traced array (of any trace)."""
    return getattr(value, "_trace", None) is not None


def recomputed(value) -> bool:
    """Whether a plain `value` is one a compiled program being recorded recomputes (computed from x or from an
    argument, not a constant): Python reads its numbers only through `observe`, and computes with it only
    through primitives, or the program would keep the recording's numbers.

    >>> import numpy as np
    >>> recomputed(np.ones(2))  # no recording: nothing is recomputed
    False
    """
    computed = getattr(active_counter(), "computed", None)
    return computed is not None and computed(value)


def primal(value):
    """The plain array under any number of tracers: what a decision on values reads.

    >>> import numpy as np
    >>> primal(np.array([1.0, 2.0]))
    array([1., 2.])
    """
    while getattr(value, "_trace", None) is not None:
        value = value.primal
    return value


def counted(fn, *args, times: int = 1) -> int:
    """``fn(*args) * times`` for work a cost function reads from the numbers of traced values (the adds of
    a scatter-add whose indices repeat). Where `observe` makes a decision a compiled program checks again,
    this is a count it computes again on each replay, and counts: one program serves every value.

    >>> import numpy as np
    >>> counted(np.count_nonzero, np.array([0, 3, 3]), times=2)
    4
    """
    result = fn(*args)
    counter = active_counter()
    if counter is not None:
        counter.varying(fn, args, times, result)
    return int(result) * times


def observe(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` for a decision that reads the numbers of traced values.

    Every place where values leave the primitives for Python -- ``bool(x)``,
    ``np.argmax(x)``, a rule choosing its route -- goes through here, so a
    recording (`jacobian_lab.compiled`) knows what the computation depended on and
    can check it again before replaying. The arguments are plain arrays.

    >>> import numpy as np
    >>> observe(np.argmax, np.array([1.0, 3.0, 2.0]))
    np.int64(1)
    """
    result = fn(*args, **kwargs)
    counter = active_counter()
    if counter is not None:
        counter.observed(fn, args, kwargs, result)
    return result
