"""Small models the serving tests log to MLflow, standing in for the project's models.

The server subprocess unpickles these classes by reference, so they must stay
importable as `tests.serving.models` from the repository root. Each is registered as a
released version (lab/registry.py): servers load only what the gate promoted.
"""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from lab.registry import register_released
from models.features.fields import FLIGHTS
from models.features.spec import Categorical, FeatureSpec, Hashed, MissingIndicator, Numeric
from models.regression.pyfunc import log_regression_model
from pipelines.features.flights import PRE_DEPARTURE_FIELDS, WEATHER_FIELDS
from tests.support.flights import RAW_FIELDS

# Raw flight records: what a user knows before departure.
CARRIERS = ("AA", "B6", "DL", "UA", "WN")
NUMERIC = {"month": 0.3, "hour": 1.5, "sched_dep_time": 0.01, "distance": -0.002, "temp": 0.05}
INTEGER_FIELDS = ("month", "hour", "sched_dep_time")


class LinearDelayModel(mlflow.pyfunc.PythonModel):
    """A regression-style pyfunc: numeric features times weights plus a carrier embedding.

    Unknown carriers fall into the out-of-vocabulary bucket instead of failing, as the
    project's feature spec does.
    """

    def __init__(self, intercept: float, carrier_weights: dict[str, float], oov_weight: float):
        self.intercept = intercept
        self.carrier_weights = carrier_weights
        self.oov_weight = oov_weight

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        out = np.full(len(model_input), self.intercept, dtype=np.float64)
        for name, weight in NUMERIC.items():
            out += weight * model_input[name].to_numpy(dtype=np.float64)
        carrier = model_input["carrier"].map(self.carrier_weights).fillna(self.oov_weight)
        return out + carrier.to_numpy(dtype=np.float64)


class RecordingSlowModel(mlflow.pyfunc.PythonModel):
    """Sleeps per call and appends every `x` it sees to a file.

    The sleep makes the queue fill up on demand; the file proves which requests the
    model actually ran (an expired request must never appear in it).
    """

    def __init__(self, delay_s: float, log_path: str):
        self.delay_s = delay_s
        self.log_path = log_path

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        time.sleep(self.delay_s)
        values = model_input["x"].to_numpy(dtype=np.float64)
        with open(self.log_path, "a") as handle:
            handle.writelines(f"{float(value)!r}\n" for value in values)
        return values * 2.0


def flight_records(rows: int, seed: int = 0, carriers: tuple[str, ...] = CARRIERS) -> pd.DataFrame:
    """Raw records with realistic types: strings, longs and doubles."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "carrier": rng.choice(list(carriers), rows).astype(object),
        "origin": rng.choice(["EWR", "JFK", "LGA"], rows).astype(object),
        "month": rng.integers(1, 13, rows, dtype=np.int64),
        "hour": rng.integers(5, 23, rows, dtype=np.int64),
        "sched_dep_time": rng.integers(500, 2300, rows, dtype=np.int64),
        "distance": rng.uniform(80, 4000, rows),
        "temp": rng.uniform(10, 95, rows),
    })


def log_linear_model(name: str, intercept: float = 5.0) -> str:
    """Log and register a LinearDelayModel; returns the version."""
    weights = {carrier: float(i) for i, carrier in enumerate(CARRIERS)}
    model = LinearDelayModel(intercept, weights, oov_weight=-7.5)
    example = flight_records(5)
    signature = infer_signature(example, model.predict(None, example))
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=model, signature=signature, input_example=example,
            pip_requirements=["mlflow"])
    return register_released(name, info.model_uri, info.run_id)


def log_keras_model(name: str) -> str:
    """Log and register a 32-input MLP (two hidden layers) with a tensor signature."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1),
    ])
    example = np.random.default_rng(0).normal(size=(4, 32)).astype(np.float32)
    signature = infer_signature(example, model.predict(example, verbose=0))
    with mlflow.start_run():
        info = mlflow.tensorflow.log_model(
            model, name="model", signature=signature, pip_requirements=["tensorflow"])
    return register_released(name, info.model_uri, info.run_id)


def log_slow_model(name: str, delay_s: float, log_path: Path) -> str:
    model = RecordingSlowModel(delay_s, str(log_path))
    example = pd.DataFrame({"x": [1.0, 2.0]})
    signature = infer_signature(example, example["x"].to_numpy() * 2.0)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=model, signature=signature,
            pip_requirements=["mlflow"])
    return register_released(name, info.model_uri, info.run_id)


