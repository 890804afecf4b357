"""Compressed Jacobians: one seed per color of the sparsity pattern, entries read back.

Columns j and j' of a Jacobian that share no row can be pushed as one
tangent seed e_j + e_j': each output element then depends on at most one of
them, so the JVP holds both columns' entries, each in its own rows. A
*coloring* gives every column a color such that columns sharing a row differ
(a distance-2 coloring of the column graph); forward mode pushes one seed per
color, and entry (i, j) is row i of color(j)'s tangent. Reverse mode colors
rows the same way and pulls one cotangent seed per color. A banded Jacobian
needs as many colors as its band is wide, whatever its size: bratu's
tridiagonal 1998 x 2000 Jacobian takes 3 passes' worth of seeds instead of
about 2000.

Forward coloring suffers from dense rows (every column of a row needs its
own color) and reverse coloring from dense columns. The bidirectional mode
pulls the densest rows with reverse seeds and colors the columns of the
remaining rows for forward seeds: an arrow-shaped Jacobian (one full row and
one full column) takes 3 seeds this way, where either mode alone takes n.

A Hessian is symmetric, so its entries can also be read from the product
that shows their mirror image: `sparse_hessian` weighs a star coloring of the
columns too (`jacobian_lab.symmetric`), which takes 2 seeds for an
arrow-shaped Hessian.

The pattern comes from `jacobian_lab.sparsity` on the tape that the same
evaluation of f records, so it holds every entry the values can have: an
entry the pattern lacks has no path from input to output, and the compressed
passes compute each entry with the same operations as a one-hot seed would.
"""
from __future__ import annotations

import collections
import heapq
import threading
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

from . import arguments
from .accounting import active_counter
from .jacobian import _NO_X, function_name, one_input_error, wraps
from .harness import batches, check_function, check_options, prepare, record, result_dtype, seeds_per_pass
from .sparsity import NO_PATTERN_TAPE, csr_array, recorded_pattern
from .symmetric import clique, grown, star_coloring, symmetric_reads
from .tracing import Tracer

if TYPE_CHECKING:  # for the annotations only: see sparsity.csr_array
    import scipy.sparse

__all__ = ["MODES", "SYMMETRIC_MODES", "Plan", "SparseJacobian", "best_plan", "color_count", "coloring", "fewer_seeds",
           "fewest_seeds", "least_seeds", "plan", "plans", "sparse_jacobian", "widest"]

#: What `sparse_jacobian` takes: one-sided, both at once, or the plan with the fewest seeds.
MODES = ("forward", "reverse", "bidirectional", "auto")
#: What `sparse_hessian` takes: those and the star coloring of a symmetric matrix.
SYMMETRIC_MODES = ("forward", "reverse", "bidirectional", "star", "auto")

# The plans of the last patterns any sparse Jacobian function read, by (tape signature, mode, symmetric), so that
# jl.sparse_jacobian(f, x), a new function each call, colors a pattern once: up to PLANS_KEPT of them, holding no
# more than PLANS_BYTES of index arrays in all (a larger one is kept by its function alone).
PLANS_KEPT, PLANS_BYTES = 4, 64 << 20
_PLANS: collections.OrderedDict = collections.OrderedDict()
_PLANS_LOCK = threading.Lock()


