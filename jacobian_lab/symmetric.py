"""Star coloring: compressed Hessians that use the symmetry.

A column coloring (`jacobian_lab.compressed.coloring`) keeps apart every two
columns that share a row, because entry (i, j) must be read in row i of the
product with its color's seed. A Hessian is symmetric, so entry (i, j) can
also be read where the product shows entry (j, i): in row j of the product
with i's color. A *star coloring* makes one of the two places always hold
that entry alone. It is a coloring of the adjacency graph (columns i and j
adjacent when entry (i, j) is in the pattern) in which adjacent columns
differ and every path through four columns uses at least three colors;
then, of two adjacent columns, one is the only neighbour of its color that
the other has. An arrow-shaped Hessian (a full first row and column) takes
2 colors where a column coloring takes n.

Reference: A. H. Gebremedhin, F. Manne and A. Pothen, "What color is your
Jacobian? Graph coloring for computing derivatives", SIAM Review 47 (2005).
"""
from __future__ import annotations

import numpy as np

from .sparsity import csr_array

__all__ = ["clique", "grown", "star_coloring", "symmetric_reads"]


def star_coloring(pattern) -> np.ndarray:
    """A color per column of a square `pattern`, a star coloring of ``pattern | pattern.T``.

    Greedy: a column takes the smallest color that no neighbour holds and
    that closes no path of four columns in two colors. Two orders are tried
    and the coloring with fewer colors kept: the columns with the most
    neighbours first, which suits meshes and bands, and with the fewest
    first, which gives k variables coupled to all others (but not to each
    other) k + 1 colors, where the first order gives most columns their own.
    A column without entries off the diagonal takes color 0 when it has a
    diagonal entry, else -1 (no seed). `pattern` is anything
    `scipy.sparse.csr_array` takes.

    >>> import numpy as np
    >>> arrow = np.eye(5, dtype=bool); arrow[0] = arrow[:, 0] = True
    >>> star_coloring(arrow)
    array([0, 1, 1, 1, 1])
    """
    pattern = _square(pattern)
    adjacent, ptr = _adjacent(pattern)
    n = pattern.shape[0]
    most_first = _greedy_star(sorted(range(n), key=lambda v: -len(adjacent[v])), adjacent)
    fewest_first = _greedy_star(sorted(range(n), key=lambda v: len(adjacent[v])), adjacent)
    colors = min(most_first, fewest_first, key=lambda c: c.max(initial=-1))
    has_entries = (np.diff(ptr) > 0) | (pattern.diagonal() != 0)
    colors[~has_entries] = -1
    return colors


def clique(pattern) -> int:
    """How many columns of a square `pattern` are pairwise adjacent (entry (i, j) or (j, i) in it, i != j), in a
    set grown from a column with the most neighbours: a star coloring is a coloring of that graph, so it needs a
    color for each. A dense Hessian's columns all are, where a bound from the entries alone says 2.

    >>> import numpy as np
    >>> clique(np.ones((4, 4), dtype=bool)), clique(np.eye(4, dtype=bool) | np.eye(4, k=1, dtype=bool))
    (4, 2)
    """
    adjacent, ptr = _adjacent(_square(pattern))
    if not adjacent or ptr[-1] == 0:
        return 0
    start = max(range(len(adjacent)), key=lambda v: len(adjacent[v]))
    return len(grown({start}, set(adjacent[start]), lambda v: set(adjacent[v])))


def grown(members: set, joining: set, neighbours) -> set:
    """`members`, a set of pairwise adjacent vertices, with vertices of `joining` (each adjacent to all of
    them) added while one is adjacent to every vertex in the set: greedily, a larger such set.

    >>> adjacent = {0: {1, 2, 3}, 1: {0, 2}, 2: {0, 1}, 3: {0}}  # a triangle 0, 1, 2 and an edge 0-3
    >>> grown({0}, set(adjacent[0]), adjacent.__getitem__)
    {0, 1, 2}
    """
    while joining:
        j = joining.pop()
        joining &= neighbours(j)
        members.add(j)
    return members


def _adjacent(pattern) -> tuple[list[list[int]], list[int]]:
    """(each column's neighbours in ``pattern | pattern.T``, the pointers to them in one flat list)."""
    rows, cols = _edges(pattern)
    n = pattern.shape[0]
    by_row = np.argsort(rows, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).tolist()
    idx = cols[by_row].tolist()
    return [idx[ptr[v]:ptr[v + 1]] for v in range(n)], ptr


def _square(pattern):
    if np.ndim(pattern) != 2 or np.shape(pattern)[0] != np.shape(pattern)[1]:
        raise ValueError(f"a star coloring needs a square (n, n) pattern, as a Hessian's; got shape "
                         f"{np.shape(pattern)}")
    pattern = csr_array(pattern, dtype=bool, copy=True)  # a view of the caller's indices would lose them below
    pattern.eliminate_zeros()
    return pattern


