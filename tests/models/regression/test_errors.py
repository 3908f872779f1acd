"""Bad input gives a clear error that names the problem, for both estimators."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.linalg import Vectors

from models.regression import LinearRegression, LogisticRegression
from tests.models.regression.helpers import frame

ESTIMATORS = [LinearRegression, LogisticRegression]


def binary_data(rows: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(rows, 3))
    return x, (x[:, 0] + rng.normal(size=rows) > 0).astype(float)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_rank_deficient_design_names_the_columns(spark, estimator):
    x, y = binary_data()
    x = np.column_stack((x, x[:, 0] - 2 * x[:, 2]))  # feature 3 = f0 - 2 f2
    with pytest.raises(ValueError, match=r"rank-deficient.*\b3\b"):
        estimator().fit(frame(spark, x, y))


def test_constant_feature_is_named(spark):
    x, y = binary_data()
    x[:, 1] = 7.0
    with pytest.raises(ValueError, match=r"rank-deficient.*\[1\].*constant"):
        LinearRegression().fit(frame(spark, x, y))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_nan_feature_is_named(spark, estimator):
    x, y = binary_data()
    x[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*'features'.*\[2\]"):
        estimator().fit(frame(spark, x, y))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_non_numeric_label_is_named(spark, estimator):
    df = spark.createDataFrame([(Vectors.dense([1.0]), "yes"), (Vectors.dense([2.0]), "no")],
                               ["features", "label"])
    with pytest.raises(ValueError, match="label column 'label' must be numeric, got string"):
        estimator().fit(df)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_empty_dataframe_is_named(spark, estimator):
    x, y = binary_data()
    empty = frame(spark, x, y).filter("label > 99")
    with pytest.raises(ValueError, match="empty DataFrame"):
        estimator().fit(empty)


def test_logistic_label_outside_zero_one_is_named(spark):
    x, _ = binary_data()
    with pytest.raises(ValueError, match="labels 0 or 1"):
        LogisticRegression().fit(frame(spark, x, np.arange(len(x)) % 3))


def test_missing_column_is_named(spark):
    x, y = binary_data()
    with pytest.raises(ValueError, match="weight column 'w' not found"):
        LinearRegression(weightCol="w").fit(frame(spark, x, y))
