"""Reverse accumulation: a `Tape` recorded once, swept backward many times.

Tracing f appends one `Record` per primitive (in topological order) holding the
operands the VJP rule needs. The first sweep stages every rule (residual factors
such as cos(x) for sin are computed once per tape, not once per sweep); each
sweep then pulls a batch of k cotangents back at once. Values that fan out get
their cotangents added. The tape belongs to its trace: there is no global tape.
"""
from __future__ import annotations

import sys
import weakref

import numpy as np
import xxhash
from numpy import ndarray  # for the hot paths' type tests: CPython 3.11 caches no attribute of numpy (a module __getattr__)

from ..accounting import COTANGENT, TANGENT, Cost, Counter, active_counter, in_phase
from ..memory import MemoryBudgetError, TangentBudget, readable
from ..observables import Observable
from ..primitives import Trace, apply, derivative_raised, frozen, given, sole_item
from ..rules.elementwise import add
from ..rules.shape import getitem, put, take, written
from ..snapshots import kept_params, root, same_bytes, snapshot
from ..tracing import FLOAT64, NOT_REAL, Tracer, blank_result, not_real_result, objects_converted
from .base import call_traced, collection_paused, next_level, register


class Node(Tracer):
    """A traced value: its primal and the index of the record that produced it."""

    __slots__ = ("index",)

    def __init__(self, trace, primal, index):
        self._trace, self.primal, self.index = trace, primal, index

    constant = property(lambda self: self.index is None)  # no record: an array without a derivative


class Record:
    __slots__ = ("prim", "params", "args", "out", "parents", "pullback")

    def __init__(self, prim, params, args, out, parents):
        # one statement each: assigning five names at once builds (and frees) a tuple, once per operation
        self.prim = prim
        self.params = params
        self.args = args
        self.out = out
        self.parents = parents
        self.pullback = None

    def stage(self):
        needs, params = given(self.parents), self.params
        self.pullback = (self.prim.vjp(needs, self.out, *self.args, **params) if params
                         else self.prim.vjp(needs, self.out, *self.args))
        return self.pullback


#: A constant of this many bytes or more, used again with the same values, shares one copy on a tape:
#: comparing it costs less than copying it again (below, the comparison's own overhead is more).
SHARED_BYTES = 1 << 16


def _copied(base, operands):
    """The array a view a primitive returned is of, where the primitive made it (reshape of a transpose
    copies, then views the copy): not an operand's memory, so fresh memory the tape holds; else None."""
    while isinstance(base.base, np.ndarray):
        base = base.base
    for a in operands:
        while isinstance(a, np.ndarray):
            if a is base:
                return None
            a = a.base
    return base


