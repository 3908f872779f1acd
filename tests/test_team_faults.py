"""Faults of the shared parts, each as a user meets it with `mlpipe --env team`.

An unreachable object store, refused credentials, a missing bucket, an unreachable
tracking server or one that refuses the run's user stop the run before any work (exit 1,
the endpoint named, nothing written); an object store restarted in the middle of ingest
loses and duplicates no row. (Two runs started at once on one root are the team run
itself: tests/test_team.py.)
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from models.tracking_identity import TrackingIdentity
from pipelines.services import TeamServices
from pipelines.services.processes import free_port, stop_process_group
from tests.support.team import TeamRoot, team_credentials  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.usefixtures("team_credentials")]


@pytest.fixture
def team_root(team_services: TeamServices, tmp_path: Path) -> TeamRoot:
    return TeamRoot(team_services, tmp_path / "workdir")


def assert_nothing_written(root: TeamRoot) -> None:
    assert root.files() == [], "the run wrote to the object store"
    assert list(root.workdir.iterdir()) == [], "the run wrote to a local folder"


def test_an_unreachable_object_store_stops_the_run_before_any_work(team_root: TeamRoot) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = team_root.mlpipe("run", extra=(f"object_store.endpoint={dead}",))
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"object store {dead}" in result.stderr
    assert time.monotonic() - started < 120
    assert_nothing_written(team_root)


def test_wrong_credentials_stop_the_run_before_any_work(team_root: TeamRoot) -> None:
    result = team_root.mlpipe("run", env=team_root.environment(
        AWS_SECRET_ACCESS_KEY="not-the-secret"))
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"object store {team_root.services.store.endpoint}" in result.stderr
    assert "AWS_SECRET_ACCESS_KEY" in result.stderr
    assert_nothing_written(team_root)


def test_a_missing_bucket_is_named(team_root: TeamRoot) -> None:
    result = team_root.mlpipe("run", extra=("data_root=s3a://no-such-bucket/data",))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "no bucket 'no-such-bucket'" in result.stderr
    assert_nothing_written(team_root)


def test_an_unreachable_tracking_server_stops_the_run_before_any_work(
        team_root: TeamRoot) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = team_root.mlpipe("run", extra=(f"mlflow.tracking_uri={dead}",))
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"MLflow tracking server {dead} is unreachable" in result.stderr
    assert_nothing_written(team_root)


def test_a_tracking_identity_the_server_refuses_stops_the_run_before_any_work(
        team_root: TeamRoot, tmp_path: Path) -> None:
    pipeline = team_root.services.identities["pipeline"]
    wrong = TrackingIdentity(pipeline.username, "not-the-password").write(tmp_path / "creds")
    environment = team_root.environment()
    for name in TrackingIdentity("", "").environment():
        environment.pop(name)
    result = team_root.mlpipe("run", extra=(f"mlflow.credentials_file={wrong}",),
                              env=environment)
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"refused user '{pipeline.username}' (HTTP 401)" in result.stderr
    assert "not-the-password" not in result.stdout + result.stderr
    assert_nothing_written(team_root)


def landing_rows(root: TeamRoot, source: str) -> Counter[str]:
    """Data rows per landed file (header excluded)."""
    rows: Counter[str] = Counter()
    for name in root.files("landing", source):
        text = root.storage.read_text(f"{root.root}/landing/{source}/{name}")
        rows[name] = len(text.splitlines()) - 1
    return rows


def lake_rows(root: TeamRoot, source: str) -> Counter[str]:
    """Rows per landed file in bronze and quarantine together."""
    rows: Counter[str] = Counter()
    for layer in ("bronze", "quarantine"):
        if root.files("lake", layer, source):
            files = root.table(layer, source)["_source_file"]
            rows.update(name.rsplit("/", 1)[-1] for name in files)
    return rows


def test_a_store_restart_during_ingest_loses_and_duplicates_nothing(
        team_root: TeamRoot) -> None:
    seeded = team_root.mlpipe("step", "seed", "--to", "2013-01-02")  # two files a source
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    team_root.workdir.mkdir(parents=True, exist_ok=True)
    one_file_a_batch = ("ingest.max_files_per_trigger=1",)
    ingest = subprocess.Popen(team_root.command("step", "ingest", extra=one_file_a_batch),
                              cwd=team_root.workdir, env=team_root.environment(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    deadline = time.monotonic() + 300
    while not any(name.endswith(".json")
                  for name in team_root.files("lake", "bronze", "flights", "_delta_log")):
        assert ingest.poll() is None, ingest.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "ingest committed nothing in 5 minutes"
        time.sleep(0.5)
    team_root.services.store.restart()  # mid-ingest: later batches meet a store that went away
    try:  # it may fail, ride it out, or be stopped by its user; the rerun must settle all three
        ingest.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        stop_process_group(ingest)
        ingest.communicate()
    rerun = team_root.mlpipe("step", "ingest")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for source in ("flights", "weather"):
        landed = landing_rows(team_root, source)
        assert sum(landed.values()) > 0
        assert lake_rows(team_root, source) == landed, source
