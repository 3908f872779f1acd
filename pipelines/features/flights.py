"""The flights dataset's feature view: bronze flights -> one row per scheduled flight.

Named by ``features.view.function`` in ``conf/datasets/flights/features.yaml``. Nothing
known only after departure leaves here except what the labels are computed from and the
flags the declaration lists as leakage: the actual times, ``dep_delay`` and ``air_time``
are not selected, so no later join can leak them. The history features read outcomes
(delays) of strictly earlier days only, so each is known before the day's first departure
(``tests/pipelines/test_features.py`` rewrites a day's outcomes to check it).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

WEATHER_FIELDS: tuple[str, ...] = (
    "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib",
)
# What is known of each flight before its day's first departure: the timetable's load at
# its origin, and the record of its carrier, route and origin on earlier days (with the
# number of days each looks back over).
SCHEDULE_LOAD = "origin_hour_departures"
HISTORY_DAYS = {"carrier_arr_delay_7d": 7, "route_arr_delay_28d": 28, "origin_dep_delay_1d": 1}
PRE_DEPARTURE_FIELDS: tuple[str, ...] = (SCHEDULE_LOAD, *HISTORY_DAYS)


def flight_examples(tables: Mapping[str, DataFrame]) -> DataFrame:
    """Each scheduled flight with the weather at its origin's scheduled hour, where it goes,
    the departures scheduled beside it, and its carrier's, route's and origin's record on
    earlier days."""
    bronze = tables["flights"]
    flights = with_schedule_load(scheduled_flights(bronze))
    flights = with_recent_record(flights, bronze, ["carrier"], "arr_delay",
                                 "carrier_arr_delay_7d")
    flights = with_recent_record(flights, bronze, ["origin", "dest"], "arr_delay",
                                 "route_arr_delay_28d")
    flights = with_recent_record(flights, bronze, ["origin"], "dep_delay",
                                 "origin_dep_delay_1d")
    return join_dest_airport(join_weather(flights, tables["weather"]), tables["airports"])


def with_schedule_load(flights: DataFrame) -> DataFrame:
    """``origin_hour_departures``: the departures the timetable has at the origin in the
    flight's local hour that day (cancelled ones included: the timetable is what is known)."""
    hour = Window.partitionBy("origin", "flight_date", F.hour("sched_dep_local"))
    return flights.withColumn(SCHEDULE_LOAD,
                              F.count(F.lit(1)).over(hour).cast("double"))


def with_recent_record(flights: DataFrame, bronze: DataFrame, keys: list[str], outcome: str,
                       name: str) -> DataFrame:
    """``name``: the mean ``outcome`` of the flights sharing ``keys`` over the
    ``HISTORY_DAYS[name]`` days before the flight's day, strictly earlier days only, so it
    is known before any departure of the day. NULL where those days had none."""
    day = F.make_date("year", "month", "day")
    # Every day a key has a flight gets a row, with or without outcomes, so the flights
    # of that day find their history.
    daily = (bronze.groupBy(*keys, F.unix_date(day).alias("day_number"))
             .agg(F.sum(outcome).alias("total"), F.count(outcome).alias("count")))
    earlier = (Window.partitionBy(*keys).orderBy("day_number")
               .rangeBetween(-HISTORY_DAYS[name], -1))
    record = daily.select(*keys, "day_number",
                          (F.try_divide(F.sum("total").over(earlier), F.sum("count").over(earlier)))
                          .alias(name))
    return (flights.withColumn("day_number", F.unix_date("flight_date"))
            .join(record, [*keys, "day_number"], "left").drop("day_number"))


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
