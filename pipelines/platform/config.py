"""Loading the configuration: YAML files -> one frozen, validated object per run.

The schema is :mod:`pipelines.platform.config_schema` and the checks across sections
:mod:`pipelines.platform.config_checks`; callers import ``load_config`` and ``Config``
from here.

Precedence, lowest first: the base files (``conf/base.yaml``, then ``pipeline.yaml``
and ``serving.yaml``, which hold the step and serving sections) < the chosen dataset's
declarations (every ``conf/datasets/<dataset>/*.yaml``, ``dataset`` being read from all
layers first) < ``conf/<env>.yaml`` < ``conf/local.yaml`` < ``--set a.b=c``. Every key
remembers the file (or ``--set``) it came from, so a validation error names both the key
and where it was written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.platform.config_checks import config_problems
from pipelines.platform.config_schema import Config
from pipelines.platform.errors import ConfigError
from pipelines.platform.redact import redact

# Config is the type every caller of load_config names; it is imported from here.
__all__ = ["Config", "config_as_yaml", "load_config", "parse_override", "resolve_conf_dir"]

ENV_VARIABLE = "MLPIPE_ENV"
CONF_DIR_VARIABLE = "MLPIPE_CONF_DIR"
DEFAULT_CONF_DIR = Path("conf")
BASE_FILES = ("base.yaml", "pipeline.yaml", "serving.yaml")
DATASETS_DIR = "datasets"
LOCAL_OVERLAY = "local"

# Key filled from the network profile -> the profile's field.
PROFILE_KEYS = {("horovod", "fusion_threshold_mb"): "fusion_threshold_mb",
                ("horovod", "fp16_allreduce"): "fp16_allreduce",
                ("train_deep", "batch_size"): "train_deep_batch_size",
                ("train_sequence", "batch_size"): "train_sequence_batch_size"}


def load_config(
    env: str | None = None,
    overrides: Iterable[str] = (),
    conf_dir: str | Path | None = None,
) -> Config:
    """Merge base, environment and local overlays and ``--set`` overrides, then validate."""
    folder = resolve_conf_dir(conf_dir)
    env = env or os.environ.get(ENV_VARIABLE) or None
    base_file = folder / "base.yaml"
    if not base_file.exists():
        raise ConfigError(f"{base_file}: the base configuration file is missing")

    layers = [(folder / name, _read_yaml(folder / name)) for name in BASE_FILES
              if (folder / name).exists()]
    overlays: list[tuple[Path | str, dict[str, Any]]] = []
    if env and env != "base":
        env_file = folder / f"{env}.yaml"
        if not env_file.exists():
            raise ConfigError(f"{env_file}: no overlay for environment {env!r} "
                              f"(from --env or {ENV_VARIABLE})")
        overlays.append((env_file, _read_yaml(env_file)))
    local_file = folder / f"{LOCAL_OVERLAY}.yaml"
    if local_file.exists() and env != LOCAL_OVERLAY:
        overlays.append((local_file, _read_yaml(local_file)))
    overlays += [("--set", parse_override(override)) for override in overrides]
    layers += _dataset_files(folder, [*layers, *overlays]) + overlays

    merged: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    for origin, data in layers:
        _merge_into(merged, sources, data, str(origin))
    merged["env"] = env or "base"
    apply_network_profile(merged, sources)

    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources)) from None
    problems = config_problems(config)
    if problems:
        raise ConfigError("\n  ".join(["invalid configuration:", *[
            f"{_origin(key, sources)}: {'.'.join(key)}: {problem}" for key, problem in problems]]))
    return config


def apply_network_profile(merged: dict[str, Any], sources: dict[tuple[str, ...], str]) -> None:
    """Fill the null keys of ``PROFILE_KEYS`` from ``horovod.network_profiles[network_profile]``.

    Done on the merged mapping, before validation, so the validated sections hold plain
    values and nothing downstream knows about profiles. An unknown profile is an error
    that names where it was set; the profiles' own fields are validated with the rest.
    """
    horovod = merged.get("horovod")
    if not isinstance(horovod, dict) or "network_profile" not in horovod:
        return  # validation reports the missing key
    name, profiles = horovod["network_profile"], horovod.get("network_profiles") or {}
    if name not in profiles:
        origin = _origin(("horovod", "network_profile"), sources)
        raise ConfigError(f"invalid configuration:\n  {origin}: horovod.network_profile: "
                          f"{name!r} is not one of {', '.join(map(str, profiles)) or '(none)'}")
    profile = profiles[name] if isinstance(profiles[name], dict) else {}
    for (section, key), field in PROFILE_KEYS.items():
        values = merged.get(section)
        if isinstance(values, dict) and values.get(key) is None and field in profile:
            values[key] = profile[field]


def _dataset_files(folder: Path, layers: list[tuple[Path | str, dict[str, Any]]]
                   ) -> list[tuple[Path, dict[str, Any]]]:
    """The declaration files of the dataset the layers choose (the last ``dataset`` wins)."""
    names = [data["dataset"] for _, data in layers if "dataset" in data]
    if not names:
        return []  # validation reports the missing key
    where = folder / DATASETS_DIR / str(names[-1])
    files = sorted(where.glob("*.yaml")) if where.is_dir() else []
    if not files:
        known = sorted(p.name for p in (folder / DATASETS_DIR).glob("*") if p.is_dir())
        raise ConfigError(f"{where}: dataset {names[-1]!r} declares nothing (no *.yaml there); "
                          f"declared datasets: {', '.join(known) or '(none)'}")
    return [(path, _read_yaml(path)) for path in files]


def resolve_conf_dir(conf_dir: str | Path | None = None) -> Path:
    """The configuration folder: the one given, else ``$MLPIPE_CONF_DIR``, else ``./conf``."""
    return Path(conf_dir or os.environ.get(CONF_DIR_VARIABLE) or DEFAULT_CONF_DIR)


def parse_override(text: str) -> dict[str, Any]:
    """Turn ``a.b.c=value`` into ``{"a": {"b": {"c": value}}}``; the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, for example train.epochs=3")
    value = yaml.safe_load(raw) if raw.strip() else ""
    # Spark settings are dotted keys themselves: spark.conf.spark.sql.x=1 keeps the tail whole.
    parts = key.strip().split(".")
    if parts[:2] == ["spark", "conf"] and len(parts) > 2:
        parts = ["spark", "conf", ".".join(parts[2:])]
        value = str(value)
    nested: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        nested = {part: nested}
    return nested


