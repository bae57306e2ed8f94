"""Building blocks shared by the generators.

Every block is a ``HybridBlock`` whose parameters have fully known shapes at construction
(``in_channels`` is always given), so no deferred initialization is needed, and every op used here
exports exactly through ``mx.onnx`` (opset 13) and runs in onnxruntime: reflection ``pad``,
``Convolution``, ``InstanceNorm``, nearest ``UpSampling``, ``Activation``/``LeakyReLU``.
Do not swap in ``BilinearResize2D`` (exports silently wrong), bilinear ``UpSampling`` (does not
export) or ``repeat``-based upsampling (onnxruntime refuses the model).
"""

from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

__all__ = ['ReflectConv', 'ConvNormAct', 'ConvNormReLU', 'ResidualBlock', 'UpsampleConv',
           'make_activation']


def make_activation(activation):
    """``'relu'``, ``'leaky'`` (slope 0.01), ``('leaky', slope)``, ``None`` or a Block."""
    if activation is None:
        return None
    if isinstance(activation, HybridBlock):
        return activation
    if activation == 'relu':
        return nn.Activation('relu')
    if activation == 'leaky':
        return nn.LeakyReLU(0.01)
    if isinstance(activation, (tuple, list)) and activation[0] == 'leaky':
        return nn.LeakyReLU(float(activation[1]))
    raise ValueError('unknown activation %r' % (activation,))


class ReflectConv(HybridBlock):
    """Reflection padding of ``kernel_size // 2`` followed by an unpadded convolution.

    With an odd kernel the output has the input's size divided by ``strides`` (even sizes).
    """

    def __init__(self, in_channels, channels, kernel_size, strides=1, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self._pad = kernel_size // 2
        with self.name_scope():
            self.conv = nn.Conv2D(channels, kernel_size, strides=strides, padding=0,
                                  use_bias=use_bias, in_channels=in_channels)

    def hybrid_forward(self, F, x):
        p = self._pad
        if p:
            x = F.pad(x, mode='reflect', pad_width=(0, 0, 0, 0, p, p, p, p))
        return self.conv(x)


class UpsampleConv(HybridBlock):
    """Nearest-neighbour upsampling by ``scale`` then a :class:`ReflectConv`.

    Used instead of a transposed convolution against checkerboard artifacts
    (Odena et al. 2016; pytorch/examples fast_neural_style).
    """

    def __init__(self, in_channels, channels, kernel_size, scale=2, **kwargs):
        super().__init__(**kwargs)
        self._scale = int(scale)
        with self.name_scope():
            self.conv = ReflectConv(in_channels, channels, kernel_size)

    def hybrid_forward(self, F, x):
        x = F.UpSampling(x, scale=self._scale, sample_type='nearest')
        return self.conv(x)


class ConvNormAct(HybridBlock):
    """ReflectConv (or UpsampleConv when ``upsample > 1``) + affine InstanceNorm + activation."""

    def __init__(self, in_channels, channels, kernel_size, strides=1, upsample=1,
                 activation='relu', **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            if upsample > 1:
                if strides != 1:
                    raise ValueError('upsample and strides cannot be combined')
                self.conv = UpsampleConv(in_channels, channels, kernel_size, scale=upsample)
            else:
                self.conv = ReflectConv(in_channels, channels, kernel_size, strides=strides)
            self.norm = nn.InstanceNorm(in_channels=channels)
            self.act = make_activation(activation)

    def hybrid_forward(self, F, x):
        x = self.norm(self.conv(x))
        if self.act is not None:
            x = self.act(x)
        return x


def ConvNormReLU(in_channels, channels, kernel_size, strides=1, upsample=1, **kwargs):
    """:class:`ConvNormAct` with a ReLU."""
    return ConvNormAct(in_channels, channels, kernel_size, strides=strides, upsample=upsample,
                       activation='relu', **kwargs)


class ResidualBlock(HybridBlock):
    """``x + IN(conv3(ReLU(IN(conv3(x)))))``, no activation after the sum (Johnson et al. 2016)."""

    def __init__(self, channels, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential()
            with self.body.name_scope():
                self.body.add(ConvNormAct(channels, channels, kernel_size, activation='relu'),
                              ConvNormAct(channels, channels, kernel_size, activation=None))

    def hybrid_forward(self, F, x):
        return x + self.body(x)
