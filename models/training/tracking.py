"""MLflow from rank 0 only: params, per-epoch metrics, the learning curve and the model.

The driver opened the run (and logs lineage); rank 0 writes into it by id, so a job
on N ranks still yields one run, and the other ranks never touch the tracking server.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path
from typing import Any

import keras
import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

import models
from models.model_uri import run_uri
from models.training.pyfunc import ENCODER_ARTIFACT, KERAS_ARTIFACT, EncodedKerasModel

MODEL_NAME = "model"
REQUIREMENTS = ("tensorflow", "keras", "mlflow", "pandas", "numpy", "pyarrow", "cloudpickle")


class RunLog:
    """Writes into the driver's MLflow run ``run_id``."""

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        self.run_id = run_id
        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri)

    def params(self, params: dict[str, Any]) -> None:
        for key, value in params.items():
            self.client.log_param(self.run_id, key, value)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.client.log_metric(self.run_id, key, value, step=epoch)

    def metrics(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.client.log_metric(self.run_id, key, value)

    def learning_curve(self, history: list[dict[str, float]], monitor: str) -> None:
        """Loss (train and validation) and the monitored metric per epoch, as a PNG."""
        figure = Figure(figsize=(10, 4))
        left, right = figure.subplots(1, 2)
        epochs = [row["epoch"] for row in history]
        left.plot(epochs, [row["loss"] for row in history], marker="o", label="train")
        left.plot(epochs, [row["val_loss"] for row in history], marker="o", label="validation")
        left.set(xlabel="epoch", ylabel="loss", title="Loss")
        left.legend()
        right.plot(epochs, [row[f"val_{monitor}"] for row in history], marker="o")
        right.set(xlabel="epoch", ylabel=monitor, title=f"Validation {monitor}")
        figure.tight_layout()
        self.client.log_figure(self.run_id, figure, "learning_curve.png")

    def model(self, model: keras.Model, encoder: str, encoder_spec: str,
              example: pd.DataFrame) -> str:
        """Log the pyfunc (encoder + Keras model) with a signature inferred from ``example``.

        ``encoder_spec`` is a local file, which MLflow copies into the model.
        """
        with tempfile.TemporaryDirectory() as folder:
            keras_path = Path(folder) / "model.keras"
            model.save(keras_path)
            with mlflow.start_run(run_id=self.run_id):
                mlflow.pyfunc.log_model(
                    name=MODEL_NAME, python_model=EncodedKerasModel(),
                    artifacts={KERAS_ARTIFACT: str(keras_path), ENCODER_ARTIFACT: encoder_spec},
                    model_config={"encoder": encoder}, input_example=example,
                    code_paths=[str(Path(models.__file__).parent)],
                    pip_requirements=[f"{name}=={importlib.metadata.version(name)}"
                                      for name in REQUIREMENTS])
        return run_uri(self.run_id, MODEL_NAME)

    def model_with_spec(self, model: keras.Model, encoder: str, spec_name: str, spec: str,
                        example: pd.DataFrame) -> str:
        """:meth:`model` for a spec held as text: a worker reads it from the task's storage,
        which may be the object store, and MLflow packages only local files."""
        with tempfile.TemporaryDirectory() as folder:
            spec_file = Path(folder) / spec_name
            spec_file.write_text(spec)
            return self.model(model, encoder, str(spec_file), example)
