"""Perceptual losses (Gatys et al. 2015; Johnson et al. 2016), as HybridBlocks.

All blocks take feature maps NCHW and return one loss value per sample (shape ``(N,)``), so
the caller decides how to reduce over a batch. Conventions, chosen so that the weights do not
depend on the image size:

- Gram matrix: ``G = F F^T / (C*H*W)`` for features ``F`` of shape ``(C, H*W)``;
- content loss: mean squared difference of the feature maps;
- style loss: per layer, the mean squared difference of the Gram matrices, weighted per layer;
- total variation: mean absolute difference of neighbouring pixels (0-255 scale).
"""
from collections import OrderedDict

from mxnet.gluon import HybridBlock

from .errors import ConfigError
from .vgg import VGG16_LAYERS, VGG16Features, check_layers

DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def gram_matrix(F, x):
    """Gram matrix of NCHW features, normalized by C*H*W: shape (N, C, C)."""
    # Reshape a copy, not the features themselves. In a hybridized graph MXNet 1.9 treats the
    # reshaped view as separate memory and may reuse it for a gradient while a max pooling's
    # backward still reads the features: the gradients then come out wrong without any error
    # (cosine 0.8 to the true gradient for the training loss). slice_axis is never done in place.
    x = F.slice_axis(x, axis=0, begin=0, end=None)
    flat = F.reshape(x, shape=(0, 0, -1))
    size = F.prod(F.slice_axis(F.shape_array(x), axis=0, begin=1, end=None)).astype("float32")
    # syrk (A A^T) rather than batch_dot(A, A, transpose_b=True): the same matrix, but it computes
    # one triangle, and its gradient is one product instead of two (30% faster forward + backward).
    return F.broadcast_div(F.linalg.syrk(flat, transpose=False), size)


def _mean_per_sample(F, x):
    return F.mean(F.reshape(x, shape=(0, -1)), axis=1)


class GramMatrix(HybridBlock):
    def hybrid_forward(self, F, x):
        return gram_matrix(F, x)


class ContentLoss(HybridBlock):
    """Mean squared difference between features and target features (same shape)."""

    def hybrid_forward(self, F, features, target):
        return _mean_per_sample(F, F.square(features - target))


class StyleLoss(HybridBlock):
    """Weighted sum over layers of the mean squared difference of Gram matrices.

    ``forward(features_1..features_L, gram_target_1..gram_target_L)``; a target with batch size
    1 is broadcast over the batch (one style image, many photos).
    """

    def __init__(self, layer_weights, **kwargs):
        super().__init__(**kwargs)
        self.layer_weights = tuple(float(w) for w in layer_weights)

    def hybrid_forward(self, F, *args):
        count = len(self.layer_weights)
        features, targets = args[:count], args[count:]
        total = 0
        for weight, feat, target in zip(self.layer_weights, features, targets):
            diff = F.broadcast_sub(gram_matrix(F, feat), target)
            total = total + weight * _mean_per_sample(F, F.square(diff))
        return total


class TVLoss(HybridBlock):
    """Total variation: mean absolute difference between vertical and horizontal neighbours."""

    def hybrid_forward(self, F, x):
        dy = F.slice_axis(x, axis=2, begin=1, end=None) - F.slice_axis(x, axis=2, begin=0, end=-1)
        dx = F.slice_axis(x, axis=3, begin=1, end=None) - F.slice_axis(x, axis=3, begin=0, end=-1)
        return _mean_per_sample(F, F.abs(dy)) + _mean_per_sample(F, F.abs(dx))


class LossConfig:
    """Layers and weights of a perceptual loss, validated once.

    ``style_layer_weights`` gives one weight per style layer (default: all 1).
    """

    def __init__(self, content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
                 content_weight=1.0, style_weight=30.0, tv_weight=10.0, style_layer_weights=None):
        self.content_layers = check_layers(content_layers)
        self.style_layers = check_layers(style_layers)
        for name, value in (("content_weight", content_weight), ("style_weight", style_weight),
                            ("tv_weight", tv_weight)):
            if not value >= 0:  # also refuses NaN
                raise ConfigError(f"{name} must be >= 0, not {value}")
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        if style_layer_weights is None:
            style_layer_weights = [1.0] * len(self.style_layers)
        if len(style_layer_weights) != len(self.style_layers):
            raise ConfigError(f"{len(style_layer_weights)} style layer weights given for "
                              f"{len(self.style_layers)} style layers")
        self.style_layer_weights = tuple(float(w) for w in style_layer_weights)

    @property
    def vgg_layers(self):
        """The VGG layers to compute, each once, in network order."""
        wanted = set(self.content_layers) | set(self.style_layers)
        return tuple(layer for layer in VGG16_LAYERS if layer in wanted)

    def to_dict(self):
        return OrderedDict(content_layers=list(self.content_layers), style_layers=list(self.style_layers),
                           content_weight=self.content_weight, style_weight=self.style_weight,
                           tv_weight=self.tv_weight, style_layer_weights=list(self.style_layer_weights))


class PerceptualLoss(HybridBlock):
    """Content + style + total-variation loss of an image through a VGG16 feature network.

    ``forward(image, *content_targets, *style_grams)`` with the targets from
    :meth:`content_targets` and :meth:`style_targets`, returns per-sample
    ``(total, content, style, tv)``, each already multiplied by its weight.
    The VGG network must output ``config.vgg_layers`` in that order.
    """

    def __init__(self, vgg, config, **kwargs):
        super().__init__(**kwargs)
        if tuple(vgg.layers) != config.vgg_layers:
            raise ConfigError(f"the VGG network gives {vgg.layers}, the loss needs {config.vgg_layers}")
        self.config = config
        layers = list(config.vgg_layers)
        self._content_index = [layers.index(layer) for layer in config.content_layers]
        self._style_index = [layers.index(layer) for layer in config.style_layers]
        with self.name_scope():
            self.vgg = vgg
            # The photo only needs the content layers: a shallower pass with the same weights.
            self.content_vgg = VGG16Features(config.content_layers, pooling=vgg.pooling, share=vgg)
            self.content_loss = ContentLoss()
            self.style_loss = StyleLoss(config.style_layer_weights)
            self.tv_loss = TVLoss()

    def content_targets(self, content_image):
        """VGG features of the content image(s) at the content layers (no gradient needed)."""
        return list(self.content_vgg(content_image))

    def style_targets(self, style_image):
        """Gram matrices of the style image at the style layers, each of shape (1, C, C)."""
        import mxnet as mx

        features = self.vgg(style_image)
        return [gram_matrix(mx.nd, features[i]) for i in self._style_index]

    def hybrid_forward(self, F, image, *targets):
        n_content = len(self._content_index)
        content_targets, style_grams = targets[:n_content], targets[n_content:]
        features = self.vgg(image)
        content = 0
        for i, target in zip(self._content_index, content_targets):
            content = content + self.content_loss(features[i], target)
        style = self.style_loss(*[features[i] for i in self._style_index], *style_grams)
        cfg = self.config
        content = cfg.content_weight / max(n_content, 1) * content
        style = cfg.style_weight * style
        tv = cfg.tv_weight * self.tv_loss(image)
        return content + style + tv, content, style, tv
