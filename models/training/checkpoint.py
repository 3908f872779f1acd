"""Epoch checkpoints: weights, optimizer state and loop state in one atomically replaced file.

One ``.npz`` rather than Keras' own format because the optimizer's slots and the
early-stopping state must come back together with the weights for ``--resume`` to
continue exactly where a crashed job stopped. It is built in memory and written in one
piece through :class:`~models.storage.Storage`, so a local folder and the object store
both hold the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass, field

import keras
import numpy as np

from models.storage import Storage


@dataclass
class LoopState:
    """Where training is: epochs done, the best monitored value, epochs since it improved."""

    epoch: int = 0
    best: float | None = None
    wait: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class CheckpointMismatch(ValueError):
    """The checkpoint was written by another training job (or another model)."""


class CheckpointUnreadable(ValueError):
    """The checkpoint's file is not a checkpoint: truncated, overwritten, or not ours."""


def save_checkpoint(storage: Storage, location: str, model: keras.Model,
                    optimizer: keras.optimizers.Optimizer, state: LoopState,
                    best_weights: list[np.ndarray], owner: str) -> None:
    """Replace the checkpoint at ``location`` with one whole-file write; ``owner`` is the
    identity of the job writing it (``TrainTask.identity``)."""
    arrays = {f"model_{i}": v.numpy() for i, v in enumerate(model.variables)}
    arrays |= {f"optimizer_{i}": v.numpy() for i, v in enumerate(optimizer.variables)}
    arrays |= {f"best_{i}": w for i, w in enumerate(best_weights)}
    arrays["state"] = np.array(json.dumps(asdict(state)))
    arrays["owner"] = np.array(owner)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    storage.write_bytes(location, buffer.getvalue())


def load_checkpoint(storage: Storage, location: str, model: keras.Model,
                    optimizer: keras.optimizers.Optimizer, owner: str,
                    ) -> tuple[LoopState, list[np.ndarray]]:
    """Restore weights and optimizer slots in place; return the loop state and best weights.

    Refused unless the checkpoint was written by the job ``owner`` names: another job's
    weights of the same shape (the table moved on, the schedule changed) would load
    silently and be reported as this job's result.
    """
    try:
        loaded = np.load(io.BytesIO(storage.read_bytes(location)))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointUnreadable(
            f"{location} is not a readable checkpoint ({type(error).__name__}: {error}); "
            "run without --resume to start afresh") from None
    with loaded as arrays:
        if "state" not in arrays.files:
            raise CheckpointUnreadable(f"{location} holds no training state; run without "
                                       "--resume to start afresh")
        written_by = str(arrays["owner"]) if "owner" in arrays.files else "an unnamed job"
        if written_by != owner:
            raise CheckpointMismatch(
                f"{location} was written by another training job ({written_by[:12]}, this "
                f"one is {owner[:12]}: other data, model or schedule); run without --resume "
                "to start afresh")
        for prefix, variables in (("model", model.variables), ("optimizer", optimizer.variables)):
            stored = sum(1 for key in arrays.files if key.startswith(f"{prefix}_"))
            if stored != len(variables):
                raise CheckpointMismatch(
                    f"{location} holds {stored} {prefix} variables, the model has "
                    f"{len(variables)}: it was written by a different model")
            for i, variable in enumerate(variables):
                variable.assign(arrays[f"{prefix}_{i}"])
        best = [arrays[f"best_{i}"] for i in range(len(model.variables))
                if f"best_{i}" in arrays.files]
        state = LoopState(**json.loads(str(arrays["state"])))
    return state, best
