"""The report plots users look at first in MLflow: residuals, ROC, calibration, comparisons.

Each function returns a matplotlib Figure (headless Agg backend), which the caller
logs with ``mlflow.log_figure``; nothing here writes files.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from models.metrics import calibration_bins, roc_auc, roc_curve

MAX_POINTS = 5000


def residuals_plot(y: np.ndarray, prediction: np.ndarray, title: str) -> Figure:
    """Residuals against predictions, and their histogram."""
    residual = y - prediction
    sample = _sample(len(y))
    figure = Figure(figsize=(10, 4))
    scatter, histogram = figure.subplots(1, 2)
    scatter.scatter(prediction[sample], residual[sample], s=4, alpha=0.3)
    scatter.axhline(0.0, color="black", linewidth=0.8)
    scatter.set(xlabel="prediction", ylabel="residual", title=f"{title}: residuals")
    histogram.hist(residual, bins=60)
    histogram.set(xlabel="residual", ylabel="rows", title="residual distribution")
    figure.tight_layout()
    return figure


def roc_plot(y: np.ndarray, probability: np.ndarray, title: str) -> Figure:
    """The ROC curve with its AUC."""
    false_pos, true_pos = roc_curve(y, probability)
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    axes.plot(false_pos, true_pos, label=f"AUC {roc_auc(y, probability):.4f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{title}: ROC")
    axes.legend(loc="lower right")
    return figure


def calibration_plot(y: np.ndarray, probability: np.ndarray, title: str, bins: int = 10
                     ) -> Figure:
    """Observed frequency against mean predicted probability per bin."""
    predicted, observed, counts = calibration_bins(y, probability, bins)
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axes.plot(predicted, observed, marker="o")
    for x, yy, n in zip(predicted, observed, counts, strict=True):
        axes.annotate(f"{n}", (x, yy), fontsize=7, textcoords="offset points", xytext=(3, -8))
    axes.set(xlabel="mean predicted probability", ylabel="observed frequency",
             title=f"{title}: calibration", xlim=(0, 1), ylim=(0, 1))
    return figure


def comparison_plot(values: Mapping[str, float], metric: str, title: str) -> Figure:
    """One bar per contender (candidate, champion) on the gate's metric."""
    figure = Figure(figsize=(5, 4))
    axes = figure.subplots()
    bars = axes.bar(list(values), list(values.values()), color=["tab:blue", "tab:grey"])
    axes.bar_label(bars, fmt="%.4f")
    axes.set(ylabel=metric, title=title)
    return figure


def _sample(n: int) -> np.ndarray:
    """At most MAX_POINTS evenly spread row indices, so scatter plots stay readable."""
    return np.linspace(0, n - 1, min(n, MAX_POINTS)).astype(int) if n else np.arange(0)
