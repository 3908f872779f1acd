"""The model URIs MLflow loads from, parsed and written here only.

``models:/<name>/<version>`` is a registered version, pinned (``<version>`` is a number,
or a stage MLflow resolves, such as ``latest``); ``models:/<name>@<alias>`` is whichever
version the alias points to now, so it can move; ``runs:/<run id>/<path>`` is a model a
run logged, not registered. The pipeline writes them, serving and the pipeline's skip
fingerprints read them, and a registry URI that fits neither registered form is refused
by name rather than handed on to MLflow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REGISTERED_SCHEME = "models:/"
_REGISTERED = re.compile(
    r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))/?$")


@dataclass(frozen=True)
class RegisteredUri:
    """A parsed ``models:/`` URI: a name and either a version or an alias."""

    name: str
    version: str | None = None
    alias: str | None = None


def version_uri(name: str, version: str | int) -> str:
    """``models:/<name>/<version>``: one registered version, which never moves."""
    return f"{REGISTERED_SCHEME}{name}/{version}"


def alias_uri(name: str, alias: str) -> str:
    """``models:/<name>@<alias>``: the version an alias points to when it is loaded."""
    return f"{REGISTERED_SCHEME}{name}@{alias}"


def run_uri(run_id: str, path: str) -> str:
    """``runs:/<run id>/<path>``: a model logged by a run."""
    return f"runs:/{run_id}/{path}"


def is_registered(uri: str) -> bool:
    """True for a ``models:/`` URI (well formed or not: :func:`parse_registered` judges)."""
    return uri.startswith(REGISTERED_SCHEME)


def parse_registered(uri: str) -> RegisteredUri | None:
    """The name and version or alias of a ``models:/`` URI; None for any other URI.

    A ``models:/`` URI of neither form (no version, an empty name, a path below the
    version) is a ValueError naming the URI and the forms it may take.
    """
    if not is_registered(uri):
        return None
    match = _REGISTERED.match(uri)
    if match is None:
        raise ValueError(f"{uri!r} is not a registered model URI; expected "
                         f"{version_uri('<name>', '<version>')} or "
                         f"{alias_uri('<name>', '<alias>')}")
    return RegisteredUri(match["name"], match["version"], match["alias"])


def parse_alias(uri: str) -> RegisteredUri:
    """A ``models:/<name>@<alias>`` URI parsed; any other URI is a ValueError naming it."""
    registered = parse_registered(uri)
    if registered is None or registered.alias is None:
        raise ValueError(f"{uri!r} names no alias; expected {alias_uri('<name>', '<alias>')}")
    return registered
