"""``fitMultiple`` over a ``regParam`` path: the same models as one fit each, in fewer passes."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pyspark.sql import SparkSession

from models.regression import LinearRegression, LogisticRegression
from models.regression.blocks import DataError
from tests.models.regression.helpers import frame, linear_data

PATH = [0.0, 0.01, 0.3]
GROUPS = itertools.count()


def binary_data(rows: int = 400, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)) * [1.0, 3.0, 0.5, 2.0]
    margin = x @ [0.8, -0.3, 1.5, 0.2] - 0.4
    return x, (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(float)


def jobs_of(spark: SparkSession, action: Callable[[], Any]) -> tuple[Any, int]:
    """The result of ``action`` and how many Spark jobs it ran (each pass is one)."""
    group = f"fit-multiple-{next(GROUPS)}"
    spark.sparkContext.setJobGroup(group, "counting passes")
    try:
        result = action()
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    return result, len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def coefficients(model) -> np.ndarray:
    return np.append(model.coefficients.toArray(), model.intercept)


@pytest.mark.parametrize("estimator,data", [(LinearRegression, linear_data),
                                            (LogisticRegression, binary_data)])
def test_a_path_gives_the_models_of_one_fit_each(spark, estimator, data):
    df = frame(spark, *data())
    fitter = estimator(elasticNetParam=0.5)
    maps = [{fitter.regParam: r} for r in PATH]
    singles = [jobs_of(spark, lambda m=m: fitter.copy(m).fit(df)) for m in maps]
    path, path_jobs = jobs_of(spark, lambda: sorted(fitter.fitMultiple(df, maps)))
    assert [index for index, _ in path] == [0, 1, 2]
    for (_, model), (single, _) in zip(path, singles, strict=True):
        np.testing.assert_allclose(coefficients(model), coefficients(single), rtol=1e-12,
                                   atol=1e-14)
        assert model.getRegParam() == single.getRegParam()
    single_jobs = [jobs for _, jobs in singles]
    # Linear: one R factor for the whole path. Logistic: the longest search's passes.
    assert path_jobs == max(single_jobs) < sum(single_jobs)


def test_a_failed_fit_raises_at_its_own_index_and_the_path_goes_on(spark):
    x, y = binary_data()
    x = np.column_stack((x, x[:, 0] - 2 * x[:, 2]))  # collinear: only regParam > 0 fits
    fitter = LogisticRegression()
    fits = fitter.fitMultiple(frame(spark, x, y), [{fitter.regParam: r} for r in PATH])
    with pytest.raises(DataError, match="rank-deficient"):
        next(fits)
    assert [index for index, _ in fits] == [1, 2]


def test_maps_that_change_the_data_are_fitted_one_by_one(spark):
    x, y = linear_data()
    df = frame(spark, x, y)
    df = df.withColumn("doubled", df["label"] * 2)
    fitter = LinearRegression()
    (_, plain), (_, doubled) = sorted(fitter.fitMultiple(df, [{}, {fitter.labelCol: "doubled"}]))
    np.testing.assert_allclose(coefficients(doubled), 2 * coefficients(plain), rtol=1e-10)
