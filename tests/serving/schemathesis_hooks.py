"""Schemathesis hooks for the fuzz test (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import json

import schemathesis


@schemathesis.check
def no_server_error_except_load_shedding(ctx, response, case) -> bool | None:
    """Any 5xx fails, except the two that answer the client's own terms, not faults:
    503 with Retry-After (queue full) and 504 for a request that set a deadline."""
    status = response.status_code
    if status < 500:
        return None
    if status == 503 and "retry-after" in {name.lower() for name in response.headers}:
        return None
    if status == 504 and _has_deadline(case):
        return None
    raise AssertionError(f"server error {status}: {response.text[:500]}")


def _has_deadline(case) -> bool:
    headers = {name.lower() for name in (case.headers or {})}
    if "x-request-timeout-ms" in headers:
        return True
    body = case.body
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            return False
    parameters = body.get("parameters") if isinstance(body, dict) else None
    return isinstance(parameters, dict) and "timeout" in parameters
