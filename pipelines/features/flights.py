"""Bronze flights -> one row per labelled flight with its raw fields, enrichments and split.

Nothing known only after departure is kept except the labels: the actual times,
``dep_delay`` and ``air_time`` are dropped here, so no later join can leak them.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from models.features.fields import WEATHER_FIELDS

ID_COLUMNS = ("flight_date", "carrier", "flight", "origin", "dest", "tailnum")


def scheduled_flights(flights: DataFrame) -> DataFrame:
    """Identity, schedule and labels of each flight; ``sched_dep_local`` is local wall time."""
    sched = F.col("sched_dep_time")
    return flights.select(
        F.make_date("year", "month", "day").alias("flight_date"),
        "carrier", "flight", "origin", "dest", "tailnum", "distance",
        F.make_timestamp_ntz("year", "month", "day", (sched / 100).cast("int"), sched % 100,
                             F.lit(0)).alias("sched_dep_local"),
        "arr_delay", "cancelled", "diverted",
    )


def hourly_weather(weather: DataFrame) -> DataFrame:
    """One weather row per origin (``weather_origin``) and local hour.

    The feed repeats the hour that occurs twice when daylight saving time ends; the
    first report of such an hour is kept.
    """
    return (weather
            .select(F.col("origin").alias("weather_origin"),
                    F.make_date("year", "month", "day").alias("weather_date"),
                    F.col("hour").alias("weather_hour"), "time_hour", *WEATHER_FIELDS)
            .withColumn("_n", F.row_number().over(
                Window.partitionBy("weather_origin", "weather_date", "weather_hour")
                .orderBy("time_hour")))
            .where("_n = 1")
            .drop("_n", "time_hour"))


def join_weather(flights: DataFrame, weather: DataFrame) -> DataFrame:
    """The weather at the origin for the scheduled hour of departure (local time)."""
    keys = ((F.col("origin") == F.col("weather_origin"))
            & (F.to_date("sched_dep_local") == F.col("weather_date"))
            & (F.hour("sched_dep_local") == F.col("weather_hour")))
    return (flights.join(hourly_weather(weather), keys, "left")
            .select(*flights.columns, *WEATHER_FIELDS))


def join_dest_airport(flights: DataFrame, airports: DataFrame) -> DataFrame:
    """Where the flight goes: the destination airport's position, altitude and time zone."""
    dest = airports.select(F.col("faa").alias("dest"), F.col("lat").alias("dest_lat"),
                           F.col("lon").alias("dest_lon"), F.col("alt").alias("dest_alt"),
                           F.col("tz").alias("dest_tz")).dropDuplicates(["dest"])
    return flights.join(F.broadcast(dest), "dest", "left")


def plane_facts(planes: DataFrame) -> DataFrame:
    """Bronze planes as the lookup the spec carries: tailnum -> year built, seats, engine."""
    return (planes.select("tailnum", F.col("year").alias("plane_year"), "seats", "engine")
            .dropDuplicates(["tailnum"]))


def add_labels(flights: DataFrame, threshold_min: float) -> DataFrame:
    """``is_delayed`` = arrival more than ``threshold_min`` late; NULL where there is no label."""
    return flights.withColumn("is_delayed",
                              (F.col("arr_delay") > F.lit(threshold_min)).cast("int"))


def labelled(flights: DataFrame) -> DataFrame:
    """Flights with a label: cancelled and diverted flights have no arrival delay."""
    return flights.where(F.col("arr_delay").isNotNull())


def add_split(df: DataFrame, day: str, train_end: date, validation_end: date) -> DataFrame:
    """``split``: train up to ``train_end``, validation up to ``validation_end``, then test."""
    column = F.col(day)
    return df.withColumn(
        "split",
        F.when(column <= F.lit(train_end), "train")
        .when(column <= F.lit(validation_end), "validation")
        .otherwise("test"))
