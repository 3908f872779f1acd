"""The MLP over flight features: one embedding per categorical input, plus the numeric block.

Inputs are what a feature encoder produces (integer indices, scaled floats), so the
model itself holds no vocabularies; the pyfunc that wraps it adds the encoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
from keras import layers

NUMERIC_INPUT = "numeric"


def embedding_dim(vocabulary_size: int, max_dim: int) -> int:
    """Width of a categorical embedding: grows sub-linearly with the vocabulary (fast.ai's rule).

    A fixed width wastes parameters on ``origin`` (3 levels) and starves ``route``.
    """
    return max(2, min(max_dim, round(1.6 * vocabulary_size**0.56)))


def build_tabular_model(
    categorical_sizes: Mapping[str, int],
    numeric_width: int,
    *,
    hidden_units: Sequence[int],
    dropout: float,
    max_embedding_dim: int,
    name: str = "flight_delay_mlp",
) -> keras.Model:
    """A binary classifier: P(is_delayed) of shape ``(batch, 1)``, always float32.

    ``categorical_sizes`` maps each input name to its vocabulary size (out-of-vocabulary
    bucket included); ``numeric_width`` is the number of columns of the ``numeric`` input.
    """
    inputs: dict[str, keras.KerasTensor] = {}
    parts = []
    for feature, size in categorical_sizes.items():
        inputs[feature] = keras.Input(shape=(), dtype="int32", name=feature)
        parts.append(layers.Embedding(size, embedding_dim(size, max_embedding_dim),
                                      name=f"{feature}_embedding")(inputs[feature]))
    if numeric_width:
        inputs[NUMERIC_INPUT] = keras.Input(shape=(numeric_width,), name=NUMERIC_INPUT)
        parts.append(inputs[NUMERIC_INPUT])
    x = layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    for index, units in enumerate(hidden_units):
        x = layers.Dense(units, activation="relu", name=f"dense_{index}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{index}")(x)
    # Mixed precision computes in float16; the probability stays float32 for a stable loss.
    output = layers.Dense(1, activation="sigmoid", dtype="float32", name="is_delayed")(x)
    return keras.Model(inputs, output, name=name)
