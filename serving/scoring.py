"""MLflow scoring protocol codec (`POST /invocations`), so existing MLflow clients work.

The body names its layout with exactly one key: `dataframe_split` ({columns, data}),
`dataframe_records` (a list of row objects), `instances` or `inputs` (rows, columns
by name, or a tensor). Values go straight into numpy per input, without building a
pandas DataFrame per request: the batch builds one for the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar

import numpy as np

from serving.runtime import TensorSpec
from serving.tensors import (
    NUMBER_TYPES,
    PLAIN_DATETIME,
    TEXT_TYPES,
    InvalidInput,
    check_shape,
    complete_columns,
    datetimes_as_text,
    dump_json,
    parse_json,
    to_array,
)

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_FLOAT64 = np.dtype(np.float64)
_OBJECT = np.dtype(object)
_DATETIME = np.dtype("datetime64[ns]")
# _plain_groups' and _record_plan's results by the identity of a model's inputs tuple
# (kept alive here).
_GROUPS: dict[int, tuple[tuple[TensorSpec, ...], list]] = {}
_PLANS: dict[int, tuple[tuple[TensorSpec, ...], list | None]] = {}
T = TypeVar("T")


def decode_request(body: bytes, inputs: tuple[TensorSpec, ...]) -> tuple[dict, int]:
    """The model's columns and the row count, or InvalidInput naming the field."""
    document = parse_json(body)
    if not isinstance(document, dict):
        raise InvalidInput(f"body: expected a JSON object with one of {list(FORMATS)}")
    present = [key for key in FORMATS if key in document]
    if len(present) != 1:
        raise InvalidInput(f"body: expected exactly one of {list(FORMATS)}, got {present}")
    if document.get("params"):
        raise InvalidInput("params: inference parameters are not supported by this model")
    layout = present[0]
    if layout == "dataframe_records":
        typed = _typed_records(document[layout], inputs)
        if typed is not None:
            return typed
    raw = _raw_columns(layout, document[layout], inputs)
    columns = _plain_columns(raw, inputs)
    for spec in inputs:
        if spec.name in raw and spec.name not in columns:
            field = f"field {spec.name!r}"
            columns[spec.name] = check_shape(to_array(raw[spec.name], spec, field), spec, field)
    return complete_columns(columns, inputs, layout)


def encode_response(outputs: dict[str, np.ndarray]) -> bytes:
    """`{"predictions": ...}`: a list for one output, row objects for several (as MLflow)."""
    lists = {name: datetimes_as_text(value).tolist() for name, value in outputs.items()}
    if len(lists) == 1:
        predictions: Any = next(iter(lists.values()))
    else:
        predictions = [dict(zip(lists, row, strict=True)) for row in zip(*lists.values())]
    return dump_json({"predictions": predictions})


def _plain_columns(raw: dict, inputs: tuple[TensorSpec, ...]) -> dict[str, np.ndarray]:
    """The scalar float64 and string inputs whose values are all plain, converted with
    one numpy call per kind instead of one per input.

    Per input, the conversion and its checks cost more than parsing a one-row body
    (a record has a dozen fields). Only values that `to_array` would accept unchanged
    take this path: numbers or null for float64, text or null for strings, equally
    long lists; anything else is left to `to_array`, which also words the errors.
    """
    columns: dict[str, np.ndarray] = {}
    for dtype, allowed, candidates in _plain_groups(inputs):
        names = [name for name in candidates if isinstance(raw.get(name), list | tuple)]
        if not names:
            continue
        values = [raw[name] for name in names]
        if len(set(map(len, values))) != 1 or not set(
                map(type, chain.from_iterable(values))) <= allowed:
            continue
        try:
            block = np.array(values, dtype=dtype)
        except (OverflowError, ValueError):  # an integer beyond any float: to_array says so
            continue
        columns.update(zip(names, block, strict=True))
    return columns


def _typed_records(payload: object, inputs: tuple[TensorSpec, ...]
                   ) -> tuple[dict[str, np.ndarray], int] | None:
    """The columns of records that hold exactly the model's inputs, each value already of
    its input's kind; None for anything else, which the general path then reads (and
    words the errors for).

    This is what clients send to a model over records, one row at a time. Reading the
    rows into one block per kind (numbers, text, date-times), one numpy call each, costs
    a fraction of the general path's transposing and per-input checking
    (bench/RESULTS.md, "Single-row throughput").
    """
    plan = _record_plan(inputs)
    if plan is None or not isinstance(payload, list) or not payload:
        return None
    width = len(inputs)
    for row in payload:
        if type(row) is not dict or len(row) != width:
            return None
    columns: dict[str, np.ndarray] = {}
    try:
        for dtype, allowed, names in plan:
            block = [[row[name] for name in names] for row in payload]
            values = list(chain.from_iterable(block))
            if not set(map(type, values)) <= allowed or (dtype.kind == "M" and not all(
                    PLAIN_DATETIME.fullmatch(value) for value in values if value is not None)):
                return None
            columns.update(zip(names, np.array(block, dtype=dtype).T, strict=True))
    except (KeyError, OverflowError, ValueError):  # a missing input, a huge integer, a bad date
        return None
    return {spec.name: columns[spec.name] for spec in inputs}, len(payload)


