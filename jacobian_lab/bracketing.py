"""Bracketing a Jacobian chain: the cheapest order to multiply local Jacobians (the cost model alone).

A chain ``f = f_q o ... o f_1`` has widths ``[w0, w1, ..., wq]``: stage ``i``
maps ``R^w(i-1) -> R^w(i)`` and its local Jacobian ``J_i`` is ``w(i) x w(i-1)``,
so the full Jacobian is the product ``J = J_q ... J_1`` (no identity factor).
Cost model (dense): multiplying an ``(a x b)`` by a ``(b x c)`` matrix costs
``2*a*b*c`` FLOPs; nothing else (forming the ``J_i``, memory) is counted.
Forward accumulation is the right-to-left bracketing ``J_q (... (J_2 J_1))``,
reverse accumulation the left-to-right one ``((J_q J_{q-1}) ...) J_1``.
The cheapest bracketing is found by the matrix-chain dynamic programme
(Naumann's dense Jacobian chain bracketing problem) in ``O(q^3)`` time.

Bracketings are described by *trees*: a leaf is a 1-based stage index ``i``
(the factor ``J_i``) and a node is a pair ``(left, right)`` meaning the product
``left @ right``; the left subtree always holds the higher stage indices, e.g.
``((4, (3, 2)), 1)`` is ``(J4 (J3 J2)) J1``.  A single stage is the leaf ``1``.

Nothing here traces or counts: `jacobian_lab.chain` runs real chains of
functions with these plans, and ``np.linalg.multi_dot`` of traced arrays
orders its products with `plan`.
"""

from __future__ import annotations

import math
import numbers
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence, Union

import numpy as np

# A bracketing tree: an int leaf (1-based stage index) or a pair (left, right).
Tree = Union[int, tuple["Tree", "Tree"]]


def _validate_widths(widths: Iterable[Any]) -> tuple[int, ...]:
    """Return ``widths`` as a tuple of Python ints or raise ``ValueError``."""
    if isinstance(widths, (str, bytes)):
        raise ValueError(
            f"widths must be a sequence of positive integers; got a string {widths!r}"
        )
    try:
        items = list(widths)
    except TypeError:
        raise ValueError(
            "widths must be a sequence of positive integers; "
            f"got {type(widths).__name__} {widths!r}"
        ) from None
    for pos, value in enumerate(items):
        is_int = isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
            value, (bool, np.bool_)
        )
        if not is_int:
            raise ValueError(
                "widths must be positive integers; "
                f"got {value!r} ({type(value).__name__}) at position {pos} (w{pos})"
            )
        if value <= 0:
            raise ValueError(
                f"widths must be positive integers; got {int(value)} at position {pos} (w{pos})"
            )
    if len(items) < 2:
        raise ValueError(
            "widths must contain at least 2 entries [w0, w1, ...] (one stage needs an "
            f"input and an output width); got {len(items)}: {items!r}"
        )
    return tuple(int(v) for v in items)


#: The most stages `plan` brackets: about 10 s of its O(q^3) programme, and a bracketing nested within
#: Python's recursion limit
MAX_STAGES = 500


def _check_q(q: Any) -> int:
    if isinstance(q, (bool, np.bool_)) or not isinstance(q, (numbers.Integral, np.integer)):
        raise ValueError(f"number of stages must be a positive integer; got {q!r}")
    if q < 1:
        raise ValueError(f"number of stages must be a positive integer; got {int(q)}")
    return int(q)


def _span(tree: Any) -> tuple[int, int]:
    """Validate the structure of ``tree`` and return the stage range ``(lo, hi)`` it covers."""
    if isinstance(tree, (numbers.Integral, np.integer)) and not isinstance(
        tree, (bool, np.bool_)
    ):
        return int(tree), int(tree)
    if isinstance(tree, (tuple, list)) and len(tree) == 2:
        left_lo, left_hi = _span(tree[0])
        right_lo, right_hi = _span(tree[1])
        if left_lo != right_hi + 1:
            raise ValueError(
                f"invalid bracketing tree node {tree!r}: the left factor must cover the "
                f"stages directly above the right factor (left covers {left_lo}..{left_hi}, "
                f"right covers {right_lo}..{right_hi})"
            )
        return right_lo, left_hi
    raise ValueError(
        f"invalid bracketing tree {tree!r}: expected a stage index (int) or a pair (left, right)"
    )


