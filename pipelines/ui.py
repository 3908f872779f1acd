"""``mlpipe ui``: the MLflow UI against the run's own tracking backend."""

from __future__ import annotations

import subprocess
import sys

from pipelines.platform.config import Config
from pipelines.platform.tracking import configure_tracking


def ui_command(config: Config) -> list[str]:
    """The ``mlflow ui`` command line for this config (backend, artifacts, host, port)."""
    target = configure_tracking(config)
    command = [sys.executable, "-m", "mlflow", "ui",
               "--backend-store-uri", target.tracking_uri,
               "--registry-store-uri", target.registry_uri,
               "--host", config.mlflow.ui_host, "--port", str(config.mlflow.ui_port)]
    if target.artifact_root:
        command += ["--default-artifact-root", target.artifact_root]
    return command


def start_ui(config: Config) -> int:
    """Run the MLflow UI in the foreground until interrupted; returns its exit code."""
    command = ui_command(config)
    print(f"MLflow UI on http://{config.mlflow.ui_host}:{config.mlflow.ui_port} "
          f"(backend {command[command.index('--backend-store-uri') + 1]}); Ctrl-C stops it")
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
