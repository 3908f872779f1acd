"""A real Spark standalone cluster on loopback: one master, two one-core workers.

PyPI's pyspark ships ``bin/spark-class`` but not the ``sbin`` start scripts, so the
master and workers are started through ``spark-class`` directly.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyspark

from bench.processes import free_port
from tests.support.processes import background

SPARK_CLASS = str(Path(pyspark.__file__).parent / "bin" / "spark-class")


@dataclass(frozen=True)
class Cluster:
    master_url: str
    ui_url: str
    work_dirs: tuple[Path, ...]

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=5) as response:
            return json.load(response)


@contextmanager
def standalone_cluster(folder: Path, workers: int = 2) -> Iterator[Cluster]:
    """Start the cluster for the duration of the block and wait until all workers joined."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1",
           "SPARK_LOG_DIR": str(folder / "logs")}
    port, ui_port = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    ui = f"http://127.0.0.1:{ui_port}"
    work_dirs = tuple(folder / f"worker-{i}" for i in range(workers))
    with ExitStack() as stack:
        stack.enter_context(background(
            [SPARK_CLASS, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(ui_port)],
            folder / "master.log", ready_url=f"{ui}/json/", env=env))
        for index, work_dir in enumerate(work_dirs):
            stack.enter_context(background(
                [SPARK_CLASS, "org.apache.spark.deploy.worker.Worker", master,
                 "--host", "127.0.0.1", "--cores", "1", "--memory", "2g",
                 "--webui-port", str(free_port()), "--work-dir", str(work_dir)],
                folder / f"worker-{index}.log", env=env))
        cluster = Cluster(master, ui, work_dirs)
        _wait_for_workers(cluster, workers)
        yield cluster


def _wait_for_workers(cluster: Cluster, count: int, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cluster.status().get("aliveworkers", 0) >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{count} workers did not join {cluster.master_url}")


def executor_logs(cluster: Cluster) -> str:
    """Everything the executors wrote to stderr/stdout, across all applications."""
    texts = []
    for work_dir in cluster.work_dirs:
        for log in sorted(work_dir.rglob("std*")):
            texts.append(log.read_text(errors="replace"))
    return "\n".join(texts)
