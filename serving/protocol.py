"""uvicorn's HTTP protocol with a deadline on a request's headers (slowloris).

uvicorn bounds the idle time between requests (``timeout_keep_alive``) but not the time a
client takes to send a request's headers: a connection that sends a byte a second, or
nothing at all, is held for ever, and enough of them exhaust the process's descriptors.
Here a connection must deliver each request's headers within ``request_read_timeout_s``
of its first byte (or of the connection's opening), else it gets ``408`` and is closed.
The body has the same allowance, enforced where it is read (serving/inference.py). A
replica behind HAProxy is protected by the balancer's ``timeout http-request`` as well;
this guards a server reached directly.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
             b"content-length: 40\r\nconnection: close\r\n\r\n"
             b"request headers not received in time\r\n\r\n")
# uvicorn's `http` option: the class by import string, so a worker process finds it too.
PROTOCOL = "serving.protocol:HeaderDeadlineProtocol"


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """httptools' protocol, closing a connection whose headers are late."""

    # Set once per process before it serves (`set_read_timeout`); uvicorn builds the
    # protocol itself, one per connection, with only its own config.
    read_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.write(TIMED_OUT)
            self.transport.close()


def set_read_timeout(seconds: float) -> None:
    """The headers' allowance for every connection this process accepts from now on."""
    HeaderDeadlineProtocol.read_timeout_s = seconds
