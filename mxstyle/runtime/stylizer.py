"""``Stylizer``: load an exported model folder once, stylize any number of images with it.

>>> from mxstyle.runtime import Stylizer
>>> s = Stylizer('langlois_s8')                   # a name in models/ (or $MXSTYLE_MODELS), or a path
>>> out = s.stylize('photo.jpg', max_side=2048)   # H x W x 3 float32 RGB in [0, 255]
>>> s.backend, s.precision                        # what 'auto' picked, e.g. ('onnxruntime', 'int8')
"""

import math
import os

import numpy as np

from .. import io
from .. import model_folder as cards
from ..color import luminance_u8
from ..errors import ConfigError
from ..model_folder import ModelError
from ..values import is_integer, round_up
from . import tiling, upsample
from .backends import (BACKENDS, MXNetBackend, OnnxRuntimeBackend, OpenCVBackend, OpenVINOBackend,
                       backend_available, openvino_has_bf16)

__all__ = ['Stylizer', 'PRECISIONS', 'PREFERENCE', 'ROLES', 'DEFAULT_WORK_SIDE', 'DEFAULT_TILE_PIXELS',
           'DEFAULT_TILE_SIDE']

PRECISIONS = ('fp32', 'int8', 'bf16')

#: Backend and precision -> the card roles (:mod:`mxstyle.model_folder`) they load.
ROLES = {
    ('onnxruntime', 'fp32'): ('onnx_fp32',),
    ('onnxruntime', 'int8'): ('onnx_int8',),
    ('mxnet', 'fp32'): ('mxnet_fp32_symbol', 'mxnet_fp32_params'),
    ('mxnet', 'int8'): ('mxnet_int8_symbol', 'mxnet_int8_params'),
    ('openvino', 'fp32'): ('onnx_fp32',),
    ('openvino', 'bf16'): ('onnx_fp32',),  # bf16 is how OpenVINO computes, not a file of its own
    ('opencv', 'fp32'): ('onnx_fp32',),
}

#: What ``backend="auto", precision="auto"`` tries, fastest first among the backends that tile
#: (``bench/run.py``, 2 AVX2 cores, ``johnson`` at 1024 px: onnxruntime int8 4.6 s, fp32 6.7 s,
#: MXNet fp32 10.2 s). OpenCV dnn is last although it measured 4.1 s there: it cannot tile, so a
#: 12 MP photo takes 18 GB with it.
PREFERENCE = (('openvino', 'bf16'), ('openvino', 'fp32'), ('onnxruntime', 'int8'), ('onnxruntime', 'fp32'),
              ('mxnet', 'int8'), ('mxnet', 'fp32'), ('opencv', 'fp32'))

#: The network runs on a copy whose longer side is at most this, and the guided upsampler brings the
#: result back to the photo's resolution (:mod:`mxstyle.runtime.upsample`); None: full resolution.
DEFAULT_WORK_SIDE = 1024

#: Images with more (padded) pixels than this are stylized in tiles...
DEFAULT_TILE_PIXELS = 1024 * 1024
#: ... of this side (margins included). Measured peak RSS of a whole run (read a 4000 x 3000 JPEG,
#: stylize with the johnson ``langlois`` model, write it) on onnxruntime int8: 1.63 GB.
DEFAULT_TILE_SIDE = 512

_INSTALL = {'onnxruntime': 'pip install onnxruntime', 'openvino': 'pip install openvino',
            'mxnet': 'pip install mxnet==1.9.1',
            'opencv': 'pip install "opencv-python-headless<4.12"'}