def coloring(pattern, mode: str = "forward") -> np.ndarray:
    """A color per column (forward) or per row (reverse) of `pattern`; no two of one color share a row (column).

    Greedy: each column in turn takes the smallest color that no column
    sharing a row with it holds, largest first (columns holding the most
    entries first). When that leaves more colors than the widest row has
    entries by more than a twentieth, and more than a set of columns that
    pairwise share a row needs (the least any coloring needs), saturation
    order (DSATUR: next, the column whose neighbours hold the most distinct
    colors) is tried too, then, where that saves no color, incidence degree
    (the column sharing rows with the most columns already colored); the
    coloring with the fewest colors is kept. They find the 5 colors of a
    2-D five-point stencil, with or without its boundary rows, where largest
    first finds 7, and 10 of a 3-D seven-point one on a 10³ grid where it finds 12. (Their cost grows with the
    squares of the rows' sizes, quadratic in n for a full row, so they are not
    run for a saving of a color or two in thousands.) `pattern` is anything
    `scipy.sparse.csr_array` takes (a sparse matrix, a 2-D boolean array).
    A column without entries gets -1: it needs no seed. The number of colors
    is ``colors.max() + 1`` (`color_count`): the seeds a compressed Jacobian
    pushes. ``mode="star"`` colors the columns of a symmetric (n, n) pattern,
    a Hessian's, for reading each entry or its mirror image
    (`jacobian_lab.symmetric.star_coloring`).

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.coloring(np.eye(4, dtype=bool) | np.eye(4, k=1, dtype=bool))  # columns 1-3 hold two entries
    array([1, 0, 1, 0])
    """
    if mode not in ("forward", "reverse", "star"):
        raise ValueError(f"mode must be 'forward' (color columns), 'reverse' (color rows) or 'star' (the columns "
                         f"of a symmetric pattern), got {mode!r}")
    if mode == "star":
        _check_symmetric(pattern)
        return star_coloring(pattern)
    if np.ndim(pattern) != 2:  # np.ndim reads a sparse array's too
        raise ValueError(f"pattern must be a 2-D (m, n) matrix, sparse or a boolean array; got shape "
                         f"{np.shape(pattern)}")
    pattern = csr_array(pattern, dtype=bool, copy=True)  # a view of the caller's indices would lose them below
    if mode == "reverse":
        pattern = pattern.T.tocsr()
    pattern.eliminate_zeros()
    m, n = pattern.shape
    sizes = np.diff(pattern.indptr)
    widest = sizes.max(initial=0)  # the least number of colors any coloring needs: its columns share a row
    if widest == 0:  # no entries (the rows left to forward seeds after bidirectional pulls them all): no seed
        return np.full(n, -1, dtype=np.int64)
    if m and widest == n:  # a full row: every column needs its own color
        return np.arange(n, dtype=np.int64)
    by_column = pattern.tocsc()
    lists = (by_column.indptr.tolist(), by_column.indices.tolist(), pattern.indptr.tolist(), pattern.indices.tolist())
    col_ptr = lists[0]
    largest_first = sorted(range(n), key=lambda j: col_ptr[j] - col_ptr[j + 1])  # stable: ties in column order
    colors = _greedy(largest_first, lists, m)
    if colors.max(initial=-1) + 1 > widest * 1.05 and colors.max() + 1 > len(_clique(lists, sizes.argmax())):
        saturation = _saturation_coloring(lists, n)
        if saturation.max(initial=-1) < colors.max(initial=-1):
            colors = saturation
        else:  # no better: incidence order, as costly again
            colors = min(colors, _greedy(_incidence_order(lists, n), lists, m), key=lambda c: c.max(initial=-1))
    colors[np.diff(by_column.indptr) == 0] = -1  # a column without entries needs no seed
    return colors


def _clique(lists, row) -> set:
    """Columns that pairwise share a row, grown from the columns of `row`: each needs a color of its own,
    so they bound the colors any coloring needs, above the widest row's where no row holds them all
    (the 100 columns of a 10x10 block of ``B @ B``, whose rows hold 19). A column joins while one shares
    a row with every column in the set. It computes the neighbours of no more columns than saturation
    order does, which it spares where greedy's colors meet the bound."""
    col_ptr, col_rows, row_ptr, row_cols = lists

    def neighbours(j):
        return {k for r in col_rows[col_ptr[j]:col_ptr[j + 1]] for k in row_cols[row_ptr[r]:row_ptr[r + 1]]}

    members = set(row_cols[row_ptr[row]:row_ptr[row + 1]])
    return grown(members, set.intersection(*map(neighbours, members)) - members, neighbours)


