"""Measure one engine (a model on one backend and precision) at several sizes, in its own process.

``bench/run.py`` starts this script once per engine so that each gets a fresh process: the peak RSS
it reports belongs to that engine alone. Sizes run smallest first, and the peak RSS recorded
after a size is the process's peak so far, i.e. the peak of the largest size run yet (memory
grows with the image, so it is that size's peak).

    python bench/measure.py SPEC.json      # prints one JSON record per line

SPEC: ``{"model": dir, "backend": "onnxruntime"|"openvino"|"mxnet"|"opencv"|"torch", "precision": "fp32"|"int8"|"bf16",
"sizes": [[h, w], ...], "warmup": int, "warmup_large": int, "repeats": int, "repeats_large": int, "photo": path or null,
"threads": int or null, "save_dir": dir or null, "end_to_end": [h, w] or null}``.
With ``save_dir``, the output at each size is saved as ``H x W`` ``.npy`` for the fidelity
comparison.
"""

import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mxstyle  # noqa: E402,F401  (sets OMP_NUM_THREADS before mxnet loads)
from mxstyle.system import usable_cpus  # noqa: E402
from mxstyle.values import round_up  # noqa: E402
import numpy as np  # noqa: E402

from mxstyle import io  # noqa: E402

LARGE_PIXELS = 4 * 1024 * 1024  # sizes above this get `repeats_large` runs


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def test_photo(photo, height, width):
    """The benchmark input at ``height x width``: the given photo resized (cropped to the aspect
    first), or a deterministic synthetic photo-like image when there is none."""
    if photo:
        img = io.read_image(photo)
        h, w = img.shape[:2]
        target = width / height
        if w / h > target:
            cw = int(round(h * target))
            img = img[:, (w - cw) // 2:(w - cw) // 2 + cw]
        else:
            ch = int(round(w / target))
            img = img[(h - ch) // 2:(h - ch) // 2 + ch]
        return io.resize(img, (height, width))
    rng = np.random.RandomState(0)
    small = rng.uniform(0, 255, (max(2, height // 64), max(2, width // 64), 3)).astype(np.float32)
    img = io.resize(small, (height, width))  # smooth colour fields ...
    img += rng.normal(0, 8, img.shape).astype(np.float32)  # ... with some texture
    return np.clip(img, 0, 255)


class Engine:
    """``run(image)`` -> stylized image, for one backend and precision of a model folder."""

    def __init__(self, model_dir, backend, precision, threads):
        self.tiled = None
        if backend == 'torch':
            sys.path.insert(0, str(ROOT / 'bench'))
            from torch_eager import TorchEagerNet

            from mxstyle import model_folder as cards

            card = cards.load_card(model_dir)
            self.stride = int(card['stride'])
            self.net = TorchEagerNet(cards.load_verified(model_dir, card, 'onnx_fp32'),
                                     threads=threads or usable_cpus())
            self.flops_per_pixel = card.get('flops_per_pixel')
            self.stylizer = None
        else:
            from mxstyle.runtime import Stylizer

            # the network on every pixel (tiled when large); the end-to-end case uses the defaults
            self.stylizer = Stylizer(model_dir, backend=backend, precision=precision, threads=threads,
                                     work_side=None)
            self.stride = self.stylizer.stride
            self.flops_per_pixel = self.stylizer.card.get('flops_per_pixel')

    def padded(self, h, w):
        s = self.stride
        return max(round_up(h, s), 2 * s), max(round_up(w, s), 2 * s)

    def will_tile(self, h, w):
        return bool(self.stylizer and self.stylizer.will_tile(h, w))

    def run(self, image):
        if self.stylizer is not None:
            return self.stylizer.stylize(image)
        # PyTorch eager, as a user of pytorch/examples would run it: the whole image in one pass
        h, w = image.shape[:2]
        hp, wp = self.padded(h, w)
        x = np.pad(image, ((0, hp - h), (0, wp - w), (0, 0)), mode='reflect')
        out = self.net(x.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0)[:h, :w]
        return np.clip(out, 0, 255)


def main(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    engine = Engine(spec['model'], spec['backend'], spec['precision'], spec.get('threads'))
    base = dict(backend=spec['backend'], precision=spec['precision'])
    for h, w in sorted((tuple(s) for s in spec['sizes']), key=lambda s: s[0] * s[1]):
        image = test_photo(spec.get('photo'), h, w)
        large = h * w > LARGE_PIXELS
        # above 4 MP the image runs in tiles the smaller sizes already warmed up
        for _ in range(spec.get('warmup_large', 0) if large else spec['warmup']):
            out = engine.run(image)
        times = []
        for _ in range(spec['repeats_large'] if large else spec['repeats']):
            t0 = time.perf_counter()
            out = engine.run(image)
            times.append(time.perf_counter() - t0)
        hp, wp = engine.padded(h, w)
        rec = dict(base, kind='latency', height=h, width=w, times_s=[round(t, 4) for t in times],
                   median_s=statistics.median(times), p90_s=float(np.percentile(times, 90)),
                   min_s=min(times), peak_rss_mb=round(peak_rss_mb(), 1), tiled=engine.will_tile(h, w),
                   flops=None if engine.flops_per_pixel is None else engine.flops_per_pixel * hp * wp)
        if spec.get('save_dir'):
            np.save(Path(spec['save_dir']) / f'{h}x{w}.npy', out.astype(np.float32))
        del out
        print(json.dumps(rec), flush=True)
    if spec.get('end_to_end'):
        from mxstyle.runtime import DEFAULT_WORK_SIDE, Stylizer

        h, w = spec['end_to_end']
        work_side = spec.get('work_side', 'default')
        if engine.stylizer is not None:
            settings = {} if work_side == 'default' else dict(work_side=work_side)
            stylizer = Stylizer(spec['model'], backend=spec['backend'], precision=spec['precision'],
                                threads=spec.get('threads'), **settings)  # what a user gets
            stylize_file = stylizer.stylize
        else:  # PyTorch eager as its users run it: decode, the whole photo through the network
            work_side = None
            stylize_file = lambda path: engine.run(io.read_image(path))  # noqa: E731
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / 'photo.jpg', Path(tmp) / 'styled.jpg'
            io.write_image(src, test_photo(spec.get('photo'), h, w), quality=92)
            times = []
            for k in range(spec.get('warmup', 0) + max(1, spec['repeats_large'])):
                t0 = time.perf_counter()
                io.write_image(dst, stylize_file(src), quality=92)
                if k >= spec.get('warmup', 0):
                    times.append(time.perf_counter() - t0)
        print(json.dumps(dict(base, kind='end_to_end', height=h, width=w, times_s=[round(t, 4) for t in times],
                              work_side=DEFAULT_WORK_SIDE if work_side == 'default' else work_side,
                              median_s=statistics.median(times), p90_s=float(np.percentile(times, 90)),
                              min_s=min(times), peak_rss_mb=round(peak_rss_mb(), 1))), flush=True)


if __name__ == '__main__':
    main(sys.argv[1])
