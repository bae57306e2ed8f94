"""The Starlette app: routes, the service state they share, and how every error becomes JSON.

    app = create_app(ServeOptions(models=("langlois",), workers=2))   # any ASGI server runs it

Routes: ``/`` (the web page) and ``/static/*``; ``/healthz``, ``/readyz``, ``/metrics``;
``/v1/info``, ``/v1/models``, ``/v1/models/{name}/thumbnail.jpg`` and ``.../style.jpg``,
``POST /v1/stylize``; the Open Inference Protocol under ``/v2`` (:mod:`mxstyle.serve.oip`).
"""
import contextlib
import functools
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..errors import ConfigError, ImageError
from . import oip
from .body import read_body, read_upload
from .inference import Busy, ClientGone, InferencePool, TimedOut
from .metrics import Metrics
from .models import ModelSet
from .observe import Observe
from .options import ServeOptions
from .params import HTTPError, parse_params

__all__ = ["create_app", "Service"]

STATIC = Path(__file__).resolve().parent / "static"

#: Bodies larger than this are parsed off the event loop (JSON with base64 images).
_PARSE_IN_THREAD_BYTES = 1 << 20


class Service:
    """What the routes share: the options, the models, the worker pool and the metrics."""

    def __init__(self, options):
        self.options = options
        self.models = ModelSet(options.models, backend=options.backend, precision=options.precision,
                               threads=options.thread_count)
        self.pool = InferencePool(options.worker_count, options.max_queue)
        self.metrics = Metrics(self.pool, self.models)

    def check_ready(self):
        if self.models.state == "loading":
            raise HTTPError(503, "the models are still loading; retry shortly", {"Retry-After": "2"})
        if self.models.state == "failed":
            raise HTTPError(503, f"the models failed to load: {self.models.error}")

    def check_room(self):
        """503 before a body is read when no place is free (the same answer admission would give)."""
        if self.pool.full:
            self.metrics.rejected.labels("busy").inc()
            raise _busy(self.pool.retry_after())

    async def infer(self, request, model, images, params, names):
        """Stylize ``images`` (encoded bytes) with ``model`` in one worker job; ``[(bytes, seconds)]``."""
        max_pixels = self.options.max_pixels
        histogram = self.metrics.inference.labels(model.name)

        def job():
            results = []
            for data, name in zip(images, names):
                results.append(model.stylize_encoded(data, params, name=name, max_pixels=max_pixels))
                histogram.observe(results[-1][1])
            return results

        try:
            return await self.pool.run(job, self.options.timeout, disconnected=_disconnect(request.receive))
        except Busy as exc:
            self.metrics.rejected.labels("busy").inc()
            raise _busy(exc.retry_after) from None
        except TimedOut:
            self.metrics.rejected.labels("timeout").inc()
            raise HTTPError(504, f"stylizing did not finish within the {self.options.timeout:g} s limit; send a "
                                 "smaller image or try again later") from None
        except ClientGone:
            self.metrics.rejected.labels("client_gone").inc()
            raise


def _busy(retry_after):
    return HTTPError(503, f"the server is busy (every worker is stylizing and the queue is full); retry in "
                          f"{retry_after} s", {"Retry-After": str(retry_after)})


