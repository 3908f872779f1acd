"""The fleet supervisor: N replicas behind HAProxy, healed, drained, rolled.

With `balance: reuseport` there is no HAProxy: each replica binds the public port itself
with SO_REUSEPORT and the kernel spreads new connections among them (the baseline of the
benchmark); the supervisor still restarts a replica that dies and drains them on stop.
A new replica takes connections as soon as it listens, before its model has loaded
(answered 503 + Retry-After until then), and those waiting in a dying replica's accept
queue are reset: a balancer is what avoids both, and what `--watch` needs to roll.

`Fleet` is the Python API (tests, benchmarks) and what `mlpipe serve --replicas N` runs
(`run_fleet`). One monitor thread does everything that changes the fleet, so a restart
and a roll never race: it restarts a replica that dies, and with `watch` it polls the
registry alias and rolls a new version through the replicas (serving/fleet/roll.py).

Order on stop (SIGTERM, SIGINT or `stop()`): the balancer first (HAProxy's soft stop:
no new connections, every request in flight finishes), then the replicas (SIGTERM,
each drains its own batcher), then exit 0.
"""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from serving import exit_codes
from serving.fleet.balancer import Balancer, BalancerError, haproxy_binary
from serving.fleet.haproxy_admin import HAProxyAdmin
from serving.fleet.haproxy_config import Server, render_config
from serving.fleet.replicas import (
    LOOPBACK,
    READY_TIMEOUT_S,
    CommandPrefix,
    Replica,
    ReplicaFailed,
    free_port,
    start_replica,
    write_replica_config,
)
from serving.fleet.roll import RollAttempts, follow_alias
from serving.registry import resolve_version
from serving.settings import ServingSettings
from serving.watcher import check_watchable

log = logging.getLogger(__name__)

MONITOR_INTERVAL_S = 0.2


@dataclass(frozen=True)
class Restart:
    """A replica that died and was replaced, with what HAProxy saw of its requests.

    `failed_attempts`: HAProxy's `eresp` on the slot, requests that were on the replica
    when it died (at most `replica_max_connections`); each was then either replayed on
    another replica or, when it could not be (see serving/fleet/haproxy_config.py), answered
    502. `retried` / `redispatched`: HAProxy's `wretr` / `wredis` for the slot. All three
    are None without a balancer (`balance: reuseport`): nothing counts them.
    """

    name: str
    old_pid: int
    exit_code: int | None
    new_pid: int
    failed_attempts: int | None
    retried: int | None
    redispatched: int | None


