"""What differs between the two models: the builder, the loss, the validation metric.

Everything else (data, loop, checkpoints, logging) is shared, so a new kind of model is
one more :class:`Problem` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import keras
import numpy as np
import tensorflow as tf

from models.keras.sequence import WINDOW_INPUT, build_sequence_model
from models.keras.tabular import build_tabular_model
from models.training.encoding import Encoder, TabularEncoder


@dataclass(frozen=True)
class Problem:
    """A kind of model: how to build it and how to score it; ``monitor`` drives early stopping."""

    kind: Literal["tabular", "sequence"]
    monitor: str
    mode: Literal["max", "min"]

    def loss(self) -> keras.losses.Loss:
        if self.kind == "tabular":
            return keras.losses.BinaryCrossentropy()
        return keras.losses.MeanAbsoluteError()

    def metric(self) -> keras.metrics.Metric:
        """The validation metric; its state is summed across ranks, so it must be additive."""
        if self.kind == "tabular":
            return keras.metrics.AUC(num_thresholds=1000, name=self.monitor)
        return keras.metrics.MeanAbsoluteError(name=self.monitor)

    def local_statistics(self, dataset: tf.data.Dataset) -> np.ndarray:
        """Additive moments of this rank's training rows: ``[rows, Σx, Σx², Σy, Σy²]``.

        The sequence model scales its input and output with them; summed over ranks
        they are the training split's moments without any rank seeing all the data.
        """
        if self.kind == "tabular":
            return np.zeros(1)
        totals = None
        for inputs, labels in dataset:
            x = inputs[WINDOW_INPUT].numpy().astype("float64").reshape(
                -1, inputs[WINDOW_INPUT].shape[-1])
            y = labels.numpy().astype("float64")
            block = np.concatenate([[len(y)], x.sum(0), (x**2).sum(0), [y.sum(), (y**2).sum()]])
            totals = block if totals is None else totals + block
        return totals if totals is not None else np.zeros(1)

    def build(self, encoder: Encoder | TabularEncoder, block: dict[str, np.ndarray],
              statistics: np.ndarray, params: dict[str, Any]) -> keras.Model:
        """The model for this problem; ``block`` is encoded sample data for input shapes."""
        if self.kind == "tabular":
            return build_tabular_model(encoder.categorical_sizes, encoder.numeric_width,
                                       hidden_units=params["hidden_units"],
                                       dropout=params["dropout"],
                                       max_embedding_dim=params["max_embedding_dim"])
        _, window, features = block[WINDOW_INPUT].shape
        n, hours = statistics[0], statistics[0] * window
        mean_x = statistics[1:1 + features] / hours
        std_x = np.sqrt(np.maximum(statistics[1 + features:1 + 2 * features] / hours
                                   - mean_x**2, 0.0))
        mean_y = statistics[-2] / n
        std_y = float(np.sqrt(max(statistics[-1] / n - mean_y**2, 0.0)))
        return build_sequence_model(window, features, cell=params["cell"],
                                    units=params["units"], dropout=params["dropout"],
                                    heads=params["heads"], window_mean=mean_x.tolist(),
                                    window_std=std_x.tolist(), target_mean=float(mean_y),
                                    target_std=std_y)


PROBLEMS = {
    "tabular": Problem("tabular", monitor="auc", mode="max"),
    "sequence": Problem("sequence", monitor="mae", mode="min"),
}
