"""The no-op limit: the same HTTP stack (uvicorn + Starlette) parsing the request and
answering at once, with no model, no batching and no validation.

It bounds what any server built on this stack can do on the machine; run with
`python -m uvicorn bench.noop_app:app`. `bench.noop_app:bare` is the same answer as a
plain ASGI app on uvicorn alone, as our server's inference routes are
(serving/inference.py): the limit of the stack they actually run on.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HEADER_LENGTH = "inference-header-content-length"


async def parse_and_answer(request: Request) -> Response:
    """Decode the JSON (only the JSON header when binary tensors follow), answer a constant."""
    body = await request.body()
    split = request.headers.get(HEADER_LENGTH)
    json.loads(body[: int(split)] if split else body)
    return JSONResponse({"predictions": [0.0]})


async def ping(request: Request) -> Response:
    return JSONResponse({"ready": True})


app = Starlette(routes=[
    Route("/invocations", parse_and_answer, methods=["POST"]),
    Route("/v2/models/{model_name}/infer", parse_and_answer, methods=["POST"]),
    Route("/ping", ping),
])


async def bare(scope: dict, receive: Callable, send: Callable) -> None:
    """`parse_and_answer` without Starlette: read the body, decode it, answer a constant."""
    if scope["type"] != "http":  # lifespan: nothing to start
        message = await receive()
        await send({"type": f"{message['type']}.complete"})
        return
    if scope["method"] == "GET":  # /ping: the readiness probe
        await _answer(send, _READY)
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    split = dict(scope["headers"]).get(HEADER_LENGTH.encode())
    json.loads(body[: int(split)] if split else body)
    await _answer(send, _PREDICTIONS)


async def _answer(send: Callable, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


_PREDICTIONS = json.dumps({"predictions": [0.0]}).encode()
_READY = json.dumps({"ready": True}).encode()
