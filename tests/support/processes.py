"""Real background processes for tests, stopped cleanly with their whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.processes import wait_for_http

BIN_DIR = Path(sys.executable).parent


@contextmanager
def background(command: Sequence[str], log_path: Path, ready_url: str | None = None,
               cwd: Path | None = None, env: dict[str, str] | None = None
               ) -> Iterator[subprocess.Popen]:
    """Run ``command`` for the duration of the block, logging to ``log_path``."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT,
                                   cwd=cwd, env={**os.environ, **(env or {})},
                                   start_new_session=True)
        try:
            if ready_url:
                try:
                    wait_for_http(ready_url, process)
                except Exception as exc:
                    raise RuntimeError(f"{exc}\n--- {log_path} ---\n"
                                       f"{log_path.read_text()[-4000:]}") from None
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
