"""The process toolkit every real service shares: a free loopback port, a command started
in its own session with its output in a log file, waiting until it is ready, and stopping
its whole process group.

A server started for a test or a local trial must never outlive its owner, and a server
that dies while starting must say why at once: hence the process group (helpers it forks go
down with it) and the log tail in every error.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
LOG_TAIL_CHARS = 4000


class NotReady(RuntimeError):
    """A service process exited, or did not pass its readiness probe in time."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports: each stays bound until all are chosen, so
    the kernel cannot hand out one twice (a server with several listeners needs that)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind((LOOPBACK, 0))
        return [probe.getsockname()[1] for probe in probes]


def start_process(command: Sequence[str], log_path: Path, *, cwd: Path | None = None,
                  env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start ``command`` in a session of its own, stdout and stderr appended to ``log_path``.

    Its own session keeps a Ctrl-C meant for the caller from reaching it before the caller
    stops it in order, and lets `stop_process_group` reach every process it forked.
    ``env`` is added to this process's environment.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        return subprocess.Popen(list(command), stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cwd,
                                env={**os.environ, **(env or {})}, start_new_session=True)


def log_tail(log_path: Path | None, chars: int = LOG_TAIL_CHARS) -> str:
    """The end of a service's log, for error messages (empty when there is none)."""
    if log_path is None or not log_path.exists():
        return ""
    return f"\n--- {log_path} ---\n{log_path.read_text(errors='replace')[-chars:]}"


def wait_ready(process: subprocess.Popen, probe: Callable[[], bool], *, what: str,
               timeout_s: float = 90.0, log_path: Path | None = None,
               interval_s: float = 0.2) -> None:
    """Call ``probe`` until it returns True; raise `NotReady` with the log's tail as soon as
    the process exits, rather than waiting out the timeout for a server that is gone."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise NotReady(f"{what}: process exited with {process.returncode} before it was "
                           f"ready{log_tail(log_path)}")
        if probe():
            return
        if time.monotonic() > deadline:
            raise NotReady(f"{what}: not ready within {timeout_s:.0f} s{log_tail(log_path)}")
        time.sleep(interval_s)


def http_ok(url: str) -> bool:
    """Whether ``url`` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_for_http(url: str, process: subprocess.Popen, timeout_s: float = 90.0,
                  log_path: Path | None = None) -> None:
    """Wait until ``url`` answers 200 (see `wait_ready`)."""
    wait_ready(process, lambda: http_ok(url), what=url, timeout_s=timeout_s, log_path=log_path)


def stop_process_group(process: subprocess.Popen, *, grace_s: float = 15.0,
                       first_signal: signal.Signals = signal.SIGTERM) -> int:
    """Send ``first_signal`` to the process's whole group, SIGKILL it after ``grace_s``.

    The group, not the process alone: a server's helpers (workers it forked) go down with
    it. Returns the exit code. The process must have been started in its own session
    (`start_process`): its group id is its pid.
    """
    if process.poll() is not None:
        return process.returncode
    _signal_group(process, first_signal)
    try:
        return process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log.warning("pid %d ignored %s for %.0f s; killing its group",
                    process.pid, first_signal.name, grace_s)
        _signal_group(process, signal.SIGKILL)
        return process.wait()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:  # exited between the poll and the signal
        pass


class ServiceProcess:
    """A server one owner starts and stops: the steps every service shares, in one order.

    A subclass says how to prepare its folder, its command and environment, when it is
    ready, and what to do once it is; `start` undoes itself when any step fails, so a
    failed start leaves no server behind.
    """

    name = "service"
    ready_timeout_s = 90.0
    stop_signal = signal.SIGTERM
    stop_grace_s = 15.0

    def __init__(self, root: Path, log_name: str) -> None:
        self.root = root
        self.log_path = root / log_name
        self._process: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Prepare, launch, wait until ready, finish setting up; stop again on failure."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._prepare()
        self._process = start_process(self._command(), self.log_path, cwd=self.root,
                                      env=self._environment())
        try:
            wait_ready(self._process, self._ready, what=self.name,
                       timeout_s=self.ready_timeout_s, log_path=self.log_path)
            self._after_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the process group (`stop_signal`, SIGKILL after `stop_grace_s`); idempotent."""
        if self._process is not None:
            stop_process_group(self._process, grace_s=self.stop_grace_s,
                               first_signal=self.stop_signal)
            self._process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _prepare(self) -> None:
        """Before launching: files the server reads."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        """Added to this process's environment."""
        return {}

    def _ready(self) -> bool:
        raise NotImplementedError

    def _after_ready(self) -> None:
        """Once it answers: what must exist for clients (users, databases)."""
