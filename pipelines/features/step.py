"""``mlpipe step features``: bronze -> the dataset's silver tables and the feature spec.

What it builds is declared (``features`` and ``sequences`` in
``conf/datasets/<dataset>/features.yaml``): the feature table is the feature view with its
labels, derived fields and split, rows without a label left out and leakage columns
dropped; the sequence table holds the windows of the sequence view. Each build is a new
Delta version; then the spec is fitted on the training split of the version just written
and saved as ``lake/silver/_specs/<table>/v<N>.json`` (and as an MLflow artifact), so a
model can name the exact table its spec came from.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from functools import reduce

import mlflow
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from models.features.fields import DERIVATION_SOURCES, FLIGHTS
from models.features.spark import derive_spark
from pipelines.features.fit import fit_spec
from pipelines.features.flights import plane_facts
from pipelines.features.sequences import sequence_windows, step_statistics
from pipelines.features.view import build_view, require_columns
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError, DataError
from pipelines.platform.feature_declarations import SEQUENCE_TARGET_TIME, FeaturesConfig
from pipelines.platform.lake import TableRef, overwrite, pin, read_table
from pipelines.platform.layout import Layout
from pipelines.platform.step import Step, StepContext, StepResult

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
TRAINING_FILE_ROWS = 131_072
"""The most rows in a silver file (one row group each at these row widths). Horovod ranks
read runs of row groups (``models/training/data.py``): smaller pieces mean less decoded
and thrown away where a rank's run begins inside a group, and a finer shuffle of a shard
streamed each epoch. Spark alone wrote 2 files of 2.3M and 1.0M rows at 10x."""


def view_inputs(config: Config) -> list[str]:
    """The bronze tables the declared views read, each once, in declaration order."""
    views = [declared.view for declared in (config.features, config.sequences) if declared]
    return list(dict.fromkeys(name for view in views for name in view.inputs))


def split_of(column: str, train_end: date, validation_end: date) -> Column:
    """``train`` up to ``train_end``, ``validation`` up to ``validation_end``, then ``test``,
    by the date of ``column``."""
    day = F.to_date(F.col(column))
    return (F.when(day <= F.lit(train_end), "train")
            .when(day <= F.lit(validation_end), "validation")
            .otherwise("test"))


def with_labels(examples: DataFrame, declared: FeaturesConfig) -> DataFrame:
    """The view with each declared label computed (a label may replace the column it reads)."""
    try:
        return examples.withColumns({name: F.expr(sql) for name, sql in declared.labels.items()})
    except AnalysisException as exc:
        raise ConfigError(f"features.labels: {exc.getMessage().splitlines()[0]}; the view "
                          f"gives {', '.join(examples.columns)}") from None


def count_rows(labelled: DataFrame, known: Column, split: Column) -> dict[str, int]:
    """All rows, those without a label, and the labelled rows of each split: one job."""
    row = labelled.agg(F.count(F.lit(1)).alias("all"),
                       F.count_if(~known).alias("unlabelled"),
                       *[F.count_if(known & (split == name)).alias(name) for name in SPLITS]
                       ).first()
    return row.asDict()


def check_splits(counts: dict[str, int], declared: FeaturesConfig) -> None:
    """Each split has rows, or an error naming the dates to change."""
    empty = [name for name in SPLITS if counts[name] == 0]
    if empty:
        raise DataError(
            f"features: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} "
            f"empty ({', '.join(f'{n} {counts[n]:,}' for n in SPLITS)} labelled rows by "
            f"{declared.time_column} with features.train_end={declared.train_end} and "
            f"features.validation_end={declared.validation_end}); choose dates inside the "
            "data's range")


def build_feature_table(ctx: StepContext, tables: dict[str, DataFrame]
                        ) -> tuple[TableRef, dict[str, int], DataFrame | None]:
    """Write the feature table; its version, the row counts, and the plane facts if any."""
    declared = ctx.config.features
    examples = build_view(ctx.spark, declared.view, tables, "features.view")
    require_columns(examples, {"features.request": [c for c in declared.request
                                                    if c not in declared.derived],
                               "features.keys": [c for c in declared.keys
                                                 if c not in declared.derived],
                               "features.time_column": [declared.time_column]},
                    "features.view")
    labelled = with_labels(examples, declared)
    known = reduce(Column.__and__, [F.col(name).isNotNull() for name in declared.labels])
    split = split_of(declared.time_column, declared.train_end, declared.validation_end)
    counts = count_rows(labelled, known, split)
    check_splits(counts, declared)
    log.info("%d rows have no label and are left out of the training sets",
             counts["unlabelled"])

    table = labelled.where(known)
    planes = None
    if declared.derivation == FLIGHTS:
        planes = plane_facts(tables[DERIVATION_SOURCES[FLIGHTS]]).cache()
        table = derive_spark(table, planes)
    table = table.withColumn("split", split).drop(*declared.leakage)
    path = ctx.layout.table("silver", declared.table)
    overwrite(table, path, run_id=ctx.run_id, max_rows_per_file=TRAINING_FILE_ROWS)
    return pin(ctx.spark, f"silver.{declared.table}", path), counts, planes


def build_sequence_table(ctx: StepContext, tables: dict[str, DataFrame]
                         ) -> tuple[TableRef, str]:
    """Write the sequence table; its version and its spec (window, step statistics)."""
    declared, features = ctx.config.sequences, ctx.config.features
    periods = build_view(ctx.spark, declared.view, tables, "sequences.view")
    require_columns(periods, {"sequences.entity": [declared.entity],
                              "sequences.time": [declared.time],
                              "sequences.steps": declared.steps}, "sequences.view")
    periods = periods.withColumn(
        "split", split_of(declared.time, features.train_end, features.validation_end)).cache()
    stats = step_statistics(periods.where("split = 'train'"), declared.steps)
    windows = sequence_windows(periods, declared, stats).withColumn(
        "split", split_of(SEQUENCE_TARGET_TIME, features.train_end, features.validation_end))
    path = ctx.layout.table("silver", declared.table)
    overwrite(windows, path, run_id=ctx.run_id, max_rows_per_file=TRAINING_FILE_ROWS)
    periods.unpersist()
    ref = pin(ctx.spark, f"silver.{declared.table}", path)
    spec = json.dumps({"window": declared.window, "features": list(stats),
                       "mean": [m for m, _ in stats.values()],
                       "std": [s for _, s in stats.values()],
                       "table": path, "table_version": ref.version}, indent=1)
    return ref, spec


def run(ctx: StepContext) -> StepResult:
    spark, config, layout = ctx.spark, ctx.config, ctx.layout
    declared = config.features
    if declared is None:
        return StepResult(headline=f"dataset {config.dataset!r} declares no features; "
                                   "nothing to build")
    inputs = {name: pin(spark, f"bronze.{name}", layout.table("bronze", name))
              for name in view_inputs(config)}
    tables = {name: read_table(spark, ref) for name, ref in inputs.items()}

    feature_ref, counts, planes = build_feature_table(ctx, tables)
    written = read_table(spark, feature_ref)
    spec = fit_spec(written.where("split = 'train'"), planes, declared,
                    feature_table=feature_ref.path, feature_table_version=feature_ref.version)
    if planes is not None:
        planes.unpersist()
    saved = {layout.feature_spec(declared.table, feature_ref.version): spec.to_json()}
    outputs = [feature_ref]
    if config.sequences is not None:
        sequence_ref, sequence_spec = build_sequence_table(ctx, tables)
        saved[layout.feature_spec(config.sequences.table, sequence_ref.version)] = sequence_spec
        outputs.append(sequence_ref)
    for location, text in saved.items():
        layout.storage.write_text(location, text)
        if mlflow.active_run() is not None:
            mlflow.log_text(text, f"feature_spec/{location.rsplit('/', 1)[-1]}")

    splits = {name: counts[name] for name in SPLITS}
    metrics = {"rows_view": counts["all"], "rows_unlabelled": counts["unlabelled"],
               "rows_features": sum(splits.values()),
               "n_linear_features": len(spec.linear_feature_names),
               **{f"rows_{name}": n for name, n in splits.items()}}
    headline = (f"{declared.table} v{feature_ref.version}: {metrics['rows_features']:,} rows "
                f"({', '.join(f'{k} {v:,}' for k, v in splits.items())}), "
                f"{counts['unlabelled']:,} unlabelled left out; "
                f"{len(spec.linear_feature_names)} linear features")
    if config.sequences is not None:
        metrics["rows_sequences"] = read_table(spark, outputs[1]).count()
        headline += (f"; {config.sequences.table} v{outputs[1].version}: "
                     f"{metrics['rows_sequences']:,}")
    return StepResult(inputs=list(inputs.values()), outputs=outputs, metrics=metrics,
                      headline=headline)


FEATURES = Step(
    name="features",
    run=run,
    help="Build the dataset's silver tables and the feature spec from bronze.",
    config_sections=("features", "sequences"),
    inputs=lambda config: [Layout.of(config).table("bronze", name)
                           for name in view_inputs(config)],
)
