"""Seeding lands what a dataset declares in conf/datasets/<dataset>/seeding.yaml: one file
per day of each daily source, one per snapshot, never rewriting a file; and the second
dataset, seattle_weather, seeds and ingests with its bad rows quarantined."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pyspark.sql import SparkSession

from models.storage import join
from pipelines.ingest.seed import seed_landing, seed_plan
from pipelines.ingest.sources import Source
from pipelines.ingest.step_ingest import INGEST
from pipelines.ingest.step_seed import SEED
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError, DataError
from pipelines.platform.lake import read_table
from pipelines.platform.layout import Layout
from pipelines.platform.step import StepContext
from tests.conftest import make_config
from tests.pipelines.conftest import SEEDING, step_context
from tests.support.processes import BIN_DIR

SEATTLE = "dataset=seattle_weather"


def seattle_config(tmp_path: Path, *overrides: str) -> Config:
    return make_config(tmp_path / "data", SEATTLE, *overrides)


def load_reversed(source: Source) -> pd.DataFrame:
    """A loader (named by a test's seeding.loader) whose columns are not in declared order."""
    return pd.DataFrame(columns=list(reversed(source.columns)))


def test_flights_land_by_day_and_reference_tables_as_snapshots(tmp_path: Path) -> None:
    layout = Layout.of(make_config(tmp_path / "data"))

    report = seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 1, 1),
                          date(2013, 1, 1))

    landed = {source: [name for name, _ in layout.storage.list_files(layout.landing(source))]
              for source in ("flights", "weather", "planes", "airports", "airlines")}
    assert landed == {"flights": ["2013-01-01.csv"], "weather": ["2013-01-01.csv"],
                      "planes": ["planes.csv"], "airports": ["airports.csv"],
                      "airlines": ["airlines.csv"]}
    assert report.files_written == 5 and report.days == 1
    flights = layout.storage.read_text(join(layout.landing("flights"), "2013-01-01.csv"))
    assert flights.splitlines()[0] == SEEDING.daily[0][0].header
    # 2013-01-01 had 842 flights (nycflights13); integers stay integers: 517, not 517.0
    assert len(flights.splitlines()) == 1 + 842 and flights.splitlines()[1].startswith(
        "2013,1,1,517,515,")


def test_seattle_weather_lands_one_file_per_day_and_never_rewrites(tmp_path: Path) -> None:
    config = seattle_config(tmp_path)
    plan, layout = seed_plan(config), Layout.of(config)
    folder = layout.landing("daily_weather")

    first = seed_landing(layout.landing(), layout.storage, plan, date(2012, 1, 1),
                         date(2012, 1, 3))

    assert (first.files_written, first.rows_written, first.days) == (3, 3, 3)
    names = [name for name, _ in layout.storage.list_files(folder)]
    assert names == ["2012-01-01.csv", "2012-01-02.csv", "2012-01-03.csv"]
    lines = layout.storage.read_text(join(folder, "2012-01-02.csv")).splitlines()
    assert lines == ["date,precipitation,temp_max,temp_min,wind,weather",
                     "2012-01-02,10.9,10.6,2.8,4.5,rain"]

    # A landed file is the feed's: seeding a longer range adds only the new days.
    layout.storage.write_text(join(folder, "2012-01-03.csv"), "kept\n")
    later = seed_landing(layout.landing(), layout.storage, plan, date(2012, 1, 1),
                         date(2012, 1, 5))
    assert (later.files_written, later.days) == (2, 2)
    assert layout.storage.read_text(join(folder, "2012-01-03.csv")) == "kept\n"
    assert len(layout.storage.list_files(folder)) == 5
    again = seed_landing(layout.landing(), layout.storage, plan, date(2012, 1, 1),
                         date(2012, 1, 5))
    assert (again.files_written, again.rows_written, again.days) == (0, 0, 0)


def test_the_seed_step_reports_what_it_landed(tmp_path: Path) -> None:
    ctx = StepContext(seattle_config(tmp_path), run_id="run-seed")

    result = SEED.run(ctx, start=date(2015, 12, 30))  # to seeding.end, 2015-12-31

    assert result.metrics == {"files_written": 2, "rows_written": 2, "days_written": 2}
    assert result.headline == "2 new days 2015-12-30..2015-12-31 from seattle-weather: " \
                              "2 files, 2 rows"
    assert not ctx.has_spark


@pytest.mark.parametrize(("overrides", "says"), [
    (["seeding.loader=nowhere.at_all:load"],
     "seeding.loader: cannot import 'nowhere.at_all'"),
    (["seeding.loader=pipelines.ingest.embedded_weather:load_snow"],
     "seeding.loader: module 'pipelines.ingest.embedded_weather' has no function 'load_snow'"),
    (["seeding.daily.rainfall=[date]"],
     "seeding.daily.rainfall: 'rainfall' is not a source of dataset 'seattle_weather', "
     "which declares daily_weather"),
    (["seeding.snapshots=[stations]"],
     "seeding.snapshots: 'stations' is not a source of dataset 'seattle_weather'"),
    (["seeding.daily.daily_weather=[year, month, day]"],
     "seeding.daily.daily_weather: 'year', 'month', 'day' is not a column of source "
     "'daily_weather'"),
    (["seeding.daily.daily_weather=[weather]"],
     "seeding.daily.daily_weather: 'weather' is declared string; the day comes from one "
     "date or timestamp column"),
])
def test_a_bad_seeding_declaration_is_refused_before_any_file(
        tmp_path: Path, overrides: list[str], says: str) -> None:
    config = seattle_config(tmp_path, *overrides)

    with pytest.raises(ConfigError) as info:
        SEED.run(StepContext(config, run_id="run-seed"))

    assert says in str(info.value)
    assert not Path(Layout.of(config).landing()).exists()


