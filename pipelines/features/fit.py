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

from models.features.spec import Categorical, FeatureSpec, Hashed, MissingIndicator, Numeric
from pipelines.platform.feature_declarations import CategoricalDeclaration, FeaturesConfig

log = logging.getLogger(__name__)


def fit_vocabularies(train: DataFrame, categorical: dict[str, CategoricalDeclaration],
                     min_count: int) -> tuple[Categorical, ...]:
    """Levels seen at least ``min_count`` times, most frequent first (ties by value)."""
    if not categorical:
        return ()
    pairs = F.explode(F.array(*[F.struct(F.lit(c).alias("name"),
                                         F.col(c).cast("string").alias("value"))
                                for c in categorical]))
    counts = (train.select(pairs.alias("p")).select("p.*").where("value IS NOT NULL")
              .groupBy("name", "value").count().where(F.col("count") >= min_count).collect())
    features = []
    for name, declared in categorical.items():
        levels = sorted(((r["count"], r["value"]) for r in counts if r["name"] == name),
                        key=lambda cv: (-cv[0], cv[1]))
        if not levels:
            raise ValueError(f"no level of {name} is seen {min_count} times in training")
        vocab = tuple(value for _, value in levels)
        features.append(Categorical(name, vocab, reference=vocab[0], linear=declared.linear))
    return tuple(features)


def fit_numerics(train: DataFrame, names: list[str]
                 ) -> tuple[tuple[Numeric, ...], dict[str, int]]:
    """Training means, standard deviations and missing counts of the non-constant numerics.

    A numeric that is constant in training (say, no rain in a short slice) would be an
    all-zero column after scaling, so it is left out of the spec rather than kept.
    """
    if not names:
        return (), {}
    aggs = []
    for c in names:
        x = F.col(c).cast("double")
        aggs += [F.mean(x).alias(f"{c}__mean"), F.stddev_pop(x).alias(f"{c}__std"),
                 F.count_if(x.isNull()).alias(f"{c}__missing")]
    row = train.agg(*aggs).first().asDict()
    numerics = []
    for c in names:
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


def fit_spec(train: DataFrame, planes: DataFrame | None, declared: FeaturesConfig, *,
             feature_table: str, feature_table_version: int) -> FeatureSpec:
    """The spec of the declared encodings for the training rows of the feature table (which
    has the derived columns); ``planes`` are the flights derivation's plane facts."""
    numerics, missing = fit_numerics(train, declared.numeric)
    plane_rows = planes.collect() if planes is not None else []
    return FeatureSpec(
        request=dict(declared.request),
        derivation=declared.derivation,
        categorical=fit_vocabularies(train, declared.categorical, declared.min_category_count),
        numeric=numerics,
        missing=fit_missing_indicators(train, missing),
        hashed=tuple(Hashed(column, buckets) for column, buckets in declared.hashed.items()),
        planes={r["tailnum"]: (r["plane_year"], r["seats"], r["engine"]) for r in plane_rows},
        feature_table=feature_table,
        feature_table_version=feature_table_version,
        labels=dict(declared.labels),
    )
