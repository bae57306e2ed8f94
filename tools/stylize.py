#!/usr/bin/env python
"""Stylize photos with a style model: ``mxstyle stylize`` run from a checkout (mxstyle/cli/stylize.py); ``--help`` lists the options."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mxstyle.cli import run, stylize  # noqa: E402  (light: the heavy modules are imported inside main)

if __name__ == "__main__":
    sys.exit(run(stylize.main))
