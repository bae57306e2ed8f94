"""Gatys optimization: descent, options, colors, the command line and its errors."""
import json
import subprocess
import sys
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from conftest import needs_real_weights
from mxstyle import ConfigError, ImageError, color, io
from mxstyle.losses import LossConfig
from mxstyle.optimize import stylize_gatys

ROOT = Path(__file__).resolve().parents[1]
SMALL = LossConfig(content_layers=("relu2_2",), style_layers=("relu1_1", "relu2_1"), tv_weight=1.0)


def run(content, style, **kwargs):
    options = dict(size=40, iters=6, config=SMALL, vgg_weights=None, progress=False)
    options.update(kwargs)
    mx.random.seed(0)
    return stylize_gatys(content, style, **options)


def assert_non_increasing(history):
    values = [h["loss"] for h in history]
    # slack: a float32 loss over ~4e4 terms is evaluated to about sqrt(4e4) ulps = 2e-5
    assert all(b <= a * (1 + 1e-5) for a, b in zip(values, values[1:])), values


def test_lbfgs_loss_falls_monotonically(photo, painting):
    result = run(photo, painting, iters=8)
    assert len(result.history) >= 5
    assert_non_increasing(result.history)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.image.shape == (30, 40, 3) and result.image.dtype == np.float32
    assert 0 <= result.image.min() and result.image.max() <= 255
    assert set(result.history[0]) >= {"iter", "loss", "content", "style", "tv", "seconds"}


def test_adam_reduces_the_loss(photo, painting):
    result = run(photo, painting, optimizer="adam", iters=10, lr=5.0)
    assert len(result.history) == 10
    assert result.history[-1]["loss"] < result.history[0]["loss"]


@pytest.mark.parametrize("init", ["content", "noise", "style"])
def test_each_init_starts_somewhere_else(photo, painting, init):
    result = run(photo, painting, init=init, iters=1)
    assert result.image.shape == (30, 40, 3)


def test_init_content_starts_at_zero_content_loss(photo, painting):
    first = run(photo, painting, init="content", iters=1).history[0]
    noise = run(photo, painting, init="noise", iters=1).history[0]
    assert first["content"] < noise["content"]


def test_seed_makes_noise_init_reproducible(photo, painting):
    a = run(photo, painting, init="noise", iters=2, seed=5).image
    b = run(photo, painting, init="noise", iters=2, seed=5).image
    np.testing.assert_array_equal(a, b)


def test_preserve_colors_keeps_the_photos_chroma(photo, painting):
    result = run(photo, painting, preserve_colors=True)
    small_photo = io.resize_max_side(photo, 40)
    yiq_out, yiq_photo = color.rgb_to_yiq(result.image), color.rgb_to_yiq(small_photo)
    # chroma (I, Q) comes from the photo wherever the result is not clipped to [0, 255]
    inside = (result.image > 1).all(2) & (result.image < 254).all(2)
    np.testing.assert_allclose(yiq_out[inside][:, 1:], yiq_photo[inside][:, 1:], atol=0.5)


def test_several_styles_blend(photo, painting):
    flat = np.full_like(painting, 128.0)
    only_painting = run(photo, [painting, flat], style_blend_weights=[1, 0], iters=1).history[0]
    single = run(photo, painting, iters=1).history[0]
    assert only_painting["style"] == pytest.approx(single["style"], rel=1e-4)
    mixed = run(photo, [painting, flat], style_blend_weights=[1, 1], iters=1).history[0]
    assert mixed["style"] != pytest.approx(single["style"], rel=1e-3)


def test_style_scale_changes_the_style_target(photo, painting):
    a = run(photo, painting, iters=1, style_scale=1.0).history[0]["style"]
    b = run(photo, painting, iters=1, style_scale=0.5).history[0]["style"]
    assert a != pytest.approx(b, rel=1e-3)


@pytest.mark.parametrize("options,match", [
    (dict(optimizer="sgd"), "optimizer"), (dict(init="zeros"), "init"), (dict(size=8), "size"),
    (dict(iters=0), "iters"), (dict(style_scale=0), "style_scale"),
    (dict(style_blend_weights=[1, 2]), "blend"),
])
def test_bad_options_are_config_errors(photo, painting, options, match):
    with pytest.raises(ConfigError, match=match):
        run(photo, painting, **options)


def test_bad_image_is_an_image_error(tmp_path, painting):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(ImageError, match="broken.jpg"):
        run(str(bad), painting)


def test_command_line_writes_image_history_and_plot(tmp_path, photo, painting, random_vgg_file):
    from mxstyle.cli import optimize as tool

    io.write_image(tmp_path / "photo.png", photo)
    io.write_image(tmp_path / "painting.png", painting)
    out = tmp_path / "result" / "out.jpg"
    code = tool.main(["--content", str(tmp_path / "photo.png"), "--style", str(tmp_path / "painting.png"),
                      "--out", str(out), "--size", "40", "--iters", "4", "--vgg-weights", str(random_vgg_file),
                      "--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1", "--no-progress"])
    assert code is None or code == 0
    assert io.read_image(out).shape == (30, 40, 3)
    record = json.loads((tmp_path / "result" / "out.loss.json").read_text())
    assert record["iters"] == 4 and len(record["history"]) >= 3
    assert (tmp_path / "result" / "out.loss.png").stat().st_size > 1000


def test_command_line_error_is_one_line_without_traceback(tmp_path, random_vgg_file):
    (tmp_path / "empty.jpg").write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "optimize.py"), "--content", str(tmp_path / "empty.jpg"),
         "--style", str(tmp_path / "empty.jpg"), "--out", str(tmp_path / "o.jpg"),
         "--vgg-weights", str(random_vgg_file), "--no-progress"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:") and "empty.jpg" in proc.stderr
    assert not (tmp_path / "o.jpg").exists()


def test_command_line_refuses_an_unknown_layer(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "optimize.py"), "--content", "a.jpg", "--style", "b.jpg",
         "--out", "o.jpg", "--style-layers", "relu1_1,pool9"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "pool9" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.weights
@needs_real_weights
def test_real_vgg_lbfgs_descends_and_moves_towards_the_style(photo, painting):
    result = stylize_gatys(photo, painting, size=64, iters=12, progress=False)
    assert_non_increasing(result.history)
    first, last = result.history[0], result.history[-1]
    assert last["loss"] < 0.5 * first["loss"]
    assert last["style"] < 0.5 * first["style"]


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_snapshots_are_the_iterates_asked_for(photo, painting, optimizer):
    result = run(photo, painting, optimizer=optimizer, iters=6, snapshots=(0, 2, 6))
    assert sorted(result.snapshots) == [0, 2, 6]
    start = io.resize_max_side(io.read_image(photo), 40)
    assert np.abs(result.snapshots[0] - start).max() < 1e-3  # init="content": iteration 0 is the photo
    assert np.array_equal(result.snapshots[6], result.image)  # the last iterate is the result
    assert not np.array_equal(result.snapshots[2], result.snapshots[6])
    assert run(photo, painting, iters=3).snapshots == {}


def test_snapshots_outside_the_run_are_refused(photo, painting):
    with pytest.raises(ConfigError, match="snapshots"):
        run(photo, painting, iters=3, snapshots=(4,))
