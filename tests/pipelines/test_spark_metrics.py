"""The Spark metrics must give models.metrics' numbers, with ties and over several partitions.

numpy (``models.metrics``) is the reference: every metric here is compared with it to
1e-9 relative on small frames whose scores tie, spread over five input partitions,
including the cases where numpy answers nan.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession

from models import metrics as reference
from pipelines.platform.spark_metrics import (
    classification_metrics,
    count_partition_pairs,
    regression_metrics,
    roc_auc,
)

ROWS = 300


def frame(spark: SparkSession, label: np.ndarray, prediction: np.ndarray) -> DataFrame:
    return spark.createDataFrame(pd.DataFrame({"y": label, "p": prediction})).repartition(5)


def assert_same(got: dict[str, float], expected: dict[str, float]) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(got[key]), (key, got[key])
        else:
            assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12), \
                (key, got[key], value)


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.mark.parametrize("offset", [0.0, 1e8])
def test_regression_metrics_equal_numpy(spark: SparkSession, rng: np.random.Generator,
                                        offset: float) -> None:
    # A large offset with unit spread breaks a one-pass sum(y**2) - n*mean**2 total.
    y = offset + rng.normal(size=ROWS)
    prediction = offset + np.round(y - offset + rng.normal(scale=0.5, size=ROWS), 1)
    got = regression_metrics(frame(spark, y, prediction), "y", "p")
    assert got.rows == ROWS
    assert_same(got.values, reference.regression_metrics(y, prediction))


def test_classification_metrics_equal_numpy_with_ties(spark: SparkSession,
                                                      rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, size=ROWS).astype(float)
    # Scores on a 0.01 grid tie often; they hit the 0.5 threshold and both clipping bounds.
    probability = np.round(np.clip(0.3 * y + rng.uniform(-0.1, 0.8, size=ROWS), 0, 1), 2)
    probability[:3] = [0.0, 1.0, 0.5]
    assert len(np.unique(probability)) < ROWS // 2
    df = frame(spark, y, probability)
    got = classification_metrics(df, "y", "p")
    expected = reference.classification_metrics(y, probability)
    assert got.rows == ROWS
    assert 0.5 < expected["auc"] < 1.0
    assert_same(got.values, expected)
    # Without the AUC (a selection by log loss): the other metrics alone, the same values.
    without = classification_metrics(df, "y", "p", auc=False).values
    assert_same(without, {k: v for k, v in expected.items() if k != "auc"})
    # Cut into several score ranges, whose pairs are combined on the driver.
    assert math.isclose(roc_auc(df, "y", "p", partitions=7), expected["auc"], rel_tol=1e-9)


def test_partition_pairs_carry_across_batches() -> None:
    # One partition's distinct scores, as Arrow may cut them into several batches.
    scores = pd.DataFrame({"score": [0.1, 0.2, 0.3, 0.4, 0.5], "positives": [1, 0, 2, 1, 3],
                           "negatives": [2, 1, 0, 3, 1]})
    whole = next(count_partition_pairs(iter([scores])))
    cut = next(count_partition_pairs(iter([scores[:2], scores[2:2], scores[2:]])))
    # Pairs by hand: each positive's lower negatives, plus half its tied ones, doubled.
    assert whole.twice_pairs[0] == 1 * 2 + 2 * 6 + 1 * (6 + 3) + 3 * (2 * 6 + 1) == 62
    pd.testing.assert_frame_equal(cut, whole)


def test_auc_is_nan_with_one_class_like_numpy(spark: SparkSession,
                                              rng: np.random.Generator) -> None:
    probability = np.round(rng.uniform(size=40), 1)
    for label in (0.0, 1.0):
        y = np.full(40, label)
        got = classification_metrics(frame(spark, y, probability), "y", "p")
        expected = reference.classification_metrics(y, probability)
        assert math.isnan(expected["auc"])
        assert_same(got.values, expected)


def test_nan_predictions_propagate_like_numpy(spark: SparkSession) -> None:
    # A pandas NaN reaches Spark as a null (as a UDF's NaN does): neither may be skipped.
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    probability = np.array([0.2, np.nan, 0.7, 0.9, 0.5])
    df = frame(spark, y, probability)
    expected = reference.classification_metrics(y, probability)
    assert math.isnan(expected["auc"]) and expected["accuracy"] == 0.6
    assert_same(classification_metrics(df, "y", "p").values, expected)
    assert_same(regression_metrics(df, "y", "p").values,
                reference.regression_metrics(y, probability))


def test_constant_label_has_nan_r2_like_numpy(spark: SparkSession) -> None:
    y, prediction = np.full(10, 2.0), np.linspace(1, 3, 10)
    got = regression_metrics(frame(spark, y, prediction), "y", "p")
    assert_same(got.values, reference.regression_metrics(y, prediction))
    assert math.isnan(got.values["r2"])


def test_no_rows_is_an_error_like_numpy(spark: SparkSession) -> None:
    empty = frame(spark, np.array([1.0]), np.array([0.5])).where("y < 0")
    with pytest.raises(ValueError, match="no rows"):
        regression_metrics(empty, "y", "p")
    with pytest.raises(ValueError, match="no rows"):
        classification_metrics(empty, "y", "p")
