"""LogisticRegression against statsmodels' Logit MLE and MLlib on real and in-code data."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from pyspark.ml.classification import LogisticRegression as MLlibLogisticRegression
from sklearn.datasets import load_breast_cancer

from models.regression import LogisticRegression
from tests.models.regression.helpers import frame, relative_error

# Ten breast-cancer features keep the statsmodels MLE finite (all 30 separate the classes).
CANCER_FEATURES = 10


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True)
    return x[:, :CANCER_FEATURES], y.astype(float)


@pytest.fixture(scope="module")
def cancer_df(spark, cancer):
    return frame(spark, *cancer)


@pytest.fixture(scope="module")
def cancer_model(cancer_df):
    return LogisticRegression().fit(cancer_df)


def ordered(params: np.ndarray) -> np.ndarray:
    return np.append(params[1:], params[0])


def estimates(model) -> np.ndarray:
    return np.append(model.coefficients.toArray(), model.intercept)


def test_breast_cancer_matches_statsmodels(cancer_model, cancer):
    x, y = cancer
    reference = sm.Logit(y, sm.add_constant(x)).fit(method="newton", tol=1e-10, maxiter=100,
                                                   disp=0)
    model = cancer_model
    summary = model.summary
    assert relative_error(estimates(model), ordered(reference.params)) < 1e-8
    assert relative_error(summary.coefficientStandardErrors, ordered(reference.bse)) < 1e-8
    assert relative_error(summary.zValues, ordered(reference.tvalues)) < 1e-8
    assert relative_error(summary.pValues, ordered(reference.pvalues)) < 1e-6
    assert summary.numPasses <= 12
    assert summary.objectiveHistory == sorted(summary.objectiveHistory, reverse=True)
    assert summary.objectiveHistory[-1] == pytest.approx(-reference.llf / len(y), rel=1e-12)


def test_spector_matches_statsmodels_and_partitioning_does_not_matter(spark):
    data = sm.datasets.spector.load_pandas()
    x, y = data.exog.to_numpy(), data.endog.to_numpy()
    reference = sm.Logit(y, sm.add_constant(x)).fit(method="newton", tol=1e-10, disp=0)
    fits = [LogisticRegression().fit(frame(spark, x, y, partitions=p)) for p in (1, 7)]
    assert relative_error(estimates(fits[0]), ordered(reference.params)) < 1e-8
    assert relative_error(fits[0].summary.coefficientStandardErrors,
                          ordered(reference.bse)) < 1e-8
    assert relative_error(estimates(fits[1]), estimates(fits[0])) < 1e-10


def test_weights_equal_repeated_rows(spark):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, 2))
    y = (x @ [1.0, -1.0] + rng.normal(size=80) > 0).astype(float)
    w = rng.integers(1, 4, 80).astype(float)
    weighted = LogisticRegression(weightCol="weight", fitIntercept=False).fit(frame(spark, x, y, w))
    repeated = LogisticRegression(fitIntercept=False).fit(
        frame(spark, np.repeat(x, w.astype(int), axis=0), np.repeat(y, w.astype(int))))
    assert relative_error(weighted.coefficients.toArray(),
                          repeated.coefficients.toArray()) < 1e-9
    assert weighted.intercept == 0.0


def test_ridge_matches_mllib_in_fewer_passes(cancer_df):
    ours = LogisticRegression(regParam=0.01).fit(cancer_df)
    mllib = MLlibLogisticRegression(regParam=0.01, tol=1e-12, maxIter=500).fit(cancer_df)
    assert ours.summary.objectiveHistory[-1] <= mllib.summary.objectiveHistory[-1] + 1e-12
    assert ours.summary.objectiveHistory[-1] == pytest.approx(
        mllib.summary.objectiveHistory[-1], rel=1e-9)
    assert ours.summary.numPasses < mllib.summary.totalIterations


@pytest.mark.parametrize("params", [
    {"regParam": 0.01, "elasticNetParam": 0.5},
    {"regParam": 0.01, "standardization": False},
])
def test_regularised_fit_is_optimal(cancer_df, cancer, params):
    """The optimality conditions of MLlib's objective, checked in numpy at our solution:
    mean log-loss + regParam * (a |p b|_1 + (1 - a)/2 |p b|^2), p = sd(x) or 1."""
    x, y = cancer
    model = LogisticRegression(**params).fit(cancer_df)
    b, b0 = model.coefficients.toArray(), model.intercept
    alpha = params.get("elasticNetParam", 0.0)
    p = x.std(axis=0, ddof=1) if params.get("standardization", True) else np.ones(x.shape[1])
    probability = 1 / (1 + np.exp(-(x @ b + b0)))
    smooth = x.T @ (probability - y) / len(y) + params["regParam"] * (1 - alpha) * p**2 * b
    l1 = params["regParam"] * alpha * p
    subgradient = np.where(b != 0, smooth + l1 * np.sign(b),
                           np.sign(smooth) * np.maximum(np.abs(smooth) - l1, 0))
    assert np.max(np.abs(subgradient * x.std(axis=0))) < 1e-7
    assert abs(np.mean(probability - y)) < 1e-9  # the intercept's condition
    if alpha:
        assert np.sum(b == 0) >= 1  # the L1 part selects
    assert model.summary.numPasses <= 15


def test_lbfgs_solver_reaches_the_newton_optimum(spark):
    data = sm.datasets.spector.load_pandas()
    df = frame(spark, data.exog.to_numpy(), data.endog.to_numpy())
    newton = LogisticRegression(regParam=0.001).fit(df)
    lbfgs = LogisticRegression(regParam=0.001, solver="l-bfgs", maxIter=500).fit(df)
    assert lbfgs.summary.objectiveHistory[-1] == pytest.approx(
        newton.summary.objectiveHistory[-1], rel=1e-9)


def test_transform_gives_mllib_columns(cancer_df, cancer_model):
    model = cancer_model
    row = model.transform(cancer_df).first()
    margin = row.features.toArray() @ model.coefficients.toArray() + model.intercept
    probability = 1 / (1 + np.exp(-margin))
    assert np.allclose(row.rawPrediction.toArray(), [-margin, margin], rtol=1e-12)
    assert np.allclose(row.probability.toArray(), [1 - probability, probability], rtol=1e-12)
    assert row.prediction == float(probability > 0.5)
