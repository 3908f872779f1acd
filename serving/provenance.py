"""Which registry versions may run: provenance recorded at registration, checked at load.

Moving an alias is code execution: every loader unpickles the version it names and
imports the code logged with it. So a version carries, from its registration, the
digest of its artifacts and the deployment it belongs to, and from the gate its
decision. A loader checks the tags, checks that the files come from the artifact root
of the experiment its run was logged to (not from a folder someone registered as a
"source"), downloads them once into a folder of its own, digests that copy and loads
that same copy, so a file swapped between the check and the load is never read.

The pipeline writes these tags (pipelines/platform/registry.py); serving and the
pipeline's own loaders read them through here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
from urllib.parse import unquote, urlsplit

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from models.model_uri import version_uri

# The tags, each named once. The deployment tag names the deployment on a version, and
# on a registered model the deployment that owns its aliases.
DECISION_TAG = "mlpipe.decision"
DIGEST_TAG = "mlpipe.artifact_digest"
DEPLOYMENT_TAG = "mlpipe.deployment"
# The decision that lets a version run where a champion runs.
PROMOTED = "promoted"

# Why a version was refused: the `reason` label of the serving refusal counter.
NOT_PROMOTED = "not_promoted"
OTHER_DEPLOYMENT = "other_deployment"
OUTSIDE_ARTIFACT_ROOT = "outside_artifact_root"
DIGEST_MISMATCH = "digest_mismatch"
REASONS = (NOT_PROMOTED, OTHER_DEPLOYMENT, OUTSIDE_ARTIFACT_ROOT, DIGEST_MISMATCH)
_UNSET = "<unset>"
# The file MLflow writes into a registered model's folder whenever someone downloads it
# through its `models:/` URI (into the store itself, on a local one) and never reads: left
# out of the digest, so a download elsewhere does not make a version look tampered with,
# and removed from a loader's copy, so what loads is exactly what was digested.
MLFLOW_META_FILE = "registered_model_meta"


class ModelRefused(Exception):
    """A registry version that may not be loaded; the message names it and says why."""

    def __init__(self, version: ModelVersion, reason: str, detail: str) -> None:
        self.uri = version_uri(version.name, version.version)
        self.version = str(version.version)
        self.reason = reason
        super().__init__(f"{self.uri} refused: {detail}")


def artifact_digest(folder: str) -> str:
    """``sha256:<hex>`` over every file under ``folder``: its relative path and content.

    Files are taken in sorted order of their relative paths (``/``-separated), and each
    contributes its path, a NUL and the sha256 of its bytes, so a renamed, added or
    removed file changes the digest as an edited one does. MLflow's
    :data:`MLFLOW_META_FILE` at the top is not part of a model.
    """
    digest = hashlib.sha256()
    for relative in sorted(_files(folder)):
        with open(os.path.join(folder, relative), "rb") as handle:
            content = hashlib.file_digest(handle, "sha256").digest()
        digest.update(relative.encode() + b"\0" + content)
    return f"sha256:{digest.hexdigest()}"


def _files(folder: str) -> list[str]:
    paths = (posixpath.join(*os.path.relpath(os.path.join(parent, name), folder).split(os.sep))
             for parent, _dirs, names in os.walk(folder) for name in names)
    return [path for path in paths if path != MLFLOW_META_FILE]


def check_tags(version: ModelVersion, *, deployment: str, promoted: bool) -> None:
    """Refuse on the tags alone, before anything is downloaded.

    ``promoted``: the gate must have promoted the version (a candidate being judged is
    not). ``deployment``: the version must be that deployment's; empty accepts any.
    """
    tags = version.tags
    decision = tags.get(DECISION_TAG, _UNSET)
    if promoted and decision != PROMOTED:
        raise ModelRefused(version, NOT_PROMOTED, f"not promoted ({DECISION_TAG}={decision})")
    owner = tags.get(DEPLOYMENT_TAG, _UNSET)
    if deployment and owner != deployment:
        raise ModelRefused(version, OTHER_DEPLOYMENT,
                           f"it belongs to deployment {owner}, not {deployment} "
                           f"({DEPLOYMENT_TAG})")


def download_version(version: ModelVersion, folder: str) -> str:
    """Download the version's artifacts into ``folder`` (it must exist); the local copy.

    Downloaded from the location the registry gives for the version, once that location
    is found under the artifact root of the experiment the version's run was logged to;
    not through its ``models:/`` URI, which would resolve it again and add a file of
    MLflow's own to the copy.
    """
    client = MlflowClient()
    location = client.get_model_version_download_uri(version.name, version.version)
    root = _artifact_root(client, version)
    if root is None or not is_under(location, root):
        where = f"its run's experiment keeps artifacts under {root}" if root else \
            "it names no run whose experiment would say where its artifacts belong"
        raise ModelRefused(version, OUTSIDE_ARTIFACT_ROOT,
                           f"its artifacts at {location} are outside the artifact root ({where})")
    local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=folder)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(local, MLFLOW_META_FILE))
    return local


def fetch_verified(version: ModelVersion, folder: str, *, deployment: str,
                   promoted: bool = True) -> str:
    """The version's artifacts in ``folder``, checked; load from the path returned, only.

    Raises :class:`ModelRefused` when a tag, the location or the digest of the copy says
    the version may not run (see :func:`check_tags` for ``deployment`` and ``promoted``).
    """
    check_tags(version, deployment=deployment, promoted=promoted)
    local = download_version(version, folder)
    recorded = version.tags.get(DIGEST_TAG)
    actual = artifact_digest(local)
    if recorded is None:
        raise ModelRefused(version, DIGEST_MISMATCH,
                           f"no digest was recorded at its registration ({DIGEST_TAG})")
    if recorded != actual:
        raise ModelRefused(version, DIGEST_MISMATCH,
                           f"its artifacts changed since registration ({DIGEST_TAG} is "
                           f"{recorded}, the files downloaded give {actual})")
    return local


def _artifact_root(client: MlflowClient, version: ModelVersion) -> str | None:
    """The artifact location of the experiment of the version's run; None without a run."""
    if not version.run_id:
        return None
    experiment_id = client.get_run(version.run_id).info.experiment_id
    return client.get_experiment(experiment_id).artifact_location


def is_under(location: str, root: str) -> bool:
    """True when ``location`` lies strictly inside ``root`` (same scheme and host).

    Plain paths and ``file:`` URIs compare alike, and both paths are decoded and
    normalised first, so ``root/../elsewhere`` (or its percent-encoded spelling) is not
    inside ``root``.
    """
    here, base = _parts(location), _parts(root)
    return here[:2] == base[:2] and here[2].startswith(base[2].rstrip("/") + "/")


def _parts(uri: str) -> tuple[str, str, str]:
    parts = urlsplit(uri)
    return parts.scheme or "file", parts.netloc, posixpath.normpath(unquote(parts.path) or "/")
