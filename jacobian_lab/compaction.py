"""Seed-row compaction: forward programs skip the tangent rows that are structurally zero.

A forward pass pushes k one-hot seeds at once, so every tangent carries a
leading seed axis of length k. Row j of a tangent is the derivative along
seed j, and it stays zero until an operation mixes the rows: for
``p0 * exp(-p1 * t)`` the tangent of ``-p1 * t`` is nonzero in p1's row
only, yet the eager pass multiplies all k rows. `compact` rewrites the
equations of a forward `program.Program` so that such values are stored and
computed with only their nonzero rows:

* a folded constant's rows are known from its data (a row with any nonzero
  entry, NaN included, counts); a value computed by ``multiply``, ``divide``
  (by a non-tangent), ``negative``, ``add`` or ``subtract`` keeps its
  operands' rows, where the other operand of a product does not span the seed
  axis (NumPy broadcasting gives it length 1 there);
* a sum of values holding different rows is built on the union of the rows:
  the first copied into zeros, the second added in; when the rows are
  disjoint, each part is computed straight into its rows of one array
  (``out=``), or the two are concatenated;
* any other operation reads a compacted value expanded to all k rows (zeros,
  then its rows copied in), so correctness never depends on which primitives
  are covered, and each pass's derivative block is expanded at the end.

A skipped row is zero only because it is ``0 * v`` in eager mode, and that is
NaN when v is inf or NaN (and ``0 / 0`` is NaN). So every value that
multiplies or divides a compacted one is checked: a constant once, here (a
non-finite constant keeps that product dense), a value computed from x on
every replay, where the compact program returns `DENSE` when one is not
finite (a divisor also when it holds a zero) and the program then runs its
dense code. With the checks passing, the compact program's values are those
of the dense one, up to the sign of a zero.
"""
from __future__ import annotations

import cmath
import collections
import math

import numpy as np

from .accounting import TANGENT
from .primitives import REGISTRY
from .staging import Equation, input_position, is_input

class _Dense:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DENSE"


#: What a compact program returns when an operand it relies on to be finite is not:
#: the caller runs the dense program instead (None would mean "a guard failed").
DENSE = _Dense()

#: The functions the conditions `condition` writes call, by the names they use.
NAMES = {"finite": math.isfinite, "cfinite": cmath.isfinite}
DOT_CHECK_SIZE = 1 << 16  # the largest vector checked with a dot product (by an array of zeros as long)


class Compacted:
    """A forward program rewritten to hold only nonzero seed rows.

    `eqs` extends the recorded equations (new ones, expansions, follow them);
    `run`, `placements` and `blocks` are as `program.Program` uses them;
    `checks` maps a value's ref to "finite" or "divisor" (finite and no zeros),
    tested on each replay; `into` maps an equation to the placement and index
    it writes its result into (``out=``); `filled` are the placements whose
    every row is written (made with ``empty``, not ``zeros``); `notes` maps
    an equation to the comment its source line gets; `equations` are the
    ones whose cost a replay does.
    """

    def __init__(self, eqs, run, placements, blocks, checks, into, filled, notes, equations):
        self.eqs, self.run, self.placements, self.blocks = eqs, run, placements, blocks
        self.checks, self.into, self.filled, self.notes, self.equations = checks, into, filled, notes, equations


def compact(eqs, run, placements, blocks, observations, seeds, inputs, variables=()) -> Compacted | None:
    """The forward program `run` with structurally zero seed rows left out; None if none are.

    `eqs`, `run` (indices of the equations a replay runs, in order),
    `placements` and `blocks` (each pass's output: value, ref, seeds) are
    `program.Program`'s; values `observations` read are left whole, and so
    are the operands and results of the equations whose work `variables`
    (`staging.Variable`) count again on each replay.
    `inputs`: x, then the arrays of f's other arguments the program takes.

    >>> import numpy as np, jacobian_lab as jl
    >>> t = np.linspace(0.0, 1.0, 5)
    >>> program = jl.jit(jl.jacfwd(lambda p: p[0:1] * np.exp(-p[1:2] * t))).program(np.ones(2))
    >>> print(next(line for line in program.source.splitlines() if "rows" in line))
        v10 = multiply(c2, v4)  # tangent, rows 1
    >>> # primal: 1 + 5 flops; tangents: 3 products on 1 row of 5 (dense: 2 rows) and no 2-row sum
    >>> program.cost.flops, program.dense_cost.flops
    (21, 46)
    """
    return _Rewrite(eqs, placements, observations, seeds, inputs, variables).run(run, blocks)


