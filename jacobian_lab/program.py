"""`Program`: the part of a recorded Jacobian computation that depends on x, as one Python function.

`jacobian_lab.compiled` records a Jacobian and builds a `Program` from the record: the
equations a replay needs (`_needed`, `_may_raise`), the pieces of the Jacobian copied into
place (`_placements`), their costs (`_costs`), and the source `codegen` writes, compiled on
the first replay. `CompressedProgram` replays compressed seeds and gathers a sparse Jacobian.
"""
from __future__ import annotations

import collections
import math

import numpy as np

from . import compaction
from .accounting import PHASES, Cost, Counter, active_counter
from .compressed import holding
from .harness import result_dtype, whole_block
from .primitives import REGISTRY
from .staging import Recorder, is_input
from .codegen import _Code


class Program:
    """The part of a recorded Jacobian computation that depends on x, as one Python function.

    Attributes: `mode` ("forward" or "reverse"), `source` (the generated code),
    `equations` (the recorded equations it runs), `cost` (the `Cost` of one
    replay, also by phase in `costs`), `constant_bytes` (what it keeps from
    compile time), `guards` (checks of values f branched on), `variables`
    (counts of work read from values, `staging.Variable`: each replay computes
    them again and counts what they come to, where `cost` holds the recording's).

    A forward program whose tangents hold structurally zero seed rows runs
    compacted (`jacobian_lab.compaction`): `source`, `equations` and `cost`
    are those of the compact code, and `dense_source`, `dense_cost` and
    `dense_costs` those of the dense code a replay runs instead when a value
    multiplying a compacted tangent is not finite (counting then adds the
    dense cost). Without compaction the two are the same.
    """

    def __init__(self, recorder: Recorder, mode: str, y_shape, x, out_def, prefix: str = "", emit: bool = True):
        self.mode, self.y_shape, self.x_shape, self.out_def = mode, tuple(y_shape), x.shape, out_def
        self.dtype = result_dtype(x)
        # (row width of a pass's block, shape of J): reverse blocks are rows of J, forward ones columns
        width = math.prod(self.x_shape) if mode == "reverse" else math.prod(self.y_shape)
        self._layout = width, self.y_shape + self.x_shape
        # a bidirectional program replays its forward passes, then its sweeps, after the shared primal work
        orders = ("forward", "reverse") if mode == "bidirectional" else (mode,)
        segments = (None, *[prefix + order for order in orders])
        blocks = [block for segment in segments[1:] for block in recorder.outputs.get(segment, [])]
        self.seeds = [k for _, _, k in blocks]
        eqs = recorder.equations
        observations = [o for o in recorder.observations if o.segment in segments]
        roots = [r for _, r, _ in blocks] + [r for o in observations for r in o.refs] + _may_raise(eqs, segments)
        run = _needed(eqs, roots)
        placements, absorbed = _placements(eqs, run, roots)
        filled = {i for i, (shape, parts) in placements.items() if _fills(shape, parts)}
        run = [i for i in run if i not in absorbed]
        lines = [i for i in run if i not in placements]
        self.equations = [eqs[i] for i in lines]
        kept_lines = set(lines)
        self.variables = [v for v in recorder.variables if v.equation in kept_lines]
        self.guards = len(observations)
        self.reads = [o.where for o in observations]  # where f read the values each guard checks
        self.missed = None  # that of the guard that failed at the last call no replay answered
        self.costs = self.dense_costs = _costs(self.equations)  # a placement copies: no arithmetic
        code = _Code(eqs, set(run), placements, recorder.inputs, quiet=recorder.quiet, filled=filled)
        self.fresh = all(r in code.running for _, r, _ in blocks)  # else a block is a constant it keeps
        rewrite = None
        if mode == "forward":
            rewrite = compaction.compact(eqs, run, placements, blocks, observations, self.seeds, recorder.inputs,
                                         self.variables)
            if rewrite is not None and _total(_costs(rewrite.equations)).total() < self.cost.total():
                self.equations, self.costs = rewrite.equations, _costs(rewrite.equations)
            else:
                rewrite = None
        self._unwritten = code, run, observations, blocks, rewrite, recorder, filled
        if emit:
            self.emit()

    def emit(self) -> None:
        """Write the source of the code a replay runs (and of the dense code a compacted one falls back to).
        A program built with ``emit=False`` has its costs and equations only: auto mode compares both
        orders' programs by their costs, and writing the one it drops was most of building it (a tenth of
        a long loop's first call)."""
        code, run, observations, blocks, rewrite, recorder, filled = self._unwritten
        self._unwritten = None  # nor the recorded values `code` holds
        self.source = self.dense_source = code.emit(run, observations, blocks, self.variables)
        self._run, self._dense = _compiled_on_first_call(self, code), None
        kept = code.memory  # id of each constant array -> its bytes
        if rewrite is not None:
            compact = _Code(rewrite.eqs, set(rewrite.run), rewrite.placements, recorder.inputs, rewrite,
                            recorder.quiet, filled)
            self.source = compact.emit(rewrite.run, observations, rewrite.blocks, self.variables)
            self._run, self._dense = _compiled_on_first_call(self, compact), self._run
            kept.update(compact.memory)
        self.constant_bytes = sum(kept.values())
        self._work = self._counter(self.costs)  # what counting a replay adds: known in advance
        self._dense_work = self._counter(self.dense_costs) if self._dense else None  # only compact code falls back

    @property
    def cost(self) -> Cost:
        """The work of one replay: `costs` summed."""
        return _total(self.costs)

    @property
    def dense_cost(self) -> Cost:
        """The work of one replay of the dense code: `dense_costs` summed."""
        return _total(self.dense_costs)

    def __call__(self, x: np.ndarray, *inputs) -> np.ndarray | None:
        """The Jacobian at x, shape ``y_shape + x.shape``; None when a guard fails. `inputs`: the arrays of
        f's other arguments, when it was compiled with them (`inputs.Inputs`)."""
        blocks = self._run(x, *inputs)
        work = self._work
        if blocks is compaction.DENSE:  # a compacted row would hold NaN: the dense code computes it
            blocks, work = self._dense(x, *inputs), self._dense_work
        if type(blocks) is int:  # the number of the guard that failed
            self.missed = self.reads[blocks]
            return None
        counts = None
        if self.variables:
            blocks, counts = blocks
        counter = active_counter()
        if counter is not None:
            counter.merge(work)
            if counts is not None:
                counter.merge(self._varied(counts))
        return self._assemble(blocks)

    def _varied(self, counts) -> Counter:
        """What the counts of work read from values (`variables`) came to at this replay, beyond the
        recording's, which `cost` holds."""
        counter = Counter()
        for v, count in zip(self.variables, counts):
            counter.phase = v.phase
            counter.add((int(count) - v.value) * v.times, 0)
        return counter

    def _assemble(self, blocks):
        """J from the passes' blocks: rows (reverse) or columns (forward) of an (m, n) matrix."""
        width, shape = self._layout
        if len(blocks) == 1 and self.fresh and whole_block(blocks[0], self.dtype):
            M = blocks[0].reshape(self.seeds[0], width)
        else:  # several passes, or a block the program keeps: a fresh array the caller owns
            mats = [b.reshape(k, width) for b, k in zip(blocks, self.seeds)]
            M = np.concatenate(mats, dtype=self.dtype) if mats else np.zeros((0, width), dtype=self.dtype)
        return (M if self.mode == "reverse" else M.T).reshape(shape)

    def _counter(self, costs) -> Counter:
        counter = Counter()
        for phase, cost in costs.items():
            counter.phase = phase
            counter.add(cost.flops, cost.transcendentals)
        for k in self.seeds:
            counter.count_pass(k)
        return counter


