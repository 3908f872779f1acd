"""Each rank's own shard of a pinned Delta table, batched through ``tf.data``.

The file list comes from the Delta log at the pinned version (delta-rs, no Spark),
so a worker reads exactly the data the driver logged and never more. Each rank takes an
equal, contiguous run of the split's rows in file and row-group order (counted from
footers, or from the split column where files mix splits), so shards are disjoint, differ
by at most one row, and nothing passes through a driver. Dealing whole files instead
would tie a rank's share to the writer's file sizes: two files of 2.3M and 1.0M rows left
40% of a 10x training split untrained, since every rank stops at the smallest shard's
steps (bench/RESULTS.md).
The log and the files are reached through :class:`~models.storage.Storage`: a local
table or one on the object store, read alike by ranks on any host.

A rank's memory must not grow with the table (30x the data on one 2-core machine): a
shard that fits in :data:`SHUFFLE_BUFFER_ROWS` is encoded once and held, as before; a
larger one is streamed every epoch, Parquet row group by row group in blocks of at most
:data:`READ_ROWS`, through a buffer of at most that many encoded rows (:class:`BatchStream`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import tensorflow as tf
from deltalake import DeltaTable

from models.storage import Storage
from models.training.encoding import Encoder

SPLIT_COLUMN = "split"

SHUFFLE_BUFFER_ROWS = 262_144
"""The most encoded rows a rank holds of one split: the bound on its data memory.

