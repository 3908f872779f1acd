"""The jobs under spark-submit on a real standalone cluster (a master, two workers).

The executors' Python is started without processing ``.pth`` files, so the project's
editable install is invisible to them: every task that touches our code can only
import it from the zip that ``mlpipe submit`` ships with ``--py-files``.
"""

from __future__ import annotations

import site
import subprocess
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pipelines.services.spark_cluster import SparkCluster
from tests.conftest import CONF_DIR, REPO_ROOT
from tests.support.processes import BIN_DIR

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SLICE = ("seeding.start=2013-01-01", "seeding.end=2013-01-08",
         "features.train_end=2013-01-05", "features.validation_end=2013-01-06",
         "train_regression.reg_params=[0.01]", "mlflow.experiment=cluster")


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


def test_jobs_run_on_executors_with_the_shipped_code(tmp_path: Path,
                                                    spark_cluster: SparkCluster) -> None:
    data_root = tmp_path / "data"
    settings = [*SLICE, f"data_root={data_root}", f"spark.master={spark_cluster.url}",
                "spark.app_name=shipped-code",
                f"spark.conf.spark.pyspark.python={bare_python(tmp_path)}",
                "spark.conf.spark.executor.memory=1g",
                "spark.conf.spark.sql.shuffle.partitions=4"]
    flags = [arg for item in settings for arg in ("--set", item)]

    def mlpipe(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN_DIR / "mlpipe"), "--config", str(CONF_DIR), *flags,
                               *args], capture_output=True, text=True, timeout=900,
                              cwd=REPO_ROOT)

    seeded = mlpipe("step", "seed")
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    for step in ("ingest", "features", "train_regression"):
        result = mlpipe("submit", step)
        assert result.returncode == 0, f"{step}:\n{result.stderr[-5000:]}"
    applications = [app["name"] for app in spark_cluster.master.status()["completedapps"]
                    if app["name"].startswith("shipped-code-")]

    assert sorted(applications) == ["shipped-code-features", "shipped-code-ingest",
                                    "shipped-code-train_regression"]
    bronze = DeltaTable(str(data_root / "lake" / "bronze" / "flights")).to_pandas()
    features = DeltaTable(str(data_root / "lake" / "silver" / "flight_features")).to_pandas()
    assert len(bronze) > 0 and 0 < len(features) <= len(bronze)
    assert set(features["split"]) == {"train", "validation", "test"}
    shipped = [archive for worker in spark_cluster.workers
               for archive in worker.work_dir.rglob("mlpipe.zip")]
    assert shipped, "no executor received the code archive"
