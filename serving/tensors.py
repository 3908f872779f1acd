"""Checking client data against the model's inputs, shared by both protocols.

Every problem with a request becomes an InvalidInput naming the field, which the
routes answer with 400: bad input must never reach the model or surface as a 5xx.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import orjson
import pandas as pd

from serving.runtime import TensorSpec

# KServe v2 datatypes and their numpy equivalents; strings and date-times travel as BYTES.
KSERVE_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(bool),
    "INT8": np.dtype(np.int8), "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
NUMPY_TO_KSERVE = {dtype: name for name, dtype in KSERVE_TO_NUMPY.items()}
# JSON and KServe have no date type, so date-times travel as text in the format that
# pandas' `to_json(date_format="iso")` and MLflow's clients write.
DATETIME_NOTE = ("ISO-8601 local date-time without a time zone, e.g. 2013-01-05T05:15:00; "
                 "sent as strings (KServe datatype BYTES)")
# What numpy's ISO-8601 parser reads as the same instant as pandas' ISO8601 format: local
# date-times, to the nanosecond, with no zone, in years 1678-2261 (numpy wraps around
# silently outside datetime64[ns]'s range). Anything else takes pandas' path.
PLAIN_DATETIME = re.compile(r"(?:167[89]|16[89]\d|1[7-9]\d\d|2[01]\d\d|22[0-5]\d|226[01])"
                            r"-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?)?")
TEXT_TYPES = frozenset({str, type(None)})
NUMBER_TYPES = frozenset({int, float, type(None)})


class InvalidInput(ValueError):
    """A client error in the request; the message names the field."""


def parse_json(body: bytes) -> object:
    """The JSON document of a request body, or InvalidInput.

    orjson parses numbers an order of magnitude faster than the standard library,
    which is what a many-row JSON request costs. It refuses NaN literals, which
    Python clients write for a missing number (`json.dumps` of a float NaN, MLflow's
    logged input examples): those are read as null, the missing value they stand for
    (`NaN` is replaced outside strings, which can be told apart exactly in a body
    without backslash escapes). What orjson still refuses but the standard library
    reads (Infinity, numbers beyond a double's range, UTF-16 bodies, NaN beside
    escapes) is read by the standard library, so every body accepted before still is.
    """
    # Tried first: a failed orjson parse costs more than the check (an exception).
    candidate = _nan_as_null(body) if b"NaN" in body and b"\\" not in body else body
    try:
        return orjson.loads(candidate)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=_null_for_nan)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(f"body: invalid JSON ({error})") from None
    except RecursionError:  # orjson stops at 1024 levels, the standard library at the stack
        raise InvalidInput("body: JSON nested too deeply (over 1024 levels)") from None


def dump_json(document: object) -> bytes:
    """A response body, written by orjson: compact, every finite number with the digits
    that read back as the same double, and NaN and the infinities as null, since JSON
    has no spelling for them (the standard library writes `NaN` and `Infinity`, which
    strict parsers refuse). Binary KServe outputs carry non-finite values exactly."""
    return orjson.dumps(document)


def _nan_as_null(body: bytes) -> bytes:
    """`NaN` outside strings spelled `null`. The body must hold no backslash: then every
    quote opens or closes a string, and a NaN is outside when an even number precede it."""
    pieces, start, quotes = [], 0, 0
    at = body.find(b"NaN")
    while at >= 0:
        quotes += body.count(b'"', start, at)
        pieces += (body[start:at], b"null" if quotes % 2 == 0 else b"NaN")
        start = at + 3
        at = body.find(b"NaN", start)
    pieces.append(body[start:])
    return b"".join(pieces)


def _null_for_nan(constant: str) -> float | None:
    """NaN reads as null (see parse_json); the infinities stay numbers."""
    return None if constant == "NaN" else float(constant)


def travels_as_bytes(dtype: np.dtype) -> bool:
    """Strings, bytes and date-times (as ISO-8601 text) are KServe BYTES tensors."""
    return dtype.kind in "USOM"


def kserve_datatype(dtype: np.dtype) -> str:
    """The KServe datatype of a numpy dtype."""
    if travels_as_bytes(dtype):
        return "BYTES"
    return NUMPY_TO_KSERVE[np.dtype(dtype)]


def to_array(values: object, spec: TensorSpec, field: str) -> np.ndarray:
    """Client values (lists or an array) as an array of the input's dtype.

    Numbers may widen or change kind the way numpy's same_kind casting allows (an int
    for a float input), but never silently truncate (a float for an int input) and
    never parse text as a number. Null is a missing value where the dtype has one
    (NaN, None, NaT): the models impute, so a gap in a record must not fail it.
    """
    if spec.dtype.kind in "OM":
        strings = _strings(values, field)
        return strings if spec.dtype == object else parse_datetimes(strings, field)
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"{field}: not a rectangular array of numbers ({error})") from None
    if array.dtype == object and spec.dtype.kind == "f":
        array = _nulls_as_nan(array, spec, field)
    return cast(array, spec, field)


def parse_datetimes(strings: np.ndarray, field: str) -> np.ndarray:
    """ISO-8601 text as datetime64[ns], null as NaT.

    A time zone is refused rather than converted or dropped: the models take local
    times, and either choice would silently move the hour a prediction depends on.
    """
    flat = strings.reshape(-1)
    present = flat[np.not_equal(flat, None)]
    if set(map(type, present)) <= TEXT_TYPES and all(map(PLAIN_DATETIME.fullmatch, present)):
        try:
            return flat.astype("datetime64[ns]").reshape(strings.shape)
        except ValueError:  # out-of-range fields: pandas' message names the problem
            pass
    try:
        # Mixed offsets give object dtype now (refused below) and an error in later pandas.
        with warnings.catch_warnings(action="ignore", category=FutureWarning):
            parsed = pd.to_datetime(pd.Series(strings.reshape(-1), dtype=object),
                                    format="ISO8601")
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"{field}: expected ISO-8601 local date-times ({error})") from None
    if parsed.dtype != np.dtype("datetime64[ns]"):  # any offset; mixed ones give object
        raise InvalidInput(f"{field}: expected local date-times, got a time zone")
    return parsed.to_numpy(dtype="datetime64[ns]").reshape(strings.shape)


def datetimes_as_text(value: np.ndarray) -> np.ndarray:
    """A date-time output as ISO-8601 text, the form its inputs take; others unchanged."""
    return np.datetime_as_string(value) if value.dtype.kind == "M" else value


def _strings(values: object, field: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=object)
    except ValueError as error:
        raise InvalidInput(f"{field}: not a rectangular array ({error})") from None
    if set(map(type, array.reshape(-1))) <= TEXT_TYPES:
        return array
    for item in array.reshape(-1):
        if item is not None and not isinstance(item, str | bytes):
            raise InvalidInput(f"{field}: expected strings, got {type(item).__name__}")
    return array


def _nulls_as_nan(array: np.ndarray, spec: TensorSpec, field: str) -> np.ndarray:
    """Numbers mixed with nulls (numpy gives object) as floats with NaN for null."""
    flat = array.reshape(-1)
    if not set(map(type, flat)) <= NUMBER_TYPES:
        for item in flat:
            if item is not None and (isinstance(item, bool) or not isinstance(item, int | float)):
                raise InvalidInput(f"{field}: expected {spec.dtype.name} values, "
                                   f"got {type(item).__name__}")
    try:
        values = flat.astype(spec.dtype)  # None is NaN in a float array
    except OverflowError as error:  # an integer beyond any float
        raise InvalidInput(f"{field}: {error}") from None
    return values.reshape(array.shape)


def cast(array: np.ndarray, spec: TensorSpec, field: str) -> np.ndarray:
    """`array` in the input's dtype if that loses nothing by kind, else InvalidInput."""
    if array.dtype == spec.dtype:
        return array
    if array.dtype.kind not in "biuf" or not np.can_cast(array.dtype, spec.dtype, "same_kind"):
        raise InvalidInput(f"{field}: expected {spec.dtype.name} values, got {array.dtype.name}")
    return array.astype(spec.dtype)


