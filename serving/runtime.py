"""The model runtime: load an MLflow model once, learn its inputs, warm it up, predict.

Callers hand it named numpy columns (one array per input, first axis = rows) and get
named numpy outputs back with the same row count. Calls are cut into chunks no larger
than the largest allowed batch size and each chunk is padded up to the next allowed
size, so TensorFlow only ever sees the shapes it was warmed up with.
"""

from __future__ import annotations

import bisect
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from serving.registry import fetch_model

log = logging.getLogger(__name__)

Columns = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: numpy dtype (object for strings) and per-row shape.

    `required` is False for a column the signature marks optional (MLflow infers that
    for columns with missing values in the input example): a client may leave it out.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    required: bool = True


class ModelRuntime:
    """A loaded, warmed-up model behind one `predict(columns, rows)` call.

    Not thread-safe on purpose: the batcher calls it from a single executor thread,
    which is what keeps TensorFlow's intra-op pool from being oversubscribed.
    """

    def __init__(
        self,
        call: Callable[[Columns], dict[str, np.ndarray]],
        inputs: tuple[TensorSpec, ...],
        allowed_batch_sizes: tuple[int, ...],
        version: str,
        example: Columns | None,
    ) -> None:
        self._call = call
        self.inputs = inputs
        self.allowed_batch_sizes = allowed_batch_sizes
        self.version = version
        self.outputs: tuple[TensorSpec, ...] = ()
        self._example = example

    def warm_up(self) -> None:
        """Run every allowed batch size once, so no request pays for tracing or allocation.

        The outputs of the first call also tell us the output names, dtypes and shapes
        that the metadata endpoint reports.
        """
        for size in self.allowed_batch_sizes:
            outputs = self._call(_take_rows(self._warm_up_rows(), size))
            check_rows(outputs, size)
            if not self.outputs:
                self.outputs = tuple(
                    TensorSpec(name, value.dtype, value.shape[1:])
                    for name, value in outputs.items()
                )
        log.info("warmed up at batch sizes %s", list(self.allowed_batch_sizes))

    def predict(self, columns: Columns, rows: int) -> dict[str, np.ndarray]:
        """Predict `rows` rows, in padded chunks of allowed sizes."""
        largest = self.allowed_batch_sizes[-1]
        pieces: list[dict[str, np.ndarray]] = []
        for start in range(0, rows, largest):
            stop = min(start + largest, rows)
            chunk = {name: value[start:stop] for name, value in columns.items()}
            padded_size = self._padded_size(stop - start)
            outputs = self._call(_take_rows(chunk, padded_size))
            check_rows(outputs, padded_size)
            pieces.append({name: value[: stop - start] for name, value in outputs.items()})
        if len(pieces) == 1:
            return pieces[0]
        return {name: np.concatenate([piece[name] for piece in pieces]) for name in pieces[0]}

    def _padded_size(self, rows: int) -> int:
        return self.allowed_batch_sizes[bisect.bisect_left(self.allowed_batch_sizes, rows)]

    def _warm_up_rows(self) -> Columns:
        example = self._example
        if example is not None and all(spec.name in example for spec in self.inputs):
            return {spec.name: np.asarray(example[spec.name]).astype(spec.dtype)
                    for spec in self.inputs}
        return {
            spec.name: np.full((1, *spec.shape), "" if spec.dtype == object else 0, spec.dtype)
            for spec in self.inputs
        }


# Each runtime's downloaded copy: MODEL_FOLDER_PREFIX<pid>-<random> in the temp folder.
MODEL_FOLDER_PREFIX = "mlpipe-model-"


def limit_tensorflow_threads(threads: int) -> None:
    """Size TensorFlow's thread pools before anything initialises TensorFlow.

    Set through TF's environment variables rather than tf.config so that it also holds
    for pyfunc models that load TensorFlow themselves; a value already in the
    environment wins. 0 leaves TensorFlow's default.
    """
    if threads > 0:
        for variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
            os.environ.setdefault(variable, str(threads))


