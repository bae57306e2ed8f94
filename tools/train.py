#!/usr/bin/env python
"""Train a fast feed-forward style network on a folder of photos: ``mxstyle train`` run from a checkout (mxstyle/cli/train.py); ``--help`` lists the options."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mxstyle.cli import train, run  # noqa: E402  (light: the heavy modules are imported inside main)

if __name__ == "__main__":  # the photo-loading workers re-import this file: keep work in main()
    sys.exit(run(train.main))
