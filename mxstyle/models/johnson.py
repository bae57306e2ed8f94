"""Johnson et al. 2016 "Perceptual Losses for Real-Time Style Transfer" generator.

With the fixes popularized by pytorch/examples fast_neural_style: instance normalization instead of
batch normalization (Ulyanov et al. 2016), reflection padding, and nearest upsampling + convolution
instead of transposed convolutions (no checkerboard artifacts).

Architecture for ``channels=(32, 64, 128), res_blocks=5`` (the ``johnson`` entry)::

    c9s1-32, d64, d128, R128 x5, u64, u32, c9s1-3

where ``d`` is a 3x3 stride-2 conv, ``u`` a nearest x2 upsampling + 3x3 conv, every conv but the last
followed by InstanceNorm (a learned shift) + ReLU. With ``skips=k`` the output of each of the ``k`` lowest
decoder stages is added to the encoder's output of the same resolution (U-Net-like, additive: no
parameters, no FLOPs to speak of), so the decoder sees the photo's structure at that resolution
and not only through the bottleneck. With ``decoder_blocks=n``, ``n`` residual blocks follow each
decoder stage but the full-resolution one (after its skip), where the mid-scale texture is painted;
they start as the identity, so a trained network without them grows into one with them unchanged.
The spec table :data:`JOHNSON_SPECS` drives the network (as ``gluon/model_zoo/vision/vgg.py``
does); the registered constructors are thin.
"""

from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from .layers import ConvNormReLU, ReflectConv, ResidualBlock, tanh_to_pixels
from .registry import register_model

__all__ = ['JOHNSON_SPECS', 'JohnsonNet', 'johnson', 'johnson_lite', 'johnson_s8', 'johnson_s8_skip',
           'johnson_s8_skip_w12', 'johnson_s8_skip_w12_decres', 'johnson_s8_skip_w12_decres2']

#: name -> keyword arguments of :class:`JohnsonNet`.
JOHNSON_SPECS = {
    # 1.68 M parameters, 307.6 kFLOP per pixel (conv multiply-add = 2 FLOP).
    'johnson': dict(channels=(32, 64, 128), res_blocks=5, outer_kernel=9),
    # 16/32/64 channels, 3 residual blocks: 0.28 M parameters, 66.2 kFLOP per pixel (4.6x fewer).
    'johnson_lite': dict(channels=(16, 32, 64), res_blocks=3, outer_kernel=9),
    # Designed for CPU inference: a third stride-2 stage puts the residual blocks at 1/8
    # resolution, 3x3 outer convs and 8 full-resolution channels (docs/design.md, "CPU-first").
    'johnson_s8': dict(channels=(8, 16, 32, 64), res_blocks=3, outer_kernel=3),
    # johnson_s8 with skips at 1/4 and 1/2 resolution: the same parameters, and the structure of
    # the photo kept where the bottleneck (64 values per 8x8 pixels) loses it.
    'johnson_s8_skip': dict(channels=(8, 16, 32, 64), res_blocks=3, outer_kernel=3, skips=2),
    # johnson_s8_skip 1.5x as wide (36.3 kFLOP per pixel, 2.2x): more channels for the mid-scale
    # texture (relu2_1, relu3_1) the thin decoder leaves behind (docs/training.md, "Width"). It
    # starts from a trained johnson_s8_skip computing the same function (mxstyle.training.widen).
    'johnson_s8_skip_w12': dict(channels=(12, 24, 48, 96), res_blocks=3, outer_kernel=3, skips=2),
    # johnson_s8_skip_w12 with a residual block after the decoder's 1/4 and 1/2 resolution stages
    # (46.7 kFLOP per pixel): depth where relu2_1 and relu3_1 are painted (94% of the style loss that
    # release 10's default left)
    # (docs/training.md, "Residual blocks in the decoder"). It starts from a trained
    # johnson_s8_skip_w12 computing the same function (the new blocks start as the identity).
    'johnson_s8_skip_w12_decres': dict(channels=(12, 24, 48, 96), res_blocks=3, outer_kernel=3, skips=2,
                                       decoder_blocks=1),
    # two blocks per stage (57.0 kFLOP per pixel); grows from a trained johnson_s8_skip_w12_decres,
    # whose blocks stay the first of each stage (docs/training.md, "A second block per stage").
    'johnson_s8_skip_w12_decres2': dict(channels=(12, 24, 48, 96), res_blocks=3, outer_kernel=3, skips=2,
                                        decoder_blocks=2),
}