def _check_symmetric(pattern) -> None:
    """Refuse a pattern for a star coloring, which reads an entry or its mirror image, unless it is symmetric
    or one triangle of a symmetric matrix (a Hessian stored as tril(H)): colored as P | P.T, a pattern with
    unmatched entries on both sides is no Hessian's, and used on it, columns of one color share a row."""
    if np.ndim(pattern) == 2 and np.shape(pattern)[0] == np.shape(pattern)[1]:
        P = csr_array(pattern, dtype=bool, copy=True)  # eliminate_zeros would change the caller's indices
        P.eliminate_zeros()
        unmatched = (P > P.T).tocoo()  # entries whose mirror image is not one
        above = unmatched.row < unmatched.col
        if above.any() and not above.all():
            i, j = int(unmatched.row[0]), int(unmatched.col[0])
            raise ValueError(f"mode='star' colors a symmetric pattern (a Hessian's, or one triangle of it), "
                             f"reading each entry or its mirror image; this one holds ({i}, {j}) but not ({j}, {i}), "
                             "on both sides of the diagonal. Color its columns with mode='forward'")


def _greedy(order, lists, m) -> np.ndarray:
    """Distance-2 greedy coloring in `order`, the colors of each row kept as bits: bit c of used[r]."""
    col_ptr, col_rows = lists[0], lists[1]
    used, colors = [0] * m, [0] * len(order)
    for j in order:
        rows = col_rows[col_ptr[j]:col_ptr[j + 1]]
        taken = 0
        for r in rows:
            taken |= used[r]
        color = (~taken & (taken + 1)).bit_length() - 1  # the lowest bit not taken
        for r in rows:
            used[r] |= 1 << color
        colors[j] = color
    return np.array(colors, dtype=np.int64)


def _saturation_coloring(lists, n) -> np.ndarray:
    """Greedy coloring in saturation order (DSATUR, Brélaz 1979): next, the column whose neighbours (the
    columns sharing a row with it) already hold the most distinct colors; of those, the one with the most
    entries, then the lowest-numbered. Kept in heaps per saturation, as `_incidence_order` keeps its levels,
    of plain numbers: a column's rank by entries and number, fewest entries last."""
    col_ptr, col_rows, row_ptr, row_cols = lists
    entries = [col_ptr[j + 1] - col_ptr[j] for j in range(n)]
    most = max(entries, default=0)
    rank = [(most - entries[j]) * n + j for j in range(n)]  # heap order: most entries, then lowest number
    seen, saturation, colors = [0] * n, [0] * n, [-1] * n  # seen[k]: the colors k's neighbours hold, as bits
    levels, top = [sorted(rank)], 0
    while top >= 0:
        level = levels[top]
        if not level:
            top -= 1
            continue
        j = heapq.heappop(level) % n
        if colors[j] >= 0 or saturation[j] != top:  # colored, or an entry it left when it moved up
            continue
        taken = seen[j]
        color = colors[j] = (~taken & (taken + 1)).bit_length() - 1
        bit = 1 << color
        for k in {k for r in col_rows[col_ptr[j]:col_ptr[j + 1]] for k in row_cols[row_ptr[r]:row_ptr[r + 1]]}:
            if colors[k] < 0 and not seen[k] & bit:
                seen[k] |= bit
                s = saturation[k] = saturation[k] + 1
                if s == len(levels):
                    levels.append([])
                heapq.heappush(levels[s], rank[k])
                if s > top:
                    top = s
    return np.array(colors, dtype=np.int64)


def _incidence_order(lists, n) -> list[int]:
    """Columns in incidence-degree order: next, the one sharing rows with the most columns ordered so
    far; of those, the lowest-numbered.

    levels[d] is a heap of the columns whose incidence reached d: a column moves up by being pushed
    one level higher, and the entry it leaves below is skipped when popped. Heaps of plain column
    numbers, one per level, pop about three times faster than one heap of (-incidence, column) pairs.
    """
    col_ptr, col_rows, row_ptr, row_cols = lists
    incidence, done, order = [0] * n, [False] * n, []
    levels, top = [list(range(n))], 0
    while top >= 0:
        level = levels[top]
        if not level:
            top -= 1
            continue
        j = heapq.heappop(level)
        if done[j] or incidence[j] != top:
            continue
        done[j] = True
        order.append(j)
        for k in {k for r in col_rows[col_ptr[j]:col_ptr[j + 1]] for k in row_cols[row_ptr[r]:row_ptr[r + 1]]}:
            if not done[k]:
                d = incidence[k] = incidence[k] + 1
                if d == len(levels):
                    levels.append([])
                heapq.heappush(levels[d], k)
                top = max(top, d)
    return order


