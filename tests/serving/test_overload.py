"""Overload, deadlines, auth and shutdown, against a server whose model is slow on purpose.

The model sleeps 20 ms per call and batches at most 4 rows, so it sustains about 200
single-row requests/s; every row it runs is appended to a file, so a test can prove a
request was never run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from lab.loadtest.open_loop import Target, run_open_loop
from lab.loadtest.wrk import Request, run_wrk, wrk_available
from serving.auth import TOKEN_ENV
from tests.serving.conftest import GRACEFUL_EXIT, ServerProcess, start_server
from tests.serving.models import log_slow_model

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SUSTAINABLE_RPS = 200
MAX_QUEUE = 16
# conf/serving.yaml's shed_hold_ms, which these servers keep.
HOLD_S = 1.0


@pytest.fixture(scope="module")
def model_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("slow-model") / "rows.log"


@pytest.fixture(scope="module")
def slow_server(registry: Path, model_log: Path, tmp_path_factory: pytest.TempPathFactory,
                ) -> Iterator[ServerProcess]:
    version = log_slow_model("slow", delay_s=0.02, log_path=model_log)
    server = start_server(
        f"models:/slow/{version}", tmp_path_factory.mktemp("slow-server"),
        "--max-batch-size", "4", "--allowed-batch-sizes", "[1, 2, 4]", "--max-delay-ms", "2",
        "--max-queue", str(MAX_QUEUE), "--retry-after-s", "2", env={TOKEN_ENV: TOKEN})
    yield server
    server.stop()


def score(x: float, rows: int = 1) -> bytes:
    return json.dumps({"dataframe_split": {"columns": ["x"], "data": [[x]] * rows}}).encode()


async def post_many(server: ServerProcess, count: int, x: float = 1.0) -> list[tuple]:
    """`count` requests at once; (status, seconds, Retry-After) for each."""
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30,
                                 limits=httpx.Limits(max_connections=count)) as http:
        async def one() -> tuple:
            start = time.perf_counter()
            response = await http.post("/invocations", content=score(x))
            return (response.status_code, time.perf_counter() - start,
                    response.headers.get("retry-after"))
        return await asyncio.gather(*(one() for _ in range(count)))


def test_full_queue_answers_503_with_retry_after_at_once(slow_server: ServerProcess) -> None:
    outcomes = asyncio.run(post_many(slow_server, 60))
    refused = [outcome for outcome in outcomes if outcome[0] == 503]
    served = [outcome for outcome in outcomes if outcome[0] == 200]
    assert refused and served
    assert len(refused) + len(served) == 60
    assert all(retry_after == "2" for _, _, retry_after in refused)
    assert max(seconds for _, seconds, _ in refused) < max(seconds for _, seconds, _ in served)
    metrics = httpx.get(f"{slow_server.url}/metrics", headers=AUTH).text
    assert 'mlpipe_serving_rejected_total{reason="queue_full"}' in metrics


def test_admitted_requests_keep_a_bounded_p99_at_twice_the_sustainable_rate(
        slow_server: ServerProcess) -> None:
    target = Target("127.0.0.1", slow_server.port, "/invocations", score(1.0),
                    {"Content-Type": "application/json", **AUTH})
    # The load generator reuses a connection whatever it last got, so a request that meets
    # a full server on a connection refused within the last HOLD_S is held that long: about
    # 200 connections sit in holds at once, more than the default pool of 256 leaves spare.
    result = asyncio.run(run_open_loop(target, rate=2 * SUSTAINABLE_RPS, duration_s=3,
                                       max_connections=1024))
    # Unbounded, the backlog would grow by 200 requests a second, 3 s deep at the end; the
    # bound (16 queued = 4 batches) keeps the queue near 0.1 s. A request sent on a
    # connection refused within the last HOLD_S waits out that hold before it is admitted,
    # so an admitted request's latency is bounded by HOLD_S plus the queue: on a busy
    # machine more requests meet a hold, and the 99th percentile is one of them.
    assert result.codes[503] > 0.2 * result.rate * result.duration_s
    assert result.ok > 0.3 * SUSTAINABLE_RPS * result.duration_s
    assert result.percentile(99) < HOLD_S + 0.5, result.summary()


def test_requests_whose_deadline_passes_in_the_queue_get_504_and_never_run(
        slow_server: ServerProcess, model_log: Path) -> None:
    async def scenario() -> tuple[int, str, list[int]]:
        async with httpx.AsyncClient(base_url=slow_server.url, headers=AUTH, timeout=30,
                                     limits=httpx.Limits(max_connections=16)) as http:
            # 12 requests of 10 rows: about 36 model calls of 20 ms queued ahead, so the
            # two 10 ms deadlines below pass while their requests still wait in the queue.
            backlog = [asyncio.ensure_future(http.post("/invocations",
                                                       content=score(1.0, 10)))
                       for _ in range(12)]
            async with asyncio.timeout(10):
                while queue_depth((await http.get("/metrics")).text) < 6:
                    await asyncio.sleep(0.005)
            expired, triton_status = await asyncio.gather(
                http.post("/invocations", content=score(777.0),
                          headers={"X-Request-Timeout-Ms": "10"}),
                asyncio.to_thread(triton_with_deadline, slow_server, 888.0, 10_000))
            return (expired.status_code, triton_status,
                    [(await response).status_code for response in backlog])

    status, triton_status, backlog = asyncio.run(scenario())
    assert (status, triton_status) == (504, "504")
    assert backlog == [200] * 12
    seen = model_log.read_text().split()
    assert "1.0" in seen
    assert "777.0" not in seen and "888.0" not in seen


def triton_with_deadline(server: ServerProcess, x: float, timeout_us: int) -> str:
    """One KServe request with Triton's own per-request timeout parameter; its status."""
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    tensor = triton.InferInput("x", [1], "FP64")
    tensor.set_data_from_numpy(np.array([x]))
    try:  # a copy: tritonclient adds its own headers to the dict it is given
        client.infer("slow", [tensor], headers=dict(AUTH), timeout=timeout_us)
    except InferenceServerException as error:
        return error.status()
    return "200"


