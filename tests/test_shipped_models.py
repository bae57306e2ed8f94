"""The style models shipped in models/: each loads by name with its files verified against its card,
and stylizes a small image on every installed backend and precision it has."""
import json
from pathlib import Path

import numpy as np
import pytest

import mxstyle
from mxstyle.runtime import DEFAULT_MODEL, PREFERENCE, Stylizer
from mxstyle.runtime.backends import backend_available, openvino_has_bf16
from mxstyle.models import list_models
from mxstyle.runtime import ROLES
from tiny_model import photo

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = sorted(p.name for p in MODELS.iterdir() if (p / "model.json").is_file())
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _engines(name):
    """The engines the model's card allows: its files, and for bf16 a passed gate."""
    card = json.loads((MODELS / name / "model.json").read_text())
    return [(b, p) for b, p in PREFERENCE if all(r in card["files"] for r in ROLES[(b, p)])
            and (p != "bf16" or ((card.get("bf16") or {}).get(b) or {}).get("kept"))]


def test_the_default_model_is_shipped_and_listed():
    assert DEFAULT_MODEL in SHIPPED
    assert set(SHIPPED) <= set(mxstyle.list_models())
    assert Stylizer().name == DEFAULT_MODEL


@pytest.mark.parametrize("name", SHIPPED)
def test_card_is_complete(name):
    card = json.loads((MODELS / name / "model.json").read_text())
    assert card["name"] == name
    assert card["arch"] in list_models()  # a registered generator
    assert card["style"]["license"] and (MODELS / name / "style.jpg").is_file()
    assert card["training"]["steps"] > 0
    sizes = sum((MODELS / name / f["path"]).stat().st_size for f in card["files"].values())
    assert sizes < 20e6  # small enough to commit


@pytest.mark.parametrize("name,engine", [(n, e) for n in SHIPPED for e in _engines(n)],
                         ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_stylizes_on_each_installed_backend(name, engine):
    backend, precision = engine
    if not backend_available(backend):
        pytest.skip(f"{backend} is not installed")
    if precision == "bf16" and not openvino_has_bf16():
        pytest.skip("this CPU does not compute bf16 natively")
    s = Stylizer(name, backend=backend, precision=precision)  # verifies every file's sha256
    img = photo(70, 90)
    out = s.stylize(img)
    assert out.shape == img.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 255
    assert np.abs(out - img).mean() > 5  # it changed the photo
    assert out.std() > 5  # and did not collapse to a flat image


@pytest.mark.parametrize("name", [n for n in SHIPPED if any(p == "int8" for _, p in _engines(n))])
def test_int8_stays_within_its_fidelity_bound(name):
    from mxstyle.quality import psnr

    card = json.loads((MODELS / name / "model.json").read_text())
    for role in ("onnx_int8", "mxnet_int8_symbol"):
        if role in card["files"]:
            fidelity = card["files"][role]["fidelity"]
            assert fidelity["psnr_db_mean"] >= fidelity["min_psnr_db"] >= 35.0
    backend = "onnxruntime" if "onnx_int8" in card["files"] else "mxnet"
    if not backend_available(backend):
        pytest.skip(f"{backend} is not installed")
    img = photo(96, 128)
    fp32 = Stylizer(name, backend=backend, precision="fp32").stylize(img)
    int8 = Stylizer(name, backend=backend, precision="int8").stylize(img)
    # the gate measured real photos at 512 px; this synthetic image (sharp disks, fine stripes,
    # noise) is harder for int8, hence the looser bound
    assert psnr(int8, fp32) >= 32.0
