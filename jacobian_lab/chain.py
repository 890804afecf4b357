"""Jacobian chains: planning the cheapest way to multiply local Jacobians.

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

The second half of the module runs real chains: :class:`Chain` composes user
functions, forms each local Jacobian with the cheaper engine for its shape,
multiplies them in a chosen bracketing with the counted ``matmul`` primitive
and checks the counted product FLOPs against the plan (:meth:`Chain.measure`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, Union

import numpy as np

from .accounting import PRIMAL, Cost, counting
from .engines.base import call_traced
from .jacobian import as_input
from .jacobian import jacobian as _jacobian
from .prediction import EvalTrace
from .rules.linalg import matmul
from .tracing import Tracer

# A bracketing tree: an int leaf (1-based stage index) or a pair (left, right).
Tree = Union[int, tuple["Tree", "Tree"]]


# =============================================================================
# Planning: optimal bracketing of a Jacobian chain (cost model only)
# =============================================================================


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


def _check_tree(tree: Any, q: int) -> None:
    """Raise ``ValueError`` unless ``tree`` is a full bracketing of ``J_q ... J_1``."""
    lo, hi = _span(tree)
    if (lo, hi) != (1, q):
        raise ValueError(
            f"bracketing tree covers stages {lo}..{hi}, but the chain has stages 1..{q}"
        )


def _forward_tree(q: int) -> Tree:
    tree: Tree = 1
    for k in range(2, q + 1):
        tree = (k, tree)
    return tree


def _reverse_tree(q: int) -> Tree:
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
    _span(tree)
    return _format(tree, True)


def _tree_from_split(split: np.ndarray, q: int) -> Tree:
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
    _check_tree(tree, len(w) - 1)
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
    mats = _check_factors(mats_by_stage)
    _check_tree(tree, len(mats))
    return _run_tree(mats, tree, np.matmul)


def _check_factors(mats_by_stage: Sequence[np.ndarray]) -> list[np.ndarray]:
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


def _run_tree(mats: Sequence[np.ndarray], tree: Tree, matmul: Any) -> np.ndarray:
    """Evaluate a validated tree, doing every product with ``matmul(left, right)``."""
    if isinstance(tree, (tuple, list)):
        return matmul(_run_tree(mats, tree[0], matmul), _run_tree(mats, tree[1], matmul))
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
        return _tree_from_split(self.split_table, self.stages)

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
            ("forward", self.forward_flops, format_bracketing(_forward_tree(q))),
            ("reverse", self.reverse_flops, format_bracketing(_reverse_tree(q))),
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
        lines.append(f"speed-up of optimal over best pure mode: {self.speedup:.2f}x")
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
            "forward_bracketing": format_bracketing(_forward_tree(q)),
            "reverse_bracketing": format_bracketing(_reverse_tree(q)),
            "order": _to_lists(self.order()),
            "cost_table": [[int(v) for v in row] for row in self.cost_table],
            "split_table": [[int(v) for v in row] for row in self.split_table],
        }


def plan(widths: Sequence[int]) -> ChainPlan:
    """Compute forward, reverse and optimal costs for a chain with the given widths.

    ``widths = [w0, w1, ..., wq]`` must hold at least two positive integers
    (``bool`` and non-integral values are rejected with ``ValueError``).
    Runs the matrix-chain dynamic programme in ``O(q^3)`` with exact Python
    integer arithmetic.

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
        bracketing=format_bracketing(_tree_from_split(split_table, q)),
        cost_table=cost_table,
        split_table=split_table,
    )


# =============================================================================
# Execution: local Jacobians of a real chain, multiplied with counted products
# =============================================================================

BRACKETINGS = ("forward", "reverse", "optimal")