About 32 MiB at the MLP's 124 bytes a row (9 int32 codes, 21 float32 numerics, the
label), twice that while a buffer is concatenated. Training shuffles within it, so it
is also the shuffle window: large enough that a batch mixes rows from many places of a
shard. The 1x tables' shards fit (read once, held across epochs, as before streaming);
at 10x and 30x a training shard is read again each epoch. A module constant, not a
setting: the schedule reaches workers from ``conf/`` through the pipeline's config
schema and ``TrainTask``, outside this package.
"""

READ_ROWS = 65_536
"""Rows read from Parquet at a time, before the split's filter: enough to amortise the
per-block costs (Arrow to pandas, the encoder's per-call work), a quarter of the buffer."""

# Inputs by name and a ``(n, 1)`` label column: an encoded block, or a batch.
Block = tuple[dict[str, np.ndarray], np.ndarray]
# A run of one row group: the file, the group's index in it, and the first and past-the-end
# positions of this rank's rows among the group's rows of the split.
Unit = tuple[str, int, int, int]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """One rank's rows of one split: runs of Parquet row groups within ``filesystem``.

    ``row_filter`` when files mix splits: a unit's positions then count the split's rows
    of its group only.
    """

    units: tuple[Unit, ...]
    split: str
    row_filter: bool
    filesystem: pafs.FileSystem

    @property
    def files(self) -> tuple[str, ...]:
        """The files the shard reads from, in order."""
        return tuple(dict.fromkeys(path for path, *_ in self.units))

    def read(self, unit: Unit, columns: list[str], block_rows: int = READ_ROWS
             ) -> Iterator[pd.DataFrame]:
        """This shard's rows of one row group, the named columns, ``block_rows`` read at a time.

        Only one block of the group is decoded at a time, so memory is bounded by
        ``block_rows`` whatever the size of the group; reading stops at the run's end.
        """
        path, group, first, stop = unit
        wanted = list(dict.fromkeys([*columns, SPLIT_COLUMN] if self.row_filter else columns))
        seen = 0  # rows of the split before this block in the group
        with self._open(path) as file:
            for batch in file.iter_batches(batch_size=block_rows, row_groups=[group],
                                           columns=wanted):
                if self.row_filter:
                    batch = batch.filter(pc.equal(batch[SPLIT_COLUMN], self.split))
                start, end = max(first - seen, 0), min(stop - seen, batch.num_rows)
                seen += batch.num_rows
                if start < end:
                    yield batch.slice(start, end - start).select(columns).to_pandas()
                if seen >= stop:
                    return

    def frames(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        """The shard's rows in file order, a block of at most :data:`READ_ROWS` at a time."""
        for unit in self.units:
            yield from self.read(unit, columns)

    def count_rows(self) -> int:
        """Rows of this shard (known from the units, nothing is read)."""
        return sum(stop - first for _, _, first, stop in self.units)

    def _open(self, path: str) -> pq.ParquetFile:
        return pq.ParquetFile(path, filesystem=self.filesystem)


def shard_files(storage: Storage, table_path: str, version: int, split: str, rank: int,
                size: int) -> Shard:
    """Rank ``rank`` of ``size``'s part of ``split`` at ``version`` of the table.

    The split's rows, in file and row-group order, cut into ``size`` contiguous runs whose
    lengths differ by at most one. Every rank reads the footers of all files (and the split
    column, where files mix splits) to agree on the cut; it then decodes only the row
    groups its run touches, from a group's start to the run's end.
    """
    uri, options = storage.delta_options(table_path)
    table = DeltaTable(uri, version=version, storage_options=options or None)
    partitioned = SPLIT_COLUMN in table.metadata().partition_columns
    uris = (table.file_uris(partition_filters=[(SPLIT_COLUMN, "=", split)])
            if partitioned else table.file_uris())
    # delta-rs names files by URI (s3://bucket/key on the store); pyarrow wants paths.
    filesystem = storage.resolve(table_path)[0]
    files = sorted(storage.resolve(file_uri)[1] for file_uri in uris)
    groups = [(path, group, rows) for path in files
              for group, rows in enumerate(_split_rows(pq.ParquetFile(path, filesystem=filesystem),
                                                       split, row_filter=not partitioned))]
    total = sum(rows for *_, rows in groups)
    low, high = total * rank // size, total * (rank + 1) // size
    units, before = [], 0  # before: the split's rows in the groups already passed
    for path, group, rows in groups:
        first, stop = max(low - before, 0), min(high - before, rows)
        if first < stop:
            units.append((path, group, first, stop))
        before += rows
    return Shard(tuple(units), split, row_filter=not partitioned, filesystem=filesystem)


def _split_rows(file: pq.ParquetFile, split: str, row_filter: bool) -> list[int]:
    """Rows of ``split`` in each row group of a file: the footer's count, or the split column's."""
    with file:
        if not row_filter:
            return [file.metadata.row_group(group).num_rows
                    for group in range(file.num_row_groups)]
        return [pc.sum(pc.equal(file.read_row_group(group, columns=[SPLIT_COLUMN])[SPLIT_COLUMN],
                                split)).as_py() or 0
                for group in range(file.num_row_groups)]


def encode_frame(frame: pd.DataFrame, encoder: Encoder, label: str) -> Block:
    """Inputs and a ``(n, 1)`` float32 label column (the models' output shape)."""
    labels = frame[label].to_numpy(dtype="float32").reshape(-1, 1)
    return encoder.encode(frame), labels


def signature_of(inputs: dict[str, np.ndarray]) -> dict[str, tf.TensorSpec]:
    """The per-block ``TensorSpec`` of encoded inputs (any number of rows)."""
    return {name: tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype))
            for name, array in inputs.items()}


def encoded_blocks(shard: Shard, encoder: Encoder, label: str, units: Iterable[Unit],
                   block_rows: int = READ_ROWS) -> Iterator[Block]:
    """The shard's non-empty blocks, encoded, row group by row group in the given order."""
    columns = [*encoder.columns, label]
    for unit in units:
        for frame in shard.read(unit, columns, block_rows):
            if len(frame):
                yield encode_frame(frame, encoder, label)


