"""The configuration's schema: one frozen pydantic model per section, and the whole.

Only the shape and each section's own checks live here: reading the YAML layers is the
job of :mod:`pipelines.platform.config`, and the checks across sections are in
:mod:`pipelines.platform.config_checks`. Sections the training workers and the storage
layer read as they are (``object_store``, ``horovod.mpi``, the training schedule) are the
classes of :mod:`models`, which may not import ``pipelines``; here they are only used.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator

from models.storage import ObjectStoreSettings, is_remote
from models.training.mpi import MpiSettings
from models.training.task import Schedule
from pipelines.platform.feature_declarations import FeaturesConfig, SequencesConfig
from pipelines.platform.model_declarations import SECTION_OF, ModelDeclaration, Trainer
from pipelines.platform.section import DeclarationError, Section, check_import_path
from pipelines.platform.source_declarations import SourceDeclaration
from serving.settings import ServingSettings


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
    # Empty: the data root (pipelines.platform.registry.deployment_of).
    deployment: str
    ui_host: str
    ui_port: int
    connect_timeout_s: float
    # A private file with the identity to present to a server with authentication
    # (models/tracking_identity.py); MLFLOW_TRACKING_USERNAME/PASSWORD win.
    credentials_file: str = ""


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
    # Spark's maxFileAge, a Spark time string (conf/pipeline.yaml says why it is long).
    max_file_age: str = Field(pattern=r"^[0-9]+(us|ms|s|m|min|h|d)$")


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


class TrainDeepConfig(Section, Schedule):
    """``mlpipe step train_deep``: the MLP over the flight features (predicts ``is_delayed``)."""

    hidden_units: list[int]
    dropout: float
    max_embedding_dim: int


class TrainSequenceConfig(Section, Schedule):
    """``mlpipe step train_sequence``: the recurrent forecaster over per-origin hourly windows."""

    cell: Literal["lstm", "gru", "transformer"]
    units: list[int]
    dropout: float
    heads: int
    window_column: str


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
    mpi: MpiSettings


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
    object_store: ObjectStoreSettings
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
