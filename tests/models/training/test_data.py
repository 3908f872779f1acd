"""Sharding a pinned Delta table (disjoint, complete, one split, whatever the file count),
and the batches a rank trains and evaluates on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.training.data import first_block, make_dataset, shard_files, signature_of
from models.training.task import storage_for
from tests.models.training.synthetic import (
    SyntheticEncoder,
    flights_like,
    with_validation,
    write_files,
)

LOCAL = storage_for(None)


def rows_of(table: Path, version: int, split: str, size: int) -> list[pd.DataFrame]:
    shards = [shard_files(LOCAL, str(table), version, split, rank, size) for rank in range(size)]
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


@pytest.mark.parametrize("size", [2, 3])
def test_ranks_get_equal_shards_when_the_files_are_not(tmp_path: Path, size: int) -> None:
    # As the features step wrote silver at 10x: one large file and one small, both splits.
    files = [with_validation(flights_like(70, seed=1), 20, seed=11),
             with_validation(flights_like(11, seed=2), 30, seed=12)]
    version = write_files(tmp_path / "t", files)

    for split, rows in (("train", 81), ("validation", 50)):
        frames = rows_of(tmp_path / "t", version, split, size)
        assert sorted(map(len, frames)) == [rows // size] * (size - rows % size) + \
            [rows // size + 1] * (rows % size)
        assert sorted(pd.concat(frames)["x1"]) == sorted(
            pd.concat(files).query(f"split == '{split}'")["x1"])


def test_a_pinned_version_ignores_later_commits(tmp_path: Path) -> None:
    first = write_files(tmp_path / "t", [flights_like(8, seed=1)])
    write_files(tmp_path / "t", [flights_like(8, seed=2)])

    assert sum(len(f) for f in rows_of(tmp_path / "t", first, "train", 2)) == 8


def epoch_x1(dataset) -> list[np.ndarray]:
    """Each batch's ``x1`` column (the numeric block's first column) for one pass."""
    return [inputs["numeric"].numpy()[:, 0] for inputs, _ in dataset]


def test_training_batches_are_a_new_permutation_each_epoch_and_reproducible(
        tmp_path: Path) -> None:
    files = [flights_like(23, seed=1), flights_like(18, seed=2)]
    shard = shard_files(LOCAL, str(tmp_path / "t"), write_files(tmp_path / "t", files), "train",
                        0, 1)
    encoder = SyntheticEncoder()
    signature = signature_of(first_block(shard, encoder, "y")[0])

    def dataset(seed: int, shuffle: bool = True, training: bool = True):
        return make_dataset(shard, encoder, "y", signature, batch_size=8, shuffle=shuffle,
                            seed=seed, training=training)

    shuffled = dataset(seed=3)
    first, second = epoch_x1(shuffled), epoch_x1(shuffled)
    everything = pd.concat(list(shard.frames(["x1"])))["x1"].to_numpy("float32")  # file order
    assert [len(batch) for batch in first] == [8] * 5  # 41 rows: the partial batch dropped
    assert set(np.concatenate(first)) <= set(everything)
    assert len(set(np.concatenate(first))) == 40
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    assert np.array_equal(np.concatenate(first), np.concatenate(epoch_x1(dataset(seed=3))))

    in_order = np.concatenate(epoch_x1(dataset(seed=3, shuffle=False)))
    np.testing.assert_array_equal(in_order, everything[:40])
    evaluation = epoch_x1(dataset(seed=3, training=False))
    assert [len(batch) for batch in evaluation] == [8] * 5 + [1]
    np.testing.assert_array_equal(np.concatenate(evaluation), everything)


def test_a_rank_without_rows_of_a_split_gets_an_empty_dataset(tmp_path: Path) -> None:
    version = write_files(tmp_path / "t", [flights_like(12, seed=1)])
    train = shard_files(LOCAL, str(tmp_path / "t"), version, "train", 0, 1)
    encoder = SyntheticEncoder()
    signature = signature_of(first_block(train, encoder, "y")[0])
    validation = shard_files(LOCAL, str(tmp_path / "t"), version, "validation", 0, 1)

    dataset = make_dataset(validation, encoder, "y", signature, batch_size=4, shuffle=True,
                           seed=0, training=False)

    assert epoch_x1(dataset) == []
