"""Jacobian chains: real chains of functions, their local Jacobians multiplied in a planned order.

:class:`Chain` composes user functions ``f = f_q o ... o f_1``, forms each
local Jacobian with the cheaper engine for its shape, multiplies them in a
chosen bracketing with the counted ``matmul`` primitive and checks the counted
product FLOPs against the plan (:meth:`Chain.measure`). The plans themselves,
costs of bracketings by widths alone, are `jacobian_lab.bracketing`'s; its
public names are here too, as ``jl.chain.plan([...])``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .accounting import Cost, counting
from .bracketing import (ChainPlan, Tree, all_bracketings, bracketing_cost, check_factors, check_tree,
                         format_bracketing, forward_tree, multiply, parse_bracketing, plan, reverse_tree,
                         run_tree)
from .engines.base import call_traced
from .harness import as_input
from .jacobian import jacobian as _jacobian
from .engines.evaluate import EvalTrace, Evaluated
from .rules.linalg import matmul

__all__ = ["BRACKETINGS", "Chain", "ChainMeasurement", "ChainPlan", "Tree", "all_bracketings", "bracketing_cost",
           "format_bracketing", "local_mode", "multiply", "multiply_counted", "parse_bracketing", "plan"]

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
    mats = check_factors(mats_by_stage)
    check_tree(tree, len(mats))
    with counting() as counter:
        product = run_tree(mats, tree, matmul)
    return product, counter.total().flops


def local_mode(width_in: int, width_out: int) -> str:
    """The cheaper engine for a local Jacobian of shape ``width_out x width_in``.

    Forward accumulation needs one tangent seed per input (``width_in`` columns),
    reverse accumulation one cotangent seed per output (``width_out`` rows); so forward
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
    choices = ", ".join(repr(b) for b in BRACKETINGS) + " (None: 'optimal')"
    if bracketing is None:
        return "optimal", None
    if isinstance(bracketing, str) and bracketing in BRACKETINGS:
        return bracketing, None
    if isinstance(bracketing, str) and not bracketing.lstrip().startswith(("(", "J")):
        raise ValueError(f"bracketing must be one of {choices} or a bracketing tree; got {bracketing!r}")
    try:
        if isinstance(bracketing, str):  # as ChainPlan.bracketing writes one: '(J3 J2) J1'
            bracketing = parse_bracketing(bracketing)
        check_tree(bracketing, q)
    except ValueError as error:
        example = reverse_tree(min(q, 4))  # of a long chain, a tree of its first stages: its own would fill pages
        raise ValueError(
            f"bracketing must be one of {choices} or a bracketing tree of stages 1..{q} "
            f"such as {format_bracketing(example)!r} = {example!r}{' for 4 of them' if q > 4 else ''}; {error}"
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
    ``ValueError`` naming the stage, and so does one whose output width changes
    between calls (each stage runs again to form its local Jacobian).  Calling the chain applies the stages in
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
                    y, traced = call_traced(stage, Evaluated(trace, points[-1]), trace)
                except TypeError as error:
                    if type(error) is not TypeError:  # TracerConversionError, or a subclass of f's own
                        error.add_note(f"raised in {_stage_label(i, stage)} of the chain")
                        raise
                    raise TypeError(f"{_stage_label(i, stage)}: {error}") from error
                except Exception as error:  # its own type kept, for f's callers to catch: a note says where
                    error.add_note(f"raised in {_stage_label(i, stage)} of the chain")
                    raise
            value = y.primal if traced else np.asarray(y)
            _check_stage_output(i, stage, value)
            points.append(value)
            cost = cost + counter.total()  # a derivative a stage takes inside is part of its work
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
            if mats[-1].shape[0] != len(points[i]):
                raise ValueError(
                    f"{_stage_label(i, stage)} returned {mats[-1].shape[0]} values when its Jacobian was formed, "
                    f"where it returned {len(points[i])} at the same input when the chain was evaluated: a stage "
                    "must be a function of its input alone; keep what it changes between calls (a counter in a "
                    "closure or a global) out of it")
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
        (``((J_q J_{q-1}) ...) J_1``), ``"optimal"`` (the plan's cheapest; None too) or an
        explicit tree such as ``((4, (3, 2)), 1)`` (see :func:`all_bracketings`), or
        the same as text, as :attr:`ChainPlan.bracketing` writes it: ``"(J4 (J3 J2)) J1"``.
        The products are executed with the counted ``matmul`` primitive, so
        ``product_flops`` is the work that ran; it equals ``predicted_flops``.

        >>> chain = Chain([lambda z: z[:1], lambda z: np.ones((3, 1)) @ z, np.sin])
        >>> m = chain.measure(np.ones(3), bracketing=(3, (2, 1)))
        >>> m.bracketing, m.product_flops, m.predicted_flops, m.matches
        ('explicit', 72, 72, True)
        >>> chain.measure(np.ones(3), bracketing="best")
        Traceback (most recent call last):
            ...
        ValueError: bracketing must be one of 'forward', 'reverse', 'optimal' (None: 'optimal') or a
        bracketing tree; got 'best'
        """
        name, tree = _resolve_bracketing(bracketing, len(self.stages))
        points, evaluation_cost = self._evaluate(x)
        chain_plan = plan([len(p) for p in points])
        q = chain_plan.stages
        if name == "explicit":
            predicted = bracketing_cost(chain_plan.widths, tree)
        else:
            tree, predicted = {
                "forward": (forward_tree(q), chain_plan.forward_flops),
                "reverse": (reverse_tree(q), chain_plan.reverse_flops),
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
