"""``mlpipe step features``: bronze -> silver feature tables and the feature spec.

Writes ``lake/silver/flight_features`` (one row per labelled flight: raw request
fields, derived fields, labels, split) and ``lake/silver/origin_hourly_sequences``,
each build a new Delta version, then fits the spec on the training split of the
version just written and saves it as ``lake/silver/_specs/flight_features/v<N>.json``
(and as an MLflow artifact), so a model can name the exact table its spec came from.
"""

from __future__ import annotations

import json
import logging

import mlflow
from pyspark.sql import functions as F

from models.features.fields import RAW_FIELDS
from models.features.spark import DERIVED_COLUMNS, derive_spark
from pipelines.features.fit import fit_spec
from pipelines.features.flights import (
    ID_COLUMNS,
    add_labels,
    add_split,
    join_dest_airport,
    join_weather,
    labelled,
    plane_facts,
    scheduled_flights,
)
from pipelines.features.sequences import origin_hourly, sequence_windows, step_statistics
from pipelines.platform.lake import overwrite, pin, read_table
from pipelines.platform.layout import FEATURE_TABLE, SEQUENCE_TABLE, Layout
from pipelines.platform.step import Step, StepContext, StepResult

log = logging.getLogger(__name__)

DEST_COLUMNS = ("dest_lat", "dest_lon", "dest_alt", "dest_tz")
LABEL_COLUMNS = ("arr_delay", "is_delayed")
TRAINING_FILE_ROWS = 131_072
"""The most rows in a silver file (one row group each at these row widths). Horovod ranks
read runs of row groups (``models/training/data.py``): smaller pieces mean less decoded
and thrown away where a rank's run begins inside a group, and a finer shuffle of a shard
streamed each epoch. Spark alone wrote 2 files of 2.3M and 1.0M rows at 10x."""


def run(ctx: StepContext) -> StepResult:
    spark, settings, layout = ctx.spark, ctx.config.features, ctx.layout
    inputs = {name: pin(spark, f"bronze.{name}", layout.table("bronze", name))
              for name in ("flights", "weather", "planes", "airports")}
    flights, weather, planes_raw, airports = (read_table(spark, inputs[n]) for n in inputs)
    planes = plane_facts(planes_raw).cache()

    scheduled = scheduled_flights(flights)
    counts = scheduled.agg(F.count(F.lit(1)).alias("all"),
                           F.count_if(F.col("arr_delay").isNull()).alias("unlabelled")).first()
    log.info("%d flights have no label (cancelled or diverted) and are left out of the "
             "training sets", counts["unlabelled"])
    table = add_split(
        add_labels(derive_spark(join_dest_airport(join_weather(labelled(scheduled), weather),
                                                  airports), planes),
                   settings.delay_threshold_min),
        "flight_date", settings.train_end, settings.validation_end)
    columns = dict.fromkeys([*ID_COLUMNS, *RAW_FIELDS, *DERIVED_COLUMNS, *DEST_COLUMNS,
                             *LABEL_COLUMNS, "split"])
    feature_path = layout.table("silver", FEATURE_TABLE)
    overwrite(table.select(*columns), feature_path, run_id=ctx.run_id,
              max_rows_per_file=TRAINING_FILE_ROWS)
    feature_ref = pin(spark, f"silver.{FEATURE_TABLE}", feature_path)
    written = read_table(spark, feature_ref)
    splits = {r["split"]: r["count"] for r in written.groupBy("split").count().collect()}

    spec = fit_spec(written.where("split = 'train'"), planes,
                    min_count=settings.min_category_count, tail_buckets=settings.tail_buckets,
                    delay_threshold_min=settings.delay_threshold_min,
                    feature_table=feature_path, feature_table_version=feature_ref.version)
    saved = {layout.feature_spec(FEATURE_TABLE, feature_ref.version): spec.to_json()}
    planes.unpersist()

    hourly = add_split(origin_hourly(flights, weather).withColumn("day", F.to_date("hour_ts")),
                       "day", settings.train_end, settings.validation_end).cache()
    stats = step_statistics(hourly.where("split = 'train'"))
    windows = sequence_windows(hourly, settings.sequence_window_hours, stats)
    sequence_path = layout.table("silver", SEQUENCE_TABLE)
    overwrite(add_split(windows.withColumn("day", F.to_date("target_hour")), "day",
                        settings.train_end, settings.validation_end).drop("day"),
              sequence_path, run_id=ctx.run_id, max_rows_per_file=TRAINING_FILE_ROWS)
    hourly.unpersist()
    sequence_ref = pin(spark, f"silver.{SEQUENCE_TABLE}", sequence_path)
    saved[layout.feature_spec(SEQUENCE_TABLE, sequence_ref.version)] = json.dumps({
        "window_hours": settings.sequence_window_hours, "features": list(stats),
        "mean": [m for m, _ in stats.values()], "std": [s for _, s in stats.values()],
        "table": sequence_path, "table_version": sequence_ref.version}, indent=1)
    for location, text in saved.items():
        layout.storage.write_text(location, text)
        if mlflow.active_run() is not None:
            mlflow.log_text(text, f"feature_spec/{location.rsplit('/', 1)[-1]}")
    sequences = read_table(spark, sequence_ref).count()

    metrics = {"rows_flights": counts["all"], "rows_unlabelled": counts["unlabelled"],
               "rows_features": sum(splits.values()), "rows_sequences": sequences,
               "n_linear_features": len(spec.linear_feature_names),
               **{f"rows_{name}": n for name, n in splits.items()}}
    return StepResult(
        inputs=list(inputs.values()), outputs=[feature_ref, sequence_ref], metrics=metrics,
        headline=f"{FEATURE_TABLE} v{feature_ref.version}: {metrics['rows_features']:,} "
                 f"flights ({', '.join(f'{k} {v:,}' for k, v in sorted(splits.items()))}), "
                 f"{counts['unlabelled']:,} unlabelled left out; {len(spec.linear_feature_names)}"
                 f" linear features; {SEQUENCE_TABLE} v{sequence_ref.version}: {sequences:,}")


FEATURES = Step(
    name="features",
    run=run,
    help="Build the silver feature tables and the feature spec from bronze.",
    config_sections=("features",),
    inputs=lambda config: [Layout.of(config).table("bronze", name)
                           for name in ("flights", "weather", "planes", "airports")],
)
