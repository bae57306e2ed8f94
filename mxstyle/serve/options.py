"""``ServeOptions``: every setting of ``mxstyle serve``, validated (no heavy imports)."""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import ConfigError
from ..system import usable_cpus
from ..values import is_integer

__all__ = ["ServeOptions", "backend_choices", "precision_choices"]


def backend_choices():
    from ..runtime.backends import BACKENDS

    return ("auto",) + tuple(BACKENDS)


def precision_choices():
    from ..runtime.stylizer import PRECISIONS

    return ("auto",) + tuple(PRECISIONS)


@dataclass(frozen=True)
class ServeOptions:
    """How :func:`mxstyle.serve.create_app` serves models.

    ``models``: names or folders (empty: every model on the search path). ``workers``: inferences
    run at once (None: the usable CPUs); ``threads``: intra-op threads of each (None: the CPUs
    divided among the workers). ``max_queue``: requests that may wait for a worker; past
    ``workers + max_queue`` a request gets 503. ``max_upload_mb``: the largest request body;
    ``max_pixels``: the largest image (width x height); ``timeout``: seconds a request may wait
    for and spend in inference before it gets 504.
    """

    models: Tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    workers: Optional[int] = None
    threads: Optional[int] = None
    max_queue: int = 8
    max_upload_mb: float = 32.0
    max_pixels: int = 50_000_000
    timeout: float = 60.0
    backend: str = "auto"
    precision: str = "auto"

    def __post_init__(self):
        _check_int("port", self.port, 0, 65535)
        if self.workers is not None:
            _check_int("workers", self.workers, 1)
        if self.threads is not None:
            _check_int("threads", self.threads, 1)
        _check_int("max-queue", self.max_queue, 0)
        _check_int("max-pixels", self.max_pixels, 1)
        for label, value in (("max-upload-mb", self.max_upload_mb), ("timeout", self.timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ConfigError(f"{label} must be a positive number, got {value!r}")
        if self.backend != "auto" and self.backend not in backend_choices():
            raise ConfigError(f"unknown backend {self.backend!r}; choose {', '.join(backend_choices())}")
        if self.precision != "auto" and self.precision not in precision_choices():
            raise ConfigError(f"unknown precision {self.precision!r}; choose {', '.join(precision_choices())}")
        if isinstance(self.models, str):
            object.__setattr__(self, "models", (self.models,))
        object.__setattr__(self, "models", tuple(self.models))

    @property
    def worker_count(self):
        return self.workers or usable_cpus()

    @property
    def thread_count(self):
        return self.threads or max(1, usable_cpus() // self.worker_count)

    @property
    def max_upload_bytes(self):
        return int(self.max_upload_mb * 1024 * 1024)


def _check_int(label, value, low, high=None):
    if not is_integer(value) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ConfigError(f"{label} must be an integer {bound}, got {value!r}")
