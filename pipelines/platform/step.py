"""What a pipeline step is: a named function over a :class:`StepContext`.

A step reads its inputs at pinned versions, writes its outputs in Delta
transactions and returns a :class:`StepResult` saying what it read and wrote, so
the runner can record lineage and skip a step whose inputs have not changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pyspark.sql import SparkSession

from pipelines.platform.config import Config
from pipelines.platform.lake import TableRef
from pipelines.platform.layout import Layout


@dataclass
class StepContext:
    """What a step gets: the config, the MLflow run id, and a Spark session made on demand."""

    config: Config
    run_id: str | None = None
    session_factory: Callable[[Config], SparkSession] | None = None

    @cached_property
    def layout(self) -> Layout:
        """Where everything under the data root lives, and the storage that reaches it."""
        return Layout.of(self.config)

    @cached_property
    def spark(self) -> SparkSession:
        if self.session_factory is None:
            from pipelines.platform.spark import build_spark_session

            self.session_factory = build_spark_session
        return self.session_factory(self.config)

    @property
    def has_spark(self) -> bool:
        return "spark" in self.__dict__


@dataclass
class StepResult:
    """What a step did: tables read and written, models registered, headline metric."""

    inputs: list[TableRef] = field(default_factory=list)
    outputs: list[TableRef] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    headline: str = ""
    # Locations besides ``outputs`` that the step changed (landing files it wrote, registry
    # aliases it moved). The runner fingerprints a reader of one of them as it stands
    # after the run; any other input as it stood when its reader started.
    changed: list[str] = field(default_factory=list)

    def written(self) -> set[str]:
        """Every location the step wrote or moved."""
        return {ref.path for ref in self.outputs} | set(self.changed)


@dataclass(frozen=True)
class Step:
    """A pipeline step: its name, its function and the CLI options it takes.

    ``options`` are click decorators; their defaults are None so that the config,
    where every default lives, decides when an option is not given.
    """

    name: str
    run: Callable[..., StepResult]
    help: str
    options: Sequence[Callable[[Any], Any]] = ()
    tracked: bool = True
    # What decides whether a scheduled run may skip the step: the config sections it
    # reads, and the locations (Delta tables or landing folders) whose state it reads.
    config_sections: Sequence[str] = ()
    inputs: Callable[[Config], Sequence[str]] | None = None
    # The registered model names the step writes versions of: checked before it starts
    # (pipelines/platform/registry.py, check_registrable), not after its training.
    registers: Callable[[Config], Sequence[str]] | None = None
