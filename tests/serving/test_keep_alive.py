"""Idle keep-alive connections: the server keeps them, and the load generator copes when not."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

from lab.loadtest.open_loop import Target, run_open_loop
from tests.serving.conftest import ServerProcess, start_server
from tests.serving.models import flight_records

BODY = json.dumps({"dataframe_split": flight_records(1, seed=3).to_dict(
    orient="split", index=False)}).encode()


def post(sock: socket.socket, port: int) -> bytes:
    """Send one request and read its whole response (headers and body may come apart), so
    the next request on the connection reads its own answer, not the rest of this one."""
    sock.sendall(f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
                 .encode() + BODY)
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(65536) or b"<closed>\r\n\r\n"
    head, _, body = response.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_an_idle_connection_outlives_uvicorns_five_second_default(
        linear_server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", linear_server.port), timeout=10) as sock:
        assert post(sock, linear_server.port).startswith(b"HTTP/1.1 200")
        time.sleep(6)
        assert post(sock, linear_server.port).startswith(b"HTTP/1.1 200")


def test_load_generator_resends_on_connections_the_server_closed_while_idle(
        linear_uri: str, tmp_path: Path) -> None:
    server = start_server(linear_uri, tmp_path, "--keep-alive-s", "0.05")
    try:
        target = Target("127.0.0.1", server.port, "/invocations", BODY,
                        {"Content-Type": "application/json"})
        # At 20 req/s most gaps exceed 50 ms, so most pooled connections are closed
        # by the server by the time they are reused.
        result = asyncio.run(run_open_loop(target, rate=20, duration_s=3))
        assert set(result.codes) == {200}, result.codes
        assert result.ok >= 40
    finally:
        server.stop()
