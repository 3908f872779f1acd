"""``mlpipe step train_deep`` end to end: a small silver table, real Horovod workers, MLflow.

The table and its feature spec are written here (not by the features step) so the
test pins exactly what it trains on; the Spark launcher trains the model and the
logged pyfunc scores raw flight records.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pyspark.sql import SparkSession

from models.features.fields import FLIGHTS
from models.features.spec import Categorical, FeatureSpec, Hashed, Numeric
from pipelines.features.flights import PRE_DEPARTURE_FIELDS, WEATHER_FIELDS
from pipelines.orchestration.step_runner import run_step
from pipelines.platform.config import Config
from pipelines.platform.layout import Layout
from pipelines.platform.step import StepContext
from pipelines.training.deep import TRAIN_DEEP
from tests.conftest import make_config
from tests.support.flights import RAW_FIELDS

pytestmark = pytest.mark.slow

MODEL_NAME = "flight-delay-mlp"  # the mlp model of conf/datasets/flights/models.yaml

CARRIERS, ORIGINS, DESTS = ["AA", "B6", "DL", "UA"], ["EWR", "JFK", "LGA"], ["ATL", "BOS", "ORD"]
SMALL_RUN = ("train_deep.epochs=2", "train_deep.batch_size=32", "train_deep.hidden_units=[16]",
             "horovod.num_proc=2", "horovod.threads_per_worker=1", "horovod.timeout_s=240")


def raw_flights(rows: int, seed: int) -> pd.DataFrame:
    """Raw request fields and labels; late evening departures of carrier B6 run late."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "carrier": rng.choice(CARRIERS, rows), "origin": rng.choice(ORIGINS, rows),
        "dest": rng.choice(DESTS, rows),
        "sched_dep_local": pd.Timestamp("2013-03-01") + pd.to_timedelta(
            rng.integers(0, 60 * 24 * 30, rows), unit="min"),
        "distance": rng.uniform(200, 2000, rows), "tailnum": rng.choice(["N1", "N2", None], rows),
        **{name: rng.normal(50, 10, rows) for name in WEATHER_FIELDS},
        **dict.fromkeys(PRE_DEPARTURE_FIELDS, 0.0)})
    late = (frame["carrier"] == "B6").to_numpy() & (frame["sched_dep_local"].dt.hour >= 17)
    frame["arr_delay"] = np.where(late, 40.0, 0.0) + rng.normal(0, 10, rows)
    frame["is_delayed"] = (frame["arr_delay"] > 15).astype("int32")
    frame["sched_dep_local"] = frame["sched_dep_local"].astype("datetime64[us]")
    frame["split"] = rng.choice(["train", "train", "train", "validation", "test"], rows)
    return frame


def small_spec(table: str) -> FeatureSpec:
    return FeatureSpec(
        categorical=(Categorical("carrier", tuple(CARRIERS), "AA"),
                     Categorical("origin", tuple(ORIGINS), "EWR"),
                     Categorical("hour", tuple(str(h) for h in range(24)), "12")),
        numeric=(Numeric("distance", 1100.0, 500.0), Numeric("temp", 50.0, 10.0)),
        missing=(), hashed=(Hashed("tailnum", 8),), planes={}, feature_table=table,
        feature_table_version=0, request=RAW_FIELDS, derivation=FLIGHTS)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with ``lake/silver/flight_features`` v1 (two files) and its spec."""
    root = tmp_path_factory.mktemp("train-deep")
    config = make_config(root)
    layout = Layout.of(config)
    table = layout.table("silver", "flight_features")
    for seed in (1, 2):
        write_deltalake(table, pa.Table.from_pandas(raw_flights(1500, seed), preserve_index=False),
                        mode="append")
    small_spec(table).save(layout.feature_spec("flight_features", 1))
    return root


def train(spark: SparkSession, config: Config):
    return run_step(TRAIN_DEEP, config, StepContext(config, session_factory=lambda _: spark))


def test_spark_launcher_trains_and_logs_a_pyfunc_that_scores_raw_flights(
        spark: SparkSession, data_root: Path) -> None:
    # The local launcher runs the same worker; it is covered by tests/models/training and
    # by the train_sequence step test, so this one only pays for the Spark launch.
    config = make_config(data_root, *SMALL_RUN, "horovod.launcher=spark")
    result = train(spark, config)

    assert [(ref.name, ref.version) for ref in result.inputs] == [
        ("silver.flight_features", 1)]
    assert result.metrics["test_auc"] > 0.7  # the B6-evening pattern is easy to learn
    assert result.metrics["epochs_run"] == 2
    model = mlflow.pyfunc.load_model(result.models[MODEL_NAME])
    raw = raw_flights(20, seed=9)[list(RAW_FIELDS)]
    scores = model.predict(raw)
    assert scores.shape == (20,)
    assert np.all((scores >= 0) & (scores <= 1))
    run = mlflow.get_run(result.models[MODEL_NAME].split("/")[1])
    assert run.data.params["workers"] == "2"
    assert "val_auc" in run.data.metrics
