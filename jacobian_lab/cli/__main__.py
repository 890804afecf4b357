"""``python -m jacobian_lab.cli``: the command line, as ``python -m jacobian_lab`` runs it."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