def check_shape(array: np.ndarray, spec: TensorSpec, field: str) -> np.ndarray:
    """`array` with rows first and the input's per-row shape (-1 matches any size).

    A scalar column also accepts an [n, 1] tensor, the shape many clients send.
    """
    if array.ndim == 0:
        raise InvalidInput(f"{field}: expected a batch of rows, got a scalar")
    row_shape = array.shape[1:]
    if spec.shape == () and row_shape == (1,):
        return array.reshape(-1)
    if len(row_shape) != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, row_shape, strict=True)
    ):
        expected = ["n", *spec.shape]
        raise InvalidInput(
            f"{field}: expected shape {expected}, got {list(array.shape)}"
        )
    return array


def complete_columns(columns: dict[str, np.ndarray], inputs: tuple[TensorSpec, ...],
                     where: str) -> tuple[dict[str, np.ndarray], int]:
    """All the model's inputs in its order, and the row count.

    A required input the client left out is InvalidInput naming it; an optional one
    becomes a column of missing values, as MLflow's own server would pass it on.
    """
    missing = [spec.name for spec in inputs if spec.required and spec.name not in columns]
    if missing:
        raise InvalidInput(f"{where}: missing required input(s) {missing}")
    rows = common_rows(columns)
    return {spec.name: columns[spec.name] if spec.name in columns
            else _missing_values(spec, rows) for spec in inputs}, rows


def _missing_values(spec: TensorSpec, rows: int) -> np.ndarray:
    fills = {"f": np.nan, "O": None, "M": np.datetime64("NaT")}
    if spec.dtype.kind not in fills:
        raise InvalidInput(f"{spec.name}: a {spec.dtype.name} input has no missing value; "
                           "send it")
    return np.full((rows, *spec.shape), fills[spec.dtype.kind], dtype=spec.dtype)


def common_rows(columns: dict[str, np.ndarray]) -> int:
    """The row count shared by all inputs, or InvalidInput naming the odd one out."""
    if not columns:
        raise InvalidInput("the request has none of the model's inputs")
    counts = {name: len(value) for name, value in columns.items()}
    rows = next(iter(counts.values()))
    for name, count in counts.items():
        if count != rows:
            raise InvalidInput(f"{name}: has {count} rows, other inputs have {rows}")
    if rows == 0:
        raise InvalidInput("the request has no rows")
    return rows