class Tape:
    """Records in topological order; record 0 is the input."""

    def __init__(self):
        self.records: list[Record] = []
        self.elements = 0  # recorded values, summed: a sweep's cotangents per seed, at most
        self.widest = 0  # the largest recorded value: a sweep's widest cotangent per seed
        self.fresh_bytes = 0  # values the trace computed, and copies it views (not x, nor views of either): kept alive
        self.kept_bytes = 0  # the copies it keeps of f's constants (`keep`): not in fresh_bytes
        self.max_bytes = sys.maxsize  # what fresh_bytes may reach while f runs (`vjp`'s max_bytes)
        self.over = ""  # what max_bytes is, for its refusal
        self._large: dict = {}  # id of a large constant -> (a weak reference to it, its copy): see `keep`
        # [flops, transcendentals] of the non-differentiable evaluations (comparisons, sign, ...):
        # primal work that leaves no record, kept so that the tape tells all of f's work
        self.unrecorded = [0, 0]
        self._last = None  # see last_use

    def append(self, record) -> int:
        out, records = record.out, self.records
        if records:
            base = getattr(out, "base", out)  # a Python number has none: nothing to count
            held = out if base is None else None if base is out else _copied(base, record.args)
            if held is not None:
                self.fresh_bytes += held.nbytes
                if self.fresh_bytes > self.max_bytes:
                    raise self._over_budget()
        records.append(record)
        size = out.size  # an ndarray or a NumPy scalar
        self.elements += size
        if size > self.widest:
            self.widest = size
        return len(records) - 1

    def _over_budget(self) -> MemoryBudgetError:
        """The refusal of a tape that outgrew `max_bytes` while f runs: stopped there, before it takes more (a sweep
        holds a cotangent per recorded value, so one would not fit either)."""
        return MemoryBudgetError(
            f"the tape of f's values that sweeps read (and forward passes replay, sparsity patterns are read off) "
            f"passed {readable(self.max_bytes)} after {len(self.records):,} operations: {self.over}")

    def keep(self, array: np.ndarray) -> np.ndarray:
        """A plain array f used, as the sweeps will read it: its `snapshot`, a copy counted in
        `kept_bytes` (an array kept as it is, read-only already, is f's own memory and costs nothing).

        The copies are left out of `fresh_bytes`, the tape memory the memory budget holds: they
        duplicate arrays f holds itself, which the budget leaves out in either order, and counting
        them would rule reverse mode out for a constant that making read-only lets in at no cost.
        """
        shared = array.nbytes >= SHARED_BYTES and array.flags.c_contiguous
        if shared:  # a large constant used again unchanged (W of every layer) shares its copy
            known = self._large.get(id(array))
            if known is not None and known[0]() is array and same_bytes(known[1], array):
                return known[1]
        kept = snapshot(array)
        if kept is not array:
            self.kept_bytes += root(kept).nbytes
            if shared:
                self._large[id(array)] = (weakref.ref(array), kept)
            counter = active_counter()
            if counter is not None:  # a recording recomputes the copy as it recomputes the array
                counter.copied(kept, array)
        return kept

    @collection_paused()
    def backward(self, output: int, g, release: bool = False):
        """Sweep the seed-batched cotangent g of record `output` back to the input. With `release`, the last
        sweep of this tape: each record is dropped once swept, so that its values and staged factors are
        freed as the sweep goes back (a gradient then holds about what f computed, not twice that)."""
        cotangents = [None] * (output + 1)
        cotangents[output] = g
        # By id, the cotangent arrays this sweep made and no one else holds, which reads and writes change in
        # place (`_scattered`, `_cleared`); only in a sweep of plain arrays that no recording (jit's) watches
        owned = {} if type(g) is ndarray and type(active_counter()) in _PLAIN_COUNTERS else None
        records, record = self.records, None
        try:
            for i in range(output, 0, -1):
                ct, record = cotangents[i], records[i]
                if release:
                    records[i] = None
                if ct is None:
                    continue  # symbolic zero: this value does not reach the output
                cotangents[i] = None
                prim, parents = record.prim, record.parents
                held = False
                if owned is not None:
                    held = owned.pop(id(ct), None) is ct  # passed on: a rule may hand it to other records
                    source = parents[0] if prim in _IN_PLACE else None
                    if source is not None and type(ct) is ndarray and type(cotangents[source]) in _PLAIN_SUMS:
                        if prim is getitem:
                            cotangents[source] = _scattered(cotangents[source], ct, record, owned)
                        elif prim is take:
                            _gathered(cotangents, ct, record, owned)
                        else:
                            _cleared(cotangents, ct, held, record, owned)
                        continue
                pullback = record.pullback or record.stage()
                # a move of one operand (reshape, transpose) gives it ct itself, a view of it or a copy: none that
                # another value holds when ct was the sweep's own, so the sweep owns it in turn
                passed_on = held and prim.structure == "move" and len(parents) == 1
                for parent, c in zip(parents, pullback(ct)):
                    if parent is not None and c is not None:
                        if cotangents[parent] is None and not passed_on:
                            cotangents[parent] = c  # the first one, kept as it is (`_accumulate`, written out)
                        else:
                            _accumulate(cotangents, parent, c, owned, passed_on)
        except (FloatingPointError, RuntimeWarning) as error:  # np.errstate(all="raise") around the sweep
            raise derivative_raised(record.prim, error) from None
        return cotangents[0]

    @collection_paused()  # (see `engines.base.collection_paused`)
    def forward(self, t, output: int | None = None, budget=None):
        """Push the seed-batched tangent t of the input through every record (JVP rules).

        The tape already holds each primal value, so this is exactly the tangent
        work of a forward pass over f -- every traced operation, used by the
        output or not -- without running f again: `predict` counts it, and auto
        mode builds its forward Jacobians this way. Returns the tangent of record
        `output`; a tangent is dropped after its last use, and `budget` (a
        `TangentBudget`) accounts for every one created.
        """
        last_use = self.last_use()
        tangents = [t] + [None] * (len(self.records) - 1)
        writes = active_counter() is None  # a count or a recording sees each put as one
        for i, record in enumerate(self.records[1:], 1):
            ts = [None if p is None else tangents[p] for p in record.parents]
            if writes and record.prim is put and _written_in_place(tangents, ts, record, i, last_use, output):
                tangents[i] = ts[0]
            elif any(v is not None for v in ts):  # else a constant in forward mode: no JVP runs
                try:
                    tangents[i] = tangent = record.prim.jvp(ts, record.out, *record.args, **record.params)
                except (FloatingPointError, RuntimeWarning) as error:  # np.errstate(all="raise") around the pass
                    raise derivative_raised(record.prim, error) from None
                if budget is not None and tangent is not None:
                    budget.account(tangent)
                if last_use[i] == i and i != output:  # read by nothing: its work is done
                    tangents[i] = None
            for p in record.parents:
                if p is not None and last_use[p] == i and p != output:
                    tangents[p] = None
        return None if output is None else tangents[output]

    def unstage(self) -> None:
        """Drop the VJP rules sweeps staged (`Record.stage`), so that the next sweep stages them again.

        >>> import numpy as np, jacobian_lab as jl
        >>> _, pullback = jl.engines.get("reverse").vjp(np.sin, np.ones(2))
        >>> _ = pullback(np.ones((1, 2)))  # one sweep: sin's rule staged
        >>> [record.pullback is not None for record in pullback.tape.records]
        [False, True]
        >>> pullback.tape.unstage()
        >>> [record.pullback is not None for record in pullback.tape.records]
        [False, False]
        """
        for record in self.records:
            record.pullback = None

    def last_use(self) -> list[int]:
        """For each record, the index of the last record that reads it (its own if none does).

        Computed once: a tape is complete before anything replays it. The list is
        built whole before it is kept, so passes replaying the tape from several
        threads never read a half-built one."""
        if self._last is None:
            last = list(range(len(self.records)))
            for i, record in enumerate(self.records):
                for p in record.parents:
                    if p is not None:
                        last[p] = i
            self._last = last
        return self._last

    def primal_cost(self) -> Cost:
        """The work of the evaluation of f that recorded this tape: what counting it finds, except
        work that a NumPy function implemented here did on constants alone.

        >>> import numpy as np, jacobian_lab as jl
        >>> _, pullback = jl.engines.get("reverse").vjp(lambda x: np.sum(np.sin(x)), np.ones(3))
        >>> pullback.tape.primal_cost()
        Cost(flops=2, transcendentals=3)
        """
        flops, transcendentals = self.unrecorded
        for r in self.records[1:]:
            f, t = r.prim.cost(r.out, *r.args, **r.params)
            flops, transcendentals = flops + f, transcendentals + t
        return Cost(flops, transcendentals)

    def signature(self, output: int | None, pattern: bool = False):
        """A hashable key equal for two tapes whose derivative rules do the same work (with `pattern`: and
        whose Jacobians have the same sparsity pattern).

        The work of a rule depends on its primitive, parameters, which operands are
        traced and the shapes and types of everything it touches; scalar constants
        (an exponent of 2 becomes a square) and the operands of a `reads_values`
        primitive (with `pattern`, of a `pattern_reads_values` one too) enter by value
        (past `DIGEST_BYTES`, a 128-bit XXH3 digest of it), a constant array what a primitive's
        `constant_key` reads of it (power: whether it holds a zero), and the route
        a primitive's `route` names (det: LU or SVD). Control flow on values traces another tape, so
        it changes the key. A parameter that is not hashable makes it unhashable.
        The work of the non-differentiable evaluations enters as its total, so
        equal signatures also mean equal `primal_cost`.
        """
        x = self.records[0].out
        return (x.shape, x.dtype.char, output, tuple(self.unrecorded),
                tuple([_record_key(r, pattern) for r in self.records[1:]]))


