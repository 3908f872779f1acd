"""How large a batch may grow and how long it may wait: fixed, or steered by a latency target.

The batcher reads two numbers before each batch, `size` (rows) and `delay_s`, and
reports each finished batch to `observe`. `FixedPolicy` is `max_batch_size` and
`max_delay_ms` as configured. `LatencyTargetPolicy` (`latency_target_ms` > 0) adapts
both so that a request's latency, its queue wait plus the model time of its batch,
stays under the target T as the load and the model's speed change.

The control law, applied after every batch. A request's latency has two parts and
each knob answers for its own part, so neither can make the other's problem worse:

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
- Delay, on the batch's worst latency L (its oldest request's wait plus m) and on how
  long the model sat idle before it (i): waiting is pure latency, worth paying only
  while the model is busy, where bigger batches free it (and, on a small machine, the
  CPU the event loop needs). If L > T, or the model was idle longer than it ran
  (i > m: the load is light and waiting would buy nothing), the delay halves; else, if
  the batch closed without filling and L < T/2, it grows by T/50. So under load the
  delay settles near the model time, the batch cycle split between gathering and
  computing, and at low load it falls to zero. The other half of the target is left
  for what a law over single batches cannot see coming: bursts, and the machine's own
  hiccups, which set the p99 more than the average batch does.

The decrease acts on the worst request of each batch, not on an estimated p99: that is
conservative (every request, not 99 in 100, is aimed under T) and reacts within one
batch, where a percentile over a window would first have to see the violations.
"""

from __future__ import annotations

import bisect

from serving.settings import ServingSettings

# Clipper backs off by 10%; the delay, which is pure waiting, by half.
SIZE_BACKOFF = 0.9
DELAY_BACKOFF = 0.5
# Share of the target one model call may take: wait for the batch in flight, then run.
MODEL_SHARE = 0.5
# Grow the size only with this much room left, so that one step does not overshoot.
HEADROOM = 0.8
# The delay grows only while the worst request used under this share of the target.
DELAY_SHARE = 0.5
DELAY_STEPS = 50


class FixedPolicy:
    """`max_batch_size` rows or `max_delay_ms`, whatever the latency."""

    def __init__(self, max_batch_size: int, max_delay_ms: float) -> None:
        self.size = max_batch_size
        self.delay_s = max_delay_ms / 1000

    def observe(self, full: bool, idle_s: float, model_s: float, latency_s: float) -> None:
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

    def observe(self, full: bool, idle_s: float, model_s: float, latency_s: float) -> None:
        """Adjust after a batch that took `model_s` in the model.

        `full`: the queue held more than the batch took; `idle_s`: how long the model
        waited since its previous batch; `latency_s`: the batch's oldest request's
        queue wait plus `model_s`.
        """
        model_budget = self.target_s * MODEL_SHARE
        overloaded = latency_s - model_s > model_s
        if model_s > model_budget and not overloaded:
            self._limit = max(1.0, self._limit * SIZE_BACKOFF)
        elif full and (model_s < model_budget * HEADROOM or overloaded):
            self._limit = min(float(self.max_batch_size), self._limit + 1)
        self.size = self._sizes[max(0, bisect.bisect_right(self._sizes, self._limit) - 1)]

        step = self.target_s / DELAY_STEPS
        if latency_s > self.target_s or idle_s > model_s:
            # A delay of one step or less would be noise that still costs a timer per batch.
            self.delay_s = self.delay_s * DELAY_BACKOFF if self.delay_s > step else 0.0
        elif not full and latency_s < self.target_s * DELAY_SHARE:
            self.delay_s += step


def policy_for(settings: ServingSettings) -> FixedPolicy | LatencyTargetPolicy:
    """The policy the settings ask for: a latency target when one is set, else fixed."""
    if settings.latency_target_ms > 0:
        return LatencyTargetPolicy(settings.latency_target_ms, settings.max_batch_size,
                                   settings.allowed_batch_sizes)
    return FixedPolicy(settings.max_batch_size, settings.max_delay_ms)
