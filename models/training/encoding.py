"""Raw records -> model inputs: the protocol the worker and the pyfunc rely on.

A feature spec (``models.features``) satisfies :class:`Encoder` through a thin adapter;
tests use small encoders of their own. ``encoder_from`` resolves the ``module:factory``
string a :class:`~models.training.task.TrainTask` carries. A factory gets the text of
its spec file, not the file: the worker reads it through the task's storage (a local
folder or the object store), the logged pyfunc from its local artifact, and neither
kind of reading leaks into the encoders.
"""

from __future__ import annotations

import importlib
import json
from typing import Protocol

import numpy as np

from models.features.encode_pandas import RawColumns, SpecEncoder
from models.features.spec import FeatureSpec
from models.keras.sequence import WINDOW_INPUT
from models.keras.tabular import NUMERIC_INPUT


class Encoder(Protocol):
    """Turns raw records into named numpy arrays, one row per record.

    Records come as a DataFrame (training, MLflow's predict) or as named columns
    (the server's decoded request), so an encoder reads them only by column name.
    """

    @property
    def columns(self) -> list[str]:
        """The raw columns :meth:`encode` reads (what the worker selects from Parquet)."""

    def encode(self, frame: RawColumns) -> dict[str, np.ndarray]:
        """Model inputs keyed by input name; float32 or int32."""


class TabularEncoder(Encoder, Protocol):
    """What the MLP builder needs besides :meth:`encode`: vocabulary sizes and numeric width."""

    @property
    def categorical_sizes(self) -> dict[str, int]: ...

    @property
    def numeric_width(self) -> int: ...


# Factories renamed since models were logged with their old names: a registry's
# champions keep loading.
RENAMED_FACTORIES = {"models.training.encoding:flight_encoder":
                     "models.training.encoding:tabular_encoder"}


def encoder_from(reference: str, spec: str) -> Encoder:
    """Call the factory named ``"package.module:function"`` with the spec file's text."""
    reference = RENAMED_FACTORIES.get(reference, reference)
    module, _, attribute = reference.partition(":")
    factory = getattr(importlib.import_module(module), attribute)
    return factory(spec)


class TabularSpecEncoder:
    """The feature spec as the MLP's encoder: one integer input per categorical, plus numerics.

    Splitting ``cat_indices`` into named inputs lets each categorical have its own
    embedding and lets a caller see in the model which input is which.
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.tables = SpecEncoder(spec)

    @property
    def columns(self) -> list[str]:
        return list(self.spec.request)

    @property
    def categorical_sizes(self) -> dict[str, int]:
        return dict(zip(self.spec.categorical_feature_names, self.spec.cardinalities,
                        strict=True))

    @property
    def numeric_width(self) -> int:
        return len(self.spec.numeric_feature_names)

    def encode(self, frame: RawColumns) -> dict[str, np.ndarray]:
        encoded = self.tables.encode(frame)
        codes = encoded.cat_indices.T  # one contiguous row of codes per input
        inputs = {name: np.ascontiguousarray(codes[i])
                  for i, name in enumerate(self.spec.categorical_feature_names)}
        inputs[NUMERIC_INPUT] = encoded.numeric.astype("float32")
        return inputs


def tabular_encoder(spec: str) -> TabularSpecEncoder:
    """Factory for tasks: ``spec`` is a feature spec (JSON) written by the features step."""
    return TabularSpecEncoder(FeatureSpec.from_json(spec))


class WindowEncoder:
    """The sequence model's encoder: a list column of hourly values -> ``(n, hours, 1)``.

    Hours without flights arrive as nulls or NaN and become 0 (no delay to report).
    """

    def __init__(self, window_column: str) -> None:
        self.window_column = window_column

    @property
    def columns(self) -> list[str]:
        return [self.window_column]

    def encode(self, frame: RawColumns) -> dict[str, np.ndarray]:
        rows = [np.asarray(list(w) if w is not None else [], dtype="float32")
                for w in frame[self.window_column]]
        windows = np.stack(rows) if rows else np.zeros((0, 0), dtype="float32")
        windows = np.nan_to_num(windows, nan=0.0)
        if windows.ndim == 2:
            windows = windows[:, :, None]
        return {WINDOW_INPUT: windows}


def window_encoder(spec: str) -> WindowEncoder:
    """Factory for tasks: ``spec`` is the JSON ``{"window_column": ...}``."""
    return WindowEncoder(**json.loads(spec))
