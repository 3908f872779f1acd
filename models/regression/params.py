"""The Params of the regression estimators, named as in ``pyspark.ml`` so a user switches by import.

Shared Params come from ``pyspark.ml.param.shared``; the few of our own (the solver choice, the
refinement pass, the dense-solver feature limit) are declared here once and mixed into both
estimators and their models.
"""

from __future__ import annotations

from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (
    HasAggregationDepth,
    HasElasticNetParam,
    HasFeaturesCol,
    HasFitIntercept,
    HasLabelCol,
    HasMaxIter,
    HasPredictionCol,
    HasProbabilityCol,
    HasRawPredictionCol,
    HasRegParam,
    HasStandardization,
    HasThreshold,
    HasTol,
    HasWeightCol,
)

# A d x d Hessian (or R factor) per partition costs n*d^2 flops and d^2 doubles of shuffle; above
# this many features the quasi-Newton path with d-sized gradients is faster (see bench/RESULTS.md).
DEFAULT_MAX_DENSE_FEATURES = 2048


class _RegressionParams(
    HasFeaturesCol, HasLabelCol, HasWeightCol, HasPredictionCol, HasFitIntercept, HasRegParam,
    HasElasticNetParam, HasStandardization, HasMaxIter, HasTol, HasAggregationDepth,
):
    """Params both estimators share."""

    solver: Param[str] = Param(
        Params._dummy(), "solver",
        "'auto' (dense solver up to maxDenseFeatures features, else 'l-bfgs'), 'dense' "
        "(Householder TSQR for linear, Newton for logistic) or 'l-bfgs'",
        typeConverter=TypeConverters.toString,
    )
    maxDenseFeatures: Param[int] = Param(
        Params._dummy(), "maxDenseFeatures",
        "above this many features 'auto' uses L-BFGS instead of a d x d factor per partition",
        typeConverter=TypeConverters.toInt,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            featuresCol="features", labelCol="label", predictionCol="prediction",
            fitIntercept=True, regParam=0.0, elasticNetParam=0.0, standardization=True,
            maxIter=100, tol=1e-6, aggregationDepth=2, solver="auto",
            maxDenseFeatures=DEFAULT_MAX_DENSE_FEATURES,
        )

    def getSolver(self) -> str:
        return self.getOrDefault(self.solver)

    def getMaxDenseFeatures(self) -> int:
        return self.getOrDefault(self.maxDenseFeatures)

    def use_dense_solver(self, num_features: int) -> bool:
        """Whether the fit factors a d x d matrix (TSQR / Newton) rather than running L-BFGS."""
        solver = self.getSolver()
        if solver not in ("auto", "dense", "l-bfgs"):
            raise ValueError(f"solver must be 'auto', 'dense' or 'l-bfgs', got {solver!r}")
        if solver == "auto":
            return num_features <= self.getMaxDenseFeatures()
        return solver == "dense"


class LinearRegressionParams(_RegressionParams):
    """Params of the linear estimator and model."""

    refinement: Param[str] = Param(
        Params._dummy(), "refinement",
        "second data pass for iterative refinement of the least-squares solution: 'auto' (when the "
        "scaled R factor's condition number exceeds refinementThreshold), 'always' or 'never'",
        typeConverter=TypeConverters.toString,
    )
    refinementThreshold: Param[float] = Param(
        Params._dummy(), "refinementThreshold",
        "condition number of the column-scaled R above which refinement='auto' makes a second pass",
        typeConverter=TypeConverters.toFloat,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(refinement="auto", refinementThreshold=1e7)

    def getRefinement(self) -> str:
        return self.getOrDefault(self.refinement)

    def getRefinementThreshold(self) -> float:
        return self.getOrDefault(self.refinementThreshold)


class LogisticRegressionParams(_RegressionParams, HasProbabilityCol, HasRawPredictionCol,
                               HasThreshold):
    """Params of the (binary) logistic estimator and model."""

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(probabilityCol="probability", rawPredictionCol="rawPrediction",
                         threshold=0.5)
