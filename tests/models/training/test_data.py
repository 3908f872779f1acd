"""Sharding a pinned Delta table: disjoint, complete, one split, whatever the file count."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from models.training.data import shard_files
from tests.models.training.synthetic import flights_like, with_validation, write_files


def rows_of(table: Path, version: int, split: str, size: int) -> list[pd.DataFrame]:
    shards = [shard_files(str(table), version, split, rank, size) for rank in range(size)]
    frames = [pd.concat(list(s.frames(["x1", "split"]))) for s in shards]
    assert [s.count_rows() for s in shards] == [len(f) for f in frames]
    return frames


@pytest.mark.parametrize("size", [1, 2, 3])
def test_ranks_get_disjoint_shards_that_cover_the_split(tmp_path: Path, size: int) -> None:
    files = [with_validation(flights_like(10 + i, seed=i), 3, seed=10 + i) for i in range(2)]
    version = write_files(tmp_path / "t", files)

    frames = rows_of(tmp_path / "t", version, "train", size)

    assert all((f["split"] == "train").all() for f in frames)
    seen = pd.concat(frames)["x1"]
    assert not seen.duplicated().any()
    assert sorted(seen) == sorted(pd.concat(files).query("split == 'train'")["x1"])


def test_a_pinned_version_ignores_later_commits(tmp_path: Path) -> None:
    first = write_files(tmp_path / "t", [flights_like(8, seed=1)])
    write_files(tmp_path / "t", [flights_like(8, seed=2)])

    assert sum(len(f) for f in rows_of(tmp_path / "t", first, "train", 2)) == 8
