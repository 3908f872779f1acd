"""Ingest on a seeded slice: accounting, quarantine, idempotency, lineage, interoperability."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import deltalake
from pyspark.sql import SparkSession

from pipelines.ingest.seed import seed_landing
from pipelines.ingest.step_ingest import INGEST
from pipelines.platform.lake import commit_run_id, latest_version, read_table
from pipelines.platform.layout import Layout
from tests.conftest import make_config
from tests.pipelines.conftest import (
    BAD_FLIGHTS,
    FLIGHTS,
    SEEDING,
    SeededLake,
    landing_rows,
    step_context,
)
from tests.support.flights import FEATURE_TABLE


def test_every_row_is_accounted_for(seeded_lake: SeededLake, spark: SparkSession) -> None:
    config, metrics = seeded_lake.config, seeded_lake.ingest.metrics
    layout = Layout.of(config)
    for source in config.ingested_sources:
        read = landing_rows(layout, source)
        bronze = read_table(spark, layout.table("bronze", source)).count()
        quarantined = read_table(spark, layout.table("quarantine", source)).count()
        assert metrics[f"{source}.rows_read"] == read == bronze + quarantined, source
        assert metrics[f"{source}.rows_ingested"] == bronze, source
    assert metrics["rows_read"] == metrics["rows_ingested"] + metrics["rows_quarantined"]


def test_bad_rows_land_in_quarantine_with_reason(seeded_lake: SeededLake,
                                                 spark: SparkSession) -> None:
    layout = Layout.of(seeded_lake.config)
    rows = read_table(spark, layout.table("quarantine", "flights")).collect()
    assert {r["raw_line"]: r["reason"] for r in rows} == BAD_FLIGHTS
    assert all(r["_source_file"].endswith("/flights/bad-rows.csv") for r in rows)
    bronze = read_table(spark, layout.table("bronze", "flights"))
    cancelled = bronze.where("_source_file LIKE '%bad-rows.csv'").collect()
    assert len(cancelled) == 1 and cancelled[0]["cancelled"] and cancelled[0]["dep_time"] is None


def test_bronze_lineage(seeded_lake: SeededLake, spark: SparkSession) -> None:
    path = Layout.of(seeded_lake.config).table("bronze", "flights")
    row = read_table(spark, path).select("_source_file", "_ingested_at", "_run_id").first()
    assert row["_run_id"] == "run-ingest" and row["_ingested_at"] is not None
    assert commit_run_id(spark, path, latest_version(spark, path)) == "run-ingest"


def test_delta_rs_reads_what_spark_wrote(seeded_lake: SeededLake, spark: SparkSession) -> None:
    for layer, name in (("bronze", "flights"), ("silver", FEATURE_TABLE)):
        path = Layout.of(seeded_lake.config).table(layer, name)
        table = deltalake.DeltaTable(path)
        assert table.version() == latest_version(spark, path)
        theirs = table.to_pandas()
        ours = read_table(spark, path)
        assert len(theirs) == ours.count()
        key = "flight" if layer == "bronze" else "flight_date"
        assert sorted(theirs[key].astype(str)) == sorted(str(r[0]) for r in
                                                         ours.select(key).collect())
        meta = json.loads(table.history(1)[0]["userMetadata"])
        assert meta["mlflow_run_id"] in {"run-ingest", "run-features"}


def test_ingest_is_incremental_and_idempotent(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    layout = Layout.of(config)
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 3, 1), date(2013, 3, 1))
    ctx = step_context(config, spark, "run-1")
    first = INGEST.run(ctx, sources=("flights",))
    path = layout.table("bronze", "flights")
    version, rows = latest_version(spark, path), read_table(spark, path).count()
    assert rows == first.metrics["flights.rows_ingested"] == landing_rows(layout, "flights")

    again = INGEST.run(ctx, sources=("flights",))  # same files: nothing to do
    assert again.metrics["rows_read"] == 0
    assert latest_version(spark, path) == version and read_table(spark, path).count() == rows

    # two new days arrive
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 3, 1), date(2013, 3, 3))
    later = INGEST.run(step_context(config, spark, "run-2"), sources=("flights",))
    assert later.metrics["flights.files"] == 2
    bronze = read_table(spark, path)
    assert bronze.count() == landing_rows(layout, "flights")
    per_day = {r["day"]: r["count"] for r in bronze.groupBy("day").count().collect()}
    assert set(per_day) == {1, 2, 3}
    assert bronze.where("day > 1").select("_run_id").distinct().collect()[0][0] == "run-2"
    # Every file of every append keeps min/max statistics for the source's stats columns only.
    stats = [json.loads(row["stats"]) for row in spark.read.json(f"{path}/_delta_log/*.json")
             .where("add IS NOT NULL").select("add.stats").collect()]
    assert len(stats) >= 2
    assert all(set(s["minValues"]) == set(FLIGHTS.stats_columns) for s in stats), stats[0]
