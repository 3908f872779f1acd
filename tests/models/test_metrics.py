"""Our metrics against scikit-learn's, and the promotion gate's direction per metric."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from models.metrics import (
    CATALOGUE,
    calibration_bins,
    classification_metrics,
    family_of,
    is_better,
    regression_metrics,
    roc_auc,
    roc_curve,
)

RNG = np.random.default_rng(7)
Y = (RNG.random(500) < 0.3).astype(float)
# Rounded so that ties occur, which the rank formula must count as one half.
P = np.round(np.clip(0.3 + 0.4 * (Y - 0.3) + RNG.normal(0, 0.2, 500), 0, 1), 1)


def test_classification_metrics_match_sklearn() -> None:
    ours = classification_metrics(Y, P)
    assert ours["auc"] == pytest.approx(sk.roc_auc_score(Y, P), rel=1e-12)
    assert ours["log_loss"] == pytest.approx(sk.log_loss(Y, np.clip(P, 1e-15, 1 - 1e-15)),
                                             rel=1e-9)
    assert ours["brier"] == pytest.approx(sk.brier_score_loss(Y, P), rel=1e-12)
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(Y, P >= 0.5))


def test_roc_curve_matches_sklearn() -> None:
    fpr, tpr = roc_curve(Y, P)
    sk_fpr, sk_tpr, _ = sk.roc_curve(Y, P, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_regression_metrics_match_sklearn() -> None:
    y = RNG.normal(size=200)
    prediction = y + RNG.normal(scale=0.5, size=200)
    ours = regression_metrics(y, prediction)
    assert ours["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, prediction)))
    assert ours["mae"] == pytest.approx(sk.mean_absolute_error(y, prediction))
    assert ours["r2"] == pytest.approx(sk.r2_score(y, prediction))


def test_calibration_bins_count_every_row() -> None:
    predicted, observed, counts = calibration_bins(Y, P, bins=5)
    assert counts.sum() == len(Y)
    assert np.all((predicted >= 0) & (predicted <= 1) & (observed >= 0) & (observed <= 1))


def test_degenerate_inputs() -> None:
    assert np.isnan(roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))
    with pytest.raises(ValueError, match="2 predictions for 3 labels"):
        regression_metrics(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="no rows"):
        classification_metrics(np.array([]), np.array([]))


@pytest.mark.parametrize(("metric", "candidate", "champion", "margin", "expected"), [
    ("auc", 0.71, 0.70, 0.0, True),
    ("auc", 0.71, 0.70, 0.02, False),
    ("auc", 0.70, 0.70, 0.0, False),
    ("rmse", 9.0, 10.0, 0.5, True),
    ("rmse", 10.5, 10.0, 0.0, False),
    ("mae", 4.0, 4.2, 0.1, True),
])
def test_is_better_respects_direction_and_margin(metric: str, candidate: float,
                                                  champion: float, margin: float,
                                                  expected: bool) -> None:
    assert is_better(metric, candidate, champion, margin) is expected


def test_unknown_metric_is_named() -> None:
    with pytest.raises(ValueError, match="f1"):
        is_better("f1", 1.0, 0.0, 0.0)


def test_the_catalogue_names_what_each_family_computes() -> None:
    # The gate's directions, the declarations' choices and the metrics computed are one list.
    probability = RNG.random(len(Y))
    assert set(regression_metrics(Y, probability)) == set(CATALOGUE["regression"])
    assert set(classification_metrics(Y, probability)) == set(CATALOGUE["classification"])
    assert {family_of(name) for name in CATALOGUE["regression"]} == {"regression"}
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        family_of("f1")
