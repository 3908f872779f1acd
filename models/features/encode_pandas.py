"""The spec applied with pandas and numpy: raw request records -> model inputs, for serving.

This must give exactly what :mod:`models.features.spark` gives for the same rows
(the tests compare them): same derivations, same order of floating-point operations.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from models.features.fields import RAW_FIELDS
from models.features.holidays import days_to_nearest_holiday
from models.features.spec import Categorical, FeatureSpec


def coerce_raw(raw: pd.DataFrame) -> pd.DataFrame:
    """The raw fields with their contract dtypes; a missing field is an error naming it."""
    missing = [name for name in RAW_FIELDS if name not in raw.columns]
    if missing:
        raise ValueError(f"raw flights lack the fields {', '.join(missing)}")
    out = pd.DataFrame(index=raw.index)
    for name, dtype in RAW_FIELDS.items():
        if dtype.startswith("datetime"):
            out[name] = pd.to_datetime(raw[name])
        elif dtype == "string":
            out[name] = raw[name].astype("string")
        else:
            out[name] = pd.to_numeric(raw[name], errors="coerce").astype("float64")
    return out


def derive_pandas(spec: FeatureSpec, raw: pd.DataFrame) -> pd.DataFrame:
    """The raw fields plus the derived ones (time, route, plane facts, holiday distance)."""
    out = coerce_raw(raw)
    when = out["sched_dep_local"]
    out["hour"] = when.dt.hour.astype("Int64").astype("string")
    out["dow"] = when.dt.dayofweek.astype("Int64").astype("string")
    out["month"] = when.dt.month.astype("Int64").astype("string")
    out["route"] = out["origin"] + "-" + out["dest"]
    days = when.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    holiday = days_to_nearest_holiday(days)
    out["days_to_holiday"] = np.where(holiday < 0, np.nan, holiday.astype("float64"))
    plane = [spec.planes.get(t) if isinstance(t, str) else None for t in out["tailnum"]]
    plane_year = np.array([np.nan if p is None or p[0] is None else p[0] for p in plane],
                          dtype="float64")
    out["plane_age"] = when.dt.year.to_numpy(dtype="float64", na_value=np.nan) - plane_year
    out["seats"] = np.array([np.nan if p is None or p[1] is None else p[1] for p in plane],
                            dtype="float64")
    out["engine"] = pd.array([None if p is None else p[2] for p in plane], dtype="string")
    return out


def _tail_bucket(tailnum: object, buckets: int) -> int:
    if not isinstance(tailnum, str) or not tailnum:
        return 0
    return zlib.crc32(tailnum.encode("utf-8")) % buckets + 1


def _onehot_table(cat: Categorical) -> np.ndarray:
    """Row ``i`` is the linear one-hot encoding of index ``i`` (all zeros for OOV, reference)."""
    table = np.zeros((len(cat.vocab) + 1, len(cat.linear_levels)))
    index = cat.index()
    for column, level in enumerate(cat.linear_levels):
        table[index[level], column] = 1.0
    return table


def encode_pandas(spec: FeatureSpec, raw: pd.DataFrame) -> dict[str, np.ndarray]:
    """``features`` (n, p) float64, ``cat_indices`` (n, c) int32 and ``numeric`` (n, q) float64.

    See :class:`~models.features.spec.FeatureSpec` for what each holds.
    """
    frame = derive_pandas(spec, raw)
    indices = []
    for cat in spec.categorical:
        codes = frame[cat.name].astype(object).map(cat.index())
        indices.append(codes.fillna(0).to_numpy(dtype=np.int32))
    indices.append(np.array([_tail_bucket(t, spec.tail_buckets)
                             for t in frame["tailnum"].astype(object)], dtype=np.int32))
    cat_indices = np.stack(indices, axis=1) if len(frame) else np.zeros((0, len(indices)),
                                                                        dtype=np.int32)

    block = []
    for num in spec.numeric:
        x = frame[num.name].to_numpy(dtype="float64", na_value=np.nan)
        block.append(np.where(np.isnan(x), 0.0, (x - num.mean) / num.std))
    for ind in spec.missing:
        block.append(np.isnan(frame[ind.column].to_numpy(dtype="float64", na_value=np.nan))
                     .astype("float64"))
    numeric = np.stack(block, axis=1) if block else np.zeros((len(frame), 0))

    onehot = [_onehot_table(cat)[cat_indices[:, i]] for i, cat in enumerate(spec.categorical)
              if cat.linear_levels]
    features = np.concatenate([*onehot, numeric], axis=1)
    return {"features": features, "cat_indices": cat_indices, "numeric": numeric}
