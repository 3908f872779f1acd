"""What a model URI names in the MLflow registry: the served name and version."""

from __future__ import annotations

from mlflow import MlflowClient

from models.model_uri import parse_registered, version_uri


def model_name_from_uri(model_uri: str) -> str:
    """The name clients address under /v2/models/{name}.

    A registered model keeps its registry name, so `models:/flight-delay-mlp@champion`
    answers as `flight-delay-mlp` whichever version the alias points to; any other URI
    is named by its last path part (`runs:/<id>/model` -> `model`).
    """
    registered = parse_registered(model_uri)
    if registered is not None:
        return registered.name
    return model_uri.rstrip("/").rsplit("/", 1)[-1] or "model"


def alias_of(model_uri: str) -> tuple[str, str] | None:
    """(name, alias) for a `models:/name@alias` URI, else None: only an alias can move."""
    registered = parse_registered(model_uri)
    if registered is not None and registered.alias is not None:
        return registered.name, registered.alias
    return None


def resolve_version(model_uri: str) -> tuple[str, str]:
    """Pin a URI to what it points at now: (URI to load, version label).

    Loading the pinned `models:/name/<version>` rather than the alias means a swap
    that happens while we download cannot hand us a different version than we report.
    """
    registered = parse_registered(model_uri)
    if registered is not None and registered.alias is not None:
        version = MlflowClient().get_model_version_by_alias(registered.name,
                                                            registered.alias).version
        return version_uri(registered.name, version), str(version)
    if registered is not None and registered.version.isdigit():
        return model_uri, registered.version
    return model_uri, "1"
