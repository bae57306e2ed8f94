"""mxstyle: neural style transfer on MXNet/Gluon.

Library map (one module per stage):

- :mod:`mxstyle.io`       read and write images (RGB float32, 0-255), with clear errors
- :mod:`mxstyle.vgg`      the VGG16 loss network (``load_vgg16``)
- :mod:`mxstyle.weights`  the ImageNet VGG16 weights, offline, cached in ``$MXSTYLE_HOME``
- :mod:`mxstyle.losses`   Gram matrix, content, style, total variation, ``PerceptualLoss``
- :mod:`mxstyle.optimize` the slow exact method of Gatys et al. (``stylize_gatys``)
- :mod:`mxstyle.models`   the registry of feed-forward generators (``get_model``)
"""
__version__ = "0.1.0"

from .errors import ConfigError, ImageError, MxstyleError, WeightsError  # noqa: F401