def multiply_counted(mats_by_stage: Sequence[np.ndarray], tree: Tree) -> tuple[np.ndarray, int]:
    """Multiply the local Jacobians in the order of ``tree`` and count the work that ran.

    Like :func:`multiply`, but every product goes through the package's
    ``matmul`` primitive inside a counting block, so the returned FLOPs are
    those of the products actually executed (``2*a*b*c`` for an ``(a x b)``
    by ``(b x c)`` product), not a formula.  They equal
    ``bracketing_cost(widths, tree)``.  Returns ``(product, flops)``.

    >>> import numpy as np
    >>> mats = [np.ones((3, 2)), np.ones((4, 3)), np.ones((5, 4))]   # widths 2, 3, 4, 5
    >>> J, flops = multiply_counted(mats, (3, (2, 1)))
    >>> J.shape, flops, bracketing_cost([2, 3, 4, 5], (3, (2, 1)))
    ((5, 2), 128, 128)
    >>> multiply_counted(mats, ((3, 2), 1))[1]
    180
    """
    mats = _check_factors(mats_by_stage)
    _check_tree(tree, len(mats))
    with counting() as counter:
        product = _run_tree(mats, tree, matmul)
    return product, counter.total().flops


def local_mode(width_in: int, width_out: int) -> str:
    """The cheaper engine for a local Jacobian of shape ``width_out x width_in``.

    Forward accumulation needs one pass per input (``width_in`` columns),
    reverse accumulation one sweep per output (``width_out`` rows); so forward
    when ``width_in < width_out``, otherwise reverse (ties go to reverse).

    >>> local_mode(1, 100), local_mode(100, 1), local_mode(5, 5)
    ('forward', 'reverse', 'reverse')
    """
    return "forward" if width_in < width_out else "reverse"


def _to_tuples(tree: Tree) -> Tree:
    if isinstance(tree, (tuple, list)):
        return (_to_tuples(tree[0]), _to_tuples(tree[1]))
    return int(tree)


def _resolve_bracketing(bracketing: Any, q: int) -> tuple[str, Tree | None]:
    """``(name, tree)``: a named bracketing (tree decided by the plan) or an explicit tree."""
    choices = ", ".join(repr(b) for b in BRACKETINGS)
    if isinstance(bracketing, str):
        if bracketing not in BRACKETINGS:
            raise ValueError(
                f"bracketing must be one of {choices} or a bracketing tree; got {bracketing!r}"
            )
        return bracketing, None
    try:
        _check_tree(bracketing, q)
    except ValueError as error:
        raise ValueError(
            f"bracketing must be one of {choices} or a bracketing tree of stages 1..{q} "
            f"such as {format_bracketing(_reverse_tree(q))!r} = {_reverse_tree(q)!r}; {error}"
        ) from None
    return "explicit", _to_tuples(bracketing)


def _stage_name(stage: Callable) -> str:
    return getattr(stage, "__name__", None) or type(stage).__name__


def _stage_label(index: int, stage: Callable) -> str:
    return f"stage {index} ({_stage_name(stage)})"


def _shape(value: Any) -> tuple[int, ...]:
    # Tracers carry .shape; np.shape on them would go through NumPy dispatch.
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else np.shape(value)


def _check_vector(value: Any, what: str) -> None:
    shape = _shape(value)
    if len(shape) != 1:
        raise ValueError(
            f"{what} must be a 1-D array (a chain maps vectors to vectors); got shape {shape}"
        )
    if shape[0] == 0:
        raise ValueError(f"{what} must not be empty; got shape {shape}")


def _check_stage_output(index: int, stage: Callable, value: Any) -> None:
    label = _stage_label(index, stage)
    if value is None:
        raise TypeError(f"{label} returned None; it must return a 1-D float array")
    _check_vector(value, f"the output of {label}")


