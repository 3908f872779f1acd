"""What the routes answer, built once for both kinds of route.

The inference routes are plain ASGI (serving/inference.py, with admission's refusals,
serving/admission.py) and the others Starlette's (serving/app.py); both answer errors
with the same bodies, so the bodies and the checks that lead to them live here, as
`Reply` values, which the ASGI routes send with `send_reply` and Starlette's convert.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Send

from serving.settings import ServingSettings
from serving.state import ServingState

JSON = b"application/json"
# The two inference endpoints, by the name metrics label them with.
INVOCATIONS = "invocations"
KSERVE_INFER = "kserve_infer"
VERSION_HEADER = "x-model-version"
_VERSION_KEY = VERSION_HEADER.encode()
# With several workers each loads its own copy, so one may still load while others serve.
LOADING = "the model is still loading in this worker; retry"


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole HTTP answer: status, body, media type and any extra headers."""

    status: int
    body: bytes
    media_type: bytes = JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def as_response(self) -> Response:
        """The same answer as a Starlette response, for Starlette's routes."""
        return Response(self.body, status_code=self.status, media_type=self.media_type.decode(),
                        headers={name.decode(): value.decode() for name, value in self.headers})


async def send_reply(send: Send, reply: Reply, version: bytes | None = None) -> None:
    """Send `reply` as plain ASGI; `version` is the model version that computed a 200."""
    headers = [(b"content-type", reply.media_type),
               (b"content-length", str(len(reply.body)).encode()), *reply.headers]
    if version is not None:
        headers.append((_VERSION_KEY, version))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body, "more_body": False})


def error_for(endpoint: str) -> Callable[..., Reply]:
    """The error builder of an inference endpoint's protocol."""
    return mlflow_error if endpoint == INVOCATIONS else kserve_error


def kserve_error(status: int, message: str,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> Reply:
    """Errors as KServe and tritonclient expect them: `{"error": message}`."""
    return Reply(status, json.dumps({"error": message}).encode(), JSON, headers)


def mlflow_error(status: int, message: str,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> Reply:
    """Errors as the MLflow scoring server writes them."""
    code = {400: "BAD_REQUEST", 413: "BAD_REQUEST", 503: "TEMPORARILY_UNAVAILABLE",
            504: "TEMPORARILY_UNAVAILABLE"}.get(status, "INTERNAL_ERROR")
    return Reply(status, json.dumps({"error_code": code, "message": message}).encode(), JSON,
                 headers)


def retry_after(settings: ServingSettings) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"retry-after", str(settings.retry_after_s).encode()),)


def check_model(state: ServingState, name: str, version: str | None) -> Reply | None:
    """404 for a name or version we do not serve, 503 while the model loads."""
    if name != state.name:
        return kserve_error(404, f"model_name: unknown model {name!r}; serving {state.name!r}")
    if state.batcher is None:
        return kserve_error(503, LOADING, retry_after(state.settings))
    if version is not None and version != state.runtime().version:
        return kserve_error(404, f"model_version: version {version!r} is not served; "
                                 f"serving {state.runtime().version!r}")
    return None
