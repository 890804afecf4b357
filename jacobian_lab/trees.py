"""Structured inputs and outputs: nested tuples, lists and dicts of arrays.

As in JAX, a *tree* is a tuple, list or dict (sorted by key) whose leaves are
arrays; namedtuples and dict subclasses such as OrderedDict come back as
their own type. The harness differentiates structured functions by ravelling: the
leaves of x become one flat vector, f's output leaves one flat vector, and the
flat (m, n) Jacobian is cut into blocks, output structure outside and input
structure inside: ``J[out_leaf][in_leaf].shape == out.shape + in.shape``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def is_tree(value) -> bool:
    return isinstance(value, (tuple, list, dict))


def is_numbers(value) -> bool:
    """A (nested) list or tuple of plain Python numbers, which NumPy users mean as one array."""
    if isinstance(value, (tuple, list)):
        return all(is_numbers(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class TreeDef:
    """The structure of a tree and the shapes of its leaves."""

    kind: type | None              # tuple, list, dict, or None for a leaf
    keys: tuple = ()               # dict keys (sorted) or positions
    children: tuple = ()
    shape: tuple = ()              # leaf shape

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
        children = [c._build(it) for c in self.children]
        if issubclass(self.kind, dict):  # OrderedDict and other mappings take the pairs as one dict
            mapping = dict(zip(self.keys, children))
            return mapping if self.kind is dict else self.kind(mapping)
        if hasattr(self.kind, "_fields"):  # a namedtuple takes its fields as separate arguments
            return self.kind(*children)
        return self.kind(children)


def flatten(tree) -> tuple[list, TreeDef]:
    """(leaves in order, structure). Dict entries are visited in sorted key order."""
    if isinstance(tree, dict):
        keys = _sorted_keys(tree)
        parts = [flatten(tree[k]) for k in keys]
    elif isinstance(tree, (tuple, list)):
        keys = tuple(range(len(tree)))
        parts = [flatten(v) for v in tree]
    else:
        return [tree], TreeDef(None, shape=np.shape(tree))
    leaves = [leaf for part_leaves, _ in parts for leaf in part_leaves]
    return leaves, TreeDef(type(tree), keys, tuple(d for _, d in parts))


def _sorted_keys(tree: dict) -> tuple:
    """A dict's keys in the order its leaves are visited: sorted, as in JAX."""
    try:
        return tuple(sorted(tree))
    except TypeError:
        raise TypeError(f"the keys of a dict in x or in f's output must be sortable (all strings, or all "
                        f"numbers), got {list(tree)}; its leaves are visited in sorted key order") from None


def same_structure(a: TreeDef, b: TreeDef) -> bool:
    if a.kind is None or b.kind is None:
        return a.kind is b.kind and a.shape == b.shape
    return a.kind is b.kind and a.keys == b.keys and all(map(same_structure, a.children, b.children))


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
    """Cut a flat vector (plain or traced) into leaves shaped like `treedef`'s."""
    return [np.reshape(flat[lo:hi], shape) for lo, hi, shape in _spans(treedef)]


def blocks(J, out_def: TreeDef, in_def: TreeDef):
    """Cut a flat (m, n) Jacobian into the nested structure: outputs outside, inputs inside."""
    cols = list(_spans(in_def))
    return out_def.unflatten([
        in_def.unflatten([J[r0:r1, c0:c1].reshape(rs + cs) for c0, c1, cs in cols])
        for r0, r1, rs in _spans(out_def)
    ])
