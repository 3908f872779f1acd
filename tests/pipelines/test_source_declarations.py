"""Sources declared in conf/datasets/<dataset>/: checked when the config loads, with errors
that name the file and the key; and a dataset declared there ingests with no code change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pyspark.sql import SparkSession

from models.storage import join
from pipelines.ingest.sources import declared_sources
from pipelines.ingest.step_ingest import INGEST
from pipelines.platform.config import load_config
from pipelines.platform.errors import ConfigError
from pipelines.platform.layout import Layout
from tests.conftest import TEST_SETTINGS
from tests.pipelines.conftest import step_context

# A dataset of one source, as a user would declare their own: readings from meters.
READINGS = {
    "format": "csv",
    "columns": {"meter": "string", "taken_at": "timestamp", "kwh": "double", "phase": "int"},
    "required": ["meter", "taken_at"],
    "rules": [{"reason": "invalid:kwh", "check": "kwh >= 0"},
              {"reason": "invalid:phase", "check": "phase IN (1, 3)"}],
    "flags": {"estimated": "kwh IS NULL"},
    "stats_columns": ["taken_at"],
}


def declare(conf: Path, dataset: str, sources: dict) -> Path:
    """Write ``conf/datasets/<dataset>/sources.yaml``; returns the file."""
    folder = conf / "datasets" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    return path


def config_error(conf: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(env="base", conf_dir=conf, overrides=overrides)
    return str(info.value)


def test_the_flights_dataset_declares_its_five_sources(project_conf: Path) -> None:
    sources = declared_sources(load_config(env="base", conf_dir=project_conf))

    assert list(sources) == ["flights", "weather", "planes", "airports", "airlines"]
    flights = sources["flights"]
    assert flights.header.startswith("year,month,day,dep_time,sched_dep_time,")
    assert flights.schema["time_hour"].dataType.typeName() == "timestamp"
    assert flights.rules[2][0] == "invalid:date" and "% 400" in flights.rules[2][1]
    # weather reuses the calendar checks that flights names (YAML anchors): one text each
    assert sources["weather"].rules[:3] == flights.rules[:3]


def test_a_dataset_is_chosen_by_name_and_brings_only_its_sources(project_conf: Path) -> None:
    declare(project_conf, "meters", {"readings": READINGS})

    config = load_config(env="base", conf_dir=project_conf, overrides=["dataset=meters"])

    assert list(config.sources) == ["readings"]
    assert config.ingested_sources == ["readings"]


@pytest.mark.parametrize(("change", "key", "says"), [
    ({"rules": [{"reason": "invalid:kwh", "check": "kwhh >= 0"}]},
     "sources.readings.rules.0.check", "'kwhh' is not a column of this source; its columns are"),
    ({"rules": [{"reason": "invalid:kwh", "check": "kwh >="}]},
     "sources.readings.rules.0.check", "does not parse as a SQL condition"),
    ({"rules": [{"reason": "bad", "check": "kwh >= 0"}, {"reason": "bad", "check": "phase > 0"}]},
     "sources.readings.rules.1.reason", "'bad' is the reason of an earlier rule too"),
    ({"required": ["meter", "site"]}, "sources.readings.required", "'site' is not a column"),
    ({"stats_columns": ["taken"]}, "sources.readings.stats_columns", "'taken' is not a column"),
    ({"flags": {"kwh": "kwh IS NULL"}}, "sources.readings.flags.kwh",
     "cannot share its name with a column"),
    ({"flags": {"estimated": "reading IS NULL"}}, "sources.readings.flags.estimated",
     "'reading' is not a column"),
    ({"columns": {"meter": "text"}}, "sources.readings.columns.meter", "Input should be 'int'"),
    ({"format": "xml"}, "sources.readings.format", "Input should be 'csv'"),
    ({"colums": {}}, "sources.readings.colums", "unknown key"),
])
def test_a_bad_declaration_names_its_file_and_key(project_conf: Path, change: dict, key: str,
                                                  says: str) -> None:
    path = declare(project_conf, "meters", {"readings": {**READINGS, **change}})

    message = config_error(project_conf, "dataset=meters")

    assert f"{path}: {key}: " in message and says in message, message


def test_a_set_override_is_named_as_the_origin_of_what_it_broke(project_conf: Path) -> None:
    declare(project_conf, "meters", {"readings": READINGS})

    message = config_error(project_conf, "dataset=meters",
                           'sources.readings.rules=[{reason: "r", check: "volts > 1"}]')

    assert "--set: sources.readings.rules.0.check: 'volts' is not a column" in message


def test_an_undeclared_dataset_or_ingested_source_is_named(project_conf: Path) -> None:
    assert f"{project_conf / 'datasets' / 'trains'}: dataset 'trains' declares nothing" in \
        config_error(project_conf, "dataset=trains")
    assert "declared datasets: flights" in config_error(project_conf, "dataset=trains")

    message = config_error(project_conf, "ingest.sources=[flights, trains]")

    assert "--set: ingest.sources: 'trains' is not declared by dataset 'flights'" in message


# The same readings in each format, each line good or bad in one way; JSON adds its own.
LANDED = {
    "csv": ["meter,taken_at,kwh,phase",
            "m1,2026-11-01T00:00:00Z,1.5,1",
            "m2,2026-11-01T00:00:00Z,,3",
            "m3,2026-11-01T00:00:00Z,-2.0,1",
            "m4,2026-11-01T00:00:00Z,1.0,2",
            ",2026-11-01T00:00:00Z,1.0,1",
            "m6,yesterday,1.0,1",
            "m7,2026-11-01T00:00:00Z,1.0"],
    "json": ['{"meter": "m1", "taken_at": "2026-11-01T00:00:00Z", "kwh": 1.5, "phase": 1, '
             '"note": "keys that are not columns are ignored"}',
             '{"meter": "m2", "taken_at": "2026-11-01T00:00:00Z", "phase": 3}',
             '{"meter": "m3", "taken_at": "2026-11-01T00:00:00Z", "kwh": -2.0, "phase": 1}',
             '{"meter": "m4", "taken_at": "2026-11-01T00:00:00Z", "kwh": 1.0, "phase": 2}',
             '{"taken_at": "2026-11-01T00:00:00Z", "kwh": 1.0, "phase": 1}',
             '{"meter": "m6", "taken_at": "yesterday", "kwh": 1.0, "phase": 1}',
             '["m7", "2026-11-01T00:00:00Z", 1.0, 1]',
             '{"meter": "m8", "taken_at": "2026-11-01T00:00:00Z", "kwh": "lots", "phase": 1}',
             '{"meter": "m9", "taken_at":'],
}
QUARANTINED = {
    "parquet": ["bad_type:kwh", "invalid:kwh", "invalid:phase",
                "malformed:not a readable Parquet file", "missing:meter"],
    "csv": ["bad_type:taken_at", "invalid:kwh", "invalid:phase", "malformed:expected 4 fields",
            "missing:meter"],
    "json": ["bad_type:kwh", "bad_type:taken_at", "invalid:kwh", "invalid:phase",
             "malformed:not a JSON object", "malformed:not a JSON object", "missing:meter"],
}


def parquet_files() -> dict[str, bytes]:
    """Landing Parquet files: one of the declared schema, one whose ``kwh`` is text and
    ``phase`` missing, and one that is not Parquet at all."""
    good = pa.table({"meter": ["m1", "m2", "m3", "m4", None],
                     "taken_at": pa.array([dt.datetime(2026, 11, 1)] * 5, pa.timestamp("us")),
                     "kwh": [1.5, None, -2.0, 1.0, 1.0], "phase": [1, 3, 1, 2, 1]})
    drifted = pa.table({"meter": ["m8"], "taken_at": ["2026-11-01T00:00:00Z"], "kwh": ["lots"]})
    files = {}
    for name, table in (("good", good), ("drifted", drifted)):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        files[f"{name}.parquet"] = sink.getvalue().to_pybytes()
    files["broken.parquet"] = b"PAR1 this is not a Parquet file"
    return files


@pytest.mark.parametrize("kind", ["csv", "json", "parquet"])
def test_a_declared_dataset_ingests_with_quarantine_and_flags(
        project_conf: Path, tmp_path: Path, spark: SparkSession, kind: str) -> None:
    declare(project_conf, "meters", {"readings": {**READINGS, "format": kind}})
    config = load_config(env="base", conf_dir=project_conf,
                         overrides=["dataset=meters", f"data_root={tmp_path / 'data'}",
                                    *TEST_SETTINGS])
    layout = Layout.of(config)
    landing = layout.landing("readings")
    if kind == "parquet":
        for name, data in parquet_files().items():
            layout.storage.write_bytes(join(landing, name), data)
    else:
        layout.storage.write_text(join(landing, f"2026-11-01.{kind}"),
                                  "\n".join(LANDED[kind]) + "\n")

    result = INGEST.run(step_context(config, spark, "run-meters"))

    bronze = spark.read.format("delta").load(layout.table("bronze", "readings"))
    assert sorted((r["meter"], r["kwh"], r["estimated"]) for r in bronze.collect()) == \
        [("m1", 1.5, False), ("m2", None, True)]
    quarantine = spark.read.format("delta").load(layout.table("quarantine", "readings"))
    assert sorted(r["reason"] for r in quarantine.collect()) == QUARANTINED[kind]
    assert result.metrics["readings.rows_read"] == 2 + len(QUARANTINED[kind])
    if kind != "parquet":
        assert {r["raw_line"] for r in quarantine.collect()} <= set(LANDED[kind])
    else:  # a row's values, as JSON; a broken file's line is empty
        assert '{"meter":"m8","taken_at":"2026-11-01T00:00:00Z","kwh":"lots"}' in \
            {r["raw_line"] for r in quarantine.collect()}
