"""Prometheus metrics of one service, in a registry of its own (``GET /metrics``)."""
import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

#: Request latency buckets (seconds): a cache-warm 256 px image to a 12 MP photo on a slow CPU.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """Requests by route, method and status; latency per route; inference time per model; the
    pool's queue depth and running jobs; HTTP requests in flight; readiness."""

    def __init__(self, pool, models):
        prometheus_client.disable_created_metrics()  # the *_created series only double the text
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("mxstyle_http_requests", "HTTP requests answered, by route, method and status",
                                ["route", "method", "status"], registry=registry)
        self.latency = Histogram("mxstyle_http_request_duration_seconds", "Time from request to response",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.in_flight = Gauge("mxstyle_http_requests_in_flight", "HTTP requests being handled",
                               registry=registry)
        self.inference = Histogram("mxstyle_inference_seconds", "Decode, stylize and encode in a worker",
                                   ["model"], buckets=LATENCY_BUCKETS, registry=registry)
        self.rejected = Counter("mxstyle_inference_rejected", "Stylize requests not run to the end, by reason",
                                ["reason"], registry=registry)
        Gauge("mxstyle_inference_queue_depth", "Admitted jobs waiting for a worker",
              registry=registry).set_function(lambda: pool.queued)
        Gauge("mxstyle_inference_in_flight", "Jobs running in a worker",
              registry=registry).set_function(lambda: pool.running)
        Gauge("mxstyle_inference_workers", "Worker threads", registry=registry).set(pool.workers)
        Gauge("mxstyle_inference_capacity", "Jobs admitted at most (workers + queue)",
              registry=registry).set(pool.capacity)
        Gauge("mxstyle_ready", "1 once every model has loaded and run its warm-up",
              registry=registry).set_function(lambda: 1.0 if models.ready else 0.0)

    def render(self):
        """``(body, content type)`` of the Prometheus text exposition."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
