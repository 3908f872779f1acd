"""`mlpipe --env team run` end to end on real shared parts, as a team runs it.

The Spark steps run on a standalone cluster (a master, two workers), the lake lives on an
S3 object store (SeaweedFS), and runs and models go to one MLflow tracking server backed
by PostgreSQL, with its artifacts in the object store. Nothing may land in a local folder:
the working directory the run starts in must stay empty. The run is started twice at
once, as two team members might: one runs, the other exits at once naming the holder of
the root's lock.

This is the suite's one flights run of the whole pipeline: tables, nested runs, champions,
a champion over HTTP and a rerun that skips everything are checked on it. The embedded
default's path (local lake, MLflow on SQLite, local Spark), with new days ingested alone,
runs end to end in tests/test_second_dataset.py.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from pipelines.services import TeamServices
from pipelines.services.processes import free_port
from pipelines.services.spark_cluster import SparkCluster
from tests.support.flights import RAW_FIELDS
from tests.support.processes import background
from tests.support.runs import PIPELINE_STEPS, statuses
from tests.support.team import TeamRoot, team_credentials  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400),
              pytest.mark.usefixtures("team_credentials")]

MODELS = ("flight-delay-linear", "flight-delay-logistic", "flight-delay-mlp",
          "origin-delay-forecast")


@dataclass
class RacedRun:
    """Two `mlpipe run` started at once on one root: the one that ran, and the other."""

    root: TeamRoot
    winner: Path  # the folder of its stdout and stderr
    loser: Path
    winner_ended_s: float
    loser_ended_s: float


def race(root: TeamRoot, logs: Path) -> tuple[list[int], list[Path], list[float]]:
    """Start two runs side by side; their exit codes, log folders and end times."""
    folders = [logs / f"run-{i}" for i in range(2)]
    started = time.monotonic()
    runs = [root.start("run", logs=folder) for folder in folders]
    ended: dict[int, float] = {}
    deadline = started + 1500
    while len(ended) < 2 and time.monotonic() < deadline:
        ended |= {i: time.monotonic() - started for i, run in enumerate(runs)
                  if i not in ended and run.poll() is not None}
        time.sleep(0.1)
    codes = []
    for run in runs:
        try:
            codes.append(run.wait(timeout=10))
        except subprocess.TimeoutExpired:
            run.kill()
            codes.append(run.wait())
    return codes, folders, [ended.get(i, float("inf")) for i in range(2)]


@pytest.fixture(scope="module")
def team_race(team_services: TeamServices, spark_cluster: SparkCluster,
             tmp_path_factory: pytest.TempPathFactory) -> RacedRun:
    root = TeamRoot(team_services, tmp_path_factory.mktemp("team") / "workdir",
                    spark_master=spark_cluster.url)
    codes, folders, ended = race(root, root.workdir.parent / "logs")
    assert sorted(codes) == [0, 1], [(f / "stderr").read_text()[-4000:] for f in folders]
    winner, loser = codes.index(0), codes.index(1)
    output = (folders[winner] / "stdout").read_text()
    assert statuses(output) == dict.fromkeys(PIPELINE_STEPS, "ran"), output
    return RacedRun(root, folders[winner], folders[loser], ended[winner], ended[loser])


@pytest.fixture(scope="module")
def team_run(team_race: RacedRun) -> TeamRoot:
    """The root the winning run built."""
    return team_race.root


def test_the_second_of_two_runs_at_once_exits_at_once_naming_the_holder(
        team_race: RacedRun) -> None:
    refused = (team_race.loser / "stderr").read_text()
    assert "another pipeline run holds" in refused and "pid" in refused, refused[-2000:]
    assert team_race.root.root in refused
    assert team_race.loser_ended_s < team_race.winner_ended_s / 2, "it waited for the winner"
    assert statuses((team_race.loser / "stdout").read_text()) == {}


def test_the_lake_lives_on_the_object_store(team_run: TeamRoot) -> None:
    assert len([f for f in team_run.files("landing", "flights") if f.endswith(".csv")]) == 6
    for layer, table in (("bronze", "flights"), ("bronze", "weather"),
                         ("silver", "flight_features"), ("gold", "predictions")):
        assert any(f.endswith(".parquet") for f in team_run.files("lake", layer, table)), table
    specs = team_run.files("lake", "silver", "_specs", "flight_features")
    assert specs and all(name.startswith("v") and name.endswith(".json") for name in specs)
    assert team_run.storage.exists(f"{team_run.root}/state/pipeline_state.json")
    training = team_run.files("training", "train_deep")
    assert {"task.json", "checkpoint.npz", "rank-0.json", "rank-1.json"} <= set(training)
    # The pipeline released its lock, and nothing was written to a local folder.
    assert not team_run.storage.exists(f"{team_run.root}/state/pipeline.lock")
    assert list(team_run.workdir.iterdir()) == []


def test_tables_are_written_and_predictions_cover_every_model(team_run: TeamRoot) -> None:
    flights = team_run.table("bronze", "flights")
    assert flights["_run_id"].notna().all()
    features = team_run.table("silver", "flight_features")
    assert set(features["split"]) == {"train", "validation", "test"}
    assert len(features) <= len(flights)
    predictions = team_run.table("gold", "predictions")
    assert set(predictions["model_name"]) == set(MODELS)
    assert (predictions["model_name"] == "flight-delay-mlp").sum() == len(features)
    assert not predictions.duplicated(["model_name", "model_version", "row_key"]).any()


def test_spark_steps_ran_on_the_cluster(team_run: TeamRoot, spark_cluster: SparkCluster) -> None:
    names = [app["name"] for app in spark_cluster.master.status()["completedapps"]]
    assert team_run.name in names


def test_runs_models_and_artifacts_are_on_the_tracking_server(team_run: TeamRoot) -> None:
    uri = team_run.services.tracking.uri
    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(team_run.name)
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.info.run_name == "pipeline"]
    children = {r.info.run_name: r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(PIPELINE_STEPS) <= set(children)
    assert "input.silver.flight_features.version" in children["train_regression"].data.params
    for name in MODELS:
        champion = client.get_model_version_by_alias(name, "champion")
        assert champion.tags["mlpipe.decision"] == "promoted"
        assert "candidate" not in client.get_registered_model(name).aliases
    # The server proxies artifacts into the object store: the runs' files are there.
    store = team_run.services.store.client()
    listed = store.list_objects_v2(Bucket=team_run.services.bucket, Prefix="mlflow-artifacts/")
    assert listed.get("KeyCount", 0) > 0


def test_a_rerun_with_nothing_new_skips_every_step(team_run: TeamRoot) -> None:
    result = team_run.mlpipe("run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert statuses(result.stdout) == dict.fromkeys(PIPELINE_STEPS, "skipped"), result.stdout


def test_the_champion_is_served_from_the_team_server(team_run: TeamRoot, tmp_path: Path) -> None:
    port = free_port()
    test_rows = team_run.table("silver", "flight_features").query("split == 'test'")
    raw = test_rows[list(RAW_FIELDS)].iloc[:2]
    command = team_run.command("serve", "models:/flight-delay-mlp@champion",
                               extra=(f"serving.port={port}",))
    with background(command, tmp_path / "serve.log",
                    ready_url=f"http://127.0.0.1:{port}/v2/health/ready",
                    cwd=team_run.workdir, env=team_run.services.describe("serving")):
        split = json.loads(raw.to_json(orient="split", date_format="iso", index=False))
        response = httpx.post(f"http://127.0.0.1:{port}/invocations", timeout=30,
                              json={"dataframe_split": split})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 2 and all(0.0 <= float(p) <= 1.0 for p in predictions)

