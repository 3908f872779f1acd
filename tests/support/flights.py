"""The flights dataset's declarations as the tests use them (``conf/datasets/flights/``)."""

from __future__ import annotations

from pipelines.platform.config import load_config
from tests.conftest import CONF_DIR

_FLIGHTS = load_config(env="base", conf_dir=CONF_DIR)
FLIGHT_FEATURES = _FLIGHTS.features
# What a caller sends for one flight: column -> pandas dtype.
RAW_FIELDS: dict[str, str] = dict(FLIGHT_FEATURES.request)
FEATURE_TABLE = FLIGHT_FEATURES.table
SEQUENCE_TABLE = _FLIGHTS.sequences.table