@dataclass(frozen=True, eq=False)
class ChainMeasurement:
    """What :meth:`Chain.measure` ran and counted for one bracketing.

    ``jacobian``
        The full ``wq x w0`` Jacobian.
    ``plan``
        The :class:`ChainPlan` of the chain's widths at ``x``.
    ``bracketing``, ``order``
        The requested bracketing (``"forward"``, ``"reverse"``, ``"optimal"``
        or ``"explicit"`` for a tree) and the tree that was executed.
    ``modes``
        The engine that formed each local Jacobian, ``modes[i - 1]`` for ``J_i``.
    ``product_flops``, ``predicted_flops``
        FLOPs counted while multiplying the local Jacobians, and the plan's
        prediction for ``order`` (``bracketing_cost(widths, order)``).
    ``local_costs``
        Counted :class:`~jacobian_lab.accounting.Cost` of forming each ``J_i``
        (all phases: the engine's own evaluation of the stage, tangent and
        cotangent work).
    ``evaluation_cost``
        Counted cost of the one evaluation that found the intermediate points.
    """

    jacobian: np.ndarray
    plan: ChainPlan
    bracketing: str
    order: Tree
    modes: tuple[str, ...]
    product_flops: int
    predicted_flops: int
    local_costs: tuple[Cost, ...]
    evaluation_cost: Cost

    @property
    def widths(self) -> tuple[int, ...]:
        """``(w0, ..., wq)`` at the point measured."""
        return self.plan.widths

    @property
    def local_cost(self) -> Cost:
        """Counted cost of forming all local Jacobians."""
        return sum(self.local_costs, Cost())

    @property
    def matches(self) -> bool:
        """Whether the counted product FLOPs equal the prediction exactly."""
        return self.product_flops == self.predicted_flops

    @property
    def difference(self) -> int:
        """``product_flops - predicted_flops`` (0 when the count matches)."""
        return self.product_flops - self.predicted_flops

    @property
    def total(self) -> Cost:
        """Everything counted: evaluation, local Jacobians and products."""
        return self.evaluation_cost + self.local_cost + Cost(self.product_flops, 0)

    def summary(self) -> str:
        """Plain-text report: widths, engine and cost per local Jacobian, counted vs predicted products."""
        w, q = self.widths, self.plan.stages
        lines = [
            f"Jacobian chain, {q} stage{'s' if q != 1 else ''}, widths "
            + " -> ".join(str(v) for v in w),
            f"evaluation at x: {_format_cost(self.evaluation_cost)}",
            "local Jacobians (engine chosen per stage):",
        ]
        shapes = [f"{w[i]} x {w[i - 1]}" for i in range(1, q + 1)]
        rows = [(f"J{i}", shape, mode, cost) for i, (shape, mode, cost)
                in enumerate(zip(shapes, self.modes, self.local_costs), 1)]
        rows.append(("all", "", "", self.local_cost))
        label_w, shape_w = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
        for label, shape, mode, cost in rows:
            lines.append(f"  {label:<{label_w}}  {shape:<{shape_w}}  {mode:<7}  {_format_cost(cost)}")
        lines.append(f"bracketing ({self.bracketing}): {format_bracketing(self.order)}")
        counted, predicted = f"{self.product_flops:,}", f"{self.predicted_flops:,}"
        if self.matches:
            lines.append(f"product FLOPs: counted {counted} == predicted {predicted} (exact match)")
        else:
            lines.append(
                f"product FLOPs: counted {counted} != predicted {predicted} "
                f"(counted - predicted = {self.difference:+,})"
            )
        return "\n".join(lines)


def _format_cost(cost: Cost) -> str:
    return f"{cost.flops:,} flops + {cost.transcendentals:,} transcendentals"


