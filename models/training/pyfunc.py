"""The logged model: an MLflow pyfunc that scores raw records (encoder + Keras model).

Serving sends raw flight records; the encoding must travel with the model or the
two drift apart. The bare Keras model is an artifact too, for callers that encode
themselves and want the speed.
"""

from __future__ import annotations

import keras
import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.training.encoding import encoder_from

KERAS_ARTIFACT = "keras_model"
ENCODER_ARTIFACT = "encoder_spec"


class EncodedKerasModel(mlflow.pyfunc.PythonModel):
    """``predict(DataFrame of raw records) -> one prediction per row`` (probability or minutes).

    ``model_config["encoder"]`` names the encoder factory; the factory gets the
    ``encoder_spec`` artifact, so the model carries its vocabularies and scaling.
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        # Imported for their registered layers and schedules before the model is deserialised.
        import models.keras.sequence  # noqa: F401
        import models.training.loop  # noqa: F401

        self.encoder = encoder_from(context.model_config["encoder"],
                                    context.artifacts[ENCODER_ARTIFACT])
        self.model = keras.saving.load_model(context.artifacts[KERAS_ARTIFACT], compile=False)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        inputs = self.encoder.encode(model_input)
        return np.asarray(self.model.predict_on_batch(inputs), dtype="float64").reshape(-1)
