"""A job under spark-submit on a real standalone cluster (a master, two workers).

The executors' Python is started without processing ``.pth`` files, so the project's
editable install is invisible to them: every task that touches our code can only
import it from the zip that ``mlpipe submit`` ships with ``--py-files``. Of the steps,
train_regression is the one whose tasks run our code (the regression's partition
functions); the steps before it build its input locally. (Ingest and features run on
this cluster in the team run, tests/test_team.py; every job in jobs/ is checked to run
its step in tests/pipelines/test_submit.py.)
"""

from __future__ import annotations

import site
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from models.project import PROJECT_ROOT
from pipelines.services.spark_cluster import SparkCluster
from tests.conftest import CONF_DIR
from tests.support.processes import BIN_DIR

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SLICE = ("seeding.start=2013-01-01", "seeding.end=2013-01-04",
         "features.train_end=2013-01-02", "features.validation_end=2013-01-03",
         "train_regression.reg_params=[0.01]", "mlflow.experiment=cluster",
         "spark.master=local[2]", "spark.conf.spark.sql.shuffle.partitions=2")


def bare_python(folder: Path) -> Path:
    """An interpreter that sees site-packages but not the editable install of mlpipe."""
    wrapper = folder / "executor-python"
    packages = ":".join(site.getsitepackages())
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{packages}" exec "{BIN_DIR / "python"}" -S "$@"\n')
    wrapper.chmod(0o755)
    probe = subprocess.run([str(wrapper), "-c", "import pyspark, models"], capture_output=True,
                           text=True, cwd=folder)
    assert "No module named 'models'" in probe.stderr, probe.stderr
    return wrapper


def test_a_job_runs_on_executors_with_the_shipped_code(tmp_path: Path,
                                                     spark_cluster: SparkCluster) -> None:
    data_root = tmp_path / "data"
    on_cluster = [f"spark.master={spark_cluster.url}", "spark.app_name=shipped-code",
                  f"spark.conf.spark.pyspark.python={bare_python(tmp_path)}",
                  "spark.conf.spark.executor.memory=1g"]

    def mlpipe(*args: str, settings: Sequence[str] = ()) -> subprocess.CompletedProcess:
        flags = [arg for item in (*SLICE, f"data_root={data_root}", *settings)
                 for arg in ("--set", item)]
        return subprocess.run([str(BIN_DIR / "mlpipe"), "--config", str(CONF_DIR), *flags,
                               *args], capture_output=True, text=True, timeout=900,
                              cwd=PROJECT_ROOT)

    built = mlpipe("run", "--only", "seed", "--only", "ingest", "--only", "features")
    assert built.returncode == 0, built.stderr[-3000:]
    result = mlpipe("submit", "train_regression", settings=on_cluster)
    assert result.returncode == 0, result.stderr[-5000:]
    applications = [app["name"] for app in spark_cluster.master.status()["completedapps"]
                    if app["name"].startswith("shipped-code-")]

    assert applications == ["shipped-code-train_regression"]
    uri = f"sqlite:///{data_root / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    for name in ("flight-delay-linear", "flight-delay-logistic"):
        assert int(client.get_model_version_by_alias(name, "candidate").version) == 1
    shipped = [archive for worker in spark_cluster.workers
               for archive in worker.work_dir.rglob("mlpipe.zip")]
    assert shipped, "no executor received the code archive"
