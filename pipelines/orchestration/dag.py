"""The pipeline's DAG as declared in ``conf/pipeline.yaml``: order and selection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from graphlib import CycleError, TopologicalSorter

from pipelines.platform.errors import ConfigError
from pipelines.platform.step import Step

CONFIG_KEY = "pipeline.steps"


def ordered_steps(declared: Mapping[str, Sequence[str]], known: Mapping[str, Step]
                  ) -> list[str]:
    """The declared steps in an order where each comes after everything it depends on."""
    for name, parents in declared.items():
        if name not in known:
            raise ConfigError(f"{CONFIG_KEY}.{name}: no such step; known steps: "
                              f"{', '.join(known)}")
        for parent in parents:
            if parent not in declared:
                raise ConfigError(f"{CONFIG_KEY}.{name}: depends on {parent!r}, "
                                  "which is not a step of the pipeline")
    try:
        return list(TopologicalSorter(declared).static_order())
    except CycleError as exc:
        raise ConfigError(f"{CONFIG_KEY}: the steps depend on each other in a cycle: "
                          f"{' -> '.join(exc.args[1])}") from None


def descendants(declared: Mapping[str, Sequence[str]], name: str) -> set[str]:
    """Every step that depends on ``name``, directly or not."""
    found: set[str] = set()
    frontier = [name]
    while frontier:
        current = frontier.pop()
        for child, parents in declared.items():
            if current in parents and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def select(declared: Mapping[str, Sequence[str]], order: Sequence[str],
           start: str | None = None, only: Sequence[str] = ()) -> list[str]:
    """The steps a run covers: all, ``--from STEP`` and what follows it, or ``--only``."""
    for name in (start, *only):
        if name is not None and name not in declared:
            raise ConfigError(f"no step {name!r} in {CONFIG_KEY}; steps: {', '.join(order)}")
    if only:
        return [name for name in order if name in only]
    if start:
        wanted = {start} | descendants(declared, start)
        return [name for name in order if name in wanted]
    return list(order)
