"""Prometheus metrics, and how every HTTP exchange is recorded.

The inference routes (serving/inference.py) call `record_request` themselves; the
Starlette routes go through `MetricsMiddleware`, plain ASGI rather than Starlette's
BaseHTTPMiddleware, which would add a task and a body copy to every request.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.provenance import REASONS

REQUESTS = Counter(
    "mlpipe_serving_requests", "HTTP requests answered, by endpoint and status code",
    ["endpoint", "code"],
)
LATENCY = Histogram(
    "mlpipe_serving_request_latency_seconds", "Time from request start to response start",
    ["endpoint"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
BATCH_ROWS = Histogram(
    "mlpipe_serving_batch_rows", "Rows per model call, before padding",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)
QUEUE_DEPTH = Gauge("mlpipe_serving_queue_depth", "Requests admitted and waiting for the model")
BATCH_LIMIT = Gauge("mlpipe_serving_batch_limit_rows",
                    "Rows a batch may hold now (fixed, or chosen for latency_target_ms)")
BATCH_DELAY = Gauge("mlpipe_serving_batch_delay_seconds",
                    "How long a batch may wait for company now (fixed, or chosen)")
LOOP_LAG = Histogram(
    "mlpipe_serving_event_loop_lag_seconds",
    "How late the event loop took up each finished batch: the backlog of unread requests",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
)
REJECTED = Counter(
    "mlpipe_serving_rejected", "Requests refused without running the model, by reason",
    ["reason"],
)
MODEL_VERSION = Gauge("mlpipe_serving_model_version_info", "The model version served",
                      ["name", "version"])
VERSIONS_REFUSED = Counter(
    "mlpipe_serving_model_versions_refused",
    "Registry versions --watch found behind the alias and would not load, by reason "
    "(serving/provenance.py); the running version kept serving", ["reason"],
)
for _reason in REASONS:  # every reason reads 0 from the start, so an alert can use rate()
    VERSIONS_REFUSED.labels(_reason)


# Labelled children looked up once: `labels()` costs more than the update itself.
_CHILDREN: dict[tuple[str, int], tuple[Counter, Histogram]] = {}


def record_request(endpoint: str, status: int, seconds: float) -> None:
    """Count one answered request and time it (from its start to its response's start)."""
    children = _CHILDREN.get((endpoint, status))
    if children is None:
        children = (REQUESTS.labels(endpoint, str(status)), LATENCY.labels(endpoint))
        _CHILDREN[(endpoint, status)] = children
    children[1].observe(seconds)
    children[0].inc()


class MetricsMiddleware:
    """Count the Starlette routes' requests by endpoint and status code and time them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                record_request(_endpoint(scope), message["status"], time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, send_recording)


def _endpoint(scope: Scope) -> str:
    """The route's handler name: bounded label values, whatever paths clients send."""
    endpoint = scope.get("endpoint")
    return getattr(endpoint, "__name__", "unmatched")


async def metrics(request: Request) -> Response:
    """GET /metrics in the Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
