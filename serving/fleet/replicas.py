"""Replica processes: `python -m serving PINNED_URI --replicas 1 --port P`, one model copy each."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import yaml

from models.private_files import write_private
from models.project import PROJECT_ROOT
from serving.fleet.haproxy_config import HEALTH_PATH
from serving.settings import ServingSettings

log = logging.getLogger(__name__)

# A function of the replica's name giving the argv placed before `python -m serving ...`,
# e.g. `lambda name: ["taskset", "-c", "1"] if name == "r3" else []`. The prefix must end
# by exec'ing the rest of its argv, so the replica's pid is the one started.
CommandPrefix = Callable[[str], Sequence[str]]
LOOPBACK = "127.0.0.1"
# Loading and warming a TensorFlow model on a busy 2-core machine can take a minute.
READY_TIMEOUT_S = 180.0
# `host:port` a replica of a `balance: reuseport` fleet also listens on, with SO_REUSEPORT
# set, besides its own loopback port (serving/server.py reads it).
REUSEPORT_ENV = "MLPIPE_REUSEPORT_ADDRESS"


class ReplicaFailed(RuntimeError):
    """A replica exited (``exit_code``) or never became ready (``exit_code`` None)."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Replica:
    """One server process of the fleet; `name` is its slot (HAProxy's server name)."""

    name: str
    model_uri: str
    version: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_ready(self, stopping: threading.Event, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Block until the replica reports ready; raise if it exits, times out or we stop."""
        deadline = time.monotonic() + timeout_s
        while not stopping.is_set():
            if self.process.poll() is not None:
                raise ReplicaFailed(f"replica {self.name} (pid {self.pid}) exited with "
                                    f"{self.process.returncode} while loading:\n{self.log_tail()}",
                                    self.process.returncode)
            if time.monotonic() > deadline:
                raise ReplicaFailed(f"replica {self.name} not ready within {timeout_s:.0f} s")
            try:
                with urllib.request.urlopen(self.url + HEALTH_PATH, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise ReplicaFailed(f"replica {self.name}: the fleet is stopping")

    def stop(self, timeout_s: float) -> int | None:
        """SIGTERM (the server drains its own in-flight requests), SIGKILL after `timeout_s`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("replica %s (pid %d) ignored SIGTERM for %.0f s; killing it",
                        self.name, self.pid, timeout_s)
            self.process.kill()
            return self.process.wait()


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def mlflow_environment() -> dict[str, str]:
    """This process's MLflow URIs, as the environment variables a child process reads.

    `mlpipe serve` points MLflow at the configured backend in-process (conf/base.yaml),
    which a child process would not see: it would look for the model elsewhere.
    """
    return {"MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
            "MLFLOW_REGISTRY_URI": mlflow.get_registry_uri()}


def write_replica_config(settings: ServingSettings, path: Path) -> Path:
    """The settings every replica runs with: the fleet's, as one plain server on loopback."""
    values = settings.model_dump(mode="json")
    values.update(replicas=1, workers=1, host=LOOPBACK)
    # Private: it holds the resolved token.
    return write_private(path, yaml.safe_dump({"serving": values}, sort_keys=False))


def start_replica(name: str, model_uri: str, version: str, config_path: Path, log_dir: Path,
                  prefix: CommandPrefix | None = None, *,
                  shared: tuple[str, int] | None = None) -> Replica:
    """Start one replica on a fresh port; it loads in the background (see `wait_ready`).

    With `shared` (host, port), it also listens there with SO_REUSEPORT, as every other
    replica does: the kernel spreads the connections (`balance: reuseport`); its own port
    stays for the supervisor's readiness checks.

    Each replica gets its own session, so a Ctrl-C meant for the supervisor does not
    reach it before the balancer has drained: the supervisor stops it in order.
    """
    port = free_port()
    command = [*(prefix(name) if prefix else ()), sys.executable, "-m", "serving", model_uri,
               "--config", str(config_path), "--port", str(port)]
    log_path = log_dir / f"{name}-{port}.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, **mlflow_environment(),
                                        **({REUSEPORT_ENV: f"{shared[0]}:{shared[1]}"}
                                           if shared else {})})
    log.info("started replica %s (pid %d) on port %d serving %s", name, process.pid, port,
             model_uri)
    return Replica(name, model_uri, version, port, process, log_path)
