"""The alpha-beta cost model of a data-parallel training step: pure functions, no I/O.

A synchronous step is compute, then a ring allreduce of the gradients (no overlap is
assumed, which makes the prediction conservative). For ``p`` ranks and ``n`` bytes per
rank a ring allreduce costs ``2(p-1)·alpha + 2(p-1)/p·n·beta`` (Thakur et al.; the
reduction's own cost is folded into beta). Horovod sends one allreduce per fusion
buffer, so tensor fusion decides how many times alpha is paid. ``bench/network.py``
fits alpha and beta on the emulated cluster and checks predictions against measured
steps; the extrapolation to real networks uses the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Link:
    """A network as the model sees it: seconds per message and seconds per byte."""

    name: str
    alpha_s: float
    beta_s_per_byte: float

    @property
    def rate_bps(self) -> float:
        """The effective rate 1/beta in bits per second."""
        return 8.0 / self.beta_s_per_byte


@dataclass(frozen=True)
class Fit:
    """An alpha-beta fit and how well it reproduces the times it was fitted on."""

    link: Link
    mean_rel_error: float
    max_rel_error: float


def ring_allreduce_s(n_bytes: float, p: int, alpha_s: float, beta_s_per_byte: float) -> float:
    """Seconds of one ring allreduce of ``n_bytes`` per rank over ``p`` ranks."""
    if p <= 1:
        return 0.0
    return 2 * (p - 1) * alpha_s + 2 * (p - 1) / p * n_bytes * beta_s_per_byte


def fit_alpha_beta(sizes: Sequence[float], seconds: Sequence[float], p: int,
                   name: str = "fit") -> Fit:
    """Least squares of ``t = a + b·n`` in relative error, then alpha and beta of the ring.

    Relative (1/t weighted) residuals, because the sizes span five decades: plain least
    squares would fit the largest messages only and leave the small ones, where alpha
    lives, wrong by orders of magnitude. A negative intercept (noise at the small end)
    is clamped to zero and the slope refitted.
    """
    n = np.asarray(sizes, dtype=float)
    t = np.asarray(seconds, dtype=float)
    if n.size < 2 or p < 2:
        raise ValueError("the fit needs at least two sizes and two ranks")
    weights = 1.0 / t
    design = np.column_stack([np.ones_like(n), n]) * weights[:, None]
    (a, b), *_ = np.linalg.lstsq(design, t * weights, rcond=None)
    if a < 0:
        a, b = 0.0, float(np.sum(n * weights**2 * t) / np.sum((n * weights) ** 2))
    link = Link(name, alpha_s=a / (2 * (p - 1)), beta_s_per_byte=b / (2 * (p - 1) / p))
    errors = np.abs(a + b * n - t) / t
    return Fit(link, mean_rel_error=float(errors.mean()), max_rel_error=float(errors.max()))


def fusion_buffers(tensor_bytes: Sequence[int], threshold_bytes: int) -> list[int]:
    """Bytes of each allreduce Horovod sends for one step's gradients.

    Threshold 0 turns fusion off (one allreduce per tensor); otherwise tensors are packed
    in order into buffers of at most ``threshold_bytes`` (a larger tensor goes alone).
    """
    if threshold_bytes <= 0:
        return [int(b) for b in tensor_bytes]
    buffers: list[int] = []
    current = 0
    for size in tensor_bytes:
        if current and current + size > threshold_bytes:
            buffers.append(current)
            current = 0
        current += int(size)
    return [*buffers, current] if current else buffers


def allreduce_step_s(tensor_bytes: Sequence[int], p: int, link: Link,
                     fusion_threshold_bytes: int, fp16: bool) -> float:
    """Communication seconds of one step: one ring allreduce per fusion buffer.

    fp16 compression halves the bytes of float32 gradients on the wire.
    """
    scale = 0.5 if fp16 else 1.0
    return sum(ring_allreduce_s(buffer * scale, p, link.alpha_s, link.beta_s_per_byte)
               for buffer in fusion_buffers(tensor_bytes, fusion_threshold_bytes))


def step_s(compute_s: float, tensor_bytes: Sequence[int], p: int, link: Link,
           fusion_threshold_bytes: int, fp16: bool) -> float:
    """Predicted seconds of one synchronous step: compute plus the gradients' allreduce."""
    return compute_s + allreduce_step_s(tensor_bytes, p, link, fusion_threshold_bytes, fp16)


def scaling_efficiency(compute_s: float, tensor_bytes: Sequence[int], p: int, link: Link,
                       fusion_threshold_bytes: int, fp16: bool) -> float:
    """Throughput of ``p`` workers over ``p`` times one worker's, at a fixed per-worker batch."""
    return compute_s / step_s(compute_s, tensor_bytes, p, link, fusion_threshold_bytes, fp16)


def link_from_published(name: str, latency_s: float, rate_bps: float,
                        software_alpha_s: float = 0.0, wire_efficiency: float = 1.0) -> Link:
    """A link from a published latency and line rate, plus the framework's own per-message cost.

    ``wire_efficiency`` is the fraction of the line rate a transport delivers (TCP and
    Ethernet framing take a few percent); ``software_alpha_s`` is what Horovod adds per
    allreduce (negotiation, the cycle), measured on an unshaped link.
    """
    if rate_bps <= 0 or not 0 < wire_efficiency <= 1 or math.isnan(latency_s):
        raise ValueError(f"invalid link {name}: rate {rate_bps}, efficiency {wire_efficiency}")
    return Link(name, alpha_s=latency_s + software_alpha_s,
                beta_s_per_byte=8.0 / (rate_bps * wire_efficiency))


def batch_for_efficiency(compute_s_per_sample: float, base_batch: int, tensor_bytes: Sequence[int],
                         p: int, link: Link, fusion_threshold_bytes: int, fp16: bool,
                         target: float, cap: int) -> int:
    """The smallest per-worker batch, ``base_batch`` doubled, that reaches ``target`` efficiency.

    Compute grows with the batch while the gradients do not, so a larger batch per worker
    hides the allreduce; ``cap`` bounds it (a larger global batch changes the optimisation).
    """
    batch = base_batch
    while batch < cap and scaling_efficiency(compute_s_per_sample * batch, tensor_bytes, p, link,
                                             fusion_threshold_bytes, fp16) < target:
        batch *= 2
    return min(batch, cap)