def sparse_jacobian(f: Callable, x=_NO_X, mode: str = "auto", batch_size=None, *, argnums=0):
    """The Jacobian of f at x as a `scipy.sparse.csr_array` of shape (m, n), from compressed seeds.

    m and n are the sizes of f(x) and x, flattened as by
    ``jacobian(..., flat=True)``. f is recorded once; its pattern
    (`jacobian_lab.sparsity`) is colored (`coloring`), and one seed per color
    gives every stored entry. mode: "forward" (colored columns, JVPs),
    "reverse" (colored rows, VJPs), "bidirectional" (the densest rows by VJPs,
    the columns of the others colored for JVPs) or "auto" (the fewest seeds;
    ties go forward, which stages no residuals, then reverse). The callable
    reports its last choice in `chosen` and `seeds`. batch_size: colors per pass, None = as many
    as keep a pass's derivative arrays about cache-sized. The stored values
    are those of ``jacobian(f, x)`` at the pattern's entries; without x, the
    sparse Jacobian as a function of x, which keeps the coloring of the
    pattern it last saw. argnums, for the function form, as for `jacrev`:
    ``sparse_jacobian(rhs, argnums=1)(t, y)`` is the Jacobian in y, f's other
    arguments passed to it as they are; with a tuple of argnums, x is their
    tuple, flattened as one (each argument's columns in turn), not a tuple of
    matrices as jacrev's.

    >>> import numpy as np, jacobian_lab as jl
    >>> J = jl.sparse_jacobian(lambda x: x[1:] * x[:-1], np.arange(1.0, 6.0))
    >>> J.nnz, J.toarray()[0]
    (8, array([2., 1., 0., 0., 0.]))
    >>> jl.sparse_jacobian(lambda t, y: t * y ** 2, argnums=1)(3.0, np.ones(2)).toarray()
    array([[6., 0.],
           [0., 6.]])
    """
    jac = SparseJacobian(f, mode, batch_size, argnums=argnums)
    return jac if x is _NO_X else jac(x)


def holding(pattern, values) -> scipy.sparse.csr_array:
    """The matrix of `pattern` with `values` as its entries, on index arrays of its own: a caller may
    change its structure in place (``S.eliminate_zeros()``), and the pattern serves later calls."""
    return csr_array((values, pattern.indices.copy(), pattern.indptr.copy()), shape=pattern.shape)


