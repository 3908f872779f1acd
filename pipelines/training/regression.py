"""``mlpipe step train_regression``: our distributed linear and logistic regressions.

They fit the catalogue's ``linear`` and ``logistic`` models. Both read their silver table
at a pinned version, encode it with the feature spec fitted on that version, choose
``regParam`` on the validation split, report on the test split, and log a numpy-only
pyfunc that scores raw records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import mlflow
import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from models.features.spark import encode_spark
from models.features.spec import FeatureSpec
from models.plots import calibration_plot, residuals_plot, roc_plot
from models.regression import LinearRegression, LogisticRegression
from models.regression.blocks import DataError as RegressionDataError
from models.regression.pyfunc import log_regression_model
from pipelines.platform.config import Config
from pipelines.platform.config_schema import TrainRegressionConfig
from pipelines.platform.errors import DataError
from pipelines.platform.lake import TableRef, pin, read_table
from pipelines.platform.layout import Layout
from pipelines.platform.spark_metrics import (
    SplitMetrics,
    classification_metrics,
    regression_metrics,
)
from pipelines.platform.step import Step, StepContext, StepResult

log = logging.getLogger(__name__)

EXAMPLE_ROWS = 5
# Partitions of the training rows per core: even shares, so no core idles at a pass's end.
PARTITIONS_PER_CORE = 4
# The test-split rows the residual, ROC and calibration plots draw, sampled beyond this;
# the logged metrics always use every row.
PLOT_ROWS = 200_000


@dataclass(frozen=True)
class Task:
    """One regression of the model catalogue: what it predicts and how it is chosen.

    ``short`` is the trainer's name, the prefix of its metrics (``linear.test.rmse``).
    """

    model_name: str
    short: str
    label: str
    link: Literal["identity", "logit"]
    selection_metric: str


# Per trainer: the link, and the validation metric that chooses regParam (a proper
# score for each; the promotion gate uses the catalogue's metric instead).
LINKS: dict[str, Literal["identity", "logit"]] = {"linear": "identity", "logistic": "logit"}
SELECTION_METRICS = {"linear": "rmse", "logistic": "log_loss"}


def declared_tasks(config: Config) -> list[Task]:
    """The catalogue's linear and logistic models, as tasks."""
    return [Task(name, model.trainer, model.label, LINKS[model.trainer],
                 SELECTION_METRICS[model.trainer])
            for name, model in config.models_trained_by(*LINKS).items()]


def regression_tables(config: Config) -> list[str]:
    """The silver table the regressions share (none when the catalogue declares none)."""
    return list(dict.fromkeys(model.table
                              for model in config.models_trained_by(*LINKS).values()))


def run(ctx: StepContext) -> StepResult:
    tasks, tables = declared_tasks(ctx.config), regression_tables(ctx.config)
    if not tasks:
        return StepResult(headline="the model catalogue declares no linear or logistic model; "
                                   "nothing to train")
    table = tables[0]  # one table for both: the config check refuses two
    ref = pin(ctx.spark, f"silver.{table}", ctx.layout.table("silver", table))
    spec = FeatureSpec.from_json(
        ctx.layout.storage.read_text(ctx.layout.feature_spec(table, ref.version)))
    labels = list(dict.fromkeys(task.label for task in tasks))
    # On local disk only: at 10x the vectors (8 doubles a feature) outgrow the memory, and a
    # spilled block read back is first unrolled into memory again, which starved the
    # aggregations of execution memory (an out-of-memory failure at 10x).
    encoded = encoded_splits(spec, spread_rows(ref, ctx, [*spec.request, *labels]), labels
                             ).persist(StorageLevel.DISK_ONLY)
    example = (read_table(ctx.spark, ref).where("split = 'test'").select(*spec.request)
               .limit(EXAMPLE_ROWS).toPandas())
    models, metrics = {}, {}
    try:
        for task in tasks:
            uri, task_metrics = train_task(task, encoded, spec, example,
                                           ctx.config.hyperparameters(task.model_name),
                                           ctx.config.seed)
            models[task.model_name] = uri
            metrics.update(task_metrics)
    finally:
        encoded.unpersist()
    judged = {task.short: ctx.config.models[task.model_name].metric for task in tasks}
    scores = [f"{short} test {metric} {metrics[f'{short}.test.{metric}']:.4f}"
              for short, metric in judged.items()]
    return StepResult(inputs=[ref], models=models, metrics=metrics,
                      headline=f"{', '.join(scores)} ({len(spec.linear_feature_names)} features)")


