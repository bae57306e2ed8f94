"""Building blocks shared by the generators.

Every block is a ``HybridBlock`` whose parameters have fully known shapes at construction
(``in_channels`` is always given), so no deferred initialization is needed, and every op used here
exports exactly through ``mx.onnx`` (opset 13) and runs in onnxruntime: reflection ``pad``,
``Convolution``, ``InstanceNorm``, nearest ``UpSampling``, ``Activation``/``LeakyReLU``.
Do not swap in ``BilinearResize2D`` (exports silently wrong), bilinear ``UpSampling`` (does not
export) or ``repeat``-based upsampling (onnxruntime refuses the model).

Training formulation
--------------------
Two of these ops are slow to *train* with MXNet 1.9 on a CPU, so the training graph
(:mod:`mxstyle.training.graph`) traces the generator inside :func:`training_formulation`, where
:class:`InstanceNorm` and :class:`Conv2D` build mathematically identical but faster subgraphs:

* ``InstanceNorm`` (a naive kernel: about 0.55 s forward + backward for a 4x32x256x256 batch) becomes
  a oneDNN ``BatchNorm`` over the (1, N*C, H, W) view of the batch, whose per-channel batch statistics
  are exactly the per-instance statistics (about 0.05 s). ``BatchNorm`` needs "moving statistics"
  buffers (unused, but they must be graph variables): a :class:`NormScratch` provides them, and the
  graph must run in training mode, where ``BatchNorm`` uses batch statistics.
* the generator's last conv (9x9, 32 -> 3 channels) falls off oneDNN's vectorized kernels onto a
  generic GEMM path (1.5 s of a 6 s step); :class:`Conv2D` pads its output channels to 8 and its
  borders by one pixel, then slices the exact result back out (0.3 s).

Outside that context (inference, ``export``, ONNX) the layers trace exactly the ops listed above,
with the same parameters under the same names.
"""

import contextlib
import threading

import mxnet as mx
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

__all__ = ['tanh_to_pixels', 'ReflectConv', 'ConvNormAct', 'ConvNormReLU', 'ResidualBlock', 'UpsampleConv',
           'make_activation', 'Conv2D', 'InstanceNorm', 'NormScratch', 'training_formulation']

_formulation = threading.local()


def tanh_to_pixels(F, logits):
    """The generators' output map: logits -> RGB in [0, 255], ``127.5 * (tanh(logits) + 1)``.

    Where ``|logits|`` is large the gradient ``1 - tanh^2`` vanishes (below 1e-6 beyond 7.6, and
    exactly 0 in float32 beyond about 10): no loss can change such pixels any more. Training keeps
    the logits in range with a saturation penalty (:mod:`mxstyle.training.graph`)."""
    return (F.tanh(logits) + 1.0) * 127.5


@contextlib.contextmanager
def training_formulation(scratch):
    """Within this block, :class:`InstanceNorm` and :class:`Conv2D` use their training formulation.

    ``scratch`` is the :class:`NormScratch` that provides the BatchNorm buffers. The switch acts when
    a layer's ``hybrid_forward`` runs: while a hybridized parent traces its graph, or on every call
    of an imperative one. The caller must run the result in training mode (``autograd.train_mode()``
    or ``autograd.record()``), or the BatchNorm would normalize with its (meaningless) buffers.
    """
    previous = getattr(_formulation, 'scratch', None)
    _formulation.scratch = scratch
    try:
        yield scratch
    finally:
        _formulation.scratch = previous


def _training_scratch():
    return getattr(_formulation, 'scratch', None)


