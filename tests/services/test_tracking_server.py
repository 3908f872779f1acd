"""The shared tracking server: runs in PostgreSQL, artifacts through it into the object
store, and the model registry, all reached with nothing but the tracking URI and a user:
the pipeline's writes, serving's only reads, and no one else gets in."""

from __future__ import annotations

import stat
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import httpx
import mlflow
import psutil
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from models.tracking_identity import (
    PASSWORD_VARIABLE,
    USERNAME_VARIABLE,
    read_identity,
)
from pipelines.platform.errors import TrackingUnavailableError
from pipelines.platform.tracking import check_admitted
from pipelines.services import TeamServices


def as_user(monkeypatch: pytest.MonkeyPatch, team_services: TeamServices,
            identity: str) -> MlflowClient:
    """A client presenting ``identity`` as MLflow's does, from the environment."""
    for name, value in team_services.identities[identity].environment().items():
        monkeypatch.setenv(name, value)
    # An explicit client: no global tracking URI leaks into other tests.
    return MlflowClient(tracking_uri=team_services.tracking.uri,
                        registry_uri=team_services.tracking.uri)


@pytest.fixture
def client(team_services: TeamServices, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    return as_user(monkeypatch, team_services, "pipeline")


def two_versions(client: MlflowClient, prefix: str) -> tuple[str, Run, ModelVersion,
                                                               ModelVersion]:
    """A new registered model with two versions of one run's model."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    run = client.create_run(client.create_experiment(f"registry-{name}"))
    client.create_registered_model(name)
    first, second = (client.create_model_version(name, f"runs:/{run.info.run_id}/model",
                                                 run_id=run.info.run_id) for _ in range(2))
    return name, run, first, second


def test_health_answers(team_services: TeamServices) -> None:
    with urllib.request.urlopen(f"{team_services.tracking.uri}/health", timeout=5) as response:
        assert response.status == 200


def test_a_run_keeps_its_metrics_and_its_artifact_lands_in_the_bucket(
        team_services: TeamServices, client: MlflowClient, tmp_path: Path) -> None:
    experiment_id = client.create_experiment(f"services-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "rmse", 0.25, step=3)
    report = tmp_path / "report.txt"
    report.write_text("residuals look fine")
    client.log_artifact(run.info.run_id, str(report), artifact_path="reports")
    client.set_terminated(run.info.run_id)

    stored = client.get_run(run.info.run_id)
    assert stored.data.metrics == {"rmse": 0.25}
    assert stored.info.status == "FINISHED"
    # Served by the tracking server: the client never sees the store's credentials.
    assert stored.info.artifact_uri.startswith("mlflow-artifacts:/")
    keys = [item["Key"] for item in team_services.store.client().list_objects_v2(
        Bucket=team_services.bucket, Prefix="mlflow-artifacts/")["Contents"]]
    expected = f"mlflow-artifacts/{experiment_id}/{run.info.run_id}/artifacts/reports/report.txt"
    assert expected in keys
    body = team_services.store.client().get_object(Bucket=team_services.bucket, Key=expected)
    assert body["Body"].read() == b"residuals look fine"
    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="reports/report.txt", dst_path=str(tmp_path / "d"),
        tracking_uri=team_services.tracking.uri)
    assert Path(downloaded).read_text() == "residuals look fine"


def test_the_registry_keeps_versions_and_aliases(team_services: TeamServices,
                                                 client: MlflowClient) -> None:
    name, run, first, second = two_versions(client, "services-model")
    client.set_registered_model_alias(name, "champion", first.version)
    assert (first.version, second.version) == ("1", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert sorted(v.version for v in client.search_model_versions(f"name='{name}'")) == ["1", "2"]


def test_serving_may_read_the_registry_but_not_move_an_alias_or_write_a_run(
        team_services: TeamServices, client: MlflowClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name, run, first, second = two_versions(client, "guarded")
    client.set_registered_model_alias(name, "champion", first.version)

    serving = as_user(monkeypatch, team_services, "serving")
    assert serving.get_model_version_by_alias(name, "champion").version == first.version
    with pytest.raises(MlflowException, match="Permission denied"):
        serving.set_registered_model_alias(name, "champion", second.version)
    with pytest.raises(MlflowException, match="Permission denied"):
        serving.log_metric(run.info.run_id, "rmse", 0.1)
    assert client.get_model_version_by_alias(name, "champion").version == first.version


def test_no_user_or_a_wrong_password_is_refused_and_a_run_says_so_before_any_work(
        team_services: TeamServices, monkeypatch: pytest.MonkeyPatch) -> None:
    api = f"{team_services.tracking.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert httpx.get(api, timeout=10).status_code == 401
    pipeline = team_services.identities["pipeline"]
    assert httpx.get(api, auth=(pipeline.username, "wrong"), timeout=10).status_code == 401
    assert httpx.get(api, auth=(pipeline.username, pipeline.password),
                     timeout=10).status_code == 200

    monkeypatch.setenv(USERNAME_VARIABLE, pipeline.username)
    monkeypatch.setenv(PASSWORD_VARIABLE, "wrong")
    with pytest.raises(TrackingUnavailableError,
                       match=f"refused user '{pipeline.username}'.*MLFLOW_TRACKING_PASSWORD"):
        check_admitted(team_services.tracking.uri, timeout_s=10)


def test_the_secrets_are_on_no_command_line_and_in_private_files(
        team_services: TeamServices) -> None:
    secrets = [team_services.postgres.password, *(identity.password for identity in
                                                   team_services.identities.values())]
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or ())
        assert not any(secret in command for secret in secrets), command
    for name in team_services.identities:
        path = team_services.credentials_file(name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert read_identity(str(path)) == team_services.identities[name]


def test_a_database_restart_while_a_run_logs_loses_no_metric(
        team_services: TeamServices, client: MlflowClient) -> None:
    run_id = client.create_run(client.create_experiment(
        f"restart-{uuid.uuid4().hex[:8]}")).info.run_id
    steps, failures = 40, []

    def log_steadily() -> None:
        for step in range(steps):
            try:
                client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
            except Exception as error:  # noqa: BLE001 - the assertion below reports it
                failures.append(error)
            time.sleep(0.05)

    logger = threading.Thread(target=log_steadily)
    logger.start()
    time.sleep(0.5)
    team_services.postgres.stop()  # under the tracking server, while the run logs
    time.sleep(1.0)
    team_services.postgres.start()
    logger.join(180)

    assert not logger.is_alive() and failures == []
    history = client.get_metric_history(run_id, "loss")
    assert sorted(metric.step for metric in history) == list(range(steps))