class Fleet:
    """N replica processes of one model behind a generated HAProxy configuration.

    `command_prefix(name)` is placed before each replica's command (e.g. `taskset`, or a
    shell that moves itself into a CPU-limited cgroup and execs the rest), so a benchmark
    can handicap one replica. The public address is `settings.host:settings.port` (port 0:
    a free one); replicas listen on loopback ports of their own, and with
    `balance: reuseport` on the public address too (no HAProxy: `balancer` stays None).
    """

    def __init__(self, model_uri: str, settings: ServingSettings, *, watch: bool = False,
                 command_prefix: CommandPrefix | None = None) -> None:
        self.balanced = settings.balance != "reuseport"
        if watch and not self.balanced:
            raise ValueError("--watch rolls versions through HAProxy's drain: it needs a "
                             "balancer, and balance: reuseport has none")
        if watch:
            check_watchable(model_uri)
        if self.balanced:
            haproxy_binary()  # missing HAProxy fails here, not after the replicas have loaded
        self.model_uri = model_uri
        self.settings = settings
        self.watch = watch
        self.command_prefix = command_prefix
        self.replicas: dict[str, Replica] = {}
        self.restarts: list[Restart] = []
        self.roll_attempts = RollAttempts()
        self.port = settings.port or free_port()
        self.failed = threading.Event()
        self._stopping = threading.Event()
        self._workdir: Path | None = None
        self._config_path = Path()
        self._baselines: dict[str, dict[str, int]] = {}
        self._monitor: threading.Thread | None = None
        self.balancer: Balancer | None = None
        self.balancer_restarts = 0

    # -- the Python API --------------------------------------------------------------
    @property
    def url(self) -> str:
        host = LOOPBACK if self.settings.host in ("0.0.0.0", "") else self.settings.host
        return f"http://{host}:{self.port}"

    @property
    def admin(self) -> HAProxyAdmin:
        assert self.balancer is not None, "the fleet is not started"
        return self.balancer.admin

    def stats(self) -> dict[str, dict[str, str]]:
        """HAProxy's `show stat` per replica name (and `BACKEND` for the total)."""
        return self.admin.stats()

    def start(self) -> Fleet:
        """Start the replicas, wait until each is ready, then HAProxy, then the monitor."""
        self._workdir = Path(tempfile.mkdtemp(prefix="mlpipe-fleet-"))
        self._config_path = write_replica_config(self.settings, self._workdir / "replica.yaml")
        model_uri, version = resolve_version(self.model_uri)
        names = [f"r{index}" for index in range(1, self.settings.replicas + 1)]
        try:
            for name in names:
                self.replicas[name] = self.start_replica(name, model_uri, version)
            for replica in self.replicas.values():
                replica.wait_ready(self._stopping)
            if self.balanced:
                self._start_balancer(names)
        except BaseException:
            self.stop()
            raise
        self._baselines = {name: self._counters(name) for name in names} if self.balanced else {}
        self._monitor = threading.Thread(target=self._monitor_loop, name="fleet-monitor",
                                         daemon=True)
        self._monitor.start()
        log.info("fleet of %d replicas of %s (version %s), balance %s, at %s",
                 len(names), self.model_uri, version, self.settings.balance, self.url)
        return self

    def _start_balancer(self, names: list[str]) -> None:
        assert self._workdir is not None
        servers = [Server(name, LOOPBACK, self.replicas[name].port) for name in names]
        socket_path = self._workdir / "haproxy.sock"
        self.balancer = Balancer(render_config(self.settings, servers, socket_path,
                                               port=self.port),
                                 self._workdir, socket_path)
        self.balancer.start()
        self.balancer.wait_until_up(names, READY_TIMEOUT_S)

    def request_stop(self) -> None:
        """Ask the monitor and any wait in progress to end (safe in a signal handler)."""
        self._stopping.set()

    def stop(self) -> None:
        """Drain the balancer, then stop the replicas; safe to call more than once."""
        self._stopping.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join()
        grace = self.settings.graceful_shutdown_s
        if self._workdir is None:  # never started
            return
        if self.balancer is not None:
            code = self.balancer.soft_stop(grace)
            log.info("HAProxy drained and exited (%s)", code)
        for replica in self.replicas.values():  # SIGTERM all first: they drain in parallel
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas.values():
            replica.stop(grace)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- what the monitor and the roll use --------------------------------------------
    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    def start_replica(self, name: str, model_uri: str, version: str) -> Replica:
        assert self._workdir is not None, "the fleet is not started"
        return start_replica(name, model_uri, version, self._config_path, self._workdir,
                             self.command_prefix,
                             shared=None if self.balanced else (self.settings.host, self.port))

    def swap_in(self, name: str, replica: Replica) -> None:
        """Point slot `name` (in maint) at a ready `replica` and wait until HAProxy has it UP."""
        if self.balancer is None:  # reuseport: it listens on the shared port already
            self.replicas[name] = replica
            return
        self.admin.set_address(name, LOOPBACK, replica.port)
        self.admin.set_state(name, "ready")
        self.balancer.wait_until_up([name], READY_TIMEOUT_S)
        self.replicas[name] = replica

    def _counters(self, name: str) -> dict[str, int]:
        row = self.stats()[name]
        return {key: int(row[key] or 0) for key in ("eresp", "wretr", "wredis")}

    def _monitor_loop(self) -> None:
        next_poll = time.monotonic() + self.settings.watch_interval_s
        while not self._stopping.wait(MONITOR_INTERVAL_S):
            if self.balancer is not None and not self.balancer.alive and \
                    not self._restart_balancer():
                self.failed.set()
                return
            try:
                for name, replica in list(self.replicas.items()):
                    if replica.process.poll() is not None:
                        self._heal(name, replica)
                if self.watch and time.monotonic() >= next_poll:
                    follow_alias(self)
                    next_poll = time.monotonic() + self.settings.watch_interval_s
            except Exception:  # one failed repair must not end the monitoring: try again
                log.exception("the fleet monitor hit an error; carrying on")

    def _restart_balancer(self) -> bool:
        """Start HAProxy again in front of the replicas as they are now; False when it
        will not start (then the fleet stops: it cannot be reached any more)."""
        assert self.balancer is not None
        log.error("HAProxy (pid %d) exited with %s; restarting it. The end of its log %s:\n%s",
                  self.balancer.process.pid, self.balancer.process.returncode,
                  self.balancer.log_path, self.balancer.log_tail())
        try:
            self._start_balancer(list(self.replicas))
        except BalancerError as error:
            log.critical("HAProxy did not start again; stopping the fleet: %s", error)
            return False
        self._baselines = {name: self._counters(name) for name in self.replicas}
        self.balancer_restarts += 1
        return True

    def _heal(self, name: str, dead: Replica) -> None:
        """Replace a replica that exited; HAProxy sends its traffic elsewhere meanwhile."""
        if self.balanced:
            self.admin.set_state(name, "maint")  # out now, rather than after `fall` probes
        log.warning("replica %s (pid %d) exited with %s; restarting it:\n%s", name, dead.pid,
                    dead.process.returncode, dead.log_tail(1000))
        replacement = self.start_replica(name, dead.model_uri, dead.version)
        try:
            replacement.wait_ready(self._stopping)
        except ReplicaFailed as error:
            log.error("%s; trying again", error)
            replacement.stop(self.settings.graceful_shutdown_s)
            return
        self.swap_in(name, replacement)
        if not self.balanced:
            self.restarts.append(Restart(name, dead.pid, dead.process.returncode,
                                         replacement.pid, None, None, None))
            log.warning("replica %s restarted (pid %d)", name, replacement.pid)
            return
        now, before = self._counters(name), self._baselines[name]
        self._baselines[name] = now
        restart = Restart(name, dead.pid, dead.process.returncode, replacement.pid,
                          failed_attempts=now["eresp"] - before["eresp"],
                          retried=now["wretr"] - before["wretr"],
                          redispatched=now["wredis"] - before["wredis"])
        self.restarts.append(restart)
        log.warning("replica %s restarted (pid %d); HAProxy saw %d requests fail on it and "
                    "retried %d (%d on another replica)", name, replacement.pid,
                    restart.failed_attempts, restart.retried, restart.redispatched)


def run_fleet(model_uri: str, settings: ServingSettings, *, watch: bool = False,
              command_prefix: CommandPrefix | None = None) -> int:
    """What `mlpipe serve --replicas N` runs: a fleet until SIGTERM/SIGINT; the exit code."""
    fleet = Fleet(model_uri, settings, watch=watch, command_prefix=command_prefix)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: fleet.request_stop())
    try:
        fleet.start()
    except ReplicaFailed as failure:
        if fleet.stopping.is_set():  # stopped while starting: a clean exit
            return 0
        if failure.exit_code in (exit_codes.LOAD_FAILED, exit_codes.MODEL_REFUSED):
            log.critical("%s", failure)  # the replica's own code: why, for whoever started us
            return failure.exit_code
        raise
    while not fleet.stopping.wait(0.5):
        if fleet.failed.is_set():
            break
    log.info("stopping: draining HAProxy, then the replicas")
    fleet.stop()
    return 1 if fleet.failed.is_set() else 0
