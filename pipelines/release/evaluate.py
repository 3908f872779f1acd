"""``mlpipe step evaluate``: each new candidate beside the current champion, on the same rows.

Both versions score the configured split of the newest version of the model's table
through their MLflow pyfunc (exactly what serving calls), run on the executors by
MLflow's ``spark_udf`` as batch scoring runs it. The split is read once: both
predictions go into one persisted frame beside the label, and the metrics are Spark
aggregates over it (``spark_metrics``), so nothing that grows with the split reaches
the driver. The scores are written on the candidate version as tags, for ``promote``
to decide on, and the comparison (a table and a plot) is logged to MLflow.

Each version is downloaded once and scored from that copy, after the checks every
loader makes (``serving.provenance``): this deployment's, from the artifact root, its
digest as registered, and for the champion, promoted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import mlflow
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from models.metrics import family_of
from models.model_uri import alias_uri
from models.plots import comparison_plot
from pipelines.platform.config import Config
from pipelines.platform.lake import TableRef, pin, read_table
from pipelines.platform.layout import Layout
from pipelines.platform.model_declarations import ModelDeclaration
from pipelines.platform.registry import (
    CANDIDATE,
    CHAMPION,
    EVAL_CANDIDATE_TAG,
    EVAL_CHAMPION_TAG,
    EVAL_CHAMPION_VERSION_TAG,
    EVAL_METRIC_TAG,
    EVAL_TABLE_TAG,
    NO_CHAMPION,
    deployment_of,
    tag_version,
    verified_copies,
    version_by_alias,
)
from pipelines.platform.spark_metrics import (
    SplitMetrics,
    classification_metrics,
    regression_metrics,
)
from pipelines.platform.step import Step, StepContext, StepResult

log = logging.getLogger(__name__)

LABEL = "label"
# The Spark aggregates of each family of the metric catalogue.
FAMILY_METRICS = {"regression": regression_metrics, "classification": classification_metrics}


def predict_column(spark: SparkSession, uri: str) -> Column:
    """The prediction of the pyfunc at ``uri`` as a column, computed on the executors.

    MLflow's ``spark_udf`` over the inputs the model's signature names, in this
    interpreter's environment (``env_manager="local"``: the executors run the project's
    own venv, which already holds what the models need).
    """
    inputs = mlflow.models.get_model_info(uri).signature.inputs.input_names()
    predict = mlflow.pyfunc.spark_udf(spark, uri, result_type="double", env_manager="local")
    return predict(F.struct(*inputs))


def scored_split(ctx: StepContext, model: ModelDeclaration,
                 copies: dict[str, str]) -> tuple[TableRef, DataFrame]:
    """The label and each version's prediction on the evaluation rows, persisted.

    ``copies`` holds each version's verified local copy, by column name. The rows come
    from the model's table (newest version, pinned); every version scores them in the
    same pass, so the split is read and each model run once however many metrics are
    computed after. The caller unpersists.
    """
    ref = pin(ctx.spark, f"silver.{model.table}", ctx.layout.table("silver", model.table))
    rows = (read_table(ctx.spark, ref).where(f"split = '{ctx.config.evaluate.split}'")
            .where(f"`{model.label}` IS NOT NULL"))
    scored = rows.select(F.col(model.label).cast("double").alias(LABEL),
                         *[predict_column(ctx.spark, local).alias(who)
                           for who, local in copies.items()])
    return ref, scored.persist()


def score_versions(scored: DataFrame, metric: str,
                   versions: Iterable[str]) -> dict[str, SplitMetrics]:
    """All metrics of ``metric``'s family for each version's column of ``scored``."""
    family = FAMILY_METRICS[family_of(metric)]
    return {who: family(scored, LABEL, who) for who in versions}


def evaluate_model(ctx: StepContext, name: str, model: ModelDeclaration
                   ) -> tuple[TableRef, dict[str, float]] | None:
    """Score ``name``'s candidate and champion; None when there is no candidate to judge."""
    candidate = version_by_alias(name, CANDIDATE)
    if candidate is None:
        log.info("%s: no @%s to judge", name, CANDIDATE)
        return None
    champion = version_by_alias(name, CHAMPION)
    versions = {"candidate": candidate}
    if champion is not None and champion.version != candidate.version:
        versions["champion"] = champion
    # The candidate is judged here, so it need not be promoted yet; the champion must be.
    with verified_copies(versions, deployment_of(ctx.config), judged="candidate") as copies:
        ref, scored = scored_split(ctx, model, copies)
        try:
            results = score_versions(scored, model.metric, copies)
        finally:
            scored.unpersist()
    scores = {who: result.values for who, result in results.items()}
    rows = results["candidate"].rows
    metric = model.metric
    tag_version(candidate, {
        EVAL_METRIC_TAG: metric,
        EVAL_CANDIDATE_TAG: repr(scores["candidate"][metric]),
        EVAL_CHAMPION_TAG: repr(scores["champion"][metric]) if "champion" in scores
        else NO_CHAMPION,
        EVAL_CHAMPION_VERSION_TAG: champion.version if champion else NO_CHAMPION,
        EVAL_TABLE_TAG: f"{ref.path}@v{ref.version}",
    })
    table = pd.DataFrame(scores).rename_axis("metric").reset_index()
    mlflow.log_text(table.to_csv(index=False), f"{name}/comparison.csv")
    mlflow.log_figure(comparison_plot(
        {f"{who} v{v.version}": scores[who][metric]
         for who, v in (("candidate", candidate), ("champion", champion)) if who in scores},
        metric, f"{name} on {ctx.config.evaluate.split} (rows {rows:,})"),
        f"{name}/comparison.png")
    log.info("%s: candidate v%s %s %.5f%s", name, candidate.version, metric,
             scores["candidate"][metric],
             f", champion v{champion.version} {scores['champion'][metric]:.5f}"
             if "champion" in scores else ", no champion yet")
    return ref, {f"{name}.{who}.{k}": v for who, s in scores.items() for k, v in s.items()}


def run(ctx: StepContext) -> StepResult:
    inputs: dict[str, TableRef] = {}
    metrics: dict[str, float] = {}
    judged = []
    for name, model in ctx.config.models.items():
        outcome = evaluate_model(ctx, name, model)
        if outcome is not None:
            ref, model_metrics = outcome
            inputs[ref.name] = ref
            metrics.update(model_metrics)
            judged.append(name)
    return StepResult(inputs=list(inputs.values()), metrics=metrics,
                      headline=f"judged {', '.join(judged)}" if judged
                      else "no candidates to judge")


def registry_inputs(config: Config, alias: str) -> list[str]:
    """The aliases a registry step reads, as locations for the skip fingerprint."""
    return [alias_uri(name, alias) for name in config.models]


def judged_tables(config: Config) -> list[str]:
    """The silver tables the judged models score, each once."""
    layout = Layout.of(config)
    return list(dict.fromkeys(layout.table("silver", model.table)
                              for model in config.models.values()))


EVALUATE = Step(
    name="evaluate",
    run=run,
    help="Score each @candidate and the @champion of its model on the same test split.",
    config_sections=("evaluate", "models"),
    inputs=lambda config: [*judged_tables(config), *registry_inputs(config, CANDIDATE),
                           *registry_inputs(config, CHAMPION)],
)
