"""The logged regression model: raw flight records in, predictions out, with numpy only.

Serving must not need a JVM, so the MLflow model carries the feature spec and the
fitted coefficients and scores with the spec's numpy encoder
(:mod:`models.features.encode_pandas`), which gives exactly the design the Spark
estimator was trained on.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Literal

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from models.features.encode_pandas import RawColumns, SpecEncoder, encode_pandas
from models.features.spec import FeatureSpec, load_spec

SPEC_ARTIFACT = "feature_spec"
COEFFICIENTS_ARTIFACT = "coefficients"


class RawFlightRegression(mlflow.pyfunc.PythonModel):
    """``predict(DataFrame of raw flights)``: minutes of delay (identity link) or P(delayed)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.spec = load_spec(context.artifacts[SPEC_ARTIFACT])
        self.encoder = SpecEncoder(self.spec)
        fitted = json.loads(Path(context.artifacts[COEFFICIENTS_ARTIFACT]).read_text())
        self.coefficients = np.asarray(fitted["coefficients"], dtype="float64")
        self.intercept = float(fitted["intercept"])
        self.link = fitted["link"]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.predict_columns(model_input)

    def predict_columns(self, columns: RawColumns) -> np.ndarray:
        """Raw columns in the signature's types -> predictions, without MLflow's checks.

        What the server calls (see ``EncodedKerasModel.predict_columns`` for why).
        """
        design = self.encoder.encode(columns).design()
        return linear_predictor(design, self.coefficients, self.intercept, self.link)


def linear_predictor(design: np.ndarray, coefficients: np.ndarray, intercept: float,
                     link: Literal["identity", "logit"]) -> np.ndarray:
    """``design @ coefficients + intercept``, through the inverse link."""
    eta = design @ coefficients + intercept
    return 1.0 / (1.0 + np.exp(-eta)) if link == "logit" else eta


def log_regression_model(name: str, spec: FeatureSpec, coefficients: np.ndarray,
                         intercept: float, link: Literal["identity", "logit"],
                         input_example: pd.DataFrame) -> ModelInfo:
    """Log the pyfunc under artifact ``name`` of the active run, with signature and example."""
    with tempfile.TemporaryDirectory() as folder:
        spec_file = spec.save(Path(folder) / "feature_spec.json")
        fitted = Path(folder) / "coefficients.json"
        fitted.write_text(json.dumps({"coefficients": [float(c) for c in coefficients],
                                      "intercept": float(intercept), "link": link,
                                      "features": spec.linear_feature_names}))
        example_output = linear_predictor(encode_pandas(spec, input_example)["features"],
                                          np.asarray(coefficients), intercept, link)
        return mlflow.pyfunc.log_model(
            name=name, python_model=RawFlightRegression(),
            artifacts={SPEC_ARTIFACT: str(spec_file), COEFFICIENTS_ARTIFACT: str(fitted)},
            signature=infer_signature(input_example, example_output),
            input_example=input_example)
