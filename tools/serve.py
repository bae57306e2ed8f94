#!/usr/bin/env python
"""Serve style models over HTTP (web page, API, metrics, Open Inference Protocol): ``mxstyle serve`` run from a checkout (mxstyle/cli/serve.py); ``--help`` lists the options."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mxstyle.cli import run, serve  # noqa: E402  (light: the heavy modules are imported inside main)

if __name__ == "__main__":
    sys.exit(run(serve.main))
