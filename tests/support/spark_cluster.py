"""One real Spark standalone cluster per test session (a master, two one-core workers).

Its workers carry the session object store's credentials, so executors can read and
write an ``s3a://`` data root as well as a local one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipelines.services import TeamServices
from pipelines.services.spark_cluster import SparkCluster


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory,
                  team_services: TeamServices) -> Iterator[SparkCluster]:
    credentials = team_services.store.client_environment()
    with SparkCluster(tmp_path_factory.mktemp("spark-cluster"), workers=2, cores=1,
                      memory="2g", env=credentials) as cluster:
        yield cluster
