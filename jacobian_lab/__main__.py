"""``python -m jacobian_lab``: the ``jacobian-lab`` command line."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
