"""The tracking server goes down in the middle of promote, at every write it makes.

A real `mlflow server` behind a proxy that stops answering after the N-th write, for N =
0, 1, 2, ... until promote gets through: each cut run fails, and the rerun against the
server, up again, leaves what an uninterrupted promote leaves: the candidate crowned,
`@candidate` gone, its decision `promoted`.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from pipelines.orchestration.step_runner import run_step
from pipelines.platform.config import Config
from pipelines.platform.registry import (
    CANDIDATE,
    CHAMPION,
    EVAL_CANDIDATE_TAG,
    EVAL_CHAMPION_TAG,
    EVAL_CHAMPION_VERSION_TAG,
    EVAL_METRIC_TAG,
    NO_CHAMPION,
    deployment_of,
    register_candidate,
    tag_version,
    version_by_alias,
)
from pipelines.platform.step import StepContext
from pipelines.platform.tracking import point_client, resolve_target
from pipelines.release.promote import PROMOTE
from serving.provenance import DECISION_TAG, PROMOTED
from tests.conftest import make_config
from tests.pipelines.test_provenance import NAME, logged, no_spark
from tests.support.http_proxy import counting_proxy
from tests.support.processes import mlflow_server

pytestmark = pytest.mark.slow


def promote(config: Config) -> None:
    point_client(resolve_target(config))
    run_step(PROMOTE, config, StepContext(config, session_factory=no_spark))


def evaluated_candidate(config: Config, model: tuple[str, str], champion: str | None) -> str:
    """A new @candidate version, scored by evaluate as better than ``champion``."""
    point_client(resolve_target(config))
    version = register_candidate(NAME, *model, deployment_of(config))
    tag_version(version, {EVAL_METRIC_TAG: "rmse", EVAL_CANDIDATE_TAG: "1.0",
                          EVAL_CHAMPION_TAG: "2.0" if champion else NO_CHAMPION,
                          EVAL_CHAMPION_VERSION_TAG: champion or NO_CHAMPION})
    return version.version


def test_promote_cut_short_at_any_write_is_finished_by_the_rerun(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a cut fails at once
    folder = tmp_path / "mlflow-server"
    folder.mkdir()
    data_root = tmp_path / "data"
    with mlflow_server(folder) as upstream:
        server = make_config(data_root, f"mlflow.tracking_uri={upstream}")
        point_client(resolve_target(server))
        model = logged(server)
        champion: str | None = None
        for cut in itertools.count():
            candidate = evaluated_candidate(server, model, champion)
            with counting_proxy(upstream, down_after_writes=cut) as (uri, counts):
                try:
                    promote(make_config(data_root, f"mlflow.tracking_uri={uri}"))
                except Exception:  # noqa: BLE001 - whatever the client raises for a dead server
                    pass
            point_client(resolve_target(server))
            while mlflow.active_run() is not None:  # a run whose end the cut swallowed
                mlflow.end_run("FAILED")
            if not counts["<refused>"]:  # promote never met the cut: every point covered
                break
            promote(server)
            client = MlflowClient()
            assert version_by_alias(NAME, CANDIDATE) is None, f"cut after {cut} writes"
            assert client.get_model_version_by_alias(NAME, CHAMPION).version == candidate, \
                f"cut after {cut} writes"
            assert client.get_model_version(NAME, candidate).tags[DECISION_TAG] == PROMOTED, \
                f"cut after {cut} writes"
            champion = candidate
    assert cut >= 4, "promote made fewer writes than it should"