class JohnsonNet(HybridBlock):
    """Encoder / residual / decoder image transformation network.

    Parameters
    ----------
    channels : sequence of int
        Channels of the first full-resolution conv and of each stride-2 stage; the decoder mirrors
        them. ``len(channels) - 1`` downsampling stages give ``stride = 2 ** (len(channels) - 1)``.
    res_blocks : int
        Number of residual blocks at the lowest resolution.
    outer_kernel : int
        Kernel size of the first and last convolutions (odd).
    skips : int
        How many decoder stages, from the lowest resolution up, get the encoder's output of their
        resolution added (0 to ``len(channels) - 2``: never the full-resolution one).
    decoder_blocks : int
        Residual blocks after each decoder stage but the full-resolution one (after its skip), each
        starting as the identity.
    arch : str or None
        Registry name, stored as ``self.arch``; also the default parameter prefix ``arch + '_'``.

    Input and output: NCHW float32 RGB in [0, 255]; H and W must be multiples of ``stride`` and at
    least ``min_size`` (see :func:`mxstyle.models.check_input_shape`). The output is
    ``127.5 * (tanh(logits) + 1)``, so it always lies in [0, 255]; :meth:`logits` gives the
    values before that map.
    """

    def __init__(self, channels=(32, 64, 128), res_blocks=5, outer_kernel=9, skips=0, decoder_blocks=0,
                 arch=None, **kwargs):
        channels = tuple(int(c) for c in channels)
        decoder_blocks = int(decoder_blocks)
        if len(channels) < 1 or min(channels) < 1 or res_blocks < 0 or outer_kernel % 2 != 1 \
                or not 0 <= skips <= max(len(channels) - 2, 0) or decoder_blocks < 0 \
                or (decoder_blocks and len(channels) < 3):  # no decoder stage below full resolution
            raise ValueError('bad JohnsonNet spec: channels=%r res_blocks=%r outer_kernel=%r skips=%r '
                             'decoder_blocks=%r' % (channels, res_blocks, outer_kernel, skips, decoder_blocks))
        if arch is not None and 'prefix' not in kwargs:
            kwargs['prefix'] = arch + '_'
        super().__init__(**kwargs)
        self.arch = arch
        self.spec = dict(channels=channels, res_blocks=int(res_blocks), outer_kernel=int(outer_kernel))
        if skips:
            self.spec['skips'] = int(skips)
        if decoder_blocks:
            self.spec['decoder_blocks'] = decoder_blocks
        self.stride = 2 ** (len(channels) - 1)
        # layer index in ``features`` of the encoder output at resolution level L (L at 1/2**L) ->
        # index of the decoder output it is added to
        down = len(channels) - 1
        self._skips = {level: down + res_blocks + (down - level)
                       for level in range(down - 1, down - 1 - int(skips), -1)}
        # index in ``features`` of each decoder stage that residual blocks follow -> its channels
        rev = channels[::-1]
        self._refined = {1 + down + res_blocks + k: rev[k + 1] for k in range(down - 1)} if decoder_blocks else {}
        # The bottleneck must be at least 2 pixels wide for its reflection padding.
        self.min_size = 2 * self.stride
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            with self.features.name_scope():
                self.features.add(ConvNormReLU(3, channels[0], outer_kernel))
                for cin, cout in zip(channels[:-1], channels[1:]):
                    self.features.add(ConvNormReLU(cin, cout, 3, strides=2))
                for _ in range(res_blocks):
                    self.features.add(ResidualBlock(channels[-1]))
                for cin, cout in zip(rev[:-1], rev[1:]):
                    self.features.add(ConvNormReLU(cin, cout, 3, upsample=2))
            self.output = ReflectConv(channels[0], 3, outer_kernel)
            # new parameters under their own names; a Trainer (which sorts by full name) places them
            # among the old ones, so growing moves Adam's states by name (mxstyle.training.widen)
            self.refine = nn.HybridSequential(prefix='refine_')
            with self.refine.name_scope():
                for width in self._refined.values():
                    stage = nn.HybridSequential(prefix='')
                    for _ in range(decoder_blocks):
                        stage.add(ResidualBlock(width, identity_init=True))
                    self.refine.add(stage)

    def logits(self, F, x):
        """The output before :func:`~mxstyle.models.layers.tanh_to_pixels` (for the training loss)."""
        x = x * (1.0 / 127.5) - 1.0
        if not self._skips and not self._refined:
            return self.output(self.features(x))
        kept, into = {}, {to: level for level, to in self._skips.items()}
        refine = dict(zip(self._refined, self.refine))
        for i in range(len(self.features)):
            x = self.features[i](x)
            if i in self._skips:
                kept[i] = x
            elif i in into:
                x = x + kept[into[i]]
            if i in refine:
                x = refine[i](x)
        return self.output(x)

    def hybrid_forward(self, F, x):
        return tanh_to_pixels(F, self.logits(F, x))


def _build(arch, **kwargs):
    spec = dict(JOHNSON_SPECS[arch])
    spec.update(kwargs)
    return JohnsonNet(arch=arch, **spec)


@register_model
def johnson(**kwargs):
    """Johnson et al. 2016 generator: 32/64/128 channels, 5 residual blocks, stride 4."""
    return _build('johnson', **kwargs)


@register_model
def johnson_s8(**kwargs):
    """Stride-8 Johnson generator for CPUs: 8/16/32/64 channels, 3 residual blocks, 3x3 outer convs."""
    return _build('johnson_s8', **kwargs)


@register_model
def johnson_s8_skip(**kwargs):
    """johnson_s8 with additive encoder-decoder skips at 1/4 and 1/2 resolution."""
    return _build('johnson_s8_skip', **kwargs)


@register_model
def johnson_s8_skip_w12(**kwargs):
    """johnson_s8_skip with 12/24/48/96 channels (1.5x as wide)."""
    return _build('johnson_s8_skip_w12', **kwargs)


@register_model
def johnson_s8_skip_w12_decres(**kwargs):
    """johnson_s8_skip_w12 with a residual block after the decoder's 1/4 and 1/2 resolution stages."""
    return _build('johnson_s8_skip_w12_decres', **kwargs)


@register_model
def johnson_s8_skip_w12_decres2(**kwargs):
    """johnson_s8_skip_w12 with two residual blocks after the decoder's 1/4 and 1/2 resolution stages."""
    return _build('johnson_s8_skip_w12_decres2', **kwargs)


@register_model
def johnson_lite(**kwargs):
    """Johnson generator with 16/32/64 channels and 3 residual blocks (about 4.6x fewer FLOPs)."""
    return _build('johnson_lite', **kwargs)
