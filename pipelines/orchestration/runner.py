"""``mlpipe run``: the DAG of steps under one MLflow parent run, skipping what is current.

Each step runs nested under the parent run and records what it read and wrote.
A step whose inputs are unchanged since its last success is skipped; a step that
fails stops only the steps that depend on it, and completed work stays in place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import mlflow

from pipelines.orchestration.catalogue import STEPS
from pipelines.orchestration.dag import descendants, ordered_steps, select
from pipelines.orchestration.state import (
    PipelineState,
    fingerprint,
    input_states,
    location_state,
)
from pipelines.orchestration.step_runner import run_step
from pipelines.platform.config import Config
from pipelines.platform.errors import MlpipeError
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
    # For a step that ran: its inputs as it found them, and what it wrote.
    inputs_seen: dict[str, Any] | None = None
    written: frozenset[str] = field(default_factory=frozenset)


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
    """Fingerprint the steps that ran over their inputs as each found them when it started,
    except the inputs that it or a later step of this run wrote.

    A file that lands in ``landing/`` while ingest runs was not read by it: taken at
    the end, it would count as seen, and the next run would skip ingest until another
    file landed. What the run itself wrote after a step started (``promote`` moves the
    aliases ``evaluate`` read; ``seed`` fills the folder it reads) is taken as it stands
    at the end, so the next run skips both when nothing new has arrived.
    """
    storage = Layout.of(config).storage
    for position, outcome in enumerate(outcomes):
        if outcome.status != RAN:
            continue
        written_since = frozenset().union(*(o.written for o in outcomes[position:]))
        states = outcome.inputs_seen
        if states is not None:
            states = {location: location_state(location, storage)
                      if location in written_since else seen
                      for location, seen in states.items()}
        state.record(outcome.name, fingerprint(known[outcome.name], config, states),
                     headline=outcome.headline, finished_at=time.time())


def _run_one(step: Step, config: Config, context: StepContext, state: PipelineState, force: bool,
             prefix: str) -> StepOutcome:
    seen = input_states(step, config)
    if not force and state.unchanged(step.name, fingerprint(step, config, seen)):
        log.info("%s: skipped, inputs unchanged since its last success", prefix)
        return StepOutcome(step.name, SKIPPED,
                           headline=state.steps[step.name].get("headline", ""))
    log.info("%s: running", prefix)
    started = time.monotonic()
    try:
        result = run_step(step, config, context=context)
    except Exception as error:
        log.exception("%s: failed", prefix)
        detail = str(error) if isinstance(error, MlpipeError) else "see the log above"
        return StepOutcome(step.name, FAILED, time.monotonic() - started, detail)
    duration = time.monotonic() - started
    log.info("%s: ran in %.1f s %s", prefix, duration, result.headline)
    return StepOutcome(step.name, RAN, duration, result.headline, seen,
                       frozenset(result.written()))


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
