"""The primitive rules, one module per family; importing registers them all."""
from . import elementwise, linalg, reductions, shape, special  # noqa: F401  (registration)
