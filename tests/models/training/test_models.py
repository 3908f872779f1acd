"""The Keras builders: shapes, and the sequence model's scaling of raw windows and minutes."""

from __future__ import annotations

import numpy as np
import pytest

from models.keras.sequence import build_sequence_model
from models.keras.tabular import build_tabular_model, embedding_dim


def test_embedding_width_grows_with_the_vocabulary_up_to_the_cap() -> None:
    assert embedding_dim(4, 16) < embedding_dim(100, 16) <= 16
    assert embedding_dim(10_000, 16) == 16


def test_tabular_model_gives_one_probability_per_row() -> None:
    model = build_tabular_model({"carrier": 5, "route": 50}, 3, hidden_units=[8],
                                dropout=0.1, max_embedding_dim=4)
    out = model({"carrier": np.array([0, 4]), "route": np.array([1, 49]),
                 "numeric": np.zeros((2, 3), "float32")}).numpy()
    assert out.shape == (2, 1) and np.all((out > 0) & (out < 1))


@pytest.mark.parametrize("cell", ["lstm", "gru", "transformer"])
def test_sequence_model_maps_raw_windows_to_minutes(cell: str) -> None:
    model = build_sequence_model(6, 2, cell=cell, units=[8, 4], dropout=0.0, heads=2,
                                 window_mean=[100.0, 5.0], window_std=[10.0, 1.0],
                                 target_mean=30.0, target_std=20.0)
    out = model({"window": np.full((3, 6, 2), [100.0, 5.0], "float32")}).numpy()
    assert out.shape == (3, 1)
    # A window at the training mean is scaled to zeros: the output stays near the target
    # mean rather than at the raw inputs' magnitude.
    assert np.all(np.abs(out - 30.0) < 3 * 20.0)
