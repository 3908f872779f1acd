"""The synthetic generator: deterministic, partition-independent, and the asked-for shape."""

from __future__ import annotations

import numpy as np
import pytest

from lab.regression_data import CHUNK, make_regression_data


def features(df) -> np.ndarray:
    return np.array([row.features.toArray() for row in df.orderBy("label").collect()])


def test_same_seed_same_rows_whatever_the_partitioning(spark):
    rows = CHUNK + 500  # spans two generation chunks
    one, coefficients, intercept = make_regression_data(spark, rows, 4, seed=11, partitions=1)
    five, coefficients5, intercept5 = make_regression_data(spark, rows, 4, seed=11, partitions=5)
    assert np.array_equal(features(one), features(five))
    assert np.array_equal(coefficients, coefficients5) and intercept == intercept5
    other = make_regression_data(spark, rows, 4, seed=12, partitions=1)[0]
    assert not np.array_equal(features(one), features(other))


def test_condition_number_and_labels(spark):
    df, coefficients, intercept = make_regression_data(spark, 3000, 6, condition_number=1e4,
                                                       seed=1, partitions=2, weighted=True)
    rows = df.collect()
    x = np.array([r.features.toArray() for r in rows])
    assert df.columns == ["features", "label", "weight"]
    assert np.linalg.cond(x - x.mean(axis=0)) == pytest.approx(1e4, rel=0.2)
    y = np.array([r.label for r in rows])
    residual = y - x @ coefficients - intercept
    assert residual.std() == pytest.approx(0.1, rel=0.1)
    logistic = make_regression_data(spark, 500, 3, family="logistic", seed=1)[0]
    assert {r.label for r in logistic.select("label").distinct().collect()} == {0.0, 1.0}


def test_rejects_unknown_family(spark):
    with pytest.raises(ValueError, match="family"):
        make_regression_data(spark, 10, 2, family="poisson")
