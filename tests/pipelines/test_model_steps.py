"""train_regression, evaluate, promote and batch_score on the small seeded lake.

The regression pyfunc must score raw flights exactly as Spark's transform does;
the gate must promote a first candidate and refuse a worse one; batch scoring must
not duplicate rows when rerun.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

from lab.registry import register_released
from models.features.spark import encode_spark
from models.metrics import classification_metrics, regression_metrics
from models.regression import LinearRegressionModel, LogisticRegressionModel
from pipelines.features.step import FEATURES
from pipelines.orchestration.step_runner import record_result
from pipelines.platform.config import Config
from pipelines.platform.lake import read_table
from pipelines.platform.layout import Layout
from pipelines.platform.registry import (
    EVAL_CANDIDATE_TAG,
    EVAL_CHAMPION_TAG,
    NO_CHAMPION,
    deployment_of,
)
from pipelines.platform.step import StepContext, StepResult
from pipelines.platform.tracking import start_run
from pipelines.release.batch_score import BATCH_SCORE, PREDICTIONS
from pipelines.release.evaluate import EVALUATE
from pipelines.release.promote import PROMOTE, decide
from pipelines.training import regression
from pipelines.training.regression import TRAIN_REGRESSION
from tests.conftest import CONF_DIR, make_config
from tests.pipelines.conftest import SeededLake, saved_spec, step_context
from tests.support.flights import FEATURE_TABLE, RAW_FIELDS

LINEAR, LOGISTIC = "flight-delay-linear", "flight-delay-logistic"


def run_tracked(config: Config, spark: SparkSession, step_run, name: str) -> StepResult:
    """Run a step function under its own MLflow run, registering what it trained."""
    ctx = StepContext(config, session_factory=lambda _config: spark)
    with start_run(config, name) as run:
        ctx.run_id = run.info.run_id
        result = step_run(ctx)
        record_result(result, run.info.run_id, deployment_of(config))
    return result


@pytest.fixture(scope="module")
def regression_conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's conf with only the two regressions in the catalogue: the neural models
    have their own tests."""
    conf = tmp_path_factory.mktemp("regressions") / "conf"
    shutil.copytree(CONF_DIR, conf, ignore=shutil.ignore_patterns("local.yaml"))
    catalogue = conf / "datasets" / "flights" / "models.yaml"
    models = yaml.safe_load(catalogue.read_text())["models"]
    catalogue.write_text(yaml.safe_dump({"models": {name: models[name]
                                                    for name in (LINEAR, LOGISTIC)}}))
    return conf


@pytest.fixture(scope="module")
def lake_config(seeded_lake: SeededLake, regression_conf: Path) -> Iterator[Config]:
    yield make_config(Path(seeded_lake.config.data_root),
                      "train_regression.reg_params=[0.0, 0.1]", conf_dir=regression_conf)
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def trained(lake_config: Config, spark: SparkSession) -> StepResult:
    return run_tracked(lake_config, spark, TRAIN_REGRESSION.run, "train_regression")


