"""Typed, validated configuration: YAML files -> one frozen object per run.

Precedence, lowest first: the base files (``conf/base.yaml``, then ``pipeline.yaml``
and ``serving.yaml``, which hold the step and serving sections) < the chosen dataset's
declarations (every ``conf/datasets/<dataset>/*.yaml``, ``dataset`` being read from all
layers first) < ``conf/<env>.yaml`` < ``conf/local.yaml`` < ``--set a.b=c``. Every key
remembers the file (or ``--set``) it came from, so a validation error names both the key
and where it was written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from models.storage import is_remote
from pipelines.platform.errors import ConfigError
from pipelines.platform.feature_declarations import (
    SEQUENCE_LABEL,
    FeaturesConfig,
    SequencesConfig,
)
from pipelines.platform.model_declarations import (
    SECTION_OF,
    ModelDeclaration,
    Trainer,
    catalogue_problems,
)
from pipelines.platform.section import DeclarationError, Section, check_import_path
from pipelines.platform.source_declarations import SourceDeclaration
from serving.settings import ServingSettings

ENV_VARIABLE = "MLPIPE_ENV"
CONF_DIR_VARIABLE = "MLPIPE_CONF_DIR"
DEFAULT_CONF_DIR = Path("conf")
BASE_FILES = ("base.yaml", "pipeline.yaml", "serving.yaml")
DATASETS_DIR = "datasets"
LOCAL_OVERLAY = "local"


class SparkConfig(Section):
    app_name: str
    master: str
    log_level: str
    conf: dict[str, str] = Field(default_factory=dict)


class MlflowConfig(Section):
    tracking_uri: str
    registry_uri: str
    artifact_root: str
    experiment: str
    ui_host: str
    ui_port: int
    connect_timeout_s: float


class ObjectStoreConfig(Section):
    """The object store behind an ``s3a://`` data root; credentials come from the environment."""

    endpoint: str
    region: str
    path_style_access: bool
    connect_timeout_s: float = Field(gt=0)


class SeedingConfig(Section):
    """``mlpipe step seed``: a dataset's embedded data, and which days of it land as raw files.

    Declared per dataset (``conf/datasets/<dataset>/seeding.yaml``), because what lands by
    day and what as one snapshot is a property of the data. Empty (no ``loader``) for a
    dataset with no embedded data: its sources arrive from elsewhere. That the names are
    declared sources is checked where they are resolved (``pipelines.ingest.seed``).
    """

    # A name for messages.
    source: str = ""
    # "module:function", called with a Source; returns a pandas DataFrame of its columns.
    loader: str | None = None
    # Sources landed as one CSV per day -> the columns that give the day: three integer
    # columns (year, month, day) or one date or timestamp column.
    daily: dict[str, list[str]] = Field(default_factory=dict)
    # Sources landed as one file each, <source>.csv.
    snapshots: list[str] = Field(default_factory=list)
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _complete(self) -> SeedingConfig:
        if self.loader is None:
            if self.daily or self.snapshots:
                raise DeclarationError(("loader",), "required when daily or snapshots are "
                                                    "declared (module:function)")
            return self
        check_import_path(self.loader, ("loader",), "pipelines.ingest.seed:load_nycflights13")
        for key in ("start", "end"):
            if getattr(self, key) is None:
                raise DeclarationError((key,), "required key is missing")
        if self.end < self.start:
            raise DeclarationError(("end",), f"{self.end} is before start ({self.start})")
        for name, columns in self.daily.items():
            if len(columns) not in (1, 3):
                raise DeclarationError(("daily", name), f"{columns} gives no day: name three "
                                       "integer columns (year, month, day) or one date column")
        for name in self.snapshots:
            if name in self.daily:
                raise DeclarationError(("snapshots",), f"{name!r} is daily too; land it "
                                                       "one way")
        return self


class IngestConfig(Section):
    """``mlpipe step ingest``: landing sources read incrementally into bronze."""

    # Empty: every source the dataset declares.
    sources: list[str] = Field(default_factory=list)
    max_files_per_trigger: int


class SynthesizeConfig(Section):
    """``mlpipe step synthesize``: replayed copies of the flights for benchmarks at scale."""

    scale: int
    max_shift_min: int
    delay_noise_min: float
    files_per_copy: int


class TrainRegressionConfig(Section):
    reg_params: list[float] = Field(min_length=1)
    elastic_net_param: float = Field(ge=0, le=1)
    max_iter: int = Field(gt=0)
    tol: float = Field(gt=0)
    calibration_bins: int = Field(gt=1)


