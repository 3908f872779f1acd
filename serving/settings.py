"""Typed serving settings; every default lives once, in conf/serving.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from models.project import PROJECT_ROOT

DEFAULT_CONF = PROJECT_ROOT / "conf" / "serving.yaml"


class ServingSettings(BaseModel):
    """The `serving:` section of the config.

    No field has a default here: the project's config loader merges conf/serving.yaml
    into the main config and validates that section with this class, so a default
    written here as well would be a second source of truth.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(ge=0, le=65535)
    workers: PositiveInt
    model_name: str
    max_batch_size: PositiveInt
    max_delay_ms: float = Field(ge=0)
    model_threads: int = Field(ge=0)
    max_queue: PositiveInt
    retry_after_s: PositiveInt
    allowed_batch_sizes: tuple[PositiveInt, ...] = Field(min_length=1)
    max_request_bytes: PositiveInt
    max_request_rows: PositiveInt
    max_body_bytes_in_flight: PositiveInt
    auth_token: str
    auth_token_file: str
    insecure: bool
    watch_interval_s: PositiveFloat
    deployment: str
    keep_alive_s: PositiveFloat
    graceful_shutdown_s: PositiveFloat
    replicas: PositiveInt
    balance: Literal["roundrobin", "leastconn", "random2", "reuseport"]
    health_check_interval_ms: PositiveInt
    health_check_fall: PositiveInt
    health_check_rise: PositiveInt
    health_check_timeout_ms: PositiveInt
    request_read_timeout_s: PositiveFloat
    balancer_max_connections: PositiveInt
    replica_max_connections: int = Field(ge=0)
    queue_timeout_ms: PositiveInt
    latency_target_ms: float = Field(ge=0)
    low_priority_max_wait_ms: float = Field(ge=0)
    shed_hold_ms: float = Field(ge=0)
    log_level: Literal["critical", "error", "warning", "info", "debug"]

    @model_validator(mode="after")
    def _check_replicas(self) -> ServingSettings:
        # Two ways to ask for processes (a fleet of replicas, uvicorn's own workers)
        # would leave it unclear which one N means.
        if self.replicas > 1 and self.workers > 1:
            raise ValueError("set replicas (a supervised fleet, with or without HAProxy) or "
                             "workers (uvicorn's processes sharing one socket), not both")
        return self

    @model_validator(mode="after")
    def _check_body_budget(self) -> ServingSettings:
        if self.max_body_bytes_in_flight < self.max_request_bytes:
            raise ValueError(
                f"max_body_bytes_in_flight ({self.max_body_bytes_in_flight}) is below "
                f"max_request_bytes ({self.max_request_bytes}): no request of the largest "
                "size allowed could ever be received")
        return self

    @model_validator(mode="after")
    def _check_batch_sizes(self) -> ServingSettings:
        sizes = self.allowed_batch_sizes
        if list(sizes) != sorted(set(sizes)):
            raise ValueError("allowed_batch_sizes must be strictly increasing")
        if self.max_batch_size > sizes[-1]:
            raise ValueError(
                f"max_batch_size ({self.max_batch_size}) exceeds the largest allowed batch "
                f"size ({sizes[-1]}): such batches could not be padded to an allowed size"
            )
        return self


def load_settings(path: Path = DEFAULT_CONF, **overrides: Any) -> ServingSettings:
    """Read the `serving:` section of a YAML file and apply overrides by key.

    This is the stand-alone path used by `python -m serving`; the project CLI merges
    the same file through its own loader instead.
    """
    with path.open() as handle:
        document = yaml.safe_load(handle)
    if not isinstance(document, dict) or "serving" not in document:
        raise ValueError(f"{path}: expected a single top-level key 'serving'")
    values = {**document["serving"], **overrides}
    return ServingSettings.model_validate(values)
