"""Checks on the rules of a primitive registered from outside jacobian_lab.

The package's own rules are checked by its tests, against finite differences and the dot-product
identity (tests/test_rules.py), and its declared structures by perturbation (tests/test_sparse.py).
A primitive you register after importing jacobian_lab is not, so `register` wraps its rules here,
and these mistakes in one are errors that name it rather than wrong Jacobians:

* a tangent its JVP rule returns must have shape ``(k, *out.shape)`` for k seeds, and its pullback
  must return one cotangent (or None) per operand, of shape ``(k, *operand.shape)``: one with the
  seeds' axis dropped would broadcast against the others, and a missing one would be taken for zero;
* while `jit` records, a derivative computed from values the program recomputes (x and what f
  computes from it) must be computed with jacobian_lab's primitives too: a rule that computes with
  NumPy on them (``scipy.special.expit(np.asarray(x))``) would be replayed with its values at the
  first x. Such a rule makes jit compute without compiling, with a warning that names it. It is
  found by computing the rule again at a few moved values (`_MOVES`; one where the rule raises
  shows nothing), which is a check, not a proof: a rule that reads x with NumPy only between them
  goes unseen;
* an error a rule raises carries a note naming it.

Its ``structure`` is trusted where you ask for a sparse Jacobian (`sparse_jacobian`, `sparsity`),
not where a compiled auto Jacobian would choose compressed seeds by itself (`compiled._local`).
"""
from __future__ import annotations

import functools

import numpy as np

from .accounting import counted_by
from .primitives import Primitive, recomputed

_SEEDS_FIRST = "the seeds' axis first (see docs/architecture.md, 'The primitive registry')"


def check(prim: Primitive) -> Primitive:
    """`prim` with its rules wrapped in the checks above, and marked as not the package's own."""
    prim.builtin = False
    if prim.jvp is not None:
        prim.jvp = _checked_jvp(prim, prim.jvp)
    if prim.vjp is not None:
        prim.vjp = _checked_vjp(prim, prim.vjp)
    return prim


def _checked_jvp(prim: Primitive, rule):
    @functools.wraps(rule)
    def jvp(tangents, out, *args, **params):
        tangent = _noted(prim, "JVP rule", rule, tangents, out, *args, **params)
        given = [t for t in tangents if t is not None]
        if tangent is None or not given:
            return tangent
        k = np.shape(given[0])[0]
        if np.shape(tangent) != (k, *np.shape(out)):
            raise ValueError(f"the JVP rule of the primitive {prim.name!r} returned a tangent of shape "
                             f"{np.shape(tangent)} for {_seeds(k)} of an output of shape {np.shape(out)}: it must be "
                             f"{(k, *np.shape(out))}, {_SEEDS_FIRST}")
        if _stale([tangent], (tangents, out, *args), lambda *moved: [rule(*moved, **params)]):
            _refuse_recording(prim, "JVP rule")
        return tangent

    return jvp


def _checked_vjp(prim: Primitive, rule):
    @functools.wraps(rule)
    def vjp(needs, out, *args, **params):
        pullback = _noted(prim, "VJP rule", rule, needs, out, *args, **params)

        def checked(g):
            cotangents = _noted(prim, "pullback", pullback, g)
            _check_cotangents(prim, cotangents, np.shape(g)[0], args)
            given = [i for i, c in enumerate(cotangents) if c is not None]

            def again(g, out, *args):  # staged again, every cotangent at once
                moved = rule(needs, out, *args, **params)(g)
                return [moved[i] for i in given]

            if _stale([cotangents[i] for i in given], (g, out, *args), again):
                _refuse_recording(prim, "VJP rule")
            return cotangents

        return checked

    return vjp


def _check_cotangents(prim: Primitive, cotangents, k: int, args: tuple) -> None:
    if not isinstance(cotangents, (tuple, list)) or len(cotangents) != len(args):
        length = f" of length {len(cotangents)}" if isinstance(cotangents, (tuple, list)) else ""
        raise ValueError(f"the pullback of the primitive {prim.name!r} returned {type(cotangents).__name__}{length} "
                         f"for {len(args)} operand{'s' * (len(args) != 1)}: it must return a tuple of one cotangent "
                         "(or None) per operand, (g_x,) for one")
    for i, (arg, c) in enumerate(zip(args, cotangents)):
        if c is not None and np.shape(c) != (k, *np.shape(arg)):
            raise ValueError(f"the pullback of the primitive {prim.name!r} returned a cotangent of shape "
                             f"{np.shape(c)} for {_seeds(k)} of its operand {i} of shape {np.shape(arg)}: it must be "
                             f"{(k, *np.shape(arg))}, {_SEEDS_FIRST}")


def _seeds(k: int) -> str:
    return f"{k} seed{'s' * (k != 1)}"


def _noted(prim: Primitive, what: str, fn, *args, **params):
    try:
        return fn(*args, **params)
    except Exception as error:
        error.add_note(f"(raised in the {what} of the primitive {prim.name!r}, registered outside jacobian_lab)")
        raise


#: Where `_stale` moves the values a recording recomputes: a little, to the other sign, and further out. A rule
#: that reads x with NumPy only between these (a slope chosen at a threshold none of them crosses) goes unseen.
_MOVES = (lambda v: v * (1.0 + 2.0 ** -6) + 2.0 ** -6, lambda v: -v - 2.0 ** -6, lambda v: 3.0 * v + 1.0)


def _stale(derivatives: list, operands: tuple, again) -> bool:
    """Whether one of `derivatives` that the recording in progress does not recompute changes where the operands
    it does recompute move (`_MOVES`): the rule computed it from them with NumPy, which a program would keep as
    it was. ``again(*operands)`` computes them all again; a derivative that stays (a linear operation's) is
    right to keep, and a move where the rule raises (out of its domain) shows nothing either way."""
    kept = [i for i, d in enumerate(derivatives) if isinstance(d, (np.ndarray, np.generic)) and not recomputed(d)]
    flat = [v for group in operands for v in (group if isinstance(group, list) else [group])]
    if not kept or not any(recomputed(v) for v in flat if v is not None):
        return False
    for move in _MOVES:
        moved = [_moved(v, move) for v in operands]
        try:
            with np.errstate(all="ignore"):  # moved values may leave the rule's domain, where f's do not
                there = counted_by(None, again, *moved)
        except Exception:  # noqa: BLE001 - no derivative to compare there
            continue
        if any(not np.array_equal(there[i], derivatives[i], equal_nan=True) for i in kept):
            return True
    return False


def _moved(value, move):
    """`value` moved by `move` where the recording recomputes it (a list of tangents: each of them)."""
    if isinstance(value, list):
        return [_moved(v, move) for v in value]
    if value is None or not recomputed(value) or np.asarray(value).dtype.kind != "f":
        return value
    return move(np.asarray(value)).astype(np.asarray(value).dtype)


def _refuse_recording(prim: Primitive, what: str):
    from .staging import NotReplayable
    raise NotReplayable(f"the {what} of the primitive {prim.name!r} computes its derivative with NumPy on values "
                        "the program recomputes (np.asarray(x), a scipy.special function of x), which a program "
                        "would keep as they were at the first x; write the rule with jacobian_lab's primitives "
                        "(multiply(t, cos(x)), never t * np.cos(x))")
