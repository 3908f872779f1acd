"""Small synthetic tables and an encoder for the worker-loop tests (no data layer needed).

Workers import this module by name (``tests.models.training.synthetic:...``) because
they run in fresh processes; the tests start them from the repository root.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

CATEGORIES = 5
LABEL = "y"
ENCODER = "tests.models.training.synthetic:synthetic_encoder"


class SyntheticEncoder:
    """Column ``cat`` (an index) -> an embedding input; ``x1``, ``x2`` -> the numeric block."""

    columns = ["cat", "x1", "x2"]
    categorical_sizes = {"cat": CATEGORIES}
    numeric_width = 2

    def encode(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {"cat": frame["cat"].to_numpy(dtype="int32"),
                "numeric": frame[["x1", "x2"]].to_numpy(dtype="float32")}


def synthetic_encoder(spec: str) -> SyntheticEncoder:
    json.loads(spec)  # the spec file must have been read and parse, as a real one
    return SyntheticEncoder()


def flights_like(rows: int, seed: int, split: str = "train") -> pd.DataFrame:
    """A learnable binary problem: y depends on the category and on x1 - x2."""
    rng = np.random.default_rng(seed)
    cat = rng.integers(0, CATEGORIES, rows)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    logit = 1.5 * (x1 - x2) + (cat - 2) * 0.8
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("float64")
    return pd.DataFrame({"cat": cat.astype("int64"), "x1": x1, "x2": x2, LABEL: y,
                         "split": split})


def write_files(path: Path, frames: list[pd.DataFrame]) -> int:
    """One Delta commit (and one Parquet file) per frame; the table's newest version."""
    for frame in frames:
        write_deltalake(str(path), pa.Table.from_pandas(frame, preserve_index=False),
                        mode="append")
    return DeltaTable(str(path)).version()


def write_spec(folder: Path) -> Path:
    path = folder / "synthetic_spec.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"categories": CATEGORIES}))
    return path


def with_validation(train: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """A file holding both splits, as the silver tables' files do."""
    return pd.concat([train, flights_like(rows, seed, split="validation")], ignore_index=True)
