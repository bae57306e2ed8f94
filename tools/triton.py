#!/usr/bin/env python
"""Write a Triton model repository (config.pbtxt + model.onnx) for exported models: ``mxstyle triton`` run from a checkout (mxstyle/cli/triton.py); ``--help`` lists the options."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mxstyle.cli import run, triton  # noqa: E402  (light: the heavy modules are imported inside main)

if __name__ == "__main__":
    sys.exit(run(triton.main))