def load_runtime(model_uri: str, allowed_batch_sizes: tuple[int, ...], *,
                 deployment: str) -> ModelRuntime:
    """Download, verify, load and warm up the model `model_uri` points at now.

    The files are downloaded once into a folder of this runtime's own and loaded from
    there, a registry version only once verified (`fetch_model`; `deployment` empty:
    any deployment); the folder goes when the runtime does, and a process that was
    killed leaves its folders to the next load to remove (`remove_orphaned_folders`).
    """
    remove_orphaned_folders()
    folder = tempfile.mkdtemp(prefix=f"{MODEL_FOLDER_PREFIX}{os.getpid()}-")
    try:
        runtime = _load_from(model_uri, folder, allowed_batch_sizes, deployment)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    weakref.finalize(runtime, shutil.rmtree, folder, ignore_errors=True)
    return runtime


def remove_orphaned_folders() -> None:
    """Remove the model folders of processes that are gone.

    A server killed outright (SIGKILL, the OOM killer) runs no finalizer, and a fleet
    or a test session that kills replicas would otherwise fill the temp folder with a
    model copy per kill. Each folder is named after the process that made it.
    """
    for folder in Path(tempfile.gettempdir()).glob(f"{MODEL_FOLDER_PREFIX}*-*"):
        owner = folder.name.removeprefix(MODEL_FOLDER_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)


def remove_own_folders() -> None:
    """Remove this process's model folders: what a server does as it shuts down.

    Finalizers do not run there: uvicorn ends a server stopped by SIGTERM by raising
    the signal again once it has drained, and the default handler ends the process.
    """
    for folder in Path(tempfile.gettempdir()).glob(f"{MODEL_FOLDER_PREFIX}{os.getpid()}-*"):
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _load_from(model_uri: str, folder: str, allowed_batch_sizes: tuple[int, ...],
               deployment: str) -> ModelRuntime:
    downloaded, version = fetch_model(model_uri, folder, deployment)
    local = Path(downloaded)
    meta = Model.load(local)
    flavors = meta.flavors
    keras_flavor = "keras" in flavors or flavors.get("tensorflow", {}).get("model_type") == "keras"
    if keras_flavor:
        call, inputs = _load_keras(local, meta)
    else:
        call, inputs = _load_pyfunc(local, meta)
    runtime = ModelRuntime(call, inputs, allowed_batch_sizes, version, _input_example(meta, local))
    runtime.warm_up()
    log.info("loaded %s (version %s, %s)", model_uri, version,
             "keras tf.function" if keras_flavor else "pyfunc")
    return runtime


def _load_keras(local: Path, meta: Model) -> tuple[Callable[[Columns], dict], tuple]:
    """A Keras model behind a compiled tf.function called directly on numpy.

    pyfunc's predict converts through pandas and Keras' predict loop on every call;
    calling the traced graph through its flat entry skips both, and the argument
    binding. The input signature has a free batch axis, so one trace serves every
    padded size.
    """
    import tensorflow as tf

    from models.training.pyfunc import call_flat

    _use_gpu_if_present(tf)
    if "keras" in meta.flavors:
        model = mlflow.keras.load_model(str(local))
    else:
        model = mlflow.tensorflow.load_model(str(local))
    inputs = _signature_inputs(meta) or tuple(
        TensorSpec(tensor.name, np.dtype(tensor.dtype), tuple(tensor.shape[1:]))
        for tensor in model.inputs
    )
    specs = [tf.TensorSpec((None, *s.shape), tf.as_dtype(s.dtype), name=s.name) for s in inputs]
    names = [spec.name for spec in inputs]

    @tf.function(input_signature=specs)
    def forward(*tensors: tf.Tensor) -> Any:
        args = tensors[0] if len(tensors) == 1 else dict(zip(names, tensors, strict=True))
        return model(args, training=False)

    concrete = forward.get_concrete_function()

    def call(columns: Columns) -> dict[str, np.ndarray]:
        tensors = [tf.constant(columns[spec.name], dtype=spec.dtype) for spec in specs]
        return _named_outputs(call_flat(concrete, tensors))

    return call, inputs


