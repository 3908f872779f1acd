"""Epoch checkpoints: weights, optimizer state and loop state in one atomically replaced file.

One ``.npz`` rather than Keras' own format because the optimizer's slots and the
early-stopping state must come back together with the weights for ``--resume`` to
continue exactly where a crashed job stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np


@dataclass
class LoopState:
    """Where training is: epochs done, the best monitored value, epochs since it improved."""

    epoch: int = 0
    best: float | None = None
    wait: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def save_checkpoint(path: Path, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    state: LoopState, best_weights: list[np.ndarray]) -> None:
    """Write the checkpoint next to ``path`` and rename it into place (no torn files)."""
    arrays = {f"model_{i}": v.numpy() for i, v in enumerate(model.variables)}
    arrays |= {f"optimizer_{i}": v.numpy() for i, v in enumerate(optimizer.variables)}
    arrays |= {f"best_{i}": w for i, w in enumerate(best_weights)}
    arrays["state"] = np.array(json.dumps(asdict(state)))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)


def load_checkpoint(path: Path, model: keras.Model, optimizer: keras.optimizers.Optimizer
                    ) -> tuple[LoopState, list[np.ndarray]]:
    """Restore weights and optimizer slots in place; return the loop state and best weights."""
    with np.load(path) as arrays:
        for prefix, variables in (("model", model.variables), ("optimizer", optimizer.variables)):
            stored = sum(1 for key in arrays.files if key.startswith(f"{prefix}_"))
            if stored != len(variables):
                raise ValueError(f"{path} holds {stored} {prefix} variables, the model has "
                                 f"{len(variables)}: it was written by a different model")
            for i, variable in enumerate(variables):
                variable.assign(arrays[f"{prefix}_{i}"])
        best = [arrays[f"best_{i}"] for i in range(len(model.variables))
                if f"best_{i}" in arrays.files]
        state = LoopState(**json.loads(str(arrays["state"])))
    return state, best
