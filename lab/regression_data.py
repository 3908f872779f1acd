"""Synthetic regression data, generated on executors: for benchmarks and tests at any size.

Rows come from ``spark.range`` and are made by a module-level ``mapInArrow`` function from the
seed and the row index alone, in fixed chunks of ``CHUNK`` rows with one random stream each, so
the data do not depend on the partitioning or the Arrow batch size, and nothing is collected to
the driver. Ill-conditioning is a fixed mixing ``X = Z diag(s) H1 H2`` (Z standard normal, s
log-spaced from 1 down to 1/condition_number, H1 and H2 Householder reflections), whose
condition number is exactly the one requested while applying it costs O(d) per row.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.special import expit

CHUNK = 4096


@dataclass(frozen=True)
class Design:
    """Everything a row needs besides its index: plain arrays, shipped to executors."""

    seed: int
    family: str
    scales: np.ndarray  # singular values of the mixing
    reflections: np.ndarray  # (2, d) unit Householder vectors
    shift: np.ndarray  # feature means
    coefficients: np.ndarray
    intercept: float
    noise: float
    weighted: bool


def _design(seed: int, features: int, family: str, condition_number: float | None,
            noise: float, weighted: bool) -> Design:
    rng = np.random.default_rng([seed, 0])
    if condition_number:
        scales = np.logspace(0.0, -np.log10(condition_number), features)
        reflections = rng.standard_normal((2, features))
        reflections /= np.linalg.norm(reflections, axis=1, keepdims=True)
    else:
        scales, reflections = np.ones(features), np.zeros((2, features))
    shift = rng.uniform(-1.0, 1.0, features)
    coefficients = rng.standard_normal(features)
    # Scale the coefficients so the linear predictor has standard deviation 1 (2 for logistic).
    spread = np.linalg.norm(_mix(coefficients[None, :], reflections, np.ones(features),
                                 transpose=True) * scales)
    coefficients *= (2.0 if family == "logistic" else 1.0) / spread
    return Design(seed, family, scales, reflections, shift, coefficients,
                  float(rng.uniform(-0.5, 0.5)), noise, weighted)


def _mix(z: np.ndarray, reflections: np.ndarray, scales: np.ndarray,
         transpose: bool = False) -> np.ndarray:
    """Z diag(s) H1 H2 (or, transposed, the map applied to coefficient rows: b H2 H1)."""
    out = z * scales if not transpose else z.copy()
    order = reflections[::-1] if transpose else reflections
    for v in order:
        out -= 2.0 * np.outer(out @ v, v)
    return out


def _chunk(design: Design, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng([design.seed, 1, index])
    d = len(design.scales)
    x = _mix(rng.standard_normal((CHUNK, d)), design.reflections, design.scales) + design.shift
    eta = x @ design.coefficients + design.intercept
    if design.family == "logistic":
        y = (rng.random(CHUNK) < expit(eta)).astype(np.float64)
    else:
        y = eta + design.noise * rng.standard_normal(CHUNK)
    w = rng.uniform(0.5, 1.5, CHUNK) if design.weighted else np.ones(CHUNK)
    return x, y, w


def _generate(design: Design, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        ids = batch.column(0).to_numpy()
        if len(ids) == 0:
            continue
        parts = []
        for index in range(int(ids[0]) // CHUNK, int(ids[-1]) // CHUNK + 1):
            x, y, w = _chunk(design, index)
            start = index * CHUNK
            mask = (ids >= start) & (ids < start + CHUNK)
            rows = ids[mask] - start
            parts.append((x[rows], y[rows], w[rows]))
        x = np.concatenate([p[0] for p in parts])
        values = pa.array(x.ravel())
        offsets = pa.array(np.arange(0, x.size + 1, x.shape[1], dtype=np.int32))
        yield pa.RecordBatch.from_arrays(
            [pa.ListArray.from_arrays(offsets, values),
             pa.array(np.concatenate([p[1] for p in parts])),
             pa.array(np.concatenate([p[2] for p in parts]))],
            names=["x", "label", "weight"])


def make_regression_data(spark: SparkSession, rows: int, features: int, *,
                         family: str = "linear", condition_number: float | None = None,
                         noise: float = 0.1, weighted: bool = False, seed: int = 0,
                         partitions: int | None = None
                         ) -> tuple[DataFrame, np.ndarray, float]:
    """(DataFrame of ``features`` vectors, ``label`` and, if ``weighted``, ``weight``; the true
    coefficients; the true intercept). Logistic labels are Bernoulli(sigmoid(x.b + b0))."""
    if family not in ("linear", "logistic"):
        raise ValueError(f"family must be 'linear' or 'logistic', got {family!r}")
    if condition_number is not None and condition_number < 1:
        raise ValueError(f"condition_number must be >= 1, got {condition_number}")
    design = _design(seed, features, family, condition_number, noise, weighted)
    frame = spark.range(0, rows, numPartitions=partitions or spark.sparkContext.defaultParallelism)
    generated = frame.mapInArrow(functools.partial(_generate, design),
                                 "x array<double>, label double, weight double")
    columns = [array_to_vector(F.col("x")).alias("features"), F.col("label")]
    if weighted:
        columns.append(F.col("weight"))
    return generated.select(*columns), design.coefficients.copy(), design.intercept
