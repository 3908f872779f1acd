"""Parquet landing files as JSON lines, so they pass the same checks as CSV and JSON Lines.

A Parquet file carries its own schema, which need not be the declared one: a column may
be missing or of another type in one file and right in the next. Each file is therefore
read on its own, with its own schema, and every row becomes one JSON object of its
values; parsing those against the declared schema then names a value that does not fit
(``bad_type:<column>``), an absent required value, a broken rule, exactly as for the
other formats, and a quarantined row keeps its values as that JSON. A file that Parquet
cannot read at all gives one row whose line is empty, quarantined as malformed, so that
nothing landed goes unaccounted.
"""

from __future__ import annotations

import logging
from functools import reduce

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

log = logging.getLogger(__name__)

# Spark's error class for a file whose Parquet footer cannot be read: not Parquet, or cut.
UNREADABLE_FOOTER = "CANNOT_READ_FILE_FOOTER"


def files_as_lines(spark: SparkSession, files: list[str], source_file: str) -> DataFrame:
    """``(value, <source_file>)``: each file's rows as JSON objects, or one empty line for a
    file that is not readable Parquet."""
    parts = [_rows_as_json(spark, path, source_file) for path in files]
    if not parts:
        return spark.createDataFrame([], f"value string, `{source_file}` string")
    return reduce(DataFrame.unionByName, parts)


def _rows_as_json(spark: SparkSession, path: str, source_file: str) -> DataFrame:
    try:
        rows = spark.read.parquet(path)  # reads the footer: what fails on a broken file
    except (PySparkException, Py4JJavaError) as exc:
        if UNREADABLE_FOOTER not in str(exc):
            raise  # the store, not the file (a store that went away must not quarantine it)
        log.warning("%s is not readable Parquet; quarantined whole", path)
        return spark.createDataFrame([("", path)], f"value string, `{source_file}` string")
    columns = rows.columns
    return rows.select(F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])).alias("value"),
                       F.lit(path).alias(source_file))
