"""Delta Lake I/O on a real SparkSession: versions, idempotent appends, failed writes."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.platform import lake
from pipelines.platform.config import Config
from pipelines.platform.errors import DataError
from pipelines.platform.layout import Layout


def table(config: Config, layer: str, name: str) -> str:
    return Layout.of(config).table(layer, name)


def rows(spark: SparkSession, start: int, end: int):
    return spark.range(start, end).withColumn("value", F.col("id") * 10)


def test_write_append_and_time_travel(spark: SparkSession, config: Config) -> None:
    path = table(config, "bronze", "numbers")
    lake.overwrite(rows(spark, 0, 5), path, run_id="run-a")
    first = lake.pin(spark, "numbers", path)
    lake.append(rows(spark, 5, 8), path, run_id="run-b")

    assert lake.latest_version(spark, path) == first.version + 1
    assert lake.read_table(spark, path).count() == 8
    pinned = lake.read_table(spark, first)
    assert sorted(r.id for r in pinned.collect()) == [0, 1, 2, 3, 4]
    assert lake.commit_run_id(spark, path, first.version) == "run-a"
    assert lake.commit_run_id(spark, path, first.version + 1) == "run-b"


def test_an_overwrite_can_bound_the_rows_of_each_file(spark: SparkSession,
                                                     config: Config) -> None:
    path = table(config, "silver", "bounded")

    lake.overwrite(rows(spark, 0, 10).coalesce(1), path, max_rows_per_file=4)

    files = spark.read.format("delta").load(path).groupBy("_metadata.file_path").count()
    assert sorted(r["count"] for r in files.collect()) == [2, 4, 4]


def test_append_with_same_transaction_is_written_once(spark: SparkSession,
                                                      config: Config) -> None:
    path = table(config, "bronze", "batches")
    lake.append(rows(spark, 0, 3), path, txn=("ingest-numbers", 0))
    lake.append(rows(spark, 3, 6), path, txn=("ingest-numbers", 1))
    version = lake.latest_version(spark, path)
    lake.append(rows(spark, 3, 6), path, txn=("ingest-numbers", 1))  # a retried batch
    assert lake.latest_version(spark, path) == version
    assert lake.read_table(spark, path).count() == 6


def test_failed_write_leaves_table_unchanged(spark: SparkSession, config: Config) -> None:
    path = table(config, "silver", "fragile")
    lake.overwrite(rows(spark, 0, 4), path)
    version = lake.latest_version(spark, path)
    # The job dies part-way through the write: some tasks may have written files.
    exploding = rows(spark, 0, 1000).repartition(4).withColumn(
        "value", F.when(F.col("id") == 999, F.raise_error(F.lit("boom"))).otherwise(F.col("id")))
    with pytest.raises(Exception, match="boom"):
        lake.append(exploding, path)
    with pytest.raises(Exception, match="boom"):
        lake.overwrite(exploding, path)
    assert lake.latest_version(spark, path) == version
    assert sorted(r.id for r in lake.read_table(spark, path).collect()) == [0, 1, 2, 3]


def test_merge_upserts_on_keys(spark: SparkSession, config: Config) -> None:
    path = table(config, "gold", "scores")
    lake.merge(rows(spark, 0, 3), path, ["id"], run_id="first")
    update = spark.createDataFrame([(1, -1), (7, 70)], "id long, value long")
    lake.merge(update, path, ["id"], run_id="second")
    result = {r.id: r.value for r in lake.read_table(spark, path).collect()}
    assert result == {0: 0, 1: -1, 2: 20, 7: 70}
    assert lake.commit_run_id(spark, path, lake.latest_version(spark, path)) == "second"
    # the session setting used for MERGE metadata is restored afterwards
    assert spark.conf.get(lake.USER_METADATA_CONF, None) is None


def test_reading_a_missing_table_names_it(spark: SparkSession, config: Config) -> None:
    path = table(config, "bronze", "nothing_here")
    with pytest.raises(DataError, match="nothing_here"):
        lake.read_table(spark, path)