class SparseJacobian:
    """The sparse Jacobian of f as a function of x: what `sparse_jacobian` returns without x.

    symmetric=True declares the Jacobian symmetric (f a gradient: `sparse_hessian` builds it so), which
    allows mode="star", a star coloring that reads each entry at (i, j) or at its mirror image (j, i).

    >>> import numpy as np, jacobian_lab as jl
    >>> jl.sparse_jacobian(np.sin)
    sparse_jacobian(sin, mode='auto')
    """

    def __init__(self, f: Callable, mode: str = "auto", batch_size=None, *, symmetric: bool = False, argnums=0):
        check_function(f)
        check_options(mode, batch_size, SYMMETRIC_MODES if symmetric else MODES,
                      "sparse_hessian" if symmetric else "sparse_jacobian", argnums=not symmetric)
        self.f, self.mode, self.batch_size, self.argnums = f, mode, batch_size, arguments.check(argnums, False)
        self.has_aux = False  # (`arguments.call` reads it)
        self.symmetric = symmetric  # a Hessian: star colorings read entries from their mirror images too
        wraps(self, f)
        # (tape signature, pattern, (mode, plan), its where_read) of the last pattern: one tuple, replaced
        # whole, so that calls from several threads never pair one pattern with another's signature or plan
        self._last = None
        # the last call's mode, its coloring (forward: of the columns, reverse: of the rows,
        # bidirectional: of the columns, for the rows not pulled) and its number of seeds
        self.chosen, self.colors, self.seeds = None, None, 0

    def __call__(self, *args, **kwargs) -> scipy.sparse.csr_array:
        """The sparse Jacobian at f's arguments, in the ones `argnums` names (a Hessian's gradient takes x alone).

        >>> import numpy as np, jacobian_lab as jl
        >>> jl.sparse_jacobian(lambda u: u[1:] * u[:-1])(np.arange(1.0, 4.0)).toarray()
        array([[2., 1., 0.],
               [0., 3., 2.]])
        """
        if self.symmetric and (len(args) != 1 or kwargs):  # a Hessian's gradient takes one x
            raise one_input_error(self)
        return arguments.call(self, args, kwargs, self._of)  # f's other arguments passed as jacrev passes them

    def _of(self, f: Callable, x) -> scipy.sparse.csr_array:
        g, x_flat = prepare(f, x)
        y, pullback = record(g, x_flat, advice=NO_PATTERN_TAPE)
        pattern, (mode, seeding), reads = self.planned(pullback, np.size(y))
        self.chosen, self.seeds = mode, seeding.seeds
        self.colors = (seeding.rows if mode == "reverse" else seeding.columns).copy()  # the plan's stays as it is
        values = entries(pullback, pattern, seeding, np.shape(y), x_flat, self.batch_size, reads)
        return holding(pattern, values)

    def planned(self, pullback, m: int) -> tuple:
        """f's pattern on this tape, (mode, plan) for it and where its entries are read (`where_read`);
        the last ones while the tape's signature stays.

        Equal signatures mean the same primitives, parameters, traced operands
        and shapes (`Tape.signature`): everything a pattern is read from. A
        pattern read again and found equal keeps its plan. While a program is
        recorded the pattern is read again: the values it reads (the index of a
        gather by labels) are then the program's checks.
        """
        try:
            key = pullback.tape.signature(pullback.output, pattern=True)
            hash(key)
        except TypeError:  # a parameter that is not hashable: read the pattern again
            key = None
        last, kept = self._last, (key, self.mode, self.symmetric)
        if last is None or last[0] != key:
            last = _kept_plan(kept) or last
        if last is not None and key is not None and last[0] == key and not getattr(active_counter(), "records", False):
            self._last = last
            return last[1:]
        pattern = recorded_pattern(pullback, m)
        if last is not None and _same_pattern(pattern, last[1]):
            planned, reads = last[2:]
        else:
            auto = self.mode == "auto"
            planned = best_plan(pattern, self.symmetric) if auto else (self.mode, plan(pattern, self.mode))
            reads = where_read(pattern, planned[1])
        self._last = (key, pattern, planned, reads)
        _keep_plan(kept, self._last)
        return pattern, planned, reads

    def __repr__(self) -> str:
        return f"sparse_jacobian({function_name(self.f)}, mode={self.mode!r}{arguments.described(self.argnums, False)})"


def _kept_plan(key):
    """The (signature, pattern, (mode, plan), reads) another sparse Jacobian function kept for `key`, or None."""
    if key[0] is None:
        return None
    with _PLANS_LOCK:
        kept = _PLANS.get(key)
        if kept is not None:
            _PLANS.move_to_end(key)
        return kept


def _keep_plan(key, last) -> None:
    """Keep `last` for `key` among the plans any sparse Jacobian function finds (`_PLANS`)."""
    nbytes = _plan_bytes(last)
    if key[0] is None or nbytes > PLANS_BYTES:
        return
    with _PLANS_LOCK:
        _PLANS[key] = last
        _PLANS.move_to_end(key)
        while len(_PLANS) > PLANS_KEPT or sum(map(_plan_bytes, _PLANS.values())) > PLANS_BYTES:
            _PLANS.popitem(last=False)


def _plan_bytes(last) -> int:
    _, pattern, (_, seeding), reads = last
    arrays = [pattern.indptr, pattern.indices, seeding.columns, seeding.rows, *(a for r in reads.values() for a in r)]
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


def _same_pattern(a, b) -> bool:
    return (b is not None and a.shape == b.shape and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices))


