"""Command line: ``python -m chronoslib train|bench|evaluate ...``.

Every command prints a one-line error and exits with status 2 on bad input (no traceback).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")      # before numpy / torch are imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402

from .cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
