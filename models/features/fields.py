"""The fields a model sees: what a caller sends (raw), what is derived, what is never a feature.

``RAW_FIELDS`` is the request contract of serving and the input of both encoders:
a scheduled flight as a user knows it before departure, with the weather forecast
at the origin for the scheduled hour. Dtypes are pandas dtype names.
"""

from __future__ import annotations

WEATHER_FIELDS: tuple[str, ...] = (
    "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib",
)

RAW_FIELDS: dict[str, str] = {
    "carrier": "string",
    "origin": "string",
    "dest": "string",
    # Local (New York) scheduled departure time, no time zone: Spark TimestampNTZ.
    "sched_dep_local": "datetime64[ns]",
    "distance": "float64",
    "tailnum": "string",
    **{name: "float64" for name in WEATHER_FIELDS},
}

# Derived from the raw fields (and the spec's plane table) by both encoders.
DERIVED_CATEGORICAL: tuple[str, ...] = ("hour", "dow", "month", "route", "engine")
DERIVED_NUMERIC: tuple[str, ...] = ("days_to_holiday", "plane_age", "seats")

# Targets: arr_delay (minutes) for regression, is_delayed = arr_delay > threshold.
LABELS: tuple[str, ...] = ("arr_delay", "is_delayed")

# Known only after departure: never a feature.
LEAKAGE: tuple[str, ...] = (
    "dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "is_delayed", "cancelled",
    "diverted",
)