def _edges(pattern) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the off-diagonal entries of ``pattern | pattern.T``: both ways of each edge."""
    both = (pattern + pattern.T).tocoo()
    off = both.row != both.col
    return both.row[off].astype(np.int64), both.col[off].astype(np.int64)


def _greedy_star(order, adjacent) -> np.ndarray:
    """Star coloring in `order`; colors as bits of Python ints.

    When v is colored, a path of four colored vertices in two colors can only
    close through v, as an end (v-w-x-y: x has v's color and a second
    neighbour y of w's color) or inside (a-v-b-y: a and b share a color and y
    has v's). So v may not take: a neighbour's color; ``star[w]`` of a colored
    neighbour w (the colors of w's neighbours x that have two neighbours of
    w's color); ``around[b]`` of a neighbour b whose color another neighbour
    of v shares (the colors around b).
    """
    n = len(adjacent)
    colors = [-1] * n
    around = [0] * n  # bits: the colors of each vertex's colored neighbours
    star = [0] * n  # bits, for a colored w: see above
    count = [{} for _ in range(n)]  # count[u][c]: u's colored neighbours of color c
    for v in order:
        mine, taken = count[v], 0
        for w in adjacent[v]:
            cw = colors[w]
            if cw >= 0:
                taken |= (1 << cw) | star[w]
                if mine[cw] >= 2:
                    taken |= around[w]
        c = (~taken & (taken + 1)).bit_length() - 1  # the lowest bit not taken
        colors[v], bit = c, 1 << c
        for u in adjacent[v]:
            around[u] |= bit
            k = count[u][c] = count[u].get(c, 0) + 1
            cu = colors[u]
            if cu < 0 or k < 2:
                continue
            # u has two neighbours of color c or more: u's color is now in star[] of each of them
            for w in (adjacent[u] if k == 2 else (v,)):
                if colors[w] == c:
                    star[w] |= 1 << cu
        for u in adjacent[v]:  # and v's color is in star[] of its neighbours whose color it has twice around
            cu = colors[u]
            if cu >= 0 and mine.get(cu, 0) >= 2:
                star[u] |= bit
    return np.array(colors, dtype=np.int64)


def symmetric_reads(pattern, colors) -> tuple[np.ndarray, np.ndarray]:
    """(each entry's color, its row in that color's product) for the entries of `pattern`, in its order.

    Entry (i, j) is read in row i of the product with j's color when j is the
    only neighbour of that color i has, else in row j of the product with i's
    color (there it is entry (j, i)); a diagonal entry in its own row and color.
    Every stored entry of `pattern` counts, whatever its value. `colors` must be
    a star coloring of that structure (`star_coloring` of it): one that would
    read an entry mixed with another is refused.

    >>> import numpy as np
    >>> arrow = np.eye(3, dtype=bool); arrow[0] = arrow[:, 0] = True
    >>> symmetric_reads(csr_array(arrow), star_coloring(arrow))  # entries (0,0) (0,1) (0,2) (1,0) (1,1) (2,0) (2,2)
    (array([0, 0, 0, 0, 1, 0, 1]), array([0, 1, 2, 1, 1, 2, 2]))
    """
    pattern = csr_array(pattern)
    pattern = _square(csr_array((np.ones(pattern.nnz, dtype=bool), pattern.indices, pattern.indptr),
                                shape=pattern.shape))
    rows = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr))
    cols = pattern.indices
    edge_rows, edge_cols = _edges(pattern)
    colors = np.asarray(colors, dtype=np.int64)
    if (colors[rows] < 0).any() or (colors[cols] < 0).any() or (colors[edge_rows] == colors[edge_cols]).any():
        raise ValueError("the colors are not a star coloring of this pattern: a column with entries has no color, "
                         "or two neighbouring columns share one; use star_coloring(pattern)")
    count = _neighbours_by_color(edge_rows, colors[edge_cols], int(colors.max(initial=-1)) + 1)
    direct = (rows == cols) | (count(rows, colors[cols]) == 1)
    if not (direct | (count(cols, colors[rows]) == 1)).all():
        raise ValueError("the colors are not a star coloring of this pattern: an entry would be read mixed with "
                         "another one; use star_coloring(pattern)")
    return np.where(direct, colors[cols], colors[rows]), np.where(direct, rows, cols)


def _neighbours_by_color(vertices, neighbour_colors, width):
    """``count(v, c)``: how many neighbours of color c each vertex v has, from the (vertex, neighbour's color)
    of every edge; kept as sorted keys, not an (n, colors) table, which could be as large as n²."""
    keys, counts = np.unique(vertices * width + neighbour_colors, return_counts=True)

    def count(v, c):
        wanted = v * width + c
        if not keys.size:  # no edge: no neighbours
            return np.zeros(wanted.shape, dtype=np.int64)
        at = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
        return np.where(keys[at] == wanted, counts[at], 0)

    return count