def test_auth_guards_everything_but_health(slow_server: ServerProcess) -> None:
    url = slow_server.url
    for path in ("/v2/health/live", "/v2/health/ready", "/ping"):
        assert httpx.get(url + path).status_code == 200
    for path in ("/v2/models/slow", "/metrics", "/openapi.json"):
        assert httpx.get(url + path).status_code == 401
        assert httpx.get(url + path, headers=AUTH).status_code == 200
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.post(f"{url}/invocations", content=score(1.0), headers=wrong).status_code == 401
    assert httpx.post(f"{url}/invocations", content=score(1.0), headers=AUTH).status_code == 200
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    with pytest.raises(InferenceServerException):
        client.get_model_metadata("slow")
    assert client.get_model_metadata("slow", headers=dict(AUTH))["name"] == "slow"


def test_sigterm_finishes_in_flight_requests_then_exits(
        registry: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("shutdown")
    version = log_slow_model("slower", delay_s=0.3, log_path=folder / "rows.log")
    server = start_server(f"models:/slower/{version}", folder, "--max-batch-size", "1",
                          "--allowed-batch-sizes", "[1]")

    async def scenario() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            in_flight = [asyncio.ensure_future(http.post("/invocations", content=score(i)))
                         for i in range(3)]
            await asyncio.sleep(0.15)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.15)
            with pytest.raises(httpx.ConnectError):
                await http.get("/v2/health/live")
            return [(await response).status_code for response in in_flight]

    assert asyncio.run(scenario()) == [200, 200, 200]
    assert server.process.wait(30) in GRACEFUL_EXIT
    assert "Finished server process" in server.log_tail()


