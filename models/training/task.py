"""What a training job is, as plain JSON: the contract between the driver and its workers.

Workers start in fresh processes (horovodrun, Spark tasks, mpirun on other hosts), so
everything they need travels in one serialisable object rather than in Python state.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

TASK_FILE = "task.json"


@dataclass(frozen=True)
class Schedule:
    """Optimisation and early stopping; ``batch_size`` is per worker."""

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


@dataclass(frozen=True)
class TrainTask:
    """One training job: data at a pinned version, model, schedule, and where results go.

    ``encoder`` is ``"module:factory"``; the factory gets ``encoder_arg`` (a spec file,
    say) and returns the object that turns raw records into model inputs, so the
    worker knows nothing about any particular feature set.
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

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.output_dir) / "checkpoint.npz"

    def rank_result_path(self, rank: int) -> Path:
        return Path(self.output_dir) / f"rank-{rank}.json"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainTask:
        data = json.loads(text)
        data["schedule"] = Schedule(**data["schedule"])
        data["runtime"] = Runtime(**data["runtime"])
        return cls(**data)

    def write(self) -> Path:
        """Save as ``<output_dir>/task.json``, the one argument every worker gets."""
        path = Path(self.output_dir) / TASK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def read(cls, path: str | Path) -> TrainTask:
        return cls.from_json(Path(path).read_text())
