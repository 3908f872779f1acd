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

from models.storage import join
from pipelines.ingest.seed import seed_landing
from pipelines.ingest.step_ingest import INGEST
from pipelines.ingest.stream import BatchWriter
from pipelines.platform.config import Config
from pipelines.platform.lake import read_table, table_exists
from pipelines.platform.layout import Layout
from tests.conftest import CONF_DIR, TEST_SETTINGS, make_config
from tests.pipelines.conftest import (
    FLIGHTS,
    SEEDING,
    landing_rows,
    step_context,
    write_bad_flights,
)


def bronze_and_quarantine(spark: SparkSession, config: Config) -> tuple[int, int]:
    layout = Layout.of(config)
    paths = [layout.table(layer, "flights") for layer in ("bronze", "quarantine")]
    return tuple(read_table(spark, p).count() if table_exists(spark, p) else 0 for p in paths)


def test_replayed_batch_is_not_written_twice(spark: SparkSession, tmp_path: Path) -> None:
    """The commit landed but the checkpoint did not: the replay of that batch adds nothing."""
    config = make_config(tmp_path / "data")
    layout = Layout.of(config)
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 5, 1), date(2013, 5, 1))
    write_bad_flights(layout)
    lines = (spark.read.text(layout.landing("flights"))
             .selectExpr("value", "_metadata.file_path AS _source_file"))
    writer = BatchWriter(layout, FLIGHTS, "run-1")
    writer._app_id = "test-query"
    writer(lines, 0)
    once = bronze_and_quarantine(spark, config)
    assert (writer.counts.rows_ingested, writer.counts.rows_quarantined) == once
    assert writer.counts.files == 2 and writer.counts.quarantined["bad_type:dep_time"] == 1
    writer(lines, 0)  # the same batch id again, as after a crash before the checkpoint commit
    assert bronze_and_quarantine(spark, config) == once
    assert once[1] == 8 and once[0] > 800
    # Delta skipped the writes, so the replay was counted on its own: the same figures again.
    assert (writer.counts.rows_ingested, writer.counts.rows_quarantined) == \
        (2 * once[0], 2 * once[1])


@pytest.mark.slow
def test_killed_ingest_then_rerun(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    layout = Layout.of(config)
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 6, 1), date(2013, 6, 10))
    write_bad_flights(layout)
    lines = landing_rows(layout, "flights")
    command = [str(Path(sys.executable).with_name("mlpipe")), "--config", str(CONF_DIR),
               *[a for s in (f"data_root={tmp_path / 'data'}", *TEST_SETTINGS)
                 for a in ("--set", s)],
               "step", "ingest", "--source", "flights"]
    # The checkpoint writes the batch's offsets before the batch runs: kill the process
    # group (Python driver and its JVM) as soon as they exist, mid-batch.
    offsets = join(layout.ingest_checkpoint("flights"), "offsets", "0")
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not layout.storage.exists(offsets) and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert layout.storage.exists(offsets), "the ingest never planned its batch"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    after_kill = bronze_and_quarantine(spark, config)
    assert after_kill in {(0, 0), (lines - 8, 0), (lines - 8, 8)}  # before, between, after

    rerun = INGEST.run(step_context(config, spark, "run-rerun"), sources=("flights",))
    assert bronze_and_quarantine(spark, config) == (lines - 8, 8)
    bronze = read_table(spark, layout.table("bronze", "flights"))
    keys = ["year", "month", "day", "carrier", "flight", "sched_dep_time", "origin"]
    assert bronze.dropDuplicates(keys).count() == bronze.count()
    assert rerun.metrics["rows_read"] in {0, lines}
