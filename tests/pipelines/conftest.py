"""Fixtures of the data-layer tests: a small seeded lake, built once per test session."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from models.features import FeatureSpec
from models.storage import join
from pipelines.features.step import FEATURES
from pipelines.ingest.seed import seed_landing, seed_plan
from pipelines.ingest.sources import declared_sources
from pipelines.ingest.step_ingest import INGEST
from pipelines.platform.config import Config, load_config
from pipelines.platform.layout import Layout
from pipelines.platform.step import StepContext, StepResult
from tests.conftest import CONF_DIR, make_config
from tests.support.flights import FEATURE_TABLE

# The default dataset's declared sources (conf/datasets/flights/sources.yaml), and what
# seeding lands of them (conf/datasets/flights/seeding.yaml).
_FLIGHTS_CONFIG = load_config(env="base", conf_dir=CONF_DIR)
SOURCES = declared_sources(_FLIGHTS_CONFIG)
SEEDING = seed_plan(_FLIGHTS_CONFIG)
FLIGHTS = SOURCES["flights"]

GOOD_FLIGHT = ("2013,1,1,517,515,2.0,830,819,11.0,UA,1545,N14228,EWR,IAH,227.0,1400,5,15,"
               "2013-01-01T10:00:00Z")


def flight_line(**changes: str) -> str:
    """The good flight line with some fields replaced (by column name)."""
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


def write_bad_flights(layout: Layout, name: str = "bad-rows.csv") -> str:
    location = join(layout.landing("flights"), name)
    layout.storage.write_text(location, "\n".join([FLIGHTS.header, *BAD_FLIGHTS, CANCELLED]) + "\n")
    return location


def landing_rows(layout: Layout, source: str) -> int:
    """Data lines in a source's landing folder (each file's header excluded)."""
    folder = layout.landing(source)
    return sum(len(layout.storage.read_text(join(folder, name)).splitlines()) - 1
               for name, _ in layout.storage.list_files(folder) if name.endswith(".csv"))


def saved_spec(config: Config, version: int) -> FeatureSpec:
    """The feature spec the features step fitted on ``version`` of the feature table."""
    layout = Layout.of(config)
    return FeatureSpec.from_json(layout.storage.read_text(layout.feature_spec(FEATURE_TABLE,
                                                                              version)))


def step_context(config: Config, spark: SparkSession, run_id: str) -> StepContext:
    """A step context on the shared test session (no MLflow run: ``run_id`` is given)."""
    return StepContext(config, run_id=run_id, session_factory=lambda _config: spark)


@dataclass
class SeededLake:
    config: Config
    ingest: StepResult
    features: StepResult


@pytest.fixture
def project_conf(tmp_path: Path) -> Path:
    """A copy of the project's conf/ without a personal overlay; tests may add files freely."""
    folder = tmp_path / "conf"
    shutil.copytree(CONF_DIR, folder, ignore=shutil.ignore_patterns("local.yaml"))
    return folder


@pytest.fixture(scope="session")
def seeded_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> SeededLake:
    """Days on both sides of each split boundary, plus hand-made bad rows, ingested and built."""
    config = make_config(tmp_path_factory.mktemp("lake") / "data")
    layout = Layout.of(config)
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 9, 29), date(2013, 10, 1))
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 11, 30), date(2013, 12, 1))
    write_bad_flights(layout)
    ingested = INGEST.run(step_context(config, spark, "run-ingest"))
    built = FEATURES.run(step_context(config, spark, "run-features"))
    return SeededLake(config, ingested, built)
