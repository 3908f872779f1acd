"""Real background processes for tests, stopped cleanly with their whole process group."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pipelines.services.processes import (
    free_port,
    start_process,
    stop_process_group,
    wait_for_http,
)

BIN_DIR = Path(sys.executable).parent


@contextmanager
def background(command: Sequence[str], log_path: Path, ready_url: str | None = None,
               cwd: Path | None = None, env: dict[str, str] | None = None
               ) -> Iterator[subprocess.Popen]:
    """Run ``command`` for the duration of the block, logging to ``log_path``."""
    process = start_process(command, log_path, cwd=cwd, env=env)
    try:
        if ready_url:
            wait_for_http(ready_url, process, log_path=log_path)
        yield process
    finally:
        stop_process_group(process)


@contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """A real `mlflow server` on SQLite in ``folder``, on a free loopback port; its URI."""
    port = free_port()
    command = [str(BIN_DIR / "mlflow"), "server",
               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--artifacts-destination", str(folder / "artifacts"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    uri = f"http://127.0.0.1:{port}"
    with background(command, folder / "server.log", ready_url=f"{uri}/health", cwd=folder):
        yield uri