def raw_flight_spec() -> FeatureSpec:
    """A small hand-made spec in the project's shape: vocabularies, scaling, indicators."""
    return FeatureSpec(
        categorical=(
            Categorical("carrier", ("AA", "B6", "DL", "UA"), reference="AA"),
            Categorical("origin", ("EWR", "JFK", "LGA"), reference="EWR"),
            Categorical("hour", tuple(str(hour) for hour in range(5, 23)), reference="8"),
            Categorical("dow", tuple(str(day) for day in range(7)), reference="0"),
        ),
        numeric=(
            Numeric("distance", mean=1000.0, std=600.0),
            Numeric("temp", mean=55.0, std=18.0),
            Numeric("wind_gust", mean=20.0, std=6.0),
            Numeric("days_to_holiday", mean=12.0, std=9.0),
            Numeric("plane_age", mean=12.0, std=7.0),
        ),
        missing=(MissingIndicator("wind_gust_missing", "wind_gust"),
                 MissingIndicator("plane_missing", "plane_age")),
        hashed=(Hashed("tailnum", 16),),
        planes={"N101AA": (2001, 180, "Turbo-fan"), "N202DL": (2012, 120, "Turbo-jet")},
        feature_table="t", feature_table_version=0, request=RAW_FIELDS, derivation=FLIGHTS,
    )


def raw_flight_records(rows: int, seed: int = 0,
                       carriers: tuple[str, ...] = CARRIERS) -> pd.DataFrame:
    """Records with every raw field in its contract dtype; weather and tail numbers have gaps."""
    rng = np.random.default_rng(seed)
    minutes = rng.integers(0, 365 * 24 * 60, rows)
    records = pd.DataFrame({
        "carrier": rng.choice(list(carriers), rows).astype(object),
        "origin": rng.choice(["EWR", "JFK", "LGA"], rows).astype(object),
        "dest": rng.choice(["ATL", "ORD", "LAX"], rows).astype(object),
        "tailnum": rng.choice(["N101AA", "N202DL", "N999ZZ"], rows).astype(object),
        "sched_dep_local": pd.Timestamp("2013-01-01 05:00") + pd.to_timedelta(minutes, "min"),
        "distance": rng.uniform(80, 4000, rows),
        **{name: rng.uniform(0, 100, rows) for name in WEATHER_FIELDS},
        **{name: rng.uniform(-10, 40, rows) for name in PRE_DEPARTURE_FIELDS},
    })
    records.loc[rng.random(rows) < 0.4, "wind_gust"] = np.nan
    records.loc[rng.random(rows) < 0.2, "precip"] = np.nan
    records.loc[rng.random(rows) < 0.2, "tailnum"] = None
    records.loc[0, ["wind_gust", "tailnum"]] = [np.nan, None]  # in the example: optional
    return records[list(RAW_FIELDS)]


def log_raw_flight_model(name: str) -> str:
    """Log the project's regression pyfunc through its own code and register it."""
    spec = raw_flight_spec()
    coefficients = np.random.default_rng(0).normal(size=len(spec.linear_feature_names))
    with mlflow.start_run():
        info = log_regression_model("model", spec, coefficients, intercept=3.0,
                                    link="identity", input_example=raw_flight_records(8))
    return register_released(name, info.model_uri, info.run_id)


class ScaledModel(mlflow.pyfunc.PythonModel):
    """`factor` times its one input `input_name`, after sleeping `delay_s` per call.

    Versions with different factors and input names tell from an answer alone which
    version ran; the sleep keeps requests queued, as a swap under load needs.
    """

    def __init__(self, input_name: str, factor: float, delay_s: float):
        self.input_name = input_name
        self.factor = factor
        self.delay_s = delay_s

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        time.sleep(self.delay_s)
        return model_input[self.input_name].to_numpy(dtype=np.float64) * self.factor


def log_scaled_model(name: str, input_name: str, factor: float, delay_s: float) -> str:
    """Log and register a ScaledModel; returns the version."""
    model = ScaledModel(input_name, factor, delay_s)
    example = pd.DataFrame({input_name: [1.0, 2.0]})
    signature = infer_signature(example, example[input_name].to_numpy() * factor)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=model, signature=signature,
            pip_requirements=["mlflow"])
    return register_released(name, info.model_uri, info.run_id)
