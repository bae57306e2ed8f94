#!/usr/bin/env python
"""Measure the quality of style models against the slow, exact method (Gatys et al.): ``mxstyle evaluate`` run from a checkout (mxstyle/cli/evaluate.py); ``--help`` lists the options."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mxstyle.cli import evaluate, run  # noqa: E402  (light: the heavy modules are imported inside main)

if __name__ == "__main__":
    sys.exit(run(evaluate.main))
