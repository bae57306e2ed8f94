"""The training graph: generator and perceptual loss as one hybridized symbolic graph.

    photos ──> generator ──> logits ──> tanh ──> stylized ──> VGG (to the deepest loss layer) ─┐
       │                       └──> saturation penalty                                       ├─> losses
       └──> VGG (to the content layers only, no gradient) ───────────────────────────────────┘

The saturation penalty, ``saturation_weight * mean(relu(|logits| - SATURATION_MARGIN) ** 2)``,
keeps the logits where tanh still passes a gradient: saturated pixels are invisible to the content
and style losses (docs/training.md, "The saturation penalty").

The VGG weights have ``grad_req='null'`` and the photo's branch is cut with ``BlockGrad``, so a
backward pass computes only what the generator's weight gradients need.

The generator is traced in its *training formulation* (:func:`mxstyle.models.layers.training_formulation`),
the same function with the same parameters on faster kernels (docs/training.md, "Step speed"). It
needs the graph to run in training mode, which :meth:`TrainingGraph.forward` ensures; the
generator on its own (previews, export) is untouched.

This module owns the training loss's defaults (:data:`TRAIN_LOSS_DEFAULTS`,
:data:`DEFAULT_SATURATION_WEIGHT`); :class:`mxstyle.training.TrainOptions` takes its own from them.
"""
import contextlib
from types import MappingProxyType

from mxnet import autograd, ndarray
from mxnet.gluon import HybridBlock

from ..errors import ConfigError
from ..losses import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, LossConfig, PerceptualLoss
from ..models.layers import NormScratch, tanh_to_pixels, training_formulation
from ..vgg import load_vgg16

# The default trains what the evaluation measures, Gatys's layers: content relu4_2, style
# relu1_1..relu5_1, not Johnson et al.'s relu2_2 and relu1_2/2_2/3_3/4_3 (77% of a Johnson-trained
# model's remaining style loss sat in relu3_1). The weights are the shipped langlois_s8's; the
# study behind them: docs/training.md.
TRAIN_CONTENT_LAYERS = DEFAULT_CONTENT_LAYERS
TRAIN_STYLE_LAYERS = DEFAULT_STYLE_LAYERS
#: The loss ``mxstyle train`` optimizes unless told otherwise: :class:`LossConfig` keywords.
TRAIN_LOSS_DEFAULTS = MappingProxyType(dict(content_layers=TRAIN_CONTENT_LAYERS, style_layers=TRAIN_STYLE_LAYERS,
                                            content_weight=5.0, style_weight=8.0, tv_weight=10.0,
                                            style_layer_weights=None))
# Logits beyond +-2.5 (outputs within 1.7 of 0 or 255; tanh's gradient below 0.027) are penalized.
SATURATION_MARGIN = 2.5
DEFAULT_SATURATION_WEIGHT = 1000.0  # what it buys, measured: docs/training.md


def default_train_config(**overrides):
    """The :class:`LossConfig` of :data:`TRAIN_LOSS_DEFAULTS`, with the ``overrides`` that are not None."""
    options = dict(TRAIN_LOSS_DEFAULTS)
    options.update({k: v for k, v in overrides.items() if v is not None})
    return LossConfig(**options)


class TrainingGraph(HybridBlock):
    """``forward(photos, *style_grams) -> (loss, content, style, tv, saturation, stylized)``.

    The five losses are batch means (scalars of shape (1,)); ``loss`` includes the weighted
    saturation penalty (see the module docstring), which needs the generator's ``logits(F, x)``
    (every built-in generator has one; for a generator without it the penalty is 0).
    ``stylized`` is the generator's output, returned so the trainer can watch it for collapse
    without a second pass.

    ``fast_layers`` (default True) traces the generator in its training formulation (see the
    module docstring); False keeps MXNet's own InstanceNorm and convolution, for comparison.
    """

    def __init__(self, generator, loss, fast_layers=True, saturation_weight=DEFAULT_SATURATION_WEIGHT,
                 **kwargs):
        super().__init__(**kwargs)
        if not saturation_weight >= 0:
            raise ConfigError(f"saturation_weight must be >= 0, not {saturation_weight}")
        self.fast_layers = bool(fast_layers)
        self.saturation_weight = float(saturation_weight)
        with self.name_scope():
            self.generator = generator
            self.loss = loss
            self.norm_scratch = NormScratch(0)

    def forward(self, photos, *style_grams):
        if not self.fast_layers:
            return super().forward(photos, *style_grams)
        if isinstance(photos, ndarray.NDArray) and photos.shape[0] != self.norm_scratch.batch_size:
            # The BatchNorm buffers are sized batch x channels: new ones for a new batch size
            # (assigning a child block also drops the cached graph, so it is traced again).
            with self.name_scope():
                self.norm_scratch = NormScratch(photos.shape[0])
        # BatchNorm normalizes with the batch statistics only in training mode; nothing else in
        # this graph depends on the mode, so always run it so (recording is not affected).
        with autograd.train_mode():
            return super().forward(photos, *style_grams)

    def hybrid_forward(self, F, photos, *style_grams):
        fast = training_formulation(self.norm_scratch) if self.fast_layers else contextlib.nullcontext()
        with fast:
            if callable(getattr(self.generator, "logits", None)):
                logits = self.generator.logits(F, photos)
                stylized = tanh_to_pixels(F, logits)
                beyond = F.relu(F.abs(logits) - SATURATION_MARGIN)
                saturation = self.saturation_weight * F.mean(F.square(beyond), axis=(1, 2, 3))
            else:  # a generator of one's own without a tanh output: nothing saturates
                stylized = self.generator(photos)
                saturation = 0 * F.mean(stylized, axis=(1, 2, 3))
        content_targets = self.loss.content_vgg(F.BlockGrad(photos))
        total, content, style, tv = self.loss(stylized, *content_targets, *style_grams)
        total = total + saturation
        return F.mean(total), F.mean(content), F.mean(style), F.mean(tv), F.mean(saturation), stylized


def build_training_graph(generator, config, *, vgg_weights="imagenet", ctx=None, fast_layers=True,
                         saturation_weight=DEFAULT_SATURATION_WEIGHT, precision="float32"):
    """Wrap an initialized generator with a VGG16 perceptual loss for ``config`` (and the
    saturation penalty, when ``saturation_weight`` > 0), the VGG computing in ``precision``
    (:mod:`mxstyle.vgg`; the generator is always float32)."""
    vgg = load_vgg16(config.vgg_layers, weights=vgg_weights, ctx=ctx, hybridize=False, precision=precision)
    loss = PerceptualLoss(vgg, config)
    graph = TrainingGraph(generator, loss, fast_layers=fast_layers, saturation_weight=saturation_weight)
    graph.hybridize(static_alloc=True, static_shape=True)
    return graph, loss


__all__ = ["TrainingGraph", "build_training_graph", "default_train_config", "DEFAULT_STYLE_LAYERS",
           "TRAIN_CONTENT_LAYERS", "TRAIN_STYLE_LAYERS", "TRAIN_LOSS_DEFAULTS", "SATURATION_MARGIN",
           "DEFAULT_SATURATION_WEIGHT"]
