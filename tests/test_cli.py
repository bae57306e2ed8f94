"""The ``mxstyle`` command and its tools/*.py fronts; the package as a wheel installs it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mxstyle import io
from mxstyle.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]


def _mxstyle(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "mxstyle", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def test_help_lists_every_command_and_unknown_commands_exit_2():
    proc = _mxstyle("--help")
    assert proc.returncode == 0
    for name in ("stylize", "optimize", "train", "export", "evaluate"):
        assert f"  {name}" in proc.stdout
    proc = _mxstyle("paint")
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown command 'paint'")
    assert _mxstyle().returncode == 2  # no command: the usage, and a failure status
    assert _mxstyle("--version").stdout.startswith("mxstyle ")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_and_its_tool_show_the_same_options(name):
    via_module = _mxstyle(name, "--help")
    via_tool = subprocess.run([sys.executable, str(ROOT / "tools" / f"{name}.py"), "--help"], capture_output=True,
                              text=True, timeout=300)
    assert via_module.returncode == 0 and via_tool.returncode == 0, via_module.stderr + via_tool.stderr
    assert via_module.stdout.startswith(f"usage: mxstyle {name}")
    options = lambda text: sorted({w for w in text.split() if w.startswith("--")})  # noqa: E731
    assert options(via_module.stdout) == options(via_tool.stdout)


def test_stylize_without_a_photo_paints_the_shipped_sample(tmp_path):
    proc = _mxstyle("stylize", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / "chelsea_styled.jpg"
    assert f"wrote {Path('out') / 'chelsea_styled.jpg'}" in proc.stdout
    sample = io.read_image(ROOT / "mxstyle" / "samples" / "chelsea.jpg")
    styled = io.read_image(out)
    assert styled.shape == sample.shape
    assert abs(styled - sample).mean() > 10  # painted, not copied


def test_user_errors_are_one_line_with_status_2(tmp_path):
    proc = _mxstyle("stylize", "--model", "no-such-model", "--out", tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: model 'no-such-model' not found")


def test_the_installed_package_finds_its_models_and_sample_from_anywhere(tmp_path):
    """Build and install the package (not editable) into a folder, then use it from another one:
    the shipped models and the sample photo must come with it."""
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-compile", "--target", str(target), str(ROOT)], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0 and "No module named setuptools" in proc.stderr + proc.stdout:
        pytest.skip("setuptools is not installed in this environment")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (target / "mxstyle" / "shipped_models" / "langlois" / "model.json").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target))
    env.pop("MXSTYLE_MODELS", None)
    code = ("import mxstyle, pathlib; print(pathlib.Path(mxstyle.__file__).parent.parent); "
            "print(','.join(mxstyle.list_models())); "
            "print(mxstyle.Stylizer().stylize(pathlib.Path(mxstyle.__file__).parent / 'samples' / 'chelsea.jpg').shape)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=elsewhere,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    where, names, shape = proc.stdout.strip().splitlines()[-3:]
    assert Path(where) == target  # the installed copy, not this checkout
    assert set(names.split(",")) >= {"langlois", "night_cafe", "church_auvers", "tarascon"}
    assert shape == "(300, 451, 3)"
