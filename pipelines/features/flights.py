"""The flights dataset's feature view: bronze flights -> one row per scheduled flight.

Named by ``features.view.function`` in ``conf/datasets/flights/features.yaml``. Nothing
known only after departure leaves here except what the labels are computed from and the
flags the declaration lists as leakage: the actual times, ``dep_delay`` and ``air_time``
are not selected, so no later join can leak them.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

WEATHER_FIELDS: tuple[str, ...] = (
    "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib",
)
# The bronze table the flights derivation takes its plane facts from.
PLANES_SOURCE = "planes"


def flight_examples(tables: Mapping[str, DataFrame]) -> DataFrame:
    """Each scheduled flight with the weather at its origin's scheduled hour and where it goes."""
    flights = scheduled_flights(tables["flights"])
    return join_dest_airport(join_weather(flights, tables["weather"]), tables["airports"])


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
