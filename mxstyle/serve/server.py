"""Run the app on uvicorn: JSON log lines on stderr, the socket bound here (so ``port=0`` takes a
free port and the ``listening`` line says which), a graceful stop on SIGINT/SIGTERM."""
import logging
import signal
import socket
import sys
import threading

from ..errors import ConfigError
from .observe import JsonFormatter

__all__ = ["serve", "configure_logging", "bind"]

log = logging.getLogger("mxstyle.serve")


def configure_logging(level="info", stream=None):
    """Every log record (ours and uvicorn's) as one JSON line on ``stream`` (default stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def bind(host, port):
    """A listening TCP socket on ``host:port`` (0: a free port)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def serve(options, *, log_level="info"):
    """Serve ``options`` (a :class:`~mxstyle.serve.ServeOptions`) until SIGINT or SIGTERM."""
    import uvicorn

    from .app import create_app

    configure_logging(log_level)
    app = create_app(options)  # an unknown model fails here, before the port is taken
    sock = bind(options.host, options.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    service = app.state.service
    log.info("listening", extra={"fields": {
        "event": "listening", "url": f"http://{shown}:{port}", "host": host, "port": port,
        "models": list(service.models.models), "workers": service.pool.workers,
        "threads_per_worker": options.thread_count, "max_queue": service.pool.max_queue,
        "max_upload_bytes": options.max_upload_bytes, "max_pixels": options.max_pixels,
        "timeout": options.timeout}})
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", server_header=False,
                            timeout_graceful_shutdown=max(5, int(options.timeout) + 5), log_level=log_level)
    if threading.current_thread() is threading.main_thread():
        # uvicorn stops gracefully on SIGTERM, then raises the signal again: with this no-op
        # handler in place, a graceful stop exits 0 instead of as killed
        signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.Server(config).run(sockets=[sock])
    log.info("stopped", extra={"fields": {"event": "stopped"}})