def _load_pyfunc(local: Path, meta: Model) -> tuple[Callable[[Columns], dict], tuple]:
    """Any other flavor through pyfunc: raw records in, its own feature spec applies.

    The project's own pyfuncs also take the decoded columns directly
    (`predict_columns`): the request was checked against the signature while it was
    decoded, so the DataFrame and MLflow's schema enforcement, which cost more than
    the encoding and the model together, are skipped. Other models, and ours logged
    before that method existed, go through `PyFuncModel.predict`.
    """
    model = mlflow.pyfunc.load_model(str(local))
    inputs = _signature_inputs(meta)
    if not inputs:
        raise ValueError("the model has no input signature: log it with `signature=`")
    tensor_based = meta.signature.inputs.is_tensor_spec()
    direct = None if tensor_based else _columns_predict(model)
    if direct is not None:
        log.info("calling the model's predict_columns, without MLflow's schema enforcement")

    def call(columns: Columns) -> dict[str, np.ndarray]:
        if direct is not None:
            return _named_outputs(direct(columns))
        if tensor_based:
            data: Any = columns[inputs[0].name] if len(inputs) == 1 else dict(columns)
        else:
            data = pd.DataFrame(dict(columns), copy=False)
        return _named_outputs(model.predict(data))

    return call, inputs


def _columns_predict(model: mlflow.pyfunc.PyFuncModel) -> Callable[[Columns], Any] | None:
    """The python model's `predict_columns(columns)`, where it has one."""
    try:
        python_model = model.unwrap_python_model()
    except MlflowException:  # not a python_model flavor
        return None
    return getattr(python_model, "predict_columns", None)


def _use_gpu_if_present(tf: Any) -> None:
    """Let TF place ops on a GPU when one exists, growing memory so workers can share it."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised by an earlier load in this process
            pass
    log.info("TensorFlow devices: %s", [gpu.name for gpu in gpus] or ["CPU"])


def _signature_inputs(meta: Model) -> tuple[TensorSpec, ...]:
    if meta.signature is None:
        return ()
    schema = meta.signature.inputs
    if schema.is_tensor_spec():
        return tuple(
            TensorSpec(spec.name or ("input" if len(schema.inputs) == 1 else f"input_{i}"),
                       np.dtype(spec.type), tuple(spec.shape[1:]))
            for i, spec in enumerate(schema.inputs)
        )
    return tuple(
        TensorSpec(spec.name, _column_dtype(spec.type.to_numpy()), (), spec.required)
        for spec in schema.inputs
    )


def _column_dtype(dtype: np.dtype) -> np.dtype:
    """Strings and bytes travel as Python objects, as pandas holds them."""
    return np.dtype(object) if dtype.kind in "USO" else dtype


def _input_example(meta: Model, local: Path) -> Columns | None:
    """The logged input example, if any: realistic values make a safer warm-up."""
    try:
        example = meta.load_input_example(str(local))
    except Exception:  # a broken example must not stop serving; fall back to zeros
        log.warning("could not read the input example; warming up with zeros", exc_info=True)
        return None
    if isinstance(example, pd.DataFrame):
        return {name: example[name].to_numpy() for name in example.columns}
    if isinstance(example, np.ndarray):
        return {"input": example}
    return None


def _named_outputs(result: Any) -> dict[str, np.ndarray]:
    """Model outputs as named arrays: a DataFrame keeps its columns, else `predictions`."""
    if isinstance(result, pd.DataFrame):
        return {str(name): result[name].to_numpy() for name in result.columns}
    if isinstance(result, Mapping):
        return {str(name): np.asarray(value) for name, value in result.items()}
    if isinstance(result, list | tuple) and result and not np.isscalar(result[0]):
        return {f"output_{i}": np.asarray(value) for i, value in enumerate(result)}
    return {"predictions": np.asarray(result)}


def _take_rows(columns: Columns, size: int) -> dict[str, np.ndarray]:
    """Exactly `size` rows: pad by repeating the last row (a valid input) or cut."""
    out = {}
    for name, value in columns.items():
        rows = len(value)
        if rows < size:
            index = np.minimum(np.arange(size), rows - 1)
            value = value[index]
        out[name] = value[:size]
    return out


def check_rows(outputs: Mapping[str, np.ndarray], rows: int) -> None:
    """Fail loudly when a model returns a different row count: slicing would misroute rows."""
    for name, value in outputs.items():
        if len(value) != rows:
            raise RuntimeError(f"model returned {len(value)} rows of {name!r} for {rows} inputs")
