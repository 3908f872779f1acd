"""The shared tracking server: runs in PostgreSQL, artifacts through it into the object
store, and the model registry, all reached with nothing but the tracking URI."""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from pipelines.services import TeamServices


@pytest.fixture
def client(team_services: TeamServices) -> MlflowClient:
    # An explicit client: no global tracking URI leaks into other tests.
    return MlflowClient(tracking_uri=team_services.tracking.uri,
                        registry_uri=team_services.tracking.uri)


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
    name = f"services-model-{uuid.uuid4().hex[:8]}"
    run = client.create_run(client.create_experiment(f"registry-{name}"))
    client.create_registered_model(name)
    first = client.create_model_version(name, f"runs:/{run.info.run_id}/model",
                                        run_id=run.info.run_id)
    second = client.create_model_version(name, f"runs:/{run.info.run_id}/model",
                                         run_id=run.info.run_id)
    client.set_registered_model_alias(name, "champion", first.version)
    assert (first.version, second.version) == ("1", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert sorted(v.version for v in client.search_model_versions(f"name='{name}'")) == ["1", "2"]
