"""The quality studies in studies/ run end to end (on a tiny model and photo, random VGG weights):
they are scripts whose numbers go into the docs, so they must keep working."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mxstyle import io
from tiny_model import photo

ROOT = Path(__file__).resolve().parents[1]


def test_working_resolution_study_writes_crops_and_numbers(tiny_export, random_vgg_file, tmp_path):
    model = tiny_export("johnson_s8_skip")[1]
    source = tmp_path / "photo.png"
    io.write_image(source, photo(150, 200))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "studies" / "working_resolution.py"), "--photo", str(source),
                           "--size", "320x240", "--model", str(model), "--work-side", "96", "--crops", "2",
                           "--crop-side", "64", "--out", str(out), "--vgg-weights", str(random_vgg_file),
                           "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["size"] == [320, 240] and record["work_side"] == 96
    for label in ("full", "working", "bilinear"):
        assert set(record["losses_at_512"][label]) == {"content_relu2_2", "content_relu4_2", "style"}
        assert set(record["losses_at_100_percent_crops"][label]) == {"content_relu2_2", "content_relu4_2", "style"}
    assert record["working_over_full"]["style"] > 0
    assert len(record["crops"]) == 2
    for k in (1, 2):  # photo | every pixel | guided | bilinear, side by side
        crop = io.read_image(out / f"crop_{k}.jpg")
        assert crop.shape == (64, 4 * 64 + 3 * 6, 3)
    assert "working / every pixel" in (tmp_path / "r.md").read_text() and "at 100%" in (tmp_path / "r.md").read_text()


def test_training_curve_study_measures_every_checkpoint(random_vgg_file, tmp_path):
    from mxstyle.training import TrainOptions, train

    photos = tmp_path / "photos"
    for i in range(3):
        io.write_image(photos / f"p{i}.png", photo(64, 72, seed=i))
    io.write_image(tmp_path / "style.png", photo(48, 48, seed=9))
    run = tmp_path / "run"
    train(TrainOptions(style=str(tmp_path / "style.png"), data=str(photos), out=str(run), steps=2, batch_size=1,
                       image_size=32, checkpoint_every=1, keep_checkpoints=0, workers=0, progress=False,
                       vgg_weights=random_vgg_file, preview_size=48))
    out = tmp_path / "not_yet" / "curve"  # the study makes the folders
    command = [sys.executable, str(ROOT / "studies" / "training_curve.py"), str(run), "--photos", str(photos),
               "--size", "64", "--gatys-iters", "3", "--vgg-weights", str(random_vgg_file),
               "--cache", str(tmp_path / "cache"), "--label", "tiny", "--offset", "100",
               "--json", str(out.with_suffix(".json")), "--markdown", str(out.with_suffix(".md")),
               "--plot", str(out.with_suffix(".png"))]
    proc = subprocess.run(command + ["--compute-gatys"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    points = json.loads(out.with_suffix(".json").read_text())
    assert [(p["run"], p["step"], p["run_step"]) for p in points] == [("tiny", 101, 1), ("tiny", 102, 2)]
    for p in points:
        assert [r["photo"] for r in p["rows"]] == ["p0.png", "p1.png", "p2.png"]
        assert all("style_gatys_iters" in r and r["content_relu4_2_ratio"] > 0 for r in p["rows"])
        assert p["minutes"] is not None and p["minutes"] >= 0
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "| tiny | 102 |" in out.with_suffix(".md").read_text()
    # from the cache alone (the default) the numbers are the same, and only the steps asked for
    proc = subprocess.run(command + ["--steps", "2"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads(out.with_suffix(".json").read_text())
    assert [p["step"] for p in again] == [102] and again[0]["rows"] == points[1]["rows"]


def test_crops_study_cuts_the_same_window_from_photo_and_results(tiny_export, tmp_path):
    models = [str(tiny_export(arch)[1]) for arch in ("johnson_lite", "johnson_s8_skip")]
    source = tmp_path / "photo.png"
    io.write_image(source, photo(96, 128))
    out = tmp_path / "crops.png"  # lossless, to compare pixels
    proc = subprocess.run([sys.executable, str(ROOT / "studies" / "crops.py"), str(source), str(source),
                           "--models", *models, "--side", "48", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sheet = io.read_image(out)
    assert sheet.shape == (2 * 48 + 6, 3 * 48 + 2 * 6, 3)  # 2 photos x (photo, 2 models)
    sys.path.insert(0, str(ROOT))
    from studies.working_resolution import detailed_windows
    (y, x), = detailed_windows(photo(96, 128), 48, 1)
    np.testing.assert_allclose(sheet[:48, :48], photo(96, 128)[y:y + 48, x:x + 48], atol=0.51)
    proc = subprocess.run([sys.executable, str(ROOT / "studies" / "crops.py"), str(source), "--models", *models,
                           "--side", "200", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "smaller than --side 200" in proc.stderr