class _Rewrite:
    """One pass over a forward program in order: each equation compacted, or run as recorded.

    New equations (expansions) are appended to `new`, so equation indices,
    and the refs naming them, stay valid.
    """

    def __init__(self, eqs, placements, observations, seeds, inputs, variables=()):
        self.eqs, self.new, self.placements = eqs, list(eqs), dict(placements)
        self.original_placements = placements
        self.seeds = set(seeds)
        self.pinned = {r for o in observations for r in o.refs}  # a check reads them whole
        # a count reads its operands whole and stands for its equation's work as recorded
        self.pinned.update(r for v in variables for r in (*v.refs, v.equation))
        self.inputs = inputs
        self.rows: dict[int, tuple] = {}  # running ref -> the rows its compact value holds
        self.expanded: dict[int, int] = {}  # compacted ref -> its expansion
        self.filled: set[int] = set()  # unions of disjoint rows: every row of theirs is written
        self.checks: dict[int, str] = {}
        self.notes: dict[int, str] = {}
        self.out: list[int] = []  # the rewritten run
        self._constants: dict = {}  # id of a constant -> (its rows or None, the constant, compacted copy)
        self.prims = {name: REGISTRY[name] for name in ("multiply", "divide", "negative", "add", "subtract")}

    def run(self, run, blocks) -> Compacted | None:
        self.running = set(run)
        for i in run:
            if not self._compact(i):
                self._dense(i)
        if not self.notes:
            return None
        outputs = []
        for value, ref, k in blocks:
            outputs.append((value, self._expansion(ref) if ref in self.rows else ref, k))
        into = self._in_place(outputs)
        counted = [self.new[i] for i in self.out if i not in self.original_placements]
        return Compacted(self.new, self.out, self.placements, outputs, self.checks, into, self.filled, self.notes,
                         counted)

    def _in_place(self, blocks) -> dict:
        """Let the parts a new placement copies be computed straight into it.

        A part that an elementwise operation (a NumPy ufunc) computes, read
        nowhere else, is written into its slice of the placement with
        ``out=``: no temporary and no copy, the same arithmetic. The
        placement's array is then made before the first such part. A disjoint
        union whose parts cannot be is a concatenation when its parts are
        blocks of rows in order, else it stays a placement.
        """
        readers = collections.Counter(r for i in self.out for r in reads(self.new, self.placements, i))
        readers.update(ref for _, ref, _ in blocks)
        readers.update(self.pinned)
        into = {}
        for i in [i for i in self.out if i in self.placements and i not in self.original_placements]:
            shape, parts = self.placements[i]
            if any(how != "=" for *_, how in parts):
                continue
            writers = {}
            for index, _, ref, _ in parts:
                if ref in self.running:  # else a constant, copied in when the array is made
                    eq = self.new[ref]
                    if type(index) is not slice or readers[ref] != 1 or ref in self.placements \
                            or not isinstance(eq.prim.impl, np.ufunc) or eq.dtype != self.new[i].dtype \
                            or tuple(eq.shape) != (index.stop - index.start,) + tuple(shape[1:]):
                        break
                    writers[ref] = index
            else:
                for ref, index in writers.items():
                    into[ref] = (i, index)
                self.placements[i] = (shape, [part for part in parts if part[2] not in writers])
                first = min(self.out.index(ref) for ref in writers) if writers else self.out.index(i)
                self.out.remove(i)
                self.out.insert(first, i)
                continue
            self._concatenation(i)
        return into

    def _concatenation(self, i) -> None:
        """A union of two blocks of rows, the first before the second, as one concatenation."""
        shape, parts = self.placements[i]
        eq = self.new[i]
        if len(parts) != 2 or i in self.expanded.values():
            return
        if any(type(index) is not slice for index, *_ in parts):
            return
        (ia, a, ra, _), (ib, b, rb, _) = sorted(parts, key=lambda part: part[0].start)
        if ia.start != 0 or ia.stop != ib.start or ib.stop != shape[0]:
            return
        for value, ref, index in ((a, ra, ia), (b, rb, ib)):
            part = self.new[ref] if ref in self.running else value  # an equation or a constant
            if getattr(part, "dtype", None) != eq.dtype \
                    or tuple(part.shape) != (index.stop - index.start,) + tuple(shape[1:]):
                return  # concatenate neither broadcasts nor casts
        del self.placements[i]
        self.new[i] = _equation(eq, (a, b), (ra, rb), eq.cost, shape, REGISTRY["concatenate"], {"axis": 0})

    # --- what an operand holds -----------------------------------------------------
    def _shape(self, value, ref):
        if is_input(ref):
            return self.inputs[input_position(ref)].shape
        if ref in self.running:
            return self.eqs[ref].shape
        return np.shape(value)

    def _operand_rows(self, value, ref):
        """The rows a compacted operand holds (a running value or a constant); None if whole."""
        if ref in self.running:
            return self.rows.get(ref)
        if is_input(ref) or not isinstance(value, np.ndarray):
            return None
        return self._constant(value)[0]

    def _constant(self, value):
        found = self._constants.get(id(value))
        if found is None:
            rows = None
            if value.ndim and value.shape[0] in self.seeds and value.size:
                nonzero = np.flatnonzero((value.reshape(value.shape[0], -1) != 0).any(axis=1))
                if len(nonzero) < value.shape[0]:
                    rows = tuple(int(j) for j in nonzero)
            compacted = None if rows is None else np.ascontiguousarray(value[list(rows)])
            found = self._constants[id(value)] = (rows, value, compacted)
        return found

    def _is_constant(self, value, ref) -> bool:
        """Whether an operand is an array the program holds (computed when it was compiled)."""
        return ref not in self.running and not is_input(ref) and isinstance(value, np.ndarray)

    def _compact_arg(self, value, ref):
        """The argument a compact equation reads: a constant stored compacted, else as it was."""
        if not self._is_constant(value, ref):
            return value
        rows, _, compacted = self._constant(value)
        return value if rows is None else compacted

    # --- one equation ----------------------------------------------------------------
    def _compact(self, i) -> bool:
        """Rewrite equation i to compute only nonzero rows, if it may and that helps."""
        eq = self.eqs[i]
        if i in self.placements or eq.phase != TANGENT or i in self.pinned or not eq.shape:
            return False
        name = eq.prim.name
        if self.prims.get(name) is not eq.prim:
            return False
        out = eq.shape
        ops = [(a, r, self._operand_rows(a, r), self._shape(a, r)) for a, r in zip(eq.args, eq.refs)]
        held = [j for j, op in enumerate(ops) if op[2] is not None and _aligned(op[3], out)]
        if name == "negative":
            if held != [0]:
                return False
            return self._replace(i, ops, ops[0][2], out)
        if name in ("multiply", "divide"):
            if len(held) != 1 or any(op[2] is not None for op in ops if op is not ops[held[0]]):
                return False
            other = ops[1 - held[0]]
            if (name == "divide" and held[0] != 0) or _spans(other[3], out):
                return False
            kind = "divisor" if name == "divide" else "finite"
            if is_input(other[1]) or other[1] in self.running:
                self._check(other[1], kind)
            elif not _safe(other[0], kind):
                return False  # eager computes 0 * inf = NaN in the rows left out: keep them
            return self._replace(i, ops, ops[held[0]][2], out)
        # add, subtract: both operands hold rows (else the result is whole)
        if held != [0, 1]:
            return False
        if ops[0][2] == ops[1][2]:
            return self._replace(i, ops, ops[0][2], out)
        return self._union(i, eq, *[(self._compact_arg(value, ref), ref, rows, shape)
                                    for value, ref, rows, shape in ops])

    def _replace(self, i, ops, rows, out) -> bool:
        eq = self.eqs[i]
        shape = (len(rows),) + tuple(out[1:])
        args = tuple([self._compact_arg(a, r) for a, r, _, _ in ops])
        dummies = [_dummy(_compact_shape(s, held) if held is not None and _aligned(s, out) else s, eq.dtype)
                   for _, _, held, s in ops]
        cost = tuple(eq.prim.cost(_dummy(shape, eq.dtype), *dummies, **eq.params))
        self.new[i] = _equation(eq, args, eq.refs, cost, shape)
        self.notes[i] = f", rows {_rows_text(rows)}"
        self.rows[i] = rows
        self.out.append(i)
        return True

    def _union(self, i, eq, a, b) -> bool:
        """a + b (or a - b) on the union of their rows: a copied into zeros, b added in.

        Rows only b holds get 0 + b = b (or 0 - b = -b) and rows only a holds
        keep a's values, which is what eager's a + 0 and 0 - b give. A sum of
        two blocks of rows, one after the other, is their concatenation.
        """
        out, k, add = eq.shape, eq.shape[0], eq.prim.name == "add"
        union = tuple(sorted(set(a[2]) | set(b[2])))
        shape = (len(union),) + tuple(out[1:])
        disjoint = not set(a[2]) & set(b[2])
        sign = "+" if add else "-"
        self.notes[i] = f", rows {_rows_text(union)}: rows {_rows_text(a[2])} {sign} rows {_rows_text(b[2])}"
        if len(union) < k:
            self.rows[i] = union
        self.out.append(i)
        if add and len(a[2]) < len(b[2]):
            a, b = b, a  # a + b == b + a exactly: add in the operand with fewer rows
        if disjoint and not add and self._is_constant(*b[:2]):
            b, add = (np.subtract(0.0, b[0]), *b[1:]), True  # 0 - b once, as compiled (as eager: +0.0, not -0.0)
        op = "=" if disjoint and add else ("+=" if add else "-=")
        if op == "=":
            self.filled.add(i)
        cost = (0, 0) if op == "=" else tuple(eq.prim.cost(_dummy((len(b[2]),) + shape[1:], eq.dtype),
                                                            _dummy(shape, eq.dtype), _dummy(shape, eq.dtype)))
        parts = [(_index([union.index(j) for j in rows]), value, ref, how)
                 for (value, ref, rows, _), how in ((a, "="), (b, op))]
        self.new[i] = _equation(eq, eq.args, eq.refs, cost, shape)
        self.placements[i] = (shape, parts)
        return True

    def _dense(self, i) -> None:
        """Equation i as recorded, reading any compacted operand expanded to all its rows."""
        eq = self.eqs[i]
        if i in self.placements:
            parts = self.placements[i][1]
            if any(part[2] in self.rows for part in parts):
                parts = [(index, value, self._expansion(ref) if ref in self.rows else ref, *op)
                         for index, value, ref, *op in parts]
                self.placements[i] = (self.placements[i][0], parts)
        elif any(r in self.rows for r in eq.refs):
            refs = tuple([self._expansion(r) if r in self.rows else r for r in eq.refs])
            self.new[i] = _equation(eq, eq.args, refs, eq.cost, eq.shape)
        self.out.append(i)

    def _expansion(self, ref) -> int:
        """The index of compacted value `ref` expanded to all k rows (zeros elsewhere), made once."""
        if ref not in self.expanded:
            eq, rows = self.eqs[ref], self.rows[ref]
            e = self.expanded[ref] = len(self.new)
            self.new.append(_equation(eq, (None,), (ref,), (0, 0), eq.shape))  # a copy: no arithmetic
            self.placements[e] = (eq.shape, [(_index(rows), None, ref, "=")])
            self.notes[e] = f": rows {_rows_text(rows)} of {eq.shape[0]}, expanded"
            self.out.append(e)
        return self.expanded[ref]

    def _check(self, ref, kind) -> None:
        # sin and cos are finite exactly when their argument is (inf gives NaN): check the
        # argument, which the sine and the cosine of one value then share.
        while kind == "finite" and ref in self.running and self.eqs[ref].prim.name in ("sin", "cos") \
                and (is_input(self.eqs[ref].refs[0]) or self.eqs[ref].refs[0] in self.running):
            ref = self.eqs[ref].refs[0]
        if self.checks.get(ref) != "divisor":
            self.checks[ref] = kind


