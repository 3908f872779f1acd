"""Incremental ingest: new landing files -> bronze, bad rows -> quarantine, exactly once.

Each source is a Structured Streaming query over its landing folder with
``trigger(availableNow=True)``: the checkpoint remembers which files were read, so a
rerun reads only new ones. Every micro-batch is appended to bronze and to
quarantine with ``txnAppId``/``txnVersion`` = (the query id, the batch id): if the
process dies after a Delta commit but before the checkpoint records the batch, the
rerun replays the same batch id and Delta skips the append it already holds. A crash
anywhere therefore leaves no partial data and no duplicates. A lost checkpoint is
recovered from (``pipelines/ingest/recovery.py``): the query then skips the files the
tables already hold. Spark's file source skips a file older than the newest one seen by
more than its ``maxFileAge``; ``ingest.max_file_age`` sets that age long, so a file that
lands late is ingested too.

A batch is parsed once on its way to bronze, and its rows are counted on that pass (an
observation of the write, not another job). The quarantine append parses again only the
files that had a bad row, which on clean data is none, and counts their rows per reason.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from pipelines.ingest.parquet import files_as_lines
from pipelines.ingest.recovery import Recovery, begin_recovery, end_recovery
from pipelines.ingest.sources import Source
from pipelines.ingest.validation import (
    RAW,
    REASON,
    SOURCE_FILE,
    bronze_rows,
    parse_lines,
    quarantine_rows,
)
from pipelines.platform.config_schema import IngestConfig
from pipelines.platform.lake import append, latest_version, table_exists
from pipelines.platform.layout import Layout

log = logging.getLogger(__name__)

# Spark's binaryFile source (a listing of files; the content is read only if selected),
# whose schema a stream must state.
BINARY_FILE_SCHEMA = "path string, modificationTime timestamp, length bigint, content binary"


@dataclass
class IngestCounts:
    """What one source's ingest saw: rows read, ingested and quarantined by reason.

    After a lost checkpoint, ``files_skipped`` counts the files left out because the
    tables held them already, and ``unaccounted`` names the landing files with no row in
    either table (None when no recovery ran and nothing was reconciled).
    """

    source: str
    files: int = 0
    rows_ingested: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    files_skipped: int = 0
    unaccounted: list[str] | None = None

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def rows_read(self) -> int:
        return self.rows_ingested + self.rows_quarantined


def batch_metrics() -> list[Column]:
    """Aggregates over a parsed batch: its rows, the files with a row, the files with a bad row.

    Only plain aggregates, so that they can observe a write as well as be computed alone.
    Files are counted as a set of 64-bit hashes of their paths (a collision among a
    batch's files is about as likely as 1 in 10^13): cheaper per row than a set of the
    paths, and at 10x 0.5-1.5 s inside the write against 2 s for a second scan of the
    text. Per-reason counts are left to the few bad files' own parse: one count per reason
    here costs a string comparison per reason on every row (a sixth of the parse).
    """
    return [F.count(F.lit(1)).alias("rows"),
            F.size(F.collect_set(F.xxhash64(SOURCE_FILE))).alias("files"),
            F.collect_set(F.when(F.col(REASON).isNotNull(), F.col(SOURCE_FILE))).alias("bad_files")]


def _version(spark: SparkSession, path: str) -> int | None:
    return latest_version(spark, path) if table_exists(spark, path) else None


class BatchWriter:
    """The ``foreachBatch`` function of one source's query: one idempotent append per table."""

    def __init__(self, layout: Layout, source: Source, run_id: str | None,
                 recovery: Recovery | None = None) -> None:
        self.source = source
        self.run_id = run_id
        self.recovery = recovery
        self.storage = layout.storage
        self.bronze = layout.table("bronze", source.name)
        self.quarantine = layout.table("quarantine", source.name)
        self.checkpoint = layout.ingest_checkpoint(source.name)
        self.counts = IngestCounts(source.name)
        self.properties = ({"delta.dataSkippingStatsColumns": ",".join(source.stats_columns)}
                           if source.stats_columns else {})
        self._app_id: str | None = None

    def app_id(self) -> str:
        """The streaming query's id, which Spark keeps in the checkpoint across restarts.

        A new checkpoint means a new id, so a reset checkpoint never collides with the
        transaction versions recorded by an earlier one.
        """
        if self._app_id is None:
            query_id = json.loads(self.storage.read_text(f"{self.checkpoint}/metadata"))["id"]
            self._app_id = f"mlpipe-ingest-{self.source.name}-{query_id}"
        return self._app_id

    def __call__(self, lines: DataFrame, batch_id: int) -> None:
        spark, txn = lines.sparkSession, (self.app_id(), batch_id)
        if self.recovery is not None:
            lines = self._unseen(lines, batch_id)
        if self.source.format == "parquet":  # the batch lists files; their rows become lines
            lines = files_as_lines(spark, [row[0] for row in lines.select(SOURCE_FILE).collect()],
                                   SOURCE_FILE)
        seen = Observation()
        before = _version(spark, self.bronze)
        # The raw line goes before the observation, which would otherwise copy it on every row.
        observed = parse_lines(lines, self.source).drop(RAW).observe(seen, *batch_metrics())
        append(bronze_rows(observed, self.source, self.run_id), self.bronze, run_id=self.run_id,
               txn=txn, properties=self.properties)
        if _version(spark, self.bronze) != before:
            metrics = seen.get
        else:  # Delta skipped the append (a replay after a crash): count the batch alone.
            metrics = parse_lines(lines, self.source).agg(*batch_metrics()).first().asDict()
        bad_files = sorted(metrics["bad_files"])
        bad = parse_lines(lines.where(F.col(SOURCE_FILE).isin(bad_files)) if bad_files
                          else lines.limit(0), self.source)
        append(quarantine_rows(bad, self.run_id), self.quarantine, run_id=self.run_id, txn=txn)
        quarantined = Counter(dict(bad.where(F.col(REASON).isNotNull()).groupBy(REASON).count()
                                   .collect())) if bad_files else Counter()
        self._count(batch_id, metrics["files"], metrics["rows"], quarantined)

    def _unseen(self, lines: DataFrame, batch_id: int) -> DataFrame:
        lines, skipped = self.recovery.unseen(lines)
        self.counts.files_skipped += skipped
        log.warning("%s batch %d: skipped %d files already ingested (recovering the lost "
                    "checkpoint %s)", self.source.name, batch_id, skipped, self.checkpoint)
        return lines

    def _count(self, batch_id: int, files: int, rows: int, quarantined: Counter[str]) -> None:
        self.counts.files += files
        self.counts.rows_ingested += rows - sum(quarantined.values())
        self.counts.quarantined.update(quarantined)
        log.info("%s batch %d: %d files, %d rows ingested, %d quarantined", self.source.name,
                 batch_id, files, self.counts.rows_ingested, self.counts.rows_quarantined)


def _source_file(source: Source) -> Column:
    """Where a landed row came from, spelled as the tables store it: the path in the file
    listing for Parquet (each file is then read whole), the text reader's file otherwise."""
    return F.col("path" if source.format == "parquet" else "_metadata.file_path").alias(
        SOURCE_FILE)


def start_ingest(spark: SparkSession, layout: Layout, settings: IngestConfig, source: Source,
                 run_id: str | None) -> tuple[StreamingQuery, BatchWriter]:
    """Start the query that ingests the landing files of ``source`` not seen before.

    CSV and JSON Lines are read as text lines; Parquet as a list of new files, each read
    whole by the batch (``pipelines/ingest/parquet.py``).
    """
    parquet = source.format == "parquet"
    reader = (spark.readStream.format("binaryFile").schema(BINARY_FILE_SCHEMA) if parquet
              else spark.readStream.format("text"))
    if settings.max_files_per_trigger > 0:
        reader = reader.option("maxFilesPerTrigger", settings.max_files_per_trigger)
    landed = reader.option("maxFileAge", settings.max_file_age).load(layout.landing(source.name))
    lines = (landed.select(_source_file(source)) if parquet
             else landed.select("value", _source_file(source)))
    writer = BatchWriter(layout, source, run_id, begin_recovery(spark, layout, source.name))
    query = (lines.writeStream.queryName(f"ingest_{source.name}")
             .foreachBatch(writer)
             .option("checkpointLocation", writer.checkpoint)
             .trigger(availableNow=True)
             .start())
    return query, writer


def ingest_sources(spark: SparkSession, layout: Layout, settings: IngestConfig,
                   sources: list[Source], run_id: str | None) -> list[IngestCounts]:
    """Ingest every source's new files; the queries run side by side and all are awaited.

    A failed query does not stop the others; its error is raised once all are done.
    """
    started = [start_ingest(spark, layout, settings, source, run_id) for source in sources]
    failures = []
    for query, writer in started:
        try:
            query.awaitTermination()
            if writer.recovery is not None:
                _reconcile(spark, layout, writer)
        except Exception as exc:  # noqa: BLE001 - raised below once every query is done
            failures.append(exc)
    if failures:
        raise failures[0]
    return [writer.counts for _, writer in started]


def _reconcile(spark: SparkSession, layout: Layout, writer: BatchWriter) -> None:
    """End a recovered query's recovery, counting the landing files it left in no table.

    The listing reads no file's content.
    """
    landed = (spark.read.format("binaryFile").load(layout.landing(writer.source.name))
              .select(_source_file(writer.source)))
    writer.counts.unaccounted = end_recovery(layout, writer.recovery, landed)
