"""Structured inputs and outputs: nested tuples, lists and dicts of arrays.

As in JAX, a *tree* is a tuple, list or dict (sorted by key) whose leaves are
arrays, and None is an empty node; namedtuples and dict subclasses such as
OrderedDict (kept in its own order) and defaultdict come back as their own
type. The harness differentiates structured functions by ravelling: the
leaves of x become one flat vector, f's output leaves one flat vector, and the
flat (m, n) Jacobian is cut into blocks, output structure outside and input
structure inside: ``J[out_leaf][in_leaf].shape == out.shape + in.shape``.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np


def is_tree(value) -> bool:
    return isinstance(value, (tuple, list, dict))


def is_numbers(value) -> bool:
    """A (nested) list or tuple of plain Python numbers or NumPy's real scalars (np.float32(1.0)), which
    NumPy users mean as one array (a namedtuple's fields are named: it stays a tree). One that holds no
    number (``()``, ``[[]]``) is an empty tree, as in JAX, not an empty array."""
    if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
        return bool(value) and all(is_numbers(v) for v in value)
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass(frozen=True)
class TreeDef:
    """The structure of a tree and the shapes of its leaves."""

    kind: type | None              # tuple, list, dict, or None for a leaf
    keys: tuple = ()               # dict keys (sorted) or positions
    children: tuple = ()
    shape: tuple = ()              # leaf shape
    factory: object = None         # a defaultdict's default_factory

    @property
    def leaves(self) -> list["TreeDef"]:
        return [self] if self.kind is None else [leaf for c in self.children for leaf in c.leaves]

    @property
    def size(self) -> int:
        return sum(int(np.prod(leaf.shape, dtype=np.int64)) for leaf in self.leaves)

    def unflatten(self, leaves):
        """Rebuild the tree from leaves in order."""
        it = iter(leaves)
        return self._build(it)

    def _build(self, it):
        if self.kind is None:
            return next(it)
        if self.kind is type(None):
            return None
        children = [c._build(it) for c in self.children]
        if issubclass(self.kind, dict):
            return mapping(self.kind, zip(self.keys, children), self.factory)
        return sequence(self.kind, children)


def mapping(kind: type, pairs, factory=None) -> dict:
    """A dict of type `kind` holding `pairs`: a defaultdict takes its default_factory first, another
    dict subclass one dict (as most of their constructors take)."""
    entries = dict(pairs)
    if kind is dict:
        return entries
    return kind(factory, entries) if issubclass(kind, collections.defaultdict) else kind(entries)


def sequence(kind: type, items):
    """A tuple or list of type `kind` holding `items`: a namedtuple takes them as separate arguments."""
    return kind(*items) if hasattr(kind, "_fields") else kind(items)


def flatten(tree) -> tuple[list, TreeDef]:
    """(leaves in order, structure). Dict entries are visited in sorted key order."""
    if isinstance(tree, dict):
        keys = _sorted_keys(tree)
        parts = [flatten(tree[k]) for k in keys]
    elif isinstance(tree, (tuple, list)):
        keys = tuple(range(len(tree)))
        parts = [flatten(v) for v in tree]
    elif tree is None:  # as in JAX, an empty node: an optional entry that is absent
        return [], TreeDef(type(None))
    else:
        return [tree], TreeDef(None, shape=np.shape(tree))
    leaves = [leaf for part_leaves, _ in parts for leaf in part_leaves]
    return leaves, TreeDef(type(tree), keys, tuple(d for _, d in parts), factory=getattr(tree, "default_factory", None))


def _sorted_keys(tree: dict) -> tuple:
    """A dict's keys in the order its leaves are visited: sorted, as in JAX, except an OrderedDict's,
    whose order is its own (JAX keeps it too)."""
    if isinstance(tree, collections.OrderedDict):
        return tuple(tree)
    try:
        return tuple(sorted(tree))
    except TypeError:
        raise TypeError(f"the keys of a dict in x or in f's output must be sortable (all strings, or all "
                        f"numbers), got {list(tree)}; its leaves are visited in sorted key order") from None


def difference(got: TreeDef, expected: TreeDef, path: str = "") -> str | None:
    """Where `got` first differs from `expected`, in words (``at ['W']: an array of shape (3,) where
    (2, 3) is expected``), or None if they have the same structure and leaf shapes."""
    where = f"at {path}" if path else "at the top"
    if got.kind is None and expected.kind is None:
        return None if got.shape == expected.shape else (
            f"{where}: an array of shape {got.shape} where {expected.shape} is expected")
    if got.kind is not expected.kind:
        return f"{where}: {_named(got)} where {_named(expected)} is expected"
    if got.keys != expected.keys:
        what = "keys" if issubclass(got.kind, dict) else "length"
        shown = (lambda d: list(d.keys)) if what == "keys" else (lambda d: len(d.keys))
        return f"{where}: {what} {shown(got)} where {shown(expected)} {'are' if what == 'keys' else 'is'} expected"
    for key, a, b in zip(got.keys, got.children, expected.children):
        found = difference(a, b, f"{path}[{key!r}]")
        if found is not None:
            return found
    return None


def paths(treedef: TreeDef, path: str = "") -> list[str]:
    """Where each leaf sits, in leaf order, as `difference` writes it: ``["['b'][0]", ...]``."""
    if treedef.kind is None:
        return [path]
    return [p for key, child in zip(treedef.keys, treedef.children) for p in paths(child, f"{path}[{key!r}]")]


def _named(d: TreeDef) -> str:
    if d.kind is None:
        return f"an array of shape {d.shape}"
    if d.kind is type(None):
        return "None"
    return with_article(d.kind.__name__)


def with_article(name: str) -> str:
    """A type's name for a message: "an OrderedDict", "an int", "a list"."""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def ravel(leaves):
    """One flat vector of all leaves (traced leaves give a traced vector); every leaf must hold floats."""
    for leaf in leaves:
        # concatenate would promote an integer or boolean leaf to float, and its block of the Jacobian
        # would read as zeros; a single array of that dtype is refused, so is such a leaf
        if leaf.dtype.kind != "f":
            raise TypeError(
                f"f returned a structure holding an array of dtype {leaf.dtype}; every entry must hold "
                "floats. An integer, boolean or object result has no derivative (was it rounded, compared "
                "or cast?)"
            )
    return np.concatenate([np.ravel(leaf) for leaf in leaves])


def _spans(treedef: TreeDef):
    lo = 0
    for leaf in treedef.leaves:
        hi = lo + int(np.prod(leaf.shape, dtype=np.int64))
        yield lo, hi, leaf.shape
        lo = hi


def split(flat, treedef: TreeDef) -> list:
    """Cut a flat vector (plain or traced) into leaves shaped like `treedef`'s; along its last axis, a
    batch of k vectors (k, size) into leaves (k, *shape)."""
    lead = np.shape(flat)[:-1]
    return [np.reshape(flat[..., lo:hi], lead + shape) for lo, hi, shape in _spans(treedef)]


def blocks(J, out_def: TreeDef, in_def: TreeDef):
    """Cut a flat (m, n) Jacobian into the nested structure: outputs outside, inputs inside."""
    cols = list(_spans(in_def))
    return out_def.unflatten([
        in_def.unflatten([J[r0:r1, c0:c1].reshape(rs + cs) for c0, c1, cs in cols])
        for r0, r1, rs in _spans(out_def)
    ])
