"""Functions a dataset names in its declarations (``package.module:function``), loaded once.

A feature view, a seeding loader: code the user ships, named in ``conf/``. The name's shape
is checked when the config loads (``section.check_import_path``); whether it imports is
known only here, when a step first needs it, and the error names the key that named it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pipelines.platform.errors import ConfigError


def resolve_function(reference: str, key: str) -> Callable[..., Any]:
    """The function ``package.module:function`` names; a ConfigError at ``key`` if none."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{key}: cannot import {module_name!r} for {reference!r}: {exc}"
                          ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(f"{key}: module {module_name!r} has no function {attribute!r}")
    return function
