"""Vectorised prediction columns: one matrix-vector product per Arrow batch, never a row loop.

The margin ``x . b + b0`` is a scalar pandas UDF over ``vector_to_array`` (the vectors become
arrays in the JVM); everything derived from it (probabilities, labels) is built from Spark SQL
expressions so it runs in the JVM.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf


def _margins(coefficients: np.ndarray, intercept: float, vectors: pd.Series) -> pd.Series:
    if len(vectors) == 0:
        return pd.Series([], dtype="float64")
    x = np.stack(vectors.to_numpy())
    return pd.Series(x @ coefficients + intercept)


def margin_column(features_col: str, coefficients: np.ndarray, intercept: float) -> Column:
    """``x . coefficients + intercept`` for every row of ``features_col``."""
    margins = functools.partial(_margins, np.asarray(coefficients, dtype=np.float64),
                                float(intercept))
    # pandas_udf infers the UDF kind from the type hints of the argument left open.
    margins.__annotations__ = {"vectors": pd.Series, "return": pd.Series}
    udf = pandas_udf(margins, "double")
    return udf(vector_to_array(F.col(features_col), "float64"))


def binary_columns(margin: Column, threshold: float) -> tuple[Column, Column, Column]:
    """(rawPrediction, probability, prediction) from the margin, as MLlib lays them out."""
    probability = F.lit(1.0) / (F.lit(1.0) + F.exp(-margin))
    raw = array_to_vector(F.array(-margin, margin))
    probabilities = array_to_vector(F.array(F.lit(1.0) - probability, probability))
    prediction = F.when(probability > F.lit(threshold), 1.0).otherwise(0.0)
    return raw, probabilities, prediction
