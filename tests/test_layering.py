"""The stages import only what they need: the runtime does not pull in the exporter or the
training code, and light modules load no MXNet (checked in a fresh interpreter each)."""
import subprocess
import sys

import pytest


def _loaded_after(statement):
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_the_runtime_imports_neither_the_exporter_nor_training():
    loaded = _loaded_after("import mxstyle.runtime; mxstyle.runtime.Stylizer")
    assert not {m for m in loaded if m.startswith(("mxstyle.export", "mxstyle.training"))}
    assert "mxnet" not in loaded  # MXNet loads only when the MXNet backend is chosen


@pytest.mark.parametrize("module", ["mxstyle", "mxstyle.model_folder", "mxstyle.files", "mxstyle.values",
                                    "mxstyle.cli", "mxstyle.io", "mxstyle.serve", "mxstyle.triton_repo"])
def test_light_modules_load_no_mxnet(module):
    assert "mxnet" not in _loaded_after(f"import {module}")
