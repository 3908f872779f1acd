"""Batch scoring's row key: every distinct row of a silver table is scored once."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from pipelines.platform.lake import merge
from pipelines.release.batch_score import row_key

# Pairs that a separator-joined key cannot tell apart: a separator inside a value, and
# a NULL on either side of a value (or of an empty string).
KEYS = [("a|b", "c"), ("a", "b|c"), (None, "x"), ("x", None), ("", None), (None, ""),
        (None, None)]


def test_rows_whose_keys_differ_by_a_separator_or_a_null_are_each_scored(
        spark: SparkSession, tmp_path: Path) -> None:
    predictions = str(tmp_path / "predictions")
    for key in KEYS:  # one row a day, as new days arrive, through the step's insert-only MERGE
        day = spark.createDataFrame([key], "origin string, dest string")
        merge(day.select(row_key(["origin", "dest"]).alias("row_key")), predictions,
              ["row_key"], update=False)
    assert spark.read.format("delta").load(predictions).count() == len(KEYS)
    again = spark.createDataFrame(KEYS, "origin string, dest string")
    merge(again.select(row_key(["origin", "dest"]).alias("row_key")), predictions,
          ["row_key"], update=False)
    assert spark.read.format("delta").load(predictions).count() == len(KEYS)