def spread_rows(ref: TableRef, ctx: StepContext, columns: list[str]) -> DataFrame:
    """The columns (request fields and labels) and split of every row, spread evenly over
    the cores.

    The table comes in a few files of uneven size, and a pass is as slow as its largest
    partition. (Caching these rows and encoding on every pass was tried: at 10x each pass
    then cost a quarter more than reading back the cached vectors, even from disk.)
    """
    partitions = ctx.spark.sparkContext.defaultParallelism * PARTITIONS_PER_CORE
    return (read_table(ctx.spark, ref).select(*columns, "split")
            .repartition(partitions))


def encoded_splits(spec: FeatureSpec, rows: DataFrame, labels: list[str]) -> DataFrame:
    """The feature vector, the labels and the split of every labelled row."""
    return encode_spark(spec, rows).select(
        "features", "split", *[F.col(label).cast("double").alias(label) for label in labels])


def estimator(task: Task, settings: TrainRegressionConfig
              ) -> LinearRegression | LogisticRegression:
    """Our estimator for ``task``, with MLlib's parameter names."""
    common = {"featuresCol": "features", "labelCol": task.label,
              "elasticNetParam": settings.elastic_net_param, "maxIter": settings.max_iter,
              "tol": settings.tol}
    return LinearRegression(**common) if task.link == "identity" else LogisticRegression(**common)


def fitted_path(task: Task, train: DataFrame, settings: TrainRegressionConfig
                ) -> Iterator[tuple[float, Any]]:
    """``(regParam, model)`` for each of ``settings.reg_params`` that gives a fit.

    One ``fitMultiple`` call, so the fits share their passes over the data (one R factor
    for the linear path, lockstep Newton steps for the logistic one).
    """
    fitter = estimator(task, settings)
    fits = fitter.fitMultiple(train, [{fitter.regParam: r} for r in settings.reg_params])
    for reg_param in settings.reg_params:  # fitMultiple yields in param-map order
        try:
            _, model = next(fits)
        except RegressionDataError as exc:
            # An unregularised fit of a rank-deficient design (a short slice of data
            # can make a level collinear): the regularised candidates still stand.
            log.warning("%s regParam=%g skipped: %s", task.short, reg_param, exc)
            continue
        yield reg_param, model


def scored(model, df: DataFrame, task: Task) -> DataFrame:
    """Labels ``y`` and predictions ``p`` (minutes, or probability of delay), on Spark."""
    column = (F.col("prediction") if task.link == "identity"
              else vector_to_array(F.col("probability"))[1])
    return model.transform(df).select(F.col(task.label).alias("y"), column.alias("p"))


def judge(task: Task, frame: DataFrame, *, ranking: bool = True) -> SplitMetrics:
    """The task's metrics as Spark aggregates: nothing that grows with the split is collected.

    ``ranking=False`` leaves out the AUC, the one metric that sorts the split.
    """
    if task.link == "identity":
        return regression_metrics(frame, "y", "p")
    return classification_metrics(frame, "y", "p", auc=ranking)


