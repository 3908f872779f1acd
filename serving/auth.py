"""Bearer-token auth for the endpoints that need it; health checks stay open."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from serving.replies import kserve_error

Endpoint = Callable[[Request], Awaitable[Response]]

UNAUTHORIZED = kserve_error(401, "missing or wrong bearer token in the Authorization header",
                            ((b"www-authenticate", b"Bearer"),))


def token_accepted(token: str, authorization: bytes) -> bool:
    """True when no token is configured or `Authorization: Bearer <token>` matches it.

    Constant-time comparison: response timing must not reveal the token.
    """
    return not token or hmac.compare_digest(authorization, f"Bearer {token}".encode())


def requires_token(endpoint: Endpoint) -> Endpoint:
    """Answer 401 unless the bearer token matches (a Starlette route's decorator).

    A decorator rather than a middleware: it runs after routing, so 401s are counted
    under the right endpoint, and it adds no ASGI layer.
    """

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        token = request.app.state.serving.settings.auth_token
        if not token_accepted(token, request.headers.get("authorization", "").encode()):
            return UNAUTHORIZED.as_response()
        return await endpoint(request)

    return guarded
