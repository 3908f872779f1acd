"""The `mlpipe` console script as a user runs it: help, config, exit codes, the UI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from mlflow import MlflowClient

from models.project import PROJECT_ROOT
from pipelines.services.processes import free_port
from tests.conftest import CONF_DIR
from tests.support.processes import BIN_DIR, background

MLPIPE = str(BIN_DIR / "mlpipe")


def mlpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MLPIPE, "--config", str(CONF_DIR), *args], capture_output=True,
                          text=True, timeout=120, cwd=PROJECT_ROOT)


def listed_commands(help_text: str) -> set[str]:
    """The names in the help text's ``Commands:`` section.

    The words of the descriptions above it ("serve", "config") would make a plain
    substring check pass for a command that is not there.
    """
    section = help_text.split("\nCommands:\n", 1)[1]
    return {line.split()[0] for line in section.splitlines() if line.startswith("  ")
            and not line.startswith("   ")}


def test_help_lists_commands() -> None:
    result = mlpipe("--help")
    assert result.returncode == 0
    assert listed_commands(result.stdout) >= {"run", "step", "schedule", "serve", "submit",
                                              "ui", "bench", "config"}


def test_config_show_prints_merged_config_with_overrides() -> None:
    result = mlpipe("config", "show", "--set", "seed=5", "--set", "mlflow.ui_port=5055")
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["seed"] == 5 and shown["mlflow"]["ui_port"] == 5055
    assert shown["serving"]["host"] == "127.0.0.1"


def test_config_error_exits_2_naming_the_key() -> None:
    result = mlpipe("--set", "spark.masterr=local", "config", "show")
    assert result.returncode == 2
    assert "spark.masterr" in result.stderr and "unknown key" in result.stderr


def test_unsupported_data_root_scheme_exits_2_naming_the_key() -> None:
    result = mlpipe("--set", "data_root=gs://bucket/root", "config", "show")
    assert result.returncode == 2
    assert "data_root" in result.stderr and "unsupported storage scheme 'gs'" in result.stderr


def test_usage_error_exits_2() -> None:
    assert mlpipe("no-such-command").returncode == 2


def test_ui_serves_the_configured_backend(tmp_path: Path) -> None:
    port = free_port()
    command = [MLPIPE, "--config", str(CONF_DIR), "--set", f"data_root={tmp_path}",
               "--set", f"mlflow.ui_port={port}", "ui"]
    with background(command, tmp_path / "ui.log", ready_url=f"http://127.0.0.1:{port}/health"):
        pass
    assert (tmp_path / "mlflow" / "mlflow.db").exists()
    # It names the dataset's experiment, marked as model training, and the address of its
    # training runs in the UI's model-training view.
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mlpipe-flights")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert (f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs"
            "?workflowType=machine_learning") in (tmp_path / "ui.log").read_text()
