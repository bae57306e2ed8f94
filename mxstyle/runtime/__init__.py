"""Fast CPU inference of exported style models (``models/NAME/``).

>>> from mxstyle.runtime import Stylizer
>>> stylizer = Stylizer('langlois')              # backend="auto": the fastest installed one
>>> image = stylizer.stylize('photo.jpg', max_side=1600, strength=0.8)

- :mod:`~mxstyle.runtime.card`        model folders: lookup by name or path, card, sha256 checks
- :mod:`~mxstyle.runtime.backends`    onnxruntime / MXNet / OpenCV dnn, thread-safe
- :mod:`~mxstyle.runtime.tiling`      large images in bounded memory, whole-image norm statistics
- :mod:`~mxstyle.runtime.onnx_graphs` the graph surgery tiling needs
- :mod:`~mxstyle.runtime.stylizer`    :class:`Stylizer`, the one entry point
"""

from .card import DEFAULT_MODEL, ModelError, list_available_models, model_search_paths, resolve_model_dir
from .stylizer import DEFAULT_TILE_PIXELS, PREFERENCE, Stylizer

__all__ = ['Stylizer', 'DEFAULT_MODEL', 'ModelError', 'list_available_models', 'model_search_paths',
           'resolve_model_dir', 'PREFERENCE', 'DEFAULT_TILE_PIXELS']
