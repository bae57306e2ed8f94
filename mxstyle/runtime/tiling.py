"""Stylizing large images in bounded memory: overlapping tiles with whole-image norm statistics.

Why not plain tiles: every instance norm of a generator normalizes with the mean and variance of
the *whole* image; a tile run on its own uses its own statistics, which shows as seams and tile-wise
colour shifts. With the statistics given from outside, the generator is an ordinary convolutional
network whose output pixel sees a bounded neighbourhood (its receptive field, computed from the
graph), and tiles overlapping by more than that give *exactly* the untiled result. So the work is in
getting the statistics of every normalized layer of the whole image without holding the whole
image's activations.

``stylize_exact`` (the default) computes them exactly, layer after layer. The fixed-statistics
graph is cut into *stages* at tensors every path goes through (for ``johnson``: after the encoder and
after each residual block -- 128 channels at 1/4 resolution), whose whole-image values are kept in
memory (float16, or uint8 in an int8 graph: 16 or 8 bytes per image pixel). For each stage and each
norm in it, one tiled pass from the stage's input map to that norm's input sums the per-channel
moments over the tiles' non-overlapping cores (float64, Chan's parallel variance formula); then one
tiled pass computes the stage's output map (or, for the last stage, the image, blended). By FLOPs
this is 2.4 network passes for ``johnson`` (each residual block's first conv runs 3 times, its
second twice; the decoder's first conv twice, its second three times) and 1.9 for
``johnson_lite`` (measured: 1.5x the CPU time of an untiled run at 2048 x 2048). The result differs
from the untiled run only by rounding (about 70 dB PSNR with float16 maps). A backend that cannot
cut its graph (MXNet here) runs the whole graph as one stage: exact too, but the moments pass of
norm k costs the network up to layer k (about 6 passes for ``johnson``).

``stylize_approx`` takes the statistics from one untiled pass over a downscaled copy of the image
and does one tiled pass: about 1.2 passes, but a generator is not scale invariant (its first layers
see finer detail at full size than in the copy) and the result drifts from the untiled one:
measured 22.7 dB PSNR for a random ``johnson_lite`` at 2048 x 2048 with a 1024 copy (exact: 70 dB).
A trained generator is probably less sensitive; it is offered as the cheaper option, not the default.

Tile geometry: all tile corners lie on multiples of the stage's internal stride, so strided and
upsampled layers of a tile line up with those of the whole map, and a tile touching the border
reflects where the whole map does. The output tiles are blended with complementary linear ramps
``blend`` pixels wide around each core boundary. ``tile_side`` bounds the side of a tile at the
finest resolution of a stage (and so the activation memory of one network call).
"""

import math
from fractions import Fraction

import numpy as np

from ..values import round_up

__all__ = ['axis_plan', 'TilePlan', 'Stage', 'stylize_exact', 'stylize_approx']


