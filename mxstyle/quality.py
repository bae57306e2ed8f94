"""Measured quality of a stylized image: its content and style losses, the yardstick of
``tools/evaluate.py``.

For a photo, a painting and a result (all RGB 0-255), through the same ImageNet VGG16:

- content loss at ``relu2_2`` and at ``relu4_2``: mean squared difference of the result's and
  the photo's feature maps (each layer reported on its own);
- style loss: the sum over ``relu1_1 .. relu5_1`` of the mean squared difference of the Gram
  matrices (normalized by C*H*W) of the result and the painting.

- blown-out highlights (:func:`blown_out`): the share of pixels the result turns white where the
  photo was not, the fast models' most visible flaw; the losses barely see it.

These are the conventions of :mod:`mxstyle.losses` with all weights 1, so the numbers of a
feed-forward model and of Gatys optimization (:func:`mxstyle.optimize.stylize_gatys`) compare
directly: lower is closer, and their ratio says how much quality the fast method gives up.
"""

import mxnet as mx
import numpy as np

from . import io
from .losses import gram_matrix
from .vgg import load_vgg16

__all__ = ['CONTENT_LAYERS', 'STYLE_LAYERS', 'QualityMeter', 'psnr', 'blown_out']

CONTENT_LAYERS = ('relu2_2', 'relu4_2')
STYLE_LAYERS = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')


def psnr(a, b, cap=None):
    """Peak signal-to-noise ratio in dB of two 0-255 images or batches: inf when they are equal,
    or at most ``cap`` dB when given (JSON has no inf)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    value = float('inf') if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))
    return value if cap is None else min(float(cap), value)


def _check_same_size(result, photo):
    if np.shape(result) != np.shape(photo):
        raise ValueError(f'result {np.shape(result)} and photo {np.shape(photo)} differ in size')


def blown_out(result, photo, level=250):
    """Fraction of pixels whose every channel is >= ``level`` in ``result`` but not in ``photo``
    (0-255 images of one size): highlights the stylization blew out to white."""
    _check_same_size(result, photo)
    result, photo = np.asarray(result), np.asarray(photo)
    return float(np.mean((result >= level).all(axis=-1) & ~(photo >= level).all(axis=-1)))


class QualityMeter:
    """``meter(result, photo)`` -> ``{"content_relu2_2", "content_relu4_2", "style"}`` against one
    painting. The painting's Gram matrices are computed once, at ``style_size`` (longest side)."""

    def __init__(self, style_image, *, style_size=512, vgg_weights='imagenet', ctx=None):
        self.ctx = ctx or mx.cpu()
        self.layers = tuple(l for l in ('relu1_1', 'relu2_1', 'relu2_2', 'relu3_1', 'relu4_1', 'relu4_2',
                                        'relu5_1'))
        self.vgg = load_vgg16(self.layers, weights=vgg_weights, ctx=self.ctx)
        style = io.resize_max_side(io.read_image(style_image), style_size)
        feats = self._features(style)
        self.style_grams = {l: gram_matrix(mx.nd, feats[l]) for l in STYLE_LAYERS}

    def _features(self, image):
        x = mx.nd.array(io.to_tensor(np.asarray(image, np.float32)), ctx=self.ctx)
        return dict(zip(self.layers, self.vgg(x)))

    def __call__(self, result, photo):
        _check_same_size(result, photo)
        out, ref = self._features(result), self._features(photo)
        values = {f'content_{l}': float(mx.nd.mean((out[l] - ref[l]) ** 2).asscalar()) for l in CONTENT_LAYERS}
        values['style'] = float(sum(mx.nd.mean((gram_matrix(mx.nd, out[l]) - self.style_grams[l]) ** 2).asscalar()
                                    for l in STYLE_LAYERS))
        return values
