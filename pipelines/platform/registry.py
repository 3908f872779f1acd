"""The MLflow model registry: candidates, champions, and the judgement between them.

A training step's model becomes a new version of its registered model with the
alias ``@candidate``; ``evaluate`` scores it beside ``@champion`` and writes the
scores on the version as tags; ``promote`` moves ``@champion`` (or not) and removes
``@candidate``, so an alias always says where a version stands.
"""

from __future__ import annotations

import logging

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

CANDIDATE, CHAMPION = "candidate", "champion"


def register_candidate(name: str, model_uri: str, run_id: str | None) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``name`` and mark it ``@candidate``."""
    version = mlflow.register_model(model_uri, name,
                                    tags={"mlpipe.source_run": run_id or ""})
    MlflowClient().set_registered_model_alias(name, CANDIDATE, version.version)
    log.info("registered %s version %s as @%s", name, version.version, CANDIDATE)
    return version


def version_by_alias(name: str, alias: str) -> ModelVersion | None:
    """The version of ``name`` behind ``alias``, or None when there is none."""
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def model_uri(version: ModelVersion) -> str:
    return f"models:/{version.name}/{version.version}"


def tag_version(version: ModelVersion, tags: dict[str, str]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(version.name, version.version, key, value)


def crown(version: ModelVersion) -> None:
    """Make ``version`` the champion; it is no longer a candidate."""
    client = MlflowClient()
    client.set_registered_model_alias(version.name, CHAMPION, version.version)
    client.delete_registered_model_alias(version.name, CANDIDATE)


def dismiss(version: ModelVersion) -> None:
    """The candidate was judged and lost: it keeps its version, not the alias."""
    MlflowClient().delete_registered_model_alias(version.name, CANDIDATE)
