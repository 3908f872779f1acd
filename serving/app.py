"""The Starlette application: routes for KServe v2, MLflow scoring, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from serving import kserve, scoring
from serving.admission import AdmissionMiddleware
from serving.auth import requires_token
from serving.batching import DeadlineExceeded, Priority, QueueFull
from serving.metrics import MetricsMiddleware, metrics
from serving.openapi import openapi_document
from serving.settings import ServingSettings
from serving.state import ServingState
from serving.tensors import InvalidInput

log = logging.getLogger(__name__)

TIMEOUT_HEADER = "x-request-timeout-ms"
PRIORITY_HEADER = "x-request-priority"
# On every 200 of both protocols: the version that ran, which a client can count by.
VERSION_HEADER = "x-model-version"
# KServe's parameters.priority also takes Triton's schedule-policy numbers, read with two
# levels: 0 is the default (as if absent), 1 the highest level, 2 the next.
TRITON_PRIORITIES = {0: None, 1: Priority.HIGH, 2: Priority.LOW}
# With several workers each loads its own copy, so one may still load while others serve.
LOADING = "the model is still loading in this worker; retry"


class PayloadTooLarge(Exception):
    """The body is over `max_request_bytes`."""


def create_app(model_uri: str, settings: ServingSettings, *, watch: bool = False) -> Starlette:
    """The app for one model; it starts loading the model when the server starts."""
    state = ServingState(model_uri, settings, watch)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loader = asyncio.create_task(state.load(), name="model-loader")
        yield
        loader.cancel()
        await asyncio.gather(loader, return_exceptions=True)
        if state.batcher is not None:
            await state.batcher.stop()

    model = "/v2/models/{model_name}"
    versioned = "/v2/models/{model_name}/versions/{model_version}"
    # Inference first: the router tries routes in order, and no two of them overlap.
    routes = [
        Route("/invocations", requires_token(invocations), methods=["POST"]),
        Route(f"{model}/infer", requires_token(kserve_infer), methods=["POST"]),
        Route(f"{versioned}/infer", requires_token(kserve_infer), methods=["POST"]),
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/ping", ready),
        Route("/health", ready),
        Route("/v2", requires_token(server_metadata)),
        Route(model, requires_token(model_metadata)),
        Route(versioned, requires_token(model_metadata)),
        Route(f"{model}/ready", requires_token(model_ready)),
        Route(f"{versioned}/ready", requires_token(model_ready)),
        Route("/metrics", requires_token(metrics)),
        Route("/openapi.json", requires_token(openapi)),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(AdmissionMiddleware, settings=settings),
                                               Middleware(MetricsMiddleware)],
                    lifespan=lifespan)
    app.state.serving = state
    return app


def _state(request: Request) -> ServingState:
    return request.app.state.serving


async def live(request: Request) -> Response:
    """The process answers; says nothing about the model."""
    return JSONResponse({"live": True})


async def ready(request: Request) -> Response:
    """Ready once the model is loaded and warmed up at every allowed batch size."""
    is_ready = _state(request).batcher is not None
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


async def server_metadata(request: Request) -> Response:
    return JSONResponse({"name": "mlpipe-serving", "version": "1",
                         "extensions": ["binary_tensor_data"]})


async def model_metadata(request: Request) -> Response:
    state = _state(request)
    problem = _check_model(request, state)
    if problem is not None:
        return problem
    runtime = state.runtime()
    return JSONResponse({
        "name": state.name, "versions": [runtime.version], "platform": "mlflow",
        "inputs": kserve.tensor_metadata(runtime.inputs),
        "outputs": kserve.tensor_metadata(runtime.outputs),
    })


async def model_ready(request: Request) -> Response:
    problem = _check_model(request, _state(request))
    return problem or JSONResponse({"name": _state(request).name, "ready": True})


async def openapi(request: Request) -> Response:
    state = _state(request)
    inputs = state.runtime().inputs if state.batcher is not None else ()
    return JSONResponse(openapi_document(state.name, inputs))


def _check_model(request: Request, state: ServingState) -> Response | None:
    """404 for a name or version we do not serve, 503 while the model loads."""
    name = request.path_params["model_name"]
    if name != state.name:
        return _kserve_error(404, f"model_name: unknown model {name!r}; serving {state.name!r}")
    if state.batcher is None:
        return _kserve_error(503, LOADING, headers=_retry_after(state))
    version = request.path_params.get("model_version")
    if version is not None and version != state.runtime().version:
        return _kserve_error(404, f"model_version: version {version!r} is not served; "
                                  f"serving {state.runtime().version!r}")
    return None


async def kserve_infer(request: Request) -> Response:
    """POST /v2/models/{name}/infer, JSON or binary tensor data."""
    state = _state(request)
    problem = _check_model(request, state)
    if problem is not None:
        return problem
    runtime = state.runtime()
    header_length = request.headers.get(kserve.HEADER_LENGTH)

    async def run(body: bytes, timeout_s: float | None, priority: Priority) -> Response:
        decoded = kserve.decode_request(body, header_length, runtime.inputs)
        timeout_s = decoded.timeout_s if decoded.timeout_s is not None else timeout_s
        priority = _parameter_priority(decoded.priority) or priority
        outputs = await state.batcher.submit(runtime, decoded.columns, decoded.rows, timeout_s,
                                             priority)
        content, headers = kserve.encode_response(decoded, outputs, state.name, runtime.version)
        media = "application/octet-stream" if headers else "application/json"
        return Response(content, headers={**headers, VERSION_HEADER: runtime.version},
                        media_type=media)

    return await _serve(request, state, run, _kserve_error)


async def invocations(request: Request) -> Response:
    """POST /invocations, the MLflow scoring server's protocol."""
    state = _state(request)
    if state.batcher is None:
        return _mlflow_error(503, LOADING, headers=_retry_after(state))
    runtime = state.runtime()

    async def run(body: bytes, timeout_s: float | None, priority: Priority) -> Response:
        columns, rows = scoring.decode_request(body, runtime.inputs)
        outputs = await state.batcher.submit(runtime, columns, rows, timeout_s, priority)
        return Response(scoring.encode_response(outputs), media_type="application/json",
                        headers={VERSION_HEADER: runtime.version})

    return await _serve(request, state, run, _mlflow_error)


