"""Shared fixtures: one real SparkSession with Delta for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from xdist.workermanage import WorkerController

from models.project import PROJECT_ROOT
from pipelines.platform.config import Config, load_config
from pipelines.platform.spark import build_spark_session
from tests.support.scheduling import assign_groups, check_groups_took_effect

CONF_DIR = PROJECT_ROOT / "conf"

# Small shuffles and no UI: the suite runs on two cores.
TEST_SETTINGS = (
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "spark.conf.spark.default.parallelism=2",
    "spark.conf.spark.ui.showConsoleProgress=false",
    "spark.conf.spark.driver.memory=2g",
)


def make_config(data_root: Path, *overrides: str, conf_dir: Path = CONF_DIR) -> Config:
    """The base config with the data root moved into a test folder."""
    return load_config(env="base", conf_dir=conf_dir,
                       overrides=(f"data_root={data_root}", *TEST_SETTINGS, *overrides))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Spread the suite over parallel workers without building a shared fixture twice."""
    assign_groups(items)


def pytest_xdist_node_collection_finished(node: WorkerController, ids: list[str]) -> None:
    check_groups_took_effect(node.config, ids)


@pytest.fixture(scope="session")
def session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlpipe-data")


@pytest.fixture(scope="session")
def spark(session_root: Path) -> Iterator[SparkSession]:
    session = build_spark_session(make_config(session_root))
    yield session
    session.stop()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A config whose data root is this test's own temporary folder."""
    return make_config(tmp_path / "data")


# The team's real services (object store, PostgreSQL, tracking server), one set per session.
from tests.support.services import team_services  # noqa: E402, F401

# One Spark standalone cluster per session, for the jobs under spark-submit and the team run.
from tests.support.spark_cluster import spark_cluster  # noqa: E402, F401
