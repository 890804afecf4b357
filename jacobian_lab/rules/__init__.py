"""The primitive rules, one module per family; importing registers them all."""
from . import (cofactor, decompositions, elementwise, linalg, lu, reductions, shape, sorting,  # noqa: F401
               sparse, special)