def check_tree(tree: Any, q: int) -> None:
    """Raise ``ValueError`` unless ``tree`` is a full bracketing of ``J_q ... J_1``."""
    try:
        lo, hi = _span(tree)
    except RecursionError:
        raise _too_deep() from None
    if (lo, hi) != (1, q):
        raise ValueError(
            f"bracketing tree covers stages {lo}..{hi}, but the chain has stages 1..{q}"
        )


def _too_deep() -> ValueError:
    """The refusal of a bracketing nested too deeply to walk: trees are walked and read recursively, and a forward
    bracketing of about 1,000 stages (its text of about 500) passes Python's recursion limit."""
    return ValueError(f"the bracketing nests deeper than Python's recursion limit ({sys.getrecursionlimit()}) lets "
                      "it be walked: bracket the chain in parts")


def forward_tree(q: int) -> Tree:
    tree: Tree = 1
    for k in range(2, q + 1):
        tree = (k, tree)
    return tree


def reverse_tree(q: int) -> Tree:
    tree: Tree = q
    for k in range(q - 1, 0, -1):
        tree = (tree, k)
    return tree


def _format(tree: Tree, top: bool) -> str:
    if not isinstance(tree, (tuple, list)):
        return f"J{int(tree)}"
    text = f"{_format(tree[0], False)} {_format(tree[1], False)}"
    return text if top else f"({text})"


def format_bracketing(tree: Tree) -> str:
    """Render a bracketing tree as text, e.g. ``((4, (3, 2)), 1)`` -> ``"(J4 (J3 J2)) J1"``.

    Juxtaposed factors are separated by a space; every product except the
    outermost one is parenthesised.

    >>> format_bracketing(((4, (3, 2)), 1))
    '(J4 (J3 J2)) J1'
    >>> format_bracketing((3, (2, 1)))
    'J3 (J2 J1)'
    >>> format_bracketing(1)
    'J1'
    """
    try:
        _span(tree)
        return _format(tree, True)
    except RecursionError:
        raise _too_deep() from None


_TOKEN = re.compile(r"\s*(?:(\()|(\))|J(\d+))")


def parse_bracketing(text: str) -> Tree:
    """The tree `format_bracketing` renders as `text`: its inverse.

    >>> parse_bracketing("(J4 (J3 J2)) J1"), parse_bracketing("J3 (J2 J1)"), parse_bracketing("J1")
    (((4, (3, 2)), 1), (3, (2, 1)), 1)
    """
    tokens, at = [], 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if match is None:
            raise ValueError(f"cannot read {text!r} as a bracketing at {text[at:].strip()[:10]!r}: write factors "
                             "J1, J2, ... two to a product, in parentheses but the outermost, as '(J3 J2) J1'")
        tokens.append(match.group(1) or match.group(2) or int(match.group(3)))
        at = match.end()
    try:
        tree, rest = _product(tokens, text)
    except RecursionError:
        raise _too_deep() from None
    if rest:
        raise ValueError(f"cannot read {text!r} as a bracketing: an unmatched ')'")
    return tree


def _product(tokens: list, text: str) -> tuple[Tree, list]:
    """(one factor, or the product of two, read from `tokens`; the tokens left)."""
    left, tokens = _factor(tokens, text)
    if not tokens or tokens[0] == ")":
        return left, tokens
    right, tokens = _factor(tokens, text)
    if tokens and tokens[0] != ")":
        raise ValueError(f"cannot read {text!r} as a bracketing: three factors side by side; bracket two of them")
    return (left, right), tokens


def _factor(tokens: list, text: str) -> tuple[Tree, list]:
    if not tokens or tokens[0] == ")":
        raise ValueError(f"cannot read {text!r} as a bracketing: a factor is missing")
    if tokens[0] != "(":
        return tokens[0], tokens[1:]
    tree, tokens = _product(tokens[1:], text)
    if not tokens:
        raise ValueError(f"cannot read {text!r} as a bracketing: an unclosed '('")
    return tree, tokens[1:]


def tree_from_split(split: np.ndarray, q: int) -> Tree:
    """Rebuild the optimal tree of ``J_q ... J_1`` from a split table."""

    def build(i: int, j: int) -> Tree:
        if i == j:
            return i
        k = int(split[i - 1, j - 1])
        return (build(k + 1, j), build(i, k))

    return build(1, q)