def _written_in_place(tangents: list, ts: list, record, i: int, last_use: list, output) -> bool:
    """Whether a replayed `put` (``y[i] = v``) wrote v's tangent into the tangent of the array it writes, in
    place: where that tangent dies here and nothing but the replay's lists holds it (`sole_item`), as forward
    mode writes (`ForwardTrace.wrote`). Each write of a loop then costs its own elements, not a copy of the
    k-seed tangent."""
    a = record.parents[0]
    if a is None or ts[0] is None or last_use[a] != i or a == output or not sole_item(tangents, a, also=1):
        return False
    params = record.params
    ts[0][..., params["indices"]] = 0.0 if ts[1] is None else ts[1][..., params["picks"]]
    return True


_PLAIN_SUMS = (type(None), ndarray)  # cotangents reads and writes change in place: none yet, or a plain array
_PLAIN_COUNTERS = (type(None), Counter)
_IN_PLACE = frozenset([getitem, take, put])  # a read adds into its source's cotangent, a write clears its places of it


def _accumulate(cotangents, parent: int, c, owned, own: bool = False) -> None:
    """Add the cotangent c into `parent`'s (the first one is kept as it is, and owned when `own` says no one
    else holds it): a new array, as the rules'."""
    previous = cotangents[parent]
    if previous is None:
        if own and type(c) is ndarray and c.flags.writeable:
            owned[id(c)] = c
        cotangents[parent] = c
        return
    if owned is None:
        cotangents[parent] = add(previous, c)
        return
    owned.pop(id(previous), None)
    cotangents[parent] = total = add(previous, c)  # a new array: the sweep's own from here on
    if type(total) is ndarray:
        owned[id(total)] = total


