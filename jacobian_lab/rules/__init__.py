"""The primitive rules, one module per family; importing registers them all."""
from . import cofactor, decompositions, elementwise, linalg, lu, reductions, shape, sparse, special  # noqa: F401
