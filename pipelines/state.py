"""What the pipeline remembers between runs: a fingerprint of each step's last success.

A step's fingerprint hashes the config sections it reads and the state of the
locations it reads (a Delta table's version, a landing folder's file list). It is
recorded right after the step succeeds; when it still matches at the next run,
nothing the step reads has changed since, and the run may skip it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.config import Config
from pipelines.registry import version_by_alias
from pipelines.steps.base import Step

DELTA_COMMIT = re.compile(r"^(\d{20})\.json$")


def state_file(config: Config) -> Path:
    return config.state_dir / "pipeline_state.json"


def location_state(location: str) -> Any:
    """A JSON-able summary that changes whenever the data at ``location`` changes.

    ``models:/NAME@ALIAS`` is the registered version behind an alias. Local paths are
    read directly, without starting Spark, so a run with nothing to do stays fast.
    A remote path has no cheap summary: None, and the step runs.
    """
    if location.startswith("models:/"):
        return alias_state(location)
    if "://" in location and not location.startswith("file://"):
        return None
    path = Path(location.removeprefix("file://"))
    log_dir = path / "_delta_log"
    if log_dir.is_dir():
        versions = [int(m.group(1)) for name in os.listdir(log_dir)
                    if (m := DELTA_COMMIT.match(name))]
        return {"delta_version": max(versions, default=-1)}
    if path.is_dir():
        files = sorted((str(f.relative_to(path)), f.stat().st_size)
                       for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))
        return {"files": len(files), "digest": _digest(files)}
    return "missing"


def alias_state(location: str) -> str:
    """The version behind ``models:/NAME@ALIAS``, or "none"."""
    name, _, alias = location.removeprefix("models:/").partition("@")
    version = version_by_alias(name, alias)
    return version.version if version is not None else "none"


def step_fingerprint(step: Step, config: Config) -> str:
    """The fingerprint of ``step``'s inputs now; "" when the step cannot tell (always runs)."""
    if step.inputs is None:
        return ""
    states = {location: location_state(location) for location in step.inputs(config)}
    if any(state is None for state in states.values()):
        return ""
    sections: Sequence[str] = step.config_sections
    return _digest({"step": step.name, "config": config.fingerprint(*sections) if sections
                    else "", "inputs": states})


class PipelineState:
    """The recorded fingerprints, kept in ``<data_root>/state/pipeline_state.json``."""

    def __init__(self, config: Config) -> None:
        self.path = state_file(config)
        self.steps: dict[str, dict[str, Any]] = (
            json.loads(self.path.read_text()) if self.path.exists() else {})

    def unchanged(self, name: str, fingerprint: str) -> bool:
        return bool(fingerprint) and self.steps.get(name, {}).get("fingerprint") == fingerprint

    def record(self, name: str, fingerprint: str, **details: Any) -> None:
        """Remember a success; written atomically so a crash never leaves a torn file."""
        self.steps[name] = {"fingerprint": fingerprint, **details}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False) as handle:
            json.dump(self.steps, handle, indent=2, sort_keys=True)
        os.replace(handle.name, self.path)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
