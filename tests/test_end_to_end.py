"""`mlpipe run` end to end on ten days of flights, as real processes, as a user runs it.

One pipeline run builds every table, trains and registers the four models, promotes
them and scores the features; then a rerun with no new data must skip every step,
newly seeded days must be ingested alone, and a champion must answer over HTTP.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from deltalake import DeltaTable
from mlflow.tracking import MlflowClient

from pipelines.services.processes import free_port
from tests.conftest import CONF_DIR, REPO_ROOT
from tests.support.flights import RAW_FIELDS
from tests.support.processes import BIN_DIR, background

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

MODELS = ("flight-delay-linear", "flight-delay-logistic", "flight-delay-mlp",
          "origin-delay-forecast")
STEPS = ("seed", "ingest", "features", "train_regression", "train_deep", "train_sequence",
         "evaluate", "promote", "batch_score")
# Ten days: six to train on, two to validate, two to test.
SLICE = ("seeding.start=2013-01-01", "seeding.end=2013-01-10",
         "features.train_end=2013-01-06", "features.validation_end=2013-01-08",
         "train_regression.reg_params=[0.0, 0.01]", "train_deep.epochs=1",
         "train_deep.batch_size=64",
         "train_sequence.epochs=1", "train_sequence.batch_size=16",
         "spark.master=local[2]", "spark.conf.spark.sql.shuffle.partitions=2")


@dataclass
class Pipeline:
    root: Path

    def mlpipe(self, *args: str, extra: tuple[str, ...] = (), timeout: int = 1500
               ) -> subprocess.CompletedProcess:
        settings = [arg for item in (*SLICE, f"data_root={self.root}", *extra)
                    for arg in ("--set", item)]
        return subprocess.run([str(BIN_DIR / "mlpipe"), "--config", str(CONF_DIR), *settings,
                               *args], capture_output=True, text=True, timeout=timeout,
                              cwd=REPO_ROOT)

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow' / 'mlflow.db'}"

    def table(self, layer: str, name: str) -> DeltaTable:
        return DeltaTable(str(self.root / "lake" / layer / name))


def statuses(output: str) -> dict[str, str]:
    """Step -> status from the table `mlpipe run` prints at the end."""
    rows = [line.split() for line in output.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) > 1 and row[0] in STEPS}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    pipeline = Pipeline(tmp_path_factory.mktemp("e2e") / "data")
    result = pipeline.mlpipe("run")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert statuses(result.stdout) == dict.fromkeys(STEPS, "ran"), result.stdout
    return pipeline


def test_tables_are_written(pipeline: Pipeline) -> None:
    flights = pipeline.table("bronze", "flights").to_pandas()
    assert flights["_run_id"].notna().all()
    features = pipeline.table("silver", "flight_features").to_pandas()
    assert set(features["split"]) == {"train", "validation", "test"}
    assert len(features) <= len(flights)
    predictions = pipeline.table("gold", "predictions").to_pandas()
    assert set(predictions["model_name"]) == set(MODELS)
    per_model = predictions.groupby("model_name").size()
    assert per_model["flight-delay-mlp"] == len(features)
    assert not predictions.duplicated(["model_name", "model_version", "row_key"]).any()


def test_runs_are_nested_and_models_are_champions(pipeline: Pipeline) -> None:
    client = MlflowClient(pipeline.tracking_uri, registry_uri=pipeline.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("mlpipe-flights").experiment_id])
    parents = [r for r in runs if r.info.run_name == "pipeline"]
    assert len(parents) == 1
    children = {r.info.run_name: r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id}
    assert set(STEPS) <= set(children)
    assert "input.silver.flight_features.version" in children["train_regression"].data.params
    for name in MODELS:
        champion = client.get_model_version_by_alias(name, "champion")
        assert champion.tags["mlpipe.decision"] == "promoted"
        assert "candidate" not in client.get_registered_model(name).aliases


def test_champion_answers_over_http(pipeline: Pipeline, tmp_path: Path) -> None:
    port = free_port()
    record = (pipeline.table("silver", "flight_features").to_pandas()
              .query("split == 'test'").iloc[:1])
    raw = record[list(RAW_FIELDS)]
    command = [str(BIN_DIR / "mlpipe"), "--config", str(CONF_DIR),
               "--set", f"data_root={pipeline.root}", "--set", f"serving.port={port}",
               "serve", "models:/flight-delay-mlp@champion"]
    with background(command, tmp_path / "serve.log",
                    ready_url=f"http://127.0.0.1:{port}/v2/health/ready"):
        split = json.loads(raw.to_json(orient="split", date_format="iso", index=False))
        response = httpx.post(f"http://127.0.0.1:{port}/invocations", timeout=30,
                              json={"dataframe_split": split})
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    assert 0.0 <= float(prediction) <= 1.0


def test_second_run_skips_every_step(pipeline: Pipeline) -> None:
    result = pipeline.mlpipe("run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert statuses(result.stdout) == dict.fromkeys(STEPS, "skipped"), result.stdout


def test_new_days_are_ingested_alone(pipeline: Pipeline) -> None:
    before = pipeline.table("bronze", "flights").to_pandas()
    result = pipeline.mlpipe("run", "--only", "seed", "--only", "ingest",
                             extra=("seeding.end=2013-01-12",))
    assert result.returncode == 0, result.stderr[-3000:]
    assert statuses(result.stdout) == {"seed": "ran", "ingest": "ran"}
    bronze = pipeline.table("bronze", "flights").to_pandas()
    new_files = set(bronze["_source_file"]) - set(before["_source_file"])
    assert len(bronze) > len(before)
    assert new_files and all("2013-01-11" in f or "2013-01-12" in f for f in new_files)
    assert not bronze.duplicated(["_source_file", "year", "month", "day", "flight", "carrier",
                                  "sched_dep_time"]).any()
