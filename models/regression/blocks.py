"""Getting rows to executors as numpy blocks, and partial results back up a reduction tree.

Every data pass of the estimators is one ``tree_aggregate`` call: ``mapInArrow`` turns each
partition's Arrow batches into float64 blocks (the vectors are turned into arrays in the JVM
first, which MEASUREMENTS.md found four times faster than shipping ``VectorUDT`` structs), a
module-level function reduces the partition to one small partial result, and ``treeReduce``
combines the partials on executors so the driver never holds one partial per partition.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from py4j.protocol import Py4JJavaError
from pyspark.errors import PythonException
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, NumericType

# Marks errors raised on executors so the driver can re-raise them as plain ValueErrors.
ERROR_TAG = "mlpipe-regression-error:"
PARTIAL_SCHEMA = "partial binary"
# Partials of one pass the driver may hold at once before merging moves to the executors.
DRIVER_PARTIAL_BUDGET = 256 * 1024 * 1024


class DataError(ValueError):
    """The input data cannot be fitted; the message names the column and the problem."""


def data_error(message: str) -> DataError:
    return DataError(f"{ERROR_TAG} {message}")


def prepare_frame(df: DataFrame, features_col: str, label_col: str,
                  weight_col: str | None) -> DataFrame:
    """Validate the schema and select ``x`` (array<double>), ``y`` and ``w`` as doubles."""
    fields = {field.name: field.dataType for field in df.schema.fields}
    for role, name in (("features", features_col), ("label", label_col), ("weight", weight_col)):
        if name and name not in fields:
            raise DataError(f"{role} column {name!r} not found; columns are {sorted(fields)}")
    features_type = fields[features_col]
    if isinstance(features_type, VectorUDT):
        x = vector_to_array(F.col(features_col), "float64")
    elif isinstance(features_type, ArrayType) and isinstance(features_type.elementType,
                                                               NumericType):
        x = F.col(features_col).cast("array<double>")
    else:
        raise DataError(f"features column {features_col!r} must be a vector or a numeric array, "
                        f"got {features_type.simpleString()}")
    for role, name in (("label", label_col), ("weight", weight_col)):
        if name and not isinstance(fields[name], NumericType):
            raise DataError(f"{role} column {name!r} must be numeric, "
                            f"got {fields[name].simpleString()}")
    w = F.col(weight_col).cast("double") if weight_col else F.lit(1.0)
    return df.select(x.alias("x"), F.col(label_col).cast("double").alias("y"), w.alias("w"))


def batch_arrays(batch: pa.RecordBatch, names: tuple[str, str, str]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (X, y, w) float64 blocks of one Arrow batch of ``prepare_frame`` output, validated.

    ``names`` are the user's column names, for error messages raised on the executor.
    """
    features, label, weight = names
    xs = batch.column(0)
    if xs.null_count:
        raise data_error(f"null vector in features column {features!r}")
    offsets = np.asarray(xs.offsets)
    lengths = np.diff(offsets)
    width = int(lengths[0]) if len(lengths) else 0
    if np.any(lengths != width):
        raise data_error(f"vectors of different lengths in features column {features!r}")
    flat = xs.values.slice(offsets[0], offsets[-1] - offsets[0])
    x = flat.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    x = x.reshape(len(batch), width)
    y = batch.column(1).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    w = batch.column(2).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        bad = sorted(set(np.nonzero(~np.isfinite(x))[1].tolist()))[:10]
        raise data_error(f"NaN or infinite value in features column {features!r} "
                         f"(feature indices {bad})")
    if not np.isfinite(y).all():
        raise data_error(f"null, NaN or infinite value in label column {label!r}")
    if not np.isfinite(w).all() or np.any(w < 0):
        raise data_error(f"weight column {weight!r} has a null, negative or non-finite value")
    return x, y, w


def _run_partition(reduce_partition: Callable[..., Any], names: tuple[str, str, str],
                   batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    blocks = (batch_arrays(batch, names) for batch in batches if batch.num_rows)
    partial = reduce_partition(blocks)
    if partial is not None:
        yield pa.RecordBatch.from_pylist([{"partial": pickle.dumps(partial, protocol=5)}])


def _unpack(row: Any) -> Any:
    return pickle.loads(row[0])


def tree_aggregate(prepared: DataFrame, reduce_partition: Callable[..., Any],
                   merge: Callable[[Any, Any], Any], depth: int,
                   names: tuple[str, str, str], partial_bytes: int) -> Any | None:
    """One pass: reduce each partition's blocks, merge the partials up a tree; None if no rows.

    ``reduce_partition`` takes an iterator of (X, y, w) blocks and returns a picklable partial
    (or None for an empty partition); ``merge`` combines two partials. Both must be module-level
    functions (or partials of them) over plain values. When all partials together fit in
    ``DRIVER_PARTIAL_BUDGET`` (``partial_bytes`` is one partial's size) they are collected and
    merged pairwise on the driver, which saves the RDD stages' second or so per pass; otherwise
    ``treeReduce`` merges them on executors, ``depth`` levels deep.
    """
    fn = functools.partial(_run_partition, reduce_partition, names)
    mapped = prepared.mapInArrow(fn, PARTIAL_SCHEMA)
    try:
        if prepared.rdd.getNumPartitions() * partial_bytes <= DRIVER_PARTIAL_BUDGET:
            return pairwise_reduce([_unpack(row) for row in mapped.collect()], merge)
        return mapped.rdd.map(_unpack).treeReduce(merge, depth=max(depth, 1))
    except (PythonException, Py4JJavaError) as error:
        raise _as_data_error(error) from None
    except ValueError as error:
        if "empty" in str(error).lower():
            return None
        raise


def pairwise_reduce(partials: list[Any], merge: Callable[[Any, Any], Any]) -> Any | None:
    """Merge neighbours level by level: a balanced tree, so rounding grows with log(P)."""
    while len(partials) > 1:
        paired = [merge(a, b) for a, b in zip(partials[::2], partials[1::2], strict=False)]
        partials = paired + ([partials[-1]] if len(partials) % 2 else [])
    return partials[0] if partials else None


def _as_data_error(error: Exception) -> Exception:
    text = str(error)
    if ERROR_TAG not in text:
        return error
    message = text.split(ERROR_TAG, 1)[1].strip().splitlines()[0]
    return DataError(message)


def num_features(df: DataFrame, features_col: str) -> int:
    """The feature count, from the column's ML attributes if present, else from the first row."""
    attrs = df.schema[features_col].metadata.get("ml_attr", {})
    if "num_attrs" in attrs:
        return int(attrs["num_attrs"])
    row = df.select(features_col).first()
    if row is None:
        raise DataError("empty DataFrame: there are no rows to fit")
    if row[0] is None:
        raise DataError(f"null vector in features column {features_col!r}")
    return len(row[0])
