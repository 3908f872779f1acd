"""Distributed linear least squares: ``LinearRegression`` / ``LinearRegressionModel``.

The default fit is one pass: every partition reduces its rows to the R factor of the centred,
weighted ``[X | y]`` and the factors combine up a tree (``tsqr``). X'X is never formed, so the
condition number is not squared, which is what costs MLlib's normal solver its digits on the
NIST sets. When the estimated least-squares condition number says the answer has lost more than
about seven digits, a second pass computes the residual in extended precision and refines the
solution once (``refinement``); ``summary.numPasses`` reports the passes made.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pyspark import keyword_only
from pyspark.ml import Estimator
from pyspark.ml.param import Param
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame

from models.regression.blocks import DataError, num_features, prepare_frame, tree_aggregate
from models.regression.lbfgs import fit_lbfgs
from models.regression.least_squares import refine, residual_partial, solve_least_squares
from models.regression.multiple import FitIterator, once, shares_passes
from models.regression.params import LinearRegressionParams
from models.regression.persistence import FittedCoefficients
from models.regression.predict import margin_column
from models.regression.summary import FitTrace, LinearRegressionSummary, linear_standard_errors
from models.regression.tsqr import QRPartial, merge_partials, partition_partial

log = logging.getLogger(__name__)


def data_pass_runner(estimator: Any, dataset: DataFrame, d: int, points: int = 1) -> Any:
    """``run_pass(reduce, merge)``: one tree-aggregated pass over the validated columns.

    Partials are at most a (d + 2)^2 matrix (R factor or Hessian) plus vectors, per point
    a pass evaluates."""
    weight_col = estimator.getOrDefault("weightCol") if estimator.isDefined("weightCol") else ""
    prepared = prepare_frame(dataset, estimator.getFeaturesCol(), estimator.getLabelCol(),
                             weight_col or None)
    names = (estimator.getFeaturesCol(), estimator.getLabelCol(), weight_col or "")

    def run_pass(reduce_partition: Any, merge: Any) -> Any:
        result = tree_aggregate(prepared, reduce_partition, merge,
                                estimator.getAggregationDepth(), names, 8 * points * (d + 4) ** 2)
        if result is None:
            raise DataError("empty DataFrame: there are no rows (with positive weight) to fit")
        return result

    return run_pass


class LinearRegression(Estimator, LinearRegressionParams, DefaultParamsReadable,
                       DefaultParamsWritable):
    """Least squares with optional elastic-net penalty; a drop-in for MLlib's estimator."""

    @keyword_only
    def __init__(self, *, featuresCol: str = "features", labelCol: str = "label",
                 predictionCol: str = "prediction", weightCol: str | None = None,
                 fitIntercept: bool = True, regParam: float = 0.0, elasticNetParam: float = 0.0,
                 standardization: bool = True, maxIter: int = 100, tol: float = 1e-6,
                 aggregationDepth: int = 2, solver: str = "auto", maxDenseFeatures: int = 2048,
                 refinement: str = "auto", refinementThreshold: float = 1e7) -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> LinearRegression:
        return self._set(**self._input_kwargs)

    def _fit(self, dataset: DataFrame) -> LinearRegressionModel:
        d = num_features(dataset, self.getFeaturesCol())
        run_pass = data_pass_runner(self, dataset, d)
        if self.use_dense_solver(d):
            model = self._fit_dense(run_pass, run_pass(partition_partial, merge_partials))
        else:
            model = self._fit_lbfgs(run_pass)
        return self._finish(model, dataset)

    def _finish(self, model: LinearRegressionModel, dataset: DataFrame) -> LinearRegressionModel:
        self._copyValues(model)
        model.summary.predictions = model.transform(dataset)
        return model

    def fitMultiple(self, dataset: DataFrame, paramMaps: Sequence[dict[Param, Any]]
                    ) -> Iterator[tuple[int, LinearRegressionModel]]:
        """One fit per param map; maps that differ only in penalty or tolerances share one
        R factor, so the whole ``regParam`` path costs one pass (plus any refinement)."""
        d = num_features(dataset, self.getFeaturesCol())
        if not (shares_passes(paramMaps) and self.use_dense_solver(d)):
            return super().fitMultiple(dataset, paramMaps)
        run_pass = data_pass_runner(self, dataset, d)
        shared = once(lambda: run_pass(partition_partial, merge_partials))
        estimators = [self.copy(param_map) for param_map in paramMaps]

        def fit_one(index: int) -> LinearRegressionModel:
            estimator = estimators[index]
            return estimator._finish(estimator._fit_dense(run_pass, shared()), dataset)

        return FitIterator(fit_one, len(estimators))

    def _fit_dense(self, run_pass: Any, partial: QRPartial) -> LinearRegressionModel:
        """Solve from the R factor of the data; a second pass only to refine an
        ill-conditioned unregularised fit."""
        fit_intercept, reg_param = self.getFitIntercept(), self.getRegParam()
        fit = solve_least_squares(partial, fit_intercept=fit_intercept, reg_param=reg_param,
                                  elastic_net=self.getElasticNetParam(),
                                  standardization=self.getStandardization(), tol=self.getTol(),
                                  max_iter=self.getMaxIter())
        passes = 1
        if reg_param == 0 and self._wants_refinement(fit.ls_condition):
            mean = partial.mean if fit_intercept else np.zeros_like(partial.mean)
            residuals = run_pass(functools.partial(residual_partial, mean, fit.coefficients),
                                 _sum_pair)
            fit = refine(fit, partial, fit_intercept, residuals)
            passes = 2
        d = len(fit.coefficients)
        dof = partial.count - d - int(fit_intercept)
        errors = None
        if reg_param == 0 and dof > 0:
            sigma = float(np.sqrt(fit.rss / dof))
            errors = linear_standard_errors(fit.scaled_r, fit.scales, partial.mean[:-1], sigma,
                                            partial.weight_sum, fit_intercept)
        log.info("linear fit: %d rows, %d features, %d pass(es), LS condition ~%.2g",
                 partial.count, d, passes, fit.ls_condition)
        model = LinearRegressionModel(coefficients=fit.coefficients, intercept=fit.intercept)
        model.summary = self._summary(
            fit.coefficients, fit.intercept, errors,
            FitTrace([fit.objective], max(fit.sweeps, 1), passes), partial.count, fit.rss,
            fit.tss, partial.weight_sum, dof)
        return model

    def _wants_refinement(self, ls_condition: float) -> bool:
        mode = self.getRefinement()
        if mode not in ("auto", "always", "never"):
            raise ValueError(f"refinement must be 'auto', 'always' or 'never', got {mode!r}")
        return mode == "always" or (mode == "auto" and
                                    ls_condition > self.getRefinementThreshold())

    def _fit_lbfgs(self, run_pass: Any) -> LinearRegressionModel:
        fitted = fit_lbfgs(run_pass, "linear", fit_intercept=self.getFitIntercept(),
                           reg_param=self.getRegParam(), elastic_net=self.getElasticNetParam(),
                           standardization=self.getStandardization(),
                           max_iter=self.getMaxIter(), tol=self.getTol())
        moments = fitted.moments
        label_var = float(moments.std[-1]) ** 2
        denominator = moments.weight_sum - moments.weight_sq_sum / moments.weight_sum
        # The optimiser's loss is in units of the label's standard deviation.
        rss = 2.0 * fitted.result.loss * moments.weight_sum * (label_var or 1.0)
        tss = label_var * denominator
        if not self.getFitIntercept():
            tss += moments.weight_sum * float(moments.mean[-1]) ** 2
        model = LinearRegressionModel(coefficients=fitted.coefficients,
                                      intercept=fitted.intercept)
        dof = moments.count - len(fitted.coefficients) - int(self.getFitIntercept())
        model.summary = self._summary(
            fitted.coefficients, fitted.intercept, None,
            FitTrace(fitted.result.objective_history, fitted.result.iterations, fitted.passes),
            moments.count, rss, tss, moments.weight_sum, dof)
        return model

    def _summary(self, coefficients: np.ndarray, intercept: float, errors: np.ndarray | None,
                 trace: FitTrace, count: int, rss: float, tss: float, weight_sum: float,
                 dof: int) -> LinearRegressionSummary:
        estimates = np.append(coefficients, intercept) if self.getFitIntercept() else coefficients
        weight_col = self.getOrDefault("weightCol") if self.isDefined("weightCol") else None
        return LinearRegressionSummary(
            predictions=None, featuresCol=self.getFeaturesCol(), labelCol=self.getLabelCol(),
            predictionCol=self.getPredictionCol(), weightCol=weight_col or None, trace=trace,
            numInstances=count, standard_errors=errors, estimates=estimates, rss=rss, tss=tss,
            weight_sum=weight_sum, degreesOfFreedom=dof, fit_intercept=self.getFitIntercept())


def _sum_pair(a: tuple | None, b: tuple | None) -> tuple | None:
    if a is None or b is None:
        return a if b is None else b
    return a[0] + b[0], a[1] + b[1]


class LinearRegressionModel(FittedCoefficients, LinearRegressionParams):
    """A fitted linear model; ``transform`` adds ``predictionCol`` (vectorised, per batch)."""

    def _transform(self, dataset: DataFrame) -> DataFrame:
        margin = margin_column(self.getFeaturesCol(), self.coefficients.toArray(),
                               self.intercept)
        return dataset.withColumn(self.getPredictionCol(), margin)

    def predict(self, features: Any) -> float:
        return float(np.dot(features.toArray(), self.coefficients.toArray()) + self.intercept)

