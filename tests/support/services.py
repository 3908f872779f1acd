"""One set of the team's real services (object store, PostgreSQL, MLflow tracking server)
per test session: starting them takes seconds, so every test that needs them shares it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipelines.services import TeamServices


@pytest.fixture(scope="session")
def team_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamServices]:
    with TeamServices(tmp_path_factory.mktemp("team-services")) as team:
        yield team