def _to_lists(tree: Tree) -> Any:
    if isinstance(tree, (tuple, list)):
        return [_to_lists(tree[0]), _to_lists(tree[1])]
    return int(tree)


def _tree_cost(w: Sequence[int], tree: Tree) -> tuple[int, int, int]:
    """Return ``(lo, hi, flops)`` for a validated tree over widths ``w``."""
    if not isinstance(tree, (tuple, list)):
        return int(tree), int(tree), 0
    left_lo, hi, left_cost = _tree_cost(w, tree[0])
    lo, k, right_cost = _tree_cost(w, tree[1])
    # (J_hi ... J_{k+1}) is w[hi] x w[k]; (J_k ... J_lo) is w[k] x w[lo-1].
    return lo, hi, left_cost + right_cost + 2 * w[hi] * w[k] * w[lo - 1]


def bracketing_cost(widths: Sequence[int], tree: Tree) -> int:
    """FLOPs needed to form ``J_q ... J_1`` in the order given by ``tree``.

    ``tree`` is a nested pair of 1-based stage indices (lists are accepted as
    well as tuples, so a JSON round trip of :meth:`ChainPlan.to_dict` works).
    It must cover every stage ``1..q`` exactly once, with the higher stages
    on the left of each pair.  Raises ``ValueError`` otherwise.

    >>> bracketing_cost([2, 3, 4, 5], (3, (2, 1)))   # forward: 2*4*3*2 + 2*5*4*2
    128
    >>> bracketing_cost([2, 3, 4, 5], ((3, 2), 1))   # reverse: 2*5*4*3 + 2*5*3*2
    180
    >>> bracketing_cost([7, 3], 1)
    0
    """
    w = _validate_widths(widths)
    check_tree(tree, len(w) - 1)
    return _tree_cost(w, tree)[2]


def all_bracketings(q: int) -> Iterator[Tree]:
    """Yield every full bracketing tree of ``J_q ... J_1``.

    There are Catalan(q - 1) of them (1, 1, 2, 5, 14, 42, ... for q = 1, 2, 3, ...).
    The order is deterministic: trees are generated by top-level split, from
    the forward-like split ``J_q (J_{q-1} ... J_1)`` to the reverse-like one
    ``(J_q ... J_2) J_1``, recursively; so the forward tree comes first and
    the reverse tree last.

    >>> [format_bracketing(t) for t in all_bracketings(3)]
    ['J3 (J2 J1)', '(J3 J2) J1']
    >>> sum(1 for _ in all_bracketings(5))
    14
    """
    q = _check_q(q)

    def gen(lo: int, hi: int) -> Iterator[Tree]:
        if lo == hi:
            yield lo
            return
        for k in range(hi - 1, lo - 1, -1):
            for left in gen(k + 1, hi):
                for right in gen(lo, k):
                    yield (left, right)

    return gen(1, q)


def multiply(mats_by_stage: Sequence[np.ndarray], tree: Tree) -> np.ndarray:
    """Multiply the local Jacobians in the order prescribed by ``tree``.

    ``mats_by_stage[0]`` is ``J1``, ``mats_by_stage[i - 1]`` is ``J_i`` (shape
    ``w(i) x w(i-1)``).  The result equals ``J_q @ ... @ J_1`` up to rounding;
    only the order of the matrix products differs.  Raises ``ValueError`` for
    non-2-D factors, mismatched shapes or a tree that does not fit the chain.

    >>> import numpy as np
    >>> J1 = np.array([[1.0, 2.0]])          # 1 x 2
    >>> J2 = np.array([[3.0], [4.0]])        # 2 x 1
    >>> multiply([J1, J2], (2, 1))
    array([[3., 6.],
           [4., 8.]])
    >>> J3 = np.array([[1.0, 1.0]])          # 1 x 2
    >>> multiply([J1, J2, J3], ((3, 2), 1))
    array([[ 7., 14.]])
    """
    mats = check_factors(mats_by_stage)
    check_tree(tree, len(mats))
    return run_tree(mats, tree, np.matmul)


