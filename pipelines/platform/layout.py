"""Every location under the data root, named once, and whether the root is local or remote.

Steps ask a :class:`Layout` for their locations and hand the plain strings down;
lower layers never see the config. A location is always a string (an absolute
local path or a URI such as ``s3a://bucket/mlpipe/lake/bronze/flights``), never a
``pathlib.Path``, and every file written outside Spark goes through
:attr:`Layout.storage`, which serves both kinds.

```
<root>/landing/<source>/...                  raw files as they arrive
<root>/lake/<layer>/<table>                  Delta tables (bronze, silver, gold, quarantine)
<root>/lake/silver/_specs/<table>/v<N>.json  the feature spec fitted on version N of a table
<root>/lake/state/ingest/<source>            ingest's streaming checkpoints
<root>/state/pipeline_state.json             each step's last successful fingerprint
<root>/state/pipeline.lock                   who is running the pipeline now
<root>/state/schedule.json                   when the scheduler last fired
<root>/training/<step>/                      task file, checkpoints, workers' results
<root>/mlflow/                               the embedded tracking store (local roots only)
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from models.storage import ObjectStoreSettings, Storage, is_remote, join, local_path
from pipelines.platform.config import Config

LAYERS = ("bronze", "silver", "gold", "quarantine", "state")


def normalize_root(root: str) -> str:
    """An absolute local path (``~`` expanded) or the URI as given, without a trailing slash."""
    if is_remote(root):
        return root.rstrip("/")
    return os.path.abspath(os.path.expanduser(local_path(root)))


@dataclass(frozen=True)
class Layout:
    """The locations of one data root."""

    root: str
    object_store: ObjectStoreSettings
    storage: Storage = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", normalize_root(self.root))
        object.__setattr__(self, "storage", Storage(self.object_store))

    @classmethod
    def of(cls, config: Config) -> Layout:
        return cls(config.data_root, config.object_store)

    @property
    def is_remote(self) -> bool:
        return is_remote(self.root)

    def path(self, *parts: str) -> str:
        """Any location under the root; prefer the named ones below."""
        return join(self.root, *parts)

    def landing(self, source: str | None = None) -> str:
        return self.path("landing", *([source] if source else []))

    def table(self, layer: str, name: str) -> str:
        """A lake table; ``layer`` is one of :data:`LAYERS`."""
        if layer not in LAYERS:
            raise ValueError(f"unknown lake layer {layer!r}; expected one of {', '.join(LAYERS)}")
        return self.path("lake", layer, name)

    def feature_spec(self, table: str, version: int) -> str:
        """The spec (or statistics) fitted on ``version`` of the silver ``table``."""
        return self.path("lake", "silver", "_specs", table, f"v{version}.json")

    def ingest_checkpoint(self, source: str) -> str:
        return self.table("state", f"ingest/{source}")

    @property
    def pipeline_state(self) -> str:
        return self.path("state", "pipeline_state.json")

    @property
    def pipeline_lock(self) -> str:
        return self.path("state", "pipeline.lock")

    @property
    def schedule_marker(self) -> str:
        """When ``mlpipe schedule`` last fired, so a restarted scheduler catches up or skips."""
        return self.path("state", "schedule.json")

    def training(self, step: str) -> str:
        """One folder per Horovod step: the task file, checkpoints and workers' results."""
        return self.path("training", step)

    @property
    def mlflow_store(self) -> str | None:
        """The embedded tracking store's folder; None under a remote root (SQLite needs a disk)."""
        return None if self.is_remote else self.path("mlflow")
