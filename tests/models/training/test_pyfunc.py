"""The flight MLP's pyfunc as logged by training: MLflow's predict, the direct column path
the server calls, and the server's runtime all give the Keras model's own predictions."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import mlflow
import numpy as np
import pytest

from models.keras.tabular import build_tabular_model
from models.training.encoding import TabularSpecEncoder, encoder_from
from models.training.tracking import RunLog
from serving.runtime import load_runtime
from tests.models.features.test_spec import raw_flights, small_spec

ENCODER = "models.training.encoding:tabular_encoder"
TOLERANCE = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, np.ndarray]]:
    """The pyfunc logged through RunLog.model (as the worker does) and the bare model's
    predictions for raw_flights(), in a throwaway tracking store."""
    import keras

    root = tmp_path_factory.mktemp("pyfunc")
    uri = f"sqlite:///{root}/mlflow.db"
    saved = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("pyfunc", artifact_location=(root / "a").as_uri())
    spec = small_spec()
    encoder = TabularSpecEncoder(spec)
    keras.utils.set_random_seed(0)
    network = build_tabular_model(encoder.categorical_sizes, encoder.numeric_width,
                                  hidden_units=(16,), dropout=0.5, max_embedding_dim=4)
    expected = network.predict(encoder.encode(raw_flights()), verbose=0).reshape(-1)
    run_id = mlflow.MlflowClient().create_run(experiment).info.run_id
    model_uri = RunLog(uri, run_id).model(network, ENCODER, str(spec.save(root / "spec.json")),
                                          raw_flights().head(2))
    yield model_uri, expected
    mlflow.set_tracking_uri(saved)


def test_mlflow_predict_and_the_column_path_equal_the_keras_model(
        logged: tuple[str, np.ndarray]) -> None:
    model_uri, expected = logged
    offline = mlflow.pyfunc.load_model(model_uri)
    raw = raw_flights()
    np.testing.assert_allclose(offline.predict(raw), expected, **TOLERANCE)
    columns = {name: raw[name].to_numpy() for name in raw.columns}
    direct = offline.unwrap_python_model().predict_columns(columns)
    np.testing.assert_allclose(direct, expected, **TOLERANCE)
    assert offline.predict(raw.head(0)).shape == (0,)


def test_served_runtime_takes_the_column_path(logged: tuple[str, np.ndarray],
                                             caplog: pytest.LogCaptureFixture) -> None:
    """Padded to the allowed sizes, as the server calls it, and without MLflow's checks."""
    model_uri, expected = logged
    with caplog.at_level(logging.INFO, logger="serving.runtime"):
        runtime = load_runtime(model_uri, (1, 4), deployment="")  # runs:/, not verified
    assert "predict_columns" in caplog.text
    raw = raw_flights()
    columns = {name: raw[name].to_numpy(dtype=object if raw[name].dtype == object else None)
               for name in raw.columns}
    for rows in (1, 3, 4):
        part = {name: value[:rows] for name, value in columns.items()}
        predictions = runtime.predict(part, rows)["predictions"]
        np.testing.assert_allclose(predictions, expected[:rows], **TOLERANCE)


def test_a_factory_logged_under_its_old_name_still_builds_the_encoder() -> None:
    encoder = encoder_from("models.training.encoding:flight_encoder", small_spec().to_json())
    assert isinstance(encoder, TabularSpecEncoder)
    assert sorted(encoder.columns) == sorted(small_spec().request)