@pytest.mark.parametrize(("override", "says"), [
    ("seeding.loader=pipelines.ingest.embedded_weather",
     "--set: seeding.loader: 'pipelines.ingest.embedded_weather' is not an import path"),
    ("seeding.daily.daily_weather=[date, wind]",
     "--set: seeding.daily.daily_weather: ['date', 'wind'] gives no day"),
    ("seeding.snapshots=[daily_weather]",
     "--set: seeding.snapshots: 'daily_weather' is daily too"),
    ("seeding.end=2011-12-31", "--set: seeding.end: 2011-12-31 is before start (2012-01-01)"),
])
def test_a_malformed_seeding_section_names_the_key_when_the_config_loads(
        tmp_path: Path, override: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        seattle_config(tmp_path, override)

    assert says in str(info.value)


def test_a_loader_must_return_the_declared_columns(tmp_path: Path) -> None:
    config = seattle_config(tmp_path, "seeding.loader=tests.pipelines.test_seed:load_reversed")
    layout = Layout.of(config)

    with pytest.raises(DataError, match="it declares date, precipitation, temp_max"):
        seed_landing(layout.landing(), layout.storage, seed_plan(config), date(2012, 1, 1),
                     date(2012, 1, 1))


def declare_meters_without_seeding(project_conf: Path) -> None:
    """A dataset of one's own: sources declared, files to arrive in landing/, no seeding.yaml."""
    folder = project_conf / "datasets" / "meters"
    folder.mkdir(parents=True)
    (folder / "sources.yaml").write_text(yaml.safe_dump(
        {"sources": {"readings": {"columns": {"meter": "string", "kwh": "double"}}}}))


def test_a_dataset_without_seeding_yaml_seeds_nothing_and_says_why(project_conf: Path,
                                                            tmp_path: Path) -> None:
    declare_meters_without_seeding(project_conf)
    config = make_config(tmp_path / "data", "dataset=meters", conf_dir=project_conf)

    result = SEED.run(StepContext(config, run_id="run-seed"))

    assert result.headline.startswith("nothing to seed: dataset 'meters' has no embedded data")
    assert result.metrics["files_written"] == 0
    assert not Layout.of(config).storage.list_files(Layout.of(config).landing("readings"))
    with pytest.raises(ConfigError, match="dataset 'meters' has no embedded data to seed; "
                                          "declare it in conf/datasets/meters/seeding.yaml"):
        seed_plan(config)


def test_mlpipe_step_seed_says_there_is_nothing_to_seed(project_conf: Path,
                                                        tmp_path: Path) -> None:
    declare_meters_without_seeding(project_conf)

    result = subprocess.run(
        [str(BIN_DIR / "mlpipe"), "--config", str(project_conf), "--set", "dataset=meters",
         "--set", f"data_root={tmp_path / 'data'}", "step", "seed"],
        capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "nothing to seed: dataset 'meters' has no embedded data" in result.stdout + result.stderr


def test_seattle_weather_seeds_and_ingests_with_bad_rows_quarantined(
        spark: SparkSession, tmp_path: Path) -> None:
    config = seattle_config(tmp_path)
    layout = Layout.of(config)
    SEED.run(StepContext(config, run_id="run-seed"), start=date(2012, 1, 1),
             end=date(2012, 1, 5))
    bad = {"2012-01-06,0.0,3.0,7.5,2.1,sun": "invalid:temp_range",
           "2012-01-07,0.0,8.0,3.0,2.1,hail": "invalid:weather",
           "2012-01-08,-1.0,8.0,3.0,2.1,rain": "invalid:precipitation",
           "2012-01-09,0.0,8.0,3.0,2.1,": "missing:weather",
           "2012-01-32,0.0,8.0,3.0,2.1,sun": "bad_type:date"}
    header = "date,precipitation,temp_max,temp_min,wind,weather"
    layout.storage.write_text(join(layout.landing("daily_weather"), "bad-rows.csv"),
                              "\n".join([header, *bad]) + "\n")

    result = INGEST.run(step_context(config, spark, "run-seattle"))

    assert result.metrics["daily_weather.rows_read"] == 5 + len(bad)
    assert result.metrics["daily_weather.rows_ingested"] == 5
    bronze = read_table(spark, layout.table("bronze", "daily_weather"))
    assert dict(bronze.dtypes)["date"] == "date"
    rows = sorted(bronze.select("date", "temp_max", "weather").collect())
    assert [r["date"] for r in rows] == [date(2012, 1, day) for day in range(1, 6)]
    assert (rows[1]["temp_max"], rows[1]["weather"]) == (10.6, "rain")
    quarantined = read_table(spark, layout.table("quarantine", "daily_weather")).collect()
    assert {r["raw_line"]: r["reason"] for r in quarantined} == bad
