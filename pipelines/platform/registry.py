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

from models.model_uri import version_uri

log = logging.getLogger(__name__)

CANDIDATE, CHAMPION = "candidate", "champion"

# The tags on a model version, each named once: the run that trained it, the scores
# ``evaluate`` wrote for ``promote``'s gate to read back, and what the gate decided.
SOURCE_RUN_TAG = "mlpipe.source_run"
EVAL_METRIC_TAG = "mlpipe.eval.metric"
EVAL_CANDIDATE_TAG = "mlpipe.eval.candidate"
EVAL_CHAMPION_TAG = "mlpipe.eval.champion"
EVAL_CHAMPION_VERSION_TAG = "mlpipe.eval.champion_version"
EVAL_TABLE_TAG = "mlpipe.eval.table"
DECISION_TAG = "mlpipe.decision"
DECISION_REASON_TAG = "mlpipe.decision_reason"
# The champion tags' value when the candidate had no champion to be judged against.
NO_CHAMPION = "none"


def register_candidate(name: str, model_uri: str, run_id: str | None) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``name`` and mark it ``@candidate``."""
    version = mlflow.register_model(model_uri, name,
                                    tags={SOURCE_RUN_TAG: run_id or ""})
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
    """The URI of exactly this version, which a later move of an alias cannot change."""
    return version_uri(version.name, version.version)


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
