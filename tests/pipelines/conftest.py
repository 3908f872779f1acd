"""Fixtures of the data-layer tests: a small seeded lake, built once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from pipelines.config import Config
from pipelines.seed import seed_landing
from pipelines.steps import features, ingest
from pipelines.steps.base import StepContext, StepResult
from tests.conftest import make_config

GOOD_FLIGHT = ("2013,1,1,517,515,2.0,830,819,11.0,UA,1545,N14228,EWR,IAH,227.0,1400,5,15,"
               "2013-01-01T10:00:00Z")


def flight_line(**changes: str) -> str:
    """The good flight line with some fields replaced (by column name)."""
    from pipelines.sources import FLIGHTS

    values = dict(zip(FLIGHTS.columns, GOOD_FLIGHT.split(","), strict=True))
    values.update(changes)
    return ",".join(values.values())


# Hand-made rows, each bad in one way, with the reason ingest must give it.
BAD_FLIGHTS = {
    "2013,1,1,517,515,2.0": "malformed:expected 19 fields",
    flight_line(dep_time="5x7"): "bad_type:dep_time",
    flight_line(distance="far"): "bad_type:distance",
    flight_line(carrier=""): "missing:carrier",
    flight_line(month="13"): "invalid:month",
    flight_line(day="31", month="2"): "invalid:date",
    flight_line(distance="-100"): "invalid:distance",
    flight_line(sched_dep_time="1275"): "invalid:sched_dep_time",
}
# A cancelled flight is real data: ingested, flagged.
CANCELLED = flight_line(dep_time="", dep_delay="", arr_time="", arr_delay="", air_time="")


def write_bad_flights(landing: Path, name: str = "bad-rows.csv") -> Path:
    from pipelines.sources import FLIGHTS

    path = landing / "flights" / name
    path.write_text("\n".join([FLIGHTS.header, *BAD_FLIGHTS, CANCELLED]) + "\n")
    return path


def step_context(config: Config, spark: SparkSession, run_id: str) -> StepContext:
    """A step context on the shared test session (no MLflow run: ``run_id`` is given)."""
    return StepContext(config, run_id=run_id, session_factory=lambda _config: spark)


@dataclass
class SeededLake:
    config: Config
    ingest: StepResult
    features: StepResult


@pytest.fixture(scope="session")
def seeded_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> SeededLake:
    """Days on both sides of each split boundary, plus hand-made bad rows, ingested and built."""
    config = make_config(tmp_path_factory.mktemp("lake") / "data")
    landing = Path(config.data_path("landing"))
    seed_landing(landing, date(2013, 9, 29), date(2013, 10, 1))
    seed_landing(landing, date(2013, 11, 30), date(2013, 12, 1))
    write_bad_flights(landing)
    ingested = ingest.run(step_context(config, spark, "run-ingest"))
    built = features.run(step_context(config, spark, "run-features"))
    return SeededLake(config, ingested, built)