def plotted(frame: DataFrame, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``PLOT_ROWS`` labels and predictions on the driver, for the plots."""
    if rows > PLOT_ROWS:
        frame = frame.sample(fraction=PLOT_ROWS / rows, seed=seed)
    local = frame.toPandas()
    return local["y"].to_numpy(), local["p"].to_numpy()


def train_task(task: Task, encoded: DataFrame, spec: FeatureSpec, example: pd.DataFrame,
               settings: TrainRegressionConfig, seed: int) -> tuple[str, dict[str, float]]:
    """Fit one regression per ``regParam`` on train, keep the best on validation, log it."""
    train = encoded.where("split = 'train'")
    validation = encoded.where("split = 'validation'")
    test = encoded.where("split = 'test'")
    best, best_score, metrics = None, float("inf"), {}
    for reg_param, model in fitted_path(task, train, settings):
        score = judge(task, scored(model, validation, task),
                      ranking=task.selection_metric == "auc").values[task.selection_metric]
        metrics[f"{task.short}.validation.{task.selection_metric}.reg_{reg_param:g}"] = score
        log.info("%s regParam=%g: validation %s %.5f (%d passes)", task.short, reg_param,
                 task.selection_metric, score, model.summary.numPasses)
        if score < best_score:
            best, best_score = (model, reg_param), score
    if best is None:
        raise DataError(f"{task.model_name}: no regParam in {settings.reg_params} gave a fit; "
                        "add a positive one to train_regression.reg_params")
    model, reg_param = best
    test_scores = scored(model, test, task).persist()
    try:
        result = judge(task, test_scores)
        y, p = plotted(test_scores, result.rows, seed)
    finally:
        test_scores.unpersist()
    metrics.update({f"{task.short}.test.{k}": v for k, v in result.values.items()})
    metrics.update({f"{task.short}.num_passes": float(model.summary.numPasses),
                    f"{task.short}.total_iterations": float(model.summary.totalIterations)})
    mlflow.log_params({f"{task.short}.regParam": reg_param,
                       f"{task.short}.elasticNetParam": settings.elastic_net_param})
    log_report(task, model, spec, y, p, settings)
    info = log_regression_model(f"{task.short}_model", spec, model.coefficients.toArray(),
                                model.intercept, task.link, example)
    return info.model_uri, metrics


def log_report(task: Task, model, spec: FeatureSpec, y: np.ndarray, p: np.ndarray,
               settings: TrainRegressionConfig) -> None:
    """The coefficient table (with standard errors and p-values) and the test-split plots."""
    mlflow.log_text(coefficient_table(model, spec).to_csv(index=False),
                    f"{task.short}/coefficients.csv")
    title = task.model_name
    if task.link == "identity":
        mlflow.log_figure(residuals_plot(y, p, title), f"{task.short}/residuals.png")
    else:
        mlflow.log_figure(roc_plot(y, p, title), f"{task.short}/roc.png")
        mlflow.log_figure(calibration_plot(y, p, title, settings.calibration_bins),
                          f"{task.short}/calibration.png")


def coefficient_table(model, spec: FeatureSpec) -> pd.DataFrame:
    """Coefficients and intercept, with standard errors, test statistics and p-values.

    Inference is only defined for the unregularised fit; a ridge or elastic-net
    winner gets its coefficients with the inference columns left empty.
    """
    values = [*model.coefficients.toArray(), model.intercept]
    table = pd.DataFrame({"feature": [*spec.linear_feature_names, "(intercept)"],
                          "coefficient": values})
    summary = model.summary
    try:
        table["std_error"] = summary.coefficientStandardErrors
        table["statistic"] = summary.tValues if hasattr(summary, "tValues") \
            else summary.zValues
        table["p_value"] = summary.pValues
    except ValueError as exc:
        log.info("no inference columns in the coefficient table: %s", exc)
    return table


TRAIN_REGRESSION = Step(
    name="train_regression",
    run=run,
    help="Train the catalogue's distributed linear and logistic regressions.",
    config_sections=("train_regression", "seed", "models"),
    inputs=lambda config: [Layout.of(config).table("silver", table)
                           for table in regression_tables(config)],
    registers=lambda config: list(config.models_trained_by(*LINKS)),
)
