"""Ingest after a lost checkpoint: the files bronze or quarantine already hold are skipped.

A source's checkpoint is what makes its ingest incremental (it lists the files read) and a
replayed batch idempotent (its query id is the Delta ``txnAppId``). A query started
without one reads every landing file again under a new app id, which Delta's
transaction check cannot match: every row would land twice. So when a query starts with
no checkpoint while bronze exists, it recovers: each batch drops the rows of the files
that bronze or quarantine held when the recovery began. Both tables are read pinned at
the versions of that moment, recorded in the checkpoint folder until the query has read
everything, so that a batch replayed after a crash is filtered exactly as the first time
(and Delta's check still recognises it), and a rerun of a recovery cut short goes on
recovering. A run with its checkpoint pays for one or two existence checks.

Once the query is done, the landing files are reconciled with the tables: a file with no
row in either (an empty file, or one lost some other way) is reported.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession

from models.storage import join
from pipelines.ingest.validation import SOURCE_FILE
from pipelines.platform.lake import TableRef, pin, read_table, table_exists
from pipelines.platform.layout import Layout

log = logging.getLogger(__name__)

# In the checkpoint folder, so that losing the checkpoint again loses the recovery too.
MARKER = "mlpipe-recovery.json"
# Unaccounted files named in the warning; the rest are counted.
NAMED = 20


@dataclass(frozen=True)
class Recovery:
    """One source's ingest without its checkpoint, and the tables as they were before it."""

    source: str
    checkpoint: str
    bronze: TableRef
    quarantine: TableRef | None

    def unseen(self, lines: DataFrame) -> tuple[DataFrame, int]:
        """``lines`` less the rows of the files ingested before, and how many those files were.

        Counting them costs a pass over the batch, paid by a recovery only.
        """
        known = _files([read_table(lines.sparkSession, ref)
                        for ref in (self.bronze, self.quarantine) if ref is not None])
        skipped = lines.select(SOURCE_FILE).distinct().join(known, SOURCE_FILE, "left_semi")
        return lines.join(known, SOURCE_FILE, "left_anti"), skipped.count()


def begin_recovery(spark: SparkSession, layout: Layout, source: str) -> Recovery | None:
    """The recovery ``source``'s query must run, or None when its checkpoint has its state.

    Call it before the query starts, which writes the checkpoint's ``metadata``.
    """
    storage, checkpoint = layout.storage, layout.ingest_checkpoint(source)
    if storage.exists(_marker(checkpoint)):
        saved = json.loads(storage.read_text(_marker(checkpoint)))
        quarantine = saved["quarantine"]
        return Recovery(source, checkpoint, TableRef(**saved["bronze"]),
                        TableRef(**quarantine) if quarantine else None)
    bronze, quarantine = layout.table("bronze", source), layout.table("quarantine", source)
    if storage.exists(join(checkpoint, "metadata")) or not table_exists(spark, bronze):
        return None
    recovery = Recovery(source, checkpoint, pin(spark, f"bronze.{source}", bronze),
                        pin(spark, f"quarantine.{source}", quarantine)
                        if table_exists(spark, quarantine) else None)
    storage.write_text(_marker(checkpoint), json.dumps(asdict(recovery)))
    log.warning("%s: the ingest checkpoint %s has no state (lost or deleted) but bronze exists: "
                "recovering, the files in bronze (v%d) and quarantine are skipped", source,
                checkpoint, recovery.bronze.version)
    return recovery


def end_recovery(layout: Layout, recovery: Recovery, landed: DataFrame) -> list[str]:
    """Close a recovery whose query has read everything; the landed files in neither table.

    ``landed`` lists the landing files, one ``_source_file`` each.
    """
    spark = landed.sparkSession
    tables = [layout.table(layer, recovery.source) for layer in ("bronze", "quarantine")]
    held = _files([read_table(spark, path) for path in tables if table_exists(spark, path)])
    missing = sorted(row[0] for row in landed.join(held, SOURCE_FILE, "left_anti").collect())
    if missing:
        log.warning("%s: %d landing files have no row in bronze or quarantine (empty, or "
                    "lost): %s", recovery.source, len(missing),
                    ", ".join(missing[:NAMED]) + (" ..." if len(missing) > NAMED else ""))
    layout.storage.delete(_marker(recovery.checkpoint))
    return missing


def _marker(checkpoint: str) -> str:
    return join(checkpoint, MARKER)


def _files(tables: list[DataFrame]) -> DataFrame:
    """The distinct source files of some lake tables."""
    return reduce(DataFrame.union, [t.select(SOURCE_FILE) for t in tables]).distinct()
