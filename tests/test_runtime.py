"""Runtime: Stylizer on every backend, model lookup and verification, any image size, strength and
colour options, tiling with whole-image statistics, thread safety, the stylize CLI.

The model is a randomly initialized johnson_lite exported once per module by the real exporter
(with int8 files for both backends: a fidelity bound of 0 dB keeps them). A random generator is
*more* sensitive to its instance-norm statistics than a trained one, so it is a hard case for tiling.
"""
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from mxstyle import io
from mxstyle.color import rgb_to_yiq
from mxstyle.errors import ConfigError, ImageError
from mxstyle.models import get_model, list_models
from mxstyle.quality import psnr
from mxstyle.runtime import ModelError, Stylizer, list_available_models
from mxstyle.runtime import tiling
from tiny_model import photo

ROOT = Path(__file__).resolve().parents[1]
ARCH = "johnson_lite"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # SymbolBlock / MXNet int8 chatter


@pytest.fixture(scope="module")
def exported(tiny_export):
    """``(models folder, model folder, run folder)``: a random johnson_lite exported as 'tiny'."""
    return tiny_export(ARCH)


@pytest.fixture(scope="module")
def ort(exported):
    return Stylizer(exported[1], backend="onnxruntime", precision="fp32")


@pytest.fixture
def fp32_only(exported, tmp_path):
    """A copy of the model whose card lists no int8 files (as when int8 failed its gate)."""
    out = tmp_path / "fp32only"
    shutil.copytree(exported[1], out)
    card = json.loads((out / "model.json").read_text())
    for role in ("onnx_int8", "mxnet_int8_symbol", "mxnet_int8_params"):
        card["files"].pop(role)
    (out / "model.json").write_text(json.dumps(card))
    return out


# ------------------------------------------------------------------------------ backends

def test_gluon_symbol_onnxruntime_and_opencv_agree(exported, ort):
    """MXNet's InstanceNorm is about 10x less accurate than onnxruntime's (it sums in float32
    with less care), hence 2e-2 on the 0-255 scale between MXNet and onnxruntime."""
    _, model_dir, run_dir = exported
    img = photo(64, 96, seed=1)
    net = get_model(ARCH)
    net.load_parameters(str(next((run_dir / "checkpoints").glob("step-*")) / "generator.params"))
    gluon_out = net(mx.nd.array(img.transpose(2, 0, 1)[None])).asnumpy()[0].transpose(1, 2, 0)
    onnx_out = ort.stylize(img)
    mxnet_out = Stylizer(model_dir, backend="mxnet", precision="fp32").stylize(img)
    cv_out = Stylizer(model_dir, backend="opencv").stylize(img)
    assert onnx_out.shape == mxnet_out.shape == cv_out.shape == (64, 96, 3)
    assert onnx_out.dtype == np.float32
    assert np.abs(mxnet_out - gluon_out).max() < 1e-3  # same engine, same graph
    assert np.abs(onnx_out - gluon_out).max() < 2e-2
    assert np.abs(cv_out - onnx_out).max() < 2e-2


def test_int8_backends_run_and_stay_near_fp32(exported, ort):
    img = photo(48, 64, seed=2)
    ref = ort.stylize(img)
    for backend in ("onnxruntime", "mxnet"):
        s = Stylizer(exported[1], backend=backend, precision="int8")
        assert (s.backend, s.precision) == (backend, "int8")
        out = s.stylize(img)
        assert out.shape == ref.shape and np.isfinite(out).all()
        assert psnr(out, ref) > 15  # a random net is very sensitive; the exporter gates real ones


def _first_allowed(model_dir, backends=None):
    """What PREFERENCE says auto should pick for a model folder on this machine."""
    from mxstyle.runtime import PREFERENCE, ROLES
    from mxstyle.runtime.backends import backend_available

    files = json.loads((Path(model_dir) / "model.json").read_text())["files"]
    return next((b, p) for b, p in PREFERENCE if (backends is None or b in backends) and p != "bf16"
                and backend_available(b) and all(r in files for r in ROLES[(b, p)]))


