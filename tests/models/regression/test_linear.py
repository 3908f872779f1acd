"""LinearRegression against statsmodels/numpy and MLlib on small in-code data."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from pyspark.ml.regression import LinearRegression as MLlibLinearRegression
from sklearn.linear_model import ElasticNet

from models.regression import LinearRegression
from tests.models.regression.helpers import frame, linear_data, relative_error


@pytest.fixture(scope="module")
def data():
    return linear_data()


@pytest.fixture(scope="module")
def df(spark, data):
    return frame(spark, *data)


@pytest.fixture(scope="module")
def model(df):
    return LinearRegression().fit(df)


def ordered(params: np.ndarray) -> np.ndarray:
    """statsmodels puts the constant first; MLlib and we put the intercept last."""
    return np.append(params[1:], params[0])


def test_matches_statsmodels_ols(model, data):
    x, y = data
    reference = sm.OLS(y, sm.add_constant(x)).fit()
    summary = model.summary
    assert relative_error(np.append(model.coefficients.toArray(), model.intercept),
                          ordered(reference.params)) < 1e-10
    assert relative_error(summary.coefficientStandardErrors, ordered(reference.bse)) < 1e-9
    assert relative_error(summary.tValues, ordered(reference.tvalues)) < 1e-9
    assert relative_error(summary.pValues, ordered(reference.pvalues)) < 1e-6
    assert summary.r2 == pytest.approx(reference.rsquared, rel=1e-12)
    assert summary.r2adj == pytest.approx(reference.rsquared_adj, rel=1e-12)
    assert summary.rootMeanSquaredError == pytest.approx(np.sqrt(reference.ssr / len(y)), rel=1e-10)
    assert summary.meanAbsoluteError == pytest.approx(np.mean(np.abs(reference.resid)), rel=1e-10)
    assert summary.numPasses == 1
    assert summary.degreesOfFreedom == len(y) - 4


def test_predictions_match_coefficients(df, model):
    rows = model.transform(df).select("features", "prediction").collect()
    expected = [r.features.toArray() @ model.coefficients.toArray() + model.intercept
                for r in rows]
    assert np.allclose([r.prediction for r in rows], expected, rtol=1e-12)


def test_no_intercept_matches_numpy(spark, data):
    x, y = data
    model = LinearRegression(fitIntercept=False).fit(frame(spark, x, y))
    expected, *_ = np.linalg.lstsq(x, y, rcond=None)
    assert model.intercept == 0.0
    assert relative_error(model.coefficients.toArray(), expected) < 1e-10
    reference = sm.OLS(y, x).fit()
    assert relative_error(model.summary.coefficientStandardErrors, reference.bse) < 1e-9
    assert model.summary.r2 == pytest.approx(reference.rsquared, rel=1e-12)  # uncentred


def test_weights_match_statsmodels_wls(spark, data):
    x, y = data
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    w[:5] = 0.0  # zero-weight rows do not count
    model = LinearRegression(weightCol="weight").fit(frame(spark, x, y, w))
    keep = w > 0
    reference = sm.WLS(y[keep], sm.add_constant(x[keep]), weights=w[keep]).fit()
    assert relative_error(np.append(model.coefficients.toArray(), model.intercept),
                          ordered(reference.params)) < 1e-10
    assert relative_error(model.summary.coefficientStandardErrors, ordered(reference.bse)) < 1e-9


def test_partitioning_does_not_change_the_fit(spark, data):
    fits = [LinearRegression().fit(frame(spark, *data, partitions=p)) for p in (1, 7)]
    one, seven = (np.append(m.coefficients.toArray(), m.intercept) for m in fits)
    assert relative_error(seven, one) < 1e-10
    assert relative_error(fits[1].summary.coefficientStandardErrors,
                          fits[0].summary.coefficientStandardErrors) < 1e-10


def test_lbfgs_solver_agrees_with_tsqr(df, model):
    dense = model
    lbfgs = LinearRegression(solver="l-bfgs", tol=1e-12).fit(df)
    assert relative_error(lbfgs.coefficients.toArray(), dense.coefficients.toArray()) < 1e-6
    assert lbfgs.summary.numPasses > 2


def test_ridge_matches_mllib(df):
    ours = LinearRegression(regParam=0.3).fit(df)
    mllib = MLlibLinearRegression(regParam=0.3, solver="l-bfgs", tol=1e-12, maxIter=200).fit(df)
    assert ours.summary.objectiveHistory[-1] <= mllib.summary.objectiveHistory[-1] + 1e-12
    assert relative_error(ours.coefficients.toArray(), mllib.coefficients.toArray()) < 1e-6
    assert ours.summary.numPasses == 1
    with pytest.raises(ValueError, match="unregularised"):
        ours.summary.coefficientStandardErrors


def test_unstandardised_ridge_through_origin_closed_form(spark, data):
    """MLlib's objective with standardization off: 1/(2n)|y - Xb|^2 + regParam/(2 sd_y)|b|^2."""
    x, y = data
    model = LinearRegression(regParam=0.3, standardization=False, fitIntercept=False).fit(
        frame(spark, x, y))
    n, label_sd = len(y), y.std(ddof=1)
    expected = np.linalg.solve(x.T @ x / n + 0.3 / label_sd * np.eye(3), x.T @ y / n)
    assert relative_error(model.coefficients.toArray(), expected) < 1e-10


def test_elastic_net_matches_sklearn(df, data):
    """In standardised units the problem is scikit-learn's ElasticNet with alpha=regParam/sd_y."""
    x, y = data
    model = LinearRegression(regParam=0.1, elasticNetParam=0.7).fit(df)
    x_sd, y_sd = x.std(axis=0, ddof=1), y.std(ddof=1)
    reference = ElasticNet(alpha=0.1 / y_sd, l1_ratio=0.7, tol=1e-14, max_iter=100_000).fit(
        (x - x.mean(axis=0)) / x_sd, (y - y.mean()) / y_sd)
    assert relative_error(model.coefficients.toArray(), reference.coef_ * y_sd / x_sd) < 1e-8


def test_regularisation_path_shrinks(df):
    norms, zeros = [], []
    for reg in (0.0, 0.1, 1.0, 10.0):
        coefficients = LinearRegression(regParam=reg, elasticNetParam=1.0).fit(df).coefficients
        norms.append(np.abs(coefficients.toArray()).sum())
        zeros.append(int(np.sum(coefficients.toArray() == 0)))
    assert norms == sorted(norms, reverse=True) and norms[-1] < norms[0]
    assert zeros == sorted(zeros) and zeros[-1] == 3  # a large L1 penalty zeroes every slope
