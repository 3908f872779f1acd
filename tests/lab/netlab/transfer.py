"""Send bytes from one emulated host to another and time it: a real TCP transfer.

Run as ``python -m tests.lab.netlab.transfer serve PORT`` on the receiver and
``... send ADDRESS PORT BYTES`` on the sender, each inside its host's namespace.
"""

from __future__ import annotations

import json
import socket
import sys
import time


def serve(port: int) -> None:
    with socket.create_server(("0.0.0.0", port)) as server:
        print("ready", flush=True)
        connection, _ = server.accept()
        with connection:
            received = 0
            while chunk := connection.recv(1 << 20):
                received += len(chunk)
            connection.sendall(json.dumps({"received": received}).encode())


def send(address: str, port: int, size: int) -> None:
    payload = bytes(size)
    with socket.create_connection((address, port), timeout=30) as connection:
        start = time.perf_counter()
        connection.sendall(payload)
        connection.shutdown(socket.SHUT_WR)
        reply = json.loads(connection.recv(1024))
        print(json.dumps({"seconds": time.perf_counter() - start, **reply}))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
