"""``mxstyle serve``: an HTTP service for style models, with a web page, Prometheus metrics and the
Open Inference Protocol (KServe v2 / Triton) that ``tritonclient`` speaks.

- :mod:`~mxstyle.serve.options`    ``ServeOptions``, validated (no heavy imports)
- :mod:`~mxstyle.serve.app`        the Starlette app: routes, errors as JSON, ``create_app``
- :mod:`~mxstyle.serve.inference`  the bounded worker pool and queue (503, 504, disconnects)
- :mod:`~mxstyle.serve.models`     the served models: load, warm-up, readiness, the stylize job
- :mod:`~mxstyle.serve.body`       request bodies read under the size limit (413), multipart
- :mod:`~mxstyle.serve.params`     request parameters, checked before work is queued
- :mod:`~mxstyle.serve.oip`        the Open Inference Protocol v2: JSON and binary tensors
- :mod:`~mxstyle.serve.metrics`    the Prometheus registry
- :mod:`~mxstyle.serve.observe`    access log (JSON lines), metrics and the catch-all 500
- :mod:`~mxstyle.serve.server`     uvicorn, logging, the socket
- ``static/``                      the web page (plain HTML, JS and CSS; no CDN)

The HTTP stack (starlette, uvicorn, python-multipart, prometheus-client) is the ``serve`` extra:
``pip install "mxstyle[serve]"``. Importing this package does not import it.
"""
from .options import ServeOptions

__all__ = ["ServeOptions", "create_app", "serve", "SERVE_REQUIREMENTS"]

#: What ``mxstyle serve`` imports beyond the library (the ``serve`` extra).
SERVE_REQUIREMENTS = ("starlette", "uvicorn", "python_multipart", "prometheus_client")


def check_installed():
    """Raise a one-line :class:`~mxstyle.errors.ConfigError` naming the extra when a part is missing."""
    import importlib.util

    from ..errors import ConfigError

    missing = [name for name in SERVE_REQUIREMENTS if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"mxstyle serve needs {', '.join(m.replace('_', '-') for m in missing)}: "
                          'pip install "mxstyle[serve]"')


def create_app(options=None, **overrides):
    """:func:`mxstyle.serve.app.create_app`."""
    check_installed()
    from .app import create_app as create

    return create(options, **overrides)


def serve(options, **kwargs):
    """:func:`mxstyle.serve.server.serve`."""
    check_installed()
    from .server import serve as run

    return run(options, **kwargs)
