"""Dynamic batching: coalesce requests from many connections into one model call.

One asyncio loop owns the queue (ARCHITECTURE.md convention 5). A batch's wait timer
starts at the arrival of the oldest request waiting, so requests that queued while the
previous batch was computing go out at once; a batch closes at the size limit, when
that timer runs out, or at a runtime boundary. One batch computes at a time, in a
worker thread, while the event loop keeps accepting and queueing the next one.

Each request carries the runtime (model version) it was decoded for, and a batch never
mixes runtimes: across a `--watch` swap, requests decoded for the old version run on
it and report it. A batch whose next request belongs to an older runtime than the
newest one queued closes at once, as no later request can join it.

Two priority levels: a batch is filled from the high level first, each level oldest
first. A low request that has waited `low_priority_max_wait_ms` is overdue, and overdue
low requests lead every other batch while high ones wait: the low level is never
starved (under a saturating high load an overdue request waits for at most the overdue
ones ahead of it, at half the model's rate), and the high level, even when the low one
is overloaded, waits for at most one low batch beside its own queue. (Taking an overdue
request as if it were high, in arrival order, made a low level overloaded for longer
than the bound a plain FIFO queue: bench/RESULTS.md, "Priorities beside bulk scoring".)

The size limit and the delay come from a policy (serving/batch_policy.py): fixed
`max_batch_size` / `max_delay_ms`, or adapted to `latency_target_ms` from each batch's
model time, its requests' latency (queue wait + model time), the arrival rate and the
CPU time of the event loop and the model thread.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from serving.batch_policy import FinishedBatch, FixedPolicy, LatencyTargetPolicy
from serving.metrics import BATCH_DELAY, BATCH_LIMIT, BATCH_ROWS, LOOP_LAG, QUEUE_DEPTH, REJECTED
from serving.runtime import Columns, ModelRuntime, check_rows

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The bounded queue is full: the caller should answer 503 with Retry-After."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before its result was ready."""


class Priority(enum.Enum):
    """Interactive traffic is high, bulk scoring low; a request that says nothing is high."""

    HIGH = "high"
    LOW = "low"


@dataclass(slots=True, eq=False)
class PendingRequest:
    """One caller's rows waiting for the model they were decoded for."""

    runtime: ModelRuntime
    columns: Columns
    rows: int
    future: asyncio.Future[dict[str, np.ndarray]]
    arrival: float
    deadline: float | None = field(default=None)
    # The timer that answers 504 at the deadline; cancelled once the model takes the rows.
    expiry: asyncio.TimerHandle | None = field(default=None)


