"""Running one step: a Spark session if it needs one, an MLflow run, cleanup always.

The CLI (``mlpipe step NAME``) and the spark-submit entry points in ``jobs/`` both
come through here, so a step behaves the same however it is launched.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import mlflow

from pipelines.platform.config import Config
from pipelines.platform.layout import Layout
from pipelines.platform.out_of_space import is_out_of_space, storage_full
from pipelines.platform.registry import check_registrable, deployment_of, register_candidate
from pipelines.platform.step import Step, StepContext, StepResult
from pipelines.platform.tracking import log_table_input, start_run

log = logging.getLogger(__name__)


def run_step(step: Step, config: Config, context: StepContext | None = None,
             **options: Any) -> StepResult:
    """Run ``step`` under its own MLflow run (nested under a pipeline run if one is active).

    A caller running several steps passes one ``context`` so they share a Spark
    session; otherwise the session made for this step is stopped when it ends. The
    command that calls this has checked the object store and the tracking server once
    (:func:`~pipelines.platform.preflight.check_services`); a step does not ask again.
    A step that registers models first makes sure no other deployment owns their names.
    """
    owns_context = context is None
    context = context or StepContext(config)
    started = time.monotonic()
    try:
        if not step.tracked:
            return step.run(context, **options)
        with start_run(config, step.name, tags={"mlpipe.step": step.name}) as run:
            context.run_id = run.info.run_id
            if step.registers is not None:  # the client points at the config's registry now
                check_registrable(step.registers(config), deployment_of(config))
            result = step.run(context, **options)
            record_result(result, run.info.run_id, deployment_of(config))
            return result
    except Exception as error:
        if is_out_of_space(error):
            raise storage_full(Layout.of(config).root, step.name) from error
        raise
    finally:
        if owns_context and context.has_spark:
            context.spark.stop()
        log.info("step %s finished in %.1f s", step.name, time.monotonic() - started)


def record_result(result: StepResult, run_id: str, deployment: str) -> None:
    """Log a step's lineage and metrics on its run; register the models it trained.

    Each model becomes a new version of its registered model, as ``deployment``'s, with
    the alias ``@candidate``, and the version number is logged back on the step's run.
    """
    for ref in result.inputs:
        log_table_input(ref, context="input")
    for ref in result.outputs:
        mlflow.log_param(f"output.{ref.name}.version", ref.version)
    if result.metrics:
        mlflow.log_metrics(result.metrics)
    for name, uri in result.models.items():
        version = register_candidate(name, uri, run_id, deployment)
        mlflow.log_param(f"output.model.{name}.version", version.version)
