"""A real HTTP server in front of another that forwards every request and counts the paths
asked for: how a test sees how often a client talks to a server."""

from __future__ import annotations

import http.client
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from pipelines.services.processes import LOOPBACK

# Hop-by-hop headers are the proxy's own business, not the answer's.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@contextmanager
def counting_proxy(upstream: str, down_after_writes: int | None = None,
                   ) -> Iterator[tuple[str, Counter[str]]]:
    """``(url, counts)``: requests to ``url`` reach ``upstream``; ``counts[path]`` grows
    with each request for ``path`` (query strings left out).

    ``down_after_writes`` N: the server goes down once N writes have gone through: from
    the next write on, every request is answered by a closed connection, as a server
    killed then would answer (``counts["<refused>"]`` counts them).
    """
    target = urlsplit(upstream)
    counts: Counter[str] = Counter()
    writes = 0
    lock = threading.Lock()

    class Forward(BaseHTTPRequestHandler):
        def forward(self) -> None:
            nonlocal writes
            with lock:
                if self.command in WRITES:
                    writes += 1
                down = down_after_writes is not None and writes > down_after_writes
            if down:
                counts["<refused>"] += 1
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            counts[urlsplit(self.path).path] += 1
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
            finally:
                connection.close()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = forward

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # the counts are the record

    server = ThreadingHTTPServer((LOOPBACK, 0), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}", counts
    finally:
        server.shutdown()
        server.server_close()
