"""Driver side of the Horovod steps: config -> a training task -> the configured launcher.

``train_deep`` and ``train_sequence`` differ only in their trainer (whose model of the
catalogue they fit), encoder and model parameters; pinning, launching (local, Spark or
MPI), ``--resume`` and ``--dry-run`` are here once. The workers themselves live in
:mod:`models.training`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from typing import Any, Literal

import click

from models.storage import join
from models.training.launch import (
    LaunchSettings,
    collect_results,
    horovod_env,
    local_command,
    run_local,
    run_logged,
    run_spark,
)
from models.training.mpi import mpi_command
from models.training.task import TASK_FILE, Runtime, Schedule, TrainTask
from pipelines.platform.config import Config
from pipelines.platform.lake import TableRef, pin
from pipelines.platform.layout import Layout
from pipelines.platform.model_declarations import ModelDeclaration, Trainer
from pipelines.platform.step import Step, StepContext, StepResult
from pipelines.platform.tracking import resolve_target

OPTIONS = (
    click.option("--resume", is_flag=True, default=False,
                 help="Continue from this step's last checkpoint, on the table version it read."),
    click.option("--dry-run", is_flag=True, default=False,
                 help="Print the launch command and environment instead of training."),
)


def horovod_step(name: str, trainer: Trainer, run: Callable[..., StepResult], help: str
                 ) -> Step:
    """A Horovod training step: its config section has the step's name, and the silver
    table of its trainer's model is the only input whose change makes a scheduled run
    retrain."""
    return Step(
        name=name, run=run, help=help, options=OPTIONS,
        config_sections=(name, "horovod", "seed", "models"),
        inputs=lambda config: [Layout.of(config).table("silver", model.table)
                               for model in config.models_trained_by(trainer).values()],
        registers=lambda config: list(config.models_trained_by(trainer)),
    )


def train_declared(ctx: StepContext, trainer: Trainer,
                   task_for: Callable[[str, ModelDeclaration], tuple[TableRef, TrainTask]],
                   dry_run: bool) -> StepResult:
    """Train the catalogue's model of ``trainer`` (it declares one at most), if any.

    ``task_for`` pins the model's table and builds its task from the model's name and
    declaration.
    """
    declared = next(iter(ctx.config.models_trained_by(trainer).items()), None)
    if declared is None:
        return StepResult(headline=f"the model catalogue declares no {trainer} model; "
                                   "nothing to train")
    name, model = declared
    ref, task = task_for(name, model)
    return train(ctx, ref, task, name, dry_run)


def training_input(ctx: StepContext, table: str, step: str, resume: bool) -> TableRef:
    """The silver table pinned at its newest version, or at the version a resumed job read."""
    storage = ctx.layout.storage
    previous = join(ctx.layout.training(step), TASK_FILE)
    version = (TrainTask.from_json(storage.read_text(previous)).table_version
               if resume and storage.exists(previous) else None)
    return pin(ctx.spark, f"silver.{table}", ctx.layout.table("silver", table), version)


def make_task(ctx: StepContext, step: str, *, kind: Literal["tabular", "sequence"],
              ref: TableRef, encoder: str, encoder_arg: str, label: str,
              section: Schedule, model: dict[str, Any], resume: bool) -> TrainTask:
    """Everything the workers need, as plain values (they never see the config)."""
    config = ctx.config
    # The section extends the schedule with its model's keys, which the task keeps apart.
    schedule = Schedule(**section.model_dump(include=set(Schedule.model_fields)))
    return TrainTask(
        kind=kind, table_path=ref.path, table_version=ref.version, encoder=encoder,
        encoder_arg=encoder_arg, label=label, model=model, schedule=schedule,
        runtime=Runtime(threads_per_worker=config.horovod.threads_per_worker,
                        fp16_allreduce=config.horovod.fp16_allreduce),
        seed=config.seed, output_dir=ctx.layout.training(step), resume=resume,
        tracking_uri=resolve_target(config).tracking_uri, run_id=ctx.run_id,
        object_store=ctx.layout.object_store.as_dict())


def launch_settings(config: Config) -> LaunchSettings:
    h = config.horovod
    return LaunchSettings(num_proc=h.num_proc, network_interface=h.network_interface,
                          fusion_threshold_mb=h.fusion_threshold_mb,
                          cycle_time_ms=h.cycle_time_ms, start_timeout_s=h.start_timeout_s,
                          timeout_s=h.timeout_s)


def launch_plan(config: Config, task_file: str) -> str:
    """The exact command a launch runs (with the environment it adds), as shell text."""
    settings = launch_settings(config)
    launcher = config.horovod.launcher
    object_store = Layout.of(config).object_store.as_dict()
    if launcher == "mpi":
        return shlex.join(mpi_command(config.horovod.mpi, settings, task_file, object_store))
    env = " ".join(f"{k}={v}" for k, v in horovod_env(settings).items())
    if launcher == "spark":
        return (f"{env} horovod.spark.run(models.training.worker.run_task, "
                f"num_proc={settings.num_proc}) on the active Spark session")
    return f"{env} {shlex.join(local_command(settings, task_file, object_store))}"


def launch(ctx: StepContext, task: TrainTask) -> list[dict[str, Any]]:
    """Run the workers with the configured launcher; every rank's result, rank 0 first."""
    config = ctx.config
    settings = launch_settings(config)
    if config.horovod.launcher == "spark":
        return run_spark(task, settings)  # on ctx.spark's context, started by the pin
    if config.horovod.launcher == "mpi":
        mpi = config.horovod.mpi
        run_logged(mpi_command(mpi, settings, task.write(), task.object_store),
                   dict(os.environ), settings.timeout_s, task.storage,
                   join(task.output_dir, "mpirun.log"))
        return collect_results(task, mpi.slots)
    return run_local(task, settings)


def train(ctx: StepContext, ref: TableRef, task: TrainTask, model_name: str,
          dry_run: bool) -> StepResult:
    """Launch (or only describe) the job and report what it read, logged and scored."""
    if dry_run:
        return StepResult(headline="dry run, nothing trained:\n"
                          + launch_plan(ctx.config, task.write()))
    results = launch(ctx, task)
    chief = results[0]
    metrics = {**chief["metrics"], "epochs_run": float(chief["epochs_run"])}
    scores = ", ".join(f"{k} {v:.4f}" for k, v in chief["metrics"].items() if "loss" not in k)
    return StepResult(
        inputs=[ref], models={model_name: chief["model_uri"]} if "model_uri" in chief else {},
        metrics=metrics,
        headline=f"{model_name}: {scores} after {chief['epochs_run']} epochs on "
                 f"{chief['size']} workers ({ctx.config.horovod.launcher})")
