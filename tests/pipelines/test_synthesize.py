"""Synthetic flights at scale: deterministic, plausible, and ingested like real files."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.ingest.seed import seed_landing
from pipelines.ingest.step_ingest import INGEST
from pipelines.ingest.step_synthesize import SYNTHESIZE
from pipelines.ingest.synthesize import SYNTHETIC_PREFIX, existing_copies, replay_flights
from pipelines.platform.config import Config
from pipelines.platform.lake import read_table
from pipelines.platform.layout import Layout
from tests.conftest import make_config
from tests.pipelines.conftest import FLIGHTS, SEEDING, step_context

ORDER = ("copy", "carrier", "flight", "origin", "dest", "year", "month", "day", "sched_arr_time")


def test_replay_is_deterministic_and_plausible(spark: SparkSession, config: Config) -> None:
    layout = Layout.of(config)
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 2, 1), date(2013, 2, 1))
    flights = spark.read.csv(layout.landing("flights"), schema=FLIGHTS.schema, header=True)
    options = {"seed": 7, "max_shift_min": 30, "delay_noise_min": 5.0}
    one = replay_flights(flights.repartition(1), [1, 2], **options).orderBy(*ORDER)
    three = replay_flights(flights.repartition(3), [1, 2], **options).orderBy(*ORDER)
    assert one.collect() == three.collect()
    other_seed = replay_flights(flights, [1], **{**options, "seed": 8}).orderBy(*ORDER)
    assert other_seed.select("dep_delay").collect() != \
        one.where("copy = 1").select("dep_delay").collect()
    real = flights.agg(F.mean("arr_delay"), F.stddev("arr_delay"), F.count("dep_time")).first()
    fake = one.where("copy = 1").agg(F.mean("arr_delay"), F.stddev("arr_delay"),
                                     F.count("dep_time")).first()
    assert abs(real[0] - fake[0]) < 2 and abs(real[1] - fake[1]) < 3
    assert real[2] == fake[2]  # cancelled flights stay cancelled


def test_synthesize_then_ingest(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", "synthesize.files_per_copy=2")
    layout = Layout.of(config)
    seed_landing(layout.landing(), layout.storage, SEEDING, date(2013, 4, 1), date(2013, 4, 1))
    ctx = step_context(config, spark, "run-1")
    first = INGEST.run(ctx, sources=("flights",))
    result = SYNTHESIZE.run(ctx, scale=3)
    assert result.metrics["copies_written"] == 2 and result.metrics["files_written"] > 0
    folder = layout.landing("flights")
    assert existing_copies(folder, layout.storage) == {1, 2}
    synthetic = [n for n, _ in layout.storage.list_files(folder) if n.startswith(SYNTHETIC_PREFIX)]
    assert len(synthetic) == result.metrics["files_written"]
    # Spark's staging folder is gone: only whole files were left for ingest.
    assert sorted(os.listdir(folder)) == sorted(n for n, _ in layout.storage.list_files(folder))
    again = INGEST.run(ctx, sources=("flights",))
    real = first.metrics["rows_ingested"]
    assert again.metrics["rows_read"] == again.metrics["rows_ingested"] == 2 * real
    bronze = read_table(spark, layout.table("bronze", "flights"))
    assert bronze.count() == 3 * real
    assert SYNTHESIZE.run(ctx, scale=3).metrics["copies_written"] == 0
