"""Parse raw landing lines against a source's schema and give each bad row its reason.

Lines are read as text and parsed here (rather than by the CSV or JSON reader) so that
every row keeps its raw line: a quarantined row can be shown exactly as it arrived. The
first failing check names the reason, in this order: the line's shape
(``malformed``: the wrong number of CSV fields, a JSON line that is not an object, or a
Parquet file that cannot be read), a
value that does not fit its type (``bad_type:<column>``), a required value that is absent
(``missing:<column>``), then the source's rules (``invalid:<column>``). Every line is
either a bronze row or a quarantine row.

Each line is parsed once, typed. The parser marks a line it could not convert (a
value that does not fit its type, or the wrong shape); only those lines have their
shape checked and are parsed again as text, to name the column whose value did not
fit. A misfit is rare, so naming it costs nothing on good data. A CSV file starts with
the header line, which is not a row; a JSON line's keys that are not columns are ignored.
Parquet rows arrive here as JSON lines, one object per row.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from pipelines.ingest.sources import Source

REASON = "_reason"
RAW = "_raw"
SOURCE_FILE = "_source_file"
# The typed parse puts a line it could not convert here; NULL means every value fitted.
_UNFIT = "_unfit"
PARSE_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _UNFIT}
# True on a line of the wrong shape: CSV fields not one per column, JSON not an object.
_MALFORMED = "_malformed"
# Quoted fields may hold commas; dropping them first leaves one comma per field boundary.
_QUOTED = r'"([^"]|"")*"'


def _ddl(schema: StructType, as_text: bool = False) -> str:
    return ", ".join(f"`{f.name}` {'string' if as_text else f.dataType.simpleString()}"
                     for f in schema.fields)


def field_count(line: Column) -> Column:
    """How many CSV fields a line has, commas inside quotes not counting.

    Only a line with a quote needs the regular expression; on any other the count is
    its commas plus one, which is much cheaper to compute.
    """
    commas = F.length(line) - F.length(F.replace(line, F.lit(","), F.lit("")))
    return (F.when(F.instr(line, '"') > 0,
                   F.size(F.split(F.regexp_replace(line, _QUOTED, ""), ",", -1)))
            .otherwise(commas + 1))


def _checks(source: Source) -> list[tuple[str, Column]]:
    """Each reason a row can be bad for, with the condition that makes it so, in check order.

    The conditions expect the typed columns of ``source`` plus ``_text`` (the same fields
    as strings, NULL on a line the typed parse converted whole) and ``_malformed``.
    """
    shape = {"csv": f"malformed:expected {len(source.columns)} fields",
             "json": "malformed:not a JSON object",
             "parquet": "malformed:not a readable Parquet file"}[source.format]
    return [
        (shape, F.col(_MALFORMED)),
        *[(f"bad_type:{c}", F.col(f"_text.`{c}`").isNotNull() & F.col(c).isNull())
          for c in source.columns],
        *[(f"missing:{c}", F.col(c).isNull()) for c in source.required],
        *[(reason, ~F.coalesce(F.expr(rule), F.lit(True))) for reason, rule in source.rules],
    ]


def reason_expr(source: Source) -> Column:
    """The first reason a parsed row is bad, or NULL for a good row."""
    return F.coalesce(*[F.when(bad, F.lit(reason)) for reason, bad in _checks(source)])


def _parsed(line: Column, source: Source, as_text: bool = False) -> Column:
    """The line parsed by the source's format, as a struct of the columns (plus ``_unfit``).

    Parquet rows arrive as JSON objects (``pipelines/ingest/parquet.py``).
    """
    ddl = f"{_ddl(source.schema, as_text)}, `{_UNFIT}` string"
    if source.format == "csv":
        return F.from_csv(line, ddl, PARSE_OPTIONS)
    return F.from_json(line, ddl, PARSE_OPTIONS)


def _malformed(line: Column, source: Source) -> Column:
    """A line of the wrong shape (checked only on lines the typed parse marked)."""
    if source.format == "csv":
        return field_count(line) != len(source.columns)
    return F.json_object_keys(line).isNull()  # not JSON, not an object, or a broken file


def parse_lines(lines: DataFrame, source: Source) -> DataFrame:
    """``(value, _source_file)`` text lines -> typed columns, flags, ``_raw`` and ``_reason``.

    A CSV file's header lines (the exact expected header) are not rows and are dropped;
    anything else, a blank line included, is a row that must parse.
    """
    rows = lines.where(F.col("value") != F.lit(source.header)) if source.format == "csv" \
        else lines
    unfit = F.col(_UNFIT).isNotNull()
    # No struct at all: an empty JSON line (an unreadable Parquet file's placeholder).
    malformed = F.col("_typed").isNull() | (F.col(f"_typed.{_UNFIT}").isNotNull()
                                            & _malformed(F.col(RAW), source))
    parsed = (
        rows.select(F.col("value").alias(RAW), F.col(SOURCE_FILE),
                    _parsed(F.col("value"), source).alias("_typed"))
        .select(RAW, SOURCE_FILE, malformed.alias(_MALFORMED), "_typed.*")
        .withColumn("_text", F.when(unfit, _parsed(F.col(RAW), source, as_text=True)))
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
