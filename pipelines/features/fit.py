"""Fit the feature spec on the training split: vocabularies, scaling, missing patterns.

Only training rows are looked at, so no statistic carries information from the
validation or test months. Three Spark jobs in all: one for every vocabulary, one
for every mean, standard deviation and missing count, one comparing missing masks.
"""

from __future__ import annotations

import logging
import math
from itertools import combinations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from models.features.fields import WEATHER_FIELDS
from models.features.spec import Categorical, FeatureSpec, MissingIndicator, Numeric

log = logging.getLogger(__name__)

CATEGORICAL = ("carrier", "origin", "dest", "route", "hour", "dow", "month", "engine")
# route's one-hot columns sum to origin's and dest's: it feeds only the embeddings.
NOT_LINEAR = frozenset({"route"})
NUMERIC = ("distance", "days_to_holiday", "plane_age", "seats", *WEATHER_FIELDS)


def fit_vocabularies(train: DataFrame, min_count: int) -> tuple[Categorical, ...]:
    """Levels seen at least ``min_count`` times, most frequent first (ties by value)."""
    pairs = F.explode(F.array(*[F.struct(F.lit(c).alias("name"),
                                         F.col(c).cast("string").alias("value"))
                                for c in CATEGORICAL]))
    counts = (train.select(pairs.alias("p")).select("p.*").where("value IS NOT NULL")
              .groupBy("name", "value").count().where(F.col("count") >= min_count).collect())
    features = []
    for name in CATEGORICAL:
        levels = sorted(((r["count"], r["value"]) for r in counts if r["name"] == name),
                        key=lambda cv: (-cv[0], cv[1]))
        if not levels:
            raise ValueError(f"no level of {name} is seen {min_count} times in training")
        vocab = tuple(value for _, value in levels)
        features.append(Categorical(name, vocab, reference=vocab[0],
                                    linear=name not in NOT_LINEAR))
    return tuple(features)


def fit_numerics(train: DataFrame) -> tuple[tuple[Numeric, ...], dict[str, int]]:
    """Training means, standard deviations and missing counts of the non-constant numerics.

    A numeric that is constant in training (say, no rain in a short slice) would be an
    all-zero column after scaling, so it is left out of the spec rather than kept.
    """
    aggs = []
    for c in NUMERIC:
        x = F.col(c).cast("double")
        aggs += [F.mean(x).alias(f"{c}__mean"), F.stddev_pop(x).alias(f"{c}__std"),
                 F.count_if(x.isNull()).alias(f"{c}__missing")]
    row = train.agg(*aggs).first().asDict()
    numerics = []
    for c in NUMERIC:
        mean, std = row[f"{c}__mean"], row[f"{c}__std"]
        if mean is None or not std or math.isnan(std):
            log.warning("%s is missing or constant in the training split: not a feature", c)
            continue
        numerics.append(Numeric(c, float(mean), float(std)))
    return tuple(numerics), {n.name: int(row[f"{n.name}__missing"]) for n in numerics}


def fit_missing_indicators(train: DataFrame, missing: dict[str, int]
                           ) -> tuple[MissingIndicator, ...]:
    """One indicator per distinct missing mask among the numerics that go missing in training.

    Numerics missing on exactly the same rows (all weather fields when the hour has no
    report, plane age and seats for an unknown plane) share one indicator: equal
    columns would make the linear design rank-deficient.
    """
    columns = [c for c, count in missing.items() if count > 0]
    if not columns:
        return ()
    pairs = list(combinations(columns, 2))
    differ = train.agg(*[F.count_if(F.col(a).isNull() != F.col(b).isNull()).alias(f"{a}__{b}")
                         for a, b in pairs]).first().asDict() if pairs else {}
    indicators: list[MissingIndicator] = []
    for column in columns:
        if not any(differ[f"{ind.column}__{column}"] == 0 for ind in indicators):
            indicators.append(MissingIndicator(f"{column}_missing", column))
    return tuple(indicators)


def fit_spec(train: DataFrame, planes: DataFrame, *, min_count: int, tail_buckets: int,
             delay_threshold_min: float, feature_table: str, feature_table_version: int
             ) -> FeatureSpec:
    """The spec for the training rows of the feature table (which has the derived columns)."""
    numerics, missing = fit_numerics(train)
    plane_rows = planes.collect()
    return FeatureSpec(
        categorical=fit_vocabularies(train, min_count),
        numeric=numerics,
        missing=fit_missing_indicators(train, missing),
        tail_buckets=tail_buckets,
        planes={r["tailnum"]: (r["plane_year"], r["seats"], r["engine"]) for r in plane_rows},
        feature_table=feature_table,
        feature_table_version=feature_table_version,
        delay_threshold_min=delay_threshold_min,
    )
