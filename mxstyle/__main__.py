"""``python -m mxstyle COMMAND ...``: the ``mxstyle`` command (mxstyle/cli/__init__.py)."""
import sys

from .cli import main

if __name__ == "__main__":  # worker processes of `train` re-import this module
    sys.exit(main())
