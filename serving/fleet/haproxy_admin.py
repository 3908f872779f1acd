"""A client for HAProxy's runtime API over its stats socket (no dependency beyond socket).

The supervisor steers the balancer with it: a replica is set to `drain` (no new requests,
those in flight finish), `maint` (out at once) or `ready`, moved to a new port, and read
back from `show stat` (sessions in flight, health status, error and retry counters).
"""

from __future__ import annotations

import csv
import io
import socket
from pathlib import Path

from serving.fleet.haproxy_config import BACKEND

STATES = ("ready", "drain", "maint")


class HAProxyError(RuntimeError):
    """HAProxy refused a runtime command; the message is its answer."""


class HAProxyAdmin:
    """One command per connection, as HAProxy's non-interactive mode expects."""

    def __init__(self, socket_path: Path, timeout_s: float = 5.0) -> None:
        self.socket_path = socket_path
        self.timeout_s = timeout_s

    def command(self, line: str) -> str:
        """Send one runtime command and return HAProxy's whole answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(self.timeout_s)
            connection.connect(str(self.socket_path))
            connection.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """`show stat` of the replicas' backend, by server name (`BACKEND` for the total).

        Useful columns: `status` (UP, DOWN, DRAIN, MAINT, or `UP 1/2` on the way),
        `scur` (requests in flight), `qcur` (waiting in HAProxy's queue), `stot` (total),
        `eresp` (answers that failed), `wretr`/`wredis` (retries, redispatches),
        `hrsp_5xx`.
        """
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {row["svname"]: row for row in rows if row["pxname"] == BACKEND}

    def set_state(self, server: str, state: str) -> None:
        """Admin state of one replica: `ready`, `drain` or `maint`."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        self._expect_silence(f"set server {BACKEND}/{server} state {state}")

    def set_address(self, server: str, host: str, port: int) -> None:
        """Point a replica's name at a new process; its counters and name stay."""
        answer = self.command(f"set server {BACKEND}/{server} addr {host} port {port}")
        if "changed" not in answer and "no need to change" not in answer:
            raise HAProxyError(answer.strip())

    def _expect_silence(self, line: str) -> None:
        answer = self.command(line).strip()
        if answer:
            raise HAProxyError(f"{line!r}: {answer}")
