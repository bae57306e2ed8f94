"""The outermost layer of the app: one JSON access-log line and the metrics of every request, a
request id, and the last word on errors: an exception no handler turned into a response is
logged with its traceback and answered with a JSON 500 that holds none.

It is a plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``), so request bodies stream
through it untouched and a client's disconnect reaches the handlers."""
import json
import logging
import time
import uuid

from starlette.routing import Match

__all__ = ["Observe", "JsonFormatter", "STATUS_CLIENT_GONE"]

access_log = logging.getLogger("mxstyle.serve.access")
error_log = logging.getLogger("mxstyle.serve")

#: The status logged for a request whose client went away before the answer (nginx's 499).
STATUS_CLIENT_GONE = 499


class Observe:
    def __init__(self, app, *, metrics_of, routes):
        self.app, self._metrics_of, self._routes = app, metrics_of, routes

    def _route(self, scope):
        for route in self._routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", scope["path"])
        return "unmatched"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        route = self._route(scope)  # before the app runs: a Mount rewrites the scope's paths
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        info = scope.setdefault("mxstyle", {})
        info["request_id"] = request_id
        response = {"status": None, "bytes": 0}
        received = {"bytes": 0}
        metrics = self._metrics_of()
        if metrics:
            metrics.in_flight.inc()

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                received["bytes"] += len(message.get("body", b""))
            return message

        async def observed_send(message):
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                message = dict(message, headers=list(message.get("headers", [])) +
                               [(b"x-request-id", request_id.encode("latin-1"))])
            elif message["type"] == "http.response.body":
                response["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, observed_send)
        except Exception as exc:
            error_log.error("unhandled error", exc_info=True, extra={"fields": {
                "event": "error", "request_id": request_id, "path": scope.get("path"),
                "error": f"{type(exc).__name__}: {exc}"}})
            info.setdefault("error", f"internal error ({type(exc).__name__})")
            if response["status"] is None:
                body = json.dumps({"error": f"internal error ({type(exc).__name__}); the server log has the "
                                            f"details under request id {request_id}"}).encode()
                try:
                    await observed_send({"type": "http.response.start", "status": 500, "headers": [
                        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                    await observed_send({"type": "http.response.body", "body": body})
                except Exception:  # the client is gone too
                    response["status"] = 500
        finally:
            status = response["status"] or (STATUS_CLIENT_GONE if info.get("client_gone") else 500)
            seconds = time.perf_counter() - started
            if metrics:
                metrics.in_flight.dec()
                metrics.requests.labels(route, scope["method"], str(status)).inc()
                metrics.latency.labels(route).observe(seconds)
            client = scope.get("client")
            entry = {"event": "request", "request_id": request_id, "method": scope["method"],
                     "path": scope["path"], "route": route, "status": status, "seconds": round(seconds, 4),
                     "bytes_in": received["bytes"], "bytes_out": response["bytes"],
                     "client": f"{client[0]}:{client[1]}" if client else None}
            entry.update({k: v for k, v in info.items() if k != "request_id"})
            access_log.info("request", extra={"fields": entry})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    def format(self, record):
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) +
                 f".{int(record.msecs):03d}Z", "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