async def _disconnect(receive):
    """Returns when the client disconnects (call it after the body was read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class _Gone(Response):
    """Nothing to send: the client went away (logged as 499)."""

    def __init__(self):
        super().__init__(status_code=499)

    async def __call__(self, scope, receive, send):
        return None


def _error(request, status, message, headers=None):
    request.scope.setdefault("mxstyle", {})["error"] = message
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def handled(endpoint):
    """Turn the errors a request can cause into JSON answers with the right status."""

    @functools.wraps(endpoint)
    async def wrapper(request):
        try:
            return await endpoint(request)
        except HTTPError as exc:
            return _error(request, exc.status, exc.message, exc.headers)
        except (ImageError, ConfigError) as exc:  # the library's one-line message
            return _error(request, 422, str(exc).strip().splitlines()[0])
        except (ClientDisconnect, ClientGone):
            request.scope.setdefault("mxstyle", {})["client_gone"] = True
            return _Gone()

    return wrapper


# ---------------------------------------------------------------------------- endpoints

async def index(request):
    return FileResponse(STATIC / "index.html", media_type="text/html")


async def healthz(request):
    models = request.app.state.service.models
    if models.state == "failed":
        return JSONResponse({"status": "failed", "error": models.error}, status_code=503)
    return JSONResponse({"status": "ok", "state": models.state})


async def readyz(request):
    models = request.app.state.service.models
    body = {"ready": models.ready, "state": models.state}
    if models.error:
        body["error"] = models.error
    return JSONResponse(body, status_code=200 if models.ready else 503)


async def metrics(request):
    body, content_type = request.app.state.service.metrics.render()
    return Response(body, media_type=content_type)


async def info(request):
    service = request.app.state.service
    options = service.options
    return JSONResponse({
        "name": "mxstyle", "version": __version__, "ready": service.models.ready,
        "default_model": service.models.default, "models": list(service.models.models),
        "workers": service.pool.workers, "threads_per_worker": options.thread_count,
        "max_queue": service.pool.max_queue,
        "limits": {"max_upload_bytes": options.max_upload_bytes, "max_pixels": options.max_pixels,
                   "timeout_seconds": options.timeout}})


async def list_models(request):
    models = request.app.state.service.models
    return JSONResponse({"default": models.default, "models": [m.describe() for m in models]})


@handled
async def thumbnail(request):
    return _style_picture(request, thumbnail=True)


@handled
async def style_image(request):
    return _style_picture(request, thumbnail=False)


def _style_picture(request, thumbnail):
    service = request.app.state.service
    model = service.models.get(request.path_params["name"])
    data = model.thumbnail_jpeg if thumbnail else model.style_jpeg
    if data is None:
        if isinstance(model.card["files"].get("style_image"), dict):
            service.check_ready()
        raise HTTPError(404, f"model {model.name!r} has no style image")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=3600"})


@handled
async def stylize(request):
    service = request.app.state.service
    query = dict(request.query_params)
    model = service.models.get(parse_params(query).model)  # 404 / 422 before the body is read
    service.check_ready()
    service.check_room()
    upload = await read_upload(request, service.options.max_upload_bytes)
    params = parse_params({**query, **upload.fields})
    model = service.models.get(params.model)
    info = request.scope["mxstyle"]
    info["model"] = model.name
    if not upload.data:
        raise HTTPError(400, "no image: send the photo as the request body, or as a multipart file field "
                             "named 'image'")
    name = upload.filename or "upload"
    [(data, seconds)] = await service.infer(request, model, [upload.data], params, [name])
    info["inference_seconds"] = round(seconds, 4)
    stem = Path(name).stem or "upload"
    return Response(data, media_type=params.media_type, headers={
        "X-Mxstyle-Model": model.name, "X-Mxstyle-Backend": model.backend,
        "X-Mxstyle-Seconds": f"{seconds:.4f}", "Cache-Control": "no-store",
        "Content-Disposition": f'inline; filename="{_header_safe(stem)}_{model.name}{params.extension}"'})


def _header_safe(text):
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in text)[:100]


# ---------------------------------------------------------------------------- OIP v2

async def v2_server(request):
    return JSONResponse(oip.server_metadata(__version__))


async def v2_live(request):
    return JSONResponse({"live": True})


async def v2_ready(request):
    ready = request.app.state.service.models.ready
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


def _v2_model(request):
    service = request.app.state.service
    version = request.path_params.get("version")
    model = service.models.get(request.path_params["name"])
    if version is not None and version != oip.VERSION:
        raise HTTPError(404, f"model {model.name!r} has no version {version!r}; its one version is "
                             f"{oip.VERSION!r}")
    return service, model


@handled
async def v2_model(request):
    _, model = _v2_model(request)
    return JSONResponse(oip.model_metadata(model.name))


@handled
async def v2_model_ready(request):
    service, model = _v2_model(request)
    ready = service.models.ready
    return JSONResponse({"name": model.name, "ready": ready}, status_code=200 if ready else 503)


@handled
async def v2_infer(request):
    service, model = _v2_model(request)
    info = request.scope["mxstyle"]
    info["model"] = model.name
    service.check_ready()
    service.check_room()
    body = await read_body(request, service.options.max_upload_bytes)
    header_length = request.headers.get("inference-header-content-length")
    if len(body) > _PARSE_IN_THREAD_BYTES:
        parsed = await anyio.to_thread.run_sync(oip.parse_infer, body, header_length)
    else:
        parsed = oip.parse_infer(body, header_length)
    params = parse_params(parsed.parameters)
    if params.model not in (None, model.name):
        raise HTTPError(400, f"parameter model={params.model!r} contradicts the model {model.name!r} of the URL")
    names = [f"{oip.INPUT}[{i}]" for i in range(len(parsed.images))]
    results = await service.infer(request, model, parsed.images, params, names)
    seconds = sum(s for _, s in results)
    info["inference_seconds"] = round(seconds, 4)
    payload, headers = oip.encode_infer(model.name, parsed, [data for data, _ in results],
                                        {"backend": model.backend, "seconds": round(seconds, 4),
                                         "format": params.format})
    headers.update({"X-Mxstyle-Model": model.name, "X-Mxstyle-Backend": model.backend,
                    "X-Mxstyle-Seconds": f"{seconds:.4f}"})
    media_type = headers.pop("content-type")
    return Response(payload, media_type=media_type, headers=headers)


# ---------------------------------------------------------------------------- the app

async def _http_exception(request, exc):
    message = {404: f"no such endpoint: {request.method} {request.url.path}",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
    return _error(request, exc.status_code, message, getattr(exc, "headers", None))


def _routes():
    version = "/versions/{version}"
    routes = [
        Route("/", index, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/info", info, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{name}/thumbnail.jpg", thumbnail, methods=["GET"]),
        Route("/v1/models/{name}/style.jpg", style_image, methods=["GET"]),
        Route("/v1/stylize", stylize, methods=["POST"]),
        Route("/v2", v2_server, methods=["GET"]),
        Route("/v2/health/live", v2_live, methods=["GET"]),
        Route("/v2/health/ready", v2_ready, methods=["GET"]),
    ]
    for suffix in ("", version):
        routes += [Route(f"/v2/models/{{name}}{suffix}", v2_model, methods=["GET"]),
                   Route(f"/v2/models/{{name}}{suffix}/ready", v2_model_ready, methods=["GET"]),
                   Route(f"/v2/models/{{name}}{suffix}/infer", v2_infer, methods=["POST"])]
    return routes


def create_app(options=None, **overrides):
    """The ASGI app serving ``options`` (a :class:`ServeOptions`, or its fields as keywords).

    The models are found and their cards read now (an unknown name raises ``ModelError``); they
    load, and each runs one warm-up inference, in a background thread once the server starts
    (the lifespan), and ``/readyz`` turns 200 after that. ``app.state.service`` is the
    :class:`Service`."""
    if options is None:
        options = ServeOptions(**overrides)
    elif overrides:
        import dataclasses

        options = dataclasses.replace(options, **overrides)
    service = Service(options)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.models.start_loading()
        try:
            yield
        finally:
            service.pool.shutdown()

    routes = _routes()
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(Observe, metrics_of=lambda: service.metrics, routes=routes)],
                    exception_handlers={HTTPException: _http_exception})
    app.state.service = service
    return app