def test_regressions_reproduce_the_hand_written_flights_code(
        seeded_lake: SeededLake, regression_conf: Path, spark: SparkSession,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """On the slice, the declared feature view with the features the flights code had
    gives the test metrics that code gave before the view was declared
    (tests/pipelines/flights_slice_golden.json), to 1e-9."""
    golden = json.loads(Path(__file__).with_name("flights_slice_golden.json").read_text())
    root = tmp_path_factory.mktemp("port") / "data"
    shutil.copytree(Path(seeded_lake.config.data_root) / "lake" / "bronze",
                    root / "lake" / "bronze")
    numeric = [n["name"] for n in golden["spec"]["numeric"]]
    config = make_config(root, f"features.numeric=[{', '.join(numeric)}]",
                         "train_regression.reg_params=[0.0, 0.1]", conf_dir=regression_conf)
    FEATURES.run(step_context(config, spark, "run-port"))
    trained = run_tracked(config, spark, TRAIN_REGRESSION.run, "train_regression")
    for key, value in golden["regression_metrics"].items():
        assert trained.metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_train_regression_logs_metrics_and_models(trained: StepResult) -> None:
    assert set(trained.models) == {LINEAR, LOGISTIC}
    for key in ("linear.test.rmse", "linear.test.mae", "linear.test.r2", "logistic.test.auc",
                "logistic.test.log_loss", "logistic.test.accuracy", "logistic.test.brier"):
        assert np.isfinite(trained.metrics[key]), key
    assert trained.metrics["linear.num_passes"] >= 1
    assert trained.inputs[0].name == f"silver.{FEATURE_TABLE}"
    client = MlflowClient()
    run_id = client.get_model_version_by_alias(LINEAR, "candidate").run_id
    artifacts = {a.path for a in client.list_artifacts(run_id, "linear")}
    assert {"linear/coefficients.csv", "linear/residuals.png"} <= artifacts
    assert {"logistic/roc.png", "logistic/calibration.png"} <= {
        a.path for a in client.list_artifacts(run_id, "logistic")}


def test_plots_draw_a_bounded_seeded_sample_of_a_large_split(
        spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = spark.range(2000).selectExpr("cast(id as double) as y", "id / 2000.0 as p")
    monkeypatch.setattr(regression, "PLOT_ROWS", 200)
    y, p = regression.plotted(frame, 2000, seed=7)
    assert 100 <= len(y) <= 300 and len(p) == len(y)
    assert np.array_equal(regression.plotted(frame, 2000, seed=7)[0], y)
    assert len(regression.plotted(frame.limit(150), 150, seed=7)[0]) == 150


@pytest.mark.parametrize(("name", "model_class", "column"), [
    (LINEAR, LinearRegressionModel, "prediction"),
    (LOGISTIC, LogisticRegressionModel, "probability"),
])
def test_pyfunc_equals_spark_transform(trained: StepResult, lake_config: Config,
                                       spark: SparkSession, name: str, model_class,
                                       column: str) -> None:
    ref = trained.inputs[0]
    rows = read_table(spark, ref).where("split = 'test'").orderBy("flight", "carrier").limit(40)
    pyfunc = mlflow.pyfunc.load_model(trained.models[name])
    served = pyfunc.predict(rows.select(*RAW_FIELDS).toPandas())

    fitted = pyfunc.unwrap_python_model()
    spark_model = model_class(fitted.coefficients, fitted.intercept)
    spec = saved_spec(lake_config, ref.version)
    transformed = spark_model.transform(encode_spark(spec, rows)).toPandas()[column]
    expected = np.array([v[1] if column == "probability" else v for v in transformed])
    np.testing.assert_allclose(served, expected, rtol=1e-6, atol=1e-9)


def test_gate_promotes_first_candidate_then_refuses_a_worse_one(
        trained: StepResult, lake_config: Config, spark: SparkSession) -> None:
    first = run_tracked(lake_config, spark, EVALUATE.run, "evaluate")
    assert_driver_side_scores(first, trained, lake_config, spark)
    # What evaluate wrote on the candidate is what the gate reads.
    client = MlflowClient()
    tags = client.get_model_version_by_alias(LINEAR, "candidate").tags
    assert tags[EVAL_CHAMPION_TAG] == NO_CHAMPION
    assert float(tags[EVAL_CANDIDATE_TAG]) == first.metrics[f"{LINEAR}.candidate.rmse"]
    assert decide(tags, lake_config.promote.margin) == (
        True, f"no champion yet (rmse {first.metrics[f'{LINEAR}.candidate.rmse']:.5f})")
    result = run_tracked(lake_config, spark, PROMOTE.run, "promote")
    assert result.metrics["promoted"] == 2.0
    champion = client.get_model_version_by_alias(LINEAR, "champion")
    assert champion.tags["mlpipe.decision"] == "promoted"

    # A worse candidate: the same model predicting an hour later (its squared error grows
    # by about 60^2 whatever the slice; halving the coefficients was not always worse).
    worse = run_tracked(lake_config, spark, lambda ctx: shifted_linear(ctx, trained),
                        "train_regression")
    second = run_tracked(lake_config, spark, EVALUATE.run, "evaluate")
    # Both versions score in one pass; each keeps its own column.
    assert second.metrics[f"{LINEAR}.champion.rmse"] == \
        pytest.approx(first.metrics[f"{LINEAR}.candidate.rmse"], rel=1e-12)
    assert second.metrics[f"{LINEAR}.candidate.rmse"] > second.metrics[f"{LINEAR}.champion.rmse"]
    run_tracked(lake_config, spark, PROMOTE.run, "promote")
    candidate = client.get_model_version(LINEAR, worse.metrics["version"])
    assert candidate.tags["mlpipe.decision"] == "rejected"
    assert client.get_model_version_by_alias(LINEAR, "champion").version == champion.version
    assert "candidate" not in client.get_registered_model(LINEAR).aliases

    # A candidate that beat the champion of its evaluation, while @champion moved since
    # (another run promoted a third version): the gate decides nothing on a stale score.
    candidate = client.get_model_version(LINEAR, worse.metrics["version"])
    client.set_model_version_tag(LINEAR, candidate.version, EVAL_CANDIDATE_TAG, "0.0")
    moved = register_released(LINEAR, trained.models[LINEAR],
                              mlflow.models.get_model_info(trained.models[LINEAR]).run_id,
                              deployment_of(lake_config))
    client.set_registered_model_alias(LINEAR, "candidate", candidate.version)
    client.set_registered_model_alias(LINEAR, "champion", moved)
    stale = run_tracked(lake_config, spark, PROMOTE.run, "promote")
    assert stale.metrics["promoted"] == 0.0
    assert str(client.get_model_version_by_alias(LINEAR, "champion").version) == moved
    kept = client.get_model_version_by_alias(LINEAR, "candidate")
    assert kept.version == candidate.version and kept.tags["mlpipe.decision"] == "stale"
    assert f"judged against champion {champion.version}" in kept.tags["mlpipe.decision_reason"]


def assert_driver_side_scores(evaluated: StepResult, trained: StepResult, config: Config,
                              spark: SparkSession) -> None:
    """Evaluate's scores (Spark UDF, Spark aggregates) equal numpy's on driver predictions."""
    split = read_table(spark, trained.inputs[0]).where("split = 'test'").toPandas()
    for name, family in ((LINEAR, regression_metrics), (LOGISTIC, classification_metrics)):
        label = config.models[name].label
        rows = split[split[label].notna()]
        predicted = mlflow.pyfunc.load_model(trained.models[name]).predict(rows[list(RAW_FIELDS)])
        expected = family(rows[label].to_numpy(dtype="float64"),
                          np.asarray(predicted, dtype="float64"))
        assert {key: evaluated.metrics[f"{name}.candidate.{key}"] for key in expected} == \
            pytest.approx(expected, rel=1e-9)


def shifted_linear(ctx: StepContext, trained: StepResult) -> StepResult:
    from models.regression.pyfunc import log_regression_model

    fitted = mlflow.pyfunc.load_model(trained.models[LINEAR]).unwrap_python_model()
    ref = trained.inputs[0]
    spec = saved_spec(ctx.config, ref.version)
    example = read_table(ctx.spark, ref).select(*RAW_FIELDS).limit(2).toPandas()
    info = log_regression_model("linear_model", spec, fitted.coefficients,
                                fitted.intercept + 60.0, "identity", example)
    versions = MlflowClient().search_model_versions(f"name = '{LINEAR}'")
    next_version = max(int(v.version) for v in versions) + 1
    return StepResult(models={LINEAR: info.model_uri}, metrics={"version": next_version})


def test_batch_score_writes_each_champion_once(trained: StepResult, lake_config: Config,
                                               spark: SparkSession) -> None:
    if "champion" not in MlflowClient().get_registered_model(LINEAR).aliases:
        run_tracked(lake_config, spark, EVALUATE.run, "evaluate")
        run_tracked(lake_config, spark, PROMOTE.run, "promote")
    first = run_tracked(lake_config, spark, BATCH_SCORE.run, "batch_score")
    layout = Layout.of(lake_config)
    rows = read_table(spark, layout.table("gold", PREDICTIONS))
    features = read_table(spark, layout.table("silver", FEATURE_TABLE)).count()
    assert rows.count() == 2 * features == first.metrics["prediction_rows"]
    assert {r.model_name for r in rows.select("model_name").distinct().collect()} == \
        {LINEAR, LOGISTIC}
    run_tracked(lake_config, spark, BATCH_SCORE.run, "batch_score")
    rescored = read_table(spark, layout.table("gold", PREDICTIONS))
    assert rescored.count() == 2 * features
