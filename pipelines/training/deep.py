"""``mlpipe step train_deep``: the catalogue's ``mlp`` model, a Keras MLP trained by Horovod.

Reads its silver table (``flight_features`` for flights) at a pinned version with the
feature spec fitted on that version, so the logged pyfunc encodes raw records exactly as
training did.
"""

from __future__ import annotations

from models.training.task import TrainTask
from pipelines.platform.errors import DataError
from pipelines.platform.lake import TableRef
from pipelines.platform.model_declarations import ModelDeclaration
from pipelines.platform.step import StepContext, StepResult
from pipelines.training import horovod

NAME = "train_deep"
TRAINER = "mlp"
ENCODER = "models.training.encoding:tabular_encoder"


def run(ctx: StepContext, resume: bool = False, dry_run: bool = False) -> StepResult:
    def task_for(name: str, model: ModelDeclaration) -> tuple[TableRef, TrainTask]:
        settings = ctx.config.hyperparameters(name)
        ref = horovod.training_input(ctx, model.table, NAME, resume)
        spec = ctx.layout.feature_spec(model.table, ref.version)
        if not ctx.layout.storage.exists(spec):
            raise DataError(f"no feature spec for {ref.name} v{ref.version} at {spec}: "
                            "run `mlpipe step features` to write the table and its spec")
        return ref, horovod.make_task(
            ctx, NAME, kind="tabular", ref=ref, encoder=ENCODER, encoder_arg=spec,
            label=model.label, section=settings,
            model={"hidden_units": settings.hidden_units, "dropout": settings.dropout,
                   "max_embedding_dim": settings.max_embedding_dim},
            resume=resume)

    return horovod.train_declared(ctx, TRAINER, task_for, dry_run)


TRAIN_DEEP = horovod.horovod_step(
    NAME, TRAINER, run,
    "Train the catalogue's mlp model with Horovod (launcher from horovod.launcher).")
