"""The NIST StRD linear regression sets, their models and certified values, and the LRE.

Shared by the accuracy tests and ``bench/nist_lre.py``; the data and where they come from are
in ``lab/data/nist-strd/`` (its README.md).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyspark.ml.linalg import Vectors
from pyspark.sql import DataFrame, SparkSession

NIST_DIR = Path(__file__).resolve().parent / "data" / "nist-strd"

# name -> (polynomial degree in x, or None for the columns as given; intercept)
MODELS = {
    "Norris": (1, True), "Pontius": (2, True), "NoInt1": (1, False), "NoInt2": (1, False),
    "Filip": (10, True), "Longley": (None, True), "Wampler1": (5, True), "Wampler2": (5, True),
    "Wampler3": (5, True), "Wampler4": (5, True), "Wampler5": (5, True),
}
HARD = ("Filip", "Wampler4", "Wampler5")
MAX_LRE = 15.0


@dataclass(frozen=True)
class NistSet:
    name: str
    x: np.ndarray
    y: np.ndarray
    intercept: bool
    difficulty: str
    estimates: np.ndarray  # B1..Bk then B0 (MLlib's order: coefficients, then intercept)
    std_devs: np.ndarray
    residual_sd: float
    r_squared: float


def _ordered(values: list[float], intercept: bool) -> np.ndarray:
    return np.array(values[1:] + values[:1] if intercept else values)


def load_nist(name: str, directory: Path = NIST_DIR) -> NistSet:
    degree, intercept = MODELS[name]
    lines = (directory / f"{name}.dat").read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if line.strip().startswith("Data:"))
    data = np.array([[float(v) for v in line.split()] for line in lines[start + 1:]
                     if line.strip()])
    y, raw = data[:, 0], data[:, 1:]
    x = raw if degree is None else np.column_stack([raw[:, 0] ** k
                                                    for k in range(1, degree + 1)])
    with open(directory / "certified_parameters.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["dataset"] == name]
    with open(directory / "certified_summary.csv") as handle:
        summary = next(row for row in csv.DictReader(handle) if row["dataset"] == name)
    return NistSet(name, x, y, intercept, summary["difficulty"],
                   _ordered([float(r["estimate"]) for r in rows], intercept),
                   _ordered([float(r["std_dev_of_estimate"]) for r in rows], intercept),
                   float(summary["residual_sd"]), float(summary["r_squared"]))


def nist_frame(spark: SparkSession, data: NistSet, partitions: int = 4) -> DataFrame:
    rows = [(Vectors.dense(x), float(y)) for x, y in zip(data.x, data.y, strict=True)]
    return spark.createDataFrame(spark.sparkContext.parallelize(rows, partitions),
                                 ["features", "label"])


def lre(estimate: float, certified: float) -> float:
    """Log relative error (absolute where the certified value is 0), capped at 15 digits."""
    if not math.isfinite(estimate):
        return 0.0
    error = abs(estimate - certified) / (abs(certified) if certified != 0 else 1.0)
    if error == 0:
        return MAX_LRE
    return float(min(max(-math.log10(error), 0.0), MAX_LRE))


def min_lre(estimates: np.ndarray, certified: np.ndarray) -> float:
    return min(lre(float(e), float(c)) for e, c in zip(estimates, certified, strict=True))