class Batcher:
    """The bounded two-level queue and the loop that turns it into padded model calls."""

    def __init__(self, policy: FixedPolicy | LatencyTargetPolicy, max_queue: int,
                 low_priority_max_wait_ms: float) -> None:
        self.policy = policy
        self.max_queue = max_queue
        self.low_max_wait_s = low_priority_max_wait_ms / 1000
        self._queues = {Priority.HIGH: deque[PendingRequest](),
                        Priority.LOW: deque[PendingRequest]()}
        self._queued_rows = 0
        self._admitted = 0
        self._arrivals = 0  # requests submitted since the last batch finished
        self._low_led_last = False  # the last batch was led by an overdue low request
        self._newest_runtime: ModelRuntime | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._task: asyncio.Task[None] | None = None
        QUEUE_DEPTH.set_function(self._queued_requests)
        BATCH_LIMIT.set_function(lambda: self.policy.size)
        BATCH_DELAY.set_function(lambda: self.policy.delay_s)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """Stop after the queue has drained (the server has stopped accepting by now)."""
        while self._queued_requests():
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def submit(self, runtime: ModelRuntime, columns: Columns, rows: int,
                     timeout_s: float | None = None,
                     priority: Priority = Priority.HIGH) -> dict[str, np.ndarray]:
        """Queue `rows` rows for `runtime` and wait for their outputs.

        Raises QueueFull at once when `max_queue` requests are already admitted, and
        DeadlineExceeded when `timeout_s` passes while the request is queued: it is then
        dropped before the model runs. The deadline bounds the wait for the model; once
        its batch has started, a request is answered, however long the batch takes (a
        504 for work the model did would only make the caller send it again).
        """
        if self._admitted >= self.max_queue:
            REJECTED.labels("queue_full").inc()
            raise QueueFull
        loop = asyncio.get_running_loop()
        now = loop.time()
        request = PendingRequest(runtime, columns, rows, loop.create_future(), now)
        if timeout_s is not None:
            request.deadline = now + timeout_s
            request.expiry = loop.call_at(request.deadline, _expire, request.future)
        boundary = runtime is not self._newest_runtime
        self._newest_runtime = runtime
        self._admitted += 1
        self._arrivals += 1
        self._queues[priority].append(request)
        self._queued_rows += rows
        if self._wakeup is not None and not self._wakeup.done() and (
            self._queued_requests() == 1 or self._queued_rows >= self.policy.size or boundary
        ):
            self._wakeup.set_result(None)
        try:
            return await request.future
        finally:
            self._admitted -= 1
            if request.expiry is not None:
                request.expiry.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_done, last_loop_cpu = time.monotonic(), time.thread_time()
        while True:
            await self._wait_for_batch(loop)
            batch = self._take_batch(loop.time())
            if not batch:
                continue
            full = self._queued_requests() > 0
            # time.monotonic for the model's time and the loop's lag: uvloop's clock
            # (loop.time) counts whole milliseconds.
            started = time.monotonic()
            try:
                call = await loop.run_in_executor(self._executor, _predict, batch)
            except Exception as error:  # every caller of this batch, and no other, sees it
                log.exception("model call failed for a batch of %d requests", len(batch))
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            now, loop_cpu = time.monotonic(), time.thread_time()  # this runs on the loop
            LOOP_LAG.observe(now - call.done_at)
            self.policy.observe(FinishedBatch(
                full, call.done_at - started,
                loop.time() - min(request.arrival for request in batch), call.cpu_s,
                now - last_done, self._arrivals, loop_cpu - last_loop_cpu))
            last_done, last_loop_cpu, self._arrivals = now, loop_cpu, 0
            for request, output in zip(batch, call.outputs, strict=True):
                if not request.future.done():
                    request.future.set_result(output)

    async def _wait_for_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until a full batch is queued, its oldest request has waited the delay,
        or the next batch can grow no more (a newer runtime is queued behind it)."""
        while not self._queued_requests():
            await self._sleep_until(loop, None)
        close_at = self._oldest_arrival() + self.policy.delay_s
        while (self._queued_rows < self.policy.size and loop.time() < close_at
               and self._next_queue(loop.time())[0].runtime is self._newest_runtime):
            await self._sleep_until(loop, close_at)

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, when: float | None) -> None:
        self._wakeup = loop.create_future()
        timer = None
        if when is not None:
            timer = loop.call_at(when, _resolve, self._wakeup)
        try:
            await self._wakeup
        finally:
            if timer is not None:
                timer.cancel()
            self._wakeup = None

    def _take_batch(self, now: float) -> list[PendingRequest]:
        """Pop up to the size limit of one runtime's rows, high level first, dropping
        requests that are already answered."""
        limit = self.policy.size
        batch: list[PendingRequest] = []
        rows = 0
        high, low = self._queues[Priority.HIGH], self._queues[Priority.LOW]
        low_led = bool(high) and bool(low) and self._next_queue(now) is low
        while self._queued_requests():
            queue = self._next_queue(now)
            request = queue[0]
            if batch and (rows + request.rows > limit or request.runtime is not batch[0].runtime):
                break
            queue.popleft()
            self._queued_rows -= request.rows
            if request.future.done():  # expired (504 already sent) or cancelled
                continue
            if request.deadline is not None and request.deadline <= now:
                _expire(request.future)
                continue
            if request.expiry is not None:
                request.expiry.cancel()  # the model takes it: answered whenever it is done
            batch.append(request)
            rows += request.rows
        if batch:
            BATCH_ROWS.observe(rows)
            self._low_led_last = low_led
        return batch

    def _next_queue(self, now: float) -> deque[PendingRequest]:
        """The non-empty level whose oldest request goes next: high, unless the oldest
        low request is overdue and the last batch was not led by one."""
        high, low = self._queues[Priority.HIGH], self._queues[Priority.LOW]
        if low and (not high or (low[0].arrival + self.low_max_wait_s <= now
                                 and not self._low_led_last)):
            return low
        return high

    def _oldest_arrival(self) -> float:
        return min(queue[0].arrival for queue in self._queues.values() if queue)

    def _queued_requests(self) -> int:
        return sum(len(queue) for queue in self._queues.values())


@dataclass(frozen=True, slots=True)
class ModelCall:
    """Each request's outputs, when the call finished (time.monotonic) and its CPU time."""

    outputs: list[dict[str, np.ndarray]]
    done_at: float
    cpu_s: float


def _predict(batch: list[PendingRequest]) -> ModelCall:
    """Runs in the model thread: join the callers' rows, predict, split them back."""
    cpu_start = time.thread_time()
    runtime = batch[0].runtime
    if len(batch) == 1:
        columns = batch[0].columns
    else:
        columns = {
            spec.name: np.concatenate([request.columns[spec.name] for request in batch])
            for spec in runtime.inputs
        }
    total = sum(request.rows for request in batch)
    outputs = runtime.predict(columns, total)
    check_rows(outputs, total)
    results = []
    start = 0
    for request in batch:
        stop = start + request.rows
        results.append({name: value[start:stop] for name, value in outputs.items()})
        start = stop
    return ModelCall(results, time.monotonic(), time.thread_time() - cpu_start)


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        REJECTED.labels("deadline").inc()
        future.set_exception(DeadlineExceeded())


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