def _defined(source: str, namespace: dict):
    """The function ``program`` that `source` defines, compiled with `namespace` as its globals."""
    exec(compile(source, "<jacobian_lab.program>", "exec"), namespace)
    return namespace["program"]


def _compiled_on_first_call(program: Program, code: "_Code"):
    """A stand-in for the function `code` writes, which compiles it on its first call and takes its place in
    `program`: auto mode drops the order it compares against unrun, and a compacted program's dense code runs
    only where a value is not finite, so neither is compiled (CPython's compile of a long program is a fifth
    of its first call)."""
    source, namespace = code.source, code.namespace  # not code itself, which holds every recorded value

    def first(*args):
        run = _defined(source, namespace)
        for name in ("_run", "_dense"):
            if program.__dict__.get(name) is first:
                setattr(program, name, run)
        return run(*args)
    return first


class CompressedProgram(Program):
    """A `Program` of compressed passes: its blocks are one derivative per color, and a replay
    gathers the pattern's entries from them (`reads`, the plan's `compressed.where_read`) into a
    `csr_array`, or with `dense` into the Jacobian as an array of shape ``y_shape + x_shape``."""

    def __init__(self, recorder: Recorder, mode: str, y_shape, x, pattern, reads: dict, prefix: str = "",
                 out_def=None, dense: bool = False):
        super().__init__(recorder, mode, y_shape, x, out_def, prefix)
        self.pattern, self._reads, self._dense_result = pattern, reads, dense
        if dense:  # each entry's place in the dense (m, n) J: a scatter there beats csr_array.toarray
            rows = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr))
            self._flat_index = rows * pattern.shape[1] + pattern.indices
        self._pushed = len(recorder.outputs.get(prefix + "forward", []))  # the forward blocks come first
        indices = [pattern.indptr, pattern.indices, pattern.data, getattr(self, "_flat_index", None),
                   *(a for read in reads.values() for a in read)]
        self.constant_bytes += sum(a.nbytes for a in indices if isinstance(a, np.ndarray))  # kept to gather J

    def _assemble(self, blocks):
        values = np.empty(self.pattern.nnz, dtype=self.dtype)
        split = {"forward": slice(None, self._pushed), "reverse": slice(self._pushed, None)}
        for order, (mine, _, flat) in self._reads.items():
            laid = [b.reshape(-1) for b in blocks[split[order]]]  # each color's derivative, end to end
            if laid:  # no block: the order has no entry to read
                values[mine] = (np.concatenate(laid) if len(laid) > 1 else laid[0]).take(flat)
        if self._dense_result:
            return self.dense(values) if np.isfinite(values).all() else None
        return holding(self.pattern, values)

    def dense(self, values) -> np.ndarray:
        """The pattern's entries `values` as the dense Jacobian (zero off the pattern).

        Only for finite entries: eager one-hot seeds compute an entry off the pattern
        as ``0 * v``, NaN where a value v on the way is inf or NaN, and such a v makes
        an entry of the same row (forward) or column (reverse) non-finite too. So a
        replay with a non-finite entry returns None, as for a failed guard, and the
        Jacobian at that x is recompiled in a dense order, whose values are eager's.
        """
        J = np.zeros(self.pattern.shape[0] * self.pattern.shape[1], dtype=self.dtype)
        J[self._flat_index] = values
        return J.reshape(self.y_shape + self.x_shape)


