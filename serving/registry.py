"""What a model URI names in the MLflow registry: the served name and version, and the
files to load for it."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.store.artifact.utils.models import get_model_name_and_version

from models.model_uri import parse_registered, version_uri
from serving.provenance import fetch_verified


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


def registered_version(model_uri: str) -> ModelVersion | None:
    """The registry version a `models:/` URI names now (an alias or stage resolved); None
    for any other URI."""
    if parse_registered(model_uri) is None:
        return None
    client = MlflowClient()
    name, version = get_model_name_and_version(client, model_uri)
    return client.get_model_version(name, version)


def resolve_version(model_uri: str) -> tuple[str, str]:
    """Pin a URI to what it points at now: (URI to load, version label).

    Loading the pinned `models:/name/<version>` rather than the alias means a swap
    that happens while we download cannot hand us a different version than we report.
    """
    version = registered_version(model_uri)
    if version is None:
        return model_uri, "1"
    return version_uri(version.name, version.version), str(version.version)


def fetch_model(model_uri: str, folder: str, deployment: str) -> tuple[str, str]:
    """Download what `model_uri` names into `folder`: (local copy to load, version label).

    A registry version is fetched only as the gate released it (promoted, of
    `deployment` unless that is empty, from the artifact root, its digest intact:
    serving/provenance.py), else `ModelRefused`. A `runs:/` URI or a path is not a
    registry version: the operator named those files at startup, and they load as given.
    """
    version = registered_version(model_uri)
    if version is None:
        return mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=folder), "1"
    return fetch_verified(version, folder, deployment=deployment), str(version.version)