def check_factors(mats_by_stage: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The local Jacobians as 2-D arrays whose shapes chain up, or ``ValueError``."""
    mats = [np.asarray(m) for m in mats_by_stage]
    if not mats:
        raise ValueError("multiply needs at least one local Jacobian")
    for i, m in enumerate(mats, start=1):
        if m.ndim != 2:
            raise ValueError(f"J{i} must be a 2-D matrix; got an array of shape {m.shape}")
    for i in range(1, len(mats)):
        if mats[i].shape[1] != mats[i - 1].shape[0]:
            raise ValueError(
                f"J{i + 1} has shape {mats[i].shape} but J{i} has shape {mats[i - 1].shape}: "
                f"J{i + 1} needs {mats[i - 1].shape[0]} columns"
            )
    return mats


def run_tree(mats: Sequence[np.ndarray], tree: Tree, matmul: Any) -> np.ndarray:
    """Evaluate a validated tree, doing every product with ``matmul(left, right)``."""
    if isinstance(tree, (tuple, list)):
        return matmul(run_tree(mats, tree[0], matmul), run_tree(mats, tree[1], matmul))
    return mats[int(tree) - 1]


@dataclass(frozen=True)
class ChainPlan:
    """Costs of forward, reverse and optimal accumulation of ``J = J_q ... J_1``.

    Build one with :func:`plan`.  Attributes:

    ``widths``
        ``(w0, ..., wq)``.
    ``forward_flops``, ``reverse_flops``, ``optimal_flops``
        FLOPs (Python ints) of ``J_q (... (J_2 J_1))``, of
        ``((J_q J_{q-1}) ...) J_1`` and of the cheapest bracketing.
    ``bracketing``
        The cheapest bracketing as text, e.g. ``"(J4 (J3 J2)) J1"``.
    ``cost_table``
        ``q x q`` object array of Python ints: ``cost_table[i-1, j-1]`` is the
        minimum FLOPs to form ``J_j ... J_i`` (1-based ``i <= j``); ``0`` on
        the diagonal and ``-1`` in the unused entries below it.
    ``split_table``
        ``q x q`` int64 array: ``split_table[i-1, j-1] = k`` means the best
        way to form ``J_j ... J_i`` is ``(J_j ... J_{k+1}) (J_k ... J_i)``
        (``i <= k < j``); ``0`` on the diagonal (no split), ``-1`` below it.

    Ties in the dynamic programme are broken towards the *largest* split
    ``k``, i.e. towards forward-like bracketings (forward mode needs no
    record of the whole chain before it can start).  Consequently, whenever
    forward accumulation is optimal, ``bracketing`` is exactly the forward
    bracketing.  Both tables are read-only.  Equality and hashing use the
    scalar fields only.

    >>> p = plan([2, 3, 4, 5])
    >>> p.forward_flops, p.reverse_flops, p.optimal_flops, p.best_mode
    (128, 180, 128, 'forward')
    >>> p.bracketing
    'J3 (J2 J1)'
    """

    widths: tuple[int, ...]
    forward_flops: int
    reverse_flops: int
    optimal_flops: int
    bracketing: str
    cost_table: np.ndarray = field(compare=False, repr=False)
    split_table: np.ndarray = field(compare=False, repr=False)

    @property
    def stages(self) -> int:
        """Number of stages ``q`` (``len(widths) - 1``).

        >>> plan([4, 5, 6]).stages
        2
        """
        return len(self.widths) - 1

    @property
    def speedup(self) -> float:
        """``min(forward_flops, reverse_flops) / optimal_flops`` (1.0 if optimal is 0).

        How much the best bracketing gains over the better of the two pure modes.

        >>> plan([100, 1, 100, 100, 100]).speedup      # 2,040,000 / 60,000
        34.0
        >>> plan([10, 1000, 10, 1000, 1]).speedup      # reverse is already optimal
        1.0
        """
        if self.optimal_flops == 0:
            return 1.0
        return min(self.forward_flops, self.reverse_flops) / self.optimal_flops

    @property
    def best_mode(self) -> str:
        """Which accumulation to use; one of ``"forward"``, ``"reverse"``, ``"any"``, ``"optimal"``.

        * ``"forward"``: forward accumulation is optimal and reverse is not;
        * ``"reverse"``: reverse accumulation is optimal and forward is not;
        * ``"any"``: both pure modes are optimal (always the case for ``q <= 1``
          and for equal widths); ``bracketing`` is then the forward one;
        * ``"optimal"``: neither pure mode is optimal; only a mixed bracketing
          (``bracketing`` / :meth:`order`) reaches ``optimal_flops``.

        >>> plan([1, 100, 100, 100]).best_mode     # scalar input
        'forward'
        >>> plan([100, 100, 100, 1]).best_mode     # scalar output
        'reverse'
        >>> plan([100, 1, 100, 100, 100]).best_mode
        'optimal'
        >>> plan([5, 5, 5]).best_mode
        'any'
        """
        fwd = self.forward_flops == self.optimal_flops
        rev = self.reverse_flops == self.optimal_flops
        if fwd and rev:
            return "any"
        if fwd:
            return "forward"
        if rev:
            return "reverse"
        return "optimal"

    def order(self) -> Tree:
        """The optimal bracketing as a tree of 1-based stage indices.

        A leaf ``i`` stands for ``J_i``; a pair ``(left, right)`` for
        ``left @ right``.  Pass it to :func:`multiply` or :func:`bracketing_cost`.
        For a single stage the tree is the leaf ``1``.

        >>> plan([100, 1, 100, 100, 100]).order()
        ((4, (3, 2)), 1)
        >>> plan([3, 4]).order()
        1
        """
        return tree_from_split(self.split_table, self.stages)

    def table(self) -> str:
        """Plain-text summary for a terminal: the three costs, the optimal bracketing, the speed-up.

        >>> print(plan([2, 3, 4, 5]).table())
        Jacobian chain, 3 stages, widths 2 -> 3 -> 4 -> 5
          mode     FLOPs  bracketing
          forward    128  J3 (J2 J1)
          reverse    180  (J3 J2) J1
          optimal    128  J3 (J2 J1)
        speed-up of optimal over best pure mode: 1.00x
        best mode: forward
        """
        q = self.stages
        rows = [
            ("forward", self.forward_flops, format_bracketing(forward_tree(q))),
            ("reverse", self.reverse_flops, format_bracketing(reverse_tree(q))),
            ("optimal", self.optimal_flops, self.bracketing),
        ]
        nums = [f"{flops:,}" for _, flops, _ in rows]
        width = max(len("FLOPs"), *(len(n) for n in nums))
        lines = [
            f"Jacobian chain, {q} stage{'s' if q != 1 else ''}, widths "
            + " -> ".join(str(w) for w in self.widths),
            f"  {'mode':<7}  {'FLOPs':>{width}}  bracketing",
        ]
        for (name, _, text), num in zip(rows, nums):
            lines.append(f"  {name:<7}  {num:>{width}}  {text}")
        lines.append(f"speed-up of optimal over best pure mode: {ratio_text(self.speedup, '.2f')}x")
        lines.append(f"best mode: {self.best_mode}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (Python ints, floats, strings and lists only).

        ``order`` is the tree of :meth:`order` as nested lists; the tables are
        lists of rows with the conventions described in the class docstring.

        >>> import json
        >>> d = plan([2, 3, 4, 5]).to_dict()
        >>> d["optimal_flops"], d["order"], d["best_mode"]
        (128, [3, [2, 1]], 'forward')
        >>> bracketing_cost(d["widths"], d["order"]) == d["optimal_flops"]
        True
        >>> isinstance(json.dumps(d), str)
        True
        """
        q = self.stages
        return {
            "widths": list(self.widths),
            "stages": q,
            "forward_flops": self.forward_flops,
            "reverse_flops": self.reverse_flops,
            "optimal_flops": self.optimal_flops,
            "speedup": self.speedup,
            "best_mode": self.best_mode,
            "bracketing": self.bracketing,
            "forward_bracketing": format_bracketing(forward_tree(q)),
            "reverse_bracketing": format_bracketing(reverse_tree(q)),
            "order": _to_lists(self.order()),
            "cost_table": [[int(v) for v in row] for row in self.cost_table],
            "split_table": [[int(v) for v in row] for row in self.split_table],
        }


def ratio_text(ratio: float, spec: str = ".3g") -> str:
    """`ratio` in format `spec`, with the digits that tell it from 1 where `spec` would round it to 1: the
    optimal bracketing's gain over the better pure mode may be a few parts in ten thousand.

    A ratio of a thousand or more, or one `spec` rounds to an exponent (999.7 to "1e+03"), is a whole number,
    up to 1e15, where a float's digits end: "1,110", not "1.11e+03".

    >>> ratio_text(34.0, ".2f"), ratio_text(1.00023, ".2f"), ratio_text(1.004), ratio_text(1.0, ".2f")
    ('34.00', '1.0002', '1.004', '1.00')
    >>> ratio_text(1110.4), ratio_text(999.72), ratio_text(2.5e7), ratio_text(1e30)
    ('1,110', '1,000', '25,000,000', '1e+30')
    """
    text = format(ratio, spec)
    if (abs(ratio) >= 1000 or "e" in text) and abs(ratio) < 1e15:
        return f"{ratio:,.0f}"
    if float(text) == 1 and ratio != 1:
        text = format(ratio, f".{1 + math.ceil(-math.log10(abs(ratio - 1)))}g")
    return text


def plan(widths: Sequence[int]) -> ChainPlan:
    """Compute forward, reverse and optimal costs for a chain with the given widths.

    ``widths = [w0, w1, ..., wq]`` must hold at least two positive integers
    (``bool`` and non-integral values are rejected with ``ValueError``).
    Runs the matrix-chain dynamic programme in ``O(q^3)`` with exact Python
    integer arithmetic. Among optimal bracketings the forward one is shown
    when it is optimal, else the reverse one when it is, else a mixed one.

    A width-1 bottleneck after the first stage makes a mixed bracketing win:

    >>> p = plan([100, 1, 100, 100, 100])
    >>> p.forward_flops, p.reverse_flops, p.optimal_flops
    (4020000, 2040000, 60000)
    >>> p.bracketing
    '(J4 (J3 J2)) J1'
    >>> p.best_mode, p.speedup
    ('optimal', 34.0)

    With a scalar output, reverse accumulation is optimal here:

    >>> p = plan([10, 1000, 10, 1000, 1])
    >>> p.forward_flops, p.reverse_flops, p.optimal_flops
    (420000, 60000, 60000)
    >>> p.bracketing, p.best_mode
    ('((J4 J3) J2) J1', 'reverse')
    >>> plan([3, 4]).bracketing
    'J1'
    >>> plan([3, 0, 2])
    Traceback (most recent call last):
        ...
    ValueError: widths must be positive integers; got 0 at position 1 (w1)
    """
    w = _validate_widths(widths)
    q = len(w) - 1
    if q > MAX_STAGES:
        raise ValueError(
            f"a chain of {q} stages is longer than plan takes ({MAX_STAGES}): its dynamic programme takes "
            "O(q^3) steps, minutes beyond that, and its bracketing nests as deep as the chain is long; plan "
            "parts of the chain, each of at most that many stages"
        )
    cost = [[-1] * q for _ in range(q)]
    split = [[-1] * q for _ in range(q)]
    for i in range(q):
        cost[i][i] = 0
        split[i][i] = 0
    for length in range(2, q + 1):
        for i in range(1, q - length + 2):
            j = i + length - 1
            best_cost = -1
            best_k = -1
            # Scan splits from forward-like (k = j-1) to reverse-like (k = i);
            # the strict comparison keeps the largest k among equal costs.
            for k in range(j - 1, i - 1, -1):
                c = cost[i - 1][k - 1] + cost[k][j - 1] + 2 * w[j] * w[k] * w[i - 1]
                if best_k < 0 or c < best_cost:
                    best_cost, best_k = c, k
            cost[i - 1][j - 1] = best_cost
            split[i - 1][j - 1] = best_k

    forward = sum(2 * w[0] * w[k] * w[k - 1] for k in range(2, q + 1))
    reverse = sum(2 * w[q] * w[k] * w[k - 1] for k in range(1, q))
    if cost[0][q - 1] == reverse < forward:
        # reverse is optimal and forward is not: show its tree, not a mixed one of equal cost (each of
        # its subtrees is then optimal for its stages, so the cost table still holds)
        for i in range(1, q):
            split[i - 1][q - 1] = i

    cost_table = np.empty((q, q), dtype=object)
    for i in range(q):
        for j in range(q):
            cost_table[i, j] = cost[i][j]
    split_table = np.array(split, dtype=np.int64)
    cost_table.setflags(write=False)
    split_table.setflags(write=False)

    return ChainPlan(
        widths=w,
        forward_flops=forward,
        reverse_flops=reverse,
        optimal_flops=cost[0][q - 1],
        bracketing=format_bracketing(tree_from_split(split_table, q)),
        cost_table=cost_table,
        split_table=split_table,
    )