def reads(eqs, placements: dict, i) -> list:
    """The refs line i of a program reads: its equation's operands, or for a placement its parts."""
    if i in placements:
        return [part[2] for part in placements[i][1]]
    return eqs[i].refs


def condition(name, kind, dtype, shape, constant, zeros: dict) -> str | None:
    """The source of a test that value `name` may multiply ("finite") or divide ("divisor") zero rows.

    It passes when ``0 * value`` (or ``0 / value``) is zero everywhere: every
    entry finite (and for a divisor, nonzero). A vector's dot product with
    zeros is 0 when every entry is finite and NaN otherwise (0 * inf is NaN),
    whatever the magnitudes: exact both ways, one BLAS call. Other arrays are
    summed: a sum is finite only if every term is (inf and NaN propagate
    through additions, in any order), and a sum that overflows merely sends
    the call to the dense code. `constant` names a constant in the program;
    `zeros` holds the arrays of zeros the program's checks share. None: nothing
    to test (an integer factor).

    >>> condition("v4", "finite", np.dtype(float), (3,), lambda c: "c0", {})
    'finite(v4.dot(c0))'
    >>> condition("v0", "divisor", np.dtype(float), (1,), None, {})
    '(finite(v0.item()) and v0.all())'
    """
    tests = []
    if dtype is None or shape is None or dtype.kind in "fc":
        finite = "cfinite" if dtype is not None and dtype.kind == "c" else "finite"
        if shape is not None and math.prod(shape) == 1:
            tests.append(f"{finite}({name}.item())")
        elif shape is not None and len(shape) == 1 and dtype in (np.float32, np.float64) \
                and shape[0] <= DOT_CHECK_SIZE:
            if (shape, dtype) not in zeros:
                zeros[shape, dtype] = np.zeros(shape, dtype)
            tests.append(f"{finite}({name}.dot({constant(zeros[shape, dtype])}))")
        else:
            tests.append(f"{finite}({name}.sum())")
    if kind == "divisor":
        tests.append(f"{name}.all()")
    if len(tests) > 1:
        return f"({' and '.join(tests)})"
    return tests[0] if tests else None


