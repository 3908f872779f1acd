"""The alpha-beta model: the ring formula, the fit on synthetic times, fusion and compression."""

from __future__ import annotations

import numpy as np
import pytest

from lab.cost_model import (
    Link,
    allreduce_step_s,
    batch_for_efficiency,
    fit_alpha_beta,
    fusion_buffers,
    link_from_published,
    ring_allreduce_s,
    scaling_efficiency,
)

SIZES = [2**k for k in range(10, 27, 2)]


def test_ring_formula_matches_hand_computed_terms() -> None:
    # p=4: 6 latency terms, and each rank moves 2*3/4 of the buffer.
    assert ring_allreduce_s(1000, 4, alpha_s=1e-3, beta_s_per_byte=1e-6) == pytest.approx(
        6e-3 + 1.5e-3)
    assert ring_allreduce_s(10**9, 1, alpha_s=1.0, beta_s_per_byte=1.0) == 0.0
    # The bandwidth term tends to 2·n·beta as p grows: ring allreduce is bandwidth-optimal.
    assert ring_allreduce_s(10**6, 1024, 0.0, 1e-9) == pytest.approx(2e-3, rel=1e-3)


def test_fit_recovers_alpha_and_beta_of_synthetic_times() -> None:
    alpha, beta = 250e-6, 8 / 1e9  # 1 Gbit/s
    rng = np.random.default_rng(0)
    times = [ring_allreduce_s(n, 2, alpha, beta) * (1 + rng.normal(0, 0.01)) for n in SIZES]
    fit = fit_alpha_beta(SIZES, times, p=2)
    assert fit.link.alpha_s == pytest.approx(alpha, rel=0.05)
    assert fit.link.beta_s_per_byte == pytest.approx(beta, rel=0.05)
    assert fit.link.rate_bps == pytest.approx(1e9, rel=0.05)
    assert fit.mean_rel_error < 0.03 and fit.max_rel_error < 0.06


def test_fit_reports_the_error_of_times_the_model_cannot_explain() -> None:
    times = [1e-3 if n < 2**18 else 1e-1 for n in SIZES]  # a step, not a line
    assert fit_alpha_beta(SIZES, times, p=2).max_rel_error > 0.5


def test_fusion_packs_tensors_up_to_the_threshold() -> None:
    assert fusion_buffers([4, 4, 4], 0) == [4, 4, 4]
    assert fusion_buffers([4, 4, 4], 8) == [8, 4]
    assert fusion_buffers([4, 20, 4], 8) == [4, 20, 4]


def test_fusion_and_fp16_lower_the_latency_and_bandwidth_terms() -> None:
    link = Link("test", alpha_s=1e-3, beta_s_per_byte=1e-8)
    tensors = [4000] * 10
    unfused = allreduce_step_s(tensors, 2, link, 0, fp16=False)
    fused = allreduce_step_s(tensors, 2, link, 64 << 20, fp16=False)
    assert unfused - fused == pytest.approx(9 * 2e-3)
    halved = allreduce_step_s(tensors, 2, link, 64 << 20, fp16=True)
    assert fused - halved == pytest.approx(40000 / 2 * 1e-8)
    assert scaling_efficiency(1.0, tensors, 2, link, 64 << 20, False) == pytest.approx(
        1 / (1 + fused))


def test_published_link_adds_software_latency_and_wire_efficiency() -> None:
    link = link_from_published("10GbE", 20e-6, 1e10, software_alpha_s=1e-4, wire_efficiency=0.9)
    assert link.alpha_s == pytest.approx(120e-6)
    assert link.rate_bps == pytest.approx(9e9)
    with pytest.raises(ValueError):
        link_from_published("bad", 1e-6, 0)


def test_batch_grows_until_compute_hides_the_allreduce() -> None:
    link = Link("test", alpha_s=1e-3, beta_s_per_byte=0.0)  # 2 ms per step at p=2
    # 1 ms per 100 samples: 100 -> 67% ... 1600 -> 89%, 3200 -> 94%.
    assert batch_for_efficiency(1e-5, 100, [4], 2, link, 0, False, 0.9, 10**6) == 3200
    assert batch_for_efficiency(1e-5, 100, [4], 2, link, 0, False, 0.9, 400) == 400
    assert batch_for_efficiency(1.0, 100, [4], 2, link, 0, False, 0.9, 10**6) == 100
