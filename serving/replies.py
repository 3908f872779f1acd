"""What the routes answer, built once for both kinds of route.

The inference routes are plain ASGI (serving/inference.py) and the others Starlette's
(serving/app.py); both answer errors with the same bodies, so the bodies and the checks
that lead to them live here, as `Reply` values, and Starlette's routes convert them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.responses import Response

from serving.state import ServingState

JSON = b"application/json"
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


def retry_after(state: ServingState) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"retry-after", str(state.settings.retry_after_s).encode()),)


def check_model(state: ServingState, name: str, version: str | None) -> Reply | None:
    """404 for a name or version we do not serve, 503 while the model loads."""
    if name != state.name:
        return kserve_error(404, f"model_name: unknown model {name!r}; serving {state.name!r}")
    if state.batcher is None:
        return kserve_error(503, LOADING, retry_after(state))
    if version is not None and version != state.runtime().version:
        return kserve_error(404, f"model_version: version {version!r} is not served; "
                                 f"serving {state.runtime().version!r}")
    return None
