"""Feed-forward style-transfer generators and their registry.

>>> from mxstyle.models import get_model, list_models
>>> net = get_model('johnson')            # a gluon.HybridBlock
>>> net.initialize(mx.init.Xavier())
>>> y = net(x)                            # x, y: NCHW float32 RGB in [0, 255]

Every generator has ``arch`` (its registry name), ``stride`` (H and W must be multiples of it) and
``min_size``; :func:`check_input_shape` raises a ``ConfigError`` for a size it cannot take.
"""

from .registry import register_model, get_model, list_models, is_model
from .layers import ReflectConv, ConvNormAct, ConvNormReLU, ResidualBlock, UpsampleConv
from .johnson import JOHNSON_SPECS, JohnsonNet, johnson, johnson_lite
from .texture_net import TEXTURE_NET_SPECS, TextureNet, texture_net
from .flops import count_flops, count_params, layer_flops
from .shape import check_input_shape

__all__ = [
    'register_model', 'get_model', 'list_models', 'is_model',
    'ReflectConv', 'ConvNormAct', 'ConvNormReLU', 'ResidualBlock', 'UpsampleConv',
    'JOHNSON_SPECS', 'JohnsonNet', 'johnson', 'johnson_lite',
    'TEXTURE_NET_SPECS', 'TextureNet', 'texture_net',
    'count_flops', 'count_params', 'layer_flops', 'check_input_shape',
]
