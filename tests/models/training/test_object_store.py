"""The training task's files on the object store (the session's SeaweedFS): the task file,
the rank's shard at a pinned Delta version, the checkpoint and the launch log.

No ``horovodrun`` here: the worker loop itself is covered on local folders
(test_worker.py); these pin the storage paths it takes when the data root is remote.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from models.storage import ObjectStoreSettings, Storage, join
from models.training.checkpoint import (
    CheckpointMismatch,
    CheckpointUnreadable,
    LoopState,
    load_checkpoint,
    save_checkpoint,
)
from models.training.data import shard_files
from models.training.launch import TrainingFailed, run_logged
from models.training.task import TrainTask
from pipelines.services import TeamServices
from pipelines.services.objectstore import REGION
from tests.models.training.synthetic import flights_like
from tests.models.training.test_worker import make_task

# The storage and a folder on the store, as the ranks of one task would use them.
OnStore = tuple[Storage, str]


@pytest.fixture
def store(team_services: TeamServices, monkeypatch: pytest.MonkeyPatch,
          request: pytest.FixtureRequest) -> OnStore:
    """The storage every rank would build, and a folder on the store for this test only.

    Credentials come from the environment, as on a real cluster.
    """
    environment = team_services.store.client_environment()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, environment[name])
    settings = ObjectStoreSettings(endpoint=team_services.store.endpoint, region=REGION,
                                   path_style_access=True, connect_timeout_s=5.0)
    return Storage(settings), f"s3a://{team_services.bucket}/tests/training/{request.node.name}"


def test_the_task_file_round_trips_through_the_store(store: OnStore, tmp_path: Path) -> None:
    storage, folder = store
    task = dataclasses.replace(
        make_task(tmp_path / "table", 0, tmp_path / "out"), table_path=join(folder, "table"),
        encoder_arg=join(folder, "spec.json"), output_dir=join(folder, "out"),
        object_store=storage.settings.as_dict())

    location = task.write()

    assert location == f"{folder}/out/task.json"
    assert storage.exists(location)
    assert TrainTask.read(location, task.object_store) == task
    with pytest.raises(ValueError, match="object_store settings"):
        TrainTask.read(location)


def test_ranks_read_their_shards_from_the_store_at_the_pinned_version(store: OnStore) -> None:
    storage, folder = store
    table = join(folder, "table")
    uri, options = storage.delta_options(table)
    frames = [flights_like(10 + i, seed=i) for i in range(3)]
    for frame in frames:
        write_deltalake(uri, pa.Table.from_pandas(frame, preserve_index=False), mode="append",
                        storage_options=options)
    pinned = 1  # the first two commits; the third came after the driver pinned the table

    shards = [shard_files(storage, table, pinned, "train", rank, 2) for rank in range(2)]

    read = [pd.concat(list(shard.frames(["x1"]))) for shard in shards]
    assert [shard.count_rows() for shard in shards] == [len(rows) for rows in read]
    assert sorted(pd.concat(read)["x1"]) == sorted(pd.concat(frames[:2])["x1"])


def test_a_checkpoint_on_the_store_restores_weights_optimizer_and_loop_state(
        store: OnStore) -> None:
    storage, folder = store
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    model.layers[0].kernel.assign(np.arange(6, dtype="float32").reshape(3, 2))
    state = LoopState(epoch=3, best=0.5, wait=1, history=[{"epoch": 3.0, "loss": 0.7}])
    location = join(folder, "checkpoint.npz")

    save_checkpoint(storage, location, model, optimizer, state,
                    [v.numpy() for v in model.variables], owner="job-a")
    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    fresh_optimizer = keras.optimizers.Adam()
    fresh_optimizer.build(fresh.trainable_variables)
    with pytest.raises(CheckpointMismatch, match="written by another training job"):
        load_checkpoint(storage, location, fresh, fresh_optimizer, owner="job-b")
    restored, best = load_checkpoint(storage, location, fresh, fresh_optimizer, owner="job-a")

    assert restored == state
    np.testing.assert_array_equal(fresh.layers[0].kernel.numpy(),
                                  np.arange(6, dtype="float32").reshape(3, 2))
    np.testing.assert_array_equal(best[0], fresh.layers[0].kernel.numpy())


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04torn"])
def test_a_corrupt_checkpoint_is_refused_by_name(store: OnStore, content: bytes) -> None:
    storage, folder = store
    location = join(folder, "checkpoint.npz")
    storage.write_bytes(location, content)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    with pytest.raises(CheckpointUnreadable, match=re.escape(location)
                       + " is not a readable checkpoint.*without --resume"):
        load_checkpoint(storage, location, model, optimizer, owner="job-a")


def test_a_failed_launch_still_leaves_its_log_on_the_store(store: OnStore) -> None:
    storage, folder = store
    log_location = join(folder, "horovodrun.log")
    command = [sys.executable, "-c", "print('rank output'); raise SystemExit(3)"]

    with pytest.raises(TrainingFailed, match=f"full log {log_location}"):
        run_logged(command, {}, 60, storage, log_location)

    assert storage.read_text(log_location) == "rank output\n"
