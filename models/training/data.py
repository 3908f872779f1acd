"""Each rank's own shard of a pinned Delta table, held in memory and batched through ``tf.data``.

The file list comes from the Delta log at the pinned version (delta-rs, no Spark),
so a worker reads exactly the data the driver logged and never more; files are
dealt round-robin to ranks, so shards are disjoint and nothing passes through a driver.
The log and the files are reached through :class:`~models.storage.Storage`: a local
table or one on the object store, read alike by ranks on any host.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
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


@dataclass(frozen=True)
class Shard:
    """The Parquet files of one rank for one split, as paths within ``filesystem``.

    ``row_filter`` when files mix splits; ``rows = (rank, size)`` keeps every
    ``size``-th row from ``rank`` when the table has fewer files than there are ranks.
    """

    files: tuple[str, ...]
    split: str
    row_filter: bool
    filesystem: pafs.FileSystem
    rows: tuple[int, int] = (0, 1)

    def frames(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        """One DataFrame per file, only this shard's rows of the split and the named columns."""
        for path in self.files:
            table = pq.read_table(path, filesystem=self.filesystem, columns=list(dict.fromkeys(
                [*columns, SPLIT_COLUMN] if self.row_filter else columns)))
            if self.row_filter:
                table = table.filter(pc.equal(table[SPLIT_COLUMN], self.split))
            if self.rows != (0, 1):
                table = table.take(np.arange(self.rows[0], table.num_rows, self.rows[1]))
            yield table.select(columns).to_pandas()

    def count_rows(self) -> int:
        """Rows of this shard, from Parquet footers when files hold one split."""
        start, step = self.rows
        return sum(len(range(start, self._split_rows(path), step)) for path in self.files)

    def _split_rows(self, path: str) -> int:
        if not self.row_filter:
            return pq.read_metadata(path, filesystem=self.filesystem).num_rows
        split = pq.read_table(path, filesystem=self.filesystem,
                              columns=[SPLIT_COLUMN])[SPLIT_COLUMN]
        return pc.sum(pc.equal(split, self.split)).as_py() or 0


def shard_files(storage: Storage, table_path: str, version: int, split: str, rank: int,
                size: int) -> Shard:
    """Rank ``rank`` of ``size``'s part of ``split`` at ``version`` of the table.

    Whole files, dealt round-robin, when there are enough; otherwise every rank reads
    all files and keeps its own rows (correct, but each rank reads everything).
    """
    uri, options = storage.delta_options(table_path)
    table = DeltaTable(uri, version=version, storage_options=options or None)
    partitioned = SPLIT_COLUMN in table.metadata().partition_columns
    uris = (table.file_uris(partition_filters=[(SPLIT_COLUMN, "=", split)])
            if partitioned else table.file_uris())
    # delta-rs names files by URI (s3://bucket/key on the store); pyarrow wants paths.
    filesystem = storage.resolve(table_path)[0]
    files = sorted(storage.resolve(file_uri)[1] for file_uri in uris)
    if len(files) >= size:
        return Shard(tuple(files[rank::size]), split, row_filter=not partitioned,
                     filesystem=filesystem)
    return Shard(tuple(files), split, row_filter=not partitioned, filesystem=filesystem,
                 rows=(rank, size))


def encode_frame(frame: pd.DataFrame, encoder: Encoder, label: str
                 ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Inputs and a ``(n, 1)`` float32 label column (the models' output shape)."""
    labels = frame[label].to_numpy(dtype="float32").reshape(-1, 1)
    return encoder.encode(frame), labels


def signature_of(inputs: dict[str, np.ndarray]) -> dict[str, tf.TensorSpec]:
    """The per-block ``TensorSpec`` of encoded inputs (any number of rows)."""
    return {name: tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype))
            for name, array in inputs.items()}


def load_shard(shard: Shard, encoder: Encoder, label: str, signature: dict[str, tf.TensorSpec]
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The whole shard encoded into memory: one array per input, rows first."""
    blocks = [encode_frame(frame, encoder, label)
              for frame in shard.frames([*encoder.columns, label]) if len(frame)]
    if not blocks:  # a rank may hold no rows of a split
        return ({name: np.zeros((0, *spec.shape[1:]), spec.dtype.as_numpy_dtype)
                 for name, spec in signature.items()}, np.zeros((0, 1), "float32"))
    inputs = {name: np.concatenate([block[0][name] for block in blocks]) for name in signature}
    return inputs, np.concatenate([block[1] for block in blocks])


def make_dataset(shard: Shard, encoder: Encoder, label: str,
                 signature: dict[str, tf.TensorSpec], *, batch_size: int,
                 shuffle: bool, seed: int, training: bool) -> tf.data.Dataset:
    """Batches of ``(inputs, labels)`` of the shard: read once, held in memory."""
    inputs, labels = load_shard(shard, encoder, label, signature)
    return in_memory_dataset(inputs, labels, batch_size=batch_size, shuffle=shuffle, seed=seed,
                             training=training)


def in_memory_dataset(inputs: dict[str, np.ndarray], labels: np.ndarray, *, batch_size: int,
                      shuffle: bool, seed: int, training: bool) -> tf.data.Dataset:
    """Batches of ``(inputs, labels)`` cut from whole arrays, reshuffled each epoch.

    A batch is one numpy gather per input through a permutation of the rows. The per-row
    alternative (``unbatch``, ``shuffle``, ``batch``) costs tf.data about a core's worth of
    work at the MLP's speed, which two Horovod ranks on two cores cannot spare
    (bench/RESULTS.md). Each pass over the dataset (each epoch) draws a new permutation
    from ``seed``, so a run is reproducible.

    Training drops the last partial batch so every rank runs the same number of steps
    of the same size (a short batch would weigh its rows more in the average).
    """
    rows = len(labels)
    stop = rows - rows % batch_size if training else rows
    epochs = itertools.count()

    def batches() -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        if training and shuffle:
            order = np.random.default_rng([seed, next(epochs)]).permutation(rows)
            for start in range(0, stop, batch_size):
                index = order[start:start + batch_size]
                yield {name: array[index] for name, array in inputs.items()}, labels[index]
        else:
            for start in range(0, stop, batch_size):
                end = start + batch_size
                yield {name: array[start:end] for name, array in inputs.items()}, \
                    labels[start:end]

    label_spec = tf.TensorSpec((None, 1), tf.float32)
    return tf.data.Dataset.from_generator(
        batches, output_signature=(signature_of(inputs), label_spec)).prefetch(tf.data.AUTOTUNE)


def first_block(shard: Shard, encoder: Encoder, label: str
                ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The first non-empty encoded file of a shard: its shapes give the input signature."""
    for frame in shard.frames([*encoder.columns, label]):
        if len(frame):
            return encode_frame(frame, encoder, label)
    raise ValueError(f"no {shard.split} rows in {len(shard.files)} files of this rank")