def test_auto_picks_the_fastest_available(exported, fp32_only):
    s = Stylizer(exported[1])
    assert (s.backend, s.precision) == _first_allowed(exported[1])  # no bf16 gate on this card
    s = Stylizer(fp32_only)
    assert s.precision == "fp32" and (s.backend, s.precision) == _first_allowed(fp32_only)
    s = Stylizer(fp32_only, backend="mxnet")
    assert (s.backend, s.precision) == ("mxnet", "fp32")
    s = Stylizer(exported[1], backend="onnxruntime")
    assert (s.backend, s.precision) == ("onnxruntime", "int8")
    with pytest.raises(ModelError, match="no onnx_int8 file.*fidelity gate"):
        Stylizer(fp32_only, backend="onnxruntime", precision="int8")
    with pytest.raises(ConfigError, match="opencv backend runs fp32, not int8"):
        Stylizer(exported[1], backend="opencv", precision="int8")
    with pytest.raises(ConfigError, match="unknown backend"):
        Stylizer(exported[1], backend="tensorrt")


def test_models_are_found_by_name(exported, monkeypatch):
    models, model_dir, _ = exported
    monkeypatch.setenv("MXSTYLE_MODELS", str(models))
    assert "tiny" in list_available_models()
    assert Stylizer("tiny", backend="onnxruntime").model_dir == model_dir
    with pytest.raises(ModelError, match=r"model 'nope' not found.*available models: .*tiny"):
        Stylizer("nope")


def test_tampered_truncated_or_missing_files_are_refused(exported, tmp_path):
    src = exported[1]
    card = json.loads((src / "model.json").read_text())

    def copy(name):
        out = tmp_path / name
        shutil.copytree(src, out)
        return out

    bad = copy("tampered")
    onnx_file = bad / card["files"]["onnx_fp32"]["path"]
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"tiny\.onnx \(onnx_fp32\): sha256 mismatch"):
        Stylizer(bad, backend="onnxruntime", precision="fp32")
    Stylizer(bad, backend="mxnet", precision="fp32")  # it only checks the files it uses

    short = copy("truncated")
    params = short / card["files"]["mxnet_fp32_params"]["path"]
    params.write_bytes(params.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"tiny-0000\.params \(mxnet_fp32_params\): file is truncated"):
        Stylizer(short, backend="mxnet", precision="fp32")

    gone = copy("missing")
    (gone / card["files"]["onnx_int8"]["path"]).unlink()
    with pytest.raises(ModelError, match="int8.onnx.*missing"):
        Stylizer(gone, precision="int8")
    with pytest.raises(ModelError, match="not a model folder"):
        Stylizer(tmp_path)


# ------------------------------------------------------------------------ images, options

@pytest.mark.parametrize("shape", [(37, 53), (1, 7), (16, 16), (5, 120)])
def test_any_size_comes_back_the_same_size(ort, shape):
    out = ort.stylize(photo(*shape, seed=3))
    assert out.shape == shape + (3,) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255


def test_inputs_of_every_kind(ort, tmp_path):
    from PIL import Image

    img = photo(30, 42, seed=4)
    path = tmp_path / "p.png"
    io.write_image(path, img)
    u8 = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    ref = ort.stylize(u8)
    for src in (path, str(path), path.read_bytes(), Image.fromarray(u8)):
        np.testing.assert_allclose(ort.stylize(src), ref, atol=1e-3)
    assert len(ort.stylize_batch([u8, path, u8[:20]])) == 3
    assert ort.stylize(img, max_side=21).shape == (15, 21, 3)
    assert ort.stylize(img, max_side=100).shape == (30, 42, 3)  # never enlarged


