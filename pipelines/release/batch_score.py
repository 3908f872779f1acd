"""``mlpipe step batch_score``: every champion scores the newest features, through Spark.

The champion's MLflow pyfunc runs inside a vectorised pandas UDF (MLflow's
``spark_udf``), the same model object serving loads, from a copy downloaded and
checked as serving checks it (promoted, this deployment's, as registered). Rows land in
``lake/gold/predictions`` with the model's name and version; the write is a
MERGE on (model, version, row key), so rerunning on the same data and model
version adds nothing, and new days add only their rows.
"""

from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.platform.config import Config
from pipelines.platform.lake import TableRef, merge, pin, read_table
from pipelines.platform.registry import (
    CHAMPION,
    deployment_of,
    model_uri,
    verified_copies,
    version_by_alias,
)
from pipelines.platform.step import Step, StepContext, StepResult
from pipelines.release.evaluate import judged_tables, predict_column, registry_inputs

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
PREDICTION_KEYS = ("model_name", "model_version", "row_key")


def row_keys(config: Config) -> dict[str, list[str]]:
    """The columns that identify a row of each silver table the dataset declares."""
    keys = {config.features.table: list(config.features.keys)} if config.features else {}
    if config.sequences is not None:
        keys[config.sequences.table] = config.sequences.keys
    return keys


def row_key(keys: list[str]) -> Column:
    """The key columns as one JSON object: unambiguous where joining their text is not.

    Joined with a separator, ("a|b", "c") and ("a", "b|c") read alike, and a NULL
    vanishes, so (NULL, "x") is ("x", NULL); the insert-only MERGE then never scores the
    second row. JSON quotes and escapes each value and names the fields that are set.
    """
    return F.to_json(F.struct(*keys))


def score_table(df: DataFrame, ref: TableRef, table: str, keys: list[str], name: str,
                version: str, local: str, run_id: str | None) -> DataFrame:
    """``df``'s rows with the champion's prediction and where it came from; ``local`` is
    the champion's verified copy."""
    return df.select(
        F.lit(name).alias("model_name"), F.lit(int(version)).alias("model_version"),
        row_key(keys).alias("row_key"),
        F.lit(table).alias("table"), F.lit(ref.version).alias("table_version"),
        predict_column(df.sparkSession, local).alias("prediction"),
        F.current_timestamp().alias("scored_at"), F.lit(run_id).alias("run_id"))


def run(ctx: StepContext) -> StepResult:
    output = ctx.layout.table("gold", PREDICTIONS)
    inputs: dict[str, TableRef] = {}
    scored_models = []
    deployment = deployment_of(ctx.config)
    for name, model in ctx.config.models.items():
        champion = version_by_alias(name, CHAMPION)
        if champion is None:
            log.info("%s has no @%s; nothing to score with", name, CHAMPION)
            continue
        with verified_copies({name: champion}, deployment) as copies:  # before any Spark job
            table = model.table
            ref = inputs.get(table) or pin(ctx.spark, f"silver.{table}",
                                           ctx.layout.table("silver", table))
            inputs[table] = ref
            scored = score_table(read_table(ctx.spark, ref), ref, table,
                                 row_keys(ctx.config)[table], name, champion.version,
                                 copies[name], ctx.run_id)
            merge(scored, output, PREDICTION_KEYS, run_id=ctx.run_id, update=False)
        log.info("%s v%s scored %s v%d (%s)", name, champion.version, table, ref.version,
                 model_uri(champion))
        scored_models.append(f"{name} v{champion.version}")
    if not scored_models:
        return StepResult(headline="no champions to score with")
    result = pin(ctx.spark, f"gold.{PREDICTIONS}", output)
    rows = read_table(ctx.spark, result).count()
    return StepResult(inputs=list(inputs.values()), outputs=[result],
                      metrics={"prediction_rows": float(rows)},
                      headline=f"{PREDICTIONS} v{result.version}: {rows:,} rows "
                               f"from {', '.join(scored_models)}")


BATCH_SCORE = Step(
    name="batch_score",
    run=run,
    help="Score the newest features with each @champion into lake/gold/predictions.",
    config_sections=("evaluate", "models"),
    inputs=lambda config: [*judged_tables(config), *registry_inputs(config, CHAMPION)],
)