async def _serve(request: Request, state: ServingState,
                 run: Callable[[bytes, float | None, Priority], Awaitable[Response]],
                 error: Callable[..., Response]) -> Response:
    """The shared part of both protocols: limits, deadline, priority, errors mapped to codes.

    `run` decodes against the runtime the route read when the request arrived and
    submits it with that runtime, so the version it reports is the one that ran.
    """
    settings = state.settings
    try:
        timeout_s = _timeout(request)
        priority = _header_priority(request)
        body = await _read_body(request, settings.max_request_bytes)
        return await run(body, timeout_s, priority)
    except InvalidInput as problem:
        return error(400, str(problem))
    except PayloadTooLarge:
        return error(413, f"body: larger than the limit of {settings.max_request_bytes} bytes")
    except QueueFull:
        return error(503, "the server is at capacity; retry later", headers=_retry_after(state))
    except DeadlineExceeded:
        return error(504, "the request's deadline passed before the model ran it")
    except Exception:  # a model failure: the caller learns it failed, the log says why
        log.exception("inference failed")
        return error(500, "the model failed on this batch; see the server log")


def _retry_after(state: ServingState) -> dict[str, str]:
    return {"Retry-After": str(state.settings.retry_after_s)}


def _timeout(request: Request) -> float | None:
    value = request.headers.get(TIMEOUT_HEADER)
    if value is None:
        return None
    try:
        timeout_ms = float(value)
    except ValueError:
        timeout_ms = -1.0
    if not np.isfinite(timeout_ms) or timeout_ms <= 0:
        raise InvalidInput(f"{TIMEOUT_HEADER}: expected a positive number of milliseconds")
    return timeout_ms / 1000


def _header_priority(request: Request) -> Priority:
    """`x-request-priority: high|low`; a request that says nothing is high (interactive)."""
    value = request.headers.get(PRIORITY_HEADER, Priority.HIGH.value)
    try:
        return Priority(value.strip().lower())
    except ValueError:
        raise InvalidInput(f"{PRIORITY_HEADER}: expected 'high' or 'low', got {value!r}") from None


def _parameter_priority(value: object) -> Priority | None:
    """KServe `parameters.priority`: 'high', 'low' or Triton's 0/1/2; None leaves the header's."""
    if value is None:
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return Priority(value)
    elif isinstance(value, int) and not isinstance(value, bool) and value in TRITON_PRIORITIES:
        return TRITON_PRIORITIES[value]
    raise InvalidInput("parameters.priority: expected 'high', 'low' or Triton's 0 (default), "
                       f"1 (high), 2 (low); got {value!r}")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to be over the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _kserve_error(status: int, message: str, headers: dict | None = None) -> Response:
    """Errors as KServe and tritonclient expect them: `{"error": message}`."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _mlflow_error(status: int, message: str, headers: dict | None = None) -> Response:
    """Errors as the MLflow scoring server writes them."""
    code = {400: "BAD_REQUEST", 413: "BAD_REQUEST", 503: "TEMPORARILY_UNAVAILABLE",
            504: "TEMPORARILY_UNAVAILABLE"}.get(status, "INTERNAL_ERROR")
    return JSONResponse({"error_code": code, "message": message}, status_code=status,
                        headers=headers)
