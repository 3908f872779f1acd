"""The team's shared MLflow tracking server: runs and the model registry in PostgreSQL,
artifacts in the object store, served through the server (`--serve-artifacts`) so that a
client needs only the tracking URI, never the store's credentials."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from pipelines.services.processes import LOOPBACK, ServiceProcess, free_port, http_ok

log = logging.getLogger(__name__)


class TrackingServer(ServiceProcess):
    """`mlflow server` on a loopback port, one worker (a 2-core machine runs it).

    ``store_environment`` is what the server needs to write artifacts into the object
    store: the S3 endpoint (`MLFLOW_S3_ENDPOINT_URL`) and AWS credentials.
    """

    name = "MLflow tracking server"
    # The first start against an empty database runs MLflow's schema migrations.
    ready_timeout_s = 120.0

    def __init__(self, root: Path, *, backend_store_uri: str, artifacts_destination: str,
                 store_environment: Mapping[str, str], port: int | None = None) -> None:
        super().__init__(root, "tracking-server.log")
        self.port = port or free_port()
        self.backend_store_uri = backend_store_uri
        self.artifacts_destination = artifacts_destination
        self.store_environment = dict(store_environment)

    @property
    def uri(self) -> str:
        """The tracking (and registry) URI clients set: `http://127.0.0.1:PORT`."""
        return f"http://{LOOPBACK}:{self.port}"

    def _command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "mlflow"), "server",
                "--backend-store-uri", self.backend_store_uri,
                "--serve-artifacts", "--artifacts-destination", self.artifacts_destination,
                "--host", LOOPBACK, "--port", str(self.port), "--workers", "1"]

    def _environment(self) -> dict[str, str]:
        # Job execution (GenAI evaluation jobs) would start a job runner and queue files in
        # /dev/shm: nothing this project uses.
        return {**self.store_environment, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

    def _ready(self) -> bool:
        return http_ok(f"{self.uri}/health")

    def _after_ready(self) -> None:
        log.info("%s on %s (artifacts in %s)", self.name, self.uri, self.artifacts_destination)
