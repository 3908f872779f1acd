"""The batching queue in-process, with a ModelRuntime around a plain numpy function.

The function records every batch it sees, which is what these properties are about:
how requests coalesce, what the model is called with, and where errors go.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from serving.batching import Batcher, DeadlineExceeded, QueueFull
from serving.runtime import ModelRuntime, TensorSpec

SIZES = (1, 2, 4, 8, 16)


class Recorder:
    """Doubles `x`; fails on a poison value; can be slowed down or made to drop a row."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls: list[np.ndarray] = []
        self.drop_row = False
        self.lock = threading.Lock()

    def __call__(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = columns["x"]
        with self.lock:
            self.calls.append(x.copy())
        time.sleep(self.delay_s)
        if (x == -1).any():
            raise ValueError("poison row")
        out = x * 2
        return {"y": out[:-1] if self.drop_row else out}


def make_batcher(recorder: Recorder, max_batch_size: int = 8, max_delay_ms: float = 20,
                 max_queue: int = 100) -> Batcher:
    runtime = ModelRuntime(recorder, (TensorSpec("x", np.dtype(np.float64), ()),), SIZES,
                           "1", None)
    return Batcher(runtime, max_batch_size, max_delay_ms, max_queue)


def column(*values: float) -> dict[str, np.ndarray]:
    return {"x": np.array(values, dtype=np.float64)}


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_a_padded_call_and_get_their_own_rows() -> None:
    recorder = Recorder()

    async def scenario() -> list[dict]:
        batcher = make_batcher(recorder)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(column(i, i + 0.5), 2) for i in range(3)))
        await batcher.stop()
        return results

    results = run(scenario())
    assert [list(result["y"]) for result in results] == [[0, 1], [2, 3], [4, 5]]
    assert len(recorder.calls) == 1
    assert len(recorder.calls[0]) == 8  # 6 rows padded up to the allowed size 8


def test_batch_closes_at_max_batch_size_without_waiting_for_the_delay() -> None:
    recorder = Recorder()

    async def scenario() -> float:
        batcher = make_batcher(recorder, max_batch_size=4, max_delay_ms=5000)
        batcher.start()
        start = time.perf_counter()
        await asyncio.gather(*(batcher.submit(column(i), 1) for i in range(4)))
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return elapsed

    assert run(scenario()) < 1.0
    assert [len(call) for call in recorder.calls] == [4]


def test_batch_closes_when_its_first_request_has_waited_max_delay() -> None:
    recorder = Recorder()

    async def scenario() -> float:
        batcher = make_batcher(recorder, max_batch_size=8, max_delay_ms=100)
        batcher.start()
        start = time.perf_counter()
        await batcher.submit(column(1), 1)
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return elapsed

    assert 0.09 <= run(scenario()) < 0.5


def test_an_error_reaches_every_caller_of_its_batch_and_no_other() -> None:
    recorder = Recorder()

    async def scenario() -> tuple[list, list]:
        batcher = make_batcher(recorder, max_batch_size=4, max_delay_ms=50)
        batcher.start()
        first = await asyncio.gather(batcher.submit(column(1), 1), batcher.submit(column(-1), 1),
                                     return_exceptions=True)
        second = await asyncio.gather(batcher.submit(column(3), 1), return_exceptions=True)
        await batcher.stop()
        return first, second

    first, second = run(scenario())
    assert all(isinstance(outcome, ValueError) for outcome in first)
    assert list(second[0]["y"]) == [6]


def test_a_wrong_output_count_is_an_error_not_misrouted_rows() -> None:
    recorder = Recorder()
    recorder.drop_row = True

    async def scenario() -> list:
        batcher = make_batcher(recorder, max_batch_size=16)
        batcher.start()
        outcomes = await asyncio.gather(batcher.submit(column(1, 2, 3, 4), 4),
                                        return_exceptions=True)
        await batcher.stop()
        return outcomes

    (outcome,) = run(scenario())
    assert isinstance(outcome, RuntimeError)
    assert "rows" in str(outcome)


def test_requests_over_the_largest_allowed_size_run_in_allowed_chunks() -> None:
    recorder = Recorder()

    async def scenario() -> dict:
        batcher = make_batcher(recorder, max_batch_size=16)
        batcher.start()
        result = await batcher.submit(column(*range(40)), 40)
        await batcher.stop()
        return result

    assert list(run(scenario())["y"]) == [2 * i for i in range(40)]
    assert [len(call) for call in recorder.calls] == [16, 16, 8]


def test_full_queue_is_refused_at_once_and_expired_requests_never_run() -> None:
    recorder = Recorder(delay_s=0.2)

    async def scenario() -> list:
        batcher = make_batcher(recorder, max_batch_size=1, max_delay_ms=0, max_queue=3)
        batcher.start()
        busy = asyncio.ensure_future(batcher.submit(column(1), 1))
        await asyncio.sleep(0.05)  # the model is now busy with the first request
        expiring = asyncio.ensure_future(batcher.submit(column(777), 1, timeout_s=0.05))
        queued = asyncio.ensure_future(batcher.submit(column(2), 1))
        await asyncio.sleep(0)
        start = time.perf_counter()
        with pytest.raises(QueueFull):
            await batcher.submit(column(3), 1)
        assert time.perf_counter() - start < 0.01
        outcomes = await asyncio.gather(busy, expiring, queued, return_exceptions=True)
        await batcher.stop()
        return outcomes

    busy, expiring, queued = run(scenario())
    assert isinstance(expiring, DeadlineExceeded)
    assert list(busy["y"]) == [2] and list(queued["y"]) == [4]
    assert not any((call == 777).any() for call in recorder.calls)
