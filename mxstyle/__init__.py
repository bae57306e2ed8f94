"""mxstyle: neural style transfer on MXNet/Gluon.

Library map (one module per stage):

- :mod:`mxstyle.io`       read and write images (RGB float32, 0-255), with clear errors
- :mod:`mxstyle.vgg`      the VGG16 loss network (``load_vgg16``)
- :mod:`mxstyle.weights`  the ImageNet VGG16 weights, offline, cached in ``$MXSTYLE_HOME``
- :mod:`mxstyle.losses`   Gram matrix, content, style, total variation, ``PerceptualLoss``
- :mod:`mxstyle.optimize` the slow exact method of Gatys et al. (``stylize_gatys``)
- :mod:`mxstyle.models`   the registry of feed-forward generators (``get_model``)
- :mod:`mxstyle.data`     training photos: crops, flips, worker processes
- :mod:`mxstyle.training` feed-forward training (``train``), checkpoints, guards
- :mod:`mxstyle.export`   checkpoint -> model folder: MXNet symbol, ONNX, int8, model card
- :mod:`mxstyle.runtime`  ``Stylizer``: fast CPU inference of a model folder
"""
__version__ = "0.1.0"

import os as _os
import sys as _sys

from .system import usable_cpus as _usable_cpus

# OMP_NUM_THREADS: MXNet's OpenMP pool otherwise uses one thread on some virtual machines (a
# training step 1.9x slower; README, "Threads"). It must be set before mxnet is first imported;
# a value the user set is kept.
if "mxnet" not in _sys.modules:
    _os.environ.setdefault("OMP_NUM_THREADS", str(_usable_cpus()))

from .errors import ConfigError, ImageError, MxstyleError, WeightsError  # noqa: F401


def __getattr__(name):
    # ``mxstyle.Stylizer`` and ``mxstyle.list_models()`` (the style models ready to use, in
    # ``models/`` and ``$MXSTYLE_MODELS``; the generator architectures are
    # ``mxstyle.models.list_models()``) without importing the runtime (and its backends) at package import.
    if name == "Stylizer":
        from .runtime import Stylizer

        return Stylizer
    if name == "list_models":
        from .model_folder import list_available_models

        return list_available_models
    raise AttributeError(f"module 'mxstyle' has no attribute {name!r}")
