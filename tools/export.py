#!/usr/bin/env python
"""Export a trained style network as a model folder: MXNet symbol, ONNX, optional int8, model card: ``mxstyle export`` run from a checkout (mxstyle/cli/export.py); ``--help`` lists the options."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mxstyle.cli import export, run  # noqa: E402  (light: the heavy modules are imported inside main)

if __name__ == "__main__":
    sys.exit(run(export.main))