class EvaluateConfig(Section):
    """``mlpipe step evaluate``: the split every model of the catalogue is judged on."""

    split: str


class PromoteConfig(Section):
    margin: float = Field(ge=0)


class PipelineConfig(Section):
    """The DAG: each step with the steps it runs after."""

    steps: dict[str, list[str]]


class ScheduleConfig(Section):
    cron: str
    missed_runs: Literal["catch_up", "skip"]
    on_overlap: Literal["exit", "wait"]
    wait_timeout_s: float
    stale_lock_after_s: float


class TrainingSchedule(Section):
    """What every Horovod-trained model shares: optimisation and early stopping.

    ``batch_size`` is per worker; the learning rate is scaled by the number of
    workers after ``warmup_epochs`` of linear warm-up (Goyal et al.'s recipe).
    """

    learning_rate: float
    batch_size: int
    epochs: int
    warmup_epochs: int
    patience: int
    shuffle: bool
    mixed_precision: bool


class TrainDeepConfig(TrainingSchedule):
    """``mlpipe step train_deep``: the MLP over the flight features (predicts ``is_delayed``)."""

    hidden_units: list[int]
    dropout: float
    max_embedding_dim: int


class TrainSequenceConfig(TrainingSchedule):
    """``mlpipe step train_sequence``: the recurrent forecaster over per-origin hourly windows."""

    cell: Literal["lstm", "gru", "transformer"]
    units: list[int]
    dropout: float
    heads: int
    window_column: str


class MpiConfig(Section):
    """Hosts and RDMA settings for ``horovod.launcher: mpi`` (NCCL over InfiniBand or RoCE)."""

    hosts: list[str]
    transport: Literal["infiniband", "roce", "tcp"]
    ib_hca: str
    gid_index: int
    socket_ifname: str
    gpudirect_level: str
    ucx_net_devices: str
    python: str
    env: dict[str, str]
    rsh_agent: str
    btl: str


class NetworkProfile(Section):
    """The defaults ``horovod.network_profile`` selects, chosen with ``bench/network.py``'s model.

    They fill only the keys left null (``horovod.fusion_threshold_mb``,
    ``horovod.fp16_allreduce``, ``train_deep.batch_size``, ``train_sequence.batch_size``);
    a value written anywhere (a base file, an overlay, ``--set``) wins.
    """

    fusion_threshold_mb: int
    fp16_allreduce: bool
    train_deep_batch_size: int
    train_sequence_batch_size: int


# Key filled from the network profile -> the profile's field.
PROFILE_KEYS = {("horovod", "fusion_threshold_mb"): "fusion_threshold_mb",
                ("horovod", "fp16_allreduce"): "fp16_allreduce",
                ("train_deep", "batch_size"): "train_deep_batch_size",
                ("train_sequence", "batch_size"): "train_sequence_batch_size"}


class HorovodConfig(Section):
    """How the training workers are launched and how they talk to each other."""

    launcher: Literal["local", "spark", "mpi"]
    num_proc: int
    network_interface: str
    network_profile: str
    network_profiles: dict[str, NetworkProfile]
    threads_per_worker: int
    fp16_allreduce: bool
    fusion_threshold_mb: int
    cycle_time_ms: float
    start_timeout_s: int
    timeout_s: int
    mpi: MpiConfig


class ServicesConfig(Section):
    """``mlpipe services up``: local stand-ins for the shared services of ``conf/team.yaml``."""

    dir: str
    postgres_port: int
    mlflow_artifacts: str
    spark_workers: int = Field(ge=1)
    spark_worker_cores: int = Field(ge=1)
    spark_worker_memory: str


