"""What a training job is, as plain JSON: the contract between the driver and its workers.

Workers start in fresh processes (horovodrun, Spark tasks, mpirun on other hosts), so
everything they need travels in one serialisable object rather than in Python state.
Every location in it is a string (a local path or an ``s3a://`` URI) read and written
through :class:`~models.storage.Storage`, so ranks on other hosts reach the same files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from models.storage import ObjectStoreSettings, Storage, is_remote, join

TASK_FILE = "task.json"
# What a task without object-store settings uses: it names local locations only, which
# never reach the object store, so none of these values is ever read.
LOCAL_ONLY = ObjectStoreSettings(endpoint="", region="", path_style_access=True,
                                 connect_timeout_s=1.0)


class Schedule(BaseModel):
    """What every Horovod-trained model shares: optimisation and early stopping.

    ``batch_size`` is per worker; the learning rate is scaled by the number of workers
    after ``warmup_epochs`` of linear warm-up (Goyal et al.'s recipe). The config's
    training sections extend it, so their schedule keys are these fields.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float
    batch_size: int
    epochs: int
    warmup_epochs: int
    patience: int
    shuffle: bool
    mixed_precision: bool


@dataclass(frozen=True)
class Runtime:
    """How a worker uses its host and the network; none of it changes the maths."""

    threads_per_worker: int
    fp16_allreduce: bool


def storage_for(object_store: dict[str, Any] | None) -> Storage:
    """The storage every rank builds from the same plain settings (credentials: environment)."""
    return Storage(ObjectStoreSettings(**object_store) if object_store else LOCAL_ONLY)


@dataclass(frozen=True)
class TrainTask:
    """One training job: data at a pinned version, model, schedule, and where results go.

    ``encoder`` is ``"module:factory"``; the factory gets the text of the file at
    ``encoder_arg`` (a spec, say) and returns the object that turns raw records into
    model inputs, so the worker knows nothing about any particular feature set.
    ``object_store`` is :meth:`ObjectStoreSettings.as_dict`, needed when any location
    is on the object store.
    """

    kind: Literal["tabular", "sequence"]
    table_path: str
    table_version: int
    encoder: str
    encoder_arg: str
    label: str
    model: dict[str, Any]
    schedule: Schedule
    runtime: Runtime
    seed: int
    output_dir: str
    resume: bool = False
    tracking_uri: str | None = None
    run_id: str | None = None
    object_store: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        remote = [loc for loc in (self.table_path, self.encoder_arg, self.output_dir)
                  if is_remote(loc)]
        if remote and not self.object_store:
            raise ValueError(f"{', '.join(remote)}: a task on the object store needs its "
                             "object_store settings")

    @cached_property
    def storage(self) -> Storage:
        return storage_for(self.object_store)

    @property
    def checkpoint_path(self) -> str:
        return join(self.output_dir, "checkpoint.npz")

    def identity(self) -> str:
        """A digest of what decides the training's result: the data at its version, the
        encoder, the model and its schedule, the seed. A checkpoint carries it, so
        ``--resume`` continues only the job that wrote it; how the job runs (workers,
        the MLflow run, where results go, whether it resumes) may differ."""
        fields = {**asdict(self), "schedule": self.schedule.model_dump()}
        for how in ("runtime", "resume", "tracking_uri", "run_id", "object_store",
                    "output_dir"):
            fields.pop(how)
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()

    def rank_result_path(self, rank: int) -> str:
        return join(self.output_dir, f"rank-{rank}.json")

    def to_json(self) -> str:
        data = {**asdict(self), "schedule": self.schedule.model_dump()}
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainTask:
        data = json.loads(text)
        data["schedule"] = Schedule(**data["schedule"])
        data["runtime"] = Runtime(**data["runtime"])
        return cls(**data)

    def write(self) -> str:
        """Save as ``<output_dir>/task.json``, the one argument every worker gets."""
        location = join(self.output_dir, TASK_FILE)
        self.storage.write_text(location, self.to_json())
        return location

    @classmethod
    def read(cls, location: str, object_store: dict[str, Any] | None = None) -> TrainTask:
        """Read a task file; one on the object store needs the settings to reach it."""
        if is_remote(location) and not object_store:
            raise ValueError(f"{location}: reading a task file on the object store needs "
                             "its object_store settings")
        return cls.from_json(storage_for(object_store).read_text(location))
