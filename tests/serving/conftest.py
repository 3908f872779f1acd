"""Fixtures for the serving tests: a throwaway MLflow registry and real server processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from models.project import PROJECT_ROOT
from pipelines.services.processes import free_port, wait_for_http
from tests.serving import models

READY_TIMEOUT_S = 180
# uvicorn re-raises SIGTERM after its graceful shutdown, so a clean stop may read -SIGTERM.
GRACEFUL_EXIT = (0, -signal.SIGTERM)
# Rows one request may carry on the shared linear server, small so a 413 is cheap to provoke.
LINEAR_SERVER_MAX_ROWS = 500


@dataclass
class ServerProcess:
    """A `python -m serving` subprocess on a free loopback port."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout_s: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_server(model_uri: str, log_dir: Path, *flags: str, env: dict | None = None,
                 wait_ready: bool = True) -> ServerProcess:
    """Start the real server and wait until it reports ready (model loaded, warmed up)."""
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    command = [sys.executable, "-m", "serving", model_uri, "--port", str(port), *flags]
    with log_path.open("w") as log_file:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log_file,
                                   stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    server = ServerProcess(process, port, log_path)
    if wait_ready:
        wait_until_ready(server)
    return server


def wait_until_ready(server: ServerProcess) -> None:
    try:
        wait_for_http(f"{server.url}/v2/health/ready", server.process, READY_TIMEOUT_S)
    except (RuntimeError, TimeoutError) as error:
        server.stop()
        raise RuntimeError(f"{error}\n{server.log_tail()}") from None


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local MLflow backend (SQLite + file artifacts) for this process and the servers."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    # Explicitly: a registry URI set before (set_registry_uri keeps it in the environment,
    # where None does not clear it) would otherwise win, here and in every server started.
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment(
        "serving-tests", artifact_location=(root / "artifacts").as_uri()))
    yield root
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    mlflow.set_registry_uri(None)
    mlflow.set_tracking_uri(saved or "")
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.fixture(scope="session")
def linear_uri(registry: Path) -> str:
    models.log_linear_model("flight-delay-linear")
    mlflow.MlflowClient().set_registered_model_alias("flight-delay-linear", "champion", "1")
    return "models:/flight-delay-linear@champion"


@pytest.fixture(scope="session")
def keras_uri(registry: Path) -> str:
    version = models.log_keras_model("flight-delay-mlp")
    return f"models:/flight-delay-mlp/{version}"


@pytest.fixture(scope="session")
def linear_server(linear_uri: str, tmp_path_factory: pytest.TempPathFactory,
                  ) -> Iterator[ServerProcess]:
    """One server for the protocol, correctness and fuzz tests; small limits for 413."""
    server = start_server(linear_uri, tmp_path_factory.mktemp("linear-server"),
                          "--max-request-bytes", "200000", "--max-delay-ms", "5",
                          "--max-request-rows", str(LINEAR_SERVER_MAX_ROWS))
    yield server
    server.stop()
