"""Input-size rules of the generators."""

from ..errors import ConfigError
from ..values import round_up

__all__ = ['check_input_shape']


def check_input_shape(net, height, width):
    """Raise :class:`~mxstyle.errors.ConfigError` unless ``net`` accepts a ``height x width`` image.

    Height and width must be multiples of ``net.stride`` (the total downsampling) and at least
    ``net.min_size`` (the lowest resolution must be 2 pixels wide for its reflection padding;
    ``2 * stride`` when the network does not say). The check cannot run inside the symbolic graph,
    so callers (runtime, training) call this before feeding an image.
    """
    stride = int(getattr(net, 'stride', 1))
    min_size = int(getattr(net, 'min_size', 2 * stride))
    name = getattr(net, 'arch', None) or type(net).__name__
    try:
        h, w = int(height), int(width)
    except (TypeError, ValueError):
        raise ConfigError('image size must be two integers, got %r x %r' % (height, width)) from None
    if h % stride or w % stride:
        raise ConfigError(
            'generator %s needs height and width that are multiples of %d, got %d x %d; '
            'pad or crop the image to %d x %d' % (name, stride, h, w,
                                                  round_up(h, stride), round_up(w, stride)))
    if h < min_size or w < min_size:
        raise ConfigError('generator %s needs images of at least %d x %d pixels, got %d x %d'
                          % (name, min_size, min_size, h, w))
