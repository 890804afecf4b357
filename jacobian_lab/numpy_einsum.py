"""np.einsum on traced arrays, composed from gathers, sums, multiplies and matmuls.

No primitive of its own, so no rule of its own: the derivative and the count
follow from the functions it is written in.

1. The subscripts become one list of labels per operand and one for the output;
   an ellipsis becomes integer labels 0..B-1 for the B broadcast dimensions,
   right-aligned as NumPy aligns them.
2. Each operand alone: a label repeated in it is a diagonal (a gather, 0 flops);
   a size-1 axis facing a larger size elsewhere is dropped (a reshape, 0 flops),
   since the operand is constant along it, which is all NumPy's broadcasting
   means; a label no other operand and not the output holds is summed at once
   (a reduction, L - 1 flops per output).
3. The operands are contracted in pairs, left to right (see `_contract`).
4. The last result is transposed to the output's order (0 flops). One operand
   that sums nothing ('ii->i', 'ij->ji') gives a view of it, as NumPy's does.

Left to right is the order as written: the count of an einsum is then read off
its subscripts alone, and a caller who wants another order writes the operands
in that order (or two einsums). No search for a cheaper order, as NumPy's
`optimize` runs, so `optimize` is accepted and ignored: it changes the order of
the arithmetic, never the value.
"""
from __future__ import annotations

import math

import numpy as np

from . import numpy_api as api
from .numpy_api import implements, is_traced
from .numpy_composites import gather
from .primitives import link_view, primal
from .rules import elementwise as E
from .rules import reductions as R


# --- 1. subscripts -> labels ------------------------------------------------------------
def _term(term, where):
    """'ij...k' -> (labels before '...', whether there is one, labels after)."""
    head, dots, tail = term.partition("...")
    if "." in head + tail:
        raise ValueError("einstein sum subscripts string contains a '.' that is not part of an "
                         f"ellipsis ('...') in {where}")
    head, tail = head.replace(" ", ""), tail.replace(" ", "")
    for c in head + tail:
        if not (c.isascii() and c.isalpha()):
            raise ValueError(f"invalid subscript '{c}' in einstein sum subscripts string, "
                             "subscripts must be letters")
    return list(head), bool(dots), list(tail)


def _from_sublists(args):
    """The interleaved form einsum(a, [0, 1], b, [1, 2], [0, 2]) as a subscripts string."""
    def letters(sublist):
        out = []
        for s in sublist:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)):
                if not 0 <= s < 52:
                    raise ValueError("subscript is not within the valid range [0, 52)")
                out.append(chr(ord("A") + s) if s < 26 else chr(ord("a") + s - 26))  # NumPy's letters
            else:
                raise TypeError("each subscript must be either an integer or an ellipsis")
        return "".join(out)

    operands, sublists = args[0::2], args[1::2]
    subscripts = ",".join(letters(s) for s in sublists[:len(operands)])
    if len(args) % 2:  # an odd count ends with the output's sublist
        subscripts += "->" + letters(args[-1])
        operands = operands[:-1]
    return subscripts, list(operands)


def parse(subscripts, shapes):
    """Per-operand label lists and the output's; ellipsis dimensions are labels 0..B-1."""
    inputs, arrow, output = subscripts.partition("->")
    if "-" in inputs or ">" in inputs:
        raise ValueError("einstein sum subscript string does not contain proper '->' output specified")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einstein sum subscripts string names {len(terms)} operand(s) "
                         f"but einsum was given {len(shapes)}")
    parsed, ranks = [], []
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        head, dots, tail = _term(term, f"operand {i}")
        extra = len(shape) - len(head) - len(tail)  # dimensions the ellipsis stands for
        if extra < 0:
            raise ValueError(f"einstein sum subscripts string contains too many subscripts for operand {i}")
        if extra and not dots:
            raise ValueError("operand has more dimensions than subscripts given in einstein sum, "
                             "but no '...' ellipsis provided to broadcast the extra dimensions.")
        parsed.append((head, extra, tail))
        ranks.append(extra)
    B = max(ranks, default=0)
    labels = [head + list(range(B - extra, B)) + tail for head, extra, tail in parsed]
    letters = [c for head, _, tail in parsed for c in head + tail]
    if not arrow:  # implicit: the broadcast dimensions, then letters seen once, in code order
        return labels, list(range(B)) + sorted(c for c in set(letters) if letters.count(c) == 1)
    head, dots, tail = _term(output, "the output")
    if B and not dots:  # NumPy does not sum broadcast dimensions away: the output must name them
        raise ValueError("output has more dimensions than subscripts given in einstein sum, but no '...' "
                         "ellipsis provided to broadcast the extra dimensions.")
    for c in head + tail:
        if (head + tail).count(c) > 1:
            raise ValueError(f"einstein sum subscripts string includes output subscript '{c}' multiple times")
        if c not in letters:
            raise ValueError(f"einstein sum subscripts string included output subscript '{c}' "
                             "which never appeared in an input")
    return labels, head + list(range(B)) + tail


