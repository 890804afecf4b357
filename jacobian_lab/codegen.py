"""The source of a `program.Program`: one line of NumPy per equation, guards checked as soon as computed."""
from __future__ import annotations

import keyword
import math
import re

import numpy as np

from . import compaction
from .primitives import REGISTRY
from .staging import INPUT, input_name, input_position, input_ref, is_input


class _Code:
    """Writes the program's source: one line per equation, guards checked as soon as computed.

    A compacted program's `compaction.Compacted` adds comments to lines
    (`notes`), checks that return `compaction.DENSE` when a value is not
    finite (`checks`), results written into placements (`into`) and
    placements made without zeros (`filled`). `filled` adds the placements whose
    parts write every element (a gradient's pieces that make up all of x).
    `inputs`: the arrays the program takes (x, then those of f's other arguments).
    """

    def __init__(self, eqs, running: set, placements: dict, inputs, compacted=None, quiet=None, filled=()):
        self.eqs, self.running, self.placements, self.inputs, self.quiet = eqs, running, placements, inputs, quiet or {}
        self.notes, self.checks, self.into, made_full = (
            (compacted.notes, compacted.checks, compacted.into, compacted.filled) if compacted else ({}, {}, {}, ()))
        self.filled = {*made_full, *filled}
        self.namespace = {"__name__": "jacobian_lab.program.generated",  # whose warnings the command line leaves out
                          "same": same, "zeros": np.zeros, "empty": np.empty, "errstate": np.errstate,
                          "asarray": np.asarray,
                          "DENSE": compaction.DENSE,
                          **compaction.NAMES}
        self._constants: dict[int, str] = {}
        self.memory: dict[int, int] = {}  # id of each constant's underlying array -> its bytes
        self._zeros: dict = {}  # arrays of zeros the checks share, by shape and dtype

    def emit(self, run, observations, blocks, variables=()) -> str:
        checks: dict[int, list] = {}
        for o in observations:
            checks.setdefault(self._computed_by(o), []).append(o)
        counts = {v.equation: k for k, v in enumerate(variables)}  # after its equation, whose operands it reads
        last_use = self._last_use(run, observations, blocks)
        refs = [INPUT, *map(input_ref, range(len(self.inputs) - 1))]
        lines = [f"def program({', '.join(map(input_name, refs))}):"]
        for ref in refs:
            lines += self._finite(ref)
        guard = {id(o): k for k, o in enumerate(observations)}  # a failed check returns its guard's number
        lines += [self._check(o, guard[id(o)]) for o in checks.get(INPUT, ())]
        for i in run:
            eq = self.eqs[i]
            if i in self.placements:
                lines += self._placement(i)
            else:
                indent = "    "
                if i in self.quiet:  # under the errstate settings changed around it when it was recorded
                    self.namespace[f"e{i}"] = self.quiet[i]
                    lines.append(f"{indent}with errstate(**e{i}):")
                    indent += "    "
                lines.append(f"{indent}v{i} = {self._call(i, eq)}  # {eq.phase}{self.notes.get(i, '')}")
                if i in counts:
                    lines.append(self._count(variables[counts[i]], counts[i]))
            lines += self._finite(i)
            lines += [self._check(o, guard[id(o)]) for o in checks.get(i, ())]
            dead = [f"v{j}" for j in last_use.get(i, ())]
            if dead:
                lines.append(f"    del {', '.join(dead)}")
        outputs = [self._operand(value, ref) for value, ref, _ in blocks]
        tally = f", ({''.join(f'n{k}, ' for k in range(len(variables)))})" if variables else ""
        lines.append(f"    return [{', '.join(outputs)}]{tally}")
        self.source = "\n".join(lines) + "\n"
        return self.source

    def _placement(self, i) -> list[str]:
        """Parts copied into zeros (or into an array they fill): (index, value, ref[, "=" / "+=" / "-="])."""
        eq, (shape, parts) = self.eqs[i], self.placements[i]
        note = self.notes.get(i, f": {len(parts)} disjoint parts, placed")
        make = "empty" if i in self.filled else "zeros"
        lines = [f"    v{i} = {make}({shape!r}, {self._constant(eq.dtype)})  # {eq.phase}{note}"]
        for index, value, ref, *how in parts:
            lines.append(f"    v{i}[{self._subscript(index)}] {how[0] if how else '='} {self._operand(value, ref)}")
        return lines

    def _call(self, i, eq) -> str:
        """The right-hand side of equation i: its primitive's implementation called, or indexing written out."""
        args = [self._operand(a, r) for a, r in zip(eq.args, eq.refs)]
        if eq.prim is _GETITEM:  # x[0:1] reads better than getitem(x, **p0), and skips a call
            return f"{args[0]}[{self._subscript(eq.params['index'])}]"
        # reshape and transpose written out as the calls their impls make, without the impl's call and
        # its keyword arguments (a reverse sweep has a few per matmul): the same views
        if eq.prim is _RESHAPE and _literal(eq.params["shape"]):
            return f"asarray({args[0]}).reshape({eq.params['shape']!r})"
        if eq.prim is _TRANSPOSE and _literal(eq.params["axes"]) \
                and (is_input(eq.refs[0]) or eq.refs[0] in self.running):
            return f"{args[0]}.transpose({eq.params['axes']!r})"  # np.transpose(a, axes) calls a.transpose(axes)
        if eq.params:
            self.namespace[f"p{i}"] = eq.params  # arrays in it are the recording's snapshots (`Recorder.kept`)
            args.append(f"**p{i}")
            for value in eq.params.values():  # clip's bounds, a sparse matrix
                if hasattr(value, "nbytes"):
                    self._hold(value)
        if i in self.into:
            placement, index = self.into[i]
            args.append(f"out=v{placement}[{self._subscript(index)}]")
        return f"{self._function(eq.prim)}({', '.join(args)})"

    def _subscript(self, index) -> str:
        """An index as source: basic parts (slices, integers, None, ...) written out, else a constant."""
        parts = index if type(index) is tuple else (index,)  # for an array, a[(i,)] is a[i]
        if not parts:
            return "()"
        if not all(map(_basic, parts)):
            return self._constant(index)
        return ", ".join(map(_index_text, parts))

    def _finite(self, ref) -> list[str]:
        """The check of a value a compacted tangent is multiplied or divided by, if it has one."""
        kind = self.checks.get(ref)
        if kind is None:
            return []
        if is_input(ref):
            name, value = input_name(ref), self.inputs[input_position(ref)]
        else:
            name, value = f"v{ref}", self.eqs[ref]
        test = compaction.condition(name, kind, value.dtype, value.shape, self._constant, self._zeros)
        return [f"    if not {test}:\n        return DENSE"] if test else []

    def _last_use(self, run, observations, blocks) -> dict[int, list]:
        """line -> values no later line reads (outputs stay)."""
        last = {}
        for i in run:
            for r in compaction.reads(self.eqs, self.placements, i):
                if r in self.running:
                    last[r] = i
            last.setdefault(i, i)
        for o in observations:
            for r in o.refs:
                if r in self.running:
                    last[r] = max(last[r], self._computed_by(o))
        for _, r, _ in blocks:
            last.pop(r, None)
        dead: dict[int, list] = {}
        for value, line in last.items():
            dead.setdefault(line, []).append(value)
        return dead

    def _computed_by(self, o) -> int:
        """The line after which observation `o` is checked: that of the last value it reads."""
        return max([r for r in o.refs if r in self.running], default=INPUT)

    def _check(self, o, number: int) -> str:
        call = self._called("observe", o.fn, o.args, o.refs, o.kwargs)
        return f"    if not same({call}, {self._constant(o.result)}):\n        return {number}"

    def _count(self, v, number: int) -> str:
        return f"    n{number} = {self._called('count', v.fn, v.args, v.refs)}"

    def _called(self, prefix: str, fn, args, refs, kwargs=None) -> str:
        """``fn(...)`` of its recorded operands as source, fn under a name of its own beginning with `prefix`."""
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = fn
        operands = [self._operand(a, r) for a, r in zip(args, refs)]
        if kwargs:
            self.namespace[f"{name}_kw"] = kwargs
            operands.append(f"**{name}_kw")
        return f"{name}({', '.join(operands)})"

    def _operand(self, value, ref) -> str:
        if is_input(ref):
            return input_name(ref)
        if ref is not None and ref in self.running:
            return f"v{ref}"
        return self._constant(value)

    def _constant(self, value) -> str:
        if type(value) in (int, bool, type(None)) or (type(value) is float and math.isfinite(value)):
            return repr(value)
        name = self._constants.get(id(value))
        if name is None:
            name = self._constants[id(value)] = f"c{len(self._constants)}"
            self.namespace[name] = value
            self._hold(value)
        return name

    def _hold(self, value) -> None:
        """Count the bytes of a constant the program keeps (a view's array once, a sparse matrix and its
        transpose once)."""
        value = getattr(value, "origin", value)
        while isinstance(getattr(value, "base", None), np.ndarray):
            value = value.base
        nbytes = getattr(value, "nbytes", 0)
        self.memory[id(value)] = nbytes if type(nbytes) is int else 0  # a class (np.float64) holds a descriptor

    def _function(self, prim) -> str:
        name = prim.name
        if not name.isidentifier() or keyword.iskeyword(name) or _INPUT_NAME.fullmatch(name) or name in (
                "x", "same", "program", "zeros", "empty", "asarray", "DENSE", *compaction.NAMES):
            name = f"op_{len(self.namespace)}"
        self.namespace[name] = prim.impl  # registered names are unique
        return name


