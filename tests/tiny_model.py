"""A tiny exported model for the runtime and bench tests: a random generator written by the real
exporter, with int8 files for both backends (a fidelity bound of 0 dB keeps them)."""
import mxnet as mx
import numpy as np
from mxnet import gluon

from mxstyle import io
from mxstyle.export import export_model
from mxstyle.models import get_model
from mxstyle.training.checkpoint import save_checkpoint


def photo(h, w, seed=0):
    """A photo-like test image: smooth gradients, edges (disks), fine texture and noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(x / (7.0 + seed) + y / 23.0), 128 + 80 * np.cos(y / 9.0),
                    255.0 * (x + y) / (h + w)], 2)
    for _ in range(max(3, h * w // 20000)):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, max(6, min(h, w) / 6))
        img += (((y - cy) ** 2 + (x - cx) ** 2) < r * r)[:, :, None] * rng.uniform(-90, 90, 3)
    img += (25 * np.sin(x / 1.7) * np.cos(y / 2.3) * (x > w / 2))[:, :, None]
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.float32)


def painting(h, w, seed=0):
    """A painting-like test image: coloured stripes and noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([255 * ((x + y) // 6 % 2), 200 * (x // 4 % 2), 128 + 60 * np.sin(y)], axis=2)
    return np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.float32)


def export_tiny(root, arch="johnson_lite", name="tiny", style_image=False):
    """Export a randomly initialized ``arch`` as model ``name`` under ``root/models`` (with a
    ``style.jpg`` when ``style_image``); returns ``(models folder, model folder, run folder)``."""
    style = None
    if style_image:
        style = root / "painting.png"
        io.write_image(style, painting(96, 80))
    mx.random.seed(0)
    generator = get_model(arch)
    size = max(32, generator.min_size)  # calibration and bench crops the network accepts
    for i in range(5):
        io.write_image(root / "photos" / f"p{i}.png", photo(max(40, size), max(56, size + 16), seed=i))
    generator.initialize(mx.init.Xavier(magnitude=2.0))
    rng = np.random.RandomState(0)
    for pname, p in generator.collect_params().items():  # biases, gammas and betas matter too
        if not pname.endswith("weight"):
            p.set_data(p.data() + mx.nd.array(rng.normal(0, 0.1, p.shape)))
    trainer = gluon.Trainer(generator.collect_params(), "adam", {"learning_rate": 1e-3})
    state = dict(run=dict(options=dict(arch=arch, data=str(root / "photos")), arch=arch,
                          stride=generator.stride))
    save_checkpoint(root / "run", 1, generator, trainer, state)
    models = root / "models"
    export_model(root / "run", name, models / name, int8=True, calib=root / "photos", calib_count=3,
                 holdout_count=1, calib_size=size, bench_size=size, bench_runs=1, min_psnr=0.0, min_speedup=0.0,
                 style_image=style, progress=False, log=lambda *a, **k: None)
    return models, models / name, root / "run"
