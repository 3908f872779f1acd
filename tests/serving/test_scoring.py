"""The MLflow scoring codec without a server: records read the same on every path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from serving.runtime import TensorSpec
from serving.scoring import decode_request
from serving.tensors import InvalidInput

INPUTS = (
    TensorSpec("carrier", np.dtype(object), ()),
    TensorSpec("temp", np.dtype(np.float64), ()),
    TensorSpec("wind_gust", np.dtype(np.float64), (), required=False),
    TensorSpec("sched_dep_local", np.dtype("datetime64[ns]"), ()),
)
ROWS = [
    {"carrier": "AA", "temp": 41, "wind_gust": None, "sched_dep_local": "2013-01-05T05:15:00"},
    {"carrier": None, "temp": 12.5, "wind_gust": 20.1, "sched_dep_local": "2013-01-05 17:05"},
    {"carrier": "DL", "temp": None, "wind_gust": float("nan"),
     "sched_dep_local": "2013-07-04T06:00:00.5"},
]


def as_split(rows: list[dict]) -> bytes:
    """The same rows in the `dataframe_split` layout, which never takes the records path."""
    names = list(rows[0])
    return json.dumps({"dataframe_split": {
        "columns": names, "data": [[row[name] for name in names] for row in rows]}}).encode()


def as_records(rows: list[dict]) -> bytes:
    return json.dumps({"dataframe_records": rows}).encode()


def assert_same_columns(left: tuple[dict, int], right: tuple[dict, int]) -> None:
    assert left[1] == right[1]
    assert list(left[0]) == list(right[0]) == [spec.name for spec in INPUTS]
    for name, value in right[0].items():
        assert left[0][name].dtype == value.dtype, name
        np.testing.assert_array_equal(left[0][name], value, err_msg=name)


@pytest.mark.parametrize("rows", [ROWS[:1], ROWS[1:2], ROWS], ids=["one", "nulls", "three"])
def test_records_decode_as_the_same_rows_split(rows: list[dict]) -> None:
    assert_same_columns(decode_request(as_records(rows), INPUTS),
                        decode_request(as_split(rows), INPUTS))


def test_records_the_fast_path_does_not_take_still_decode_as_split() -> None:
    """An extra field, a left-out optional input, rows with different fields."""
    extra = [{**row, "flight_id": 7} for row in ROWS]
    assert_same_columns(decode_request(as_records(extra), INPUTS),
                        decode_request(as_split(ROWS), INPUTS))
    without = [{key: value for key, value in row.items() if key != "wind_gust"} for row in ROWS]
    columns, rows = decode_request(as_records(without), INPUTS)
    assert rows == 3 and np.isnan(columns["wind_gust"]).all()
    with pytest.raises(InvalidInput, match="missing field 'wind_gust'"):
        decode_request(as_records([ROWS[0], without[1]]), INPUTS)


@pytest.mark.parametrize(("field", "value"), [
    ("temp", [41.0]), ("temp", "41"), ("temp", 10**400), ("carrier", 5),
    ("sched_dep_local", "2013-02-30T00:00"), ("sched_dep_local", "2013-01-05T05:15:00+01:00"),
    ("sched_dep_local", 20130105),
])
def test_a_bad_value_in_a_record_is_refused_naming_its_field(field: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=field):
        decode_request(as_records([ROWS[0], {**ROWS[1], field: value}]), INPUTS)
