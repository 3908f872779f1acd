"""The batching queue in-process, with a ModelRuntime around a plain numpy function.

The function records every batch it sees, which is what these properties are about:
how requests coalesce, what the model is called with, where errors go, which level
goes first, and how a latency target steers the batch size and delay.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from serving.batch_policy import FinishedBatch, FixedPolicy, LatencyTargetPolicy
from serving.batching import Batcher, DeadlineExceeded, Priority, QueueFull
from serving.runtime import ModelRuntime, TensorSpec

SIZES = (1, 2, 4, 8, 16)


class Recorder:
    """Multiplies `x` by `factor`; fails on a poison value; can be slowed down per call
    and per (padded) row, or made to drop a row."""

    def __init__(self, delay_s: float = 0.0, factor: float = 2.0) -> None:
        self.delay_s = delay_s
        self.row_cost_s = 0.0
        self.factor = factor
        self.calls: list[np.ndarray] = []
        self.drop_row = False
        self.lock = threading.Lock()

    def __call__(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = columns["x"]
        with self.lock:
            self.calls.append(x.copy())
        time.sleep(self.delay_s + self.row_cost_s * len(x))
        if (x == -1).any():
            raise ValueError("poison row")
        out = x * self.factor
        return {"y": out[:-1] if self.drop_row else out}


def make_runtime(recorder: Recorder, version: str = "1",
                 sizes: tuple[int, ...] = SIZES) -> ModelRuntime:
    return ModelRuntime(recorder, (TensorSpec("x", np.dtype(np.float64), ()),), sizes,
                        version, None)


class Harness:
    """A Batcher and the runtime its requests are decoded for, as the app pairs them."""

    def __init__(self, recorder: Recorder, max_batch_size: int = 8, max_delay_ms: float = 20,
                 max_queue: int = 100, low_priority_max_wait_ms: float = 10_000,
                 policy: FixedPolicy | LatencyTargetPolicy | None = None,
                 sizes: tuple[int, ...] = SIZES) -> None:
        self.runtime = make_runtime(recorder, sizes=sizes)
        self.batcher = Batcher(policy or FixedPolicy(max_batch_size, max_delay_ms), max_queue,
                               low_priority_max_wait_ms)

    def start(self) -> None:
        self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()

    async def submit(self, columns: dict[str, np.ndarray], rows: int, **options) -> dict:
        return await self.batcher.submit(self.runtime, columns, rows, **options)


def make_batcher(recorder: Recorder, **settings) -> Harness:
    return Harness(recorder, **settings)


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


def test_a_request_whose_batch_has_started_is_answered_after_its_deadline() -> None:
    recorder = Recorder(delay_s=0.3)  # the model takes longer than the deadline

    async def scenario() -> tuple[dict, float]:
        batcher = make_batcher(recorder, max_batch_size=1, max_delay_ms=0)
        batcher.start()
        start = time.perf_counter()
        result = await batcher.submit(column(5), 1, timeout_s=0.1)
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return result, elapsed

    result, elapsed = run(scenario())
    assert list(result["y"]) == [10]  # not a 504 for work the model did
    assert elapsed >= 0.3


def test_requests_run_on_the_runtime_they_were_decoded_for_and_never_mixed() -> None:
    """A swap between two submissions: the old batch closes at once, each runs on its own."""
    old, new = Recorder(factor=2.0), Recorder(factor=3.0)
    old_runtime, new_runtime = make_runtime(old, "1"), make_runtime(new, "2")

    async def scenario() -> tuple[list, float]:
        batcher = Batcher(FixedPolicy(4, 1000), 100, 10_000)
        batcher.start()
        start = time.perf_counter()
        before = [asyncio.ensure_future(batcher.submit(old_runtime, column(i), 1))
                  for i in (1, 2)]
        await asyncio.sleep(0.01)
        after = [asyncio.ensure_future(batcher.submit(new_runtime, column(i), 1))
                 for i in (3, 4, 5, 6)]
        old_results = await asyncio.gather(*before)
        closed_after = time.perf_counter() - start
        results = old_results + await asyncio.gather(*after)
        await batcher.stop()
        return results, closed_after

    results, closed_after = run(scenario())
    assert [list(result["y"]) for result in results] == [[2], [4], [9], [12], [15], [18]]
    assert closed_after < 0.5  # not the 1 s delay: nothing later could have joined
    assert [list(call) for call in old.calls] == [[1, 2]]
    assert [list(call) for call in new.calls] == [[3, 4, 5, 6]]


def test_a_batch_is_filled_from_the_high_level_first() -> None:
    recorder = Recorder(delay_s=0.05)

    async def scenario() -> None:
        harness = make_batcher(recorder, max_batch_size=2, max_delay_ms=0)
        harness.start()
        busy = asyncio.ensure_future(harness.submit(column(0), 1))
        await asyncio.sleep(0.02)  # the model is now busy; the rest queue behind it
        low = [asyncio.ensure_future(harness.submit(column(i), 1, priority=Priority.LOW))
               for i in (1, 2, 3, 4)]
        await asyncio.sleep(0)
        high = [asyncio.ensure_future(harness.submit(column(i), 1)) for i in (10, 11)]
        await asyncio.gather(busy, *low, *high)
        await harness.stop()

    run(scenario())
    assert [list(call) for call in recorder.calls] == [[0], [10, 11], [1, 2], [3, 4]]


def test_a_low_request_waits_at_most_its_bound_under_saturating_high_load() -> None:
    """High requests keep the model busy for 1.5 s; the low one still goes after ~0.2 s."""
    recorder = Recorder(delay_s=0.02)
    bound_s = 0.2

    async def scenario() -> tuple[float, int, int]:
        harness = make_batcher(recorder, max_batch_size=1, max_delay_ms=0,
                               low_priority_max_wait_ms=bound_s * 1000)
        harness.start()
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + 1.5
        served_high = 0

        async def high_client() -> None:
            nonlocal served_high
            while loop.time() < stop_at:
                await harness.submit(column(1), 1)
                served_high += 1

        clients = [asyncio.ensure_future(high_client()) for _ in range(4)]
        await asyncio.sleep(0.1)
        start = loop.time()
        await harness.submit(column(-5), 1, priority=Priority.LOW)
        waited = loop.time() - start
        high_before = served_high
        await asyncio.gather(*clients)
        await harness.stop()
        return waited, high_before, served_high

    waited, high_before, served_high = run(scenario())
    # Not before the bound (the high level goes first), and not much after: the three
    # high requests that arrived before it and the batch in flight, 20 ms each, plus
    # slack for a busy machine; unbounded, it would wait for the whole 1.5 s of load.
    assert bound_s <= waited < bound_s + 0.3
    assert served_high > high_before  # the high load was still saturating afterwards


def test_an_overloaded_low_level_delays_a_high_request_by_at_most_one_batch() -> None:
    """30 low requests queue (600 ms of model time) and all go overdue; a high request
    then waits for the batch in flight and at most one low batch, not for all of them."""
    recorder = Recorder(delay_s=0.02)

    async def scenario() -> tuple[float, int]:
        harness = make_batcher(recorder, max_batch_size=1, max_delay_ms=0,
                               low_priority_max_wait_ms=50)
        harness.start()
        loop = asyncio.get_running_loop()
        low = [asyncio.ensure_future(harness.submit(column(i), 1, priority=Priority.LOW))
               for i in range(30)]
        await asyncio.sleep(0.15)  # every low request still queued is overdue now
        start = loop.time()
        await harness.submit(column(100), 1)
        waited = loop.time() - start
        lows_before = len(recorder.calls) - 1
        await asyncio.gather(*low)
        await harness.stop()
        return waited, lows_before

    waited, lows_before = run(scenario())
    assert waited < 0.1  # 20 ms batches: the one in flight, one low, its own, and slack
    assert lows_before < 15  # most of the overdue low requests went after it


def test_latency_target_backs_off_when_the_model_slows_and_grows_with_headroom() -> None:
    """Clients in a closed loop; the model costs 1 ms plus 0.5 ms per padded row.

    With a 20 ms target one call may take 10 ms (a request can wait for the call in
    flight, then run in its own): 24 clients' rows padded to 32 take 17 ms, so the limit
    backs off to 16 (9 ms). Then the model gets ten times faster and 48 clients keep
    more rows queued than a batch takes: the limit climbs back past 32."""
    recorder = Recorder(delay_s=0.001)
    recorder.row_cost_s = 0.0005
    sizes = (1, 2, 4, 8, 16, 32, 64)
    policy = LatencyTargetPolicy(20, 64, sizes)

    async def scenario() -> tuple[int, int]:
        harness = make_batcher(recorder, policy=policy, sizes=sizes)
        harness.start()
        loop = asyncio.get_running_loop()
        phase_end = loop.time() + 1.0

        async def client() -> None:
            while loop.time() < phase_end:
                await harness.submit(column(1), 1)

        await asyncio.gather(*(client() for _ in range(24)))
        slow_limit = policy.size
        recorder.row_cost_s = 0.00005
        phase_end = loop.time() + 1.0
        await asyncio.gather(*(client() for _ in range(48)))
        await harness.stop()
        return slow_limit, policy.size

    slow_limit, fast_limit = run(scenario())
    assert slow_limit <= 16
    assert fast_limit >= 32
    calls = [len(call) for call in recorder.calls]
    assert calls[0] == 32 and 16 in calls
    assert sum(size >= 32 for size in calls[calls.index(16):]) > 10


def test_latency_target_keeps_batches_large_under_overload() -> None:
    """200 bulk clients against a model too slow for any batch size to meet 20 ms: the
    queue wait dominates, and shrinking batches would only cut throughput, so the limit
    stays at its maximum. (Bulk requests are queued, not refused, past the target.)"""
    recorder = Recorder(delay_s=0.001)
    recorder.row_cost_s = 0.0005
    sizes = (1, 2, 4, 8, 16, 32, 64)
    policy = LatencyTargetPolicy(20, 64, sizes)

    async def scenario() -> None:
        harness = make_batcher(recorder, max_queue=1000, policy=policy, sizes=sizes)
        harness.start()
        loop = asyncio.get_running_loop()
        end = loop.time() + 0.5

        async def client() -> None:
            while loop.time() < end:
                await harness.submit(column(1), 1, priority=Priority.LOW)

        await asyncio.gather(*(client() for _ in range(200)))
        await harness.stop()

    run(scenario())
    # The first batch had not waited yet, so it looked like a plain slow call and the
    # limit backed off once; the queue wait that followed sent it back up to stay.
    calls = [len(call) for call in recorder.calls]
    assert 64 in calls[calls.index(32):]
    assert policy.size == 64


def test_latency_target_drops_the_delay_when_the_model_sits_idle() -> None:
    """Sparse single requests: waiting would only add latency, so the delay goes to zero."""
    recorder = Recorder()
    policy = LatencyTargetPolicy(50, 8, SIZES)
    policy.delay_s = 0.02

    async def scenario() -> list[float]:
        harness = make_batcher(recorder, policy=policy)
        harness.start()
        latencies = []
        for _ in range(8):
            start = time.perf_counter()
            await harness.submit(column(1), 1)
            latencies.append(time.perf_counter() - start)
        await harness.stop()
        return latencies

    latencies = run(scenario())
    assert policy.delay_s == 0.0
    assert latencies[0] >= 0.02 and latencies[-1] < 0.01


def test_latency_target_waits_while_the_event_loop_is_busy_and_not_when_it_is_idle() -> None:
    """500 requests/s against a model call that costs 1 ms of CPU and 1 ms of time,
    target 50 ms. With the event loop using 80% of a core (as parsing many requests
    does), nothing of the 80% budget is left for model calls, so the delay sits at its
    ceiling, T/2 - m. At 70% the 10% left fits calls of 5 rows: a wait of 4 requests'
    arrivals (8 ms) less the 1 ms the call in flight gathers anyway. At 5% the calls fit
    as they come and the delay is zero."""
    policy = LatencyTargetPolicy(50, 256, (1, 2, 4, 8, 16, 32, 64, 128, 256))

    def settle(loop_share: float) -> float:
        for _ in range(200):  # a batch every 10 ms, five requests each
            policy.observe(FinishedBatch(full=False, model_s=0.001,
                                         latency_s=0.005, model_cpu_s=0.001,
                                         since_last_s=0.01, arrivals=5,
                                         loop_cpu_s=loop_share * 0.01))
        return policy.delay_s

    assert settle(0.8) == pytest.approx(0.024)
    assert settle(0.7) == pytest.approx(0.007)
    assert settle(0.05) == 0.0


class RecordingPolicy(FixedPolicy):
    """The fixed settings, keeping every batch the batcher reports."""

    def __init__(self, max_batch_size: int, max_delay_ms: float) -> None:
        super().__init__(max_batch_size, max_delay_ms)
        self.batches: list[FinishedBatch] = []

    def observe(self, batch: FinishedBatch) -> None:
        self.batches.append(batch)


def test_the_batcher_reports_each_batch_s_time_cpu_and_arrivals_to_the_policy() -> None:
    """What the latency target steers by, measured by the batcher: a model that sleeps
    30 ms takes time but no CPU; requests that arrive while the event loop computes
    count as arrivals, and that computing as the loop's CPU; a full queue is `full`."""
    recorder = Recorder(delay_s=0.03)
    policy = RecordingPolicy(max_batch_size=2, max_delay_ms=0)

    async def scenario() -> None:
        harness = make_batcher(recorder, policy=policy)
        harness.start()
        await asyncio.gather(*(harness.submit(column(i), 1) for i in range(3)))
        busy_until = time.thread_time() + 0.05  # the loop's own work between batches
        while time.thread_time() < busy_until:
            pass
        await harness.submit(column(9), 1)
        await harness.stop()

    run(scenario())
    first, second, third = policy.batches
    assert [first.full, second.full, third.full] == [True, False, False]
    assert first.arrivals == 3 and second.arrivals == 0 and third.arrivals == 1
    for batch in policy.batches:
        assert batch.model_s >= 0.03 and batch.model_cpu_s < 0.01
        assert batch.latency_s >= batch.model_s
    assert second.latency_s >= first.model_s + second.model_s  # it waited for the first
    assert third.loop_cpu_s >= 0.05 and third.since_last_s >= 0.05
    assert first.loop_cpu_s < 0.05
