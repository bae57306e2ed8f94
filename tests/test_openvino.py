"""The OpenVINO backend: fp32 agrees with onnxruntime (whole image and exact tiles, every
architecture; threads: test_runtime's thread test covers it), and bf16 runs only for a model whose card records
that it passed the exporter's gate, on a CPU that computes bf16 natively."""
import json
import shutil

import numpy as np
import pytest

from mxstyle.export import export_model
from mxstyle.models import list_models
from mxstyle.quality import psnr
from mxstyle.runtime import ModelError, Stylizer
from mxstyle.runtime.backends import openvino_has_bf16
from float_noise import allowed, output_noise
from tiny_model import photo

pytest.importorskip("openvino", reason="the OpenVINO backend needs pip install openvino")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
ARCHS = list_models()


@pytest.mark.parametrize("arch", ARCHS)
def test_fp32_agrees_with_onnxruntime_whole_and_tiled(tiny_export, arch):
    model = tiny_export(arch)[1]
    img = photo(136, 176, seed=3)
    ort = Stylizer(model, backend="onnxruntime", precision="fp32", work_side=None)
    ov = Stylizer(model, backend="openvino", precision="fp32", work_side=None)
    assert (ov.backend, ov.precision) == ("openvino", "fp32")
    ref, out = ort.stylize(img), ov.stylize(img)
    # two engines of one float32 graph: within a few times the graph's own rounding noise
    noise = max(output_noise(ort.stylize, img), output_noise(ov.stylize, img))
    assert np.abs(out - ref).max() <= allowed(noise, floor=1e-3)
    tiled = Stylizer(model, backend="openvino", precision="fp32", tile_pixels=64 * 64, tile_side=64, blend=8,
                     work_side=None)
    assert tiled.will_tile(136, 176) and tiled.tiling_note is None
    assert psnr(tiled.stylize(img), ref) > 55  # the kept float16 maps, as on onnxruntime


@pytest.fixture(scope="module")
def bf16_export(tiny_export, tmp_path_factory):
    """The tiny johnson_lite exported again with the bf16 check (bound 0 dB: a random network is far
    more sensitive than a trained one, whose outputs measured 54-56 dB)."""
    _, model, run = tiny_export("johnson_lite")
    out = tmp_path_factory.mktemp("bf16") / "tiny_bf16"
    card = export_model(run, "tiny_bf16", out, bf16=True, calib=run.parent / "photos", holdout_count=2,
                        calib_size=32, bench_size=32, bench_runs=1, min_psnr=0.0, progress=False,
                        log=lambda *a, **k: None)
    return out, card


def test_the_card_records_the_bf16_gate(bf16_export):
    _, card = bf16_export
    record = card["bf16"]["openvino"]
    assert "onnx_int8" not in card["files"]  # bf16 writes no file of its own
    if openvino_has_bf16():
        assert record["kept"] is True
        assert record["fidelity"]["photos"] == 2 and record["fidelity"]["psnr_db_mean"] > 0
        assert record["speed"]["openvino_bf16_seconds"] > 0
    else:
        assert record["kept"] is False and "bf16 natively" in record["reason"]


def test_bf16_runs_only_where_the_gate_and_the_cpu_allow(bf16_export, tmp_path):
    model, card = bf16_export
    img = photo(48, 64, seed=5)
    if openvino_has_bf16():
        s = Stylizer(model, precision="bf16")
        assert (s.backend, s.precision) == ("openvino", "bf16")
        ref = Stylizer(model, backend="openvino", precision="fp32").stylize(img)
        out = s.stylize(img)
        assert not np.array_equal(out, ref)  # it really computes in bf16 ...
        assert psnr(out, ref) > 20           # ... close to fp32 (random network)
        assert Stylizer(model).precision == "bf16"  # auto: first in PREFERENCE on this CPU
    else:
        with pytest.raises(ModelError, match="does not compute bf16 natively"):
            Stylizer(model, precision="bf16")
    failed = tmp_path / "failed"
    shutil.copytree(model, failed)
    card = json.loads((failed / "model.json").read_text())
    card["bf16"]["openvino"] = dict(kept=False, fidelity=dict(psnr_db_mean=30.0))
    (failed / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="not passed the bf16 fidelity gate"):
        Stylizer(failed, precision="bf16")
    assert Stylizer(failed).precision != "bf16"
