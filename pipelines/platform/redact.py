"""Secrets out of everything the project shows or logs: config, commands, error messages.

A value is secret when its key says so (a token, a password, a secret or access key,
a credential; but not a key ending in ``_file`` or ``_path``, which says where a secret
is kept, not what it is) or when it is the password of a URI's userinfo
(``postgresql://user:password@host/db``). What is shown keeps its shape, so a reader
still sees that a value is set and where; only the secret itself becomes ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"
SECRET_KEY = re.compile(
    r"token|password|passwd|secret|credential|api[._-]?key|access[._-]?key|private[._-]?key",
    re.IGNORECASE)
# Where a secret is kept: shown, so a reader can tell which file the server reads.
LOCATION_KEY = re.compile(r"[._-](file|path)$", re.IGNORECASE)
# scheme://user:password@  ->  the password is group 2
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^/\s@]+)@", re.IGNORECASE)


def redact_uri(text: str) -> str:
    """``text`` with the password of every URI in it replaced."""
    return _USERINFO.sub(rf"\g<1>{REDACTED}@", text)


def redact(value: Any, key: str = "") -> Any:
    """A copy of a JSON-like document with every secret replaced (empty values stay empty,
    so an unset secret still reads as unset)."""
    if isinstance(value, Mapping):
        return {name: redact(item, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, key) for item in value]
    if isinstance(value, str):
        secret = SECRET_KEY.search(key) and not LOCATION_KEY.search(key)
        return REDACTED if value and secret else redact_uri(value)
    return value
