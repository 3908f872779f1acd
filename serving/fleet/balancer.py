"""The HAProxy process in front of the replicas: check, start in the foreground, soft-stop."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import time
from pathlib import Path

from serving.fleet.haproxy_admin import HAProxyAdmin

log = logging.getLogger(__name__)

SETUP_SCRIPT = "scripts/install_system_packages.sh"
START_TIMEOUT_S = 10.0


class BalancerError(RuntimeError):
    """HAProxy is missing, rejected its configuration, or exited."""


def haproxy_binary() -> str:
    """The haproxy command, or a clear error naming the script that installs it."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise BalancerError(f"`--replicas N` needs HAProxy, which is not installed: run "
                            f"{SETUP_SCRIPT} (`make setup` runs it)")
    return found


class Balancer:
    """One HAProxy process running a generated configuration.

    It runs in the foreground (`-db`) as the supervisor's child; its log (state changes,
    refusals, errors: `log stderr` in the configuration) goes to `log_path` in `workdir`,
    not to the supervisor's stderr; the runtime API listens on `stats_socket`.
    """

    def __init__(self, config_text: str, workdir: Path, stats_socket: Path,
                 name: str = "haproxy") -> None:
        self.config_path = workdir / f"{name}.cfg"
        self.config_path.write_text(config_text)
        self.log_path = workdir / f"{name}.log"
        self.stats_socket = stats_socket
        self.admin = HAProxyAdmin(stats_socket)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Check the configuration with `haproxy -c`, start, wait for the runtime API."""
        binary = haproxy_binary()
        check = subprocess.run([binary, "-c", "-q", "-f", str(self.config_path)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise BalancerError(f"HAProxy rejected {self.config_path}:\n{check.stderr}")
        # The log goes to fd 3 (`log fd@3` in the configuration). `-q` silences HAProxy's
        # console, which would repeat each state change of the log; the price: an error at
        # start (a port in use) is not written anywhere, hence the hint below.
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(["sh", "-c", 'exec "$@" 3>>"$0"', str(self.log_path),
                                             binary, "-db", "-q", "-f", str(self.config_path)],
                                            stdout=log_file, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        log.info("HAProxy (pid %d) logs to %s", self.process.pid, self.log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise BalancerError(
                    f"HAProxy exited with {self.process.returncode} at start (its port in use?"
                    f" `{binary} -db -f {self.config_path}` says why):\n{self.log_tail()}")
            try:
                self.admin.command("show info")
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise BalancerError("HAProxy's runtime API did not answer") from None
                time.sleep(0.05)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of HAProxy's log, for an error message."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until_up(self, servers: list[str], timeout_s: float) -> None:
        """Block until HAProxy's health checks have every server in `servers` UP."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.admin.stats()
            if all(stats[name]["status"] == "UP" for name in servers):
                return
            if time.monotonic() > deadline:
                states = {name: stats[name]["status"] for name in servers}
                raise BalancerError(f"replicas not UP in HAProxy after {timeout_s:.0f} s: "
                                    f"{states}")
            time.sleep(0.05)

    def soft_stop(self, timeout_s: float) -> int | None:
        """SIGUSR1: stop listening, finish every request in flight, then exit.

        Idle keep-alive connections are closed and answers in flight carry
        `Connection: close`; HAProxy's own `hard-stop-after` ends the wait by `timeout_s`.
        """
        if not self.alive:
            return None if self.process is None else self.process.returncode
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1)
        try:
            return self.process.wait(timeout_s + 5)
        except subprocess.TimeoutExpired:
            log.warning("HAProxy still running %.0f s after its soft stop; killing it", timeout_s)
            return self.kill()

    def kill(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()