def config_as_yaml(config: Config) -> str:
    """The merged, validated configuration as YAML, secrets redacted: what ``mlpipe config
    show`` prints and every tracked run logs as ``config.yaml``."""
    return yaml.safe_dump(redact(config.model_dump(mode="json")), sort_keys=False)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return dict(data)


def _merge_into(
    target: dict[str, Any],
    sources: dict[tuple[str, ...], str],
    update: Mapping[str, Any],
    source: str,
    prefix: tuple[str, ...] = (),
) -> None:
    for key, value in update.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], sources, value, source, path)
        else:
            target[key] = dict(value) if isinstance(value, Mapping) else value
            _record_sources(sources, value, source, path)


def _record_sources(sources: dict[tuple[str, ...], str], value: Any, source: str,
                    path: tuple[str, ...]) -> None:
    sources[path] = source
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _record_sources(sources, inner, source, (*path, str(key)))


def _describe(exc: ValidationError, sources: dict[tuple[str, ...], str]) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        # A declaration check names the key below the model it validated.
        below = getattr(error.get("ctx", {}).get("error"), "key", ())
        path = tuple(str(p) for p in (*error["loc"], *below))
        key = ".".join(path) or "(top level)"
        origin = _origin(path, sources)
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "value_error" and isinstance(error.get("input"), Mapping):
            message = str(error["msg"]).removeprefix("Value error, ")  # names what is wrong
        else:
            message = f"{error['msg']} (got {error.get('input')!r})"
        lines.append(f"  {origin}: {key}: {message}")
    return "\n".join(lines)


def _origin(path: tuple[str, ...], sources: dict[tuple[str, ...], str]) -> str:
    for end in range(len(path), 0, -1):
        if path[:end] in sources:
            return sources[path[:end]]
    return "conf/base.yaml"
