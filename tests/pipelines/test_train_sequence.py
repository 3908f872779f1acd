"""``mlpipe step train_sequence`` end to end on a small synthetic sequence table."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pyspark.sql import SparkSession

from pipelines.orchestration.step_runner import run_step
from pipelines.platform.layout import Layout
from pipelines.platform.step import StepContext
from pipelines.training.sequence import TRAIN_SEQUENCE
from tests.conftest import make_config

# The sequence model of conf/datasets/flights/models.yaml.
MODEL_NAME = "origin-delay-forecast"

pytestmark = pytest.mark.slow

HOURS, FEATURES = 24, 2


def windows(rows: int, seed: int) -> pd.DataFrame:
    """Windows of (delay, traffic) per hour whose next value follows the last hours' trend."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (rows, HOURS + 1)).cumsum(axis=1)
    traffic = rng.normal(0, 1, (rows, HOURS))
    window = np.stack([base[:, :HOURS], traffic], axis=2)
    return pd.DataFrame({"window": [[list(step) for step in w] for w in window],
                         "target": 10 * base[:, HOURS] + 5.0,
                         "split": rng.choice(["train", "train", "validation", "test"], rows)})


def test_trains_a_forecaster_that_scores_raw_windows(spark: SparkSession, tmp_path: Path
                                                     ) -> None:
    config = make_config(tmp_path / "data", "train_sequence.epochs=2",
                         "train_sequence.units=[8]", "train_sequence.batch_size=32",
                         "train_sequence.cell=gru", "train_sequence.learning_rate=0.01",
                         "horovod.num_proc=2",
                         "horovod.threads_per_worker=1", "horovod.timeout_s=240")
    table = Layout.of(config).table("silver", "origin_hourly_sequences")
    frames = [windows(800, seed) for seed in (1, 2)]
    for frame in frames:
        write_deltalake(table, pa.Table.from_pandas(frame, preserve_index=False), mode="append")
    rows = pd.concat(frames)
    train_mean = rows.loc[rows["split"] == "train", "target"].mean()
    mean_mae = (rows.loc[rows["split"] == "test", "target"] - train_mean).abs().mean()

    result = run_step(TRAIN_SEQUENCE, config,
                      StepContext(config, session_factory=lambda _: spark))

    assert result.metrics["test_mae"] < 0.8 * mean_mae  # it learned more than the mean
    model = mlflow.pyfunc.load_model(result.models[MODEL_NAME])
    forecast = model.predict(windows(5, seed=9)[["window"]])
    assert forecast.shape == (5,)
    assert np.all(np.isfinite(forecast))
