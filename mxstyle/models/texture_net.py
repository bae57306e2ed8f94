"""Ulyanov et al. 2016 "Texture Networks" multi-scale generator.

With instance normalization, as in their follow-up "Instance Normalization: The Missing Ingredient
for Fast Stylization" (2016). The input image is average-pooled to ``scales`` resolutions (1, 1/2,
..., 1/2**(scales-1)). Each resolution goes through a conv block (3x3, 3x3, 1x1 convs with
``channels`` filters, each followed by InstanceNorm + LeakyReLU). From the coarsest up, the running
result is nearest-upsampled x2, instance-normalized, concatenated with the (also normalized) block
output of the next finer resolution, and passed through another conv block of the concatenated width
(8, 16, 24, ... channels). A final 1x1 conv gives 3 channels, mapped to [0, 255] by a scaled tanh.

Optional noise channels (``noise_channels > 0``) are concatenated to every scale's image, as in the
paper; they make the network non-deterministic, so the default is 0 (deterministic, exportable).
"""

from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from .layers import ConvNormAct, ReflectConv, tanh_to_pixels
from .registry import register_model

__all__ = ['TEXTURE_NET_SPECS', 'TextureNet', 'texture_net']

#: name -> keyword arguments of :class:`TextureNet`.
TEXTURE_NET_SPECS = {
    # 6 scales as in the reference implementation (ratios 32, 16, 8, 4, 2, 1), 8 filters per block.
    'texture_net': dict(scales=6, channels=8, noise_channels=0, leaky_slope=0.01),
}


def _conv_block(in_channels, channels, activation):
    block = nn.HybridSequential(prefix='')
    block.add(ConvNormAct(in_channels, channels, 3, activation=activation),
              ConvNormAct(channels, channels, 3, activation=activation),
              ConvNormAct(channels, channels, 1, activation=activation))
    return block


class TextureNet(HybridBlock):
    """Multi-scale texture-network generator.

    Parameters
    ----------
    scales : int
        Number of resolutions K; ``stride = 2 ** (K - 1)``.
    channels : int
        Filters of each per-scale conv block; the join blocks grow by this much per scale.
    noise_channels : int
        Uniform noise channels in [-1, 1] concatenated to each scale's image (0 = deterministic).
    leaky_slope : float
        Negative slope of the LeakyReLU activations.
    arch : str or None
        Registry name, stored as ``self.arch``; also the default parameter prefix ``arch + '_'``.
    """

    def __init__(self, scales=6, channels=8, noise_channels=0, leaky_slope=0.01, arch=None,
                 **kwargs):
        if scales < 1 or channels < 1 or noise_channels < 0:
            raise ValueError('bad TextureNet spec: scales=%r channels=%r noise_channels=%r'
                             % (scales, channels, noise_channels))
        if arch is not None and 'prefix' not in kwargs:
            kwargs['prefix'] = arch + '_'
        super().__init__(**kwargs)
        self.arch = arch
        self.spec = dict(scales=int(scales), channels=int(channels),
                         noise_channels=int(noise_channels), leaky_slope=float(leaky_slope))
        self.scales = int(scales)
        self.noise_channels = int(noise_channels)
        self.stride = 2 ** (self.scales - 1)
        # The coarsest scale must be at least 2 pixels wide for its reflection padding.
        self.min_size = 2 * self.stride
        act = ('leaky', leaky_slope)
        cin = 3 + self.noise_channels
        with self.name_scope():
            # branches[i] processes scale i (0 = full resolution).
            self.branches = nn.HybridSequential(prefix='branch_')
            with self.branches.name_scope():
                for _ in range(self.scales):
                    self.branches.add(_conv_block(cin, channels, act))
            # joins[j], norms_coarse[j], norms_fine[j] merge into scale (scales - 2 - j).
            self.norms_coarse = nn.HybridSequential(prefix='normc_')
            self.norms_fine = nn.HybridSequential(prefix='normf_')
            self.joins = nn.HybridSequential(prefix='join_')
            width = channels
            for _ in range(self.scales - 1):
                with self.norms_coarse.name_scope():
                    self.norms_coarse.add(nn.InstanceNorm(in_channels=width))
                with self.norms_fine.name_scope():
                    self.norms_fine.add(nn.InstanceNorm(in_channels=channels))
                width += channels
                with self.joins.name_scope():
                    self.joins.add(_conv_block(width, width, act))
            self.output = ReflectConv(width, 3, 1)

    def _with_noise(self, F, x):
        if not self.noise_channels:
            return x
        one = F.slice_axis(x, axis=1, begin=0, end=1)
        noise = [F.random.uniform_like(one, low=-1.0, high=1.0) for _ in range(self.noise_channels)]
        return F.concat(x, *noise, dim=1)

    def logits(self, F, x):
        """The output before :func:`~mxstyle.models.layers.tanh_to_pixels` (for the training loss)."""
        x = x * (1.0 / 127.5) - 1.0
        pyramid = [x]
        for _ in range(self.scales - 1):
            # 2x2 average pooling of the previous level equals 2**i pooling of the full image.
            pyramid.append(F.Pooling(pyramid[-1], kernel=(2, 2), stride=(2, 2), pool_type='avg'))
        cur = self.branches[self.scales - 1](self._with_noise(F, pyramid[-1]))
        for j in range(self.scales - 1):
            i = self.scales - 2 - j
            coarse = self.norms_coarse[j](F.UpSampling(cur, scale=2, sample_type='nearest'))
            fine = self.norms_fine[j](self.branches[i](self._with_noise(F, pyramid[i])))
            cur = self.joins[j](F.concat(coarse, fine, dim=1))
        return self.output(cur)

    def hybrid_forward(self, F, x):
        return tanh_to_pixels(F, self.logits(F, x))


@register_model
def texture_net(**kwargs):
    """Ulyanov et al. 2016 multi-scale generator: 6 scales (stride 32), 8 filters per scale."""
    spec = dict(TEXTURE_NET_SPECS['texture_net'])
    spec.update(kwargs)
    return TextureNet(arch='texture_net', **spec)
