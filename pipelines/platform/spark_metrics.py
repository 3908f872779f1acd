"""The metrics of ``models.metrics`` as Spark aggregates, for splits too large for the driver.

``models.metrics`` is the reference: it judges a model from numpy arrays on one process,
which is right for a training run's validation rows but not for a test split that grows
with the data. Here the same numbers come from a DataFrame of (label, prediction)
columns: one aggregate of sums per family, plus for ROC AUC one row per partition of
the score axis. Nothing that grows with the rows reaches the driver.

R2's total sum of squares comes from Spark's ``var_pop``, which merges per-partition
(count, mean, M2) triples (Chan et al.'s parallel form of Welford's update), so it is
as stable as numpy's two-pass ``sum((y - mean)**2)`` yet needs no second pass.

ROC AUC is exact, with tied scores counting one half, as in ``models.metrics.roc_auc``:
AUC = sum over positives of (negatives scored lower + half the negatives scored equal)
/ (positives * negatives). Rows are grouped by score (one row per distinct score with
its positive and negative counts), range-partitioned on the score and sorted within
each partition. Each partition then sums its own pairs with a running count of its
negatives and reports (lowest score, highest score, positives, negatives, pairs). As
the partitions cover disjoint, ordered score ranges, a positive in partition ``k``
also outranks every negative of partitions ``0..k-1``: the driver adds
``positives_k * negatives before k`` to each partition's pairs, over one row per
partition.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F

from models.metrics import EPSILON

# What each partition of the score axis reports to the driver; pairs are doubled so
# that half-counted ties stay integers.
PARTITION_SUMS = ("low double, high double, positives long, negatives long, "
                  "twice_pairs long")


@dataclass(frozen=True)
class SplitMetrics:
    """The metrics of one model on a split, and the number of rows they were computed on."""

    rows: int
    values: dict[str, float]


def regression_metrics(df: DataFrame, label: str, prediction: str) -> SplitMetrics:
    """RMSE, MAE and R2 of ``prediction`` against ``label``, in one pass over ``df``."""
    y, predicted = _double(label), _double(prediction)
    residual = y - predicted
    sums = df.agg(F.count(F.lit(1)).alias("rows"),
                  F.sum(residual * residual).alias("squared"),
                  F.sum(F.abs(residual)).alias("absolute"),
                  F.var_pop(y).alias("variance")).first()
    rows = _rows(sums)
    total = sums.variance * rows
    return SplitMetrics(rows, {
        "rmse": math.sqrt(sums.squared / rows),
        "mae": sums.absolute / rows,
        "r2": 1.0 - sums.squared / total if total > 0 else float("nan")})


def classification_metrics(df: DataFrame, label: str, prediction: str,
                           threshold: float = 0.5, *, auc: bool = True) -> SplitMetrics:
    """AUC, log loss, accuracy at ``threshold`` and Brier score of predicted probabilities.

    ``auc=False`` leaves the AUC out, and with it the sort of the score axis: the other
    three come from one aggregate.
    """
    y, probability = _double(label), _double(prediction)
    positive = y == 1
    # Spark orders NaN above every number, so NaN is kept out of clipping and the threshold
    # explicitly, to propagate (log loss) or count as wrong (accuracy) as it does in numpy.
    missing = F.isnan(probability)
    clipped = (F.when(missing, probability).when(probability < EPSILON, EPSILON)
               .when(probability > 1 - EPSILON, 1 - EPSILON).otherwise(probability))
    called = (probability >= threshold) & ~missing
    sums = df.agg(F.count(F.lit(1)).alias("rows"),
                  F.count(F.when(positive, 1)).alias("positives"),
                  F.count(F.when(missing, 1)).alias("missing"),
                  F.sum(y * F.log(clipped) + (1 - y) * F.log(1 - clipped)).alias("likelihood"),
                  F.count(F.when(called == positive, 1)).alias("correct"),
                  F.sum((probability - y) * (probability - y)).alias("squared")).first()
    rows = _rows(sums)
    values = {"log_loss": -sums.likelihood / rows, "accuracy": sums.correct / rows,
              "brier": sums.squared / rows}
    if auc:
        values["auc"] = (float("nan") if sums.missing else
                         _roc_auc(df, label, prediction, sums.positives, rows - sums.positives))
    return SplitMetrics(rows, values)


def roc_auc(df: DataFrame, label: str, score: str, partitions: int | None = None) -> float:
    """Exact ROC AUC of ``score`` for ``label == 1`` (ties count one half).

    ``partitions`` sets how many ranges the score axis is cut into (by default the
    session's shuffle partitions, which adaptive execution may coalesce).
    """
    counts = df.agg(F.count(F.lit(1)).alias("rows"),
                    F.count(F.when(_double(label) == 1, 1)).alias("positives"),
                    F.count(F.when(F.isnan(_double(score)), 1)).alias("missing")).first()
    if counts.missing:
        return float("nan")
    return _roc_auc(df, label, score, counts.positives, counts.rows - counts.positives,
                    partitions)


def _roc_auc(df: DataFrame, label: str, score: str, positives: int, negatives: int,
             partitions: int | None = None) -> float:
    if positives == 0 or negatives == 0:
        return float("nan")
    positive = _double(label) == 1
    per_score = df.groupBy(_double(score).alias("score")).agg(
        F.count(F.when(positive, 1)).alias("positives"),
        F.count(F.when(~positive, 1)).alias("negatives"))
    ranged = (per_score.repartitionByRange(partitions, "score") if partitions
              else per_score.repartitionByRange("score"))
    parts = sorted(ranged.sortWithinPartitions("score")
                   .mapInPandas(count_partition_pairs, PARTITION_SUMS).collect(),
                   key=lambda part: part.low)
    twice_pairs, negatives_below = 0, 0
    for previous, part in zip([None, *parts], parts, strict=False):
        if previous is not None and previous.high >= part.low:
            raise RuntimeError(f"score ranges overlap: {previous} and {part}")
        twice_pairs += part.twice_pairs + 2 * part.positives * negatives_below
        negatives_below += part.negatives
    return twice_pairs / (2 * positives * negatives)


def count_partition_pairs(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """One partition's (low, high, positives, negatives, twice its positive-negative pairs).

    Runs on an executor over the partition's distinct scores in ascending order, batch
    by batch, keeping only running totals.
    """
    low = high = None
    positives = negatives = twice_pairs = 0
    for batch in batches:
        if batch.empty:
            continue
        score = batch["score"].to_numpy()
        pos = batch["positives"].to_numpy(dtype="int64")
        neg = batch["negatives"].to_numpy(dtype="int64")
        if np.any(np.diff(score) <= 0) or (high is not None and score[0] <= high):
            raise RuntimeError("a partition's scores arrived out of order")
        below = negatives + np.cumsum(neg) - neg
        twice_pairs += int(np.sum(pos * (2 * below + neg)))
        positives += int(pos.sum())
        negatives += int(neg.sum())
        low = score[0] if low is None else low
        high = score[-1]
    if low is not None:
        yield pd.DataFrame({"low": [low], "high": [high], "positives": [positives],
                            "negatives": [negatives], "twice_pairs": [twice_pairs]})


def _double(column: str) -> Column:
    # A null is a NaN on the driver (and a pandas UDF's NaN arrives here as a null):
    # it propagates through the sums instead of being skipped by them.
    return F.coalesce(F.col(column).cast("double"), F.lit(float("nan")))


def _rows(sums: Row) -> int:
    if not sums.rows:
        raise ValueError("no rows to compute metrics on")
    return sums.rows
