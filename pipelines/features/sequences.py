"""The sequence table: per entity, windows of the last periods -> the next period's target.

The view (``sequences.view``) gives one row per entity and period, periods without events
included, so a window of ``n`` rows is always ``n`` consecutive periods. Step values are
standardized with statistics of the training periods only. :func:`origin_hourly` is the
flights dataset's view: per origin and local hour, traffic, departure delay and weather.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from pipelines.features.flights import hourly_weather
from pipelines.platform.feature_declarations import (
    SEQUENCE_LABEL,
    SEQUENCE_TARGET_TIME,
    SEQUENCE_WINDOW,
    SequencesConfig,
)


def origin_hourly(tables: Mapping[str, DataFrame]) -> DataFrame:
    """One row per origin and local hour: flights scheduled, their mean departure delay, weather.

    ``dep_delay`` (bronze flights) is the quantity forecast: known for past hours.
    """
    flights, weather = tables["flights"], tables["weather"]
    hour_ts = F.make_timestamp_ntz("year", "month", "day", "hour", F.lit(0), F.lit(0))
    traffic = (flights.groupBy("origin", hour_ts.alias("hour_ts"))
               .agg(F.count(F.lit(1)).alias("flights"),
                    F.mean("dep_delay").alias("mean_dep_delay")))
    grid = (traffic.groupBy("origin")
            .agg(F.min("hour_ts").alias("first"), F.max("hour_ts").alias("last"))
            .select("origin", F.explode(F.sequence("first", "last", F.expr("INTERVAL 1 HOUR")))
                    .alias("hour_ts")))
    keys = ((F.col("origin") == F.col("weather_origin"))
            & (F.to_date("hour_ts") == F.col("weather_date"))
            & (F.hour("hour_ts") == F.col("weather_hour")))
    return (grid.join(traffic, ["origin", "hour_ts"], "left")
            .join(hourly_weather(weather), keys, "left")
            .select("origin", "hour_ts", F.coalesce("flights", F.lit(0)).alias("flights"),
                    "mean_dep_delay", "temp", "wind_speed", "precip", "visib"))


def step_statistics(train: DataFrame, steps: list[str]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation (1 where constant) of each step column on training periods."""
    row = train.agg(*[F.mean(c).alias(f"{c}__m") for c in steps],
                    *[F.stddev_pop(c).alias(f"{c}__s") for c in steps]).first()
    return {c: (float(row[f"{c}__m"] or 0.0), float(row[f"{c}__s"] or 0.0) or 1.0)
            for c in steps}


def sequence_windows(periods: DataFrame, declared: SequencesConfig,
                     stats: dict[str, tuple[float, float]]) -> DataFrame:
    """Rows of ``window`` (``declared.window`` x steps, oldest first) and ``target``.

    ``target`` is the next period's ``declared.target``; periods after which it is
    unknown (nothing happened) have no target and are dropped.
    """
    entity, time = declared.entity, declared.time
    ordered = Window.partitionBy(entity).orderBy(time)
    step = F.array(*[F.coalesce((F.col(c).cast("double") - F.lit(stats[c][0]))
                                / F.lit(stats[c][1]), F.lit(0.0)) for c in declared.steps])
    return (periods
            .withColumn(SEQUENCE_WINDOW, F.collect_list(step).over(
                ordered.rowsBetween(-(declared.window - 1), Window.currentRow)))
            .withColumn(SEQUENCE_LABEL, F.lead(declared.target, 1).over(ordered).cast("double"))
            .withColumn(SEQUENCE_TARGET_TIME, F.lead(time, 1).over(ordered))
            .where((F.size(SEQUENCE_WINDOW) == declared.window) & F.col(SEQUENCE_LABEL).isNotNull())
            .select(entity, time, SEQUENCE_TARGET_TIME, SEQUENCE_WINDOW, SEQUENCE_LABEL))
