"""The sequence table: per origin, the last hours of traffic and weather -> next hour's delay.

Every hour of the range gets a row, hours without departures included (0 flights,
delay imputed), so a window of ``n`` rows is always ``n`` consecutive hours. Step
values are standardized with statistics of the training hours only.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from pipelines.features.flights import hourly_weather

STEP_FEATURES = ("flights", "mean_dep_delay", "temp", "wind_speed", "precip", "visib")


def origin_hourly(flights: DataFrame, weather: DataFrame) -> DataFrame:
    """One row per origin and local hour: flights scheduled, their mean departure delay, weather.

    ``flights`` are bronze flights (``dep_delay`` is the quantity forecast here, known
    for past hours); ``weather`` is bronze weather.
    """
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


def step_statistics(hourly_train: DataFrame) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation (1 where constant) of each step feature on training hours."""
    row = hourly_train.agg(*[F.mean(c).alias(f"{c}__m") for c in STEP_FEATURES],
                           *[F.stddev_pop(c).alias(f"{c}__s") for c in STEP_FEATURES]).first()
    return {c: (float(row[f"{c}__m"] or 0.0), float(row[f"{c}__s"] or 0.0) or 1.0)
            for c in STEP_FEATURES}


def sequence_windows(hourly: DataFrame, window_hours: int,
                     stats: dict[str, tuple[float, float]]) -> DataFrame:
    """Rows of ``window`` (``window_hours`` x step features, oldest first) and ``target``.

    ``target`` is the next hour's mean departure delay; hours after which nothing departs
    have no target and are dropped.
    """
    ordered = Window.partitionBy("origin").orderBy("hour_ts")
    step = F.array(*[F.coalesce((F.col(c).cast("double") - F.lit(stats[c][0]))
                                / F.lit(stats[c][1]), F.lit(0.0)) for c in STEP_FEATURES])
    return (hourly
            .withColumn("window", F.collect_list(step).over(
                ordered.rowsBetween(-(window_hours - 1), Window.currentRow)))
            .withColumn("target", F.lead("mean_dep_delay", 1).over(ordered))
            .withColumn("target_hour", F.lead("hour_ts", 1).over(ordered))
            .where((F.size("window") == window_hours) & F.col("target").isNotNull())
            .select("origin", "hour_ts", "target_hour", "window", "target"))
