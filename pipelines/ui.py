"""``mlpipe ui``: the MLflow UI against the run's own tracking backend.

It prints the address of the dataset's training runs, in the UI's model-training view:
the UI otherwise opens on its GenAI views (a setting each browser keeps), where a
pipeline's runs do not show.
"""

from __future__ import annotations

import subprocess
import sys

from pipelines.platform.config import Config
from pipelines.platform.tracking import configure_tracking, ensure_experiment


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


def training_runs_url(config: Config, experiment_id: str) -> str:
    """The UI's page of an experiment's runs, in the model-training view (not GenAI)."""
    return (f"http://{config.mlflow.ui_host}:{config.mlflow.ui_port}/#/experiments/"
            f"{experiment_id}/runs?workflowType=machine_learning")


def start_ui(config: Config) -> int:
    """Run the MLflow UI in the foreground until interrupted; returns its exit code."""
    command = ui_command(config)
    experiment_id = ensure_experiment(config, configure_tracking(config))
    print(f"MLflow UI on http://{config.mlflow.ui_host}:{config.mlflow.ui_port} "
          f"(backend {command[command.index('--backend-store-uri') + 1]}); Ctrl-C stops it\n"
          f"Training runs of {config.experiment_name}: "
          f"{training_runs_url(config, experiment_id)}", flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
