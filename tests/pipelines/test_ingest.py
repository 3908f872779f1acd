"""Ingest on a seeded slice: accounting, quarantine, idempotency, lineage, interoperability."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import date
from pathlib import Path

import deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from models.storage import join
from pipelines.ingest.recovery import begin_recovery
from pipelines.ingest.seed import seed_landing
from pipelines.ingest.step_ingest import INGEST
from pipelines.ingest.validation import SOURCE_FILE
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
    write_bad_flights,
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


def runs_by_file(table: DataFrame) -> dict[str, list[str]]:
    """Each source file's name, with the runs that wrote its rows."""
    rows = table.groupBy(SOURCE_FILE).agg(F.sort_array(F.collect_set("_run_id"))).collect()
    return {path.rsplit("/", 1)[1]: runs for path, runs in rows}


def test_lost_checkpoint_reingests_nothing(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    layout = Layout.of(config)
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 4, 1), date(2013, 4, 1))
    write_bad_flights(layout)
    INGEST.run(step_context(config, spark, "run-1"), sources=("flights",))
    layout.storage.delete_dir(layout.ingest_checkpoint("flights"))
    # Since then a day has landed, and a file with no rows.
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 4, 1), date(2013, 4, 2))
    layout.storage.write_text(join(layout.landing("flights"), "empty.csv"), FLIGHTS.header + "\n")

    recovered = INGEST.run(step_context(config, spark, "run-2"), sources=("flights",))
    bronze = read_table(spark, layout.table("bronze", "flights"))
    quarantine = read_table(spark, layout.table("quarantine", "flights"))
    assert runs_by_file(bronze) == {"2013-04-01.csv": ["run-1"], "bad-rows.csv": ["run-1"],
                                    "2013-04-02.csv": ["run-2"]}
    assert runs_by_file(quarantine) == {"bad-rows.csv": ["run-1"]}
    assert bronze.count() + quarantine.count() == landing_rows(layout, "flights")
    assert quarantine.count() == len(BAD_FLIGHTS)
    new_rows = bronze.where(F.col("_run_id") == "run-2").count()
    assert recovered.metrics["flights.rows_read"] == new_rows > 0
    assert recovered.metrics["flights.files"] == 1
    assert recovered.metrics["flights.files_skipped"] == 2
    assert recovered.metrics["flights.files_unaccounted"] == 1  # empty.csv

    # The recovery is over: the next run has its checkpoint, reads nothing, reconciles nothing.
    after = INGEST.run(step_context(config, spark, "run-3"), sources=("flights",))
    assert after.metrics["rows_read"] == 0 and "flights.files_unaccounted" not in after.metrics


def test_a_recovery_cut_short_goes_on_recovering(spark: SparkSession, tmp_path: Path) -> None:
    """The recovering run died after its query had started, which wrote a new checkpoint."""
    config = make_config(tmp_path / "data")
    layout = Layout.of(config)
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 7, 1), date(2013, 7, 1))
    INGEST.run(step_context(config, spark, "run-1"), sources=("flights",))
    checkpoint = layout.ingest_checkpoint("flights")
    layout.storage.delete_dir(checkpoint)
    begin_recovery(spark, layout, "flights")
    # What a query writes first as it starts: the checkpoint's metadata, with its id.
    layout.storage.write_text(join(checkpoint, "metadata"), json.dumps({"id": str(uuid.uuid4())}))

    rerun = INGEST.run(step_context(config, spark, "run-2"), sources=("flights",))
    assert rerun.metrics["flights.files_skipped"] == 1 and rerun.metrics["rows_read"] == 0
    bronze = read_table(spark, layout.table("bronze", "flights"))
    assert runs_by_file(bronze) == {"2013-07-01.csv": ["run-1"]}


def test_a_late_file_is_ingested(spark: SparkSession, tmp_path: Path) -> None:
    """A file whose modification time is a month older than the files seen before it."""
    config = make_config(tmp_path / "data")
    layout = Layout.of(config)
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 6, 1), date(2013, 6, 1))
    INGEST.run(step_context(config, spark, "run-1"), sources=("flights",))
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 6, 1), date(2013, 6, 2))
    month_ago = time.time() - 30 * 86400
    os.utime(join(layout.landing("flights"), "2013-06-02.csv"), (month_ago, month_ago))

    late = INGEST.run(step_context(config, spark, "run-2"), sources=("flights",))
    assert late.metrics["flights.files"] == 1
    bronze = read_table(spark, layout.table("bronze", "flights"))
    assert runs_by_file(bronze) == {"2013-06-01.csv": ["run-1"], "2013-06-02.csv": ["run-2"]}
    assert bronze.count() == landing_rows(layout, "flights")
