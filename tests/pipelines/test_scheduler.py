"""The pipeline lock (real processes) and the cron scheduler."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.config import Config
from pipelines.errors import ConfigError
from pipelines.lock import PipelineLocked, pipeline_lock, try_acquire
from pipelines.scheduler import lock_path, run_locked, run_schedule
from tests.conftest import make_config

HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipelines.lock import try_acquire
assert try_acquire(Path(sys.argv[1]), stale_after_s=3600)
print("held", flush=True)
time.sleep(60)
"""


def hold_lock_in_process(path: Path) -> subprocess.Popen:
    """Another process takes the lock and keeps it until killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_second_process_sees_the_lock_and_exits(config: Config) -> None:
    path = lock_path(config)
    holder = hold_lock_in_process(path)
    try:
        with pytest.raises(PipelineLocked, match=f"pid {holder.pid}"):
            run_locked(config, lambda: None)
    finally:
        holder.kill()
        holder.wait()


def test_lock_left_by_a_killed_run_is_cleared(config: Config,
                                              caplog: pytest.LogCaptureFixture) -> None:
    path = lock_path(config)
    holder = hold_lock_in_process(path)
    holder.kill()
    holder.wait()
    assert path.exists()
    with caplog.at_level(logging.WARNING):
        assert run_locked(config, lambda: "done") == "done"
    assert "stale" in caplog.text
    assert not path.exists()


def test_old_lock_from_another_host_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.lock"
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started_at": time.time()}))
    assert not try_acquire(path, stale_after_s=3600)
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1,
                                "started_at": time.time() - 7200}))
    assert try_acquire(path, stale_after_s=3600)


def test_waiting_run_starts_when_the_lock_is_released(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.lock"
    assert try_acquire(path, stale_after_s=3600)
    threading.Timer(1.0, path.unlink).start()
    started = time.monotonic()
    with pipeline_lock(path, wait=True, wait_timeout_s=30, stale_after_s=3600, poll_s=0.1):
        assert time.monotonic() - started >= 0.9
    assert not path.exists()


def test_schedule_fires_on_the_cron_expression(config: Config) -> None:
    times: list[float] = []
    fires = run_schedule(config, lambda: times.append(time.monotonic()),
                         cron="* * * * * *", max_runs=2)  # every second
    assert fires == 2 and len(times) == 2
    assert 0.5 < times[1] - times[0] < 2.5


def missed_config(tmp_path: Path, policy: str) -> Config:
    config = make_config(tmp_path / "data", f"schedule.missed_runs={policy}")
    marker = config.state_dir / "schedule.json"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps(
        {"last_fire": (datetime.now(UTC) - timedelta(hours=2)).isoformat()}))
    return config


def test_missed_run_is_caught_up_at_once(tmp_path: Path) -> None:
    config = missed_config(tmp_path, "catch_up")
    started = time.monotonic()
    run_schedule(config, lambda: None, cron="0 * * * *", max_runs=1)
    assert time.monotonic() - started < 5


def test_missed_run_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = missed_config(tmp_path, "skip")
    with caplog.at_level(logging.INFO):
        run_schedule(config, lambda: None, cron="* * * * * *", max_runs=1)
    assert "skipping the run due at" in caplog.text
    assert "catching up" not in caplog.text


def test_invalid_cron_names_the_key(config: Config) -> None:
    with pytest.raises(ConfigError, match="schedule.cron"):
        run_schedule(config, lambda: None, cron="every tuesday", max_runs=1)
