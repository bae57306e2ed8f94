#!/usr/bin/env python
"""Stylize one photo by optimization (Gatys et al. 2015): slow, exact, no training needed: ``mxstyle optimize`` run from a checkout (mxstyle/cli/optimize.py); ``--help`` lists the options."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mxstyle.cli import optimize, run  # noqa: E402  (light: the heavy modules are imported inside main)

if __name__ == "__main__":
    sys.exit(run(optimize.main))