def _name(label):
    return f"'{label}'" if isinstance(label, str) else "'...'"


def label_sizes(labels, shapes):
    """Each label's size; a size 1 in one operand broadcasts against n in another (as NumPy)."""
    sizes = {}
    for i, (ls, shape) in enumerate(zip(labels, shapes)):
        own = {}
        for label, n in zip(ls, shape):
            if own.setdefault(label, n) != n:  # a diagonal needs equal sizes: no broadcasting
                raise ValueError(f"dimensions in operand {i} for collapsing index {_name(label)} "
                                 f"don't match ({own[label]} != {n})")
        for label, n in own.items():
            seen = sizes.setdefault(label, (n, i))
            if seen[0] == 1 and n != 1:
                sizes[label] = (n, i)
            elif n not in (1, seen[0]):
                raise ValueError(f"operands could not be broadcast together: subscript {_name(label)} has "
                                 f"size {seen[0]} in operand {seen[1]} and {n} in operand {i}")
    return {label: n for label, (n, _) in sizes.items()}


# --- 2. one operand -----------------------------------------------------------------
def _diagonal(x, labels):
    """Repeated labels -> one axis each (x[i, i, j] for 'iij'): a gather of flat positions."""
    unique = list(dict.fromkeys(labels))
    if len(unique) == len(labels):
        return x, labels
    shape = dict(zip(labels, np.shape(x)))
    # index of each unique label, as an axis of its own broadcast against the others
    grids = np.ix_(*(np.arange(shape[u]) for u in unique)) if unique else ()
    positions = np.arange(np.size(x)).reshape(np.shape(x))[tuple(grids[unique.index(l)] for l in labels)]
    return gather(x, positions), unique


def _drop_broadcast(x, labels, sizes):
    """Remove the size-1 axes that stand against a larger size: x is constant along them."""
    keep = [i for i, label in enumerate(labels) if np.shape(x)[i] == sizes[label]]
    if len(keep) == len(labels):
        return x, labels
    return api.reshape(x, tuple(np.shape(x)[i] for i in keep)), [labels[i] for i in keep]


def _sum_out(x, labels, needed):
    """Sum the labels nobody else needs now: fewer values to carry into the products."""
    axes = tuple(i for i, label in enumerate(labels) if label not in needed)
    if not axes:
        return x, labels
    return api._reduction(R.sum, x, axes), [label for label in labels if label in needed]


# --- 3. two operands ---------------------------------------------------------------
def _transpose(x, labels, order):
    return api.transpose(x, [labels.index(label) for label in order])


