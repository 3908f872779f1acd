"""The feature spec: serialization, and identical inputs from Spark and from pandas."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.functions import vector_to_array
from pyspark.sql import SparkSession

from models.features import FeatureSpec, load_spec
from models.features import encode_pandas as encode_pandas_module
from models.features.encode_pandas import HASH_MEMO_SIZE, SpecEncoder, encode_pandas
from models.features.fields import FLIGHTS
from models.features.spark import encode_spark
from models.features.spec import Categorical, Hashed, MissingIndicator, Numeric
from tests.support.flights import RAW_FIELDS

WEATHER = {"temp": 50.0, "dewp": 30.0, "humid": 60.0, "wind_dir": 200.0, "wind_speed": 10.0,
           "wind_gust": None, "precip": 0.0, "pressure": 1010.0, "visib": 10.0}
# Known before departure; a route with no flight in the weeks before has no record.
PRE_DEPARTURE = {"origin_hour_departures": 12.0, "carrier_arr_delay_7d": 5.5,
                 "route_arr_delay_28d": None, "origin_dep_delay_1d": 9.0}


def small_spec() -> FeatureSpec:
    return FeatureSpec(
        categorical=(
            Categorical("carrier", ("UA", "B6", "AA"), reference="UA"),
            Categorical("origin", ("EWR", "JFK", "LGA"), reference="EWR"),
            Categorical("dest", ("ATL", "ORD"), reference="ATL"),
            Categorical("route", ("EWR-ATL", "JFK-ORD"), reference="EWR-ATL", linear=False),
            Categorical("hour", ("8", "17"), reference="8"),
            Categorical("dow", ("0", "4", "6"), reference="0"),
            Categorical("month", ("1", "7"), reference="1"),
            Categorical("engine", ("Turbo-fan", "Turbo-jet"), reference="Turbo-fan"),
        ),
        numeric=tuple(Numeric(n, m, s) for n, m, s in (
            ("distance", 1000.0, 700.0), ("days_to_holiday", 12.3, 9.1),
            ("plane_age", 11.0, 6.5), ("seats", 140.0, 70.0), ("temp", 55.5, 17.3),
            ("wind_gust", 20.1, 4.2), ("visib", 9.2, 2.1))),
        missing=(MissingIndicator("plane_age_missing", "plane_age"),
                 MissingIndicator("wind_gust_missing", "wind_gust")),
        hashed=(Hashed("tailnum", 16),),
        planes={"N14228": (1999, 149, "Turbo-fan"), "N24211": (None, 178, "Turbo-jet")},
        feature_table="/lake/silver/flight_features", feature_table_version=3,
        request=RAW_FIELDS, derivation=FLIGHTS, labels={"is_delayed": "arr_delay > 15"},
    )


def raw_flights() -> pd.DataFrame:
    """Known and unknown levels, known/unknown/missing planes, missing weather."""
    rows = [
        ("UA", "EWR", "ATL", dt.datetime(2013, 1, 7, 8, 30), 746.0, "N14228", WEATHER),
        ("B6", "JFK", "ORD", dt.datetime(2013, 7, 4, 17, 5), 740.0, "N24211",
         {**WEATHER, "wind_gust": 25.0}),
        ("ZZ", "LGA", "SFO", dt.datetime(2013, 12, 29, 23, 59), 2586.0, "N99999",
         dict.fromkeys(WEATHER)),
        ("AA", "JFK", "ATL", dt.datetime(2014, 2, 17, 6, 0), 760.0, None, WEATHER),
    ]
    return pd.DataFrame([
        {"carrier": c, "origin": o, "dest": d, "sched_dep_local": t, "distance": km,
         "tailnum": tail, **weather, **PRE_DEPARTURE}
        for c, o, d, t, km, tail, weather in rows
    ]).astype({name: dtype for name, dtype in RAW_FIELDS.items() if dtype == "float64"})


def spark_arrays(spark: SparkSession, spec: FeatureSpec, raw: pd.DataFrame
                 ) -> dict[str, np.ndarray]:
    frame = spark.createDataFrame(raw.assign(row_id=range(len(raw))).astype(object)
                                  .where(raw.notna().assign(row_id=True), None),
                                  schema=spark_schema())
    rows = (encode_spark(spec, frame)
            .select("row_id", vector_to_array("features").alias("features"),
                    "cat_indices", "numeric").orderBy("row_id").collect())
    return {"features": np.array([r["features"] for r in rows]),
            "cat_indices": np.array([r["cat_indices"] for r in rows], dtype=np.int32),
            "numeric": np.array([r["numeric"] for r in rows])}


def spark_schema() -> str:
    kinds = {"string": "string", "datetime64[ns]": "timestamp_ntz", "float64": "double"}
    return ", ".join([f"{n} {kinds[t]}" for n, t in RAW_FIELDS.items()] + ["row_id long"])


def test_json_round_trip(tmp_path: Path) -> None:
    spec = small_spec()
    assert FeatureSpec.from_json(spec.to_json()) == spec
    assert load_spec(spec.save(tmp_path / "spec.json")) == spec


def test_a_format_1_spec_reads_as_the_flights_spec_it_was() -> None:
    """Champions logged before datasets were declared keep loading and encoding."""
    spec = small_spec()
    document = json.loads(spec.to_json())
    for key in ("request", "derivation", "hashed", "labels"):
        del document[key]
    document.update(format_version=1, tail_buckets=16, delay_threshold_min=15.0)
    old = FeatureSpec.from_json(json.dumps(document))
    old_request = {name: dtype for name, dtype in RAW_FIELDS.items()
                   if name not in PRE_DEPARTURE}
    assert old == replace(spec, request=old_request,
                          labels={"is_delayed": "CAST(arr_delay > 15 AS INT)"})
    encoded, expected = encode_pandas(old, raw_flights()), encode_pandas(spec, raw_flights())
    for name, value in expected.items():
        np.testing.assert_array_equal(encoded[name], value)


def test_an_unknown_spec_format_is_refused() -> None:
    document = {**json.loads(small_spec().to_json()), "format_version": 7}
    with pytest.raises(ValueError, match="feature spec format 7 is not 2"):
        FeatureSpec.from_json(json.dumps(document))


def test_pandas_encoding(spark: SparkSession) -> None:
    spec = small_spec()
    out = encode_pandas(spec, raw_flights())
    names = spec.linear_feature_names
    assert out["features"].shape == (4, len(names))
    assert out["numeric"].shape == (4, len(spec.numeric_feature_names))
    carrier = out["cat_indices"][:, 0]
    assert carrier.tolist() == [1, 2, 0, 3]  # ZZ is out of vocabulary
    first = dict(zip(names, out["features"][0], strict=True))
    # Reference levels and unknown levels are all zeros: UA, EWR, ATL, 8h, Monday, January.
    assert not any(v for k, v in first.items() if "=" in k)
    assert first["plane_age"] == pytest.approx((2013 - 1999 - 11.0) / 6.5)
    assert first["wind_gust_missing"] == 1.0 and first["wind_gust"] == 0.0
    unknown_plane = dict(zip(names, out["features"][2], strict=True))
    assert unknown_plane["plane_age_missing"] == 1.0 and unknown_plane["temp"] == 0.0
    assert out["cat_indices"][3, -1] == 0  # no tail number


def test_spark_and_pandas_give_identical_inputs(spark: SparkSession) -> None:
    spec, raw = small_spec(), raw_flights()
    ours, theirs = encode_pandas(spec, raw), spark_arrays(spark, spec, raw)
    for key in ("features", "cat_indices", "numeric"):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


def edge_rows() -> tuple[FeatureSpec, pd.DataFrame]:
    """Rows the numpy encoder computes its own way: dates before 1970 and missing, routes
    whose level has more than one dash, an empty tail number, unknown planes."""
    spec = small_spec()
    route = Categorical("route", ("EWR-ATL", "LGA-SFO-2"), reference="EWR-ATL", linear=False)
    spec = replace(spec, categorical=tuple(route if c.name == "route" else c
                                           for c in spec.categorical))
    raw = pd.concat([raw_flights()] * 2, ignore_index=True)
    raw["sched_dep_local"] = [dt.datetime(1969, 12, 31, 23, 30), None,
                              dt.datetime(1960, 2, 29, 8, 0), dt.datetime(2013, 7, 4, 0, 0),
                              dt.datetime(1970, 1, 1, 0, 0), dt.datetime(2100, 11, 25, 17, 0),
                              dt.datetime(2013, 12, 31, 23, 59), dt.datetime(1999, 1, 3, 8, 1)]
    raw["sched_dep_local"] = pd.to_datetime(raw["sched_dep_local"])
    raw["origin"] = ["LGA", "LGA-SFO", "EWR", None, "LGA", "EWR", "LGA-", "JFK"]
    raw["dest"] = ["SFO-2", "2", "ATL", "ATL", "SFO", None, "SFO-2", "ORD"]
    raw["tailnum"] = ["", "N14228", "N24211", None, "N00000", "N14228", "N24211", "ZZ"]
    return spec, raw


def test_spark_and_numpy_agree_on_edge_rows(spark: SparkSession) -> None:
    spec, raw = edge_rows()
    ours, theirs = encode_pandas(spec, raw), spark_arrays(spark, spec, raw)
    for key in ("features", "cat_indices", "numeric"):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    route = [c.name for c in spec.categorical].index("route")
    assert ours["cat_indices"][:2, route].tolist() == [2, 2]  # both splits of LGA-SFO-2


def test_columns_and_loosely_typed_frames_encode_as_the_typed_frame() -> None:
    """The server hands named arrays; other callers may send text for numbers or dates."""
    spec, raw = small_spec(), raw_flights()
    typed = encode_pandas(spec, raw)
    columns = {name: raw[name].to_numpy() for name in raw.columns}
    loose = raw.astype(object).assign(
        sched_dep_local=raw["sched_dep_local"].dt.strftime("%Y-%m-%dT%H:%M:%S"),
        temp=raw["temp"].map(str), carrier=raw["carrier"].astype("string"))
    for other in (columns, loose):
        for key, value in encode_pandas(spec, other).items():
            np.testing.assert_array_equal(value, typed[key], err_msg=key)
    numbered = encode_pandas(spec, raw.assign(carrier=[7, None, np.nan, "AA"], temp="warm"))
    assert numbered["cat_indices"][:, 0].tolist() == [0, 0, 0, 3]
    assert numbered["numeric"][:, spec.numeric_feature_names.index("temp")].tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="tailnum"):
        encode_pandas(spec, raw.drop(columns="tailnum"))


@pytest.mark.parametrize("memo_size", [HASH_MEMO_SIZE, 3])
def test_one_encoder_gives_each_batch_what_a_fresh_one_gives(
        memo_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server keeps one encoder per model and its hashed-value memo grows with every
    batch, or is emptied when full: what it has seen before must never change what it
    gives a later batch."""
    monkeypatch.setattr(encode_pandas_module, "HASH_MEMO_SIZE", memo_size)
    spec, raw = edge_rows()
    kept = SpecEncoder(spec)
    for batch in (raw.iloc[:3], raw, raw.iloc[2:].assign(tailnum=["N1", "N14228", "", None,
                                                                      "N2", "N1"]), raw):
        batch = batch.reset_index(drop=True)
        fresh = SpecEncoder(spec).encode(batch)
        again = kept.encode(batch)
        np.testing.assert_array_equal(again.cat_indices, fresh.cat_indices)
        np.testing.assert_array_equal(again.design(), fresh.design())
