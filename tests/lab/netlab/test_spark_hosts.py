"""Spark standalone across the emulated hosts: Horovod on Spark and our regression.

The master and the driver sit on the first host, one worker per host; executors on two
hosts mean the shuffles, aggregations and allreduces cross the emulated links.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.netlab import Cluster
from lab.netlab.launchers import launch_env
from lab.netlab.spark import spark_cluster
from models.project import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_horovod_spark_and_regression_run_on_executors_on_both_hosts(
        unshaped: Cluster, tmp_path: Path) -> None:
    addresses = [host.address for host in unshaped.hosts]
    with spark_cluster(unshaped, tmp_path / "spark") as spark:
        assert sorted(spark.worker_hosts()) == addresses
        # Output to files, not pipes: read through pipes, the job had printed its result
        # but the run did not end within the timeout.
        with (tmp_path / "job.out").open("w") as out, (tmp_path / "job.err").open("w") as err:
            job = subprocess.run(unshaped.command(unshaped.hosts[0], [
                sys.executable, "-m", "tests.lab.netlab.spark_job", spark.master_url,
                spark.driver_host]), stdout=out, stderr=err, timeout=400, cwd=PROJECT_ROOT,
                env=launch_env(unshaped))
    assert job.returncode == 0, (tmp_path / "job.err").read_text()[-5000:]
    result = json.loads((tmp_path / "job.out").read_text().strip().splitlines()[-1])

    assert result["executor_hosts"] == addresses
    ranks = sorted(result["horovod"], key=lambda r: r["rank"])
    assert sorted(r["address"] for r in ranks) == addresses  # one rank per host
    assert [r["sum"] for r in ranks] == [3.0, 3.0]  # 1 + 2, summed across the hosts
    assert result["regression_task_hosts"] == addresses
    assert result["coefficient_error"] < 0.05 and result["intercept_error"] < 0.05