def load_shard(shard: Shard, encoder: Encoder, label: str, signature: dict[str, tf.TensorSpec]
               ) -> Block:
    """The whole shard encoded into memory: one array per input, rows first."""
    blocks = list(encoded_blocks(shard, encoder, label, shard.units))
    if not blocks:  # a rank may hold no rows of a split
        return ({name: np.zeros((0, *spec.shape[1:]), spec.dtype.as_numpy_dtype)
                 for name, spec in signature.items()}, np.zeros((0, 1), "float32"))
    return _concat(blocks)


def make_dataset(shard: Shard, encoder: Encoder, label: str,
                 signature: dict[str, tf.TensorSpec], *, batch_size: int,
                 shuffle: bool, seed: int, training: bool,
                 buffer_rows: int = SHUFFLE_BUFFER_ROWS) -> tf.data.Dataset:
    """Batches of ``(inputs, labels)`` of the shard, held in memory or streamed.

    A shard of at most ``buffer_rows`` rows is read once and held across epochs, as
    cheap as it gets; a larger one is read anew each pass through a buffer of that many
    rows (:func:`shard_stream`), so a rank's memory stays the same whatever the table.
    """
    rows = shard.count_rows()
    if rows <= buffer_rows:
        inputs, labels = load_shard(shard, encoder, label, signature)
        return in_memory_dataset(inputs, labels, batch_size=batch_size, shuffle=shuffle,
                                 seed=seed, training=training)
    log.info("%s: streaming %d rows through a buffer of %d", shard.split, rows, buffer_rows)
    return shard_stream(shard, encoder, label, batch_size=batch_size, shuffle=shuffle,
                        seed=seed, training=training, buffer_rows=buffer_rows
                        ).dataset(signature)


def in_memory_dataset(inputs: dict[str, np.ndarray], labels: np.ndarray, *, batch_size: int,
                      shuffle: bool, seed: int, training: bool) -> tf.data.Dataset:
    """Batches of ``(inputs, labels)`` cut from whole arrays, reshuffled each epoch.

    A batch is one numpy gather per input through a permutation of the rows. The per-row
    alternative (``unbatch``, ``shuffle``, ``batch``) costs tf.data about a core's worth of
    work at the MLP's speed, which two Horovod ranks on two cores cannot spare
    (bench/RESULTS.md). Each pass over the dataset (each epoch) draws a new permutation
    from ``seed``, so a run is reproducible.
    """
    stream = BatchStream(lambda rng: [(inputs, labels)], batch_size=batch_size,
                         buffer_rows=max(len(labels), batch_size), shuffle=training and shuffle,
                         drop_remainder=training, seed=seed)
    return stream.dataset(signature_of(inputs))


def shard_stream(shard: Shard, encoder: Encoder, label: str, *, batch_size: int, shuffle: bool,
                 seed: int, training: bool, buffer_rows: int = SHUFFLE_BUFFER_ROWS
                 ) -> BatchStream:
    """The shard read anew each pass: row groups in a random order when shuffling.

    Blocks are read at most ``buffer_rows - batch_size + 1`` rows at a time, so a block
    and the rows left over from the last buffer (fewer than a batch) always fit.
    """
    if buffer_rows < batch_size:
        raise ValueError(f"a buffer of {buffer_rows} rows cannot hold a batch of {batch_size}")
    block_rows = min(READ_ROWS, buffer_rows - batch_size + 1)

    def blocks(rng: np.random.Generator | None) -> Iterator[Block]:
        units = list(shard.units)
        if rng is not None:
            units = [units[i] for i in rng.permutation(len(units))]
        return encoded_blocks(shard, encoder, label, units, block_rows)

    return BatchStream(blocks, batch_size=batch_size, buffer_rows=buffer_rows,
                       shuffle=training and shuffle, drop_remainder=training, seed=seed)