class Stylizer:
    """A loaded style model, ready to stylize images from any number of threads.

    Parameters
    ----------
    name_or_path : str, path or None
        A model folder (holding ``model.json``) or the name of one in ``$MXSTYLE_MODELS`` or the
        repository's ``models/`` folder; None (the default) loads :data:`DEFAULT_MODEL`.
    backend : ``"auto"``, ``"onnxruntime"``, ``"openvino"``, ``"mxnet"`` or ``"opencv"``
        ``auto`` picks the fastest installed backend that has a file in the model folder
        (see :data:`PREFERENCE`).
    precision : ``"auto"``, ``"fp32"``, ``"int8"`` or ``"bf16"``
        int8 files exist only when they passed the exporter's fidelity gate; bf16 (OpenVINO only)
        runs only when the card records that it passed its gate, on a CPU that computes bf16
        natively. ``auto`` takes the first of :data:`PREFERENCE` that the model and this machine
        allow. OpenCV runs fp32 only.
    threads : int or None
        Intra-op threads (onnxruntime session option; OpenVINO's ``INFERENCE_NUM_THREADS``;
        OpenCV's ``setNumThreads``, process-wide).
        MXNet's thread pool is process-wide and fixed at import (``OMP_NUM_THREADS``).
    work_side : int or None
        The default of :meth:`stylize`'s ``work_side``: photos larger than this are stylized on a
        copy with this longer side and upsampled edge-aware; None stylizes every pixel.
    tile_pixels : int
        Images with more pixels than this (after padding to the stride) are stylized in
        overlapping tiles, bounding memory (see :mod:`mxstyle.runtime.tiling`). OpenCV always runs
        untiled.
    tile_side : int
        Side of a tile in pixels (margins included; at the finest resolution of each stage).
    tile_mode : ``"exact"`` or ``"approx"``
        How tiles get the whole image's instance-norm statistics: exactly (about 2.4x the work of
        one pass for ``johnson``), or from a downscaled copy (about 1.1x, visibly different).
    blend : int
        Width in pixels of the linear ramps that blend neighbouring tiles.
    stats_side : int
        Longest side of the downscaled copy in ``approx`` mode.

    Loading verifies the sha256 and size of every file it uses against the card and raises
    :class:`~mxstyle.runtime.ModelError` for a missing, tampered or truncated file.
    """

    def __init__(self, name_or_path=None, backend='auto', precision='auto', threads=None, *,
                 work_side=DEFAULT_WORK_SIDE, tile_pixels=DEFAULT_TILE_PIXELS, tile_side=DEFAULT_TILE_SIDE, tile_mode='exact',
                 blend=32, stats_side=1024):
        if backend not in ('auto',) + BACKENDS:
            raise ConfigError(f'unknown backend {backend!r}; choose auto, {", ".join(BACKENDS)}')
        if precision not in ('auto',) + PRECISIONS:
            raise ConfigError(f'unknown precision {precision!r}; choose auto, {", ".join(PRECISIONS)}')
        if threads is not None and (not is_integer(threads) or threads < 1):
            raise ConfigError(f'threads must be a positive integer or None, got {threads!r}')
        if tile_mode not in ('exact', 'approx'):
            raise ConfigError(f'unknown tile_mode {tile_mode!r}; choose exact or approx')
        for label, value, low in (('tile_pixels', tile_pixels, 16 * 16), ('tile_side', tile_side, 16),
                                  ('blend', blend, 0),
                                  ('stats_side', stats_side, 16)):
            if not is_integer(value) or value < low:
                raise ConfigError(f'{label} must be an integer >= {low}, got {value!r}')
        self.work_side = self._check_work_side(work_side)
        self.model_dir = cards.resolve_model_dir(cards.DEFAULT_MODEL if name_or_path is None else name_or_path)
        self.card = cards.load_card(self.model_dir)
        self.name = self.card.get('name') or self.model_dir.name
        self.stride = int(self.card['stride'])
        self.tile_pixels, self.tile_side, self.tile_mode = int(tile_pixels), int(tile_side), tile_mode
        self.blend, self.stats_side = int(blend), int(stats_side)
        self.threads = threads
        self.backend, self.precision = self._choose(backend, precision)
        self._engine = self._load()
        self.tiling_note = getattr(self._engine, 'tiling_note', None)

    # ------------------------------------------------------------------------ loading

    def _choose(self, backend, precision):
        wanted = [(b, p) for b, p in PREFERENCE
                  if backend in ('auto', b) and precision in ('auto', p)]
        if not wanted:
            runs = sorted({p for b, p in ROLES if b == backend})
            raise ConfigError(f'the {backend} backend runs {" or ".join(runs)}, not {precision}; choose '
                              'another precision or backend')
        reasons = []
        for b, p in wanted:
            # the exporter lists an int8 file only when it passed the fidelity gate
            missing = [r for r in ROLES[(b, p)] if not isinstance(self.card['files'].get(r), dict)]
            if missing:
                reasons.append(f'{b} {p}: the model has no {"/".join(missing)} file'
                               + (' (int8 files are exported only when they pass the fidelity '
                                  'gate)' if p == 'int8' else ''))
                continue
            if not backend_available(b):
                reasons.append(f'{b} {p}: {b} is not installed ({_INSTALL[b]})')
                continue
            if p == 'bf16':
                gate = (self.card.get('bf16') or {}).get(b) or {}
                if not gate.get('kept'):
                    reasons.append(f'{b} bf16: the model has not passed the bf16 fidelity gate '
                                   '(export it with --bf16 on a CPU with AVX512_BF16)')
                    continue
                if not openvino_has_bf16():
                    reasons.append(f'{b} bf16: this CPU does not compute bf16 natively (no '
                                   'AVX512_BF16 or AMX)')
                    continue
            return b, p
        roles = ', '.join(sorted(self.card['files'])) or 'none'
        raise ModelError(f'model {self.name!r} ({self.model_dir}) cannot run with backend={backend}, '
                         f'precision={precision}: ' + '; '.join(reasons) + f'. Its files: {roles}')

    def _load(self):
        label = f'model {self.name!r}'
        files = {}
        for role in ROLES[(self.backend, self.precision)]:
            # the verified bytes are what is loaded: the file cannot change in between
            files[role] = cards.load_verified(self.model_dir, self.card, role)
        if self.backend == 'onnxruntime':
            return OnnxRuntimeBackend(files[f'onnx_{self.precision}'], stride=self.stride,
                                      threads=self.threads, label=label)
        if self.backend == 'openvino':
            return OpenVINOBackend(files['onnx_fp32'], stride=self.stride, threads=self.threads,
                                   label=label, precision=self.precision)
        if self.backend == 'opencv':
            return OpenCVBackend(files['onnx_fp32'], stride=self.stride, threads=self.threads,
                                 label=label)
        sym = files[f'mxnet_{self.precision}_symbol'].decode('utf-8', errors='replace')
        return MXNetBackend(sym, files[f'mxnet_{self.precision}_params'], stride=self.stride,
                            threads=self.threads, label=label)

    def __repr__(self):
        return (f'Stylizer({self.name!r}, backend={self.backend!r}, precision={self.precision!r}, '
                f'arch={self.card.get("arch")!r}, dir={str(self.model_dir)!r})')

    # ---------------------------------------------------------------------- stylizing

    def stylize(self, image, *, max_side=None, strength=1.0, preserve_colors=False, work_side='default',
                name=None, max_pixels=io.DEFAULT_MAX_PIXELS):
        """Stylize one image: a path, encoded bytes, a numpy array or a PIL image.

        ``max_side`` first shrinks the image so its longer side is at most that many pixels;
        ``strength`` blends the result with the photo (0 = the photo, 1 = full style);
        ``preserve_colors`` keeps the photo's chroma (YIQ) and takes the luminance of the
        result. ``work_side`` (default: the Stylizer's, :data:`DEFAULT_WORK_SIDE`): a photo whose
        longer side is larger is stylized on a copy of that size (for a JPEG decoded at reduced
        scale), then brought back to its own size by the guided upsampler with the photo's luminance
        as the guide, so the brush strokes keep the same size on any camera and the edges stay
        sharp; ``None`` runs the network on every pixel (in exact tiles above ``tile_pixels``).
        Any size works (the image is reflect-padded to the model's stride and cropped back).
        ``name`` names encoded bytes in error messages (e.g. an upload's file name); images with
        more than ``max_pixels`` pixels are refused before decoding (None: no limit).
        Returns an H x W x 3 float32 RGB array in [0, 255]. Unreadable images raise
        :class:`~mxstyle.errors.ImageError`.
        """
        strength = self._check_strength(strength)
        work_side = self.work_side if work_side == 'default' else self._check_work_side(work_side)
        if isinstance(image, (str, os.PathLike)):  # the file is read once, decoded as needed
            name, image = os.fspath(image), io.read_file(image)
        limits = dict(name=name, max_pixels=max_pixels)
        if work_side is not None and max_side is None and strength == 1.0 and not preserve_colors \
                and isinstance(image, (bytes, bytearray, memoryview)) and io.is_jpeg(image) \
                and max(io.image_size(image) or (0,)) > work_side:
            # the fast path (libjpeg): the full size decoded as luma only, the working copy small
            guide = io.read_luminance(image, **limits)
            work = io.read_image(image, max_side=work_side, **limits)
            return upsample.guided_upsample(self._run(work), luminance_u8(work), guide)
        photo = io.read_image(image, max_side=max_side, **limits)
        if strength == 0.0:
            return photo
        if work_side is not None and max(photo.shape[:2]) > work_side:
            work = io.resize_max_side(photo, work_side)
            out = upsample.guided_upsample(self._run(work), luminance_u8(work), luminance_u8(photo))
        else:
            out = self._run(photo)
        if preserve_colors:
            from ..color import keep_colors

            out = keep_colors(out, photo)
        if strength < 1.0:
            out *= strength
            out += (1.0 - strength) * photo
        return out

    def stylize_batch(self, images, **options):
        """:meth:`stylize` for each image of ``images``, in order; returns a list."""
        return [self.stylize(image, **options) for image in images]

    @staticmethod
    def _check_work_side(work_side):
        if work_side is not None and (not is_integer(work_side) or work_side < 16):
            raise ConfigError(f'work_side must be an integer of at least 16, or None, got {work_side!r}')
        return None if work_side is None else int(work_side)

    @staticmethod
    def _check_strength(strength):
        try:
            value = float(strength)
        except (TypeError, ValueError):
            raise ConfigError(f'strength must be a number from 0 to 1, got {strength!r}') from None
        if isinstance(strength, bool) or not 0.0 <= value <= 1.0 or math.isnan(value):
            raise ConfigError(f'strength must be a number from 0 to 1, got {strength!r}')
        return value

    def padded_size(self, height, width):
        """The size an ``height x width`` image is reflect-padded to before the network."""
        s = self.stride
        return (max(round_up(height, s), 2 * s), max(round_up(width, s), 2 * s))

    def will_tile(self, height, width):
        """True if an image of this size (after ``max_side``) is stylized in tiles."""
        hp, wp = self.padded_size(height, width)
        return hp * wp > self.tile_pixels and bool(getattr(self._engine, 'supports_tiling', False))

    def _run(self, photo):
        h, w = photo.shape[:2]
        hp, wp = self.padded_size(h, w)
        padded = photo if (hp, wp) == (h, w) else _reflect_pad(photo, hp, wp)
        engine = self._engine
        if self.will_tile(h, w):
            if self.tile_mode == 'exact':
                out = tiling.stylize_exact(engine, padded, tile_side=self.tile_side, blend=self.blend)
            else:
                small = io.resize_max_side(padded, min(self.stats_side, max(hp, wp)))
                sh, sw = self.padded_size(*small.shape[:2])
                small = io.resize(small, (sh, sw))
                out = tiling.stylize_approx(engine, padded, stats_image=small,
                                            tile_side=self.tile_side, blend=self.blend)
        else:
            x = np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32)
            out = engine.run(x)[0].transpose(1, 2, 0)
        del padded
        out = out[:h, :w]
        out = np.clip(out, 0.0, 255.0, out=np.ascontiguousarray(out, dtype=np.float32))
        return out


def _reflect_pad(img, hp, wp):
    """Reflect-pad an H x W x 3 image at the bottom and right to ``hp x wp``."""
    h, w = img.shape[:2]
    # numpy's reflect needs at least 2 pixels along an axis; 'edge' is the only choice below that
    mode_h = 'reflect' if h > 1 else 'edge'
    mode_w = 'reflect' if w > 1 else 'edge'
    if mode_h == mode_w:
        return np.pad(img, ((0, hp - h), (0, wp - w), (0, 0)), mode=mode_h)
    img = np.pad(img, ((0, hp - h), (0, 0), (0, 0)), mode=mode_h)
    return np.pad(img, ((0, 0), (0, wp - w), (0, 0)), mode=mode_w)