class Chain:
    """A composition ``f = f_q o ... o f_1`` of vector functions, stage 1 applied first.

    Each stage is a callable written with NumPy that maps a **1-D** float
    array to a 1-D float array (use ``keepdims=True`` or an ``(1, n)`` matrix
    for a width-1 stage, not a scalar); a stage returning anything else raises
    ``ValueError`` naming the stage.  Calling the chain applies the stages in
    order, so ``jl.jacrev(chain)(x)`` differentiates the whole composition.

    :meth:`jacobian` instead forms each local Jacobian ``J_i`` at its
    intermediate point with the cheaper engine for its shape
    (:func:`local_mode`) and multiplies them in the requested bracketing;
    :meth:`measure` also reports the counted work.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> A1, A2, A4 = rng.normal(size=(1, 4)), rng.normal(size=(4, 1)), rng.normal(size=(4, 4))
    >>> chain = Chain([lambda z: np.tanh(A1 @ z), lambda z: A2 @ z, np.sin, lambda z: A4 @ z])
    >>> x = np.linspace(-1.0, 1.0, 4)
    >>> chain.plan(x).widths
    (4, 1, 4, 4, 4)
    >>> J = chain.jacobian(x, bracketing="optimal")
    >>> J.shape
    (4, 4)
    >>> import jacobian_lab as jl
    >>> bool(np.allclose(J, jl.jacrev(chain)(x)))
    True
    >>> m = chain.measure(x, bracketing="forward")
    >>> m.product_flops, m.predicted_flops, m.modes
    (288, 288, ('reverse', 'forward', 'reverse', 'reverse'))
    >>> print(m.summary())  # doctest: +ELLIPSIS
    Jacobian chain, 4 stages, widths 4 -> 1 -> 4 -> 4 -> 4
    evaluation at x: ... flops + ... transcendentals
    local Jacobians (engine chosen per stage):
      J1   1 x 4  reverse  ... flops + ... transcendentals
      J2   4 x 1  forward  ... flops + ... transcendentals
      J3   4 x 4  reverse  ... flops + ... transcendentals
      J4   4 x 4  reverse  ... flops + ... transcendentals
      all                  ... flops + ... transcendentals
    bracketing (forward): J4 (J3 (J2 J1))
    product FLOPs: counted 288 == predicted 288 (exact match)
    """

    def __init__(self, stages: Iterable[Callable]) -> None:
        if callable(stages) and not isinstance(stages, (list, tuple)):
            raise TypeError(
                "Chain takes a sequence of stages, e.g. Chain([f1, f2]); got a single callable"
            )
        try:
            items = tuple(stages)
        except TypeError:
            raise TypeError(
                f"Chain takes a sequence of callables; got {type(stages).__name__}"
            ) from None
        if not items:
            raise ValueError("Chain needs at least one stage; got an empty sequence")
        for i, stage in enumerate(items, 1):
            if not callable(stage):
                raise TypeError(f"stage {i} is not callable: {stage!r}")
        self.stages: tuple[Callable, ...] = items

    def __len__(self) -> int:
        return len(self.stages)

    def __repr__(self) -> str:
        return f"Chain([{', '.join(_stage_name(s) for s in self.stages)}])"

    def __call__(self, x: Any) -> Any:
        """Apply the stages in order (plain arrays or traced arrays alike).

        >>> Chain([np.sin, np.cos])(np.zeros(2))
        array([1., 1.])
        """
        _check_vector(x, "the chain's input x")
        for i, stage in enumerate(self.stages, 1):
            x = stage(x)
            _check_stage_output(i, stage, x)
        return x

    # --- one evaluation: intermediate points and widths ------------------------
    def _evaluate(self, x: Any) -> tuple[list[np.ndarray], Cost]:
        """The points ``[x0, x1, ..., xq]`` and the counted cost of computing them."""
        points = [as_input(x)]
        _check_vector(points[0], "the chain's input x")
        cost = Cost()
        for i, stage in enumerate(self.stages, 1):
            trace = EvalTrace()
            with counting() as counter:
                try:
                    y, traced = call_traced(stage, Tracer(trace, points[-1]), trace)
                except TypeError as error:
                    raise TypeError(f"{_stage_label(i, stage)}: {error}") from error
            value = y.primal if traced else np.asarray(y)
            _check_stage_output(i, stage, value)
            points.append(value)
            cost = cost + counter.cost(PRIMAL)
        return points, cost

    def widths(self, x: Any) -> tuple[int, ...]:
        """``(w0, ..., wq)``: the lengths of x and of every stage's output, from one evaluation.

        >>> Chain([lambda z: z[:2], np.sin]).widths(np.ones(5))
        (5, 2, 2)
        """
        return tuple(len(p) for p in self._evaluate(x)[0])

    def plan(self, x: Any) -> ChainPlan:
        """The :class:`ChainPlan` (costs of forward, reverse, optimal bracketing) at ``x``.

        >>> p = Chain([lambda z: z[:1], lambda z: np.ones((3, 1)) @ z]).plan(np.ones(3))
        >>> p.widths, p.forward_flops, p.reverse_flops
        ((3, 1, 3), 18, 18)
        """
        return plan(self.widths(x))

    # --- local Jacobians -------------------------------------------------------
    def _local(
        self, points: Sequence[np.ndarray]
    ) -> tuple[list[np.ndarray], tuple[str, ...], tuple[Cost, ...]]:
        """``(J_i, engine, counted cost)`` for every stage, at the intermediate points."""
        mats, modes, costs = [], [], []
        for i, stage in enumerate(self.stages, 1):
            mode = local_mode(len(points[i - 1]), len(points[i]))
            with counting() as counter:
                mats.append(_jacobian(stage, points[i - 1], mode=mode))
            modes.append(mode)
            costs.append(counter.total())
        return mats, tuple(modes), tuple(costs)

    def local_jacobians(self, x: Any) -> list[np.ndarray]:
        """``[J1, ..., Jq]`` at the intermediate points, ``J_i`` of shape ``w(i) x w(i-1)``.

        Each is formed with the engine chosen by :func:`local_mode`; pass them
        to :func:`multiply` or :func:`multiply_counted` with any tree.

        >>> [J.shape for J in Chain([lambda z: z[:2], np.sin]).local_jacobians(np.ones(5))]
        [(2, 5), (2, 2)]
        """
        points, _ = self._evaluate(x)
        return self._local(points)[0]

    # --- the full Jacobian -----------------------------------------------------
    def measure(self, x: Any, bracketing: Any = "optimal") -> ChainMeasurement:
        """Form the Jacobian in the given bracketing and report what was counted.

        ``bracketing`` is ``"forward"`` (``J_q (... (J_2 J_1))``), ``"reverse"``
        (``((J_q J_{q-1}) ...) J_1``), ``"optimal"`` (the plan's cheapest) or an
        explicit tree such as ``((4, (3, 2)), 1)`` (see :func:`all_bracketings`).
        The products are executed with the counted ``matmul`` primitive, so
        ``product_flops`` is the work that ran; it equals ``predicted_flops``.

        >>> chain = Chain([lambda z: z[:1], lambda z: np.ones((3, 1)) @ z, np.sin])
        >>> m = chain.measure(np.ones(3), bracketing=(3, (2, 1)))
        >>> m.bracketing, m.product_flops, m.predicted_flops, m.matches
        ('explicit', 72, 72, True)
        >>> chain.measure(np.ones(3), bracketing="best")
        Traceback (most recent call last):
            ...
        ValueError: bracketing must be one of 'forward', 'reverse', 'optimal' or a bracketing tree; got 'best'
        """
        name, tree = _resolve_bracketing(bracketing, len(self.stages))
        points, evaluation_cost = self._evaluate(x)
        chain_plan = plan([len(p) for p in points])
        q = chain_plan.stages
        if name == "explicit":
            predicted = bracketing_cost(chain_plan.widths, tree)
        else:
            tree, predicted = {
                "forward": (_forward_tree(q), chain_plan.forward_flops),
                "reverse": (_reverse_tree(q), chain_plan.reverse_flops),
                "optimal": (chain_plan.order(), chain_plan.optimal_flops),
            }[name]
        mats, modes, local_costs = self._local(points)
        product, flops = multiply_counted(mats, tree)
        return ChainMeasurement(
            jacobian=product,
            plan=chain_plan,
            bracketing=name,
            order=tree,
            modes=modes,
            product_flops=flops,
            predicted_flops=predicted,
            local_costs=local_costs,
            evaluation_cost=evaluation_cost,
        )

    def jacobian(self, x: Any, bracketing: Any = "optimal") -> np.ndarray:
        """The ``wq x w0`` Jacobian at ``x``: local Jacobians multiplied in ``bracketing``.

        Every bracketing gives the same matrix (up to rounding), equal to
        ``jl.jacrev(chain)(x)``; they differ only in the work done.  See
        :meth:`measure` for the choices of ``bracketing``.

        >>> Chain([lambda z: 2.0 * z, np.sin]).jacobian(np.zeros(2), bracketing="reverse")
        array([[2., 0.],
               [0., 2.]])
        """
        return self.measure(x, bracketing).jacobian
