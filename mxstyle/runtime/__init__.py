"""Fast CPU inference of exported style models (``models/NAME/``).

>>> from mxstyle.runtime import Stylizer
>>> stylizer = Stylizer('langlois')              # backend="auto": the fastest installed one
>>> image = stylizer.stylize('photo.jpg', max_side=1600, strength=0.8)

- :mod:`~mxstyle.runtime.stylizer`        :class:`Stylizer`, the one entry point; which files each
  backend and precision needs (``ROLES``)
- :mod:`~mxstyle.runtime.backends`        onnxruntime / MXNet / OpenCV dnn, thread-safe
- :mod:`~mxstyle.runtime.tiling`          large images in bounded memory, whole-image norm statistics
- :mod:`~mxstyle.runtime.onnx_graphs`     the ONNX graph surgery tiling needs...
- :mod:`~mxstyle.runtime.mxnet_graphs`    ... and its MXNet counterpart
- :mod:`~mxstyle.runtime.receptive_field` the receptive-field rule both graph walks share

Model folders (finding them, their card, verified loads) are :mod:`mxstyle.model_folder`.
"""

from ..model_folder import DEFAULT_MODEL, ModelError, list_available_models, model_search_paths, resolve_model_dir
from .stylizer import DEFAULT_TILE_PIXELS, DEFAULT_WORK_SIDE, PREFERENCE, ROLES, Stylizer

__all__ = ['Stylizer', 'DEFAULT_MODEL', 'ModelError', 'list_available_models', 'model_search_paths',
           'resolve_model_dir', 'PREFERENCE', 'ROLES', 'DEFAULT_WORK_SIDE', 'DEFAULT_TILE_PIXELS']
