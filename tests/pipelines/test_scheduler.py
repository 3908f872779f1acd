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

from pipelines.orchestration.lock import PipelineLocked, pipeline_lock, try_acquire
from pipelines.orchestration.scheduler import run_locked, run_schedule
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError
from pipelines.platform.layout import Layout
from tests.conftest import CONF_DIR, make_config

HOLD_LOCK = """
import sys, time
from pipelines.orchestration.lock import try_acquire
from pipelines.platform.config import load_config
from pipelines.platform.layout import Layout
layout = Layout.of(load_config(env="base", conf_dir=sys.argv[1],
                               overrides=[f"data_root={sys.argv[2]}"]))
assert try_acquire(layout.storage, layout.pipeline_lock, stale_after_s=3600)
print("held", flush=True)
time.sleep(60)
"""


def hold_lock_in_process(layout: Layout) -> subprocess.Popen:
    """Another process takes the lock of the same data root and keeps it until killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(CONF_DIR), layout.root],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_second_process_sees_the_lock_and_exits(config: Config) -> None:
    holder = hold_lock_in_process(Layout.of(config))
    try:
        with pytest.raises(PipelineLocked, match=f"pid {holder.pid}"):
            run_locked(config, lambda: None)
    finally:
        holder.kill()
        holder.wait()


def test_a_single_step_does_not_run_beside_a_run_and_names_the_holder(config: Config) -> None:
    layout = Layout.of(config)
    holder = hold_lock_in_process(layout)
    try:
        step = subprocess.run(
            [str(Path(sys.executable).with_name("mlpipe")), "--config", str(CONF_DIR),
             "--set", f"data_root={layout.root}", "--set", "seeding.end=2013-01-02",
             "step", "seed"], capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert step.returncode == 1, step.stderr
    assert f"pid {holder.pid}" in step.stderr
    assert not layout.storage.exists(layout.landing("flights"))


def test_lock_left_by_a_killed_run_is_cleared(config: Config,
                                              caplog: pytest.LogCaptureFixture) -> None:
    layout = Layout.of(config)
    holder = hold_lock_in_process(layout)
    holder.kill()
    holder.wait()
    assert layout.storage.exists(layout.pipeline_lock)
    with caplog.at_level(logging.WARNING):
        assert run_locked(config, lambda: "done") == "done"
    assert "stale" in caplog.text
    assert not layout.storage.exists(layout.pipeline_lock)


def test_old_lock_from_another_host_is_stale(config: Config) -> None:
    layout = Layout.of(config)
    storage, path = layout.storage, layout.pipeline_lock
    storage.write_text(path, json.dumps({"host": "elsewhere", "pid": 1,
                                         "started_at": time.time()}))
    assert not try_acquire(storage, path, stale_after_s=3600)
    storage.write_text(path, json.dumps({"host": "elsewhere", "pid": 1,
                                         "started_at": time.time() - 7200}))
    assert try_acquire(storage, path, stale_after_s=3600, record={"token": "mine"})
    assert json.loads(storage.read_text(path)) == {"token": "mine"}


def test_waiting_run_starts_when_the_lock_is_released(config: Config) -> None:
    layout = Layout.of(config)
    storage, path = layout.storage, layout.pipeline_lock
    assert try_acquire(storage, path, stale_after_s=3600)
    threading.Timer(1.0, storage.delete, args=(path,)).start()
    started = time.monotonic()
    with pipeline_lock(storage, path, wait=True, wait_timeout_s=30, stale_after_s=3600,
                       poll_s=0.1):
        assert time.monotonic() - started >= 0.9
        assert storage.exists(path)
    assert not storage.exists(path)


def test_schedule_fires_on_the_cron_expression(config: Config) -> None:
    times: list[float] = []
    fires = run_schedule(config, lambda: times.append(time.monotonic()),
                         cron="* * * * * *", max_runs=2)  # every second
    assert fires == 2 and len(times) == 2
    assert 0.5 < times[1] - times[0] < 2.5


def missed_config(tmp_path: Path, policy: str) -> Config:
    config = make_config(tmp_path / "data", f"schedule.missed_runs={policy}")
    layout = Layout.of(config)
    layout.storage.write_text(layout.schedule_marker, json.dumps(
        {"last_fire": (datetime.now(UTC) - timedelta(hours=2)).isoformat()}))
    return config


def test_missed_run_is_caught_up_at_once(tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    config = missed_config(tmp_path, "catch_up")
    started = time.monotonic()
    ran_after: list[float] = []
    with caplog.at_level(logging.INFO):
        fires = run_schedule(config, lambda: ran_after.append(time.monotonic() - started),
                             cron="0 * * * *", max_runs=1)
    assert fires == 1 and len(ran_after) == 1
    assert ran_after[0] < 5
    assert "catching up on the run due at" in caplog.text


def test_missed_run_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = missed_config(tmp_path, "skip")
    with caplog.at_level(logging.INFO):
        run_schedule(config, lambda: None, cron="* * * * * *", max_runs=1)
    assert "skipping the run due at" in caplog.text
    assert "catching up" not in caplog.text


def test_invalid_cron_names_the_key(config: Config) -> None:
    with pytest.raises(ConfigError, match="schedule.cron"):
        run_schedule(config, lambda: None, cron="every tuesday", max_runs=1)