def color_count(colors) -> int:
    """The number of colors of a coloring (-1, no color, not counted): the seeds a compressed Jacobian pushes.

    >>> color_count(np.array([1, 0, -1, 2, 0]))
    3
    """
    return int(colors.max(initial=-1)) + 1


class Plan(NamedTuple):
    """The seeds of a compressed Jacobian: `columns`, a color per column for forward seeds, and `rows`, a
    color per row for reverse seeds (None: no such seeds; -1: no seed, the row is read from the
    forward ones or has no entry). `symmetric`: `columns` is a star coloring of a symmetric matrix,
    whose entries are read where they or their mirror images stand alone (`symmetric_reads`)."""

    columns: np.ndarray | None
    rows: np.ndarray | None
    symmetric: bool = False

    @property
    def seeds(self) -> int:
        return sum(color_count(colors) for colors in (self.columns, self.rows) if colors is not None)


def plan(pattern, mode: str) -> Plan:
    """The seeds `sparse_jacobian` runs for `pattern` in `mode` ("forward", "reverse" or "bidirectional";
    "star" for a symmetric pattern, as `sparse_hessian` takes it).

    >>> import numpy as np
    >>> arrow = np.eye(4, dtype=bool); arrow[0] = arrow[:, 0] = True
    >>> [plan(arrow, mode).seeds for mode in ("forward", "reverse", "bidirectional")]
    [4, 4, 3]
    """
    if mode == "forward":
        return Plan(coloring(pattern, "forward"), None)
    if mode == "reverse":
        return Plan(None, coloring(pattern, "reverse"))
    if mode == "star":
        return Plan(star_coloring(pattern), None, symmetric=True)
    return _bidirectional(csr_array(pattern, dtype=bool))


def plans(pattern) -> dict[str, Plan]:
    """The plan of every mode for `pattern`, in the order "auto" prefers them on a tie.

    >>> import numpy as np
    >>> arrow = np.eye(4, dtype=bool); arrow[0] = arrow[:, 0] = True
    >>> {mode: p.seeds for mode, p in plans(arrow).items()}
    {'forward': 4, 'reverse': 4, 'bidirectional': 3}
    """
    return {mode: plan(pattern, mode) for mode in ("forward", "reverse", "bidirectional")}


def fewest_seeds(plans: dict) -> str:
    """The mode whose plan needs the fewest seeds: what mode="auto" runs (ties: the earlier mode).

    >>> import numpy as np
    >>> fewest_seeds(plans(np.eye(3, dtype=bool)))  # one seed each way: the tie goes forward
    'forward'
    """
    return min(plans, key=lambda mode: plans[mode].seeds)


def best_plan(pattern, symmetric: bool = False) -> tuple[str, Plan]:
    """The mode with the fewest seeds and its plan, as mode="auto" picks it (ties: forward, then reverse).

    A mode is colored only when its lower bound (`least_seeds`) is below the
    seeds of the best plan so far: it could not win otherwise, and coloring a
    large pattern is most of a first call. A `symmetric` pattern (a Hessian's)
    weighs the star coloring last: on a tie, the other plans read every entry
    where the dense Hessian computes it.

    >>> import numpy as np
    >>> mode, seeding = best_plan(np.eye(3, dtype=bool))
    >>> mode, seeding.seeds
    ('forward', 1)
    """
    pattern = csr_array(pattern, dtype=bool)
    best = None
    for mode in ("forward", "reverse", "bidirectional") + (("star",) if symmetric else ()):
        if best is None or least_seeds(pattern, mode) < best[1].seeds:
            candidate = plan(pattern, mode)
            if best is None or candidate.seeds < best[1].seeds:
                best = mode, candidate
    return best


def dense_plan(m: int, n: int) -> Plan:
    """`best_plan` of a dense m x n pattern, known without coloring it: one-hot seeds in the cheaper order
    (forward on a tie, as `best_plan` breaks ties).

    >>> import numpy as np
    >>> dense_plan(2, 3).rows, best_plan(np.ones((2, 3), dtype=bool))[1].rows, dense_plan(3, 3).columns
    (array([0, 1]), array([0, 1]), array([0, 1, 2]))
    """
    return Plan(np.arange(n), None) if n <= m else Plan(None, np.arange(m))