class NormScratch(HybridBlock):
    """Holder of the "moving statistics" buffers of the BatchNorm-based :class:`InstanceNorm`.

    MXNet requires a BatchNorm's moving mean/variance inputs to be graph variables, and they are
    sized N*C, so one scratch serves one batch size: make a new one when the batch size changes.
    Its parameters are never trained, saved or read back (BatchNorm only writes them).
    """

    def __init__(self, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.batch_size = int(batch_size)

    def buffers(self, F, norm, x, channels):
        """(moving_mean, moving_var) for ``norm`` applied to ``x`` (N, ``channels``, H, W)."""
        if F is mx.nd:  # imperative: any array of the right size will do
            size = x.shape[0] * channels
            return mx.nd.zeros((size,), ctx=x.context), mx.nd.ones((size,), ctx=x.context)
        size = self.batch_size * channels
        out = []
        for kind, init in (('mean', mx.init.Zero()), ('var', mx.init.One())):
            name = '%s_%s' % (norm.name, kind)
            known = self.params.prefix + name in self.params
            param = self.params.get(name, shape=(size,), init=init, grad_req='null',
                                    differentiable=False)
            if not known:
                param.initialize(ctx=norm.gamma.list_ctx())
            out.append(param.var())
        return tuple(out)

    def hybrid_forward(self, F, x):  # pragma: no cover - a parameter holder, never called
        raise RuntimeError('NormScratch is not a layer')


class InstanceNorm(nn.InstanceNorm):
    """``gluon.nn.InstanceNorm`` (same parameters, names and exported op) with a training formulation.

    See the module docstring: inside :func:`training_formulation` it normalizes with a oneDNN
    ``BatchNorm`` over the (1, N*C, H, W) view of the batch; the result equals ``InstanceNorm``
    up to float rounding (about 1e-6 relative), values and gradients alike.

    Caution: in that formulation its output must not reach a ``Convolution`` with nothing but
    oneDNN element-wise ops in between: MXNet 1.9 then corrupts memory in the backward pass
    (N > 1; found by tests/test_training_formulation.py on texture_net). A reflection pad, an
    upsampling, a sum or a concat in between is safe; :class:`ReflectConv` copies its input when it
    has no pad to do.
    """

    def hybrid_forward(self, F, x, gamma, beta):
        scratch = _training_scratch()
        if scratch is None or self._axis != 1:
            return super().hybrid_forward(F, x, gamma, beta)
        channels = self.gamma.shape[0]
        moving_mean, moving_var = scratch.buffers(F, self, x, channels)
        # gamma and beta repeated per sample: (C,) -> (N, C, 1, 1) -> (N*C,)
        gamma = F.reshape(F.broadcast_like(F.reshape(gamma, shape=(1, -1, 1, 1)), x,
                                           lhs_axes=(0,), rhs_axes=(0,)), shape=(-1,))
        beta = F.reshape(F.broadcast_like(F.reshape(beta, shape=(1, -1, 1, 1)), x,
                                          lhs_axes=(0,), rhs_axes=(0,)), shape=(-1,))
        y = F.BatchNorm(F.reshape(x, shape=(1, -1, 0, 0)), gamma, beta, moving_mean, moving_var,
                        eps=self._epsilon, fix_gamma=False, use_global_stats=False)
        return F.reshape_like(y, x)


def _simd_channels():
    """Channels per oneDNN vector block on this CPU: 16 with AVX-512, else 8 (AVX2)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return 16 if 'avx512f' in line.split() else 8
    except OSError:
        pass
    return 8


class Conv2D(nn.Conv2D):
    """``gluon.nn.Conv2D`` (same parameters and names) with a training formulation.

    Inside :func:`training_formulation` two convolutions that oneDNN would run on its generic GEMM
    path get an equivalent shape that keeps them on its vectorized kernels (measured on AVX2):

    * output channels not a multiple of the vector block (the 3-channel RGB output): the weights
      are zero-padded to the next multiple and the extra outputs sliced away (forward 3x and
      weight gradient 4x faster);
    * a wide kernel without padding (the 9x9 output conv: its data gradient then needs 8 pixels of
      implicit padding, which the AVX2 kernel does not take): the convolution gets ``k - 8`` pixels
      of zero padding and the border of its output, the only part that padding touches, is cropped
      (data gradient 12x faster).
    """

    _block = None

    def hybrid_forward(self, F, x, weight, bias=None):
        if _training_scratch() is None:
            return super().hybrid_forward(F, x, weight, bias)
        if Conv2D._block is None:
            Conv2D._block = _simd_channels()
        kw = self._kwargs
        channels = self._channels
        extra = -channels % Conv2D._block
        grow = tuple(max(0, k - 1 - p - 7) if s == 1 and d == 1 else 0
                     for k, p, s, d in zip(kw['kernel'], kw['pad'], kw['stride'], kw['dilate']))
        if extra == 0 and not any(grow):
            return super().hybrid_forward(F, x, weight, bias)
        kwargs = dict(kw, num_filter=channels + extra, pad=tuple(p + g for p, g in zip(kw['pad'], grow)))
        if extra:
            weight = F.concat(weight, F.zeros(shape=(extra,) + self.weight.shape[1:]), dim=0)
            if bias is not None:
                bias = F.concat(bias, F.zeros(shape=(extra,)), dim=0)
        if bias is None:
            y = F.Convolution(x, weight, name='fwd', **kwargs)
        else:
            y = F.Convolution(x, weight, bias, name='fwd', **kwargs)
        # slice_axis, not slice: MXNet 1.9's slice of a channel range of a oneDNN-blocked array
        # dies with SIGFPE.
        if extra:
            y = F.slice_axis(y, axis=1, begin=0, end=channels)
        for axis, g in enumerate(grow, 2):
            if g:
                y = F.slice_axis(y, axis=axis, begin=g, end=-g)
        return self.act(y) if self.act is not None else y


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
            self.conv = Conv2D(channels, kernel_size, strides=strides, padding=0,
                               use_bias=use_bias, in_channels=in_channels)

    def hybrid_forward(self, F, x):
        p = self._pad
        if p:
            x = F.pad(x, mode='reflect', pad_width=(0, 0, 0, 0, p, p, p, p))
        elif _training_scratch() is not None:
            # A 1x1 conv may read an InstanceNorm output directly: copy it (see InstanceNorm).
            x = F.slice_axis(x, axis=0, begin=0, end=None)
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
    """ReflectConv (or UpsampleConv when ``upsample > 1``) + InstanceNorm + activation.

    The norm learns a shift; its scale is fixed at 1 (gluon's default), unless ``learned_scale`` is
    an initializer name for a learned one."""

    def __init__(self, in_channels, channels, kernel_size, strides=1, upsample=1,
                 activation='relu', learned_scale=None, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            if upsample > 1:
                if strides != 1:
                    raise ValueError('upsample and strides cannot be combined')
                self.conv = UpsampleConv(in_channels, channels, kernel_size, scale=upsample)
            else:
                self.conv = ReflectConv(in_channels, channels, kernel_size, strides=strides)
            self.norm = InstanceNorm(in_channels=channels) if learned_scale is None else \
                InstanceNorm(in_channels=channels, scale=True, gamma_initializer=learned_scale)
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
    """``x + IN(conv3(ReLU(IN(conv3(x)))))``, no activation after the sum (Johnson et al. 2016).

    With ``identity_init`` the last norm gets a learned scale that starts at 0, so the new block
    computes the identity (Goyal et al. 2017's zero-initialized residual) and learns its way out of
    it: a generator grown by such blocks starts as the trained one it came from
    (:mod:`mxstyle.training.widen`)."""

    def __init__(self, channels, kernel_size=3, identity_init=False, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential()
            with self.body.name_scope():
                self.body.add(ConvNormAct(channels, channels, kernel_size, activation='relu'),
                              ConvNormAct(channels, channels, kernel_size, activation=None,
                                          learned_scale='zeros' if identity_init else None))

    def hybrid_forward(self, F, x):
        return x + self.body(x)
