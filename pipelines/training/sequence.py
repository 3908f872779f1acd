"""``mlpipe step train_sequence``: the per-origin next-hour delay forecaster, trained by Horovod.

Reads ``lake/silver/origin_hourly_sequences`` (windows of the previous hours and the
next hour's mean departure delay) at a pinned version.
"""

from __future__ import annotations

import json

from models.storage import join
from pipelines.platform.step import StepContext, StepResult
from pipelines.training.horovod import (
    horovod_step,
    make_task,
    train,
    training_input,
)

NAME = "train_sequence"
MODEL_NAME = "origin-delay-forecast"
ENCODER = "models.training.encoding:window_encoder"


def run(ctx: StepContext, resume: bool = False, dry_run: bool = False) -> StepResult:
    settings = ctx.config.train_sequence
    ref = training_input(ctx, settings.table, NAME, resume)
    encoder_spec = join(ctx.layout.training(NAME), "window_encoder.json")
    ctx.layout.storage.write_text(encoder_spec,
                                  json.dumps({"window_column": settings.window_column}))
    task = make_task(ctx, NAME, kind="sequence", ref=ref, encoder=ENCODER,
                     encoder_arg=encoder_spec, label=settings.target_column,
                     section=settings,
                     model={"cell": settings.cell, "units": settings.units,
                            "dropout": settings.dropout, "heads": settings.heads},
                     resume=resume)
    return train(ctx, ref, task, MODEL_NAME, dry_run)


TRAIN_SEQUENCE = horovod_step(
    NAME, run, "Train the next-hour delay forecaster per origin with Horovod.")
