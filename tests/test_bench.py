"""bench/run.py: the JSON schema of ``--quick`` on a tiny model, the size parsing, the PyTorch
eager port agreeing with onnxruntime. Benchmarks measure speed; these tests assert no timing."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tiny_model import photo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import run as bench_run  # noqa: E402
from torch_eager import TorchEagerNet, torch_available  # noqa: E402

RECORD_KEYS = {"model", "backend", "precision", "height", "width", "median_s", "p90_s", "min_s",
               "peak_rss_mb", "gflops_per_s", "psnr_vs_fp32", "under_target", "peak_fraction"}


@pytest.fixture(scope="module")
def tiny(tiny_export):
    return tiny_export()[1]


def test_sizes_parse_as_photos_are_named():
    assert bench_run.parse_size("1024") == (1024, 1024)
    assert bench_run.parse_size("4000x3000") == (3000, 4000)  # width x height
    for bad in ("big", "4000x", "4x4"):
        with pytest.raises(argparse.ArgumentTypeError, match="size"):
            bench_run.parse_size(bad)


def test_quick_includes_a_size_of_a_megapixel_or_more():
    args = bench_run.parse_args(["--quick"])
    assert max(h * w for h, w in args.sizes) >= 1024 * 1024
    assert args.repeats <= 2 and args.end_to_end is None and args.reference == "onnxruntime"


def test_quick_run_writes_the_record_schema(tiny, tmp_path):
    out = tmp_path / "bench.json"
    md, png = tmp_path / "bench.md", tmp_path / "bench.png"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--models", str(tiny),
                           "--backends", "onnxruntime", "mxnet", "--reference", "mxnet", "--no-costs", "--json", str(out),
                           "--markdown", str(md), "--plot", str(png)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["peak_gflops_per_s"] > 0
    records = [r for r in data["records"] if r["kind"] == "latency"]
    engines = {(r["backend"], r["precision"]) for r in records}
    assert engines == {("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("mxnet", "fp32"), ("mxnet", "int8")}
    assert {(r["height"], r["width"]) for r in records} == {(256, 256), (1024, 1024)}
    for r in records:
        assert RECORD_KEYS <= set(r), RECORD_KEYS - set(r)
        assert r["model"] == "tiny"
        assert 0 < r["min_s"] <= r["median_s"] <= r["p90_s"]
        assert r["peak_rss_mb"] > 0 and r["gflops_per_s"] > 0
        assert r["under_target"] == (r["median_s"] < 2.0)
        if (r["backend"], r["precision"]) == ("mxnet", "fp32"):
            assert r["psnr_vs_fp32"] is None  # the reference itself
        elif r["precision"] == "fp32":
            assert r["psnr_vs_fp32"] > 60  # the same network on another backend
        else:
            assert 0 < r["psnr_vs_fp32"] < 200
    assert "| tiny | onnxruntime | int8 | 1024²" in md.read_text()
    assert png.stat().st_size > 1000


def test_unknown_model_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--no-costs",
                           "--models", str(tmp_path / "nope")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "error: model" in proc.stderr and "not found" in proc.stderr


@pytest.mark.skipif(not torch_available(), reason="torch is not installed (pip install -e '.[torch]')")
def test_torch_eager_port_matches_onnxruntime(tiny):
    import onnxruntime as ort

    model = (tiny / "tiny.onnx").read_bytes()
    x = photo(36, 52).transpose(2, 0, 1)[None].copy()
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    expected = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    got = TorchEagerNet(model)(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-2)


def test_end_to_end_cases_are_reported_against_the_default_settings():
    def rec(model, backend, work_side, median, size=(3000, 4000)):
        return dict(model=model, backend=backend, precision="fp32", work_side=work_side, median_s=median,
                    height=size[0], width=size[1])

    e2e = [rec("new", "openvino", 1024, 0.5), rec("new", "openvino", None, 10.0), rec("old", "onnxruntime", 1024, 1.5),
           rec("old", "torch", None, 60.0), rec("new", "openvino", 1024, 0.6, size=(2880, 5120))]
    lines = bench_run.e2e_ratio_lines(e2e)
    assert len(lines) == 3  # the other size has nothing to compare with
    assert "old on torch fp32 (work side full) takes 120.00x as long as new on openvino fp32 (work side 1024)" in lines[2]
    assert "takes 3.00x" in lines[1] and "takes 20.00x" in lines[0]


@pytest.mark.skipif(not torch_available(), reason="torch is not installed (pip install -e '.[torch]')")
def test_end_to_end_in_pytorch_eager_runs_the_whole_photo(tiny, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--models", str(tiny), "--backends",
                           "onnxruntime", "--sizes", "64", "--repeats", "1", "--end-to-end", "200x120",
                           "--end-to-end-torch", "--repeats-e2e", "1", "--warmup-e2e", "0", "--no-costs",
                           "--reference", "onnxruntime", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    e2e = [r for r in json.loads(out.read_text())["records"] if r["kind"] == "end_to_end"]
    assert [(r["backend"], r["work_side"]) for r in e2e] == [("onnxruntime", 1024), ("torch", None)]
    assert all((r["height"], r["width"]) == (120, 200) and r["median_s"] > 0 for r in e2e)
    assert "takes" in proc.stdout
