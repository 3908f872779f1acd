"""Streaming a shard through a bounded buffer: every row once a pass, a new reproducible order
each epoch, as many training batches as the footers promise, and never more rows held than
the bound. The tables have several files of several row groups, each mixing two splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import WriterProperties, write_deltalake

from models.training.data import (
    Shard,
    first_block,
    make_dataset,
    shard_files,
    shard_stream,
    signature_of,
)
from models.training.encoding import WindowEncoder
from models.training.task import storage_for
from tests.models.training.synthetic import SyntheticEncoder, flights_like, with_validation

LOCAL = storage_for(None)
BATCH, BOUND = 4, 16
TRAIN_ROWS = (23, 30, 17)  # 70 rows: more than four buffers, 17 batches and 2 rows over


def write_grouped(path: Path, frames: list[pd.DataFrame], group_rows: int = 7) -> int:
    """One Delta commit per frame, each a Parquet file of ``group_rows``-row row groups."""
    for frame in frames:
        write_deltalake(str(path), pa.Table.from_pandas(frame, preserve_index=False),
                        mode="append",
                        writer_properties=WriterProperties(max_row_group_size=group_rows))
    return len(frames) - 1


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    path = tmp_path_factory.mktemp("stream") / "t"
    frames = [with_validation(flights_like(rows, seed=i), 5 + i, seed=10 + i)
              for i, rows in enumerate(TRAIN_ROWS)]
    return str(path), write_grouped(path, frames)


def file_order(shard: Shard, column: str = "x1") -> np.ndarray:
    """A column of the shard's rows as its files hold them, read without the shard's reader."""
    frames = [pq.read_table(path).to_pandas() for path in shard.files]
    rows = pd.concat(frames)
    return rows.loc[rows["split"] == shard.split, column].to_numpy("float32")


def x1(batches) -> list[np.ndarray]:
    return [inputs["numeric"][:, 0] for inputs, _ in batches]


def stream(shard: Shard, **kwargs):
    options = dict(batch_size=BATCH, shuffle=True, seed=3, training=True, buffer_rows=BOUND)
    return shard_stream(shard, SyntheticEncoder(), "y", **{**options, **kwargs})


def test_a_training_pass_holds_each_row_once_and_never_more_than_the_bound(
        table: tuple[str, int]) -> None:
    shard = shard_files(LOCAL, *table, "train", 0, 1)
    assert len(shard.units) > len(shard.files)  # row groups are what a pass reorders
    everything = file_order(shard)
    shuffled = stream(shard)

    first, second = x1(shuffled()), x1(shuffled())

    for epoch in (first, second):
        assert [len(batch) for batch in epoch] == [BATCH] * (len(everything) // BATCH)
        rows = np.concatenate(epoch)
        assert len(set(rows)) == len(rows) and set(rows) <= set(everything)
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    assert not np.array_equal(np.concatenate(first), everything[:len(np.concatenate(first))])
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(x1(stream(shard)())))
    assert BATCH < shuffled.peak_rows <= BOUND
    # Row groups come in a new order each pass: the first batch is not always drawn
    # from the first buffer's worth of rows in file order.
    first_batches = [x1(shuffled())[0] for _ in range(4)]
    assert any(not set(batch) <= set(everything[:BOUND]) for batch in first_batches)


def test_evaluation_streams_every_row_once_in_file_order(table: tuple[str, int]) -> None:
    shard = shard_files(LOCAL, *table, "train", 0, 1)
    everything = file_order(shard)
    evaluation = stream(shard, training=False)

    batches = x1(evaluation())

    assert [len(batch) for batch in batches] == [BATCH] * 17 + [2]
    np.testing.assert_array_equal(np.concatenate(batches), everything)
    unshuffled = x1(stream(shard, shuffle=False)())
    np.testing.assert_array_equal(np.concatenate(unshuffled), everything[:68])
    assert evaluation.peak_rows <= BOUND


# 4 ranks over 3 files cut runs that start and end inside row groups; a bound of 5 reads
# 2 rows at a time, so a row group comes in several blocks and a run spans them.
@pytest.mark.parametrize(("size", "bound"), [(2, BOUND), (4, BOUND), (4, BATCH + 1)])
def test_ranks_stream_as_many_batches_as_their_footers_promise(table: tuple[str, int],
                                                               size: int, bound: int) -> None:
    shards = [shard_files(LOCAL, *table, split, rank, size) for rank in range(size)
              for split in ("train", "validation")]

    for shard in shards:
        rows = shard.count_rows()
        evaluation = x1(stream(shard, training=False, buffer_rows=bound)())
        assert sum(map(len, evaluation)) == rows
        assert len(list(stream(shard, buffer_rows=bound)())) == rows // BATCH
    for split in ("train", "validation"):
        read = np.concatenate([np.concatenate(x1(stream(shard, training=False,
                                                        buffer_rows=bound)()) or [[]])
                               for shard in shards if shard.split == split])
        everything = file_order(shard_files(LOCAL, *table, split, 0, 1))
        assert sorted(read) == sorted(everything) and len(set(read)) == len(read)


def test_make_dataset_streams_a_shard_larger_than_its_buffer(table: tuple[str, int]) -> None:
    shard = shard_files(LOCAL, *table, "train", 0, 1)
    encoder = SyntheticEncoder()
    signature = signature_of(first_block(shard, encoder, "y")[0])

    dataset = make_dataset(shard, encoder, "y", signature, batch_size=BATCH, shuffle=True,
                           seed=3, training=True, buffer_rows=BOUND)

    tensors = [batch.numpy() for batch in x1(dataset)]
    expected = x1(stream(shard)())
    np.testing.assert_array_equal(np.concatenate(tensors), np.concatenate(expected))
    assert not np.array_equal(np.concatenate([b.numpy() for b in x1(dataset)]),
                              np.concatenate(expected))  # the next epoch, a new order


def test_a_buffer_must_hold_a_batch(table: tuple[str, int]) -> None:
    shard = shard_files(LOCAL, *table, "train", 0, 1)

    with pytest.raises(ValueError, match="cannot hold a batch"):
        stream(shard, buffer_rows=BATCH - 1)


def test_sequence_windows_stream_like_tabular_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # A missing hour is a null inside the window; it is read as 0.
    windows = [[float(i), None if i % 9 == 0 else 1.0, *rng.normal(size=2)] for i in range(30)]
    frame = pd.DataFrame({"window": windows, "target": np.arange(30.0), "split": "train"})
    write_grouped(tmp_path / "s", [frame.iloc[:13], frame.iloc[13:]], group_rows=4)
    shard = shard_files(LOCAL, str(tmp_path / "s"), 1, "train", 0, 1)
    encoder = WindowEncoder("window")
    signature = signature_of(first_block(shard, encoder, "target")[0])

    batches = list(shard_stream(shard, encoder, "target", batch_size=4, shuffle=False, seed=0,
                                training=False, buffer_rows=8)())
    shuffled = make_dataset(shard, encoder, "target", signature, batch_size=4, shuffle=True,
                            seed=0, training=True, buffer_rows=8)

    labels = np.concatenate([labels[:, 0] for _, labels in batches])
    np.testing.assert_array_equal(labels, file_order(shard, "target"))
    assert sorted(labels) == list(range(30))
    window = np.concatenate([inputs["window"][:, :, 0] for inputs, _ in batches])
    assert window.shape == (30, 4)
    np.testing.assert_array_equal(window[:, 0], labels)  # each window stays with its row
    np.testing.assert_array_equal(window[:, 1], np.where(labels % 9 == 0, 0.0, 1.0))
    trained = np.concatenate([labels.numpy()[:, 0] for _, labels in shuffled])
    assert len(trained) == 28 and len(set(trained)) == 28
