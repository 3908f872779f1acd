"""Crash safety: an ingest killed mid-batch leaves no partial data; the rerun completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from pipelines.ingest import BatchWriter
from pipelines.lake import read_table, table_exists, table_path
from pipelines.seed import seed_landing
from pipelines.sources import FLIGHTS
from pipelines.steps import ingest
from tests.conftest import CONF_DIR, TEST_SETTINGS, make_config
from tests.pipelines.conftest import step_context, write_bad_flights


def bronze_and_quarantine(spark: SparkSession, config) -> tuple[int, int]:
    paths = [table_path(config, layer, "flights") for layer in ("bronze", "quarantine")]
    return tuple(read_table(spark, p).count() if table_exists(spark, p) else 0 for p in paths)


def test_replayed_batch_is_not_written_twice(spark: SparkSession, tmp_path: Path) -> None:
    """The commit landed but the checkpoint did not: the replay of that batch adds nothing."""
    config = make_config(tmp_path / "data")
    landing = Path(config.data_path("landing"))
    seed_landing(landing, date(2013, 5, 1), date(2013, 5, 1))
    write_bad_flights(landing)
    lines = (spark.read.text(str(landing / "flights"))
             .selectExpr("value", "_metadata.file_path AS _source_file"))
    writer = BatchWriter(config, FLIGHTS, "run-1")
    writer._app_id = "test-query"
    writer(lines, 0)
    once = bronze_and_quarantine(spark, config)
    writer(lines, 0)  # the same batch id again, as after a crash before the checkpoint commit
    assert bronze_and_quarantine(spark, config) == once
    assert once[1] == 8 and once[0] > 800


@pytest.mark.slow
def test_killed_ingest_then_rerun(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    landing = Path(config.data_path("landing"))
    seed_landing(landing, date(2013, 6, 1), date(2013, 6, 10))
    write_bad_flights(landing)
    lines = sum(len(p.read_text().splitlines()) - 1 for p in (landing / "flights").glob("*.csv"))
    command = [str(Path(sys.executable).with_name("mlpipe")), "--config", str(CONF_DIR),
               *[a for s in (f"data_root={tmp_path / 'data'}", *TEST_SETTINGS)
                 for a in ("--set", s)],
               "step", "ingest", "--source", "flights"]
    # The checkpoint writes the batch's offsets before the batch runs: kill the process
    # group (Python driver and its JVM) as soon as they exist, mid-batch.
    offsets = Path(table_path(config, "state", "ingest/flights")) / "offsets" / "0"
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not offsets.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert offsets.exists(), "the ingest never planned its batch"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    after_kill = bronze_and_quarantine(spark, config)
    assert after_kill in {(0, 0), (lines - 8, 0), (lines - 8, 8)}  # before, between, after

    rerun = ingest.run(step_context(config, spark, "run-rerun"), sources=("flights",))
    assert bronze_and_quarantine(spark, config) == (lines - 8, 8)
    bronze = read_table(spark, table_path(config, "bronze", "flights"))
    keys = ["year", "month", "day", "carrier", "flight", "sched_dep_time", "origin"]
    assert bronze.dropDuplicates(keys).count() == bronze.count()
    assert rerun.metrics["rows_read"] in {0, lines}