class BatchStream:
    """Batches cut from encoded blocks held in a buffer of at most ``buffer_rows`` rows.

    ``blocks(rng)`` gives one pass's blocks (``rng`` is ``None`` without shuffling). Blocks
    gather until the next would overflow the buffer; then the buffer is concatenated,
    permuted when shuffling, and cut into whole batches, one numpy gather per input
    each, and the rows short of a batch stay for the next buffer. So every row but the
    last pass's remainder lands in a batch, ``rows // batch_size`` batches when dropping
    the remainder (training): the count each rank computes from footers to agree on
    its steps. With one block (a shard held in memory) this is one permutation of all
    rows per pass. Each pass draws from ``[seed, pass]``, so a run is reproducible.

    Training drops the last partial batch so every rank runs the same number of steps
    of the same size (a short batch would weigh its rows more in the average).
    """

    def __init__(self, blocks: Callable[[np.random.Generator | None], Iterable[Block]], *,
                 batch_size: int, buffer_rows: int, shuffle: bool, drop_remainder: bool,
                 seed: int) -> None:
        self.blocks, self.batch_size, self.buffer_rows = blocks, batch_size, buffer_rows
        self.shuffle, self.drop_remainder, self.seed = shuffle, drop_remainder, seed
        self.passes = 0
        self.peak_rows = 0  # the most rows the buffer held: the bound tests assert

    def __call__(self) -> Iterator[Block]:
        """One pass (an epoch) over the data."""
        rng = np.random.default_rng([self.seed, self.passes]) if self.shuffle else None
        self.passes += 1
        held: list[Block] = []
        for block in self.blocks(rng):
            if _count(held) + len(block[1]) > self.buffer_rows:
                held = yield from self._cut(held, rng)
            held.append(block)
            self.peak_rows = max(self.peak_rows, _count(held))
        rest = yield from self._cut(held, rng)
        if rest and not self.drop_remainder:
            yield rest[0]

    def _cut(self, held: list[Block], rng: np.random.Generator | None
             ) -> Iterator[Block]:
        """Yield the buffer's whole batches; return the rows left over (a copy), if any.

        Empties ``held`` as soon as its blocks are merged, so they are not kept alive
        beside the merged buffer.
        """
        if not held:
            return []
        inputs, labels = held[0] if len(held) == 1 else _concat(held)
        held.clear()
        rows = len(labels)
        whole = rows - rows % self.batch_size
        order = None if rng is None else rng.permutation(rows)
        for start in range(0, whole, self.batch_size):
            end = start + self.batch_size
            yield _rows(inputs, labels, slice(start, end) if order is None else order[start:end])
        if whole == rows:
            return []
        rest = _rows(inputs, labels, slice(whole, rows) if order is None else order[whole:])
        return [({name: array.copy() for name, array in rest[0].items()}, rest[1].copy())]

    def dataset(self, signature: dict[str, tf.TensorSpec]) -> tf.data.Dataset:
        """The passes as a ``tf.data`` pipeline, prefetched so reading overlaps training."""
        label_spec = tf.TensorSpec((None, 1), tf.float32)
        return tf.data.Dataset.from_generator(
            self, output_signature=(signature, label_spec)).prefetch(tf.data.AUTOTUNE)


def _rows(inputs: dict[str, np.ndarray], labels: np.ndarray, index: slice | np.ndarray
          ) -> Block:
    return {name: array[index] for name, array in inputs.items()}, labels[index]


def _count(blocks: list[Block]) -> int:
    return sum(len(block[1]) for block in blocks)


def _concat(blocks: list[Block]) -> Block:
    return ({name: np.concatenate([block[0][name] for block in blocks])
             for name in blocks[0][0]}, np.concatenate([block[1] for block in blocks]))


def first_block(shard: Shard, encoder: Encoder, label: str) -> Block:
    """The first non-empty encoded block of a shard: its shapes give the input signature."""
    for block in encoded_blocks(shard, encoder, label, shard.units):
        return block
    raise ValueError(f"no {shard.split} rows in {len(shard.files)} files of this rank")
