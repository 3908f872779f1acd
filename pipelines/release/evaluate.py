"""``mlpipe step evaluate``: each new candidate beside the current champion, on the same rows.

Both versions score the configured split of the newest version of the model's table
through their MLflow pyfunc (exactly what serving and batch scoring call). The scores
are written on the candidate version as tags, for ``promote`` to decide on, and the
comparison (a table and a plot) is logged to MLflow.
"""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from models.metrics import classification_metrics, regression_metrics
from models.plots import comparison_plot
from pipelines.platform.config import Config, ModelJudgement
from pipelines.platform.lake import TableRef, pin, read_table
from pipelines.platform.layout import Layout
from pipelines.platform.registry import (
    CANDIDATE,
    CHAMPION,
    model_uri,
    tag_version,
    version_by_alias,
)
from pipelines.platform.step import Step, StepContext, StepResult

log = logging.getLogger(__name__)

REGRESSION_METRICS = ("rmse", "mae", "r2")


def score_version(version: ModelVersion, frame: pd.DataFrame, label: str,
                  metric: str) -> dict[str, float]:
    """All metrics of ``metric``'s family for ``version`` on ``frame``."""
    model = mlflow.pyfunc.load_model(model_uri(version))
    inputs = model.metadata.get_input_schema().input_names()
    predictions = np.asarray(model.predict(frame[inputs]), dtype="float64").reshape(-1)
    y = frame[label].to_numpy(dtype="float64")
    if metric in REGRESSION_METRICS:
        return regression_metrics(y, predictions)
    return classification_metrics(y, predictions)


def split_frame(ctx: StepContext, judgement: ModelJudgement) -> tuple[TableRef, pd.DataFrame]:
    """The evaluation rows of the model's table (newest version, pinned) on the driver."""
    ref = pin(ctx.spark, f"silver.{judgement.table}", ctx.layout.table("silver", judgement.table))
    rows = read_table(ctx.spark, ref).where(f"split = '{ctx.config.evaluate.split}'")
    return ref, rows.where(f"`{judgement.label}` IS NOT NULL").toPandas()


def evaluate_model(ctx: StepContext, name: str, judgement: ModelJudgement
                   ) -> tuple[TableRef, dict[str, float]] | None:
    """Score ``name``'s candidate and champion; None when there is no candidate to judge."""
    candidate = version_by_alias(name, CANDIDATE)
    if candidate is None:
        log.info("%s: no @%s to judge", name, CANDIDATE)
        return None
    champion = version_by_alias(name, CHAMPION)
    ref, frame = split_frame(ctx, judgement)
    scores = {"candidate": score_version(candidate, frame, judgement.label, judgement.metric)}
    if champion is not None and champion.version != candidate.version:
        scores["champion"] = score_version(champion, frame, judgement.label, judgement.metric)
    metric = judgement.metric
    tag_version(candidate, {
        "mlpipe.eval.metric": metric,
        "mlpipe.eval.candidate": repr(scores["candidate"][metric]),
        "mlpipe.eval.champion": repr(scores["champion"][metric]) if "champion" in scores
        else "none",
        "mlpipe.eval.champion_version": champion.version if champion else "none",
        "mlpipe.eval.table": f"{ref.path}@v{ref.version}",
    })
    table = pd.DataFrame(scores).rename_axis("metric").reset_index()
    mlflow.log_text(table.to_csv(index=False), f"{name}/comparison.csv")
    mlflow.log_figure(comparison_plot(
        {f"{who} v{v.version}": scores[who][metric]
         for who, v in (("candidate", candidate), ("champion", champion)) if who in scores},
        metric, f"{name} on {ctx.config.evaluate.split} (rows {len(frame):,})"),
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
    for name, judgement in ctx.config.evaluate.models.items():
        outcome = evaluate_model(ctx, name, judgement)
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
    return [f"models:/{name}@{alias}" for name in config.evaluate.models]


def judged_tables(config: Config) -> list[str]:
    """The silver tables the judged models score, each once."""
    layout = Layout.of(config)
    return list(dict.fromkeys(layout.table("silver", judgement.table)
                              for judgement in config.evaluate.models.values()))


EVALUATE = Step(
    name="evaluate",
    run=run,
    help="Score each @candidate and the @champion of its model on the same test split.",
    config_sections=("evaluate",),
    inputs=lambda config: [*judged_tables(config), *registry_inputs(config, CANDIDATE),
                           *registry_inputs(config, CHAMPION)],
)
