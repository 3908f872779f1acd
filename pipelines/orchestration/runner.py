"""``mlpipe run``: the DAG of steps under one MLflow parent run, skipping what is current.

Each step runs nested under the parent run and records what it read and wrote.
A step whose inputs are unchanged since its last success is skipped; a step that
fails stops only the steps that depend on it, and completed work stays in place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import mlflow

from pipelines.orchestration.catalogue import STEPS
from pipelines.orchestration.dag import descendants, ordered_steps, select
from pipelines.orchestration.state import PipelineState, step_fingerprint
from pipelines.orchestration.step_runner import run_step
from pipelines.platform.config import Config
from pipelines.platform.layout import Layout
from pipelines.platform.step import Step, StepContext
from pipelines.platform.tracking import start_run

log = logging.getLogger(__name__)

RAN, SKIPPED, FAILED, BLOCKED = "ran", "skipped", "failed", "blocked"


@dataclass(frozen=True)
class StepOutcome:
    """One row of the end-of-run table."""

    name: str
    status: str
    duration_s: float = 0.0
    headline: str = ""


def run_pipeline(config: Config, *, start: str | None = None, only: Sequence[str] = (),
                 force: bool = False, steps: Sequence[Step] = STEPS) -> list[StepOutcome]:
    """Run the declared DAG (or the part chosen by ``start``/``only``) and say what happened.

    ``steps`` are the step implementations the DAG's names refer to (the project's own
    by default).
    """
    declared = config.pipeline.steps
    known = {step.name: step for step in steps}
    chosen = select(declared, ordered_steps(declared, known), start, only)
    layout = Layout.of(config)
    state = PipelineState(layout.storage, layout.pipeline_state)
    context = StepContext(config)
    outcomes: list[StepOutcome] = []
    blocked: set[str] = set()
    try:
        with start_run(config, "pipeline", tags={"mlpipe.steps": ",".join(chosen)}) as parent:
            context.run_id = parent.info.run_id
            for position, name in enumerate(chosen, start=1):
                prefix = f"[{position}/{len(chosen)}] {name}"
                if name in blocked:
                    log.warning("%s: not run, a step it depends on failed", prefix)
                    outcomes.append(StepOutcome(name, BLOCKED))
                    continue
                outcome = _run_one(known[name], config, context, state, force, prefix)
                outcomes.append(outcome)
                if outcome.status == FAILED:
                    blocked |= descendants(declared, name)
            mlflow.set_tags({f"mlpipe.step.{o.name}": o.status for o in outcomes})
            _record_successes(outcomes, known, config, state)
    finally:
        if context.has_spark:
            context.spark.stop()
    return outcomes


def _record_successes(outcomes: Sequence[StepOutcome], known: dict[str, Step], config: Config,
                      state: PipelineState) -> None:
    """Fingerprint the steps that ran, as their inputs stand at the end of the run.

    Taken at the end rather than right after each step, because a later step may
    change what an earlier one reads (``promote`` moves the aliases ``evaluate``
    looks at): the next run then skips both when nothing new has arrived.
    """
    for outcome in outcomes:
        if outcome.status == RAN:
            state.record(outcome.name, step_fingerprint(known[outcome.name], config),
                         headline=outcome.headline, finished_at=time.time())


def _run_one(step: Step, config: Config, context: StepContext, state: PipelineState, force: bool,
             prefix: str) -> StepOutcome:
    if not force and state.unchanged(step.name, step_fingerprint(step, config)):
        log.info("%s: skipped, inputs unchanged since its last success", prefix)
        return StepOutcome(step.name, SKIPPED,
                           headline=state.steps[step.name].get("headline", ""))
    log.info("%s: running", prefix)
    started = time.monotonic()
    try:
        result = run_step(step, config, context=context)
    except Exception:
        log.exception("%s: failed", prefix)
        return StepOutcome(step.name, FAILED, time.monotonic() - started, "see the log above")
    duration = time.monotonic() - started
    log.info("%s: ran in %.1f s %s", prefix, duration, result.headline)
    return StepOutcome(step.name, RAN, duration, result.headline)


def format_outcomes(outcomes: Sequence[StepOutcome]) -> str:
    """The end-of-run table: step, status, duration, headline metric."""
    rows = [("step", "status", "duration", "headline")] + [
        (o.name, o.status, f"{o.duration_s:.1f} s" if o.status == RAN else "", o.headline)
        for o in outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip()
             for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