_INPUT_NAME = re.compile(r"a[0-9]+")  # `input_name`'s names of f's other arguments
_GETITEM, _RESHAPE, _TRANSPOSE = REGISTRY["getitem"], REGISTRY["reshape"], REGISTRY["transpose"]


def _literal(param) -> bool:
    """Whether a shape or an axes parameter is written out as it is: None, an int or a tuple of ints."""
    return param is None or type(param) is int or (type(param) is tuple and all(type(v) is int for v in param))


def _basic(part) -> bool:
    if type(part) is slice:
        return all(v is None or type(v) is int for v in (part.start, part.stop, part.step))
    return part is None or part is Ellipsis or type(part) is int


def _index_text(part) -> str:
    if type(part) is slice:
        text = f"{'' if part.start is None else part.start}:{'' if part.stop is None else part.stop}"
        return text if part.step is None else f"{text}:{part.step}"
    return "..." if part is Ellipsis else repr(part)


def same(a, b) -> bool:
    """Whether a recomputed guard value equals the recorded one exactly (NaN equals NaN, and -0.0 is not
    0.0: copysign and arctan2 of a value f computed tell them apart)."""
    if isinstance(b, tuple):
        return isinstance(a, tuple) and len(a) == len(b) and all(map(same, a, b))
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b, equal_nan=b.dtype.kind in "fc"):
        return False
    return b.dtype.kind != "f" or bool(np.array_equal(np.signbit(a), np.signbit(b)))

