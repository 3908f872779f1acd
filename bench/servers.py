"""The server processes the serving benchmarks compare, started side by side on loopback.

Kinds: `ours` (`python -m serving`, extra flags allowed), `mlflow`
(`mlflow models serve --env-manager local` on the same model), `noop` (the same
uvicorn + Starlette stack answering at once, bench/noop_app.py) and `noop-asgi` (that
answer on uvicorn alone). Every kind answers
`GET /ping` with 200 once it can serve.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from models.project import PROJECT_ROOT
from pipelines.services.processes import free_port, wait_for_http

log = logging.getLogger(__name__)

# The no-op endpoints by kind: on Starlette (the yardstick), and as plain ASGI.
NOOP_APPS = {"noop": "bench.noop_app:app", "noop-asgi": "bench.noop_app:bare"}


@dataclass(frozen=True)
class ServerSpec:
    """One server to start: its kind, the model it serves and its environment."""

    kind: str
    model_uri: str = ""
    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def command(self, port: int) -> list[str]:
        python = sys.executable
        if self.kind == "ours":
            return [python, "-m", "serving", self.model_uri, "--port", str(port),
                    "--log-level", "warning", *self.flags]
        if self.kind == "mlflow":
            return [python, "-m", "mlflow", "models", "serve", "-m", self.model_uri,
                    "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), *self.flags]
        if self.kind in NOOP_APPS:
            return [python, "-m", "uvicorn", NOOP_APPS[self.kind], "--port", str(port),
                    "--log-level", "warning", "--no-access-log", *self.flags]
        raise ValueError(f"unknown server kind {self.kind!r}")


def model_env(tracking_uri: str) -> dict[str, str]:
    """The environment a server needs to find models in the registry at `tracking_uri`.

    `mlflow models serve` runs `uvicorn` from PATH, so this interpreter's bin goes first.
    """
    return {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "TF_CPP_MIN_LOG_LEVEL": "2",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@contextlib.contextmanager
def running(specs: dict[str, ServerSpec], log_dir: Path, *,
            ready_timeout_s: float = 300) -> Iterator[dict[str, int]]:
    """Start every server, wait until all answer /ping, yield their ports by name, stop them."""
    log_dir.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen] = {}
    ports: dict[str, int] = {}
    try:
        for name, spec in specs.items():
            ports[name] = free_port()
            with (log_dir / f"{name}.log").open("w") as log_file:
                processes[name] = subprocess.Popen(
                    spec.command(ports[name]), cwd=PROJECT_ROOT, env=spec.env or None,
                    stdout=log_file, stderr=subprocess.STDOUT)
        for name, process in processes.items():
            wait_for_http(f"http://127.0.0.1:{ports[name]}/ping", process, ready_timeout_s)
            log.info("%s ready on port %d", name, ports[name])
        yield ports
    finally:
        stop(processes.values())


def stop(processes: Collection[subprocess.Popen]) -> None:
    """SIGTERM each process, then wait; kill one that outlives a minute."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
