"""Jacobian sparsity patterns, read from a recorded tape.

Entry (i, j) of the pattern of f at x says that output element i depends on
input element j through the operations f ran at x. Every recorded value gets
a dependency matrix, one row per element and one column per input element,
from its operands' matrices and its primitive's `structure`:

* "elementwise": an output element depends on what the same element of each
  operand depends on, after broadcasting;
* "move": on what the one operand element it is a copy of depends on, or on
  nothing (the zeros ``embed`` fills in). Which element that is comes from
  running the primitive itself on arrays of element numbers (with its index
  operand read, for "move_at");
* "reduction": on everything the elements reduced into it depend on;
* "scan": on what the elements up to its own along ``axis`` depend on;
* "along": on what the element of its slice along ``axis`` that the order operand
  names depends on (sort's reordering, at this x); while a compiled sparse Jacobian,
  which sorts again at each x, is recorded, on what its whole slice depends on;
* "scatter": on what the elements added into it (``indices`` naming its
  position along ``axis``; "scatter_at": its index operand, read) depend on;
* "matmul": on a row of the first operand and a column of the second;
* "sparse_matmul": on the elements of x that the stored entries of the scipy.sparse
  matrix's row join to it (``A @ x``, `rules.sparse`);
* anything else: on everything any operand element depends on.

So the pattern holds every entry the Jacobian can have, for any x that runs
the same operations: an entry outside it is a zero of the Jacobian, because
no operation joins that input to that output. It is the pattern the
operations give, not the Jacobian's values: ``x * 0`` keeps its entries.

A dependency matrix is a sorted array of keys ``row * n + column`` (n input
elements), which makes a union one sort and a row selection one gather.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import harness
from .accounting import active_counter
from .harness import prepare
from .memory import MemoryBudgetError, budget, readable
from .primitives import observe
from .staging import Recorder
from .rules.reductions import _kept_shape

if TYPE_CHECKING:  # for the annotations only: see csr_array
    import scipy.sparse

__all__ = ["sparsity"]


def sparsity(f: Callable, x) -> scipy.sparse.csr_array:
    """The Jacobian sparsity pattern of f at x: a boolean (m, n) `scipy.sparse.csr_array`.

    m and n are the sizes of f(x) and x (flattened in C order, trees of arrays
    as in ``jacobian(..., flat=True)``). Entry (i, j) is stored when output
    element i depends on input element j through the operations f runs at x;
    every other entry of the Jacobian is zero there, and wherever x leads f
    through the same operations. f is run once, on the reverse engine's tape.

    >>> import numpy as np, jacobian_lab as jl
    >>> P = jl.sparsity(lambda x: x[1:] - x[:-1], np.ones(4))
    >>> P.toarray().astype(int)
    array([[1, 1, 0, 0],
           [0, 1, 1, 0],
           [0, 0, 1, 1]])
    """
    return recorded_pattern(*recorded(f, x))


#: How a refusal of the tape a pattern is read off ends (`harness.record`).
NO_PATTERN_TAPE = ("A sparsity pattern is read off that tape in either mode: differentiate a smaller function, or "
                   "push seeds of your own coloring with jl.jvp, which keeps none")


def recorded(f: Callable, x):
    """(pullback, m): f's tape at x as the reverse engine records it, and the size of f(x); what
    `recorded_pattern` reads, and `dense` looks at before it does.

    >>> import numpy as np
    >>> pullback, m = recorded(lambda x: x[1:] * x[:-1], np.ones(4))
    >>> m, recorded_pattern(pullback, m).nnz
    (3, 6)
    """
    g, x_flat = prepare(f, x)
    y, pullback = harness.record(g, x_flat, advice=NO_PATTERN_TAPE)
    return pullback, int(np.size(y))


def recorded_pattern(pullback, m: int) -> scipy.sparse.csr_array:
    """The (m, n) pattern of f from the pullback the reverse engine recorded for it."""
    records, output = pullback.tape.records, pullback.output
    n = records[0].out.size
    if output is None:  # f's output does not depend on x
        return _matrix(np.zeros(0, dtype=np.int64), m, n)
    last_use, needed = pullback.tape.last_use(), _reaching(records, output)
    deps = [np.arange(n, dtype=np.int64) * (n + 1)]  # the input: the identity
    for i, record in enumerate(records[1:output + 1], 1):
        if not needed[i]:
            deps.append(None)
            continue
        operands = [None if p is None else deps[p] for p in record.parents]
        deps.append(_RULES.get(record.prim.structure, _dense)(record, operands, n))
        for p in record.parents:  # a matrix read for the last time is let go
            if p is not None and last_use[p] == i and p != output:
                deps[p] = None
    return _matrix(deps[output], m, n)


def _reaching(records, output: int) -> list[bool]:
    """Which of the records up to `output` it is computed from: the others' patterns are not read. A gradient's
    tape holds f's values that its sweep never reads again, such as a sort's, whose pattern while a program is
    recorded is each element on its whole slice: n^2 entries for a vector (32 s at n = 10^4), for nothing."""
    needed = [False] * (output + 1)
    needed[output] = True
    for i in range(output, 0, -1):
        if needed[i]:
            for p in records[i].parents:
                if p is not None:
                    needed[p] = True
    return needed


def dense(pullback) -> bool:
    """Whether the tape's structure alone shows every output element depending on every input element: the
    pattern is then all m x n entries, known without the dependency matrices `recorded_pattern` builds (a
    dense pattern's are as large as the Jacobian). False where the structure does not show it, dense or not.

    Two facts per value suffice: each of its elements depends on every input element ("full"), or its
    elements do together ("covering", as x itself): a matmul with a covering vector, a reduction of a
    covering value to one element, or an operation of no known structure on one, makes full values, and
    full values stay full through every operation that reads an element of each operand.

    >>> import numpy as np, jacobian_lab as jl
    >>> W = np.ones((3, 4))
    >>> dense(recorded(lambda x: np.tanh(W @ x), np.ones(4))[0]), dense(recorded(np.tanh, np.ones(4))[0])
    (True, False)
    """
    records, output = pullback.tape.records, pullback.output
    if output is None:  # f's output does not depend on x
        return False
    facts = [(records[0].out.size == 1, True)]  # x: element j on input j alone, all of them on every input
    for record in records[1:output + 1]:
        facts.append(_spread(record, [None if p is None else facts[p] for p in record.parents]))
    return facts[output][0]


def _spread(record, operands) -> tuple[bool, bool]:
    """(full, covering) of a record's output (`dense`), from its operands' (None: a constant). An empty value
    is neither, so that an element of a full or covering operand is always there to read."""
    traced = [fact for fact in operands if fact is not None]
    if np.size(record.out) == 0 or not traced:
        return False, False
    full, covering = any(fact[0] for fact in traced), any(fact[1] for fact in traced)
    structure = record.prim.structure
    if structure == "elementwise":  # an output element reads an element of each operand, and every one is read
        return full, covering
    if structure in ("reduction", "scan", "along"):  # of the first operand (along's second is the order)
        full, covering = operands[0] or (False, False)
        return full or (covering and structure == "reduction" and np.size(record.out) == 1), covering
    if structure == "matmul":
        return full or _reads_a_whole_operand(record, operands), covering
    if structure is None:  # `_dense`: every element on everything the operands depend on
        return covering, covering
    return False, False  # move, scatter, sparse_matmul: an element may depend on nothing, or one be left out


def _reads_a_whole_operand(record, operands) -> bool:
    """Whether an element of a @ b reads all of a covering operand: b a single column (a vector), or a a
    single row, without batches of them."""
    a, b = record.args
    a2 = np.shape(a) if np.ndim(a) > 1 else (1,) + np.shape(a)  # NumPy's promotion of 1-D operands
    b2 = np.shape(b) if np.ndim(b) > 1 else np.shape(b) + (1,)
    column = operands[1] is not None and operands[1][1] and math.prod(b2[:-2]) == 1 and b2[-1] == 1
    row = operands[0] is not None and operands[0][1] and math.prod(a2[:-2]) == 1 and a2[-2] == 1
    return bool(column or row)


def csr_array(*args, **kwargs) -> scipy.sparse.csr_array:
    """`scipy.sparse.csr_array`, imported on first use: scipy.sparse takes about as long to import as
    the rest of the package, and only sparse Jacobians need it."""
    import scipy.sparse

    return scipy.sparse.csr_array(*args, **kwargs)


def _matrix(keys, m, n) -> scipy.sparse.csr_array:
    rows, cols = np.divmod(keys, max(n, 1))
    indptr = np.searchsorted(rows, np.arange(m + 1))
    return csr_array((np.ones(keys.size, dtype=bool), cols, indptr), shape=(m, n))


def pattern_bytes(entries: int) -> int:
    """The memory building a dependency matrix of `entries` keys takes: about three int64 arrays of its size
    live while one is built."""
    return 24 * entries


def _fits(entries: int) -> None:
    """Refuse a dependency matrix of `entries` keys that would not fit the memory budget (`pattern_bytes`).
    (NumPy's allocation of more than the memory would succeed, and filling it end the process without a word.)"""
    needed, limit = pattern_bytes(entries), budget()
    if needed > limit:
        raise MemoryBudgetError(f"the sparsity pattern of a value f computes holds {entries:,} entries, which take "
                                f"{readable(needed)} to work out, over the memory budget of {readable(limit)}: the "
                                "Jacobian is (nearly) dense there. Take the dense Jacobian (jl.jacobian), or work "
                                "out the pattern at a smaller size")


def _rows(keys, n, size, sources):
    """Rows `sources` of a `size`-row dependency matrix, as a new matrix (a source < 0: an empty row)."""
    indptr = np.searchsorted(keys, np.arange(size + 1, dtype=np.int64) * n)
    sources = np.asarray(sources, dtype=np.int64).ravel()
    taken = np.flatnonzero(sources >= 0)
    starts = indptr[sources[taken]]
    lengths = indptr[sources[taken] + 1] - starts
    _fits(int(lengths.sum()))
    # the positions of each taken row's keys, laid end to end
    positions = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
    return np.repeat(taken, lengths) * n + keys[positions] % n


def _unique(keys):
    """Sorted distinct keys (np.unique hashes, which takes several times longer here)."""
    keys = np.sort(keys)
    distinct = np.empty(keys.size, dtype=bool)
    distinct[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    return keys[distinct]


def _element_numbers(shape):
    return np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)


def _broadcast(keys, n, shape, to):
    """The dependency matrix of an array of `shape` broadcast to the shape `to`."""
    if tuple(shape) == tuple(to):
        return keys
    numbers = _element_numbers(shape)
    return _rows(keys, n, numbers.size, np.broadcast_to(numbers, to))


def _joined(parts):
    """The union of dependency matrices with the same rows."""
    return parts[0] if len(parts) == 1 else _unique(np.concatenate(parts))


# Rules: (record, one dependency matrix per operand (None: a constant), n) -> the output's matrix.
def _elementwise(record, operands, n):
    shape = np.shape(record.out)
    return _joined([_broadcast(d, n, np.shape(a), shape) for a, d in zip(record.args, operands) if d is not None])


def _move(record, operands, n, read=()):
    """Run the primitive on element numbers: 1, 2, ... across the traced operands, 0 for constants; `read`:
    its last operands as they are (an index operand)."""
    numbered, blocks, start = [], [], 1
    for a, d in zip(record.args[:len(record.args) - len(read)], operands):
        if d is None:
            numbered.append(np.zeros(np.shape(a)))
            continue
        numbered.append(np.arange(start, start + np.size(a), dtype=np.float64).reshape(np.shape(a)))
        blocks.append(d + (start - 1) * n)  # its rows, after the earlier operands' rows
        start += np.size(a)
    sources = np.asarray(record.prim.impl(*numbered, *read, **record.params)).ravel()
    if sources.size != np.size(record.out) or not np.array_equal(sources, np.round(sources)):
        return _dense(record, operands, n)  # not a plain copy after all: stay safe
    return _rows(np.concatenate(blocks), n, start - 1, sources.astype(np.int64) - 1)


def _reduction(record, operands, n):
    return _reduced(operands[0], n, np.shape(record.args[0]), record.params["axis"])


def _reduced(keys, n, shape, axis):
    """The dependency matrix of an array of `shape` reduced over `axis` (kept as length-1 axes)."""
    kept = _element_numbers(_kept_shape(shape, axis))
    return _regrouped(keys, n, np.broadcast_to(kept, shape).ravel())


def _scatter(record, operands, n, indices=None):
    """Element q of a scatter-add along `axis`: the operand's elements whose index there is q (`indices`: those
    of scatter_add_at's index operand, read; else the parameter)."""
    indices, axis = record.params["indices"] if indices is None else indices, record.params["axis"]
    targets = np.take(_element_numbers(np.shape(record.out)), indices, axis=axis)  # where each element lands
    return _regrouped(operands[0], n, targets.ravel())


def _move_at(record, operands, n):
    """take_at and put_at: `_move` with their index operand (the last) read through `observe`: a compiled
    sparse Jacobian checks it on each call (its pattern is the index's), where a compiled gradient recomputes it."""
    return _move(record, operands, n, read=(observe(np.array, record.args[-1]),))


def _scatter_at(record, operands, n):
    """scatter_add_at: `_scatter` with its index operand read as `_move_at` reads it."""
    return _scatter(record, operands, n, observe(np.array, record.args[1]))


def _along(record, operands, n):
    """Each element on what the element of its slice along `axis` that the order operand names depends
    on: sort's reordering, at this x. A compiled sparse Jacobian recomputes the order at each x, so
    while one is recorded, each element is taken to depend on its whole slice: the pattern at every x."""
    x, order, axis = record.args[0], record.args[1], record.params["axis"]
    if isinstance(active_counter(), Recorder):
        slices = _element_numbers(_kept_shape(np.shape(x), (axis,)))
        of_each = np.broadcast_to(slices, np.shape(x)).ravel()  # the slice each element is in
        return _rows(_regrouped(operands[0], n, of_each), n, slices.size, of_each)
    order = np.reshape(order, (1,) * (np.ndim(x) - np.ndim(order)) + np.shape(order))  # a seed axis: broadcast
    sources = np.take_along_axis(_element_numbers(np.shape(x)), order, axis=axis)
    return _rows(operands[0], n, np.size(x), sources.ravel())


def _regrouped(keys, n, targets):
    """The matrix whose row t joins every row r of `keys` with targets[r] == t."""
    rows, cols = np.divmod(keys, n)
    return _unique(targets[rows] * n + cols)


def _scan(record, operands, n):
    """Element p along `axis` of a cumulative sum or product: the operand's elements 0 .. p along it."""
    shape, axis = np.shape(record.args[0]), record.params["axis"]
    length, stride = shape[axis], math.prod(shape[axis + 1:])
    rows, cols = np.divmod(operands[0], n)
    position = (rows // stride) % length  # a key's own position along the axis, in the line of elements
    line = rows - position * stride  # along it that starts at this row
    # An input reaches a line's elements from the first position it is found at: that one alone is expanded,
    # or a dense operand (a Hessian's cumulative sweep) would expand n^2 keys into n^3 before merging them.
    group = line * n + cols
    order = np.lexsort((position, group))
    group, position = group[order], position[order]
    first = np.empty(group.size, dtype=bool)
    first[:1] = True
    np.not_equal(group[1:], group[:-1], out=first[1:])
    group, start = group[first], position[first]
    reach = length - start  # the positions from there to the end
    _fits(int(reach.sum()))
    steps = np.arange(reach.sum()) - np.repeat(np.cumsum(reach) - reach, reach)
    line, cols = np.divmod(group, n)
    return np.sort((np.repeat(line + start * stride, reach) + steps * stride) * n + np.repeat(cols, reach))


def _matmul(record, operands, n):
    """Element (..., i, k) of a @ b: row i of a and column k of b, each reduced and broadcast."""
    a, b = record.args
    a2 = np.shape(a) if np.ndim(a) > 1 else (1,) + np.shape(a)  # NumPy's promotion of 1-D operands
    b2 = np.shape(b) if np.ndim(b) > 1 else np.shape(b) + (1,)
    full = np.broadcast_shapes(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])  # the output, promoted axes kept
    return _joined([_broadcast(_reduced(d, n, shape, (axis,)), n, _kept_shape(shape, (axis,)), full)
                    for d, shape, axis in ((operands[0], a2, len(a2) - 1), (operands[1], b2, len(b2) - 2))
                    if d is not None])


def _sparse_matmul(record, operands, n):
    """Element i along `axis` of A @ x (the other axes alike): x's elements j there for A's stored (i, j)."""
    matrix, axis = record.params["matrix"].matrix.tocoo(), record.params["axis"]
    elements = [np.moveaxis(_element_numbers(np.shape(a)), axis, 0) for a in (record.args[0], record.out)]
    sources, targets = (e.reshape(e.shape[0], -1)[at].ravel() for e, at in zip(elements, (matrix.col, matrix.row)))
    return _linked(operands[0], n, sources, targets)


def _linked(keys, n, sources, targets):
    """The matrix whose row t joins every row s of `keys` with a pair (s, t) in (sources, targets)."""
    order = np.argsort(sources, kind="stable")
    sources, targets = sources[order], targets[order]
    rows, cols = np.divmod(keys, n)
    start = np.searchsorted(sources, rows, "left")
    count = np.searchsorted(sources, rows, "right") - start
    _fits(int(count.sum()))
    picks = np.repeat(start - (np.cumsum(count) - count), count) + np.arange(count.sum())
    return _unique(targets[picks] * n + np.repeat(cols, count))


def _dense(record, operands, n):
    """Every output element depends on everything the operands depend on."""
    columns = _unique(np.concatenate([d % n for d in operands if d is not None]))
    _fits(np.size(record.out) * columns.size)
    return (np.arange(np.size(record.out), dtype=np.int64)[:, None] * n + columns).ravel()


_RULES = {"elementwise": _elementwise, "move": _move, "reduction": _reduction, "scan": _scan,
          "scatter": _scatter, "matmul": _matmul, "sparse_matmul": _sparse_matmul, "along": _along,
          "move_at": _move_at, "scatter_at": _scatter_at}