def _aligned(shape, out) -> bool:
    """Whether an operand of this shape carries the output's leading (seed) axis as its own."""
    return shape is not None and len(shape) == len(out) and len(out) > 0 and shape[0] == out[0]


def _spans(shape, out) -> bool:
    """Whether an operand, broadcast against the output, varies along the leading axis."""
    return shape is None or (len(shape) == len(out) and shape[0] != 1)


def _safe(value, kind) -> bool:
    """Whether ``0 * value`` (or ``0 / value``) is zero everywhere, so rows may be left out."""
    value = np.asarray(value)
    if value.dtype.kind in "fc" and not np.isfinite(value).all():
        return False
    return kind != "divisor" or bool(np.all(value != 0))


def _compact_shape(shape, rows):
    return (len(rows),) + tuple(shape[1:])


def _dummy(shape, dtype):
    """An array of this shape, without memory: a cost function reads shapes only."""
    return np.broadcast_to(np.zeros((), dtype=dtype or np.float64), shape)


def _index(positions):
    """A slice when positions are consecutive (cheap to index with), else an index array."""
    positions = list(positions)
    if not positions:
        return slice(0, 0)
    if positions == list(range(positions[0], positions[-1] + 1)):
        return slice(positions[0], positions[-1] + 1)
    return np.array(positions, dtype=np.intp)


def _rows_text(rows) -> str:
    """0 1 2 5 -> "0-2 5"."""
    runs, start = [], None
    for j, row in enumerate(rows):
        if start is None:
            start = row
        if j + 1 == len(rows) or rows[j + 1] != row + 1:
            runs.append(str(start) if start == row else f"{start}-{row}")
            start = None
    return " ".join(runs) if runs else "none"


def _equation(eq, args, refs, cost, shape, prim=None, params=None) -> Equation:
    """A copy of `eq` reading `refs`, with the cost and output shape it has once rewritten."""
    new = Equation.__new__(Equation)
    new.prim, new.args, new.refs, new.out = prim or eq.prim, args, refs, eq.out
    new.params = eq.params if params is None else params
    new.dtype, new.shape, new.cost, new.phase = eq.dtype, shape, cost, eq.phase
    new.segment, new.dynamic = eq.segment, True
    return new
