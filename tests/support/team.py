"""Running ``mlpipe`` as a user of the team setup does: the team overlay, a root on the
session's object store, the session's tracking server and Spark cluster, the credentials
in the environment, and a working folder that must stay empty."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from models.storage import ObjectStoreSettings, Storage, join
from pipelines.services import TeamServices
from tests.conftest import CONF_DIR
from tests.support.processes import BIN_DIR

# Six days: three to train on, one to validate, two to test.
SLICE = ("seeding.start=2013-01-01", "seeding.end=2013-01-06",
         "features.train_end=2013-01-03", "features.validation_end=2013-01-04",
         "train_regression.reg_params=[0.01]", "train_deep.epochs=1",
         "train_deep.batch_size=64", "train_sequence.epochs=1",
         "train_sequence.batch_size=16", "horovod.num_proc=2",
         "spark.conf.spark.sql.shuffle.partitions=2",
         "spark.conf.spark.ui.showConsoleProgress=false", "spark.conf.spark.driver.memory=2g")


@dataclass
class TeamRoot:
    """One data root on the session's object store, and how to run mlpipe against it."""

    services: TeamServices
    workdir: Path
    spark_master: str = "local[2]"
    extra: tuple[str, ...] = ()
    name: str = field(default_factory=lambda: f"run-{uuid.uuid4().hex[:8]}")

    @property
    def root(self) -> str:
        return f"s3a://{self.services.bucket}/{self.name}"

    @property
    def storage(self) -> Storage:
        return Storage(ObjectStoreSettings(endpoint=self.services.store.endpoint,
                                           region="us-east-1", path_style_access=True,
                                           connect_timeout_s=5))

    def settings(self) -> tuple[str, ...]:
        return (*SLICE, f"data_root={self.root}",
                f"object_store.endpoint={self.services.store.endpoint}",
                f"mlflow.tracking_uri={self.services.tracking.uri}",
                f"mlflow.experiment={self.name}", f"spark.master={self.spark_master}",
                f"spark.app_name={self.name}", *self.extra)

    def environment(self, **changes: str) -> dict[str, str]:
        """This process's environment with the store's credentials and the pipeline's
        tracking identity (and ``changes``)."""
        return {**os.environ, **self.services.describe("pipeline"), **changes}

    def command(self, *args: str, extra: tuple[str, ...] = ()) -> list[str]:
        flags = [arg for item in (*self.settings(), *extra) for arg in ("--set", item)]
        return [str(BIN_DIR / "mlpipe"), "--config", str(CONF_DIR), "--env", "team", *flags,
                *args]

    def mlpipe(self, *args: str, extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
               timeout: int = 1500) -> subprocess.CompletedProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return subprocess.run(self.command(*args, extra=extra), capture_output=True, text=True,
                              timeout=timeout, cwd=self.workdir,
                              env=env or self.environment())

    def start(self, *args: str, logs: Path) -> subprocess.Popen:
        """Start mlpipe in the background, its output in ``logs``/stdout and ``logs``/stderr."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True)
        return subprocess.Popen(self.command(*args), cwd=self.workdir, env=self.environment(),
                                stdout=(logs / "stdout").open("w"),
                                stderr=(logs / "stderr").open("w"))

    def table(self, layer: str, name: str) -> pd.DataFrame:
        uri, options = self.storage.delta_options(join(self.root, "lake", layer, name))
        return DeltaTable(uri, storage_options=options).to_pandas()

    def files(self, *parts: str) -> list[str]:
        return [name for name, _ in self.storage.list_files(join(self.root, *parts))]


@pytest.fixture(scope="module")
def team_credentials(team_services: TeamServices) -> Iterator[None]:
    """The store's credentials and the pipeline's tracking identity in this process's
    environment, where every client reads them."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in team_services.describe("pipeline").items():
            patch.setenv(name, value)
        yield
