"""Bearer-token auth for the endpoints that need it; health checks stay open."""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from models.private_files import PrivateFileError, read_private
from serving.replies import kserve_error
from serving.settings import ServingSettings

Endpoint = Callable[[Request], Awaitable[Response]]

# The token's place outside the config, which is logged and shown (redacted) and whose
# overrides (`--set`) show in the process table.
TOKEN_ENV = "MLPIPE_SERVING_TOKEN"
LOOPBACK_NAMES = ("localhost",)

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


class InsecureServingError(ValueError):
    """The server would be reachable beyond this host without a token, or the token's
    file is not private; the message names the setting to change."""


def with_token(settings: ServingSettings) -> ServingSettings:
    """The settings with the token resolved: ``MLPIPE_SERVING_TOKEN``, else the contents
    of ``auth_token_file``, else ``auth_token``; refused on a non-loopback ``host`` without
    one unless ``insecure`` says that is meant."""
    token = os.environ.get(TOKEN_ENV) or _token_file(settings.auth_token_file) \
        or settings.auth_token
    if not token and not settings.insecure and not is_loopback(settings.host):
        raise InsecureServingError(
            f"serving.host {settings.host!r} is reachable from other hosts and no token is "
            f"set: set {TOKEN_ENV} or serving.auth_token_file (a file only you can read), "
            "or pass --insecure to serve without authentication")
    return settings.model_copy(update={"auth_token": token, "auth_token_file": ""})


def is_loopback(host: str) -> bool:
    """True for an address (or the name) that only this host can reach."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token_file(path: str) -> str:
    if not path:
        return ""
    try:
        return read_private(path, "serving.auth_token_file")
    except PrivateFileError as error:
        raise InsecureServingError(str(error)) from None
