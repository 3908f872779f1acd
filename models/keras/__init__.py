"""Keras 3 model builders: the tabular MLP and the sequence forecaster, built from plain values."""

from models.keras.sequence import build_sequence_model
from models.keras.tabular import build_tabular_model, embedding_dim

__all__ = ["build_sequence_model", "build_tabular_model", "embedding_dim"]
