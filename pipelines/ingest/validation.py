"""Parse raw landing lines against a source's schema and give each bad row its reason.

Lines are read as text and parsed here (rather than by the CSV reader) so that every
row keeps its raw line: a quarantined row can be shown exactly as it arrived. The
first failing check names the reason, in this order: the line's shape
(``malformed``), a value that does not fit its type (``bad_type:<column>``), a
required value that is absent (``missing:<column>``), then the source's rules
(``invalid:<column>``). Every line is either a bronze row or a quarantine row.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from pipelines.ingest.sources import Source

REASON = "_reason"
RAW = "_raw"
SOURCE_FILE = "_source_file"
CSV_OPTIONS = {"mode": "PERMISSIVE"}
# Quoted fields may hold commas; dropping them first leaves one comma per field boundary.
_QUOTED = r'"([^"]|"")*"'


def _ddl(schema: StructType, as_text: bool = False) -> str:
    return ", ".join(f"`{f.name}` {'string' if as_text else f.dataType.simpleString()}"
                     for f in schema.fields)


def field_count(line: Column) -> Column:
    """How many CSV fields a line has, commas inside quotes not counting."""
    return F.size(F.split(F.regexp_replace(line, _QUOTED, ""), ",", -1))


def reason_expr(source: Source) -> Column:
    """The first reason a parsed row is bad, or NULL for a good row.

    Expects the typed columns of ``source`` plus ``_text`` (the same fields as strings)
    and ``_fields`` (the line's field count).
    """
    checks = [F.when(F.col("_fields") != len(source.columns),
                     F.lit(f"malformed:expected {len(source.columns)} fields"))]
    checks += [F.when(F.col(f"_text.`{c}`").isNotNull() & F.col(c).isNull(), F.lit(f"bad_type:{c}"))
               for c in source.columns]
    checks += [F.when(F.col(c).isNull(), F.lit(f"missing:{c}")) for c in source.required]
    checks += [F.when(~F.coalesce(F.expr(rule), F.lit(True)), F.lit(reason))
               for reason, rule in source.rules]
    return F.coalesce(*checks)


def parse_lines(lines: DataFrame, source: Source) -> DataFrame:
    """``(value, _source_file)`` text lines -> typed columns, flags, ``_raw`` and ``_reason``.

    Header lines (the exact expected header) are not rows and are dropped; anything
    else, a blank line included, is a row that must parse.
    """
    parsed = (
        lines.where(F.col("value") != F.lit(source.header))
        .select(
            F.col("value").alias(RAW),
            F.col(SOURCE_FILE),
            field_count(F.col("value")).alias("_fields"),
            F.from_csv("value", _ddl(source.schema, as_text=True), CSV_OPTIONS).alias("_text"),
            F.from_csv("value", _ddl(source.schema), CSV_OPTIONS).alias("_typed"),
        )
        .select(RAW, SOURCE_FILE, "_fields", "_text", "_typed.*")
    )
    flags = [F.coalesce(F.expr(rule), F.lit(False)).alias(name)
             for name, rule in source.flags.items()]
    return parsed.select(*source.columns, *flags, RAW, SOURCE_FILE,
                         reason_expr(source).alias(REASON))


def bronze_rows(parsed: DataFrame, source: Source, run_id: str | None) -> DataFrame:
    """The good rows as the bronze table stores them: typed columns, flags, lineage columns."""
    return (parsed.where(F.col(REASON).isNull())
            .select(*source.columns, *source.flags, SOURCE_FILE,
                    F.current_timestamp().alias("_ingested_at"),
                    F.lit(run_id).cast("string").alias("_run_id")))


def quarantine_rows(parsed: DataFrame, run_id: str | None) -> DataFrame:
    """The bad rows as the quarantine table stores them: reason, raw line, where it came from."""
    return (parsed.where(F.col(REASON).isNotNull())
            .select(F.col(REASON).alias("reason"), F.col(RAW).alias("raw_line"), SOURCE_FILE,
                    F.current_timestamp().alias("_ingested_at"),
                    F.lit(run_id).cast("string").alias("_run_id")))
