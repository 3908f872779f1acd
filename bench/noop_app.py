"""The no-op limit: the same HTTP stack (uvicorn + Starlette) parsing the request and
answering at once, with no model, no batching and no validation.

It bounds what any server built on this stack can do on the machine; run with
`python -m uvicorn bench.noop_app:app`.
"""

from __future__ import annotations

import json

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
