"""MLflow tracking: where runs go, how they are tagged, and what lineage they record.

The embedded default is a SQLite backend with artifacts under ``<data_root>/mlflow``,
so a laptop needs no server. A remote tracking server is checked before any work
starts: a run that cannot be recorded should not run at all.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from models.tracking_identity import (
    FILE_KEY,
    PASSWORD_VARIABLE,
    USERNAME_VARIABLE,
    present_identity,
)
from pipelines.platform.config import Config, config_as_yaml
from pipelines.platform.errors import TrackingUnavailableError
from pipelines.platform.lake import TableRef
from pipelines.platform.layout import Layout
from pipelines.platform.redact import redact_uri

log = logging.getLogger(__name__)

PARENT_RUN_VARIABLE = "MLPIPE_PARENT_RUN_ID"
# What the MLflow UI reads to tell a model-training experiment from a GenAI one.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"


@dataclass(frozen=True)
class TrackingTarget:
    """Resolved MLflow locations for a config (the embedded defaults filled in)."""

    tracking_uri: str
    registry_uri: str
    artifact_root: str | None

    @property
    def is_remote(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))


def resolve_target(config: Config) -> TrackingTarget:
    """Fill the embedded defaults: SQLite and a local artifact root under the data root."""
    settings = config.mlflow
    store = Layout.of(config).mlflow_store
    tracking = settings.tracking_uri
    if not tracking:
        if store is None:
            raise TrackingUnavailableError(
                "mlflow.tracking_uri must be set when data_root is remote "
                f"({config.data_root}); SQLite needs a local file")
        tracking = f"sqlite:///{store}/mlflow.db"
    artifact_root = settings.artifact_root or None
    if artifact_root is None and store is not None and not tracking.startswith("http"):
        artifact_root = f"file://{store}/artifacts"
    return TrackingTarget(tracking, settings.registry_uri or tracking, artifact_root)


def configure_tracking(config: Config) -> TrackingTarget:
    """Point this process's MLflow client at the configured backend, failing fast if it is
    down or refuses this process's identity: what a command does once, before any work
    (:func:`preflight.check_services`)."""
    target = resolve_target(config)
    present_identity(config.mlflow.credentials_file)
    if target.is_remote:
        check_reachable(target.tracking_uri, config.mlflow.connect_timeout_s)
        check_admitted(target.tracking_uri, config.mlflow.connect_timeout_s)
    return point_client(target)


def point_client(target: TrackingTarget) -> TrackingTarget:
    """Point this process's MLflow client at ``target``, without asking the server anything."""
    if target.tracking_uri.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(target.tracking_uri.removeprefix("sqlite:///")),
                    exist_ok=True)
    mlflow.set_tracking_uri(target.tracking_uri)
    mlflow.set_registry_uri(target.registry_uri)
    return target


def check_reachable(uri: str, timeout_s: float) -> None:
    """Raise :class:`TrackingUnavailableError` naming ``uri`` unless its health check answers."""
    status, problem = _get(uri.rstrip("/") + "/health", timeout_s, {})
    if status != 200:
        raise TrackingUnavailableError(
            f"MLflow tracking server {redact_uri(uri)} is unreachable ({problem}); "
            "start it or fix mlflow.tracking_uri before running")


def check_admitted(uri: str, timeout_s: float) -> None:
    """Raise :class:`TrackingUnavailableError` when a server with authentication refuses
    this process's identity (the health check is open to anyone, the API is not)."""
    user, password = os.environ.get(USERNAME_VARIABLE), os.environ.get(PASSWORD_VARIABLE)
    headers = ({"Authorization": "Basic " + base64.b64encode(
        f"{user}:{password}".encode()).decode()} if user and password else {})
    status, problem = _get(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1",
                           timeout_s, headers)
    if status in (401, 403):
        who = f"user {user!r}" if headers else "anonymous requests"
        raise TrackingUnavailableError(
            f"MLflow tracking server {redact_uri(uri)} refused {who} ({problem}): set "
            f"{USERNAME_VARIABLE} and {PASSWORD_VARIABLE}, or {FILE_KEY} (a file only you "
            "can read), to an identity the server knows")


def _get(url: str, timeout_s: float, headers: dict[str, str]) -> tuple[int | None, str]:
    """(HTTP status, what went wrong) of a GET; no status when nothing answered."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return response.status, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))


def ensure_experiment(config: Config, target: TrackingTarget) -> str:
    """The experiment id, creating it with the configured artifact root on first use.

    The experiment is marked as model training (``mlflow.experimentKind``), unless
    someone chose a kind for it, so the UI opens it on its training runs, not on the
    GenAI views.
    """
    client = MlflowClient(target.tracking_uri, target.registry_uri)
    experiment = client.get_experiment_by_name(config.experiment_name)
    if experiment is None:
        return client.create_experiment(config.experiment_name,
                                        artifact_location=target.artifact_root,
                                        tags={EXPERIMENT_KIND_TAG: TRAINING_KIND})
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
    return experiment.experiment_id


@contextmanager
def start_run(config: Config, name: str, *, tags: dict[str, str] | None = None
              ) -> Iterator[Run]:
    """Start a tagged run that logs the merged config; nested under the pipeline run if any.

    The parent is the active run in this process, or the run named by
    ``MLPIPE_PARENT_RUN_ID`` when a step runs in a process of its own.
    """
    target = point_client(resolve_target(config))  # the command checked the server already
    experiment_id = ensure_experiment(config, target)
    all_tags = {**run_tags(config), **(tags or {})}
    parent_id = os.environ.get(PARENT_RUN_VARIABLE)
    nested = mlflow.active_run() is not None
    if parent_id and not nested:
        all_tags["mlflow.parentRunId"] = parent_id
    with mlflow.start_run(run_name=name, experiment_id=experiment_id, nested=nested,
                          tags=all_tags) as run:
        log_config(config)
        yield run


def run_tags(config: Config) -> dict[str, str]:
    """Tags every run carries: the code version, the config hash, environment and dataset."""
    tags = {"mlpipe.config_hash": config.fingerprint(), "mlpipe.env": config.env,
            "mlpipe.dataset": config.dataset}
    commit = git_commit()
    if commit:
        tags["mlpipe.git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit
    return tags


def git_commit() -> str | None:
    """The commit of the working tree, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def log_config(config: Config) -> None:
    """Log the merged, validated config as ``config.yaml`` on the active run."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(config_as_yaml(config))
        mlflow.log_artifact(str(path))


def log_table_input(ref: TableRef, context: str = "training") -> None:
    """Record that the active run read ``ref`` at its pinned Delta version.

    The dataset is described by its source (path and version) only, so logging it
    costs no Spark job; the version is also a param for easy filtering in the UI.
    """
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    source = DeltaDatasetSource(path=ref.path, delta_table_version=ref.version)
    dataset = MetaDataset(source=source, name=ref.name, digest=f"v{ref.version}")
    mlflow.log_input(dataset, context=context)
    mlflow.log_param(f"input.{ref.name}.version", ref.version)