def test_bad_images_raise_image_error(ort, tmp_path):
    with pytest.raises(ImageError):
        ort.stylize(b"this is not an image")
    with pytest.raises(ImageError, match="no such file"):
        ort.stylize(tmp_path / "nothing.jpg")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(io.encode_image(photo(40, 40), ".jpg")[:300])
    with pytest.raises(ImageError, match="truncated"):
        ort.stylize(truncated)
    with pytest.raises(ImageError, match="^upload.jpg: .*truncated"):  # bytes named as the caller says
        ort.stylize(truncated.read_bytes(), name="upload.jpg")
    big = io.encode_image(photo(300, 400), ".jpg")
    for work_side in (None, 128):  # the whole decode and the reduced-scale fast path both refuse it
        with pytest.raises(ImageError, match="^upload.jpg: .*pixels"):
            ort.stylize(big, name="upload.jpg", max_pixels=100_000, work_side=work_side)
    for bad in (-0.1, 1.5, "x", float("nan")):
        with pytest.raises(ConfigError, match="strength"):
            ort.stylize(photo(8, 8), strength=bad)


def test_strength_blends_with_the_photo(ort):
    img = photo(36, 44, seed=5)
    np.testing.assert_array_equal(ort.stylize(img, strength=0), img)
    full = ort.stylize(img)
    half = ort.stylize(img, strength=0.5)
    np.testing.assert_allclose(half, 0.5 * full + 0.5 * img, atol=1e-3)


def test_preserve_colors_keeps_the_photos_chroma(ort):
    img = photo(40, 48, seed=6)
    out = ort.stylize(img, preserve_colors=True)
    plain = ort.stylize(img)
    yiq_out, yiq_img, yiq_plain = rgb_to_yiq(out), rgb_to_yiq(img), rgb_to_yiq(plain)
    inside = ((out > 1) & (out < 254)).all(axis=2)  # where no channel was clipped
    assert inside.mean() > 0.5
    np.testing.assert_allclose(yiq_out[inside][:, 1:], yiq_img[inside][:, 1:], atol=0.05)
    np.testing.assert_allclose(yiq_out[inside][:, 0], yiq_plain[inside][:, 0], atol=0.05)
    assert np.abs(yiq_plain[..., 1:] - yiq_img[..., 1:]).mean() > 5  # the style did change colours


# ------------------------------------------------------------------------------- tiling

def test_tile_plan_covers_the_image_and_weights_sum_to_one():
    plan = tiling.TilePlan(200, 328, align=4, margin=10, tile_side=96)
    total = np.zeros((200, 328))
    for i, j, (ty0, ty1, cy0, cy1), (tx0, tx1, cx0, cx1) in plan:
        assert ty0 % 4 == tx0 % 4 == cy0 % 4 == cx0 % 4 == 0
        assert (ty1 - ty0) * (tx1 - tx0) <= 96 * 96 * 1.3
        wy, wx = plan.weights(i, j, blend=8)
        total[ty0:ty1, tx0:tx1] += wy * wx
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_tiled_equals_untiled_with_whole_image_statistics(exported, ort):
    img = photo(200, 264, seed=7)
    ref = ort.stylize(img)
    tiled = Stylizer(exported[1], backend="onnxruntime", precision="fp32", tile_pixels=80 * 80,
                     tile_side=80, blend=16)
    assert tiled.will_tile(200, 264) and len(tiled._engine.stages) > 2
    assert psnr(tiled.stylize(img), ref) > 55
    small = img[:120, :152]  # MXNet tiles run the whole graph per norm: keep it small
    mx_tiled = Stylizer(exported[1], backend="mxnet", precision="fp32", tile_pixels=96 * 96,
                        tile_side=96)
    assert mx_tiled.will_tile(120, 152)
    assert psnr(mx_tiled.stylize(small), ort.stylize(small)) > 45
    # statistics of a downscaled copy: cheaper, but a random generator is far from scale invariant
    approx = Stylizer(exported[1], backend="onnxruntime", precision="fp32", tile_pixels=80 * 80,
                      tile_side=80, tile_mode="approx", stats_side=128)
    out = approx.stylize(img)
    assert out.shape == ref.shape and np.isfinite(out).all()
    assert 10 < psnr(out, ref) < psnr(tiled.stylize(img), ref)  # close, but not exact
    # a "downscaled" copy as large as the image gives the image's own statistics: exact again
    whole = Stylizer(exported[1], backend="onnxruntime", precision="fp32", tile_pixels=80 * 80,
                     tile_side=80, tile_mode="approx", stats_side=512, blend=16)
    assert psnr(whole.stylize(img), ref) > 55


