"""Registry of generator architectures (gluon-cv ``get_model`` / timm ``register_model`` style).

One dict maps an architecture name to its constructor; constructors register themselves with the
:func:`register_model` decorator, so a new architecture only has to be defined and imported.
"""

from ..errors import ConfigError

__all__ = ['register_model', 'get_model', 'list_models', 'is_model']

_MODELS = {}


def register_model(fn=None, *, name=None):
    """Register a generator constructor under ``name`` (default: the function's own name).

    Usable bare (``@register_model``) or with a name (``@register_model(name='x')``).
    Registering the same name twice is a programming error and raises ``ValueError``.
    """
    def _register(func):
        key = name or func.__name__
        if key in _MODELS and _MODELS[key] is not func:
            raise ValueError('generator architecture %r is registered twice' % key)
        _MODELS[key] = func
        return func

    if fn is None:
        return _register
    return _register(fn)


def list_models():
    """Sorted names of every registered generator architecture."""
    return sorted(_MODELS)


def is_model(name):
    """True if ``name`` is a registered generator architecture."""
    return name in _MODELS


def get_model(name, **kwargs):
    """Build the generator registered as ``name``; ``kwargs`` go to its constructor.

    Raises :class:`~mxstyle.errors.ConfigError` listing the valid names if ``name`` is unknown.
    """
    try:
        ctor = _MODELS[name]
    except (KeyError, TypeError):
        raise ConfigError('unknown generator architecture %r; choose one of: %s'
                          % (name, ', '.join(list_models()))) from None
    return ctor(**kwargs)
