"""The second dataset, Seattle's daily weather, end to end with no code of its own.

Everything it has is declared in conf/datasets/seattle_weather/ (sources, a SQL feature
view, labels, split, encodings, sequences, four models): `mlpipe run --set
dataset=seattle_weather` on four months ingests with quarantine, builds the tables,
trains every model kind, gates and promotes them and scores the features; then the MLP
champion answers over HTTP with the declared request columns, a rerun skips every step and
newly seeded days are ingested alone. It is the suite's run of the embedded default's
path (local lake, MLflow on SQLite, local Spark); the flights run is the team run,
tests/test_team.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from deltalake import DeltaTable
from mlflow.tracking import MlflowClient

from models.project import PROJECT_ROOT
from pipelines.services.processes import free_port
from tests.conftest import CONF_DIR
from tests.support.processes import BIN_DIR, background
from tests.support.runs import PIPELINE_STEPS, statuses

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

MODELS = ("seattle-high-linear", "seattle-rain-logistic", "seattle-rain-mlp",
          "seattle-high-forecast")
# Four months: to mid-March to train on, three weeks to validate, the rest to test.
SLICE = ("dataset=seattle_weather", "seeding.start=2012-01-01", "seeding.end=2012-04-30",
         "features.train_end=2012-03-15", "features.validation_end=2012-04-05",
         "train_regression.reg_params=[0.0, 0.01]",
         "models.seattle-rain-mlp.params.epochs=2",
         "models.seattle-high-forecast.params.epochs=2",
         "models.seattle-high-forecast.params.batch_size=16", "spark.master=local[2]",
         "spark.conf.spark.sql.shuffle.partitions=2")
# A landing file beside the seeded days: one good day, two bad ones.
EXTRA_DAYS = ("date,precipitation,temp_max,temp_min,wind,weather\n"
              "2012-05-01,0.0,17.2,7.8,3.1,sun\n"
              "2012-05-02,1.5,9.0,12.0,2.0,rain\n"
              "2012-05-03,0.0,15.0,6.1,2.5,hail\n")


def mlpipe(root: Path, *args: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    settings = [arg for item in (*SLICE, f"data_root={root}", *extra)
                for arg in ("--set", item)]
    return subprocess.run([str(BIN_DIR / "mlpipe"), "--config", str(CONF_DIR), *settings,
                           *args], capture_output=True, text=True, timeout=1500, cwd=PROJECT_ROOT)


def table(root: Path, layer: str, name: str) -> DeltaTable:
    return DeltaTable(str(root / "lake" / layer / name))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seattle") / "data"
    landing = root / "landing" / "daily_weather"
    landing.mkdir(parents=True)
    (landing / "late-days.csv").write_text(EXTRA_DAYS)
    result = mlpipe(root, "run")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return root


def test_bad_days_are_quarantined_and_good_ones_ingested(root: Path) -> None:
    bronze = table(root, "bronze", "daily_weather").to_pandas()
    assert len(bronze) == 121 + 1
    quarantine = table(root, "quarantine", "daily_weather").to_pandas()
    assert sorted(quarantine["reason"]) == ["invalid:temp_range", "invalid:weather"]


def test_the_feature_view_builds_labels_split_and_windows(root: Path) -> None:
    days = table(root, "silver", "weather_days").to_pandas().sort_values("date")
    # The last day has no tomorrow, so no label.
    assert len(days) == 122 - 1
    assert {"next_temp_max", "next_precipitation"}.isdisjoint(days.columns)
    assert (days["temp_max_tomorrow"].iloc[:-1].to_numpy()
            == days["temp_max"].iloc[1:].to_numpy()).all()
    assert set(days["split"]) == {"train", "validation", "test"}
    windows = table(root, "silver", "weather_day_sequences").to_pandas()
    assert len(windows) == 122 - 14 and windows["window"].map(len).eq(14).all()


def test_every_model_is_trained_promoted_and_scores_the_features(root: Path) -> None:
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("mlpipe-seattle_weather")
    assert experiment is not None
    for name in MODELS:
        champion = client.get_model_version_by_alias(name, "champion")
        assert champion.tags["mlpipe.decision"] == "promoted"
    predictions = table(root, "gold", "predictions").to_pandas()
    assert set(predictions["model_name"]) == set(MODELS)
    assert (predictions.groupby("model_name").size()["seattle-rain-mlp"]
            == len(table(root, "silver", "weather_days").to_pandas()))


def test_the_champion_serves_the_declared_request(root: Path, tmp_path: Path) -> None:
    port = free_port()
    command = [str(BIN_DIR / "mlpipe"), "--config", str(CONF_DIR), "--set",
               "dataset=seattle_weather", "--set", f"data_root={root}",
               "--set", f"serving.port={port}", "serve", "models:/seattle-rain-mlp@champion"]
    day = {"month": "4", "weather": "rain", "precipitation": 4.1, "temp_max": 11.7,
           "temp_min": 6.1, "wind": 4.3, "temp_max_7d": 12.4, "precipitation_7d": 18.2}
    with background(command, tmp_path / "serve.log",
                    ready_url=f"http://127.0.0.1:{port}/v2/health/ready"):
        answered = httpx.post(f"http://127.0.0.1:{port}/invocations", timeout=30,
                              json={"dataframe_records": [day]})
        without_high = {k: v for k, v in day.items() if k != "temp_max"}
        refused = httpx.post(f"http://127.0.0.1:{port}/invocations", timeout=30,
                             json={"dataframe_records": [without_high]})
    assert answered.status_code == 200, answered.text
    (probability,) = answered.json()["predictions"]
    assert 0.0 <= float(probability) <= 1.0
    assert refused.status_code == 400 and "temp_max" in refused.text, refused.text


def test_a_rerun_with_nothing_new_skips_every_step(root: Path) -> None:
    """The local lake's fingerprints (the embedded default's) see that nothing changed."""
    result = mlpipe(root, "run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert statuses(result.stdout) == dict.fromkeys(PIPELINE_STEPS, "skipped"), result.stdout


def test_new_days_are_ingested_alone(root: Path) -> None:
    """Last in the module: it adds days to the lake the tests above read."""
    before = table(root, "bronze", "daily_weather").to_pandas()
    result = mlpipe(root, "run", "--only", "seed", "--only", "ingest",
                    extra=("seeding.end=2012-05-06",))
    assert result.returncode == 0, result.stderr[-3000:]
    assert statuses(result.stdout) == {"seed": "ran", "ingest": "ran"}
    bronze = table(root, "bronze", "daily_weather").to_pandas()
    new_files = {name.rsplit("/", 1)[-1]
                 for name in set(bronze["_source_file"]) - set(before["_source_file"])}
    assert new_files == {f"2012-05-0{day}.csv" for day in range(1, 7)}
    assert len(bronze) == len(before) + 6
    assert not bronze.duplicated(["_source_file", "date"]).any()
