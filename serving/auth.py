"""Bearer-token auth for the endpoints that need it; health checks stay open."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Endpoint = Callable[[Request], Awaitable[Response]]


def requires_token(endpoint: Endpoint) -> Endpoint:
    """Answer 401 unless `Authorization: Bearer <token>` matches the configured token.

    A decorator rather than a middleware: it runs after routing, so 401s are counted
    under the right endpoint, and it adds no ASGI layer to the hot path.
    """

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        token = request.app.state.serving.settings.auth_token
        if token:
            given = request.headers.get("authorization", "").encode()
            # Constant-time comparison: response timing must not reveal the token.
            if not hmac.compare_digest(given, f"Bearer {token}".encode()):
                return JSONResponse(
                    {"error": "missing or wrong bearer token in the Authorization header"},
                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await endpoint(request)

    return guarded
