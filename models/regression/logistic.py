"""Distributed binary logistic regression: ``LogisticRegression`` / ``LogisticRegressionModel``.

Newton (``newton``) up to ``maxDenseFeatures`` features, L-BFGS with distributed gradients above
(``lbfgs``). The objective is MLlib's (mean weighted log-loss plus the elastic-net penalty on
standardised slopes, intercept unpenalised), so the two agree on regularised fits; unlike MLlib
the unregularised fit also reports standard errors, z-values and p-values from the Fisher
information at the optimum. ``tol`` bounds the gradient's largest entry in standardised units.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pyspark import keyword_only
from pyspark.ml import Estimator
from pyspark.ml.param import Param
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame

from models.regression.blocks import DataError, num_features
from models.regression.lbfgs import fit_lbfgs
from models.regression.linear import data_pass_runner
from models.regression.multiple import FitIterator, once, shares_passes
from models.regression.newton import NewtonResult, fit_newton, newton_search, run_searches
from models.regression.params import LogisticRegressionParams
from models.regression.persistence import FittedCoefficients
from models.regression.predict import binary_columns, margin_column
from models.regression.summary import (
    FitTrace,
    LogisticRegressionSummary,
    covariance_standard_errors,
)

log = logging.getLogger(__name__)
MARGIN_COLUMN = "__mlpipe_margin"


class LogisticRegression(Estimator, LogisticRegressionParams, DefaultParamsReadable,
                         DefaultParamsWritable):
    """Binary logistic regression (labels 0/1); a drop-in for MLlib's estimator."""

    @keyword_only
    def __init__(self, *, featuresCol: str = "features", labelCol: str = "label",
                 predictionCol: str = "prediction", probabilityCol: str = "probability",
                 rawPredictionCol: str = "rawPrediction", weightCol: str | None = None,
                 fitIntercept: bool = True, regParam: float = 0.0, elasticNetParam: float = 0.0,
                 standardization: bool = True, maxIter: int = 100, tol: float = 1e-8,
                 threshold: float = 0.5, aggregationDepth: int = 2, solver: str = "auto",
                 maxDenseFeatures: int = 2048) -> None:
        super().__init__()
        self._setDefault(tol=1e-8)
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> LogisticRegression:
        return self._set(**self._input_kwargs)

    def _fit(self, dataset: DataFrame) -> LogisticRegressionModel:
        d = num_features(dataset, self.getFeaturesCol())
        run_pass = data_pass_runner(self, dataset, d)
        if self.use_dense_solver(d):
            result = fit_newton(run_pass, d, **self._options())
            return self._newton_model(result, d, dataset)
        fitted = fit_lbfgs(run_pass, "logistic", **self._options())
        trace = FitTrace(fitted.result.objective_history, fitted.result.iterations,
                         fitted.passes)
        return self._model(fitted.coefficients, fitted.intercept, None, trace,
                           fitted.moments.count, d, dataset)

    def fitMultiple(self, dataset: DataFrame, paramMaps: Sequence[dict[Param, Any]]
                    ) -> Iterator[tuple[int, LogisticRegressionModel]]:
        """One fit per param map; maps that differ only in penalty or tolerances run their
        Newton searches in lockstep, so a ``regParam`` path takes the passes of its
        longest fit rather than the sum."""
        d = num_features(dataset, self.getFeaturesCol())
        if not (shares_passes(paramMaps) and self.use_dense_solver(d)):
            return super().fitMultiple(dataset, paramMaps)
        estimators = [self.copy(param_map) for param_map in paramMaps]
        run_pass = data_pass_runner(self, dataset, d, points=len(estimators))

        def search_all() -> list[NewtonResult | DataError]:
            searches = [newton_search(d, **estimator._options()) for estimator in estimators]
            outcomes, passes = run_searches(run_pass, searches, self.getFitIntercept())
            log.info("%d logistic fits in %d shared passes", len(searches), passes)
            return outcomes

        outcomes = once(search_all)

        def fit_one(index: int) -> LogisticRegressionModel:
            outcome = outcomes()[index]
            if isinstance(outcome, DataError):
                raise outcome
            return estimators[index]._newton_model(outcome, d, dataset)

        return FitIterator(fit_one, len(estimators))

    def _options(self) -> dict[str, Any]:
        return dict(fit_intercept=self.getFitIntercept(), reg_param=self.getRegParam(),
                    elastic_net=self.getElasticNetParam(),
                    standardization=self.getStandardization(), max_iter=self.getMaxIter(),
                    tol=self.getTol())

    def _newton_model(self, result: NewtonResult, d: int, dataset: DataFrame
                      ) -> LogisticRegressionModel:
        beta = result.state.coefficients
        coefficients, intercept = (beta[:d], float(beta[d])) if self.getFitIntercept() \
            else (beta, 0.0)
        errors = (covariance_standard_errors(result.state.information)
                  if self.getRegParam() == 0 else None)
        trace = FitTrace(result.objective_history, result.iterations, result.passes)
        return self._model(coefficients, intercept, errors, trace, result.count, d, dataset)

    def _model(self, coefficients: np.ndarray, intercept: float, errors: np.ndarray | None,
               trace: FitTrace, count: int, d: int, dataset: DataFrame
               ) -> LogisticRegressionModel:
        log.info("logistic fit: %d features, %d iterations, %d passes", d,
                 trace.totalIterations, trace.numPasses)
        model = LogisticRegressionModel(coefficients=coefficients, intercept=intercept)
        self._copyValues(model)
        estimates = np.append(coefficients, intercept) if self.getFitIntercept() else coefficients
        weight_col = self.getOrDefault("weightCol") if self.isDefined("weightCol") else None
        model.summary = LogisticRegressionSummary(
            predictions=model.transform(dataset), featuresCol=self.getFeaturesCol(),
            labelCol=self.getLabelCol(), predictionCol=self.getPredictionCol(),
            weightCol=weight_col or None, trace=trace, numInstances=count,
            standard_errors=errors, estimates=estimates,
            probabilityCol=self.getProbabilityCol())
        return model


class LogisticRegressionModel(FittedCoefficients, LogisticRegressionParams):
    """A fitted binary logistic model; ``transform`` adds rawPrediction, probability, prediction
    in MLlib's layout (vectors [-margin, margin] and [1 - p, p])."""

    @property
    def numClasses(self) -> int:
        return 2

    def _transform(self, dataset: DataFrame) -> DataFrame:
        margin = margin_column(self.getFeaturesCol(), self.coefficients.toArray(),
                               self.intercept)
        with_margin = dataset.withColumn(MARGIN_COLUMN, margin)
        raw, probability, prediction = binary_columns(with_margin[MARGIN_COLUMN],
                                                      self.getThreshold())
        return (with_margin.withColumn(self.getRawPredictionCol(), raw)
                .withColumn(self.getProbabilityCol(), probability)
                .withColumn(self.getPredictionCol(), prediction)
                .drop(MARGIN_COLUMN))

    def predict(self, features: Any) -> float:
        margin = float(np.dot(features.toArray(), self.coefficients.toArray()) + self.intercept)
        return 1.0 if 1.0 / (1.0 + np.exp(-margin)) > self.getThreshold() else 0.0

