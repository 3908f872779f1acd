"""The spec applied with numpy: raw request records -> model inputs, for serving and pyfuncs.

This must give exactly what :mod:`models.features.spark` gives for the same rows
(the tests compare them): same derivations, same order of floating-point operations.

Serving encodes a handful of rows per call, so the per-call cost is what matters:
the spec is turned once into lookup tables (:class:`SpecEncoder`, which the server's
models build when they load), and a call is a few array operations per column,
with no pandas in the way unless a column arrives in an unusual type.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from models.features.fields import FLIGHTS
from models.features.holidays import days_to_nearest_holiday
from models.features.spec import FeatureSpec

# Raw records as a DataFrame or as named columns (what the server decodes a request into).
RawColumns = pd.DataFrame | Mapping[str, Any]

HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Spark's weekday() and pandas count Monday = 0
NAT = np.iinfo(np.int64).min
_TEXT_TYPES = {str, type(None)}
_OBJECT, _DATETIME, _FLOAT64 = np.dtype(object), np.dtype("datetime64[ns]"), np.dtype(np.float64)
_CALENDAR = {"hour": 24, "dow": 7, "month": 13}  # month codes are indexed 1..12
HASH_MEMO_SIZE = 1 << 16  # distinct values whose bucket a hashed column remembers


@dataclass(frozen=True)
class EncodedRecords:
    """Model inputs of a batch of raw records, see :class:`~models.features.spec.FeatureSpec`."""

    cat_indices: np.ndarray  # (n, c) int32
    numeric: np.ndarray  # (n, q) float64
    encoder: SpecEncoder

    def design(self) -> np.ndarray:
        """The linear ``features`` matrix (n, p) float64: one-hot columns, then ``numeric``."""
        return self.encoder.design(self)


class SpecEncoder:
    """One feature spec as lookup tables: raw columns -> inputs with array indexing only.

    Categorical levels become dicts (strings) or, for the flights derivation, small
    arrays (hour, weekday, month) and a plane table of arrays indexed by a plane's row,
    so one dict lookup per tail number gives its age, seats and engine code. Per-row
    Python runs only where no array form exists: the dict lookups themselves (driven by
    ``map`` in C), and crc32 of a hashed value not seen before.
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self._levels = {c.name: c.index() for c in spec.categorical}
        self._flights = spec.derivation == FLIGHTS
        self._calendar = {
            name: np.array([index.get(str(value), 0) for value in range(size)] + [0],
                           dtype=np.int32)
            for name, size in _CALENDAR.items()
            if self._flights and (index := self._levels.get(name)) is not None
        }
        self._routes = _route_pairs(self._levels.get("route", {})) if self._flights else {}
        self._hash_memo: dict[str, dict[object, int]] = {h.column: {} for h in spec.hashed}
        tails = list(spec.planes)
        # Row 0 is "no such plane": NaN facts, engine code 0.
        self._plane_rows = {tail: row for row, tail in enumerate(tails, start=1)}
        facts = [(None, None, None), *spec.planes.values()]  # None in a float array is NaN
        self._plane_year = np.array([f[0] for f in facts], dtype=np.float64)
        self._seats = np.array([f[1] for f in facts], dtype=np.float64)
        engines = self._levels.get("engine", {})
        self._engine = np.array([engines.get(f[2], 0) for f in facts], dtype=np.int32)
        self._means = np.array([n.mean for n in spec.numeric], dtype=np.float64)
        self._stds = np.array([n.std for n in spec.numeric], dtype=np.float64)
        self._onehot = _onehot_columns(spec)

    def encode(self, raw: RawColumns) -> EncodedRecords:
        """``cat_indices`` and ``numeric`` for raw records (a DataFrame or named columns).

        A missing field is an error naming it; values are taken as the dtypes of the
        spec's ``request`` (text that is not a number is a missing number, as
        ``pd.to_numeric(errors="coerce")`` reads it).
        """
        missing = [name for name in self.spec.request if name not in raw]
        if missing:
            raise ValueError(f"raw records lack the fields {', '.join(missing)}")
        fields = {name: _coerce(raw[name], dtype) for name, dtype in self.spec.request.items()}
        rows = {len(value) for value in fields.values()}
        if len(rows) != 1:
            raise ValueError(f"raw record fields have different lengths {sorted(rows)}")
        derived = self._derive(fields) if self._flights else {}
        codes = [self._codes(c.name, fields, derived) for c in self.spec.categorical]
        codes += [self._hash_codes(h.column, h.buckets, fields[h.column])
                  for h in self.spec.hashed]
        n = rows.pop()
        # Built (c, n) and viewed as (n, c): one copy, and each input's codes contiguous.
        cat_indices = np.array(codes, dtype=np.int32).reshape(len(codes), n).T

        values = {**fields, **derived}
        q, m = len(self.spec.numeric), len(self.spec.missing)
        numeric = np.empty((n, q + m), dtype=np.float64)
        if q:
            x = np.array([values[num.name] for num in self.spec.numeric]).reshape(q, n).T
            numeric[:, :q] = np.where(np.isnan(x), 0.0, (x - self._means) / self._stds)
        for k, indicator in enumerate(self.spec.missing):
            numeric[:, q + k] = np.isnan(values[indicator.column])
        return EncodedRecords(cat_indices, numeric, self)

    def design(self, encoded: EncodedRecords) -> np.ndarray:
        """One-hot columns of the linear categoricals, then the numeric block."""
        positions, columns = self._onehot
        n, width = len(encoded.numeric), int(columns.max(initial=-1)) + 1
        design = np.zeros((n, width + encoded.numeric.shape[1]), dtype=np.float64)
        if positions.size:
            where = columns[positions + encoded.cat_indices[:, :len(positions)]]
            row, k = np.nonzero(where >= 0)
            design[row, where[row, k]] = 1.0
        design[:, width:] = encoded.numeric
        return design

    def _derive(self, fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The flights derivation: calendar parts, holiday distance and plane facts, as
        derive_spark makes them."""
        when = fields["sched_dep_local"]
        ns = when.view(np.int64)
        valid = ns != NAT
        months = when.astype("datetime64[M]").view(np.int64)  # floor, NaT stays NaT
        holiday = days_to_nearest_holiday(when.astype("datetime64[D]"))
        year = np.where(valid, months // 12 + 1970, np.nan)
        tails = fields["tailnum"]
        plane = np.fromiter(map(self._plane_rows.get, tails, repeat(0)), np.intp, len(tails))
        return {
            "hour": np.where(valid, ns // HOUR_NS % 24, 24),
            "dow": np.where(valid, (ns // DAY_NS + EPOCH_WEEKDAY) % 7, 7),
            "month": np.where(valid, months % 12 + 1, 13),
            "days_to_holiday": np.where(holiday < 0, np.nan, holiday.astype(np.float64)),
            "plane_age": year - self._plane_year[plane],
            "seats": self._seats[plane],
            "engine": self._engine[plane],
        }

    def _codes(self, name: str, fields: dict[str, np.ndarray],
               derived: dict[str, np.ndarray]) -> np.ndarray:
        """The code of every row for categorical ``name`` (0: unknown or missing)."""
        if name in self._calendar:
            return self._calendar[name][derived[name]]
        if self._flights and name == "engine":
            return derived["engine"]
        if self._flights and name == "route":
            pairs = zip(fields["origin"], fields["dest"])
            return _lookup(self._routes, pairs, len(fields["origin"]))
        if self.spec.request.get(name) == "string":
            return _lookup(self._levels[name], fields[name], len(fields[name]))
        raise ValueError(f"categorical {name!r} is neither a text field of the request nor "
                         f"derived")

    def _hash_codes(self, column: str, buckets: int, values: np.ndarray) -> np.ndarray:
        """Buckets of a hashed column; crc32 runs once per distinct value the encoder sees
        (the same tail numbers recur in every block), up to :data:`HASH_MEMO_SIZE`."""
        memo = self._hash_memo[column]
        new = [v for v in dict.fromkeys(values) if v not in memo]
        if len(memo) + len(new) > HASH_MEMO_SIZE:
            memo.clear()
            new = list(dict.fromkeys(values))
        memo.update((v, hash_bucket(v, buckets)) for v in new)
        return np.fromiter(map(memo.__getitem__, values), np.int32, len(values))


def encode_pandas(spec: FeatureSpec, raw: RawColumns) -> dict[str, np.ndarray]:
    """``features`` (n, p) float64, ``cat_indices`` (n, c) int32 and ``numeric`` (n, q) float64.

    See :class:`~models.features.spec.FeatureSpec` for what each holds. This builds the
    lookup tables on every call; callers encoding many batches keep one
    :class:`SpecEncoder` and call its ``encode``.
    """
    encoded = SpecEncoder(spec).encode(raw)
    return {"features": encoded.design(), "cat_indices": encoded.cat_indices,
            "numeric": encoded.numeric}


def hash_bucket(value: object, buckets: int) -> int:
    """crc32 of a text value into ``1..buckets``, 0 when missing (Spark's crc32 + pmod)."""
    if not isinstance(value, str) or not value:
        return 0
    return zlib.crc32(value.encode("utf-8")) % buckets + 1


def _coerce(values: Any, dtype: str) -> np.ndarray:
    """One raw field as a 1-d array: text as str/None objects, datetime64[ns], float64.

    Columns that already have the contract's type (what the server decodes, what a
    typed DataFrame holds) pass without a copy; anything else goes through pandas'
    conversions, which define the semantics (``astype("string")``, ``to_datetime``,
    ``to_numeric(errors="coerce")``).
    """
    if type(values) is np.ndarray and values.ndim == 1:  # what the server decodes
        if dtype == "string":
            if values.dtype == _OBJECT and set(map(type, values)) <= _TEXT_TYPES:
                return values
        elif values.dtype == (_DATETIME if dtype.startswith("datetime") else _FLOAT64):
            return values
    array = np.asarray(values)
    if dtype == "string":
        array = array.astype(object, copy=False).reshape(-1)
        if set(map(type, array)) <= _TEXT_TYPES:
            return array
        text = pd.Series(array, dtype=object).astype("string")
        return text.to_numpy(dtype=object, na_value=None)
    if dtype.startswith("datetime"):
        if array.dtype.kind != "M":
            when = pd.to_datetime(pd.Series(array.reshape(-1), dtype=object))
            if when.dt.tz is not None:  # local wall-clock time, as Spark's TimestampNTZ
                when = when.dt.tz_localize(None)
            array = when.to_numpy(dtype="datetime64[ns]")
        return array.astype("datetime64[ns]", copy=False).reshape(-1)
    if array.dtype.kind in "biuf":
        return array.astype(np.float64, copy=False).reshape(-1)
    number = pd.to_numeric(pd.Series(array.reshape(-1), dtype=object), errors="coerce")
    return number.to_numpy(dtype=np.float64, na_value=np.nan)


def _lookup(index: dict, keys: Any, n: int) -> np.ndarray:
    return np.fromiter(map(index.get, keys, repeat(0)), np.int32, n)


def _route_pairs(routes: dict[str, int]) -> dict[tuple[str, str], int]:
    """Route codes keyed by (origin, dest) for every way a level splits at a ``-``.

    Spark concatenates ``origin || '-' || dest``; keying by the pair avoids building
    the string per row yet matches exactly the pairs whose concatenation is the level.
    """
    pairs = {}
    for level, code in routes.items():
        for cut in (i for i, char in enumerate(level) if char == "-"):
            pairs[(level[:cut], level[cut + 1:])] = code
    return pairs


def _onehot_columns(spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """Flat table: entry ``positions[k] + code`` is the design column of that code or -1.

    Categoricals without linear levels get no columns (all -1), so their codes never
    write; ``positions`` covers the categoricals in order.
    """
    positions, columns, next_column = [], [], 0
    for cat in spec.categorical:
        positions.append(len(columns))
        levels = set(cat.linear_levels)
        columns.append(-1)  # code 0: unknown or missing
        for level in cat.vocab:
            columns.append(next_column if level in levels else -1)
            next_column += level in levels
    return np.array(positions, dtype=np.intp), np.array(columns, dtype=np.intp)
