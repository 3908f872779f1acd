"""Hostile or broken clients against a server reached directly, without a balancer: those
that send headers or a body slowly, or many large bodies at once, cost only themselves.

The model sleeps 20 ms per call and batches at most 4 rows (about 200 single-row
requests/s), and the server admits 16 requests at once: before bodies were read ahead of
admission, 100 slow bodies held every slot and every other request got 503.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab.loadtest.open_loop import Target
from lab.loadtest.slow_clients import slow_clients_beside
from tests.serving.conftest import ServerProcess, start_server
from tests.serving.models import log_slow_model

READ_TIMEOUT_S = 5
MAX_QUEUE = 16
MAX_REQUEST_BYTES = 1 << 20
BODY_BUDGET = 4 * MAX_REQUEST_BYTES
HALF_CAPACITY_RPS = 100


@pytest.fixture(scope="module")
def server(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("slow-clients")
    version = log_slow_model("slow-clients", delay_s=0.02, log_path=folder / "rows.log")
    server = start_server(
        f"models:/slow-clients/{version}", folder,
        "--max-batch-size", "4", "--allowed-batch-sizes", "[1, 2, 4]", "--max-delay-ms", "2",
        "--max-queue", str(MAX_QUEUE), "--request-read-timeout-s", str(READ_TIMEOUT_S),
        "--max-request-bytes", str(MAX_REQUEST_BYTES),
        "--max-body-bytes-in-flight", str(BODY_BUDGET))
    yield server
    server.stop()


def score(rows: int = 1, padding: int = 0) -> bytes:
    """A scoring request; ``padding`` trailing spaces make it large and still valid JSON."""
    body = json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1.0]] * rows}})
    return body.encode() + b" " * padding


def test_slow_headers_and_bodies_cost_a_normal_client_nothing_and_get_408(
        server: ServerProcess) -> None:
    target = Target("127.0.0.1", server.port, "/invocations", score(),
                    {"Content-Type": "application/json"})
    load = asyncio.run(slow_clients_beside(target, rate=HALF_CAPACITY_RPS, duration_s=2))

    assert load.normal_s < READ_TIMEOUT_S, "the slow clients' allowance passed during the run"
    summary = load.normal.summary()
    assert summary["errors"] == 0 and summary["sent"] > HALF_CAPACITY_RPS, load.normal.codes
    # Far below the slow clients' 5 s: no normal request waited behind one (the latency
    # itself is measured in bench/slow_clients.py, on a quiet machine).
    assert summary["p99_ms"] < 1000, summary
    # Each slow client was answered 408 once its allowance passed, and its connection closed.
    assert {answer[:12] for answer in load.header_answers} == {b"HTTP/1.1 408"}
    assert {answer[:12] for answer in load.body_answers} == {b"HTTP/1.1 408"}
    assert all(b"serving.request_read_timeout_s" in answer for answer in load.body_answers)


def test_a_connection_that_sends_nothing_is_closed_after_the_allowance(
        server: ServerProcess) -> None:
    async def idle() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(4096), READ_TIMEOUT_S + 5)
        writer.close()
        return answer, time.monotonic() - started

    answer, waited = asyncio.run(idle())
    assert answer.startswith(b"HTTP/1.1 408")
    assert READ_TIMEOUT_S - 0.5 < waited < READ_TIMEOUT_S + 2


def test_many_large_bodies_at_once_stay_within_the_memory_budget(server: ServerProcess) -> None:
    large = score(padding=MAX_REQUEST_BYTES - 200)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30,
                                     limits=httpx.Limits(max_connections=40)) as http:
            return await asyncio.gather(*(http.post("/invocations", content=large,
                                                    headers={"Content-Type": "application/json"})
                                          for _ in range(40)))

    replies = asyncio.run(burst())
    codes = [reply.status_code for reply in replies]
    assert set(codes) <= {200, 503}, codes
    assert codes.count(200) >= 4, codes
    over = [reply for reply in replies if reply.status_code == 503]
    assert over and all("serving.max_body_bytes_in_flight" in reply.text or
                        "capacity" in reply.text for reply in over)
    assert all(reply.headers.get("retry-after") for reply in over)
    # Nothing stays held: a request now is served as if the burst had not happened.
    assert httpx.post(f"{server.url}/invocations", content=score(),
                      headers={"Content-Type": "application/json"}).status_code == 200
