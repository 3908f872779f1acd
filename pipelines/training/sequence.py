"""``mlpipe step train_sequence``: the catalogue's ``sequence`` model, trained by Horovod.

Reads its silver table of windows at a pinned version (for flights,
``origin_hourly_sequences``: each origin's previous hours and, as the label, the next
hour's mean departure delay).
"""

from __future__ import annotations

import json

from models.storage import join
from models.training.task import TrainTask
from pipelines.platform.lake import TableRef
from pipelines.platform.model_declarations import ModelDeclaration
from pipelines.platform.step import StepContext, StepResult
from pipelines.training import horovod

NAME = "train_sequence"
TRAINER = "sequence"
ENCODER = "models.training.encoding:window_encoder"


def run(ctx: StepContext, resume: bool = False, dry_run: bool = False) -> StepResult:
    def task_for(name: str, model: ModelDeclaration) -> tuple[TableRef, TrainTask]:
        settings = ctx.config.hyperparameters(name)
        ref = horovod.training_input(ctx, model.table, NAME, resume)
        encoder_spec = join(ctx.layout.training(NAME), "window_encoder.json")
        ctx.layout.storage.write_text(encoder_spec,
                                      json.dumps({"window_column": settings.window_column}))
        return ref, horovod.make_task(
            ctx, NAME, kind="sequence", ref=ref, encoder=ENCODER, encoder_arg=encoder_spec,
            label=model.label, section=settings,
            model={"cell": settings.cell, "units": settings.units, "dropout": settings.dropout,
                   "heads": settings.heads},
            resume=resume)

    return horovod.train_declared(ctx, TRAINER, task_for, dry_run)


TRAIN_SEQUENCE = horovod.horovod_step(
    NAME, TRAINER, run, "Train the catalogue's sequence model (a forecaster) with Horovod.")
