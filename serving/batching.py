"""Dynamic batching: coalesce requests from many connections into one model call.

One asyncio loop owns the queue (ARCHITECTURE.md convention 5). A batch's wait timer
starts at its first request's arrival, so requests that queued while the previous batch
was computing go out at once; a batch closes at `max_batch_size` rows or when that
timer runs out. One batch computes at a time, in a worker thread, while the event loop
keeps accepting and queueing the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from serving.metrics import BATCH_ROWS, QUEUE_DEPTH, REJECTED
from serving.runtime import Columns, ModelRuntime, check_rows

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The bounded queue is full: the caller should answer 503 with Retry-After."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before its result was ready."""


@dataclass(slots=True, eq=False)
class PendingRequest:
    """One caller's rows waiting for the model."""

    columns: Columns
    rows: int
    future: asyncio.Future[dict[str, np.ndarray]]
    arrival: float
    deadline: float | None = field(default=None)


class Batcher:
    """The bounded queue and the loop that turns it into padded model calls."""

    def __init__(self, runtime: ModelRuntime, max_batch_size: int, max_delay_ms: float,
                 max_queue: int) -> None:
        self.runtime = runtime  # replaced by the watcher; read once per batch
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_ms / 1000
        self.max_queue = max_queue
        self._queue: deque[PendingRequest] = deque()
        self._queued_rows = 0
        self._admitted = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._task: asyncio.Task[None] | None = None
        QUEUE_DEPTH.set_function(lambda: len(self._queue))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """Stop after the queue has drained (the server has stopped accepting by now)."""
        while self._queue:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def submit(self, columns: Columns, rows: int,
                     timeout_s: float | None = None) -> dict[str, np.ndarray]:
        """Queue `rows` rows and wait for their outputs.

        Raises QueueFull at once when `max_queue` requests are already admitted, and
        DeadlineExceeded when `timeout_s` passes first; a request that expires while
        queued is dropped before the model runs.
        """
        if self._admitted >= self.max_queue:
            REJECTED.labels("queue_full").inc()
            raise QueueFull
        loop = asyncio.get_running_loop()
        now = loop.time()
        request = PendingRequest(columns, rows, loop.create_future(), now)
        expiry = None
        if timeout_s is not None:
            request.deadline = now + timeout_s
            expiry = loop.call_at(request.deadline, _expire, request.future)
        self._admitted += 1
        self._queue.append(request)
        self._queued_rows += rows
        if self._wakeup is not None and not self._wakeup.done() and (
            len(self._queue) == 1 or self._queued_rows >= self.max_batch_size
        ):
            self._wakeup.set_result(None)
        try:
            return await request.future
        finally:
            self._admitted -= 1
            if expiry is not None:
                expiry.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wait_for_batch(loop)
            batch = self._take_batch(loop.time())
            if not batch:
                continue
            runtime = self.runtime
            try:
                outputs = await loop.run_in_executor(self._executor, _predict, runtime, batch)
            except Exception as error:  # every caller of this batch, and no other, sees it
                log.exception("model call failed for a batch of %d requests", len(batch))
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            for request, output in zip(batch, outputs, strict=True):
                if not request.future.done():
                    request.future.set_result(output)

    async def _wait_for_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until the queue holds a full batch or its first request has waited enough."""
        while not self._queue:
            await self._sleep_until(loop, None)
        close_at = self._queue[0].arrival + self.max_delay_s
        while self._queued_rows < self.max_batch_size and loop.time() < close_at:
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
        """Pop up to `max_batch_size` rows, dropping requests that are already answered."""
        batch: list[PendingRequest] = []
        rows = 0
        while self._queue:
            request = self._queue[0]
            if batch and rows + request.rows > self.max_batch_size:
                break
            self._queue.popleft()
            self._queued_rows -= request.rows
            if request.future.done():  # expired (504 already sent) or cancelled
                continue
            if request.deadline is not None and request.deadline <= now:
                _expire(request.future)
                continue
            batch.append(request)
            rows += request.rows
        if batch:
            BATCH_ROWS.observe(rows)
        return batch


def _predict(runtime: ModelRuntime, batch: list[PendingRequest]) -> list[dict[str, np.ndarray]]:
    """Runs in the model thread: join the callers' rows, predict, split them back."""
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
    return results


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        REJECTED.labels("deadline").inc()
        future.set_exception(DeadlineExceeded())


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
