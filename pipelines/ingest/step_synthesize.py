"""``mlpipe step synthesize --scale K``: K times the flight rows, as landing files for ingest."""

from __future__ import annotations

import click
from pyspark.sql import functions as F

from pipelines.ingest.synthesize import existing_copies, replay_flights, write_landing
from pipelines.platform.lake import pin, read_table
from pipelines.platform.step import Step, StepContext, StepResult

# Seeded daily files (YYYY-MM-DD.csv): the real flights that are replayed.
REAL_FILE = r"/\d{4}-\d{2}-\d{2}\.csv$"


def run(ctx: StepContext, scale: int | None = None) -> StepResult:
    settings = ctx.config.synthesize
    scale = scale or settings.scale
    folder, storage = ctx.layout.landing("flights"), ctx.layout.storage
    copies = sorted(set(range(1, scale)) - existing_copies(folder, storage))
    source = pin(ctx.spark, "bronze.flights", ctx.layout.table("bronze", "flights"))
    if not copies:
        return StepResult(inputs=[source], metrics={"copies_written": 0},
                          headline=f"{scale}x already landed: nothing to do")
    real = read_table(ctx.spark, source).where(F.col("_source_file").rlike(REAL_FILE))
    replayed = replay_flights(real, copies, seed=ctx.config.seed,
                              max_shift_min=settings.max_shift_min,
                              delay_noise_min=settings.delay_noise_min)
    files = write_landing(replayed, folder, storage, settings.files_per_copy)
    rows = real.count() * len(copies)
    return StepResult(
        inputs=[source],
        metrics={"copies_written": len(copies), "files_written": files, "rows_written": rows},
        headline=f"{len(copies)} replayed copies ({rows:,} rows, {files} files) landed for "
                 f"{scale}x; run ingest to load them")


SYNTHESIZE = Step(
    name="synthesize",
    run=run,
    help="Replay the year of flights as K times the rows (seeded), as landing files.",
    options=(
        click.option("--scale", type=int, default=None,
                     help="Total flights as a multiple of the real year (default: "
                          "synthesize.scale)."),
    ),
)
