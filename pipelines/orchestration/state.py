"""What the pipeline remembers between runs: a fingerprint of each step's last success.

A step's fingerprint hashes the config sections it reads and the state of the
locations it reads (a Delta table's version, a landing folder's file list), as the
step found them when it started. It is recorded when the run ends; when it still
matches at the next run, nothing the step reads has changed since, and the run may
skip it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from models.model_uri import is_registered, parse_alias
from models.storage import Storage, join
from pipelines.platform.config import Config
from pipelines.platform.layout import Layout
from pipelines.platform.registry import version_by_alias
from pipelines.platform.step import Step

log = logging.getLogger(__name__)

DELTA_COMMIT = re.compile(r"^(\d{20})\.json$")


def location_state(location: str, storage: Storage) -> Any:
    """A JSON-able summary that changes whenever the data at ``location`` changes.

    ``models:/NAME@ALIAS`` is the registered version behind an alias. A Delta table is
    its newest commit in ``_delta_log``, a folder its file list: both are listings
    through the storage layer (local or object store), without starting Spark, so a
    run with nothing to do stays fast.
    """
    if is_registered(location):
        return alias_state(location)
    commits = storage.list_files(join(location, "_delta_log"))
    if commits:
        versions = [int(m.group(1)) for name, _ in commits if (m := DELTA_COMMIT.match(name))]
        return {"delta_version": max(versions, default=-1)}
    files = storage.list_files(location)
    if files:
        return {"files": len(files), "digest": _digest(files)}
    return "missing"


def alias_state(location: str) -> str:
    """The version behind ``models:/NAME@ALIAS``, or "none"."""
    uri = parse_alias(location)
    version = version_by_alias(uri.name, uri.alias)
    return version.version if version is not None else "none"


def input_states(step: Step, config: Config) -> dict[str, Any] | None:
    """The state of each location ``step`` reads, now; None when it declares none."""
    if step.inputs is None:
        return None
    storage = Layout.of(config).storage
    return {location: location_state(location, storage) for location in step.inputs(config)}


def fingerprint(step: Step, config: Config, states: dict[str, Any] | None) -> str:
    """The fingerprint of ``step`` over its config sections and these input states;
    "" when the step cannot tell (it always runs)."""
    if states is None:
        return ""
    sections: Sequence[str] = step.config_sections
    return _digest({"step": step.name, "config": config.fingerprint(*sections) if sections
                    else "", "inputs": states})


class PipelineState:
    """The recorded fingerprints, kept in ``<data_root>/state/pipeline_state.json``."""

    def __init__(self, storage: Storage, location: str) -> None:
        self.storage, self.location = storage, location
        self.steps: dict[str, dict[str, Any]] = (
            _read_steps(storage, location) if storage.exists(location) else {})

    def unchanged(self, name: str, fingerprint: str) -> bool:
        return bool(fingerprint) and self.steps.get(name, {}).get("fingerprint") == fingerprint

    def record(self, name: str, fingerprint: str, **details: Any) -> None:
        """Remember a success; one whole-file write, so a crash never leaves a torn file."""
        self.steps[name] = {"fingerprint": fingerprint, **details}
        self.storage.write_text(self.location, json.dumps(self.steps, indent=2, sort_keys=True))


def _read_steps(storage: Storage, location: str) -> dict[str, dict[str, Any]]:
    """The recorded steps; a file that does not read as them (torn by a crash of the disk
    under it, or edited by hand) is reported and forgotten. Forgetting costs only a rerun
    of steps that are idempotent; refusing would stop every later run."""
    text = storage.read_text(location)
    try:
        steps = json.loads(text)
    except ValueError as error:
        problem = f"not JSON ({error})"
    else:
        if isinstance(steps, dict) and all(isinstance(v, dict) for v in steps.values()):
            return steps
        problem = "not an object of steps"
    log.warning("%s is unreadable (%s, %d bytes): treating it as empty, so every step "
                "runs again", location, problem, len(text))
    return {}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
