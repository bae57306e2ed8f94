"""Export: MXNet symbol, ONNX (onnxruntime and OpenCV), int8 with a fidelity bound, the model card,
verification of a model folder, atomic replacement, the CLI. A random johnson_lite, tiny photos."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from mxstyle import io
from mxstyle.export import ExportError, export_model, resolve_checkpoint, sanitize_options
from mxstyle.model_folder import CARD_FILE, ModelError, verify_model_dir
from mxstyle.export.onnx_export import ort_session, run_onnx
from mxstyle.export.quantize import PLANS, PSNR_CAP_DB
from mxstyle.quality import psnr
from mxstyle.models import get_model
from mxstyle.training.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type:UserWarning")  # SymbolBlock.imports
ARCH = "johnson_lite"
QUIET = dict(progress=False, log=lambda *a, **k: None)
# int8 settings small enough for a test: 32 px photos, speed measured once at 32 px
TINY_INT8 = dict(int8=True, calib_count=4, holdout_count=2, calib_size=32, bench_size=32, bench_runs=1,
                 min_speedup=0.0)  # a 32 px random network: the speed gate is tested on its own


def _photo(i, h=40, w=56):
    rng = np.random.RandomState(i)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    disk = 120.0 * (((y - cy) ** 2 + (x - cx) ** 2) < (rng.uniform(6, 14) ** 2))
    img = np.stack([60 + 100 * np.sin(x / (4 + i)) + disk, 128 + 80 * np.cos(y / (3 + i)), 255 * x / w], 2)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder holding one checkpoint of a random johnson_lite, its photos and painting."""
    root = tmp_path_factory.mktemp("export")
    for i in range(8):
        io.write_image(root / "photos" / f"sub{i % 2}" / f"p{i}.png", _photo(i))
    io.write_image(root / "painting.png", np.random.RandomState(9).uniform(0, 255, (30, 700, 3)))
    mx.random.seed(0)
    generator = get_model(ARCH)
    generator.initialize(mx.init.Xavier(magnitude=2.0))
    rng = np.random.RandomState(0)
    for name, p in generator.collect_params().items():  # every bias / gamma / beta should matter
        if not name.endswith("weight"):
            p.set_data(p.data() + mx.nd.array(rng.normal(0, 0.1, p.shape)))
    trainer = gluon.Trainer(generator.collect_params(), "adam", {"learning_rate": 1e-3})
    options = dict(style=str(root / "painting.png"), data=str(root / "photos"), out=str(root / "run"),
                   arch=ARCH, steps=20, batch_size=2, image_size=32, content_weight=1.0, style_weight=3.0,
                   tv_weight=10.0, content_layers=["relu2_2"], workers=2, resume=False, progress=True,
                   preview=None, vgg_weights="imagenet")
    state = dict(run=dict(options=options, loss_config=dict(content_weight=1.0, style_weight=3.0, tv_weight=10.0),
                          arch=ARCH, stride=generator.stride, style_sha256="0" * 64, data_files=8,
                          data_digest="0" * 16,  # fine-tuned from another run (tools/train.py --init-from)
                          init_from=dict(checkpoint=str(root / "base" / "checkpoints" / "step-000550"), step=550,
                                         generator_sha256="1" * 64)))
    save_checkpoint(root / "run", 10, generator, trainer, state)
    return root


@pytest.fixture(scope="module")
def exported(run):
    """An export with int8 for both backends and a bound every int8 model passes."""
    out = run / "models" / "tiny"
    card = export_model(run / "run", "tiny", out, min_psnr=0.0, style_image=run / "painting.png",
                        style_source="generated noise", style_license="CC0", **TINY_INT8, **QUIET)
    return out, card


def _generator(run):
    net = get_model(ARCH)
    net.load_parameters(str(resolve_checkpoint(run / "run") / "generator.params"))
    return net


def _batch(n, h, w, seed=0):
    return np.random.RandomState(seed).uniform(0, 255, (n, 3, h, w)).astype(np.float32)


def test_resolve_checkpoint_and_sanitized_options(run, tmp_path):
    ckpt = run / "run" / "checkpoints" / "step-000010"
    assert resolve_checkpoint(run / "run") == ckpt
    assert resolve_checkpoint(ckpt) == ckpt
    with pytest.raises(Exception, match="neither a checkpoint"):
        resolve_checkpoint(tmp_path)
    clean = sanitize_options(dict(style="../data/styles/x.jpg", data="/data/photos/", out="runs/a",
                                  preview=None, vgg_weights="imagenet", lr=1e-3, workers=2))
    assert clean == dict(style="x.jpg", data="photos", preview=None, vgg_weights="imagenet", lr=1e-3)


