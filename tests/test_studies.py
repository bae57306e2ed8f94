"""The quality studies in studies/ run end to end (on a tiny model and photo, random VGG weights):
they are scripts whose numbers go into the docs, so they must keep working."""
import json
import subprocess
import sys
from pathlib import Path

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
    assert record["working_over_full"]["style"] > 0
    assert len(record["crops"]) == 2
    for k in (1, 2):  # photo | every pixel | guided | bilinear, side by side
        crop = io.read_image(out / f"crop_{k}.jpg")
        assert crop.shape == (64, 4 * 64 + 3 * 6, 3)
    assert "working / every pixel" in (tmp_path / "r.md").read_text()
