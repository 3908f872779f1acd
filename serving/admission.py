"""Admission control: shed inference requests beyond `max_queue` before their bodies are read,
and bound the memory their bodies take while they arrive.

Under overload most requests are refused, so what a refusal costs decides how much of
the machine is left for the requests that are served. Refusing at the batcher (as
`QueueFull` does) comes after routing, reading the body, JSON decoding and converting
it to arrays: per refused request as much event-loop time as a served one, time the
model thread then lacks (on two cores it also waits for the GIL behind that work).
The inference routes (serving/inference.py, plain ASGI in front of everything else)
count their requests in flight here (from arrival to the end of the response) and
answer the one over the limit with a 503 built once at start-up, before its body is
read.

A client that retries before its `Retry-After` has passed (a closed-loop client with
no back-off resends at once) would keep the event loop busy refusing it.
`shed_hold_ms` holds the answer to such a retry on the same connection that long
(a sleeping coroutine costs nothing) and then refuses it again, so such clients get
their 503s at a bounded rate and the served requests keep the CPU; a request that
arrives after the hold, or finds a free slot, is admitted or refused on its merits. The
price: a new request that a client's pool sends on such a connection while the server is
still full is held like a retry (there is no telling them apart).

A slot is taken once a request's body has arrived, not when its headers do: a client that
sends its body slowly (or never) must not hold one of the `max_queue` slots every other
client needs, which let a hundred slow bodies make every request 503. A full server still
refuses before reading a body (`full`). While they arrive, bodies are bounded instead by
`request_read_timeout_s` (then 408) and together by `max_body_bytes_in_flight`
(`BodyBudget`): many large requests at once get 503 beyond it rather than the process
growing until the kernel kills it.

Health, metadata and metrics endpoints are never shed: a balancer's health checks must
keep working when the server is at capacity.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import Scope, Send

from serving.metrics import REJECTED, REQUESTS
from serving.replies import INVOCATIONS, KSERVE_INFER, error_for, retry_after, send_reply
from serving.settings import ServingSettings

MESSAGE = "the server is at capacity; retry after the Retry-After interval"


class Admission:
    """Admit inference requests while fewer than `max_queue` are in flight; refuse the rest."""

    def __init__(self, settings: ServingSettings) -> None:
        self.limit = settings.max_queue
        self.hold_s = settings.shed_hold_ms / 1000
        self.in_flight = 0
        # When each connection (client address and port) last got a 503 from here.
        self._last_shed: dict[tuple[str, int], float] = {}
        self._last_sweep = 0.0
        self._refusals = {endpoint: error_for(endpoint)(503, MESSAGE, retry_after(settings))
                          for endpoint in (INVOCATIONS, KSERVE_INFER)}
        self._rejected = REJECTED.labels("queue_full")
        self._counted = {endpoint: REQUESTS.labels(endpoint, "503")
                         for endpoint in self._refusals}

    def full(self) -> bool:
        """No slot is free: refuse a new request before reading its body."""
        return self.in_flight >= self.limit

    def admit(self) -> bool:
        """Take a slot for a request whose body arrived; False when none is free (then
        `refuse` it)."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        """Give back the slot of a request whose response has been sent."""
        self.in_flight -= 1

    async def refuse(self, scope: Scope, endpoint: str, send: Send) -> None:
        """Answer 503 + Retry-After, after the hold when this connection was just refused."""
        client = scope.get("client")
        if self.hold_s > 0 and client is not None:
            now = time.monotonic()
            last = self._last_shed.get(client)
            if last is not None and now - last < self.hold_s:
                await asyncio.sleep(self.hold_s - (now - last))
                now = time.monotonic()
            self._last_shed[client] = now
            self._forget_idle(now)
        self._rejected.inc()
        self._counted[endpoint].inc()
        await send_reply(send, self._refusals[endpoint])

    def _forget_idle(self, now: float) -> None:
        """Drop connections not refused for a while: the map stays as small as the
        set of connections being refused."""
        if now - self._last_sweep < 10 * max(self.hold_s, 0.1):
            return
        self._last_sweep = now
        horizon = now - self.hold_s
        self._last_shed = {client: at for client, at in self._last_shed.items()
                           if at >= horizon}



class BodyBudget:
    """The bytes of request bodies held at once, received or arriving, bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def reserve(self, size: int) -> bool:
        """Hold ``size`` more bytes; False (and nothing held) when over the limit."""
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        self.held -= size
