"""Delta Lake I/O: tables at the locations :mod:`pipelines.platform.layout` names.

Every write here is a single Delta transaction, so a job that fails leaves the
table as it was. Each commit carries the MLflow run id in its ``userMetadata``,
and reads can be pinned to a version: that is how a model is traced to its data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from pipelines.platform.errors import DataError

log = logging.getLogger(__name__)

USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


@dataclass(frozen=True)
class TableRef:
    """A Delta table pinned at a version: what a step read, logged as lineage."""

    name: str
    path: str
    version: int


def table_exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def latest_version(spark: SparkSession, path: str) -> int:
    """The newest committed version of the table at ``path``."""
    if not table_exists(spark, path):
        raise DataError(f"no Delta table at {path}: run the step that writes it first")
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def pin(spark: SparkSession, name: str, path: str, version: int | None = None) -> TableRef:
    """Pin a table at ``version`` (default: the newest) so later reads see exactly that data."""
    return TableRef(name, path, latest_version(spark, path) if version is None else version)


def read_table(spark: SparkSession, ref: TableRef | str, version: int | None = None) -> DataFrame:
    """Read a table; a :class:`TableRef` is read at its pinned version (Delta time travel)."""
    if isinstance(ref, TableRef):
        path, version = ref.path, ref.version
    else:
        path = ref
    if not table_exists(spark, path):
        raise DataError(f"no Delta table at {path}: run the step that writes it first")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def append(
    df: DataFrame,
    path: str,
    *,
    run_id: str | None = None,
    txn: tuple[str, int] | None = None,
    partition_by: Sequence[str] = (),
    properties: Mapping[str, str] | None = None,
) -> None:
    """Append in one transaction.

    With ``txn=(app_id, version)`` the append is idempotent: Delta records the pair
    in the commit and skips any later append with the same app id and a version not
    greater than the last, so a retried batch is never written twice. ``properties``
    (``delta.*`` table properties) take effect when the append creates the table.
    """
    writer = df.write.format("delta").mode("append").option("userMetadata", commit_note(run_id))
    for key, value in (properties or {}).items():
        writer = writer.option(key, value)
    if txn is not None:
        app_id, version = txn
        writer = writer.option("txnAppId", app_id).option("txnVersion", version)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)


def overwrite(
    df: DataFrame,
    path: str,
    *,
    run_id: str | None = None,
    partition_by: Sequence[str] = (),
    max_rows_per_file: int | None = None,
) -> None:
    """Replace the table's contents (and schema) in one transaction; old versions stay readable.

    ``max_rows_per_file`` bounds each Parquet file, so a table comes in pieces of a known
    size whatever the partitioning of ``df`` (the training tables, see the features step).
    """
    writer = (df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
              .option("userMetadata", commit_note(run_id)))
    if max_rows_per_file is not None:
        writer = writer.option("maxRecordsPerFile", max_rows_per_file)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)


def merge(
    df: DataFrame,
    path: str,
    keys: Sequence[str],
    *,
    run_id: str | None = None,
    update: bool = True,
) -> None:
    """Upsert ``df`` into the table on ``keys`` (insert-only with ``update=False``).

    The table is created from ``df`` when it does not exist yet.
    """
    spark = df.sparkSession
    if not table_exists(spark, path):
        append(df, path, run_id=run_id)
        return
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    builder = DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), condition)
    if update:
        builder = builder.whenMatchedUpdateAll()
    with commit_metadata(spark, run_id):
        builder.whenNotMatchedInsertAll().execute()


@contextmanager
def commit_metadata(spark: SparkSession, run_id: str | None) -> Iterator[None]:
    """Attach the run id to commits made through APIs without a writer option (MERGE, DELETE)."""
    previous = spark.conf.get(USER_METADATA_CONF, None)
    spark.conf.set(USER_METADATA_CONF, commit_note(run_id))
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(USER_METADATA_CONF)
        else:
            spark.conf.set(USER_METADATA_CONF, previous)


def commit_note(run_id: str | None) -> str:
    """The ``userMetadata`` text of a commit: JSON naming the MLflow run that wrote it."""
    return json.dumps({"mlflow_run_id": run_id})


def commit_run_id(spark: SparkSession, path: str, version: int) -> str | None:
    """The MLflow run id recorded on the commit that produced ``version`` of the table."""
    row = (DeltaTable.forPath(spark, path).history()
           .where(f"version = {int(version)}").select("userMetadata").first())
    if row is None or not row[0]:
        return None
    try:
        return json.loads(row[0]).get("mlflow_run_id")
    except (ValueError, AttributeError):
        return None
