"""What a model URI names in the MLflow registry: the served name and version."""

from __future__ import annotations

import re

from mlflow import MlflowClient

_REGISTERED = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<ref>[^/]+))/?$")


def model_name_from_uri(model_uri: str) -> str:
    """The name clients address under /v2/models/{name}.

    A registered model keeps its registry name, so `models:/flight-delay-mlp@champion`
    answers as `flight-delay-mlp` whichever version the alias points to; any other URI
    is named by its last path part (`runs:/<id>/model` -> `model`).
    """
    match = _REGISTERED.match(model_uri)
    if match:
        return match["name"]
    return model_uri.rstrip("/").rsplit("/", 1)[-1] or "model"


def alias_of(model_uri: str) -> tuple[str, str] | None:
    """(name, alias) for a `models:/name@alias` URI, else None: only an alias can move."""
    match = _REGISTERED.match(model_uri)
    if match and match["alias"]:
        return match["name"], match["alias"]
    return None


def resolve_version(model_uri: str) -> tuple[str, str]:
    """Pin a URI to what it points at now: (URI to load, version label).

    Loading the pinned `models:/name/<version>` rather than the alias means a swap
    that happens while we download cannot hand us a different version than we report.
    """
    aliased = alias_of(model_uri)
    if aliased:
        name, alias = aliased
        version = MlflowClient().get_model_version_by_alias(name, alias).version
        return f"models:/{name}/{version}", str(version)
    match = _REGISTERED.match(model_uri)
    if match and match["ref"] and match["ref"].isdigit():
        return model_uri, match["ref"]
    return model_uri, "1"
