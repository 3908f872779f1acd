"""`--watch` for a fleet: roll a new version through the replicas one at a time.

For each replica in turn: start a fresh replica serving the pinned new version on a new
port and wait until it is ready (the fleet still has N ready replicas), set the old one
to `drain` in HAProxy (no new requests) and wait until it holds none, then point the
slot at the new process, set it ready, wait until the health check has it UP, and stop
the old one. At most one replica is out at any time, so at least N-1 stay ready, and
every answer comes from one process serving one version, which it names in
`x-model-version`. Starting the new process first means the slot is out only for the
drain, not for the model load, at the cost of one extra model copy in memory meanwhile.

A version whose new replica the provenance checks refused (exit code
`exit_codes.MODEL_REFUSED`) is not tried again until the alias names another: it would
be refused at every poll, each time a process start and a download. One that failed for
another reason is tried again, each time after twice the wait before (from the poll
interval up to `MAX_RETRY_WAIT_S`), as the registry or the store may come back.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from serving import exit_codes
from serving.fleet.haproxy_admin import HAProxyAdmin
from serving.fleet.replicas import Replica, ReplicaFailed
from serving.registry import resolve_version
from serving.settings import ServingSettings

log = logging.getLogger(__name__)

DRAIN_POLL_S = 0.05
MAX_RETRY_WAIT_S = 300.0


@dataclass
class RollAttempts:
    """What earlier rolls learnt of the versions they could not bring in."""

    refused: str | None = None  # refused by provenance: skipped while the alias names it
    failed: str | None = None  # failed to start: tried again after `retry_at`
    failures: int = 0
    retry_at: float = 0.0

    def worth_trying(self, version: str, now: float) -> bool:
        if version == self.refused:
            return False
        self.refused = None  # the alias moved on: coming back to it is a new attempt
        return version != self.failed or now >= self.retry_at

    def record(self, version: str, failure: ReplicaFailed, interval_s: float,
               now: float) -> None:
        if failure.exit_code == exit_codes.MODEL_REFUSED:
            self.refused = version
            return
        self.failures = self.failures + 1 if version == self.failed else 1
        self.failed = version
        self.retry_at = now + min(MAX_RETRY_WAIT_S, interval_s * 2 ** self.failures)


class RollingFleet(Protocol):
    """What a roll needs of a fleet (:class:`serving.fleet.supervisor.Fleet` is one), so
    that this module does not import the supervisor that calls it."""

    model_uri: str
    settings: ServingSettings
    replicas: dict[str, Replica]
    roll_attempts: RollAttempts

    @property
    def admin(self) -> HAProxyAdmin: ...

    @property
    def stopping(self) -> threading.Event: ...

    def stats(self) -> dict[str, dict[str, str]]: ...

    def start_replica(self, name: str, model_uri: str, version: str) -> Replica: ...

    def swap_in(self, name: str, replica: Replica) -> None: ...


def follow_alias(fleet: RollingFleet) -> None:
    """Roll to the alias's version if any replica serves another; errors are logged."""
    try:
        model_uri, version = resolve_version(fleet.model_uri)
    except Exception:  # the registry failing must not stop serving
        log.exception("could not resolve %s; the fleet keeps its version", fleet.model_uri)
        return
    attempts = fleet.roll_attempts
    behind = any(replica.version != version for replica in fleet.replicas.values())
    if not behind or not attempts.worth_trying(version, time.monotonic()):
        return
    log.info("%s now points at version %s; rolling it through the replicas",
             fleet.model_uri, version)
    try:
        roll(fleet, model_uri, version)
    except ReplicaFailed as failure:
        attempts.record(version, failure, fleet.settings.watch_interval_s, time.monotonic())
        if attempts.refused == version:
            log.error("version %s of %s is refused; not trying it again until the alias "
                      "moves: %s", version, fleet.model_uri, failure)
        else:
            log.error("could not roll to version %s (attempt %d), trying again in %.0f s: %s",
                      version, attempts.failures,
                      attempts.retry_at - time.monotonic(), failure)
        return
    if not fleet.stopping.is_set():
        log.info("every replica now serves version %s", version)


def roll(fleet: RollingFleet, model_uri: str, version: str) -> None:
    """Bring every replica to `version`; ReplicaFailed if a new replica failed (the ones
    already rolled keep the new version). A stop in the middle ends it early."""
    for name in sorted(fleet.replicas):
        old = fleet.replicas[name]
        if old.version == version:
            continue
        new = fleet.start_replica(name, model_uri, version)
        try:
            new.wait_ready(fleet.stopping)
        except ReplicaFailed:
            new.stop(fleet.settings.graceful_shutdown_s)
            if fleet.stopping.is_set():
                return
            raise
        if fleet.stopping.is_set():  # the fleet's own stop drains the old one
            new.stop(fleet.settings.graceful_shutdown_s)
            return
        fleet.admin.set_state(name, "drain")
        _wait_until_idle(fleet, name)
        fleet.admin.set_state(name, "maint")
        fleet.swap_in(name, new)
        old.stop(fleet.settings.graceful_shutdown_s)
        log.info("replica %s now serves version %s (pid %d)", name, version, new.pid)


def _wait_until_idle(fleet: RollingFleet, name: str) -> None:
    """Until HAProxy has no request in flight or queued on `name` (bounded by the grace)."""
    deadline = time.monotonic() + fleet.settings.graceful_shutdown_s
    while time.monotonic() < deadline and not fleet.stopping.is_set():
        row = fleet.stats()[name]
        if int(row["scur"] or 0) == 0 and int(row["qcur"] or 0) == 0:
            return
        time.sleep(DRAIN_POLL_S)
    log.warning("replica %s still busy after %.0f s of drain; replacing it anyway", name,
                fleet.settings.graceful_shutdown_s)
