"""A real Spark standalone cluster on loopback: one master and N workers.

PyPI's pyspark ships ``bin/spark-class`` but not the ``sbin`` start scripts, so the
master and workers are started through ``spark-class`` directly. The tests share one
such cluster per session, and ``mlpipe services up`` starts one for a team trial.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pyspark

from pipelines.services.processes import LOOPBACK, ServiceProcess, free_ports, http_ok

SPARK_CLASS = str(Path(pyspark.__file__).parent / "bin" / "spark-class")
SPARK_ENV = {"SPARK_LOCAL_IP": LOOPBACK, "SPARK_NO_DAEMONIZE": "1"}


class SparkMaster(ServiceProcess):
    """The standalone master; ready when its status page answers."""

    name = "spark master"

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        super().__init__(root, "master.log")
        self.port, self.ui_port = port or free_ports(1)[0], free_ports(1)[0]

    @property
    def url(self) -> str:
        return f"spark://{LOOPBACK}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ui_port}"

    def status(self) -> dict:
        """The master's JSON status: alive workers, running and completed applications."""
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=5) as response:
            return json.load(response)

    def _command(self) -> list[str]:
        return [SPARK_CLASS, "org.apache.spark.deploy.master.Master", "--host", LOOPBACK,
                "--port", str(self.port), "--webui-port", str(self.ui_port)]

    def _environment(self) -> dict[str, str]:
        return {**SPARK_ENV, "SPARK_LOG_DIR": str(self.root)}

    def _ready(self) -> bool:
        return http_ok(f"{self.ui_url}/json/")


class SparkWorker(ServiceProcess):
    """One worker with its own work folder; ready once the master counts it as alive."""

    name = "spark worker"

    def __init__(self, root: Path, master: SparkMaster, *, index: int, cores: int,
                 memory: str, env: dict[str, str] | None = None) -> None:
        super().__init__(root, f"worker-{index}.log")
        self.master, self.index, self.cores, self.memory = master, index, cores, memory
        self.work_dir = root / f"worker-{index}"
        self.env = env or {}

    def _command(self) -> list[str]:
        return [SPARK_CLASS, "org.apache.spark.deploy.worker.Worker", self.master.url,
                "--host", LOOPBACK, "--cores", str(self.cores), "--memory", self.memory,
                "--webui-port", str(free_ports(1)[0]), "--work-dir", str(self.work_dir)]

    def _environment(self) -> dict[str, str]:
        return {**SPARK_ENV, "SPARK_LOG_DIR": str(self.root), **self.env}

    def _ready(self) -> bool:
        try:
            return self.master.status().get("aliveworkers", 0) > self.index
        except OSError:
            return False


class SparkCluster:
    """A master and ``workers`` workers, started in order and stopped in reverse.

    ``env`` reaches the workers and so the executors they launch: object-store
    credentials, for a cluster without an instance role.
    """

    def __init__(self, root: Path, *, workers: int = 2, cores: int = 1, memory: str = "2g",
                 port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.master = SparkMaster(root, port=port)
        self.workers = [SparkWorker(root, self.master, index=i, cores=cores, memory=memory,
                                    env=env) for i in range(workers)]

    @property
    def url(self) -> str:
        return self.master.url

    def start(self) -> None:
        started: list[ServiceProcess] = []
        try:
            for service in (self.master, *self.workers):
                service.start()
                started.append(service)
        except BaseException:
            for service in reversed(started):
                service.stop()
            raise

    def stop(self) -> None:
        for service in (*reversed(self.workers), self.master):
            service.stop()

    def executor_logs(self) -> str:
        """Everything the executors wrote to stderr/stdout, across all applications."""
        return "\n".join(log.read_text(errors="replace") for worker in self.workers
                         for log in sorted(worker.work_dir.rglob("std*")))

    def __enter__(self) -> SparkCluster:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
