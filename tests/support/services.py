"""One set of the team's real services (object store, PostgreSQL, MLflow tracking server)
per test session: starting them takes seconds, so every test that needs them shares it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.services import TeamServices
from tests.conftest import make_config


@pytest.fixture(scope="session")
def team_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamServices]:
    artifacts = make_config(Path(".")).services.mlflow_artifacts  # conf/base.yaml's
    with TeamServices(tmp_path_factory.mktemp("team-services"), artifacts=artifacts) as team:
        yield team
