"""The logged model: an MLflow pyfunc that scores raw records (encoder + Keras model).

Serving sends raw flight records; the encoding must travel with the model or the
two drift apart. The bare Keras model is an artifact too, for callers that encode
themselves and want the speed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.features.encode_pandas import RawColumns
from models.training.encoding import encoder_from

KERAS_ARTIFACT = "keras_model"
ENCODER_ARTIFACT = "encoder_spec"


class EncodedKerasModel(mlflow.pyfunc.PythonModel):
    """``predict(DataFrame of raw records) -> one prediction per row`` (probability or minutes).

    ``model_config["encoder"]`` names the encoder factory; the factory gets the
    text of the ``encoder_spec`` artifact, so the model carries its vocabularies and scaling.
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        # Imported for their registered layers and schedules before the model is deserialised.
        import models.keras.sequence  # noqa: F401
        import models.training.loop  # noqa: F401

        self.encoder = encoder_from(context.model_config["encoder"],
                                    Path(context.artifacts[ENCODER_ARTIFACT]).read_text())
        self.model = keras.saving.load_model(context.artifacts[KERAS_ARTIFACT], compile=False)
        self._graph = CompiledForward(self.model, jit_compile=False)
        self._xla = CompiledForward(self.model, jit_compile=True)

    def __getstate__(self) -> dict:
        """Pickle without what `load_context` builds from the artifacts.

        MLflow calls `load_context` on this instance to infer the signature before it
        pickles it; traced functions cannot be pickled, and the Keras model and the
        encoder are artifacts already.
        """
        return {key: value for key, value in self.__dict__.items()
                if key not in ("encoder", "model", "_graph", "_xla")}

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return _flat(self._graph(self.encoder.encode(model_input)))

    def predict_columns(self, columns: RawColumns) -> np.ndarray:
        """Predict from raw columns already in the signature's types, skipping MLflow.

        The server calls this directly: it has checked the request against the
        signature while decoding, so MLflow's schema enforcement and the DataFrame
        it needs would only repeat that work on every batch. The model runs compiled
        by XLA, which costs a compilation per distinct row count: the server pads
        batches to a few allowed sizes and warms each up, so it pays that at start.
        """
        return _flat(self._xla(self.encoder.encode(columns)))


class CompiledForward:
    """A Keras model's inference pass as one traced graph over named numpy inputs.

    ``predict_on_batch`` rebuilds Keras' predict machinery on every call and a
    ``tf.function`` binds its arguments in Python; the concrete function's flat entry,
    called with tensors in a fixed order, costs what the layers cost. Converting each
    numpy input to a tensor costs as much again for a model with many small inputs (the
    flight MLP has one per categorical), so inputs of one dtype travel packed side by
    side in one tensor, which the graph splits back into the model's inputs: one
    conversion per dtype. The signature leaves the batch axis free, so the graph is
    traced once (on first use) for every batch size.
    """

    def __init__(self, model: keras.Model, *, jit_compile: bool) -> None:
        import tensorflow as tf

        self._packs = _packs(model.inputs)
        specs = [tf.TensorSpec(pack.shape, pack.dtype, name=pack.name) for pack in self._packs]

        def call(*tensors: tf.Tensor) -> tf.Tensor:
            named = {}
            for pack, tensor in zip(self._packs, tensors, strict=True):
                named.update(pack.unpack(tensor))
            return model(named, training=False)

        self._function = tf.function(call, input_signature=specs, jit_compile=jit_compile)
        self._concrete: Callable | None = None

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        import tensorflow as tf

        if self._concrete is None:
            self._concrete = self._function.get_concrete_function()
        tensors = [tf.constant(pack.pack(inputs)) for pack in self._packs]
        return call_flat(self._concrete, tensors).numpy()


@dataclass(frozen=True)
class _Pack:
    """Model inputs of one dtype as the columns of one ``(rows, width)`` tensor; an input
    alone in its pack travels as it is."""

    dtype: Any  # tf.DType
    names: tuple[str, ...]
    row_shapes: tuple[tuple[int | None, ...], ...]

    @property
    def name(self) -> str:
        return self.names[0] if len(self.names) == 1 else f"packed_{self.dtype.name}"

    @property
    def shape(self) -> tuple[int | None, ...]:
        if len(self.names) == 1:
            return (None, *self.row_shapes[0])
        return (None, sum(self._widths))

    @property
    def _widths(self) -> list[int]:
        return [math.prod(shape) for shape in self.row_shapes]

    def pack(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The inputs flattened per row and laid side by side, in the pack's dtype."""
        dtype = self.dtype.as_numpy_dtype
        if len(self.names) == 1:
            return np.asarray(inputs[self.names[0]], dtype=dtype)
        columns = [np.asarray(inputs[name]) for name in self.names]
        rows = len(columns[0])
        return np.concatenate(
            [column.reshape(rows, width) for column, width in zip(columns, self._widths,
                                                                  strict=True)],
            axis=1, dtype=dtype, casting="same_kind")

    def unpack(self, tensor: Any) -> dict[str, Any]:
        """In the graph: the packed tensor's columns back into the named inputs."""
        import tensorflow as tf

        if len(self.names) == 1:
            return {self.names[0]: tensor}
        pieces = tf.split(tensor, self._widths, axis=1)
        return {name: tf.reshape(piece, (-1, *shape))
                for name, piece, shape in zip(self.names, pieces, self.row_shapes, strict=True)}


def _packs(model_inputs: list) -> list[_Pack]:
    """The model's inputs grouped by dtype, in order of first appearance.

    An input whose per-row shape is not fully known (a sequence of free length) cannot
    share a tensor with others, so it travels alone.
    """
    import tensorflow as tf

    groups: dict[Any, list[tuple[str, tuple]]] = {}
    packs = []
    for tensor in model_inputs:
        dtype, shape = tf.as_dtype(tensor.dtype), tuple(tensor.shape[1:])
        if any(dim is None for dim in shape):
            packs.append(_Pack(dtype, (tensor.name,), (shape,)))
        else:
            groups.setdefault(dtype, []).append((tensor.name, shape))
    return [_Pack(dtype, tuple(name for name, _ in members),
                  tuple(shape for _, shape in members))
            for dtype, members in groups.items()] + packs


def call_flat(concrete: Any, tensors: list) -> Any:
    """Run a concrete function on tensors already in its signature's order and dtypes.

    The flat entry (TensorFlow's own, under its public call) skips binding the
    arguments to the traced signature in Python, which costs more than the layers:
    0.76 ms against 0.28 ms for a one-row call of the flight MLP. The caller builds the
    tensors from the signature, which is all that binding would check.
    """
    return concrete._call_flat(tensors, concrete.captured_inputs)


def _flat(predictions: np.ndarray) -> np.ndarray:
    """One float64 prediction per row, what both the pyfunc and the server return."""
    return np.asarray(predictions, dtype="float64").reshape(-1)