def test_symbol_reloads_with_symbolblock_and_reproduces_gluon(run, exported):
    out, card = exported
    block = gluon.SymbolBlock.imports(str(out / card["files"]["mxnet_fp32_symbol"]["path"]), ["data"],
                                      str(out / card["files"]["mxnet_fp32_params"]["path"]))
    x = mx.nd.array(_batch(1, 40, 56))
    np.testing.assert_allclose(block(x).asnumpy(), _generator(run)(x).asnumpy(), atol=1e-4, rtol=0)


def test_onnx_keeps_weights_out_of_the_inputs_and_matches_gluon(run, exported):
    import onnx

    out, card = exported
    model = onnx.load(str(out / "tiny.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
    weights = {init.name for init in model.graph.initializer}
    assert len(weights) > 20
    assert [i.name for i in model.graph.input] == ["data"]  # no initializer among the inputs
    assert [o.name for o in model.graph.output] == ["stylized"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    session = ort_session(out / "tiny.onnx")
    net = _generator(run)
    for shape in [(1, 48, 48), (1, 40, 72), (2, 32, 24)]:  # square, non-square, batch of 2
        x = _batch(*shape, seed=shape[1])
        diff = np.abs(run_onnx(session, x) - net(mx.nd.array(x)).asnumpy()).max()
        assert diff < 2e-2, (shape, diff)


def test_opencv_dnn_runs_the_onnx_model(exported):
    cv2 = pytest.importorskip("cv2")
    out, _ = exported
    net = cv2.dnn.readNetFromONNX(str(out / "tiny.onnx"))
    x = _batch(1, 48, 64, seed=3)
    net.setInput(x)
    y = net.forward()
    ref = run_onnx(ort_session(out / "tiny.onnx"), x)
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() < 2e-2


def test_card_lists_every_file_with_its_sha256(exported):
    out, card = exported
    assert json.loads((out / CARD_FILE).read_text()) == card
    assert card["format"] == 1 and card["name"] == "tiny" and card["arch"] == ARCH and card["stride"] == 4
    assert card["flops_per_pixel"] == pytest.approx(66240, rel=0.01)
    assert card["params"] == 276675
    assert set(card["files"]) == {"mxnet_fp32_symbol", "mxnet_fp32_params", "onnx_fp32", "onnx_int8",
                                  "mxnet_int8_symbol", "mxnet_int8_params", "style_image"}
    for role, record in card["files"].items():
        data = (out / record["path"]).read_bytes()
        assert record["sha256"] == hashlib.sha256(data).hexdigest(), role
        assert record["bytes"] == len(data), role
    listed = {r["path"] for r in card["files"].values()} | {CARD_FILE}
    assert set(os.listdir(out)) == listed
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    for role, backend in [("onnx_int8", "onnxruntime"), ("mxnet_int8_symbol", "mxnet"), ("mxnet_int8_params", "mxnet")]:
        fid, speed = card["files"][role]["fidelity"], card["files"][role]["speedup_vs_fp32"]
        assert fid["photos"] == 2 and fid["size"] == 32 and fid["psnr_db_mean"] >= fid["psnr_db_min"] >= 0
        assert speed["backend"] == backend and speed["size"] == 32 and speed["speedup"] > 0
    assert card["quantization"]["photo_folder"] == "photos"  # the run's own photos by default
    assert card["style"] == dict(image="style.jpg", source="generated noise", license="CC0", file="painting.png",
                                 sha256="0" * 64)
    assert max(io.read_image(out / "style.jpg").shape[:2]) == 512
    training = card["training"]
    assert training["steps"] == 10 and training["planned_steps"] == 20 and training["checkpoint"] == "step-000010"
    assert training["options"]["style"] == "painting.png" and training["options"]["data"] == "photos"
    assert "out" not in training["options"] and "workers" not in training["options"]
    assert training["init_from"] == dict(run="base", checkpoint="step-000550", step=550, generator_sha256="1" * 64)
    assert card["created"].endswith("Z") and card["mxstyle_version"]
    assert verify_model_dir(out) == card


def test_int8_models_run_and_stay_close_to_fp32(exported):
    out, card = exported
    x = np.stack([io.to_tensor(_photo(20 + i, 32, 32))[0] for i in range(2)])
    fp32 = run_onnx(ort_session(out / "tiny.onnx"), x)
    int8 = run_onnx(ort_session(out / "tiny.int8.onnx"), x)
    assert int8.shape == fp32.shape and psnr(int8, fp32) > 15
    block = gluon.SymbolBlock.imports(str(out / "tiny-int8-symbol.json"), ["data"], str(out / "tiny-int8-0000.params"))
    assert psnr(block(mx.nd.array(x)).asnumpy(), fp32) > 15


def test_verify_model_dir_refuses_tampered_truncated_and_missing_files(exported, tmp_path):
    model = tmp_path / "copy"
    shutil.copytree(exported[0], model)
    verify_model_dir(model)
    onnx_file = model / "tiny.onnx"
    original = onnx_file.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(tampered))
    with pytest.raises(ModelError, match=r"tiny\.onnx.*tampered"):
        verify_model_dir(model)
    verify_model_dir(model, roles=["mxnet_fp32_params"])  # a role-limited check skips the ONNX file
    onnx_file.write_bytes(original)
    params = model / "tiny-0000.params"
    params.write_bytes(params.read_bytes()[:-100])
    with pytest.raises(ModelError, match=r"tiny-0000\.params.*truncated"):
        verify_model_dir(model)
    params.unlink()
    with pytest.raises(ModelError, match=r"tiny-0000\.params.*missing"):
        verify_model_dir(model)
    with pytest.raises(ModelError, match="no model.json|not a model folder"):
        verify_model_dir(tmp_path)


def test_int8_below_the_bound_writes_no_int8_file(run, tmp_path):
    out = tmp_path / "strict"
    messages = []
    card = export_model(run / "run", "strict", out, calib=run / "photos", min_psnr=200.0, progress=False,
                        log=messages.append, **TINY_INT8)
    assert not any("int8" in role for role in card["files"])
    assert not [f for f in os.listdir(out) if "int8" in f]
    for backend in ("onnxruntime", "mxnet"):
        report = card["quantization"][backend]
        # the safest plan was calibrated and missed; the plans that quantize more were not tried
        assert report["kept"] is False and [a["plan"] for a in report["attempts"]] == [PLANS[-1]["name"]]
        assert [s["plan"] for s in report["skipped"]] == [p["name"] for p in PLANS[:-1]]
        # the attempt was measured (a real PSNR, below the cap that stands for "identical")
        assert all(0 < a["psnr_db_mean"] < PSNR_CAP_DB for a in report["attempts"])
        assert any(m.startswith(f"{backend} int8 NOT written: below") for m in messages)
    verify_model_dir(out)


def test_int8_that_is_not_faster_than_fp32_writes_no_int8_file(run, tmp_path):
    messages = []
    card = export_model(run / "run", "slow", tmp_path / "slow", calib=run / "photos", progress=False,
                        log=messages.append, **dict(TINY_INT8, min_psnr=0.0, min_speedup=1000.0))
    assert not any("int8" in role for role in card["files"])
    for backend in ("onnxruntime", "mxnet"):
        report = card["quantization"][backend]
        assert report["kept"] is False and report["speedup_vs_fp32"]["speedup"] < 1000
        assert any(m.startswith(f"{backend} int8 NOT written") and "as fast as fp32" in m for m in messages)


def test_onnxruntime_calibrates_once_for_every_plan_with_the_same_ranges(run, tmp_path, monkeypatch):
    """The photos run through the calibrator once; each plan reuses the ranges, and gets the PSNR
    it gets when calibrated on its own."""
    from onnxruntime import quantization as q

    from mxstyle.export import quantize

    readers = []

    class Counting(quantize._OrtReader):
        def __init__(self, *args):
            super().__init__(*args)
            readers.append(self)

    monkeypatch.setattr(quantize, "_OrtReader", Counting)
    common = dict(calib=run / "photos", progress=False, log=lambda *a, **k: None,
                  **dict(TINY_INT8, int8_backends=("onnxruntime",), min_psnr=0.0))
    once = export_model(run / "run", "once", tmp_path / "once", **common)["quantization"]["onnxruntime"]
    assert len(once["attempts"]) == 2 and len(readers) == 1  # safest passed with room, then "all"
    real = q.quantize_static
    monkeypatch.setattr(q, "quantize_static", lambda *a, **k: real(*a, **k))  # no cache argument
    each = export_model(run / "run", "each", tmp_path / "each", **common)["quantization"]["onnxruntime"]
    assert len(readers) == 3  # calibrated per plan
    assert once["attempts"] == each["attempts"]


@pytest.mark.parametrize("measured, tried, chosen", [
    ({"encoder-convs": 30.0}, ["encoder-convs"], None),                        # safest misses: stop
    ({"encoder-convs": 36.0}, ["encoder-convs"], "encoder-convs"),             # passes narrowly: keep it
    ({"encoder-convs": 40.0, "all": 36.0}, ["encoder-convs", "all"], "all"),   # room: the fastest passing
    ({"encoder-convs": 40.0, "all": 34.0, "first-last-conv-fp32": 35.5},
     ["encoder-convs", "all", "first-last-conv-fp32"], "first-last-conv-fp32"),
    ({"encoder-convs": 40.0, "all": 34.0, "first-last-conv-fp32": 34.5},
     ["encoder-convs", "all", "first-last-conv-fp32"], "encoder-convs"),
])
def test_plan_search_calibrates_as_few_plans_as_it_can(measured, tried, chosen):
    from mxstyle.export.quantize import search_plans

    calls = []

    def attempt(plan):
        calls.append(plan["name"])
        return dict(psnr_db_mean=measured[plan["name"]] + 3, psnr_db_min=measured[plan["name"]])  # the minimum counts

    plan, attempts, skipped = search_plans(attempt, 35.0)
    assert calls == tried and [a["plan"] for a in attempts] == tried
    assert (plan and plan["name"]) == chosen
    assert {s["plan"] for s in skipped} | set(tried) == {p["name"] for p in PLANS}


def test_reexport_replaces_files_keeps_style_jpg_and_failure_leaves_folder_alone(run, exported, tmp_path,
                                                                                 monkeypatch):
    from mxstyle.export import exporter

    out = tmp_path / "models" / "tiny"
    shutil.copytree(exported[0], out)
    style_sha = exported[1]["files"]["style_image"]["sha256"]
    card = export_model(run / "run", "tiny", out, **QUIET)  # fp32 only, no style image given
    assert card["files"]["style_image"]["sha256"] == style_sha
    assert card["style"]["license"] == "CC0"  # carried over with the kept style.jpg
    assert sorted(os.listdir(out)) == sorted([CARD_FILE, "style.jpg", "tiny-0000.params", "tiny-symbol.json",
                                              "tiny.onnx"])  # the old int8 files are gone
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    monkeypatch.setattr(exporter, "ONNX_TOLERANCE", -1.0)  # make the ONNX check fail half-way
    with pytest.raises(ExportError, match="differs from MXNet"):
        export_model(run / "run", "tiny", out, **QUIET)
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before
    assert os.listdir(out.parent) == ["tiny"]  # no temporary folder left behind


def test_cli_bad_path_prints_one_error_line_and_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "export.py"), str(tmp_path / "nope"),
                           "--name", "x", "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope" in lines[0]
    assert not (tmp_path / "x").exists()


def test_cli_exports_a_run_folder(run, tmp_path, capsys):
    from mxstyle import cli
    from mxstyle.cli import export as tool

    out = tmp_path / "m"
    assert cli.run(tool.main, [str(run / "run"), "--name", "m", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "onnx_fp32" in printed and "m.onnx" in printed
    assert verify_model_dir(out)["training"]["checkpoint"] == "step-000010"
    assert cli.run(tool.main, [str(run / "run"), "--name", "../evil", "--out", str(out)]) == 2
    assert "model name" in capsys.readouterr().err


def test_int8_plans_keep_the_right_layers_in_fp32():
    from mxstyle.export.quantize import _plan_excludes

    nodes = [("c0", "Conv"), ("n0", "InstanceNormalization"), ("c1", "Conv"), ("add", "Add"), ("c2", "Conv"),
             ("up", "Resize"), ("c3", "Conv"), ("up2", "Resize"), ("c4", "Conv"), ("c5", "Conv"), ("t", "Tanh")]
    plans = {p["name"]: p for p in PLANS}
    assert _plan_excludes(plans["all"], nodes, "Conv") == []
    assert _plan_excludes(plans["first-last-conv-fp32"], nodes, "Conv") == ["c0", "c5"]
    assert _plan_excludes(plans["encoder-convs"], nodes, "Conv") == ["c3", "c4", "c5"]
    assert plans["encoder-convs"]["convs_only"]
    # a network without upsampling keeps only its output conv in fp32
    assert _plan_excludes(plans["encoder-convs"], nodes[:5], "Conv") == ["c2"]


def test_onnxruntime_calibration_reader_serves_one_chunk_at_a_time():
    # onnxruntime's strided calibration calls set_range(i, i + 1) then drains the reader, so the
    # percentile calibrator never holds more than one photo's activations
    from mxstyle.export.quantize import _OrtReader

    class Bar:
        n = 0

        def update(self, k):
            self.n += k

    arrays = [np.full((1, 3, 4, 4), i, np.float32) for i in range(3)]
    bar = Bar()
    reader = _OrtReader(arrays, bar)
    assert len(reader) == 3
    seen = []
    for start in range(len(reader)):
        reader.set_range(start_index=start, end_index=start + 1)
        while (item := reader.get_next()) is not None:
            seen.append(float(next(iter(item.values())).flat[0]))
    assert seen == [0.0, 1.0, 2.0] and bar.n == 3