def axis_plan(length, cell, margin, align):
    """Split ``[0, length)`` into cores of about ``cell`` pixels with corners on multiples of
    ``align``. Returns ``[(tile_start, tile_end, core_start, core_end)]``: each tile is its core
    grown by ``margin`` on each side, clipped to ``[0, length)``."""
    n = max(1, math.ceil(length / cell))
    bounds = [0] + [int(round(k * length / n / align)) * align for k in range(1, n)] + [length]
    bounds = sorted(set(bounds))
    return [(max(0, a - margin), min(length, b + margin), a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _axis_weights(plan, k, blend, scale=1):
    """1-D blend weights of tile ``k`` over its extent, in output pixels (``scale`` per input px)."""
    t0, t1, c0, c1 = (int(v * scale) for v in plan[k])
    pos = np.arange(t0, t1, dtype=np.float64) + 0.5
    w = ((pos >= c0) & (pos < c1)).astype(np.float64)
    h = blend / 2.0
    if h > 0:
        if k > 0:  # ramp up across the boundary at c0 (the previous tile ramps down)
            band = (pos >= c0 - h) & (pos < c0 + h)
            w[band] = (pos[band] - (c0 - h)) / blend
        if k < len(plan) - 1:
            band = (pos >= c1 - h) & (pos < c1 + h)
            w[band] = 1.0 - (pos[band] - (c1 - h)) / blend
    return w.astype(np.float32)


class TilePlan:
    """Overlapping tiles of a ``height x width`` map."""

    def __init__(self, height, width, *, align, margin, tile_side, min_cell=0):
        self.height, self.width, self.align = int(height), int(width), int(align)
        self.margin = round_up(margin, self.align)
        # never let a core be smaller than the margin (that would spend most work on margins) or
        # than ``min_cell`` (the blend ramps of its two sides must not meet)
        cell = max(int(tile_side) - 2 * self.margin, self.margin, 2 * self.align, int(math.ceil(min_cell)))
        self.cell = max(self.align, cell // self.align * self.align)
        self.rows = axis_plan(self.height, self.cell, self.margin, self.align)
        self.cols = axis_plan(self.width, self.cell, self.margin, self.align)

    def __len__(self):
        return len(self.rows) * len(self.cols)

    def __iter__(self):
        """Yield ``(i, j, (ty0, ty1, cy0, cy1), (tx0, tx1, cx0, cx1))`` for every tile."""
        for i, row in enumerate(self.rows):
            for j, col in enumerate(self.cols):
                yield i, j, row, col

    def weights(self, i, j, blend, scale=1):
        return (_axis_weights(self.rows, i, blend, scale)[:, None],
                _axis_weights(self.cols, j, blend, scale)[None, :])


class Stage:
    """A piece of a fixed-statistics graph, from one whole-image map to the next.

    ``in_jump``/``out_jump``: image pixels per pixel of the input and output maps (``finest_jump``:
    of its finest tensor, which sizes its tiles); ``norms``: the norm layers inside; ``align``: the
    stage's internal stride in input-map pixels; ``radius``: its receptive-field radius in
    input-map pixels; ``out_channels``/``store_dtype``: how the
    output map is kept (not used for the last stage, whose output is the image).
    """

    def __init__(self, index, start, end, in_jump, out_jump, norms, align, radius,
                 out_channels=3, store_dtype=np.float32, last=False, finest_jump=None):
        self.index, self.start, self.end = index, start, end
        self.in_jump, self.out_jump = int(in_jump), int(out_jump)
        self.finest_jump = int(finest_jump or min([in_jump, out_jump] + [n.jump for n in norms]))
        self.norms, self.align, self.radius = list(norms), int(align), float(radius)
        self.out_channels, self.store_dtype, self.last = int(out_channels), store_dtype, last

    def __repr__(self):
        return ('Stage(%d, %s -> %s, jump %d -> %d, %d norms, align %d, radius %.0f)'
                % (self.index, self.start, self.end, self.in_jump, self.out_jump, len(self.norms),
                   self.align, self.radius))


class _ImageSource:
    """Tiles of an H x W x 3 image as 1 x 3 x h x w float32."""

    def __init__(self, image):
        self.image = image

    def tile(self, ys, xs):
        return np.ascontiguousarray(self.image[ys, xs].transpose(2, 0, 1)[None], dtype=np.float32)


class _MapSource:
    def __init__(self, array):
        self.array = array

    def tile(self, ys, xs):
        t = self.array[:, :, ys, xs]
        return np.ascontiguousarray(t, dtype=np.float32 if t.dtype == np.float16 else t.dtype)


def release_memory():
    """Give freed heap memory back to the system (glibc ``malloc_trim``; elsewhere a no-op).

    The inference threads allocate and free tensors of many sizes; glibc keeps freed blocks below
    its (self-raising, up to 32 MB) mmap threshold in per-thread heaps, so without a trim the
    resident size keeps the high-water mark of every stage and norm pass (measured: 1.5 GB
    retained after a 1024 x 1024 johnson image, 0.2 GB with a trim after each pass).
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL('libc.so.6').malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


def _chan_combine(acc, s1, m2, n):
    """Add a tile's (sum, centred sum of squares, count) to acc = [count, mean, M2] (float64)."""
    count, mean, M2 = acc
    tile_mean = s1 / n
    total = count + n
    delta = tile_mean - mean
    acc[1] = mean + delta * (n / total)
    acc[2] = M2 + m2 + delta * delta * (count * n / total)
    acc[0] = total


def stylize_exact(backend, image, *, tile_side=512, blend=32, progress=None):
    """Stylize ``image`` (H x W x 3 float32, H and W multiples of the model stride) in tiles with
    exact whole-image statistics; returns H x W x 3 float32.

    ``tile_side``: the side of a tile (margins included) at the finest resolution inside a stage,
    in image pixels: it bounds the activation memory of one network call.
    """
    h, w = image.shape[:2]
    stats = [None] * len(backend.norms)
    source = _ImageSource(image)
    out = None
    for stage in backend.stages:
        hin, win = h // stage.in_jump, w // stage.in_jump
        scale = Fraction(stage.in_jump, stage.out_jump)  # output px per input-map px
        margin = stage.radius + (blend / 2.0 / float(scale) if stage.last else 0)
        plan = TilePlan(hin, win, align=stage.align, margin=margin,
                        tile_side=tile_side * stage.finest_jump / stage.in_jump,
                        min_cell=(blend / float(scale) + 1) if stage.last else 0)
        for norm in stage.norms:
            f = Fraction(stage.in_jump, norm.jump)  # norm px per input-map px
            acc = [0.0, np.zeros(norm.channels), np.zeros(norm.channels)]
            for _i, _j, (ty0, ty1, cy0, cy1), (tx0, tx1, cx0, cx1) in plan:
                mask = np.zeros((1, 1, int((ty1 - ty0) * f), int((tx1 - tx0) * f)), np.float32)
                mask[0, 0, int((cy0 - ty0) * f):int((cy1 - ty0) * f),
                     int((cx0 - tx0) * f):int((cx1 - tx0) * f)] = 1.0
                tile = source.tile(slice(ty0, ty1), slice(tx0, tx1))
                s1, m2 = backend.run_stage_moments(stage, norm, tile, stats, mask)
                _chan_combine(acc, s1, m2, float(mask.sum()))
            stats[norm.index] = (acc[1], np.maximum(acc[2] / acc[0], 0.0))
            release_memory()
        if stage.last:
            out = np.zeros((h, w, 3), np.float32)
        else:
            nxt = np.empty((1, stage.out_channels, int(hin * scale), int(win * scale)), stage.store_dtype)
        for i, j, (ty0, ty1, cy0, cy1), (tx0, tx1, cx0, cx1) in plan:
            y = backend.run_stage(stage, source.tile(slice(ty0, ty1), slice(tx0, tx1)), stats)
            if stage.last:
                wy, wx = plan.weights(i, j, blend, scale)
                y = y[0].transpose(1, 2, 0)
                oy, ox = int(ty0 * scale), int(tx0 * scale)
                out[oy:oy + y.shape[0], ox:ox + y.shape[1]] += y * wy[:, :, None] * wx[:, :, None]
            else:
                nxt[:, :, int(cy0 * scale):int(cy1 * scale), int(cx0 * scale):int(cx1 * scale)] = \
                    y[:, :, int((cy0 - ty0) * scale):int((cy1 - ty0) * scale),
                      int((cx0 - tx0) * scale):int((cx1 - tx0) * scale)]
            if progress is not None:
                progress()
        if not stage.last:
            source = _MapSource(nxt)
            del nxt
        release_memory()
    return out


def stylize_approx(backend, image, *, stats_image, tile_side=512, blend=32, progress=None):
    """Statistics from ``stats_image`` (a downscaled copy, run untiled), then one tiled pass."""
    h, w = image.shape[:2]
    stats = backend.run_stats(np.ascontiguousarray(stats_image.transpose(2, 0, 1)[None], np.float32))
    plan = TilePlan(h, w, align=backend.stride, margin=backend.receptive_radius + blend / 2.0,
                    tile_side=tile_side, min_cell=blend + 1)
    source = _ImageSource(image)
    out = np.zeros((h, w, 3), np.float32)
    for i, j, (ty0, ty1, _, _), (tx0, tx1, _, _) in plan:
        y = backend.run_fixed(source.tile(slice(ty0, ty1), slice(tx0, tx1)), stats)[0].transpose(1, 2, 0)
        wy, wx = plan.weights(i, j, blend)
        out[ty0:ty1, tx0:tx1] += y * wy[:, :, None] * wx[:, :, None]
        if progress is not None:
            progress()
    return out
