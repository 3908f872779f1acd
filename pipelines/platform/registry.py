"""The MLflow model registry: candidates, champions, and the judgement between them.

A training step's model becomes a new version of its registered model with the
alias ``@candidate``; ``evaluate`` scores it beside ``@champion`` and writes the
scores on the version as tags; ``promote`` moves ``@champion`` (or not) and removes
``@candidate``, so an alias always says where a version stands.

Registered names are shared by every data root that points at one registry, so each
belongs to one deployment (``mlflow.deployment``, by default the data root): the first
to register a name owns it, and another deployment's run is refused before it writes a
version there, so it cannot move the owner's aliases. Each version records its
deployment and the digest of its artifacts, which every loader checks
(:mod:`serving.provenance`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from models.model_uri import version_uri
from pipelines.platform.config import Config
from pipelines.platform.errors import RegistryConflictError
from pipelines.platform.layout import Layout
from serving.provenance import (
    DECISION_TAG,
    DEPLOYMENT_TAG,
    DIGEST_TAG,
    artifact_digest,
    download_version,
    fetch_verified,
)

log = logging.getLogger(__name__)

CANDIDATE, CHAMPION = "candidate", "champion"

# The tags on a model version, each named once: the run that trained it, the scores
# ``evaluate`` wrote for ``promote``'s gate to read back, and why the gate decided
# (what it decided, the digest and the deployment are serving.provenance's tags).
SOURCE_RUN_TAG = "mlpipe.source_run"
EVAL_METRIC_TAG = "mlpipe.eval.metric"
EVAL_CANDIDATE_TAG = "mlpipe.eval.candidate"
EVAL_CHAMPION_TAG = "mlpipe.eval.champion"
EVAL_CHAMPION_VERSION_TAG = "mlpipe.eval.champion_version"
EVAL_TABLE_TAG = "mlpipe.eval.table"
DECISION_REASON_TAG = "mlpipe.decision_reason"
# The champion tags' value when the candidate had no champion to be judged against.
NO_CHAMPION = "none"


def deployment_of(config: Config) -> str:
    """The deployment a config's runs register as: ``mlflow.deployment``, or the data root."""
    return config.mlflow.deployment or Layout.of(config).root


def register_candidate(name: str, model_uri: str, run_id: str | None,
                       deployment: str) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``name`` and mark it ``@candidate``.

    The version records its deployment and the digest of its artifacts as a loader will
    download them; the alias moves last, so no loader finds a candidate without them.
    """
    claim(name, deployment)
    version = mlflow.register_model(model_uri, name, tags={SOURCE_RUN_TAG: run_id or "",
                                                           DEPLOYMENT_TAG: deployment})
    with tempfile.TemporaryDirectory() as folder:
        tag_version(version, {DIGEST_TAG: artifact_digest(download_version(version, folder))})
    MlflowClient().set_registered_model_alias(name, CANDIDATE, version.version)
    log.info("registered %s version %s as @%s", name, version.version, CANDIDATE)
    return version


def claim(name: str, deployment: str) -> None:
    """Make sure the registered model ``name`` is ``deployment``'s, before writing to it.

    A name nobody owns yet (new, or registered before deployments were recorded) becomes
    ``deployment``'s; one another deployment owns is a :class:`RegistryConflictError`.
    """
    client = MlflowClient()
    found, owner = _owner(name)
    if not found:
        client.create_registered_model(name, tags={DEPLOYMENT_TAG: deployment})
        return
    _refuse_foreign(name, owner, deployment)
    if owner is None:
        client.set_registered_model_tag(name, DEPLOYMENT_TAG, deployment)


def check_registrable(names: Iterable[str], deployment: str) -> None:
    """Raise :class:`RegistryConflictError` before any work if another deployment owns
    one of ``names``: otherwise the clash would surface only when the trained model is
    registered, after the training it wasted. Writes nothing."""
    for name in names:
        _refuse_foreign(name, _owner(name)[1], deployment)


def _owner(name: str) -> tuple[bool, str | None]:
    """(whether ``name`` is registered, the deployment that owns it if one does)."""
    try:
        return True, MlflowClient().get_registered_model(name).tags.get(DEPLOYMENT_TAG)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        return False, None


def _refuse_foreign(name: str, owner: str | None, deployment: str) -> None:
    if owner is not None and owner != deployment:
        raise RegistryConflictError(
            f"registered model {name} belongs to deployment {owner}, and this run is "
            f"deployment {deployment} ({DEPLOYMENT_TAG}): registering here would move "
            "that deployment's aliases. Give this deployment its own registry "
            "(mlflow.registry_uri) or its own model names, or set mlflow.deployment if "
            "it is the same deployment")


@contextmanager
def verified_copies(versions: dict[str, ModelVersion], deployment: str,
                    judged: str | None = None) -> Iterator[dict[str, str]]:
    """Each version downloaded and verified, by key: local folders for the block to load.

    Every version must be ``deployment``'s, from the artifact root and as registered;
    every one but the ``judged`` key (the candidate being evaluated) must be promoted.
    """
    with tempfile.TemporaryDirectory() as folder:
        yield {key: fetch_verified(version, tempfile.mkdtemp(dir=folder),
                                   deployment=deployment, promoted=key != judged)
               for key, version in versions.items()}


def version_by_alias(name: str, alias: str) -> ModelVersion | None:
    """The version of ``name`` behind ``alias``, or None when there is none."""
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def model_uri(version: ModelVersion) -> str:
    """The URI of exactly this version, which a later move of an alias cannot change."""
    return version_uri(version.name, version.version)


def record_decision(version: ModelVersion, decision: str, reason: str) -> None:
    """Write the gate's decision on the version: ``promoted`` is what lets it run as a
    champion (:data:`serving.provenance.PROMOTED`)."""
    tag_version(version, {DECISION_TAG: decision, DECISION_REASON_TAG: reason})


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
