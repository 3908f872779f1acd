"""Feature transforms on hand-made frames, and the features step on the seeded lake."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from models.features.holidays import days_to_nearest_holiday
from models.features.spark import days_to_holiday
from pipelines.features.flights import PRE_DEPARTURE_FIELDS, flight_examples, join_weather
from pipelines.features.sequences import sequence_windows
from pipelines.features.step import FEATURES, split_of
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError, DataError
from pipelines.platform.lake import read_table
from pipelines.platform.layout import Layout
from tests.conftest import make_config
from tests.pipelines.conftest import SeededLake, saved_spec, step_context
from tests.support.flights import FEATURE_TABLE, RAW_FIELDS, SEQUENCE_TABLE

WEATHER_DDL = ("origin string, year int, month int, day int, hour int, temp double, "
               "dewp double, humid double, wind_dir double, wind_speed double, "
               "wind_gust double, precip double, pressure double, visib double, "
               "time_hour timestamp")


def weather_row(origin: str, day: int, hour: int, temp: float, utc_hour: int = 0) -> tuple:
    return (origin, 2013, 11, day, hour, temp, None, None, None, None, None, None, None, None,
            dt.datetime(2013, 11, day, utc_hour))


def test_weather_joins_on_the_scheduled_local_hour(spark: SparkSession) -> None:
    flights = spark.createDataFrame(
        [(1, "EWR", dt.datetime(2013, 11, 2, 14, 59)), (2, "JFK", dt.datetime(2013, 11, 2, 15)),
         (3, "EWR", dt.datetime(2013, 11, 3, 1, 30)), (4, "LGA", dt.datetime(2013, 11, 2, 9))],
        "id int, origin string, sched_dep_local timestamp_ntz")
    weather = spark.createDataFrame([
        weather_row("EWR", 2, 14, 50.0), weather_row("EWR", 2, 15, 51.0),
        weather_row("JFK", 2, 14, 60.0), weather_row("JFK", 2, 15, 61.0),
        # 1 am happens twice when daylight saving time ends: the first report counts.
        weather_row("EWR", 3, 1, 40.0, utc_hour=5), weather_row("EWR", 3, 1, 41.0, utc_hour=6),
    ], WEATHER_DDL)
    joined = {r["id"]: r["temp"] for r in join_weather(flights, weather).collect()}
    assert joined == {1: 50.0, 2: 61.0, 3: 40.0, 4: None}


def test_days_to_holiday_agrees_with_numpy(spark: SparkSession) -> None:
    days = np.arange(np.datetime64("2012-12-01"), np.datetime64("2015-01-31"))
    frame = spark.createDataFrame([(d.item(),) for d in days], "day date")
    ours = [r[0] for r in frame.select(days_to_holiday(F.col("day"))).collect()]
    assert ours == days_to_nearest_holiday(days).tolist()
    assert ours[list(days).index(np.datetime64("2013-11-28"))] == 0  # Thanksgiving
    assert ours[list(days).index(np.datetime64("2013-12-29"))] == 3  # Jan 1 is nearer than Dec 25


def test_split_boundaries(spark: SparkSession) -> None:
    days = ["2013-01-01", "2013-09-30", "2013-10-01", "2013-11-30", "2013-12-01", "2013-12-31"]
    frame = spark.createDataFrame([(dt.date.fromisoformat(d),) for d in days], "d date")
    split = frame.withColumn("split", split_of("d", dt.date(2013, 9, 30), dt.date(2013, 11, 30)))
    assert [r["split"] for r in split.orderBy("d").collect()] == \
        ["train", "train", "validation", "validation", "test", "test"]


def test_sequence_windows_are_consecutive_hours(spark: SparkSession, config: Config) -> None:
    start = dt.datetime(2013, 1, 1)
    rows = [("EWR", start + dt.timedelta(hours=h), 2, float(h), 30.0, 5.0, 0.0, 10.0)
            for h in range(6)]
    hourly = spark.createDataFrame(rows, "origin string, hour_ts timestamp_ntz, flights int, "
                                   "mean_dep_delay double, temp double, wind_speed double, "
                                   "precip double, visib double")
    stats = {c: (0.0, 1.0) for c in ("flights", "mean_dep_delay", "temp", "wind_speed",
                                    "precip", "visib")}
    declared = config.sequences.model_copy(update={"window": 3})
    windows = sequence_windows(hourly, declared, stats).orderBy("hour_ts").collect()
    assert [r["target"] for r in windows] == [3.0, 4.0, 5.0]
    assert [step[1] for step in windows[0]["window"]] == [0.0, 1.0, 2.0]


def test_feature_table_has_labels_splits_and_no_leakage(seeded_lake: SeededLake,
                                                        spark: SparkSession) -> None:
    config, result = seeded_lake.config, seeded_lake.features
    layout = Layout.of(config)
    table = read_table(spark, layout.table("silver", FEATURE_TABLE))
    assert not set(config.features.leakage) & set(table.columns)
    assert table.where("arr_delay IS NULL").count() == 0
    bronze = read_table(spark, layout.table("bronze", "flights"))
    assert result.metrics["rows_unlabelled"] == bronze.where("arr_delay IS NULL").count() > 0
    splits = {r["split"]: (r["first"], r["last"]) for r in table.groupBy("split").agg(
        F.min("flight_date").alias("first"), F.max("flight_date").alias("last")).collect()}
    assert splits["train"][1] <= dt.date(2013, 9, 30) < splits["validation"][0]
    assert splits["validation"][1] <= dt.date(2013, 11, 30) < splits["test"][0]
    delayed = table.where("is_delayed = 1").agg(F.min("arr_delay")).first()[0]
    assert delayed > 15  # is_delayed's definition in conf/datasets/flights/features.yaml
    assert table.where("is_delayed = 0").agg(F.max("arr_delay")).first()[0] <= 15


def test_spec_is_fitted_on_training_rows_and_saved(seeded_lake: SeededLake,
                                                   spark: SparkSession) -> None:
    ref = next(r for r in seeded_lake.features.outputs if r.name == f"silver.{FEATURE_TABLE}")
    spec = saved_spec(seeded_lake.config, ref.version)
    assert (spec.feature_table, spec.feature_table_version) == (ref.path, ref.version)
    month = next(c for c in spec.categorical if c.name == "month")
    assert set(month.vocab) <= {"9"}  # October and December are not training months
    train = read_table(spark, ref).where("split = 'train'")
    distance = next(n for n in spec.numeric if n.name == "distance")
    assert np.isclose(distance.mean, train.agg(F.mean("distance")).first()[0])


def test_sequence_table(seeded_lake: SeededLake, spark: SparkSession) -> None:
    config = seeded_lake.config
    ref = next(r for r in seeded_lake.features.outputs if r.name == f"silver.{SEQUENCE_TABLE}")
    table = read_table(spark, ref)
    window = config.sequences.window
    assert table.where(F.size("window") != window).count() == 0
    assert {r[0] for r in table.select("split").distinct().collect()} == \
        {"train", "validation", "test"}
    layout = Layout.of(config)
    stats = json.loads(layout.storage.read_text(layout.feature_spec(SEQUENCE_TABLE, ref.version)))
    assert stats["window"] == window and len(stats["mean"]) == len(stats["features"])


def test_fitted_spec_encodes_identically_and_full_rank(seeded_lake: SeededLake,
                                                       spark: SparkSession) -> None:
    from pyspark.ml.functions import vector_to_array

    from models.features.encode_pandas import encode_pandas
    from models.features.spark import encode_spark

    ref = next(r for r in seeded_lake.features.outputs if r.name == f"silver.{FEATURE_TABLE}")
    spec = saved_spec(seeded_lake.config, ref.version)
    table = read_table(spark, ref).withColumn("row_id", F.monotonically_increasing_id())
    encoded = (encode_spark(spec, table)
               .select("row_id", "split", *RAW_FIELDS, vector_to_array("features").alias("f"),
                       "cat_indices", "numeric").orderBy("row_id").toPandas())
    ours = encode_pandas(spec, encoded[list(RAW_FIELDS)])
    np.testing.assert_array_equal(ours["features"], np.stack(encoded["f"]))
    np.testing.assert_array_equal(ours["cat_indices"], np.stack(encoded["cat_indices"]))
    np.testing.assert_array_equal(ours["numeric"], np.stack(encoded["numeric"]))
    # The encoding itself adds no collinearity: intercept + one-hot columns have full rank,
    # and no column is constant. (Whether numerics are collinear depends on the data: on
    # these two training days, days_to_holiday is a function of the weekday.)
    train = ours["features"][(encoded["split"] == "train").to_numpy()]
    onehot = sum(len(c.linear_levels) for c in spec.categorical)
    design = np.column_stack([np.ones(len(train)), train[:, :onehot]])
    assert np.linalg.matrix_rank(design) == design.shape[1]
    assert (train.std(axis=0) > 0).all()


GOLDEN = json.loads((Path(__file__).with_name("flights_slice_golden.json")).read_text())


def test_the_declared_flights_view_reproduces_the_hand_written_code(
        seeded_lake: SeededLake) -> None:
    """The spec fitted through conf/datasets/flights/features.yaml equals the one the
    flights code fitted on the same slice before the view was declared, with the features
    added since (the pre-departure ones) after it."""
    ref = next(r for r in seeded_lake.features.outputs if r.name == f"silver.{FEATURE_TABLE}")
    spec = json.loads(saved_spec(seeded_lake.config, ref.version).to_json())

    for key in ("categorical", "missing"):
        assert spec[key][:len(GOLDEN["spec"][key])] == GOLDEN["spec"][key], key
    for now, before in zip(spec["numeric"], GOLDEN["spec"]["numeric"], strict=False):
        assert now["name"] == before["name"]  # the statistics to the last bits of a sum:
        assert (now["mean"], now["std"]) == pytest.approx((before["mean"], before["std"]),
                                                          rel=1e-12)
    added = {n["name"] for n in spec["numeric"][len(GOLDEN["spec"]["numeric"]):]}
    assert added == set(PRE_DEPARTURE_FIELDS)
    assert {h["column"]: h["buckets"] for h in spec["hashed"]} == GOLDEN["hashed"]
    planes = json.dumps(spec["planes"], sort_keys=True).encode()
    assert hashlib.sha256(planes).hexdigest() == GOLDEN["planes_sha256"]


@pytest.mark.parametrize(("overrides", "error", "message"), [
    (["features.time_column=departure_day"], ConfigError,
     "features.view: the view gives no column departure_day, which features.time_column "
     "needs; it gives dest, "),
    (["features.request.gate=string"], ConfigError,
     "features.view: the view gives no column gate, which features.request needs"),
    (["features.labels.is_delayed=CAST(arrival_delay > 15 AS INT)"], ConfigError,
     "features.labels: [UNRESOLVED_COLUMN"),
    (["features.train_end=2013-12-05", "features.validation_end=2013-12-06"], DataError,
     "features: the validation and test splits are empty (train "),
])
def test_a_view_that_does_not_fit_its_declaration_stops_before_writing(
        seeded_lake: SeededLake, spark: SparkSession, overrides: list[str], error: type,
        message: str) -> None:
    config = make_config(Path(seeded_lake.config.data_root), *overrides)
    table = Layout.of(config).table("silver", FEATURE_TABLE)
    before = DeltaTable.forPath(spark, table).history(1).first()["version"]

    with pytest.raises(error) as info:
        FEATURES.run(step_context(config, spark, "run-bad-features"))

    assert message in str(info.value)
    assert DeltaTable.forPath(spark, table).history(1).first()["version"] == before


# What only happens at or after departure: a flight's outcome.
OUTCOMES = {"dep_time": None, "dep_delay": 999.0, "arr_time": None, "arr_delay": 999.0,
            "air_time": None}


def test_no_feature_uses_what_happens_after_the_scheduled_departure(
        seeded_lake: SeededLake, spark: SparkSession) -> None:
    """Rewrite the outcome of every flight from a day on: no request column of a flight of
    that day may change (each is known before its departure), while a later day's history
    features do (so the rewrite reaches what they read)."""
    layout = Layout.of(seeded_lake.config)
    tables = {name: read_table(spark, layout.table("bronze", name))
              for name in ("flights", "weather", "airports")}
    day = dt.date(2013, 9, 30)
    changed = tables["flights"].withColumns({
        column: F.when(F.make_date("year", "month", "day") >= F.lit(day), F.lit(value))
        .otherwise(F.col(column)) for column, value in OUTCOMES.items()})
    request = list(RAW_FIELDS)
    keys = ["flight_date", "carrier", "flight", "origin", "dest", "sched_dep_local"]

    def features_by_day(flights: DataFrame, when: dt.date) -> pd.DataFrame:
        view = flight_examples({**tables, "flights": flights}).where(F.col("flight_date") == when)
        columns = list(dict.fromkeys([*keys, *request]))
        return view.select(*columns).toPandas().sort_values(keys).reset_index(drop=True)

    pd.testing.assert_frame_equal(features_by_day(tables["flights"], day),
                                  features_by_day(changed, day))
    later = day + dt.timedelta(days=1)
    before, after = features_by_day(tables["flights"], later), features_by_day(changed, later)
    assert not before["carrier_arr_delay_7d"].equals(after["carrier_arr_delay_7d"])
    assert not before["origin_dep_delay_1d"].equals(after["origin_dep_delay_1d"])
