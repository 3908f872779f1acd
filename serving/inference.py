"""The inference routes as plain ASGI, in front of the Starlette app.

A single-row request costs the server little besides what stands between the socket
and the model, so that part sets the single-row throughput. Starlette's middleware
stack, its router (a regular expression per route), and its Request and Response
objects cost about as much per request as the rest of the hot path
(bench/RESULTS.md, "Single-row throughput"). This app answers `POST /invocations`
(MLflow's scoring protocol) and `POST /v2/models/{name}[/versions/{version}]/infer`
(KServe v2) itself, with the same admission, auth, metrics, headers, limits and error
codes as any route, and hands every other request to the Starlette app (health,
metadata, metrics, OpenAPI), where no request is hot.

Each request is decoded against the runtime that is current when it arrives and
submitted with it, so the version it reports is the one that ran, across a swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import numpy as np
from starlette.types import ASGIApp, Receive, Scope, Send

from serving import kserve, scoring
from serving.admission import Admission, BodyBudget
from serving.auth import UNAUTHORIZED, token_accepted
from serving.batching import DeadlineExceeded, Priority, QueueFull
from serving.metrics import record_request
from serving.replies import (
    INVOCATIONS,
    KSERVE_INFER,
    LOADING,
    Reply,
    check_model,
    error_for,
    mlflow_error,
    retry_after,
    send_reply,
)
from serving.state import ServingState
from serving.tensors import InvalidInput

log = logging.getLogger(__name__)

TIMEOUT_HEADER = "x-request-timeout-ms"
PRIORITY_HEADER = "x-request-priority"
# KServe's parameters.priority also takes Triton's schedule-policy numbers, read with two
# levels: 0 is the default (as if absent), 1 the highest level, 2 the next.
TRITON_PRIORITIES = {0: None, 1: Priority.HIGH, 2: Priority.LOW}

_MODELS_PREFIX = "/v2/models/"
_INFER_SUFFIX = "/infer"
_OCTET_STREAM = b"application/octet-stream"
_TIMEOUT_KEY, _PRIORITY_KEY, _HEADER_LENGTH_KEY = (
    name.encode() for name in (TIMEOUT_HEADER, PRIORITY_HEADER, kserve.HEADER_LENGTH))

Headers = dict[bytes, bytes]


class PayloadTooLarge(Exception):
    """The body is over `max_request_bytes`."""


class OverBudget(Exception):
    """The bodies held at once would exceed `max_body_bytes_in_flight`."""


class TooManyRows(Exception):
    """The request carries more than `max_request_rows` rows."""

    def __init__(self, rows: int) -> None:
        super().__init__(rows)
        self.rows = rows


def match_inference(path: str) -> tuple[str, str, str | None] | None:
    """(endpoint, model name, model version or None) for an inference path, else None.

    Names and versions are one path segment each, as the Starlette routes they replace.
    """
    if path == "/invocations":
        return INVOCATIONS, "", None
    if not (path.startswith(_MODELS_PREFIX) and path.endswith(_INFER_SUFFIX)):
        return None
    parts = path[len(_MODELS_PREFIX):-len(_INFER_SUFFIX)].split("/")
    if len(parts) == 1 and parts[0]:
        return KSERVE_INFER, parts[0], None
    if len(parts) == 3 and parts[0] and parts[1] == "versions" and parts[2]:
        return KSERVE_INFER, parts[0], parts[2]
    return None


class InferenceRoutes:
    """Serve the inference routes; pass every other request to `app`."""

    def __init__(self, app: ASGIApp, state: ServingState) -> None:
        self.app = app
        self.state = state
        self.admission = Admission(state.settings)
        self.budget = BodyBudget(state.settings.max_body_bytes_in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = match_inference(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        endpoint, name, version = route
        start = time.perf_counter()
        if scope["method"] != "POST":
            reply = error_for(endpoint)(405, "method: only POST is allowed here",
                                        ((b"allow", b"POST"),))
            record_request(endpoint, reply.status, time.perf_counter() - start)
            await send_reply(send, reply)
            return
        if self.admission.full():  # refused before the body is read: cheap under overload
            await self.admission.refuse(scope, endpoint, send)
            return
        request = _Request()
        try:
            reply, version_served = await self._answer(endpoint, name, version, scope, receive,
                                                       request)
            if reply is None:  # the body arrived to find every slot taken
                await self.admission.refuse(scope, endpoint, send)
                return
            record_request(endpoint, reply.status, time.perf_counter() - start)
            await send_reply(send, reply, version_served)
        finally:
            if request.admitted:
                self.admission.release()
            self.budget.release(request.body_bytes)

    async def _answer(self, endpoint: str, name: str, version: str | None, scope: Scope,
                      receive: Receive, request: _Request) -> tuple[Reply | None, bytes | None]:
        """The reply, and the version that ran for a 200; no reply when the body arrived
        to find no admission slot free (the caller refuses it)."""
        state = self.state
        headers: Headers = dict(scope["headers"])
        settings = state.settings
        error = error_for(endpoint)
        if not token_accepted(settings.auth_token, headers.get(b"authorization", b"")):
            return UNAUTHORIZED, None
        if endpoint == KSERVE_INFER:
            problem = check_model(state, name, version)
            if problem is not None:
                return problem, None
        elif state.batcher is None:
            return mlflow_error(503, LOADING, retry_after(settings)), None
        runtime = state.runtime()
        try:
            timeout_s = _timeout(headers)
            priority = _header_priority(headers)
            async with asyncio.timeout(settings.request_read_timeout_s):
                body = await _read_body(receive, headers, settings.max_request_bytes,
                                        self.budget, request)
            if not self.admission.admit():
                return None, None
            request.admitted = True
            if endpoint == INVOCATIONS:
                columns, rows = scoring.decode_request(body, runtime.inputs)
                _check_rows(rows, settings.max_request_rows)
                outputs = await state.batcher.submit(runtime, columns, rows, timeout_s, priority)
                return Reply(200, scoring.encode_response(outputs)), runtime.version.encode()
            decoded = kserve.decode_request(
                body, _text(headers.get(_HEADER_LENGTH_KEY)), runtime.inputs)
            _check_rows(decoded.rows, settings.max_request_rows)
            if decoded.timeout_s is not None:
                timeout_s = decoded.timeout_s
            priority = _parameter_priority(decoded.priority) or priority
            outputs = await state.batcher.submit(runtime, decoded.columns, decoded.rows,
                                                 timeout_s, priority)
            content, extra = kserve.encode_response(decoded, outputs, state.name, runtime.version)
            binary = tuple((key.lower().encode(), value.encode()) for key, value in extra.items())
            return (Reply(200, content, _OCTET_STREAM if binary else b"application/json",
                          binary), runtime.version.encode())
        except InvalidInput as invalid:
            return error(400, str(invalid)), None
        except PayloadTooLarge:
            return error(413, f"body: larger than the limit of {settings.max_request_bytes} "
                              "bytes"), None
        except TimeoutError:
            return error(408, f"body: not received within {settings.request_read_timeout_s} s "
                              "(serving.request_read_timeout_s)"), None
        except OverBudget:
            return error(503, "the server holds as many request bodies as its memory budget "
                              "allows (serving.max_body_bytes_in_flight); retry later",
                         retry_after(settings)), None
        except TooManyRows as many:
            return error(413, f"rows: {many.rows} rows, over the limit of "
                              f"{settings.max_request_rows} (serving.max_request_rows)"), None
        except QueueFull:
            return error(503, "the server is at capacity; retry later",
                         retry_after(settings)), None
        except DeadlineExceeded:
            return error(504, "the request's deadline passed before the model ran it"), None
        except Exception:  # a model failure: the caller learns it failed, the log says why
            log.exception("inference failed")
            return error(500, "the model failed on this batch; see the server log"), None


def _check_rows(rows: int, limit: int) -> None:
    if rows > limit:
        raise TooManyRows(rows)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _timeout(headers: Headers) -> float | None:
    value = headers.get(_TIMEOUT_KEY)
    if value is None:
        return None
    try:
        timeout_ms = float(value)
    except ValueError:
        timeout_ms = -1.0
    if not np.isfinite(timeout_ms) or timeout_ms <= 0:
        raise InvalidInput(f"{TIMEOUT_HEADER}: expected a positive number of milliseconds")
    return timeout_ms / 1000


def _header_priority(headers: Headers) -> Priority:
    """`x-request-priority: high|low`; a request that says nothing is high (interactive)."""
    value = headers.get(_PRIORITY_KEY)
    if value is None:
        return Priority.HIGH
    try:
        return Priority(value.decode("latin-1").strip().lower())
    except ValueError:
        raise InvalidInput(f"{PRIORITY_HEADER}: expected 'high' or 'low', got "
                           f"{value.decode('latin-1')!r}") from None


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


class _Request:
    """What one request holds while it is served: a slot, and body bytes of the budget."""

    __slots__ = ("admitted", "body_bytes")

    def __init__(self) -> None:
        self.admitted = False
        self.body_bytes = 0

    def reserve(self, budget: BodyBudget, size: int) -> None:
        if not budget.reserve(size):
            raise OverBudget
        self.body_bytes += size


async def _read_body(receive: Receive, headers: Headers, limit: int, budget: BodyBudget,
                     request: _Request) -> bytes:
    """The body, refused as soon as it is known to be over the limit, its bytes held in
    the budget as they are known (the declared length at once)."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise PayloadTooLarge
        request.reserve(budget, int(declared))
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):  # the whole body in one message: the usual case
        if len(body) > limit:
            raise PayloadTooLarge
        request.reserve(budget, max(0, len(body) - request.body_bytes))
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge
        request.reserve(budget, max(0, size - request.body_bytes))
        chunks.append(chunk)
    return b"".join(chunks)
