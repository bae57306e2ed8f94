"""The VGG16 loss network: ImageNet VGG16's convolutional part as a feature extractor.

``load_vgg16(layers=("relu2_2", "relu4_2"))`` returns a HybridBlock that maps NCHW float32
RGB images in [0, 255] to the feature maps of the named layers, in the order asked. Only the
layers up to the deepest one asked are built and run, so asking for ``relu2_2`` alone costs
two convolutions, not thirteen.

The ImageNet weights were trained on BGR images minus the Caffe mean; the block does that
conversion itself, so callers never see it.

``precision="bfloat16"`` runs the convolutions in bfloat16 (oneDNN's AVX512_BF16 kernels: about
twice the float32 throughput where the CPU has them, the training loss's main cost): the weights
stay float32 and are cast per call, and the layers come out as float32, so everything around the
network (weight files, Gram matrices, losses) is unchanged. docs/training.md, "Step speed", has
what it costs in accuracy.
"""
import mxnet as mx
from mxnet.gluon import nn

from . import weights as weights_module
from .errors import ConfigError, WeightsError

# Spec table: (channels, convolutions) per block, as in Simonyan & Zisserman 2014, config D.
VGG16_SPEC = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# Every feature layer in network order: relu1_1, relu1_2, relu2_1, ... relu5_3.
VGG16_LAYERS = tuple(
    f"relu{b}_{c}" for b, (_, convs) in enumerate(VGG16_SPEC, 1) for c in range(1, convs + 1)
)
CONV_NAMES = tuple(name.replace("relu", "conv") for name in VGG16_LAYERS)
PRECISIONS = ("float32", "bfloat16")


def check_layers(layers):
    """Return ``layers`` as a tuple, or raise ConfigError naming the valid layer names."""
    if isinstance(layers, str):
        layers = (layers,)
    layers = tuple(layers)
    if not layers:
        raise ConfigError("no VGG16 layers given: name at least one of " + ", ".join(VGG16_LAYERS))
    bad = [layer for layer in layers if layer not in VGG16_LAYERS]
    if bad:
        raise ConfigError(
            f"unknown VGG16 layer(s) {', '.join(bad)}; valid layers are " + ", ".join(VGG16_LAYERS)
        )
    return layers


def _bfloat16():
    from mxnet.contrib.amp.amp import bfloat16  # MXNet's bfloat16 dtype (numpy has none)

    return bfloat16


class _Bfloat16Conv2D(nn.Conv2D):
    """A Conv2D on bfloat16 inputs whose float32 weights are cast to bfloat16 at each call."""

    def hybrid_forward(self, F, x, weight, bias=None):
        bf16 = _bfloat16()
        return super().hybrid_forward(F, x, F.amp_cast(weight, dtype=bf16),
                                      None if bias is None else F.amp_cast(bias, dtype=bf16))


