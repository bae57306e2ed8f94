"""The models a service serves: found and checked when the app is made, loaded once (with one
warm-up inference each) in the background, and the stylize job a worker runs for a request."""
import logging
import threading
import time

import numpy as np

from .. import io
from .. import model_folder as cards
from ..errors import ConfigError
from .params import HTTPError

__all__ = ["ModelSet", "ServedModel", "WARMUP_SIDE", "THUMBNAIL_SIDE"]

log = logging.getLogger("mxstyle.serve")

#: Side of the synthetic photo each model stylizes once before the service says it is ready.
WARMUP_SIDE = 256
#: Longest side of the style thumbnails the web page shows.
THUMBNAIL_SIDE = 256


class ServedModel:
    """One model folder: its card before loading, its ``Stylizer`` after."""

    def __init__(self, spec):
        self.spec = spec
        self.folder = cards.resolve_model_dir(spec)
        self.card = cards.read_card(self.folder)
        self.name = self.card.get("name") or self.folder.name
        self.stylizer = None
        self.style_jpeg = self.thumbnail_jpeg = None

    def load(self, *, backend, precision, threads):
        from ..runtime import Stylizer

        self.stylizer = Stylizer(self.folder, backend=backend, precision=precision, threads=threads)
        self.stylizer.stylize(_warmup_photo(WARMUP_SIDE))
        if isinstance(self.card["files"].get("style_image"), dict):
            data = cards.load_verified(self.folder, self.card, "style_image")
            painting = io.read_image(data, name=f"{self.name}/style.jpg")
            self.style_jpeg = data if io.is_jpeg(data) else io.encode_image(painting, ".jpg", 90)
            self.thumbnail_jpeg = io.encode_image(io.resize_max_side(painting, THUMBNAIL_SIDE)
                                                  if max(painting.shape[:2]) > THUMBNAIL_SIDE else painting,
                                                  ".jpg", 85)

    @property
    def backend(self):
        return f"{self.stylizer.backend} {self.stylizer.precision}" if self.stylizer else None

    def describe(self):
        """What ``GET /v1/models`` says of the model."""
        style = self.card.get("style") or {}
        source = style.get("source") or ""
        has_image = isinstance(self.card["files"].get("style_image"), dict)
        return {"name": self.name, "arch": self.card.get("arch"), "stride": self.card.get("stride"),
                "backend": self.backend,
                "style": {"title": source.split(";")[0].strip() or self.name, "source": source or None,
                          "license": style.get("license")},
                "thumbnail": f"/v1/models/{self.name}/thumbnail.jpg" if has_image else None,
                "style_image": f"/v1/models/{self.name}/style.jpg" if has_image else None}

    def stylize_encoded(self, data, params, *, name, max_pixels):
        """The job a worker runs: decode ``data``, stylize, encode. Returns ``(bytes, seconds)``;
        an unusable image raises :class:`ImageError` whose message names ``name``."""
        started = time.perf_counter()
        out = self.stylizer.stylize(data, name=name, max_pixels=max_pixels, **params.stylize_kwargs())
        return io.encode_image(out, params.extension, params.quality), time.perf_counter() - started


class ModelSet:
    """The served models by name, and whether they are ready: ``loading``, ``ready`` or ``failed``."""

    def __init__(self, specs=(), *, backend="auto", precision="auto", threads=None):
        specs = list(specs) or cards.list_available_models()
        if not specs:
            raise ConfigError("no models to serve: none is installed and --models names none")
        self.models = {}
        for spec in specs:
            model = ServedModel(spec)
            if model.name in self.models:
                raise ConfigError(f"two models are named {model.name!r} ({self.models[model.name].folder} and "
                                  f"{model.folder}); serve one of them")
            self.models[model.name] = model
        self.default = cards.DEFAULT_MODEL if cards.DEFAULT_MODEL in self.models else next(iter(self.models))
        self._options = dict(backend=backend, precision=precision, threads=threads)
        self.state, self.error = "loading", None
        self.ready_event = threading.Event()

    def __iter__(self):
        return iter(self.models.values())

    @property
    def ready(self):
        return self.state == "ready"

    def get(self, name):
        """The model called ``name`` (None: the default); 404 for an unknown name."""
        name = self.default if name in (None, "") else name
        model = self.models.get(name)
        if model is None:
            raise HTTPError(404, f"model {name!r} is not served here; the models are: {', '.join(self.models)}")
        return model

    def load(self):
        """Load every model and run its warm-up (in the calling thread); then ``ready``."""
        started = time.perf_counter()
        try:
            for model in self.models.values():
                t0 = time.perf_counter()
                model.load(**self._options)
                log.info("model loaded", extra={"fields": {
                    "event": "model_loaded", "model": model.name, "backend": model.backend,
                    "folder": str(model.folder), "seconds": round(time.perf_counter() - t0, 3)}})
        except Exception as exc:  # a model that cannot run: the service stays unready and says why
            self.state, self.error = "failed", str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            log.error("loading the models failed", exc_info=not isinstance(exc, cards.ModelError),
                      extra={"fields": {"event": "load_failed", "error": self.error}})
        else:
            self.state = "ready"
            log.info("ready", extra={"fields": {"event": "ready", "models": list(self.models),
                                                "seconds": round(time.perf_counter() - started, 3)}})
        finally:
            self.ready_event.set()

    def start_loading(self):
        thread = threading.Thread(target=self.load, name="mxstyle-load", daemon=True)
        thread.start()
        return thread


def _warmup_photo(side):
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    return np.stack([128 + 100 * np.sin(x / 9.0), 128 + 100 * np.cos(y / 7.0), 255 * (x + y) / (2 * side)], axis=2)
