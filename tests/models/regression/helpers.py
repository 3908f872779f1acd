"""Small in-code data sets as Spark DataFrames, for the regression tests."""

from __future__ import annotations

import numpy as np
from pyspark.ml.linalg import Vectors
from pyspark.sql import DataFrame, SparkSession


def frame(spark: SparkSession, x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None,
          partitions: int = 4) -> DataFrame:
    """``features``/``label`` (and ``weight``) rows spread over ``partitions`` partitions."""
    if w is None:
        rows = [(Vectors.dense(a), float(b)) for a, b in zip(x, y, strict=True)]
        names = ["features", "label"]
    else:
        rows = [(Vectors.dense(a), float(b), float(c)) for a, b, c in zip(x, y, w, strict=True)]
        names = ["features", "label", "weight"]
    return spark.createDataFrame(spark.sparkContext.parallelize(rows, partitions), names).cache()


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    return float(np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), 1e-300)))


def linear_data(rows: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3)) * [1.0, 10.0, 0.1] + [5.0, -2.0, 1.0]
    y = x @ [1.5, -0.2, 4.0] + 3.0 + rng.normal(scale=0.5, size=rows)
    return x, y
