"""Parsing and validation of raw lines, on in-code lines (no files)."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.ingest.validation import bronze_rows, field_count, parse_lines, quarantine_rows
from tests.pipelines.conftest import (
    BAD_FLIGHTS,
    CANCELLED,
    FLIGHTS,
    GOOD_FLIGHT,
    SOURCES,
    flight_line,
)


def lines(spark: SparkSession, *values: str):
    return spark.createDataFrame([(v, "file:/landing/x.csv") for v in values],
                                 "value string, _source_file string")


def test_each_bad_flight_gets_its_reason(spark: SparkSession) -> None:
    parsed = parse_lines(lines(spark, FLIGHTS.header, GOOD_FLIGHT, CANCELLED, *BAD_FLIGHTS),
                         FLIGHTS)
    reasons = {r["_raw"]: r["_reason"] for r in parsed.collect()}
    assert FLIGHTS.header not in reasons  # the header is not a row
    assert reasons == {GOOD_FLIGHT: None, CANCELLED: None, **BAD_FLIGHTS}


def test_a_value_that_does_not_fit_names_its_column(spark: SparkSession) -> None:
    """The line is parsed typed once; only a line that did not convert is read as text."""
    bad = {
        flight_line(flight="15x5"): "bad_type:flight",
        flight_line(year="2013.5"): "bad_type:year",
        flight_line(air_time="long"): "bad_type:air_time",
        flight_line(time_hour="yesterday"): "bad_type:time_hour",
        # Two misfits: the first column is named, as every check goes in column order.
        flight_line(dep_time="5x7", distance="far"): "bad_type:dep_time",
        # A misfit on a line of the wrong shape is malformed first.
        flight_line(dep_time="5x7") + ",extra": "malformed:expected 19 fields",
    }
    parsed = parse_lines(lines(spark, GOOD_FLIGHT, *bad), FLIGHTS).collect()
    assert {r["_raw"]: r["_reason"] for r in parsed} == {GOOD_FLIGHT: None, **bad}


def test_the_date_rule_knows_the_calendar(spark: SparkSession) -> None:
    """Month lengths and leap years, as the Gregorian calendar has them."""
    days = {("2013", "2", "28"): None, ("2013", "2", "29"): "invalid:date",
            ("2016", "2", "29"): None, ("2000", "2", "29"): None,
            ("1900", "2", "29"): "invalid:date", ("2013", "4", "30"): None,
            ("2013", "4", "31"): "invalid:date", ("2013", "12", "31"): None,
            ("0", "1", "1"): "invalid:date"}
    given = {flight_line(year=y, month=m, day=d): reason for (y, m, d), reason in days.items()}
    parsed = parse_lines(lines(spark, *given), FLIGHTS).collect()
    assert {r["_raw"]: r["_reason"] for r in parsed} == given


def test_field_count_with_and_without_quotes(spark: SparkSession) -> None:
    values = ["a,b,c", '"a,b",c', 'a,"b ""x"", y",c', "", ",,", '"",""']
    counted = (spark.createDataFrame([(v,) for v in values], "value string")
               .select("value", field_count(F.col("value")).alias("n")).collect())
    assert {r["value"]: r["n"] for r in counted} == dict(zip(values, [3, 2, 3, 1, 3, 2],
                                                             strict=True))


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
    parsed = parse_lines(lines(spark, row, quoted, row + ",extra"), SOURCES["weather"]).collect()
    assert [r["_reason"] for r in parsed] == [None, None, "malformed:expected 15 fields"]


def test_quarantine_keeps_the_raw_line(spark: SparkSession) -> None:
    bad = next(iter(BAD_FLIGHTS))
    rows = quarantine_rows(parse_lines(lines(spark, GOOD_FLIGHT, bad), FLIGHTS), "r").collect()
    assert [(r["raw_line"], r["reason"], r["_run_id"]) for r in rows] == \
        [(bad, BAD_FLIGHTS[bad], "r")]
