"""The training graph: generator and perceptual loss as one hybridized symbolic graph.

    photos ──> generator ──> stylized ──> VGG (to the deepest loss layer) ──┐
       │                                                                   ├─> content, style, tv
       └──> VGG (to the content layers only, no gradient) ─────────────────┘

The VGG weights have ``grad_req='null'`` and the photo's branch is cut with ``BlockGrad``, so a
backward pass computes only what the generator's weight gradients need.

The generator is traced in its *training formulation* (:func:`mxstyle.models.layers.training_formulation`):
instance norm as a oneDNN BatchNorm over the (1, N*C, H, W) view, and the 9x9 RGB output conv
reshaped to stay on oneDNN's vectorized kernels -- the same function with the same parameters. With
the VGG and Gram changes that made a ``johnson`` step (4 x 256 x 256) 1.8x faster on 2 AVX2 cores,
10.0 s -> 5.5 s (``bench/train_step.py``). That formulation needs the graph to run in training mode,
which :meth:`TrainingGraph.forward` ensures; the generator on its own (previews, export) is untouched.
"""
import contextlib

from mxnet import autograd, ndarray
from mxnet.gluon import HybridBlock

from ..losses import DEFAULT_STYLE_LAYERS, LossConfig, PerceptualLoss
from ..models.layers import NormScratch, training_formulation
from ..vgg import load_vgg16

# Johnson et al. 2016: content at relu2_2, style at relu1_2, relu2_2, relu3_3, relu4_3.
TRAIN_CONTENT_LAYERS = ("relu2_2",)
TRAIN_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


def default_train_config(**overrides):
    """The loss configuration that tools/train.py uses unless told otherwise."""
    options = dict(content_layers=TRAIN_CONTENT_LAYERS, style_layers=TRAIN_STYLE_LAYERS,
                   content_weight=1.0, style_weight=3.0, tv_weight=10.0)
    options.update({k: v for k, v in overrides.items() if v is not None})
    return LossConfig(**options)


class TrainingGraph(HybridBlock):
    """``forward(photos, *style_grams) -> (loss, content, style, tv, stylized)``.

    The four losses are batch means (scalars of shape (1,)); ``stylized`` is the generator's
    output, returned so the trainer can watch it for collapse without a second pass.

    ``fast_layers`` (default True) traces the generator in its training formulation (see the
    module docstring); False keeps MXNet's own InstanceNorm and convolution, for comparison.
    """

    def __init__(self, generator, loss, fast_layers=True, **kwargs):
        super().__init__(**kwargs)
        self.fast_layers = bool(fast_layers)
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
            stylized = self.generator(photos)
        content_targets = self.loss.content_vgg(F.BlockGrad(photos))
        total, content, style, tv = self.loss(stylized, *content_targets, *style_grams)
        return F.mean(total), F.mean(content), F.mean(style), F.mean(tv), stylized


def build_training_graph(generator, config, *, vgg_weights="imagenet", ctx=None, fast_layers=True):
    """Wrap an initialized generator with a VGG16 perceptual loss for ``config``."""
    vgg = load_vgg16(config.vgg_layers, weights=vgg_weights, ctx=ctx, hybridize=False)
    loss = PerceptualLoss(vgg, config)
    graph = TrainingGraph(generator, loss, fast_layers=fast_layers)
    graph.hybridize(static_alloc=True, static_shape=True)
    return graph, loss


__all__ = ["TrainingGraph", "build_training_graph", "default_train_config", "DEFAULT_STYLE_LAYERS"]