def fewer_seeds(pattern) -> tuple[str, Plan] | None:
    """`best_plan(pattern)` when it needs fewer seeds than either dense order's one-hot seeds
    (min(m, n)), else None: compression would not shrink the Jacobian's passes.

    >>> import numpy as np
    >>> fewer_seeds(np.eye(4, dtype=bool))[1].seeds, fewer_seeds(np.ones((4, 4), dtype=bool))
    (1, None)
    """
    pattern = csr_array(pattern, dtype=bool)
    mode, seeding = best_plan(pattern)
    return (mode, seeding) if seeding.seeds < min(pattern.shape) else None


def widest(pattern) -> tuple[int, int]:
    """(the entries of the fullest row, of the fullest column) of `pattern`, a csr_array.

    >>> import numpy as np
    >>> widest(csr_array(np.eye(3, 4, dtype=bool) | np.eye(3, 4, k=1, dtype=bool)))
    (2, 2)
    """
    rows = np.diff(pattern.indptr).max(initial=0)
    columns = np.bincount(pattern.indices, minlength=pattern.shape[1]).max(initial=0)
    return int(rows), int(columns)


def least_seeds(pattern, mode: str) -> int:
    """A lower bound of the seeds `plan(pattern, mode)` needs, read from row and column sizes (a star
    coloring's, from the columns that are pairwise adjacent: `symmetric.clique`).

    A row's columns need distinct forward colors and a column's rows distinct
    reverse colors; the bidirectional plan pulls the densest rows (one
    cotangent, when they have entries; none where that saves nothing) and colors
    the columns of the rest; a
    star coloring needs a color for each of a set of pairwise adjacent columns,
    and one for a diagonal.

    >>> import numpy as np
    >>> arrow = np.eye(4, dtype=bool); arrow[0] = arrow[:, 0] = True
    >>> [least_seeds(arrow, mode) for mode in ("forward", "reverse", "bidirectional")]
    [4, 4, 3]
    """
    pattern = csr_array(pattern, dtype=bool)
    if mode == "star":
        return max(clique(pattern), int(pattern.nnz > 0))
    if mode != "bidirectional":
        return widest(pattern)[mode == "reverse"]
    sizes = np.diff(pattern.indptr)
    pulled, left = _pulled_rows(sizes)
    return int(sizes[pulled].max(initial=0) > 0) + left  # a pulled row with entries takes a cotangent


def _bidirectional(pattern) -> Plan:
    """Reverse seeds for the densest rows, forward colors for the columns of the others.

    Pulling the t densest rows leaves at least as many forward colors as the
    densest remaining row has entries, so t is the one that makes t plus that
    row's entries smallest; rows of equal size are taken in their order. That
    t minimizes a lower bound: where the colorings it leads to need more seeds
    than forward's colors alone, no row is pulled (the plan is forward's).
    """
    pulled, _ = _pulled_rows(np.diff(pattern.indptr))
    rows = np.full(pattern.shape[0], -1, dtype=np.int64)
    forward = Plan(coloring(pattern, "forward"), rows)
    if not pulled.any():
        return forward
    rows = rows.copy()
    rows[pulled] = coloring(pattern[pulled], "reverse")
    mixed = Plan(coloring(pattern[~pulled], "forward"), rows)
    return mixed if mixed.seeds < forward.seeds else forward


def _pulled_rows(sizes) -> tuple[np.ndarray, int]:
    """(the rows the bidirectional plan pulls, as a mask; the largest row it leaves to forward seeds)."""
    m = sizes.size
    order = np.argsort(-sizes, kind="stable")
    left = np.append(sizes[order], 0)  # the largest row left after pulling 0, 1, ..., m rows
    pulled = np.zeros(m, dtype=bool)
    t = int(np.argmin(np.arange(m + 1) + left))  # 0: no row is worth a cotangent, the plan is forward's
    pulled[order[:t]] = True
    return pulled, int(left[t])


def _color_seeds(colors, lo, hi, shape, dtype):
    """Seeds for colors lo..hi-1: seed c is 1 at every element of color c, as (hi - lo, *shape)."""
    return (colors == np.arange(lo, hi)[:, None]).astype(dtype).reshape((hi - lo,) + tuple(shape))


