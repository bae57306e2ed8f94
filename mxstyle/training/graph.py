"""The training graph: generator and perceptual loss as one hybridized symbolic graph.

    photos ──> generator ──> stylized ──> VGG (to the deepest loss layer) ──┐
       │                                                                   ├─> content, style, tv
       └──> VGG (to the content layers only, no gradient) ─────────────────┘

The VGG weights have ``grad_req='null'`` and the photo's branch is cut with ``BlockGrad``, so a
backward pass computes only what the generator's weight gradients need.
"""
from mxnet.gluon import HybridBlock

from ..losses import DEFAULT_STYLE_LAYERS, LossConfig, PerceptualLoss
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
    """

    def __init__(self, generator, loss, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.generator = generator
            self.loss = loss

    def hybrid_forward(self, F, photos, *style_grams):
        stylized = self.generator(photos)
        content_targets = self.loss.content_vgg(F.BlockGrad(photos))
        total, content, style, tv = self.loss(stylized, *content_targets, *style_grams)
        return F.mean(total), F.mean(content), F.mean(style), F.mean(tv), stylized


def build_training_graph(generator, config, *, vgg_weights="imagenet", ctx=None):
    """Wrap an initialized generator with a VGG16 perceptual loss for ``config``."""
    vgg = load_vgg16(config.vgg_layers, weights=vgg_weights, ctx=ctx, hybridize=False)
    loss = PerceptualLoss(vgg, config)
    graph = TrainingGraph(generator, loss)
    graph.hybridize(static_alloc=True, static_shape=True)
    return graph, loss


__all__ = ["TrainingGraph", "build_training_graph", "default_train_config", "DEFAULT_STYLE_LAYERS"]
