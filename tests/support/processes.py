"""Real background processes for tests: free ports, waiting for readiness, clean stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BIN_DIR = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout_s: float = 90.0) -> None:
    """Poll ``url`` until it answers 200; fail early with the log if the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s")


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