def entries(pullback, pattern, seeding: Plan, y_shape, x, batch_size, reads=None) -> np.ndarray:
    """The pattern's entries, in its order: rows with a row color from the cotangent of their color,
    the others from the tangent of their column's color. `reads`: `where_read` of the plan, when known."""
    dtype = result_dtype(x)
    values = np.empty(pattern.nnz, dtype=dtype)
    reads = where_read(pattern, seeding) if reads is None else reads
    if "forward" in reads:
        mine, colors, flat = reads["forward"]
        # tangent seeds in the Jacobian's dtype, as the dense forward passes push them
        values[mine] = _read(lambda seeds: pullback.push(seeds)[1], seeding.columns, colors, flat, x.shape, x.size,
                             dtype, batch_size)
    if "reverse" in reads:
        mine, colors, flat = reads["reverse"]
        values[mine] = _read(pullback, seeding.rows, colors, flat, y_shape, getattr(pullback, "widest", x.size),
                             dtype, batch_size)
    return values


def where_read(pattern, seeding: Plan) -> dict:
    """Where each entry of `pattern` is read, per order that seeds it: ``{order: (its entries, as indices;
    each one's color; its element in the derivatives of the colors laid end to end)}``, by color. Entry
    (i, j) is element i of the tangent of color(j), or, in a row pulled by a cotangent, element j of the
    cotangent of color(i); in a symmetric plan, element i of the tangent of color(j) or element j of the
    tangent of color(i). A tangent has m elements, a cotangent n."""
    m, n = pattern.shape
    if seeding.symmetric:
        return {"forward": _by_color(np.arange(pattern.nnz), *symmetric_reads(pattern, seeding.columns), m)}
    rows, cols = np.repeat(np.arange(m), np.diff(pattern.indptr)), pattern.indices
    pulled = np.zeros(pattern.nnz, dtype=bool) if seeding.rows is None else seeding.rows[rows] >= 0
    reads = {}
    if seeding.columns is not None:
        mine = np.flatnonzero(~pulled)
        reads["forward"] = _by_color(mine, seeding.columns[cols[mine]], rows[mine], m)
    if seeding.rows is not None:
        mine = np.flatnonzero(pulled)
        reads["reverse"] = _by_color(mine, seeding.rows[rows[mine]], cols[mine], n)
    return reads


def _by_color(mine, colors, place, width: int) -> tuple:
    """`where_read`'s entries ordered by color, each with its element in the derivatives of the colors laid end to
    end (`width` elements each): a pass over a range of colors reads a run of them, with no mask over them all."""
    order = np.argsort(colors, kind="stable")
    colors = colors[order]
    return mine[order], colors, colors * width + place[order]


def _plain(block):
    """A pass's derivative block, refused when it is traced: a scipy.sparse matrix holds plain numbers."""
    if isinstance(block, Tracer):
        raise NotImplementedError(
            "sparse_jacobian inside another derivative, of an f that closes over its traced input: the "
            "entries would be traced values, which a scipy.sparse matrix cannot hold. Use jl.jacobian there "
            "(dense), or jl.hessian for second derivatives")
    return block


def _read(run, colors, entry_colors, flat, shape, width, dtype, batch_size) -> np.ndarray:
    """Entry e, of color entry_colors[e] (in order), is element flat[e] of the derivatives of the colors laid end
    to end; one seed per color through `run`, in passes of `batch_size` colors. No entry: no pass."""
    if not entry_colors.size:
        return np.empty(0, dtype=dtype)
    count = color_count(colors)
    step = seeds_per_pass(count, width, batch_size)
    values = np.empty(entry_colors.size, dtype=dtype)
    for lo, hi in batches(count, step):
        block = _plain(run(_color_seeds(colors, lo, hi, shape, dtype))).reshape(-1)
        a, b = np.searchsorted(entry_colors, (lo, hi))  # this pass's entries: a run, as they are by color
        values[a:b] = block[flat[a:b] - lo * (block.size // (hi - lo))]
    return values
