"""An open-loop HTTP load generator: Poisson arrivals at a set rate.

Open loop means a request is due at its arrival time whatever happened to earlier
ones, and its latency counts from that time: a slow server cannot throttle the load
and hide its latency (no coordinated omission). The client is a minimal HTTP/1.1
keep-alive client over asyncio streams, so that on a shared 2-core machine it costs
the server as little CPU as possible; it opens a new connection whenever none is idle,
up to `max_connections`, beyond which requests wait (and that wait counts).

Like any pooled HTTP client it must cope with the server closing an idle keep-alive
connection (uvicorn does after `keep_alive_s`): a pooled connection the server has
already closed is discarded, and a request whose pooled connection is closed before
any byte of a response arrived is sent once more on a new connection. Such a request
never reached the application, so resending it is safe and is what real clients do.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Target:
    """What to send: one fixed request, sent over and over."""

    host: str
    port: int
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    rows: int = 1

    def request_bytes(self) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Length: {len(self.body)}",
                 *(f"{name}: {value}" for name, value in self.headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class LoadResult:
    """Latencies (seconds, from each request's due time) and status codes of one run."""

    rate: float
    duration_s: float
    rows_per_request: int
    ok_latencies: list[float] = field(default_factory=list)
    codes: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    bodies: list[bytes] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.codes.get(200, 0)

    @property
    def throughput(self) -> float:
        """Successful requests per second over the whole run."""
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.ok_latencies, q)) if self.ok_latencies else float("nan")

    def summary(self) -> dict[str, float]:
        return {
            "offered_rps": self.rate, "ok_rps": round(self.throughput, 1),
            "ok_rows_per_s": round(self.throughput * self.rows_per_request, 1),
            "p50_ms": round(self.percentile(50) * 1e3, 2),
            "p95_ms": round(self.percentile(95) * 1e3, 2),
            "p99_ms": round(self.percentile(99) * 1e3, 2),
            "sent": sum(self.codes.values()),
            "errors": sum(self.codes.values()) - self.ok,
        }


class _ClosedBeforeResponse(Exception):
    """The server closed the connection without sending a byte of a response."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        return cls(*await asyncio.open_connection(host, port))

    @property
    def closed_by_server(self) -> bool:
        return self.reader.at_eof()

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if not error.partial:
                raise _ClosedBeforeResponse from error
            raise
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


async def run_open_loop(target: Target, rate: float, duration_s: float, *,
                        max_connections: int = 256, timeout_s: float = 10.0, seed: int = 0,
                        keep_bodies: bool = False) -> LoadResult:
    """Send Poisson arrivals at `rate` per second for `duration_s` seconds, then wait
    (at most `timeout_s`) for the stragglers."""
    rng = np.random.default_rng(seed)
    count = max(1, int(rate * duration_s))
    due_offsets = np.cumsum(rng.exponential(1.0 / rate, count))
    due_offsets = due_offsets[due_offsets <= duration_s]
    request = target.request_bytes()
    result = LoadResult(rate, duration_s, target.rows)
    idle: list[_Connection] = []
    slots = asyncio.Semaphore(max_connections)

    def pooled() -> _Connection | None:
        while idle:
            connection = idle.pop()
            if not connection.closed_by_server:
                return connection
            connection.close()
        return None

    async def send(connection: _Connection | None) -> tuple[_Connection, int, bytes]:
        if connection is not None:
            try:
                return connection, *await connection.exchange(request)
            except (_ClosedBeforeResponse, ConnectionResetError):
                connection.close()  # closed while idle: resend on a new connection
        fresh = await _Connection.open(target.host, target.port)
        try:
            return fresh, *await fresh.exchange(request)
        except BaseException:
            fresh.close()
            raise

    async def one(due: float) -> None:
        async with slots:
            connection = pooled()
            try:
                async with asyncio.timeout(timeout_s):
                    connection, status, body = await send(connection)
            except (OSError, asyncio.IncompleteReadError, _ClosedBeforeResponse,
                    TimeoutError, ValueError):
                result.codes["transport_error"] += 1
                if connection is not None:
                    connection.close()
                return
            latency = time.perf_counter() - due
            result.codes[status] += 1
            if status == 200:
                result.ok_latencies.append(latency)
            if keep_bodies:
                result.bodies.append(body)
            idle.append(connection)

    start = time.perf_counter()
    tasks = []
    for offset in due_offsets:
        due = start + offset
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    result.elapsed_s = time.perf_counter() - start
    for connection in idle:
        connection.close()
    return result