def _may_raise(eqs, segments) -> list[int]:
    """The equations of `segments` whose operation may raise on other values of x.

    They run on every replay even when the Jacobian does not read them: f may call one only to
    see whether it raises (``try: cholesky(a)``), and a replay at values where it does must raise
    too, so that the call falls back to eager mode, where f catches it (see `compiled._replay`). Whether
    it raises depends on its matrix, the first operand: one computed from x, not a constant
    (``solve(A, x)`` raises at every x or at none).
    """
    def from_x(ref):
        return is_input(ref) or (ref is not None and eqs[ref].dynamic)

    return [i for i, eq in enumerate(eqs) if eq.prim.raises and eq.segment in segments and from_x(eq.refs[0])]


def _needed(eqs, roots) -> list[int]:
    """Indices of the equations a replay runs, in order: the dynamic ones the roots read."""
    want = bytearray(len(eqs))
    for r in roots:
        if r is not None and r >= 0:
            want[r] = 1
    run = []
    for i in range(len(eqs) - 1, -1, -1):
        eq = eqs[i]
        if want[i] and eq.dynamic:  # else unread, or a constant the program keeps
            run.append(i)
            for r in eq.refs:
                if r is not None and r >= 0:
                    want[r] = 1
    return run[::-1]


def _placements(eqs, run, roots) -> dict[int, list]:
    """Sums of `embed`s into disjoint parts of one array, each as one placement.

    A gradient with respect to a vector cut into pieces (``x[:k]``, ``x[k:]``)
    arrives as one embed per piece, zero elsewhere, summed by adds; when the
    pieces do not overlap the sum is the pieces copied into one array of
    zeros. Returns ({last add of each such sum: (shape, [(index, embedded
    operand, its ref), ...])}, the embeds and adds before it, which drop out).
    """
    embed, add = REGISTRY["embed"], REGISTRY["add"]
    uses = collections.Counter(r for i in run for r in eqs[i].refs)
    uses.update(roots)
    sums, absorbed = {}, set()  # equation -> (shape, parts) of each sum found so far

    def summand(r):  # an embed or a sum read only by this add, or a folded embed (a constant)
        if r in sums and uses[r] == 1:
            return sums[r]
        eq = eqs[r] if r is not None and r >= 0 else None
        if eq is not None and eq.prim is embed and not eq.dynamic:
            return tuple(eq.params["shape"]), [(eq.params["index"], eq.args[0], eq.refs[0])]
        return None

    for i in run:
        eq = eqs[i]
        if eq.prim is embed:
            sums[i] = tuple(eq.params["shape"]), [(eq.params["index"], eq.args[0], eq.refs[0])]
        elif eq.prim is add and len(set(eq.refs)) == 2:
            a, b = (summand(r) for r in eq.refs)
            if a and b and a[0] == b[0] and all(eqs[r].dtype == eq.dtype for r in eq.refs) \
                    and _disjoint(a[0], a[1] + b[1]):
                sums[i] = a[0], a[1] + b[1]
                absorbed.update(eq.refs)
    return {i: p for i, p in sums.items() if len(p[1]) > 1 and i not in absorbed}, absorbed


def _coverage(shape, parts) -> np.ndarray:
    """How many of `parts` write each element of an array of `shape`."""
    covered = np.zeros(shape, dtype=np.int32)
    for index, *_ in parts:
        covered[index] += 1  # basic indices (slices, integers): no position twice within one part
    return covered


def _disjoint(shape, parts) -> bool:
    return int(_coverage(shape, parts).max(initial=0)) <= 1


def _fills(shape, parts) -> bool:
    """Whether `parts` write every element: their placement needs no zeros (`empty` is made instead)."""
    return int(_coverage(shape, parts).min(initial=1)) >= 1


def _total(costs: dict) -> Cost:
    return sum(costs.values(), Cost())


def _costs(equations) -> dict[str, Cost]:
    totals = {phase: [0, 0] for phase in PHASES}
    for eq in equations:
        flops, transcendentals = eq.cost
        totals[eq.phase][0] += flops
        totals[eq.phase][1] += transcendentals
    return {phase: Cost(*work) for phase, work in totals.items()}