def test_tiled_int8_matches_its_untiled_run(exported):
    img = photo(120, 152, seed=8)
    for backend in ("onnxruntime",):
        fp32 = Stylizer(exported[1], backend=backend, precision="fp32").stylize(img)
        ref = Stylizer(exported[1], backend=backend, precision="int8").stylize(img)
        out = Stylizer(exported[1], backend=backend, precision="int8", tile_pixels=72 * 72,
                        tile_side=72).stylize(img)
        # tiles see the same quantization steps, but percentile-clipped activations amplify the
        # tiny fp32 differences of the tiled norm statistics: tiling must not cost int8 fidelity
        assert psnr(out, ref) > 35
        assert psnr(out, fp32) > psnr(ref, fp32) - 1.0, (psnr(out, fp32), psnr(ref, fp32))


@pytest.mark.slow
def test_tiled_2048_matches_untiled(exported, ort):
    img = photo(2048, 2048, seed=9)
    ref = ort.stylize(img, work_side=None)
    tiled = Stylizer(exported[1], backend="onnxruntime", precision="fp32", work_side=None)  # 1 MP tiles
    assert tiled.will_tile(2048, 2048)
    assert psnr(tiled.stylize(img), ref) >= 40


# ------------------------------------------------------------------------------- threads

@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "mxnet", "opencv"])
def test_many_threads_get_the_serial_results(exported, backend):
    from mxstyle.runtime.backends import backend_available

    if not backend_available(backend):
        pytest.skip(f"{backend} is not installed")
    s = Stylizer(exported[1], backend=backend, precision="fp32", threads=1)
    images = [photo(24 + 4 * (i % 3), 32 + 4 * (i % 2), seed=10 + i) for i in range(8)]
    serial = [s.stylize(img) for img in images]
    results, errors = [None] * 8, []
    barrier = threading.Barrier(8)

    def work(i):
        try:
            barrier.wait()
            for _ in range(2):
                results[i] = s.stylize(images[i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, serial):
        np.testing.assert_allclose(got, want, atol=1e-4)


# ----------------------------------------------------------------------------------- CLI

def _cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "stylize.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_goes_on_past_a_bad_file_and_reports_it(exported, tmp_path):
    src = tmp_path / "in"
    io.write_image(src / "a.jpg", photo(30, 40, seed=11))
    io.write_image(src / "sub" / "b.png", photo(26, 34, seed=12))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    r = _cli(src, tmp_path / "absent.png", "--model", exported[1], "--out", out, "--backend", "onnxruntime",
             "--strength", "0.8", "--no-progress")
    assert r.returncode == 1, r.stderr
    assert io.read_image(out / "a_styled.jpg").shape == (30, 40, 3)
    assert io.read_image(out / "sub" / "b_styled.jpg").shape == (26, 34, 3)
    assert "broken.jpg" in r.stderr and "absent.png" in r.stderr and "Traceback" not in r.stderr
    assert "2 stylized, 2 failed" in r.stdout

    r = _cli(src / "a.jpg", "--model", exported[1], "--out", out, "--format", "keep", "--suffix", "",
             "--preserve-colors", "--max-side", "20", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert io.read_image(out / "a.jpg").shape == (15, 20, 3)


def test_cli_usage_errors_exit_2(exported, tmp_path):
    img = tmp_path / "a.png"
    io.write_image(img, photo(20, 20))
    r = _cli(img, "--model", exported[1], "--out", tmp_path / "o", "--strength", "3")
    assert r.returncode == 2 and "strength" in r.stderr
    r = _cli(img, "--model", "no-such-model", "--out", tmp_path / "o")
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
    r = _cli(tmp_path / "empty_dir_that_is_missing", "--model", exported[1], "--out", tmp_path / "o")
    assert r.returncode == 1


# -------------------------------------------------------------------- working resolution

@pytest.mark.parametrize("size", [(150, 97), (97, 150), (301, 199), (64, 64), (9, 13), (1, 40)])
def test_work_side_keeps_size_and_aspect(ort, size):
    """Odd sizes, tiny images and images already smaller than the working side come back at
    their own size; larger ones too, through the working copy."""
    img = photo(*size, seed=3)
    for work_side in (None, 16, 64, 1024):
        out = ort.stylize(img, work_side=work_side)
        assert out.shape == img.shape and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255


def test_work_side_runs_the_network_on_the_working_copy(exported, ort):
    img = photo(240, 320, seed=4)
    small = io.resize_max_side(img, 80)
    out = ort.stylize(img, work_side=80)
    # the network saw the 60 x 80 copy: the result, shrunk back, follows that copy's stylization
    # (a random network paints fine noise the guided filter smooths: measured correlation 0.86)
    back = io.resize(out, small.shape[:2])
    full = io.resize(ort.stylize(img, work_side=None), small.shape[:2])
    corr = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]  # noqa: E731
    assert corr(back, ort.stylize(small)) > 0.75 > corr(back, full)
    # a file takes the fast path (luminance at full size, the working copy decoded small)
    path = exported[0].parent / "big.png"
    io.write_image(path, img)
    from_file = ort.stylize(path, work_side=80)
    assert from_file.shape == img.shape
    assert psnr(from_file, ort.stylize(io.read_image(path), work_side=80)) > 45
    default = Stylizer(exported[1], backend="onnxruntime", precision="fp32", work_side=64)
    assert psnr(default.stylize(img), ort.stylize(img, work_side=64)) == float("inf")


@pytest.mark.parametrize("bad", [0, 15, -1, 2.5, True, "1024"])
def test_bad_work_side_is_a_config_error(ort, exported, bad):
    with pytest.raises(ConfigError, match="work_side"):
        ort.stylize(photo(20, 20), work_side=bad)
    with pytest.raises(ConfigError, match="work_side"):
        Stylizer(exported[1], backend="onnxruntime", work_side=bad)


# ------------------------------------------------------------------ every architecture

@pytest.mark.parametrize("arch", [a for a in list_models() if a != ARCH])
def test_every_architecture_exports_runs_and_tiles_exactly(tiny_export, arch):
    """The export round trip and the exact tiling for each registered generator (the tests above
    run on johnson_lite): onnxruntime and MXNet agree, tiles give the untiled result, int8 runs."""
    model = tiny_export(arch)[1]
    ort = Stylizer(model, backend="onnxruntime", precision="fp32", work_side=None)
    img = photo(136, 176, seed=11)
    ref = ort.stylize(img)
    assert ref.shape == img.shape
    assert psnr(Stylizer(model, backend="mxnet", precision="fp32").stylize(img), ref) > 45
    tiled = Stylizer(model, backend="onnxruntime", precision="fp32", tile_pixels=64 * 64, tile_side=64,
                     blend=8, work_side=None)
    assert tiled.will_tile(136, 176)
    assert psnr(tiled.stylize(img), ref) > 55
    assert Stylizer(model, backend="onnxruntime", precision="int8").stylize(img).shape == img.shape
