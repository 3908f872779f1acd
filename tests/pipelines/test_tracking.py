"""MLflow tracking through a real `mlflow server` process on a loopback port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from pipelines.platform.config import Config, config_as_yaml
from pipelines.platform.errors import TrackingUnavailableError
from pipelines.platform.lake import TableRef
from pipelines.platform.layout import Layout
from pipelines.platform.redact import redact
from pipelines.platform.tracking import (
    PARENT_RUN_VARIABLE,
    configure_tracking,
    log_table_input,
    resolve_target,
    start_run,
)
from pipelines.services.processes import free_port
from tests.conftest import make_config
from tests.support.processes import mlflow_server


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri


@pytest.fixture
def remote_config(tmp_path: Path, tracking_server: str) -> Iterator[Config]:
    yield make_config(tmp_path / "data", f"mlflow.tracking_uri={tracking_server}",
                      "mlflow.experiment=tracking-test")
    mlflow.set_tracking_uri(None)


def test_run_is_logged_and_read_back(remote_config: Config, tmp_path: Path,
                                     tracking_server: str) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello")
    with start_run(remote_config, "unit", tags={"purpose": "test"}) as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_metric("rmse", 1.25)
        mlflow.log_artifact(str(note))
        log_table_input(TableRef("flights", "/lake/silver/flights", 3))
    client = MlflowClient(tracking_server)
    stored = client.get_run(run.info.run_id)
    assert stored.data.params["alpha"] == "0.5"
    assert stored.data.params["input.flights.version"] == "3"
    assert stored.data.metrics["rmse"] == 1.25
    assert stored.data.tags["purpose"] == "test"
    assert stored.data.tags["mlpipe.config_hash"] == remote_config.fingerprint()
    assert stored.data.tags["mlpipe.env"] == "base"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "note.txt"} <= artifacts
    config_text = Path(client.download_artifacts(run.info.run_id, "config.yaml",
                                                 str(tmp_path))).read_text()
    assert "tracking-test" in config_text
    (dataset_input,) = stored.inputs.dataset_inputs
    assert dataset_input.dataset.name == "flights"
    assert '"delta_table_version": 3' in dataset_input.dataset.source
    assert "/lake/silver/flights" in dataset_input.dataset.source


def test_the_logged_config_holds_no_secret(tmp_path: Path, tracking_server: str) -> None:
    planted = "planted-s3cr3t"
    config = make_config(tmp_path / "data", f"mlflow.tracking_uri={tracking_server}",
                         "mlflow.experiment=tracking-test", f"serving.auth_token={planted}")
    with start_run(config, "secret") as run:
        pass
    logged = Path(MlflowClient(tracking_server).download_artifacts(
        run.info.run_id, "config.yaml", str(tmp_path))).read_text()
    assert planted not in logged
    assert "auth_token: '***'" in logged  # set, and said to be set
    assert planted not in config_as_yaml(config)  # what `mlpipe config show` prints
    mlflow.set_tracking_uri(None)


@pytest.mark.parametrize(("document", "shown"), [
    ({"serving": {"auth_token": "t0k"}}, {"serving": {"auth_token": "***"}}),
    ({"serving": {"auth_token": ""}}, {"serving": {"auth_token": ""}}),
    ({"serving": {"auth_token_file": "/etc/mlpipe/token"}},
     {"serving": {"auth_token_file": "/etc/mlpipe/token"}}),
    ({"conf": {"spark.hadoop.fs.s3a.secret.key": "k", "spark.hadoop.fs.s3a.access.key": "a"}},
     {"conf": {"spark.hadoop.fs.s3a.secret.key": "***", "spark.hadoop.fs.s3a.access.key": "***"}}),
    ({"uri": "postgresql://mlpipe:pa55@db:5432/mlflow"}, {"uri": "postgresql://mlpipe:***@db:5432/mlflow"}),
    ({"uri": "http://127.0.0.1:5000", "keys": ["year", "flight"]},
     {"uri": "http://127.0.0.1:5000", "keys": ["year", "flight"]}),
])
def test_redaction_hides_secret_keys_and_uri_passwords_only(document: dict, shown: dict) -> None:
    assert redact(document) == shown


def test_nested_runs_have_their_parent(remote_config: Config, tracking_server: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with start_run(remote_config, "pipeline") as parent:
        with start_run(remote_config, "step") as child:
            pass
    client = MlflowClient(tracking_server)
    assert client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == \
        parent.info.run_id
    # a step in a process of its own finds its parent through the environment
    monkeypatch.setenv(PARENT_RUN_VARIABLE, parent.info.run_id)
    with start_run(remote_config, "worker") as worker:
        pass
    assert client.get_run(worker.info.run_id).data.tags["mlflow.parentRunId"] == \
        parent.info.run_id


def test_unreachable_server_fails_fast_naming_the_uri(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    config = make_config(tmp_path / "data", f"mlflow.tracking_uri={uri}")
    started = time.monotonic()
    with pytest.raises(TrackingUnavailableError, match=uri.replace(".", r"\.")):
        configure_tracking(config)
    assert time.monotonic() - started < 10


def test_embedded_default_is_sqlite_under_data_root(config: Config) -> None:
    target = resolve_target(config)
    store = Layout.of(config).mlflow_store
    assert store == f"{Layout.of(config).root}/mlflow"
    assert target.tracking_uri == f"sqlite:///{store}/mlflow.db"
    assert target.artifact_root == Path(store, "artifacts").as_uri()
    assert not target.is_remote


def test_remote_data_root_needs_a_tracking_server(tmp_path: Path) -> None:
    # SQLite cannot live on an object store: the embedded default is refused, naming the key.
    config = make_config(tmp_path / "data", "data_root=s3a://bucket/mlpipe")
    with pytest.raises(TrackingUnavailableError, match="mlflow.tracking_uri"):
        resolve_target(config)


def test_embedded_run_keeps_artifacts_under_data_root(config: Config, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("local")
    try:
        with start_run(config, "embedded") as run:
            mlflow.log_artifact(str(note))
    finally:
        mlflow.set_tracking_uri(None)
    artifacts = Path(Layout.of(config).mlflow_store, "artifacts")
    assert list(artifacts.rglob("note.txt")), "artifact not under the data root"
    assert run.info.artifact_uri.startswith(artifacts.as_uri())