def _contract(a, la, b, lb, needed, sizes):
    """a and b summed over the labels they share that nothing after needs.

    Shared labels still needed are batch labels; a's other labels become the
    rows, b's the columns. One matmul (batch, m, k) @ (batch, k, n) at 2·m·k·n
    flops per batch entry. With nothing to sum (k = 1) it is an outer product
    per batch entry, done as a broadcast multiply: one flop per output, what
    np.outer and `*` cost, half the 2·m·1·n of matmul's convention.
    """
    batch = [label for label in la if label in lb and label in needed]
    summed = [label for label in la if label in lb and label not in needed]
    # By construction a label held by one side only is still needed (step 2 summed it otherwise).
    left = [label for label in la if label not in lb]
    right = [label for label in lb if label not in la]

    def dims(ls):
        return tuple(sizes[label] for label in ls)

    out = batch + left + right
    if not summed:
        a = api.reshape(_transpose(a, la, batch + left), dims(batch + left) + (1,) * len(right))
        b = api.reshape(_transpose(b, lb, batch + right), dims(batch) + (1,) * len(left) + dims(right))
        return E.multiply(a, b), out
    m, k, n = (math.prod(dims(ls)) for ls in (left, summed, right))
    lead = (math.prod(dims(batch)),) if batch else ()  # no batch: a plain matrix product
    a = api.reshape(_transpose(a, la, batch + left + summed), lead + (m, k))
    b = api.reshape(_transpose(b, lb, batch + summed + right), lead + (k, n))
    return api.reshape(api.matmul(a, b), dims(out)), out


# --- the function ---------------------------------------------------------------------
def _common_dtype(operands):
    """NumPy computes in the operands' common type: plain operands are cast to it up front, by the primitive, so
    that a program recomputes the cast of an operand it recomputes (under jit, an argument)."""
    arrays = [api.as_array(v) for v in operands]
    dtype = np.result_type(*(primal(v) for v in arrays))
    return [v if is_traced(v) else E.as_float_dtype(v, dtype) for v in arrays]


def _cast(i, operand, dtype, casting):
    """`operand` (the i-th) when `casting` takes it to `dtype`; NumPy's TypeError if not."""
    have = np.result_type(primal(operand))
    if not np.can_cast(have, dtype, casting):
        raise TypeError(f"Iterator operand {i} dtype could not be cast from {have!r} to {np.dtype(dtype)!r} "
                        f"according to the rule {casting!r}")
    return operand


@implements(np.einsum)
def einsum(*operands, out=None, optimize=False, dtype=None, order="K", casting="safe"):
    """np.einsum: subscripts or the interleaved form; `optimize` ignored (same value).

    >>> import numpy as np, jacobian_lab as jl
    >>> B = np.ones((3, 4))
    >>> jl.count_flops(lambda A: np.einsum("ij,jk->ik", A, B), np.ones((2, 3)))  # 2·m·k·n
    Cost(flops=48, transcendentals=0)
    """
    api._reject("einsum", None if order == "K" else order, f"order={order!r}")
    if not operands:
        raise ValueError("must specify the einstein sum subscripts string and at least one operand")
    if isinstance(operands[0], str):
        subscripts, operands = operands[0], list(operands[1:])
    else:
        subscripts, operands = _from_sublists(operands)
    if dtype is not None:  # NumPy computes in the dtype asked for, cast to it under `casting`
        operands = [api.in_dtype("einsum", _cast(i, v, dtype, casting), dtype) for i, v in enumerate(operands)]
    operands = _common_dtype(operands)
    labels, output = parse(subscripts, [np.shape(v) for v in operands])
    sizes = label_sizes(labels, [np.shape(v) for v in operands])

    xs = [_drop_broadcast(*_diagonal(x, ls), sizes) for x, ls in zip(operands, labels)]
    # Only after the drops: a label that broadcast in one operand may now belong to one alone.
    for i, (x, ls) in enumerate(xs):
        elsewhere = set(output).union(*(other for j, (_, other) in enumerate(xs) if j != i))
        xs[i] = _sum_out(x, ls, elsewhere)
    result, have = xs[0]
    for i in range(1, len(xs)):
        later = set(output).union(*(ls for _, ls in xs[i + 1:]))
        result, have = _contract(result, have, *xs[i], later, sizes)
    result = _transpose(result, have, output)
    if len(operands) == 1 and set(labels[0]) <= set(output) and result is not operands[0]:
        _link(result, operands[0], subscripts)
    return result


def _link(result, operand, subscripts):
    """NumPy's einsum of one operand that sums nothing ('ii->i', 'ij->ji') is a writeable view of it:
    linked as one, so that a write into either reaches the other."""
    owner = getattr(operand, "_owner", None)
    if is_traced(result) and getattr(result, "_owner", None) is not (operand if owner is None else owner):
        link_view(result, operand, (lambda value: einsum(subscripts, value), {}))