def _record_plan(inputs: tuple[TensorSpec, ...]
                 ) -> list[tuple[np.dtype, frozenset, list[str]]] | None:
    """The inputs' names by kind (float64, text, date-time), with the Python types their
    values may have in a record; None when an input is none of those scalars."""
    def build() -> list[tuple[np.dtype, frozenset, list[str]]] | None:
        kinds = {_FLOAT64: NUMBER_TYPES, _OBJECT: TEXT_TYPES, _DATETIME: TEXT_TYPES}
        if not all(spec.shape == () and spec.dtype in kinds for spec in inputs):
            return None
        return [(dtype, allowed, names) for dtype, allowed in kinds.items()
                if (names := [spec.name for spec in inputs if spec.dtype == dtype])]

    return _per_model(_PLANS, inputs, build)


def _plain_groups(inputs: tuple[TensorSpec, ...]) -> list[tuple[np.dtype, frozenset, list[str]]]:
    """The scalar float64 and the scalar string inputs' names, worked out once per model."""
    return _per_model(_GROUPS, inputs, lambda: [
        (dtype, allowed, [spec.name for spec in inputs if spec.dtype == dtype and spec.shape == ()])
        for dtype, allowed in ((_FLOAT64, NUMBER_TYPES), (_OBJECT, TEXT_TYPES))])


def _per_model(cache: dict, inputs: tuple[TensorSpec, ...], build: Callable[[], T]) -> T:
    """`build()` once per model's inputs tuple, kept by its identity (and the tuple with
    it, so the identity is not reused): hashing the tuple would cost more per request."""
    cached = cache.get(id(inputs))
    if cached is not None and cached[0] is inputs:
        return cached[1]
    if len(cache) > 8:  # old versions after many swaps
        cache.clear()
    value = build()
    cache[id(inputs)] = (inputs, value)
    return value


def _raw_columns(layout: str, payload: object, inputs: tuple[TensorSpec, ...]) -> dict:
    """Values per input name, still as client lists."""
    tensor_input = len(inputs) == 1 and inputs[0].shape != ()
    if layout == "dataframe_split":
        return _split(payload, inputs[0].name if tensor_input else None)
    if layout == "dataframe_records" or (isinstance(payload, list) and not tensor_input):
        return _records(payload, layout)
    if isinstance(payload, dict):
        return payload
    if tensor_input and isinstance(payload, list):
        return {inputs[0].name: payload}
    raise InvalidInput(f"{layout}: expected a list of rows or an object of columns")


def _split(payload: object, tensor_name: str | None) -> dict:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise InvalidInput("dataframe_split: expected an object with 'columns' and 'data'")
    data = payload["data"]
    if tensor_name is not None:
        return {tensor_name: data}
    names = payload.get("columns")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InvalidInput("dataframe_split.columns: expected a list of column names")
    if not data:
        raise InvalidInput("dataframe_split.data: the request has no rows")
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(names):
            raise InvalidInput(f"dataframe_split.data[{index}]: expected {len(names)} values")
    return {name: list(values) for name, values in zip(names, zip(*data), strict=True)}


def _records(payload: object, layout: str) -> dict:
    if not isinstance(payload, list) or not all(isinstance(row, dict) for row in payload):
        raise InvalidInput(f"{layout}: expected a list of row objects")
    if not payload:
        raise InvalidInput(f"{layout}: the request has no rows")
    names = list(payload[0])
    if not names:
        return {}
    get = itemgetter(*names)
    try:  # one C-level pass over the rows and a transpose, not a Python loop per column
        values = [list(map(get, payload))] if len(names) == 1 else list(zip(*map(get, payload)))
    except KeyError:
        for name in names:
            missing = next((i for i, row in enumerate(payload) if name not in row), None)
            if missing is not None:
                raise InvalidInput(f"{layout}[{missing}]: missing field {name!r}") from None
        raise
    return dict(zip(names, values, strict=True))