#: Elements of a seed's cotangent from which `_gathered` adds seed by seed: below, one call for them all costs less
#: than a call per seed.
GATHER_ROW = 256


def _gathered(cotangents, ct, record, owned: dict) -> None:
    """A gather's pullback (x[[i, j]], x[idx]: `take`) adding into its source's cotangent in place, as
    `_scattered` does for a slice, repeated indices adding up; the first gather's is the rule's own
    scatter-add, a new array the sweep then owns."""
    source = record.parents[0]
    previous = cotangents[source]
    if previous is None or not _adds_in_place(previous, ct, owned):
        pullback = record.pullback or record.stage()
        _accumulate(cotangents, source, pullback(ct)[0], owned, own=previous is None)
        return
    axis, indices = record.params["axis"], record.params["indices"]
    if axis == 0 and ct.size >= GATHER_ROW * len(ct):
        for row, values in zip(previous, ct):  # seed by seed: an index with no slice before it takes NumPy's
            np.add.at(row, indices, values)  # fast loop, nine times faster on long rows
    else:
        np.add.at(previous, (slice(None),) * (axis + 1) + (indices,), ct)
    _count_adds(ct.size)


def _cleared(cotangents, ct, held: bool, record, owned: dict) -> None:
    """A write's pullback in place: ct, the cotangent of the array written, gives the written values theirs,
    then goes on to the array written into with those places cleared (its own array, unless `held`, a copy
    first). A Python loop filling an array element by element then costs each element once per sweep,
    where a copy of ct per write costs the array's size."""
    into, values = record.parents
    indices, picks = record.params["indices"], record.params["picks"]
    if values is not None:  # read before the places are cleared
        _accumulate(cotangents, values, written(ct, np.shape(record.args[1]), indices, picks), owned)
    if not held:
        ct = np.array(ct)
    ct[..., indices] = 0.0
    _accumulate(cotangents, into, ct, owned, own=True)


def _scattered(previous, ct, record, owned: dict):
    """x's cotangent with that of x[index] (`ct`) added into it, in place: a read of one element costs its
    seeds' adds, where a dense cotangent of x added whole would cost x's size (a Python loop over the
    elements of x reads each of them once). The accumulator is an array this sweep made, in `owned`."""
    index = (slice(None),) + record.params["index"]
    shape = (ct.shape[0],) + np.shape(record.args[0])
    if previous is None:  # the first read: a placement, as an embed is
        previous = np.zeros(shape, dtype=np.result_type(ct, float))
        previous[index] = ct
        owned[id(previous)] = previous
        return previous
    if not _adds_in_place(previous, ct, owned):  # copied once, into the sweep's own array
        previous = np.array(np.broadcast_to(previous, shape), dtype=np.result_type(previous, ct))
        owned[id(previous)] = previous
    previous[index] += ct
    _count_adds(ct.size)
    return previous