class Config(Section):
    """The whole configuration of one run; sections are added as capabilities land."""

    data_root: str
    dataset: str
    sources: dict[str, SourceDeclaration] = Field(min_length=1)
    # Empty: a dataset that is only ingested (its training steps train nothing).
    models: dict[str, ModelDeclaration] = Field(default_factory=dict)
    object_store: ObjectStoreConfig
    seed: int
    spark: SparkConfig
    mlflow: MlflowConfig
    seeding: SeedingConfig
    ingest: IngestConfig
    # None: a dataset that is only ingested (no feature view yet).
    features: FeaturesConfig | None = None
    # None: the dataset has no sequence table (and so no sequence model).
    sequences: SequencesConfig | None = None
    synthesize: SynthesizeConfig
    train_deep: TrainDeepConfig
    train_sequence: TrainSequenceConfig
    horovod: HorovodConfig
    train_regression: TrainRegressionConfig
    evaluate: EvaluateConfig
    promote: PromoteConfig
    serving: ServingSettings
    pipeline: PipelineConfig
    schedule: ScheduleConfig
    services: ServicesConfig
    env: str = "base"

    @field_validator("data_root")
    @classmethod
    def _supported_root(cls, value: str) -> str:
        is_remote(value)  # a local path or an object-store URI; anything else is refused here
        return value

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment of every run: ``mlflow.experiment``, or one per dataset."""
        return self.mlflow.experiment or f"mlpipe-{self.dataset}"

    def models_trained_by(self, *trainers: Trainer) -> dict[str, ModelDeclaration]:
        """The catalogue's models that these trainers fit, by registered name."""
        return {name: model for name, model in self.models.items() if model.trainer in trainers}

    def hyperparameters(self, model_name: str) -> Section:
        """A model's trainer section with the keys of its ``params`` replaced, validated."""
        model = self.models[model_name]
        section = getattr(self, SECTION_OF[model.trainer])
        return type(section).model_validate({**section.model_dump(), **model.params})

    @property
    def ingested_sources(self) -> list[str]:
        """The sources ``mlpipe step ingest`` reads: ``ingest.sources``, or every declared one."""
        return self.ingest.sources or list(self.sources)

    def fingerprint(self, *sections: str) -> str:
        """A short stable hash of the whole config or of the named sections."""
        data = self.model_dump(mode="json")
        if sections:
            data = {name: data[name] for name in sections}
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


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
    problems = [*catalogue_problems(config.models), *declaration_problems(config),
                *params_problems(config)]
    undeclared = [name for name in config.ingest.sources if name not in config.sources]
    if undeclared:
        problems.append((("ingest", "sources"),
                         f"{', '.join(map(repr, undeclared))} is not declared by dataset "
                         f"{config.dataset!r}, which declares {', '.join(config.sources)}"))
    if problems:
        raise ConfigError("\n  ".join(["invalid configuration:", *[
            f"{_origin(key, sources)}: {'.'.join(key)}: {problem}" for key, problem in problems]]))
    return config


def params_problems(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """``(key, problem)`` for each model ``params`` key its trainer's section refuses."""
    problems = []
    for name, model in config.models.items():
        try:
            config.hyperparameters(name)
        except ValidationError as exc:
            for error in exc.errors():
                key = ("models", name, "params", *map(str, error["loc"]))
                what = ("not a key of " + SECTION_OF[model.trainer]
                        if error["type"] == "extra_forbidden" else error["msg"])
                problems.append((key, what))
    return problems


def declaration_problems(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """``(key, problem)`` where the feature and model declarations do not fit each other:
    a view reading an undeclared source, a model whose table or label nothing builds."""
    features, sequences = config.features, config.sequences
    if features is None:
        if sequences is not None:
            return [(("sequences",), "the split dates are the features section's; declare "
                                     "features (features.yaml) too")]
        return [(("models", name, "table"), f"nothing builds {model.table!r}: the dataset "
                                            "declares no features (features.yaml)")
                for name, model in config.models.items()]
    problems = []
    views = {"features": features.view}
    if sequences is not None:
        views["sequences"] = sequences.view
    for section, view in views.items():
        unknown = [name for name in view.inputs if name not in config.sources]
        if unknown:
            problems.append(((section, "view", "inputs"),
                             f"{', '.join(unknown)} is not a declared source; dataset "
                             f"{config.dataset!r} declares {', '.join(config.sources)}"))
    tables = {features.table: ("linear", "logistic", "mlp")}
    if sequences is not None:
        tables[sequences.table] = ("sequence",)
    for name, model in config.models.items():
        if model.trainer not in tables.get(model.table, ()):
            built = [t for t, trainers in tables.items() if model.trainer in trainers]
            problems.append((("models", name, "table"),
                             f"{model.table!r} is not a table the {model.trainer} trainer can "
                             f"learn from; the features step builds "
                             f"{' and '.join(built) or 'none for it (declare sequences)'}"))
        elif model.table == features.table and model.label not in features.labels:
            problems.append((("models", name, "label"),
                             f"{model.label!r} is not a label of {features.table}; "
                             f"features.labels declares {', '.join(features.labels)}"))
        elif sequences is not None and model.table == sequences.table \
                and model.label != SEQUENCE_LABEL:
            problems.append((("models", name, "label"),
                             f"the sequence table's label is {SEQUENCE_LABEL!r}, the next "
                             f"period's {sequences.target}"))
    return problems


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
    """The merged, validated configuration as YAML (what ``mlpipe config show`` prints)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


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
