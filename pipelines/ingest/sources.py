"""The landing sources: the explicit schema of each, its validation rules and its flags.

Ingest never infers a schema: a file that does not match these columns and types
sends its rows to quarantine with the reason instead of changing the bronze table.
Rules are SQL conditions that a *valid* row satisfies; a NULL result counts as
valid, because missing values are the business of ``required`` (a cancelled flight
has no departure time and is real data, not a bad row).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql.types import (
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


@dataclass(frozen=True)
class Source:
    """One landing source: ``landing/<name>/*.csv`` -> ``lake/bronze/<name>``."""

    name: str
    schema: StructType
    required: tuple[str, ...]
    rules: tuple[tuple[str, str], ...] = ()
    flags: dict[str, str] = field(default_factory=dict)
    # The columns bronze keeps per-file min/max statistics for: those its readers filter
    # on. Empty means Delta's default, every column, which on flights is a fifth of the
    # bronze write.
    stats_columns: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]

    @property
    def header(self) -> str:
        """The header line every landing file of this source starts with."""
        return ",".join(self.columns)


def _schema(*fields: tuple[str, type]) -> StructType:
    return StructType([StructField(name, kind(), True) for name, kind in fields])


def _clock(column: str, last: int = 2359) -> str:
    """An hhmm clock time: hours up to ``last // 100`` and minutes below 60."""
    return f"{column} BETWEEN 0 AND {last} AND {column} % 100 < 60"


# A calendar day, checked with integer arithmetic rather than by formatting a date string
# and parsing it back on every row.
_LEAP_YEAR = "year % 4 = 0 AND (year % 100 != 0 OR year % 400 = 0)"
_DAYS_IN_MONTH = (f"CASE WHEN month = 2 THEN IF({_LEAP_YEAR}, 29, 28) "
                  "WHEN month IN (4, 6, 9, 11) THEN 30 ELSE 31 END")
_DATE_RULES = (
    ("invalid:month", "month BETWEEN 1 AND 12"),
    ("invalid:day", "day BETWEEN 1 AND 31"),
    ("invalid:date", f"year BETWEEN 1 AND 9999 AND day <= {_DAYS_IN_MONTH}"),
)

FLIGHTS = Source(
    name="flights",
    schema=_schema(
        ("year", IntegerType), ("month", IntegerType), ("day", IntegerType),
        ("dep_time", IntegerType), ("sched_dep_time", IntegerType), ("dep_delay", DoubleType),
        ("arr_time", IntegerType), ("sched_arr_time", IntegerType), ("arr_delay", DoubleType),
        ("carrier", StringType), ("flight", IntegerType), ("tailnum", StringType),
        ("origin", StringType), ("dest", StringType), ("air_time", DoubleType),
        ("distance", DoubleType), ("hour", IntegerType), ("minute", IntegerType),
        ("time_hour", TimestampType),
    ),
    required=("year", "month", "day", "sched_dep_time", "sched_arr_time", "carrier", "flight",
              "origin", "dest", "distance", "hour", "minute", "time_hour"),
    rules=(
        *_DATE_RULES,
        ("invalid:sched_dep_time", _clock("sched_dep_time")),
        ("invalid:sched_arr_time", _clock("sched_arr_time")),
        # 2400 is how the feed writes midnight for actual times.
        ("invalid:dep_time", _clock("dep_time", 2400)),
        ("invalid:arr_time", _clock("arr_time", 2400)),
        ("invalid:hour", "hour BETWEEN 0 AND 23"),
        ("invalid:minute", "minute BETWEEN 0 AND 59"),
        ("invalid:distance", "distance > 0"),
        ("invalid:air_time", "air_time > 0"),
        ("invalid:dep_delay", "dep_delay BETWEEN -1440 AND 2880"),
        ("invalid:arr_delay", "arr_delay BETWEEN -1440 AND 2880"),
        ("invalid:carrier", "carrier RLIKE '^[A-Z0-9]{2}$'"),
        ("invalid:origin", "origin RLIKE '^[A-Z0-9]{3}$'"),
        ("invalid:dest", "dest RLIKE '^[A-Z0-9]{3}$'"),
    ),
    # No departure: cancelled. Departed but no arrival delay: diverted. Both are kept.
    flags={"cancelled": "dep_time IS NULL",
           "diverted": "dep_time IS NOT NULL AND arr_delay IS NULL"},
    stats_columns=("year", "month", "day", "time_hour"),
)

WEATHER = Source(
    name="weather",
    schema=_schema(
        ("origin", StringType), ("year", IntegerType), ("month", IntegerType),
        ("day", IntegerType), ("hour", IntegerType), ("temp", DoubleType), ("dewp", DoubleType),
        ("humid", DoubleType), ("wind_dir", DoubleType), ("wind_speed", DoubleType),
        ("wind_gust", DoubleType), ("precip", DoubleType), ("pressure", DoubleType),
        ("visib", DoubleType), ("time_hour", TimestampType),
    ),
    required=("origin", "year", "month", "day", "hour", "time_hour"),
    rules=(
        *_DATE_RULES,
        ("invalid:hour", "hour BETWEEN 0 AND 23"),
        ("invalid:temp", "temp BETWEEN -60 AND 130"),
        ("invalid:humid", "humid BETWEEN 0 AND 100"),
        ("invalid:wind_dir", "wind_dir BETWEEN 0 AND 360"),
        # Wind speeds are in mph; the strongest gust ever measured is about 250.
        ("invalid:wind_speed", "wind_speed BETWEEN 0 AND 250"),
        ("invalid:wind_gust", "wind_gust BETWEEN 0 AND 250"),
        ("invalid:precip", "precip >= 0"),
        ("invalid:pressure", "pressure BETWEEN 850 AND 1100"),
        ("invalid:visib", "visib >= 0"),
    ),
    stats_columns=("origin", "time_hour"),
)

PLANES = Source(
    name="planes",
    schema=_schema(
        ("tailnum", StringType), ("year", IntegerType), ("type", StringType),
        ("manufacturer", StringType), ("model", StringType), ("engines", IntegerType),
        ("seats", IntegerType), ("speed", DoubleType), ("engine", StringType),
    ),
    required=("tailnum",),
    rules=(
        ("invalid:year", "year BETWEEN 1900 AND 2100"),
        ("invalid:engines", "engines BETWEEN 0 AND 8"),
        ("invalid:seats", "seats > 0"),
    ),
)

AIRPORTS = Source(
    name="airports",
    schema=_schema(
        ("faa", StringType), ("name", StringType), ("lat", DoubleType), ("lon", DoubleType),
        ("alt", IntegerType), ("tz", IntegerType), ("dst", StringType), ("tzone", StringType),
    ),
    required=("faa", "lat", "lon"),
    rules=(
        ("invalid:lat", "lat BETWEEN -90 AND 90"),
        ("invalid:lon", "lon BETWEEN -180 AND 180"),
        ("invalid:tz", "tz BETWEEN -12 AND 14"),
    ),
)

AIRLINES = Source(
    name="airlines",
    schema=_schema(("carrier", StringType), ("name", StringType)),
    required=("carrier", "name"),
)

SOURCES: dict[str, Source] = {s.name: s for s in (FLIGHTS, WEATHER, PLANES, AIRPORTS, AIRLINES)}


def get_source(name: str) -> Source:
    """The source called ``name``; a KeyError lists the known ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"no source {name!r}; known sources: {', '.join(SOURCES)}") from None