def _adds_in_place(previous, ct, owned: dict) -> bool:
    """Whether ct may be added into the cotangent `previous` in place: an array this sweep made (not a rule's,
    which another value may hold), as wide as the sum (float32 would round the float64 reads added to it)."""
    return owned.get(id(previous)) is previous and previous.dtype == np.result_type(previous, ct)


def _count_adds(elements: int) -> None:
    """One add per element added in place: the convention's cotangent accumulation."""
    counter = active_counter()
    if counter is not None:
        counter.add(elements, 0)


def _record_key(record, pattern: bool = False):
    args, parents, params = record.args, record.parents, record.params
    if record.prim.reads_values or (pattern and record.prim.pattern_reads_values):
        operands = tuple([_frozen(a) if p is None else (p, _value(a)) for a, p in zip(args, parents)])
    elif record.prim.constant_key is not None:  # power: whether a constant holds a zero
        key = record.prim.constant_key
        operands = tuple([(_constant_key(a), key(a)) if p is None else p for a, p in zip(args, parents)])
    else:  # a traced operand is its record's index; a constant is keyed by type and shape
        operands = tuple([_constant_key(a) if p is None else p for a, p in zip(args, parents)])
    out = record.out  # an ndarray or a NumPy scalar
    keyed_params = tuple([(name, _frozen(v)) for name, v in sorted(params.items())]) if params else ()
    if record.prim.route is not None:  # the route its rules take at these values
        operands += (record.prim.route(out, *args, **params),)
    return record.prim.name, keyed_params, operands, out.shape, out.dtype.char


def _constant_key(arg):
    """A constant operand: type and shape, and its value when it is a scalar."""
    if isinstance(arg, np.ndarray) and arg.ndim:
        return arg.shape, arg.dtype.char
    return _frozen(arg)


#: Values of more bytes than this enter a key as a digest of them: the caches keyed by signatures hold 256
#: keys, and an x sorted or multiplied out at every step of a loop gives each a key of its own. The digest is
#: XXH3's 128 bits, not a cryptographic hash: it is taken on every call of auto mode and of a sparse Jacobian,
#: where BLAKE2b's 1 GB/s cost as much as the sweep (an index of 200,000 gathers: 1.7 ms against 20 µs).
DIGEST_BYTES = 64


def _value(array):
    array = np.asarray(array)
    if array.nbytes <= DIGEST_BYTES:
        return array.dtype.str, array.tobytes()
    return array.dtype.str, xxhash.xxh3_128_digest(np.ascontiguousarray(array).data)


_PLAIN = frozenset([int, float, bool, str, type(None), type(Ellipsis)])


def _frozen(value):
    """`value` as a hashable key that compares by value and type (arrays by their bytes)."""
    kind = type(value)
    if kind in _PLAIN:
        return kind, "nan" if value != value else value  # NaN != NaN: a key holding it would equal no other
    if kind is tuple or kind is list:
        return kind, tuple([_frozen(v) for v in value])
    if kind is slice:
        return kind, value.start, value.stop, value.step
    if isinstance(value, (np.ndarray, np.generic)):
        return kind, value.shape, _value(value)
    return kind, value


class ReverseTrace(Trace):
    def __init__(self):
        self.level = next_level()
        self.tape = Tape()
        self.constants = False  # read on every operation: the instance's own, which CPython reads fastest

    def process(self, prim, args, params):
        primals, parents = [], []
        for a in args:
            if type(a) is Node and a._trace is self:  # no subclasses: the exact type test is the cheaper one
                primals.append(a.primal)
                parents.append(a.index)
            else:
                if type(a) is ndarray:
                    if a.dtype.hasobject and (converted := objects_converted(args)):
                        return apply(prim, converted, params)  # np.array([a, b]) of traced scalars: one array
                    # The sweep reads constants later, when f may have written into them (a buffer it
                    # reuses): the tape keeps them as they were
                    a = self.tape.keep(a)
                elif type(a) is Observable:  # a mask under jit: the array it holds now, which a write replaces,
                    # unless f wrote into it already: then it holds Python's numbers, written in place, a constant
                    a = self.tape.keep(a._array) if a._own else a._array
                primals.append(a)
                parents.append(None)  # a constant: it needs no cotangent
                if isinstance(a, Tracer):  # a value of an enclosing trace: see `nested`
                    self.nested = True
        if params and prim.differentiable and prim.array_params != ():
            params = kept_params(prim.array_params, params, self.tape.keep)  # may hold an array: clip's bounds
        counter = active_counter()
        out = self.evaluate(prim, primals, params, counter)
        constant = self.constants and all(p is None for p in parents)  # arrays without a derivative alone
        if constant or not prim.differentiable:
            work, (flops, transcendentals) = self.tape.unrecorded, prim.cost(out, *primals, **params)
            work[0] += flops
            work[1] += transcendentals
            return self.constant(out) if constant and blank_result(out) else out
        if out.dtype is not FLOAT64 and out.dtype in NOT_REAL:  # float64, the usual dtype, tested first
            raise not_real_result(prim, out)
        return Node(self, out, self.tape.append(Record(prim, params, primals, out, parents)))

    def constant(self, value):
        self.constants = True
        return Node(self, frozen(value), None)


