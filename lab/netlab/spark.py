"""A Spark standalone cluster across the emulated hosts: the master on the first host,
one worker per host, each bound to its host's address.

PyPI's pyspark has ``bin/spark-class`` but no ``sbin`` scripts, so the daemons are
started through ``spark-class``. A driver belongs on the first host too
(``cluster.command(cluster.hosts[0], ...)``) with ``spark.driver.host`` set to its
address: executors on other hosts cannot reach anything outside the bridge.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyspark

from lab.netlab.namespaces import Cluster, Host
from lab.netlab.system import NetlabError

SPARK_CLASS = str(Path(pyspark.__file__).parent / "bin" / "spark-class")
MASTER_PORT = 7077
REGISTERED = re.compile(r"Registering worker (\S+):\d+ with")


@dataclass(frozen=True)
class SparkCluster:
    master_url: str
    driver_host: str
    folder: Path

    def worker_hosts(self) -> list[str]:
        """Addresses of the workers the master registered, from its log."""
        return REGISTERED.findall((self.folder / "master.log").read_text(errors="replace"))


@contextmanager
def spark_cluster(cluster: Cluster, folder: Path, cores: int = 1, memory: str = "1g",
                  timeout_s: float = 120) -> Iterator[SparkCluster]:
    """Run the master and the workers for the duration of the block."""
    folder.mkdir(parents=True, exist_ok=True)
    head = cluster.hosts[0]
    master_url = f"spark://{head.address}:{MASTER_PORT}"
    spark = SparkCluster(master_url, head.address, folder)
    with ExitStack() as stack:
        stack.enter_context(_daemon(cluster, head, [
            "org.apache.spark.deploy.master.Master", "--host", head.address,
            "--port", str(MASTER_PORT), "--webui-port", "8080"], folder / "master.log"))
        for host in cluster.hosts:
            stack.enter_context(_daemon(cluster, host, [
                "org.apache.spark.deploy.worker.Worker", master_url, "--host", host.address,
                "--cores", str(cores), "--memory", memory, "--webui-port", "8081",
                "--work-dir", str(folder / f"work-{host.name}")], folder / f"{host.name}.log"))
        _wait_for_workers(spark, len(cluster.hosts), timeout_s)
        yield spark


@contextmanager
def _daemon(cluster: Cluster, host: Host, args: list[str], log: Path) -> Iterator[None]:
    env = {**os.environ, "SPARK_LOCAL_IP": host.address, "SPARK_NO_DAEMONIZE": "1",
           "SPARK_LOG_DIR": str(log.parent)}
    with log.open("wb") as sink:
        process = subprocess.Popen(cluster.command(host, [SPARK_CLASS, *args]), stdout=sink,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for_workers(spark: SparkCluster, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(set(spark.worker_hosts())) >= count:
            return
        time.sleep(0.5)
    raise NetlabError(f"{count} Spark workers did not register with {spark.master_url} within "
                      f"{timeout_s:.0f} s; see the logs in {spark.folder}")
