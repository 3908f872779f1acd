"""The next-hour forecaster over an hourly window: an LSTM/GRU stack or a small Transformer.

The model normalises its raw input window and de-normalises its output with constants
fixed at build time (the training split's moments), so it takes and returns minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import keras
import numpy as np
from keras import layers, ops

WINDOW_INPUT = "window"


@keras.saving.register_keras_serializable(package="mlpipe")
class PositionEmbedding(layers.Layer):
    """Adds a learned vector per time step: attention alone does not know the hour order."""

    def __init__(self, length: int, width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.length, self.width = length, width
        self.positions = layers.Embedding(length, width)

    def build(self, input_shape) -> None:
        self.positions.build((self.length,))
        super().build(input_shape)

    def call(self, x):
        return x + self.positions(ops.arange(self.length))

    def get_config(self) -> dict:
        return {**super().get_config(), "length": self.length, "width": self.width}


def build_sequence_model(
    window: int,
    features: int,
    *,
    cell: Literal["lstm", "gru", "transformer"],
    units: Sequence[int],
    dropout: float,
    heads: int,
    window_mean: Sequence[float],
    window_std: Sequence[float],
    target_mean: float,
    target_std: float,
    name: str = "origin_delay_forecast",
) -> keras.Model:
    """A regressor from ``{"window": (batch, window, features)}`` to the next value ``(batch, 1)``.

    ``units`` are the recurrent layers' widths, or for the Transformer the model width
    (first entry) and the number of encoder blocks (the length of the list).
    """
    inputs = keras.Input(shape=(window, features), name=WINDOW_INPUT)
    variance = np.square(np.maximum(np.asarray(window_std, dtype="float32"), 1e-6))
    x = layers.Normalization(mean=list(window_mean), variance=list(variance),
                             name="scale_window")(inputs)
    if cell == "transformer":
        x = _transformer_encoder(x, window, width=units[0], blocks=len(units), heads=heads,
                                 dropout=dropout)
    else:
        recurrent = layers.LSTM if cell == "lstm" else layers.GRU
        for index, width in enumerate(units):
            x = recurrent(width, return_sequences=index < len(units) - 1, dropout=dropout,
                          name=f"{cell}_{index}")(x)
    scaled = layers.Dense(1, dtype="float32", name="scaled_forecast")(x)
    output = layers.Rescaling(scale=max(target_std, 1e-6), offset=target_mean, dtype="float32",
                              name="forecast")(scaled)
    return keras.Model({WINDOW_INPUT: inputs}, output, name=name)


def _transformer_encoder(x, window: int, *, width: int, blocks: int, heads: int,
                         dropout: float):
    """Post-norm encoder blocks; the forecast reads the last hour's representation."""
    x = layers.Dense(width, name="project")(x)
    x = PositionEmbedding(window, width, name="positions")(x)
    for index in range(blocks):
        attended = layers.MultiHeadAttention(heads, key_dim=max(1, width // heads),
                                             dropout=dropout, name=f"attention_{index}")(x, x)
        x = layers.LayerNormalization(name=f"norm_a_{index}")(x + attended)
        hidden = layers.Dense(2 * width, activation="relu", name=f"ffn_in_{index}")(x)
        hidden = layers.Dropout(dropout, name=f"ffn_dropout_{index}")(hidden)
        x = layers.LayerNormalization(name=f"norm_f_{index}")(
            x + layers.Dense(width, name=f"ffn_out_{index}")(hidden))
    return x[:, -1, :]