class ReverseEngine:
    """VJPs from a recorded tape; one backward sweep per batch of cotangent seeds."""

    name = "reverse"

    def vjp(self, f, x, max_bytes=None, over: str = ""):
        """(f(x), pullback); with `max_bytes`, MemoryBudgetError once the tape f's values take outgrows it (`over`
        says what that limit is and what needs no tape, for the refusal: `harness.record`)."""
        trace = ReverseTrace()
        if max_bytes is not None:
            trace.tape.max_bytes, trace.tape.over = max_bytes, over
        trace.nested = isinstance(x, Tracer)
        x_node = Node(trace, x, trace.tape.append(Record(None, {}, (), x, ())))
        y, traced = call_traced(f, x_node, trace)
        if not traced:
            def zeros(g, release=False):  # a sweep of nothing: the output does not depend on x
                counter = active_counter()
                if counter is not None:
                    counter.count_pass(np.shape(g)[0])
                return np.zeros((np.shape(g)[0],) + np.shape(x))

            zeros.tape, zeros.output = trace.tape, None  # operations f traced but did not return still ran
            zeros.push = _pusher(trace.tape, None, y)
            return y, zeros
        tape, output, y_shape = trace.tape, y.index, np.shape(y.primal)

        def pullback(g, release=False):
            if g.shape[1:] != y_shape:
                raise ValueError(f"cotangents must have shape (k, *y.shape) = (k, {', '.join(map(str, y_shape))}) for "
                                 f"k seeds, got {g.shape}; for one cotangent of y's shape use g[None] (jl.vjp's "
                                 "pullback takes either)")
            counter = active_counter()
            if counter is None:
                ct = tape.backward(output, g, release)
            else:  # `in_phase` and `count_pass`, written out: small sweeps are counted often
                previous, counter.current = counter.current, counter._work[COTANGENT]
                try:
                    ct = tape.backward(output, g, release)
                finally:
                    counter.current = previous
                counter.passes += 1
                counter.batch_size = max(counter.batch_size, g.shape[0])
            return np.zeros((g.shape[0],) + x.shape) if ct is None else ct

        # A sweep holds at most one cotangent per recorded value: elements per seed.
        pullback.seed_elements, pullback.widest = tape.elements, tape.widest
        pullback.tape, pullback.output = tape, output
        pullback.push = _pusher(tape, output, y.primal)
        counter = active_counter()
        if counter is not None and tape.fresh_bytes > counter.tape_bytes:
            counter.tape_bytes = tape.fresh_bytes
        return y.primal, pullback


def _pusher(tape, output, y):
    """``push(tangents, max_bytes=None) -> (y, tangents of y)``: the `Engine.jvp` of f at x,
    as forward accumulation over the recorded tape, with no second evaluation of f."""

    def push(tangents, max_bytes=None):
        budget = TangentBudget(max_bytes, tangents.shape[0])
        counter = active_counter()
        if counter is None:
            t = tape.forward(tangents, output, budget)
        else:
            t = in_phase(counter, TANGENT, tape.forward, tangents, output, budget)
            counter.count_pass(tangents.shape[0])
        return y, (np.zeros((tangents.shape[0],) + np.shape(y)) if t is None else t)

    return push


register(ReverseEngine())
