"""Model quality metrics on numpy arrays, shared by training, evaluation and benchmarks.

Computed on the driver from label/prediction arrays of a validation or test split,
so every model is judged by the same code whatever trained it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import rankdata

Family = Literal["regression", "classification"]

# The metric catalogue: every metric a promotion gate may use, by the family of models it
# judges (a number predicted, or the probability of a binary label), with whether a larger
# value is better. The model declarations, the evaluation step and the gate all read it.
CATALOGUE: dict[Family, dict[str, bool]] = {
    "regression": {"rmse": False, "mae": False, "r2": True},
    "classification": {"auc": True, "log_loss": False, "accuracy": True, "brier": False},
}
GREATER_IS_BETTER = {name: greater for metrics in CATALOGUE.values()
                     for name, greater in metrics.items()}
EPSILON = 1e-15


def family_of(metric: str) -> Family:
    """The family of models ``metric`` judges, so the right family of metrics is computed."""
    for family, metrics in CATALOGUE.items():
        if metric in metrics:
            return family
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(GREATER_IS_BETTER)}")


def regression_metrics(y: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R2 of ``prediction`` against ``y``."""
    y, prediction = _paired(y, prediction)
    residual = y - prediction
    total = float(np.sum((y - y.mean()) ** 2))
    return {"rmse": float(np.sqrt(np.mean(residual ** 2))),
            "mae": float(np.mean(np.abs(residual))),
            "r2": 1.0 - float(np.sum(residual ** 2)) / total if total > 0 else float("nan")}


def classification_metrics(y: np.ndarray, probability: np.ndarray,
                           threshold: float = 0.5) -> dict[str, float]:
    """AUC, log loss, accuracy at ``threshold`` and Brier score of predicted probabilities."""
    y, probability = _paired(y, probability)
    clipped = np.clip(probability, EPSILON, 1 - EPSILON)
    return {"auc": roc_auc(y, probability),
            "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
            "accuracy": float(np.mean((probability >= threshold) == (y == 1))),
            "brier": float(np.mean((probability - y) ** 2))}


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum identity (ties count one half)."""
    positives = int(np.sum(y == 1))
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct score threshold, from (0, 0)."""
    order = np.argsort(-score, kind="stable")
    y_sorted, s_sorted = y[order], score[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    true_pos = np.cumsum(y_sorted == 1)[last_of_tie]
    false_pos = (last_of_tie + 1) - true_pos
    return (np.r_[0.0, false_pos / max(false_pos[-1], 1)],
            np.r_[0.0, true_pos / max(true_pos[-1], 1)])


def calibration_bins(y: np.ndarray, probability: np.ndarray, bins: int = 10
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean predicted probability, observed frequency and count per equal-width bin."""
    which = np.minimum((probability * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    filled = counts > 0
    predicted = np.bincount(which, weights=probability, minlength=bins)[filled] / counts[filled]
    observed = np.bincount(which, weights=y, minlength=bins)[filled] / counts[filled]
    return predicted, observed, counts[filled]


def is_better(metric: str, candidate: float, champion: float, margin: float) -> bool:
    """True when ``candidate`` beats ``champion`` on ``metric`` by more than ``margin``."""
    family_of(metric)  # refuses an unknown metric by name
    gain = candidate - champion if GREATER_IS_BETTER[metric] else champion - candidate
    return bool(gain > margin)


def _paired(y: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype="float64").reshape(-1)
    prediction = np.asarray(prediction, dtype="float64").reshape(-1)
    if y.shape != prediction.shape:
        raise ValueError(f"{len(prediction)} predictions for {len(y)} labels")
    if not len(y):
        raise ValueError("no rows to compute metrics on")
    return y, prediction