class VGG16Features(nn.HybridBlock):
    """VGG16 up to the deepest of ``layers``; returns those layers' ReLU outputs as a tuple.

    ``share`` (another VGG16Features at least as deep) reuses its weights instead of creating
    new ones: the training graph runs the photo only up to the content layers this way.
    ``pooling`` is "max" (ImageNet VGG) or "avg" (Gatys et al. found average pooling gives
    slightly smoother results when optimizing pixels). ``precision`` is "float32" or "bfloat16"
    (see the module docstring; a shared network keeps the one it shares). Parameters are named after the layers
    (``conv1_1_weight``...), independent of Gluon's prefixes, so a weight file loads into any
    truncated network.
    """

    def __init__(self, layers=VGG16_LAYERS, pooling="max", share=None, precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.layers = check_layers(layers)
        if pooling not in ("max", "avg"):
            raise ConfigError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.pooling = pooling
        self.precision = share.precision if share is not None else precision
        depth = max(VGG16_LAYERS.index(layer) for layer in self.layers) + 1
        self._wanted = {VGG16_LAYERS.index(layer): i for i, layer in enumerate(self.layers)}
        if share is not None:  # a shallower view of another VGG16Features: same weight objects
            if len(share.convs) < depth:
                raise ConfigError(f"cannot share weights with a VGG that stops before {self.layers}")
            self.convs = share.convs[:depth]
            for name, conv in zip(CONV_NAMES, self.convs):
                self.register_child(conv, name)
            return
        conv_class = _Bfloat16Conv2D if self.precision == "bfloat16" else nn.Conv2D
        with self.name_scope():
            self.convs = []
            in_channels = 3
            for index, name in enumerate(CONV_NAMES[:depth]):
                channels = VGG16_SPEC[int(name[4]) - 1][0]
                conv = conv_class(channels, 3, padding=1, in_channels=in_channels, prefix=name + "_")
                self.register_child(conv, name)
                self.convs.append(conv)
                in_channels = channels

    def hybrid_forward(self, F, x):
        # RGB -> BGR minus the Caffe mean, with scalar ops only (no constant parameter to share).
        r, g, b = F.split(x, num_outputs=3, axis=1)
        mean_b, mean_g, mean_r = CAFFE_MEAN_BGR
        x = F.concat(b - mean_b, g - mean_g, r - mean_r, dim=1)
        low = self.precision == "bfloat16"
        if low:
            x = F.amp_cast(x, dtype=_bfloat16())
        outputs = [None] * len(self.layers)
        for index, (name, conv) in enumerate(zip(CONV_NAMES, self.convs)):
            if index > 0 and name.endswith("_1"):  # a new block starts after a pooling
                x = F.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type=self.pooling)
            # Activation, not relu: it runs in oneDNN and keeps its blocked layout for the next
            # conv and pooling (F.relu converts to plain NCHW and back; about 0.5 s per training step).
            x = F.Activation(conv(x), act_type="relu")
            if index in self._wanted:
                outputs[self._wanted[index]] = F.amp_cast(x, dtype="float32") if low else x
        return tuple(outputs)

    def weight_names(self):
        """Names of the weight tensors this (maybe truncated) network needs."""
        return [f"{name}_{kind}" for name in CONV_NAMES[: len(self.convs)] for kind in ("weight", "bias")]

    def load_weights(self, arrays):
        """Set weights from a dict ``{"conv1_1_weight": NDArray, ...}`` (extra keys ignored)."""
        for conv, name in zip(self.convs, CONV_NAMES):
            for kind, param in (("weight", conv.weight), ("bias", conv.bias)):
                key = f"{name}_{kind}"
                if key not in arrays:
                    raise WeightsError(f"VGG16 weight file lacks {key}; delete it and let mxstyle rebuild it")
                value = arrays[key]
                if tuple(value.shape) != tuple(param.shape):
                    raise WeightsError(
                        f"VGG16 weight {key} has shape {tuple(value.shape)}, expected {tuple(param.shape)}"
                    )
                param.set_data(value)


def load_vgg16(layers=VGG16_LAYERS, *, pooling="max", weights="imagenet", ctx=None, hybridize=True,
               precision="float32"):
    """Build the VGG16 feature extractor for ``layers`` (computing in ``precision``) and load its weights.

    ``weights`` is "imagenet" (the cached ImageNet weights, fetched and converted on first use,
    see :mod:`mxstyle.weights`), a path to a ``.params`` file in the same format, or None for
    random weights (tests). The parameters get ``grad_req='null'``: the loss network is fixed,
    so no weight gradients are ever computed.
    """
    ctx = ctx or mx.cpu()
    net = VGG16Features(layers, pooling=pooling, precision=precision)
    net.initialize(mx.init.Xavier(), ctx=ctx)
    if weights is not None:
        if weights == "imagenet":
            arrays = weights_module.load_params(weights_module.vgg16_weights_path(), ctx=ctx)
        else:  # the user's own file: names and shapes are checked, not the checksum
            arrays = weights_module.load_params(weights, ctx=ctx, expected_sha256=None)
        net.load_weights(arrays)
    net.collect_params().setattr("grad_req", "null")
    if hybridize:
        net.hybridize(static_alloc=True)
    return net
