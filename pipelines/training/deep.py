"""``mlpipe step train_deep``: the Keras MLP on ``is_delayed``, trained by Horovod workers.

Reads ``lake/silver/flight_features`` at a pinned version with the feature spec fitted
on that version, so the logged pyfunc encodes raw flights exactly as training did.
"""

from __future__ import annotations

from pipelines.platform.errors import DataError
from pipelines.platform.step import StepContext, StepResult
from pipelines.training.horovod import horovod_step, make_task, train, training_input

NAME = "train_deep"
MODEL_NAME = "flight-delay-mlp"
ENCODER = "models.training.encoding:flight_encoder"
LABEL = "is_delayed"


def run(ctx: StepContext, resume: bool = False, dry_run: bool = False) -> StepResult:
    settings = ctx.config.train_deep
    ref = training_input(ctx, settings.table, NAME, resume)
    spec = ctx.layout.feature_spec(settings.table, ref.version)
    if not ctx.layout.storage.exists(spec):
        raise DataError(f"no feature spec for {ref.name} v{ref.version} at {spec}: "
                        "run `mlpipe step features` to write the table and its spec")
    task = make_task(ctx, NAME, kind="tabular", ref=ref, encoder=ENCODER,
                     encoder_arg=spec, label=LABEL, section=settings,
                     model={"hidden_units": settings.hidden_units, "dropout": settings.dropout,
                            "max_embedding_dim": settings.max_embedding_dim},
                     resume=resume)
    return train(ctx, ref, task, MODEL_NAME, dry_run)


TRAIN_DEEP = horovod_step(
    NAME, run, "Train the flight-delay MLP with Horovod (launcher from horovod.launcher).")
