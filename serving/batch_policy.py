"""How large a batch may grow and how long it may wait: fixed, or steered by a latency target.

The batcher reads two numbers before each batch, `size` (rows) and `delay_s`, and
reports each finished batch to `observe`. `FixedPolicy` is `max_batch_size` and
`max_delay_ms` as configured. `LatencyTargetPolicy` (`latency_target_ms` > 0) adapts
both so that a request's latency stays under the target T as the load and the model's
speed change. That latency has three parts: the wait unread in the socket buffers while
the event loop is busy with other requests, the wait in the batcher's queue, and the
model time of its batch. Each knob answers for its own part:

- Size, on the batch's model time m (Clipper's AIMD, Crankshaw et al., NSDI 2017):
  a request may wait for the batch in flight and then run in the next one, so the
  target is only reachable while m <= T/2. If m > T/2 the size limit shrinks by 10%
  (multiplicative decrease); if the batch was full (the queue held more than it) and
  m < 0.8 * T/2, the limit grows by one row (additive increase). The limit used is the
  largest allowed batch size at or under it (or `max_batch_size`), so a model call is
  never padded beyond the rows it runs. One departure from Clipper: when the batch's
  oldest request waited longer than the model ran (w = L - m > m, queue wait dominates:
  overload), a full batch grows the limit and a slow one does not shrink it, because
  there smaller batches would only cut throughput and lengthen the queue; the target
  is out of reach until the load falls, and bigger batches drain the queue soonest.
- Delay, on the CPU the process has left. The event loop (parsing and answering every
  request) and the model thread (whose every call costs a millisecond or more of
  Python, encoding and tensor conversion, whatever its size) share the interpreter's
  lock, so the process serves at most about one core of Python. Past that, requests
  wait unread in the socket buffers, where neither this queue nor the in-flight count
  sees them, and every latency grows at once. Waiting for company, fewer and larger
  model calls, is what frees that core, and it is worth its latency only as the core
  runs out. So the policy measures, smoothed over batches, the arrival rate r, the
  loop's CPU share u (its thread's CPU time per second: the per-request work, which no
  batching changes) and the model's CPU per call c, and sizes batches to fit the
  model's calls into what the loop leaves of CPU_BUDGET of a core: b = r * c /
  (CPU_BUDGET - u) rows a call, gathered by waiting (b - 1) / r less the model time
  m (requests that arrive during a call join the next one anyway), at most T/2 - m (a
  request then still meets T after the wait, the batch in flight and its own). At
  light load that is zero and requests run at once; as the loop's share grows the
  delay rises, to as long as the target allows near capacity, which a fixed setting
  can only do at every load or at none. These inputs, unlike the latency or the
  loop's lag, do not fall when the delay rises, so the delay settles instead of
  swinging between too little and too much (measured: bench/RESULTS.md, "Latency
  target steered by the CPU left").
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from serving.settings import ServingSettings

# Clipper backs off by 10%.
SIZE_BACKOFF = 0.9
# Share of the target one model call may take: wait for the batch in flight, then run.
MODEL_SHARE = 0.5
# Grow the size only with this much room left, so that one step does not overshoot.
HEADROOM = 0.8
# Share of one core the process's Python may use (its interpreter lock allows one);
# what the loop leaves of it goes to model calls. The rest is headroom for bursts.
CPU_BUDGET = 0.8
# The weight of each batch in the smoothed rate, CPU share and cost per call.
SMOOTHING = 0.1


@dataclass(frozen=True, slots=True)
class FinishedBatch:
    """What a policy learns from one model call."""

    full: bool  # the queue held more requests than the batch took
    model_s: float
    latency_s: float  # the batch's oldest request's queue wait plus model_s
    model_cpu_s: float  # the model thread's CPU time for this call
    since_last_s: float  # wall time since the previous batch finished
    arrivals: int  # requests submitted since then
    loop_cpu_s: float  # the event loop thread's CPU time since then


class FixedPolicy:
    """`max_batch_size` rows or `max_delay_ms`, whatever the latency."""

    def __init__(self, max_batch_size: int, max_delay_ms: float) -> None:
        self.size = max_batch_size
        self.delay_s = max_delay_ms / 1000

    def observe(self, batch: FinishedBatch) -> None:
        """Fixed settings learn nothing from a batch."""


class LatencyTargetPolicy:
    """Size limit and delay adapted to keep every request under `target_ms` (see above)."""

    def __init__(self, target_ms: float, max_batch_size: int,
                 allowed_batch_sizes: tuple[int, ...]) -> None:
        self.target_s = target_ms / 1000
        self.max_batch_size = max_batch_size
        self._sizes = sorted({size for size in allowed_batch_sizes if size < max_batch_size}
                             | {max_batch_size})
        self._limit = float(max_batch_size)  # start where the fixed policy would be
        self.size = max_batch_size
        self.delay_s = 0.0
        # Smoothed: arrivals per second, the loop's CPU share, the model's CPU per call.
        self.arrival_rate = 0.0
        self.loop_share = 0.0
        self.call_cpu_s = 0.0

    def observe(self, batch: FinishedBatch) -> None:
        """Adjust the size limit and the delay after `batch` (the laws above)."""
        self._adjust_size(batch)
        self._adjust_delay(batch)

    def _adjust_size(self, batch: FinishedBatch) -> None:
        model_budget = self.target_s * MODEL_SHARE
        overloaded = batch.latency_s - batch.model_s > batch.model_s
        if batch.model_s > model_budget and not overloaded:
            self._limit = max(1.0, self._limit * SIZE_BACKOFF)
        elif batch.full and (batch.model_s < model_budget * HEADROOM or overloaded):
            self._limit = min(float(self.max_batch_size), self._limit + 1)
        self.size = self._sizes[max(0, bisect.bisect_right(self._sizes, self._limit) - 1)]

    def _adjust_delay(self, batch: FinishedBatch) -> None:
        if batch.since_last_s > 0:
            self.arrival_rate += SMOOTHING * (batch.arrivals / batch.since_last_s
                                              - self.arrival_rate)
            self.loop_share += SMOOTHING * (batch.loop_cpu_s / batch.since_last_s
                                            - self.loop_share)
        self.call_cpu_s += SMOOTHING * (batch.model_cpu_s - self.call_cpu_s)
        ceiling = max(0.0, self.target_s * MODEL_SHARE - batch.model_s)
        if self.arrival_rate <= 0:
            self.delay_s = 0.0
            return
        spare = CPU_BUDGET - self.loop_share
        rows = (self.arrival_rate * self.call_cpu_s / spare if spare > 0
                else float("inf"))
        # Requests that arrive while a call runs join the next one anyway.
        gather_s = (rows - 1) / self.arrival_rate - batch.model_s
        self.delay_s = min(ceiling, max(0.0, gather_s))


def policy_for(settings: ServingSettings) -> FixedPolicy | LatencyTargetPolicy:
    """The policy the settings ask for: a latency target when one is set, else fixed."""
    if settings.latency_target_ms > 0:
        return LatencyTargetPolicy(settings.latency_target_ms, settings.max_batch_size,
                                   settings.allowed_batch_sizes)
    return FixedPolicy(settings.max_batch_size, settings.max_delay_ms)