@contextlib.asynccontextmanager
async def held_full(server: ServerProcess) -> AsyncIterator[None]:
    """Keep the server at capacity for about 4 s: `max_queue` requests of 50 rows, each
    13 model calls of 20 ms, run one after another. Yields once all are queued."""
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30,
                                 limits=httpx.Limits(max_connections=MAX_QUEUE + 1)) as http:
        backlog = [asyncio.ensure_future(http.post("/invocations", content=score(5.0, 50)))
                   for _ in range(MAX_QUEUE)]
        async with asyncio.timeout(10):
            while queue_depth((await http.get("/metrics")).text) < MAX_QUEUE - 1:
                await asyncio.sleep(0.05)
        yield
        assert [(await response).status_code for response in backlog] == [200] * MAX_QUEUE


def queue_depth(metrics_text: str) -> float:
    """Requests waiting for the model (all admitted ones but the one it runs, when full)."""
    line = next(line for line in metrics_text.splitlines()
                if line.startswith("mlpipe_serving_queue_depth "))
    return float(line.split()[1])


async def raw_exchange(server: ServerProcess, data: bytes,
                       writer: asyncio.StreamWriter | None = None,
                       reader: asyncio.StreamReader | None = None) -> tuple[bytes, float]:
    """Send `data` (on a new connection unless one is given) and read one response head."""
    if writer is None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    start = time.perf_counter()
    writer.write(data)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(next(line.split(b":")[1] for line in head.lower().split(b"\r\n")
                      if line.startswith(b"content-length:")))
    await reader.readexactly(length)
    return head, time.perf_counter() - start


def post_head(server: ServerProcess, declared: int, sent: bytes) -> bytes:
    return (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode() + sent


def test_refusal_comes_before_the_body_is_read_and_health_is_never_shed(
        slow_server: ServerProcess) -> None:
    async def scenario() -> tuple[bytes, int]:
        async with held_full(slow_server):
            # Half a body: a server that read it before deciding would never answer.
            body = score(1.0)
            head, _ = await raw_exchange(slow_server,
                                         post_head(slow_server, len(body), body[:10]))
            async with httpx.AsyncClient(base_url=slow_server.url) as http:
                ready = await http.get("/v2/health/ready")
        return head, ready.status_code

    head, ready = asyncio.run(scenario())
    assert head.startswith(b"HTTP/1.1 503"), head
    assert b"retry-after: 2" in head.lower()
    assert ready == 200


def test_a_retry_while_still_full_waits_out_the_hold(slow_server: ServerProcess) -> None:
    async def scenario() -> list[tuple[bytes, float]]:
        async with held_full(slow_server):
            reader, writer = await asyncio.open_connection("127.0.0.1", slow_server.port)
            request = post_head(slow_server, len(score(1.0)), score(1.0))
            first = await raw_exchange(slow_server, request, writer, reader)
            second = await raw_exchange(slow_server, request, writer, reader)
            writer.close()
        return [first, second]

    (first, first_s), (second, second_s) = asyncio.run(scenario())
    assert first.startswith(b"HTTP/1.1 503") and second.startswith(b"HTTP/1.1 503")
    assert first_s < 0.5 * HOLD_S
    assert 0.9 * HOLD_S < second_s < 2 * HOLD_S


@pytest.mark.skipif(not wrk_available(), reason="wrk is missing: make setup installs it")
def test_a_storm_without_back_off_gets_only_200s_and_503s_with_retry_after(
        slow_server: ServerProcess) -> None:
    request = Request("/invocations", score(1.0),
                      {"Content-Type": "application/json", **AUTH})
    result = run_wrk(slow_server.port, request, connections=64, duration_s=3)
    assert set(result.statuses) == {200, 503}, result.summary()
    assert result.missing_retry_after == 0
    assert not any(result.errors.values()), result.summary()
    assert result.ok_rps > 0.3 * SUSTAINABLE_RPS, result.summary()
