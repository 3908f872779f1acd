"""Parsing and validation of raw lines, on in-code lines (no files)."""

from __future__ import annotations

from pyspark.sql import SparkSession

from pipelines.ingest.sources import FLIGHTS, WEATHER
from pipelines.ingest.validation import bronze_rows, parse_lines, quarantine_rows
from tests.pipelines.conftest import BAD_FLIGHTS, CANCELLED, GOOD_FLIGHT


def lines(spark: SparkSession, *values: str):
    return spark.createDataFrame([(v, "file:/landing/x.csv") for v in values],
                                 "value string, _source_file string")


def test_each_bad_flight_gets_its_reason(spark: SparkSession) -> None:
    parsed = parse_lines(lines(spark, FLIGHTS.header, GOOD_FLIGHT, CANCELLED, *BAD_FLIGHTS),
                         FLIGHTS)
    reasons = {r["_raw"]: r["_reason"] for r in parsed.collect()}
    assert FLIGHTS.header not in reasons  # the header is not a row
    assert reasons == {GOOD_FLIGHT: None, CANCELLED: None, **BAD_FLIGHTS}


def test_types_and_flags(spark: SparkSession) -> None:
    parsed = parse_lines(lines(spark, GOOD_FLIGHT, CANCELLED), FLIGHTS)
    good, cancelled = bronze_rows(parsed, FLIGHTS, "run-1").orderBy("dep_time").collect()[::-1]
    assert (good["dep_time"], good["distance"], good["cancelled"]) == (517, 1400.0, False)
    assert good["time_hour"].isoformat().startswith("2013-01-01")
    assert cancelled["dep_time"] is None and cancelled["cancelled"] is True
    assert cancelled["_run_id"] == "run-1" and cancelled["_source_file"].endswith("x.csv")


def test_quoted_commas_are_one_field(spark: SparkSession) -> None:
    row = 'EWR,2013,1,1,1,39.02,26.06,59.37,270,10.35,,0,1012,10,2013-01-01T06:00:00Z'
    quoted = row.replace("EWR", '"EWR"').replace(",1012,", ',"1012",')
    parsed = parse_lines(lines(spark, row, quoted, row + ",extra"), WEATHER).collect()
    assert [r["_reason"] for r in parsed] == [None, None, "malformed:expected 15 fields"]


def test_quarantine_keeps_the_raw_line(spark: SparkSession) -> None:
    bad = next(iter(BAD_FLIGHTS))
    rows = quarantine_rows(parse_lines(lines(spark, GOOD_FLIGHT, bad), FLIGHTS), "r").collect()
    assert [(r["raw_line"], r["reason"], r["_run_id"]) for r in rows] == \
        [(bad, BAD_FLIGHTS[bad], "r")]
