"""A Spark application for the emulated cluster: Horovod on Spark and our regression.

Run on the first host, ``python -m tests.lab.netlab.spark_job MASTER_URL DRIVER_HOST``;
prints one JSON line: the executors' hosts, what each Horovod rank saw, the hosts that
processed the regression's partitions, and the fitted coefficients against the truth.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import horovod.spark
import numpy as np
import psutil
from pyspark.sql import SparkSession

from lab.regression_data import make_regression_data
from models.regression import LinearRegression

EXECUTORS = 2


def eth0_address() -> str:
    return next(a.address for a in psutil.net_if_addrs()["eth0"] if a.family == socket.AF_INET)


def rank_report() -> dict[str, Any]:
    """One Horovod rank on a Spark executor: where it runs, and an allreduce across hosts."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    hvd.init()
    total = hvd.allreduce(tf.constant(float(hvd.rank() + 1)), op=hvd.Sum)
    return {"rank": hvd.rank(), "address": eth0_address(), "sum": float(total)}


def partition_hosts(_rows: Iterator[Any]) -> Iterator[str]:
    yield eth0_address()


def executor_hosts(spark: SparkSession, timeout_s: float = 120) -> list[str]:
    """Hosts of the executors (the driver excluded), once all of them registered."""
    tracker = spark.sparkContext._jsc.sc().statusTracker()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        infos = tracker.getExecutorInfos()
        hosts = [infos[i].host() for i in range(len(infos))]
        if len(hosts) > EXECUTORS:  # the driver is listed too
            driver = spark.sparkContext.getConf().get("spark.driver.host")
            hosts.remove(driver)
            return sorted(hosts)
        time.sleep(0.5)
    raise TimeoutError(f"{EXECUTORS} executors did not register")


def main(master: str, driver_host: str) -> int:
    # Executors start PYSPARK_PYTHON (or python3 from PATH), whatever spark.pyspark.python says.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master(master).appName("netlab")
             .config("spark.driver.host", driver_host)
             .config("spark.driver.bindAddress", driver_host)
             .config("spark.driver.memory", "1g")
             .config("spark.executor.memory", "768m")
             .config("spark.executor.cores", "1")
             .config("spark.cores.max", str(EXECUTORS))
             .config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .getOrCreate())
    try:
        executors = executor_hosts(spark)
        ranks = horovod.spark.run(rank_report, num_proc=EXECUTORS, use_gloo=True,
                                  nics={"eth0"}, start_timeout=120)
        frame, truth, intercept = make_regression_data(spark, 20_000, 5, seed=3, partitions=4)
        model = LinearRegression().fit(frame)
        tasks = sorted(set(frame.rdd.mapPartitions(partition_hosts).collect()))
        print(json.dumps({
            "executor_hosts": executors, "horovod": ranks, "regression_task_hosts": tasks,
            "coefficient_error": float(np.abs(model.coefficients.toArray() - truth).max()),
            "intercept_error": abs(model.intercept - intercept)}))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
