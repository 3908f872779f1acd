"""The pipeline's steps, in DAG order; each becomes ``mlpipe step NAME`` and a job in jobs/."""

from __future__ import annotations

from pipelines.steps.base import Step
from pipelines.steps.ingest import INGEST
from pipelines.steps.seed import SEED

STEPS: tuple[Step, ...] = (SEED, INGEST)


def get_step(name: str) -> Step:
    """The step called ``name``; a KeyError lists the known ones."""
    for step in STEPS:
        if step.name == name:
            return step
    raise KeyError(f"no step {name!r}; known steps: {', '.join(s.name for s in STEPS)}")
