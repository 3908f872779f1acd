"""Slow clients (slowloris): connections that send a request's headers, or its body, a
byte a second, held open beside a normal open-loop client (open_loop.py).

A server that waits for them without a deadline, or lets them hold what a normal request
needs (an admission slot, a worker), fails the normal client; one that bounds them
answers each 408 when its allowance passes and serves the normal client as before.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from lab.loadtest.open_loop import LoadResult, Target, run_open_loop

SEND_INTERVAL_S = 1.0


@dataclass
class SlowLoad:
    """What the slow clients and the normal client saw."""

    normal: LoadResult
    header_answers: list[bytes]
    body_answers: list[bytes]
    normal_s: float


def _request_head(target: Target, length: int) -> bytes:
    lines = [f"POST {target.path} HTTP/1.1", f"Host: {target.host}",
             *(f"{key}: {value}" for key, value in target.headers.items()),
             f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _trickle(writer: asyncio.StreamWriter, data: bytes, stop: asyncio.Event) -> None:
    for index in range(len(data)):
        if stop.is_set():
            return
        writer.write(data[index:index + 1])
        await writer.drain()
        await asyncio.sleep(SEND_INTERVAL_S)


async def _slow_request(target: Target, sent_at_once: bytes, trickled: bytes,
                        stop: asyncio.Event, until: bytes | None) -> bytes:
    """Send ``sent_at_once``, then ``trickled`` a byte a second; the server's answer (up to
    ``until``, else its first read), or b"" when it closed without one."""
    try:
        reader, writer = await asyncio.open_connection(target.host, target.port)
    except OSError as error:
        return f"connect failed: {error}".encode()
    writer.write(sent_at_once)
    sender = asyncio.ensure_future(_trickle(writer, trickled, stop))
    try:
        if until is None:
            return await reader.read(4096)
        return await reader.readuntil(until)
    except (OSError, asyncio.IncompleteReadError) as error:
        return getattr(error, "partial", b"")
    finally:
        sender.cancel()
        writer.close()


async def slow_clients_beside(target: Target, *, rate: float, duration_s: float,
                              slow_headers: int = 1000, slow_bodies: int = 100,
                              settle_s: float = 0.3, answer_within_s: float = 15.0) -> SlowLoad:
    """Hold ``slow_headers`` connections sending headers a byte a second and
    ``slow_bodies`` whose headers arrive whole and whose body trickles, then run the normal
    client at ``rate`` for ``duration_s``; wait at most ``answer_within_s`` more for the
    slow clients' answers (one that got none reads b"")."""
    stop = asyncio.Event()
    head = _request_head(target, len(target.body))
    header_clients = [asyncio.ensure_future(_slow_request(target, b"", head, stop, None))
                      for _ in range(slow_headers)]
    body_clients = [asyncio.ensure_future(_slow_request(target, head, target.body, stop, b"}"))
                    for _ in range(slow_bodies)]
    await asyncio.sleep(settle_s)
    started = time.monotonic()
    normal = await run_open_loop(target, rate=rate, duration_s=duration_s)
    normal_s = time.monotonic() - started
    await asyncio.wait([*header_clients, *body_clients], timeout=answer_within_s)
    stop.set()
    for client in (*header_clients, *body_clients):
        client.cancel()
    await asyncio.gather(*header_clients, *body_clients, return_exceptions=True)
    return SlowLoad(normal, _answers(header_clients), _answers(body_clients), normal_s)


def _answers(clients: list[asyncio.Future]) -> list[bytes]:
    return [b"" if client.cancelled() else client.result() for client in clients]
