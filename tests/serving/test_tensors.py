"""Client values against the model's inputs, without a server: nulls, dates, optional inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serving.runtime import TensorSpec
from serving.tensors import (
    InvalidInput,
    complete_columns,
    datetimes_as_text,
    dump_json,
    kserve_datatype,
    parse_json,
    to_array,
)

FLOAT = TensorSpec("temp", np.dtype(np.float64), ())
INT = TensorSpec("month", np.dtype(np.int64), ())
TEXT = TensorSpec("carrier", np.dtype(object), ())
WHEN = TensorSpec("sched_dep_local", np.dtype("datetime64[ns]"), ())


def test_null_is_a_missing_value_where_the_dtype_has_one() -> None:
    np.testing.assert_array_equal(to_array([1, None, 2.5], FLOAT, "temp"), [1.0, np.nan, 2.5])
    assert to_array(["AA", None], TEXT, "carrier").tolist() == ["AA", None]
    assert np.isnat(to_array([None], WHEN, "when")).all()
    with pytest.raises(InvalidInput, match="month"):
        to_array([1, None], INT, "month")
    for bad in ([1.0, None, "x"], [True, None], [10**400, None]):
        with pytest.raises(InvalidInput, match="temp"):
            to_array(bad, FLOAT, "temp")


def test_dates_are_iso_local_times_travelling_as_bytes() -> None:
    assert kserve_datatype(WHEN.dtype) == "BYTES"
    parsed = to_array(["2013-01-05T05:15:00", "2013-01-05T05:15:00.000", "2013-12-31 23:59"],
                      WHEN, "when")
    assert parsed.dtype == WHEN.dtype
    assert datetimes_as_text(parsed).tolist() == [
        "2013-01-05T05:15:00.000000000", "2013-01-05T05:15:00.000000000",
        "2013-12-31T23:59:00.000000000"]
    for bad in (["5 January"], ["2013-01-05T05:15:00Z"], [1357362900],
                ["2013-01-05T05:15:00", "2013-01-05T05:15:00+01:00"]):
        with pytest.raises(InvalidInput, match="sched_dep_local"):
            to_array(bad, WHEN, "field 'sched_dep_local'")


def test_optional_inputs_may_be_left_out_required_ones_not() -> None:
    inputs = (TEXT, TensorSpec("temp", FLOAT.dtype, (), required=False),
              TensorSpec("tailnum", TEXT.dtype, (), required=False),
              TensorSpec("when", WHEN.dtype, (), required=False))
    columns, rows = complete_columns({"carrier": np.array(["AA", "DL"], dtype=object)},
                                     inputs, "inputs")
    assert rows == 2
    assert list(columns) == ["carrier", "temp", "tailnum", "when"]
    assert np.isnan(columns["temp"]).all() and columns["tailnum"].tolist() == [None, None]
    assert np.isnat(columns["when"]).all()
    with pytest.raises(InvalidInput, match="'carrier'"):
        complete_columns({"temp": np.zeros(2)}, inputs, "inputs")
    with pytest.raises(InvalidInput, match="month"):
        complete_columns({"carrier": columns["carrier"]},
                         (TEXT, TensorSpec("month", INT.dtype, (), required=False)), "inputs")


def test_bodies_the_standard_json_module_reads_still_parse() -> None:
    """orjson refuses NaN literals, numbers past a double and UTF-16; those still parse."""
    assert parse_json(b'{"x": 1' + b"0" * 400 + b"}")["x"] == 10**400
    assert parse_json('{"x": [1.5]}'.encode("utf-16")) == {"x": [1.5]}
    assert parse_json(b'{"x": [-Infinity, Infinity]}') == {"x": [-np.inf, np.inf]}
    with pytest.raises(InvalidInput, match="invalid JSON"):
        parse_json(b'{"x": ')


@pytest.mark.parametrize("body", [
    b'{"x": NaN, "NaN": "NaN", "y": [1, NaN], "z": "a NaN, b"}',
    b'{"x":NaN,"NaN":"NaN","y":[1,NaN],"z":"a NaN, b"}',
    # Escapes: the standard library reads it, with the same meaning.
    b'{"x": NaN, "NaN": "NaN", "y": [1, NaN], "z": "a NaN, b", "w": "\\"NaN\\""}',
])
def test_nan_literals_read_as_missing_and_text_stays_as_it_is(body: bytes) -> None:
    document = parse_json(body)
    assert document["x"] is None and document["y"] == [1, None]
    assert document["NaN"] == "NaN" and document["z"] == "a NaN, b"
    assert document.get("w", '"NaN"') == '"NaN"'


@pytest.mark.parametrize("body", [b'{"x": NaNa}', b'{"x": -NaN}', b'{"x": "NaN}'])
def test_a_broken_nan_is_still_invalid_json(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="invalid JSON"):
        parse_json(body)


def test_responses_write_non_finite_numbers_as_null_and_finite_ones_exactly() -> None:
    values = [0.1, 1e-05, 1.2345678901234568e17, float("nan"), float("inf"), -float("inf")]
    body = dump_json({"predictions": values})
    assert body.startswith(b'{"predictions":[') and body.endswith(b",null,null,null]}")
    assert parse_json(body)["predictions"][:3] == values[:3]


def test_plain_dates_parse_as_pandas_reads_them() -> None:
    """numpy parses the common forms; the year range and bad days fall back to pandas."""
    texts = ["2013-01-05T05:15:00", "2013-01-05 05:15", "2013-01-05", "1678-01-01T00:00",
             "2261-12-31T23:59:59.999999999", "2013-01-05T05:15:00.1", None]
    expected = pd.to_datetime(pd.Series(texts, dtype=object), format="ISO8601").to_numpy()
    np.testing.assert_array_equal(to_array(texts, WHEN, "when"), expected)
    for outside in (["1677-01-01T00:00"], ["2300-01-01T00:00"], ["2013-02-30T00:00"]):
        with pytest.raises(InvalidInput, match="when"):
            to_array(outside, WHEN, "when")
