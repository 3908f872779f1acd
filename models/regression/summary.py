"""Training summaries: the fit's statistics, named as MLlib's summaries name them.

Inference statistics are ordered as MLlib orders them: one entry per coefficient, then the
intercept last when one was fitted. Quantities that need another look at the data (the mean
absolute error) are computed on first access from ``predictions``, like MLlib's lazy summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy import stats
from scipy.linalg import solve_triangular


@dataclass(frozen=True)
class FitTrace:
    """How the fit went: the objective per iteration and the full data passes it made."""

    objectiveHistory: list[float]
    totalIterations: int
    numPasses: int


@dataclass
class _Summary:
    predictions: DataFrame
    featuresCol: str
    labelCol: str
    predictionCol: str
    weightCol: str | None
    trace: FitTrace
    numInstances: int
    standard_errors: np.ndarray | None  # coefficients then intercept; None when regularised
    estimates: np.ndarray  # coefficients then intercept, aligned with standard_errors

    @property
    def objectiveHistory(self) -> list[float]:
        return list(self.trace.objectiveHistory)

    @property
    def totalIterations(self) -> int:
        return self.trace.totalIterations

    @property
    def numPasses(self) -> int:
        return self.trace.numPasses

    @property
    def coefficientStandardErrors(self) -> list[float]:
        return self._inference().tolist()

    def _inference(self) -> np.ndarray:
        if self.standard_errors is None:
            raise ValueError("standard errors, test statistics and p-values are only available "
                             "for unregularised fits (regParam=0) with the dense solver")
        return self.standard_errors

    def _statistics(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.estimates / self._inference()


@dataclass
class LinearRegressionSummary(_Summary):
    """Statistics of a least-squares fit (MLlib's ``LinearRegressionTrainingSummary``)."""

    rss: float = 0.0
    tss: float = 0.0
    weight_sum: float = 0.0
    degreesOfFreedom: int = 0
    fit_intercept: bool = True
    abs_residual_sum: float | None = field(default=None, repr=False)

    @property
    def tValues(self) -> list[float]:
        return self._statistics().tolist()

    @property
    def pValues(self) -> list[float]:
        return (2.0 * stats.t.sf(np.abs(self._statistics()), self.degreesOfFreedom)).tolist()

    @property
    def meanSquaredError(self) -> float:
        return self.rss / self.weight_sum

    @property
    def rootMeanSquaredError(self) -> float:
        return float(np.sqrt(self.meanSquaredError))

    @property
    def r2(self) -> float:
        """1 - RSS/TSS; TSS is uncentred for fits through the origin, as in MLlib and NIST."""
        return 1.0 - self.rss / self.tss if self.tss > 0 else float("nan")

    @property
    def r2adj(self) -> float:
        intercept = 1 if self.fit_intercept else 0
        n, p = self.numInstances, len(self.estimates) - intercept
        return 1.0 - (1.0 - self.r2) * (n - intercept) / (n - p - intercept)

    @property
    def explainedVariance(self) -> float:
        return max(self.tss - self.rss, 0.0) / self.weight_sum

    @cached_property
    def meanAbsoluteError(self) -> float:
        if self.abs_residual_sum is not None:
            return self.abs_residual_sum / self.weight_sum
        weight = F.col(self.weightCol) if self.weightCol else F.lit(1.0)
        error = F.abs(F.col(self.labelCol) - F.col(self.predictionCol))
        row = self.predictions.select(F.sum(weight * error), F.sum(weight)).first()
        return float(row[0] / row[1])


@dataclass
class LogisticRegressionSummary(_Summary):
    """Statistics of a logistic maximum-likelihood fit; MLlib's has no inference statistics."""

    probabilityCol: str = "probability"

    @property
    def zValues(self) -> list[float]:
        return self._statistics().tolist()

    @property
    def pValues(self) -> list[float]:
        return (2.0 * stats.norm.sf(np.abs(self._statistics()))).tolist()


def linear_standard_errors(scaled_r: np.ndarray, scales: np.ndarray, mean: np.ndarray,
                           sigma: float, weight_sum: float, fit_intercept: bool) -> np.ndarray:
    """Standard errors from R: diag((X'WX)^-1) is the squared row norms of R^-1, no inverse of
    a Gram matrix. The intercept's variance adds 1/W + x_mean' (X_c'WX_c)^-1 x_mean."""
    inverse = solve_triangular(scaled_r, np.eye(len(scales)))
    errors = sigma * np.linalg.norm(inverse, axis=1) / scales
    if not fit_intercept:
        return errors
    v = inverse.T @ (mean / scales)
    return np.append(errors, sigma * np.sqrt(1.0 / weight_sum + v @ v))


def covariance_standard_errors(information: np.ndarray) -> np.ndarray:
    """Standard errors as sqrt(diag(I^-1)), solved on the Jacobi-scaled information matrix."""
    scale = np.sqrt(np.diag(information))
    scaled = information / np.outer(scale, scale)
    inverse = np.linalg.inv(scaled)
    return np.sqrt(np.diag(inverse)) / scale
