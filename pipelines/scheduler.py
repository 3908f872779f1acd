"""``mlpipe schedule``: run the pipeline on a cron expression, as a long-lived process.

Each run takes the pipeline lock, so a run that is still going when the next one
is due is never doubled. Fire times that pass while a run is going, or while the
scheduler was down, are either caught up (one run, at once) or skipped, as set in
``schedule.missed_runs``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from croniter import croniter

from pipelines.config import Config
from pipelines.errors import ConfigError
from pipelines.lock import PipelineLocked, pipeline_lock

log = logging.getLogger(__name__)


def lock_path(config: Config) -> Path:
    return config.state_dir / "pipeline.lock"


def run_locked(config: Config, run: Callable[[], object]) -> object:
    """Run ``run`` holding the pipeline lock, waiting for it or not as configured."""
    settings = config.schedule
    with pipeline_lock(lock_path(config), wait=settings.on_overlap == "wait",
                       wait_timeout_s=settings.wait_timeout_s,
                       stale_after_s=settings.stale_lock_after_s):
        return run()


def next_fire(expression: str, after: datetime) -> datetime:
    return croniter(expression, after).get_next(datetime)


def run_schedule(config: Config, run: Callable[[], object], *, cron: str | None = None,
                 max_runs: int | None = None) -> int:
    """Fire ``run`` on the schedule until interrupted (or ``max_runs`` fires); returns fires."""
    expression = cron or config.schedule.cron
    if not croniter.is_valid(expression):
        raise ConfigError(f"schedule.cron: {expression!r} is not a valid cron expression")
    marker = config.state_dir / "schedule.json"
    last = _last_fire(marker) or datetime.now(UTC)
    fires = 0
    log.info("schedule %r: next run at %s", expression, next_fire(expression, last).isoformat())
    while max_runs is None or fires < max_runs:
        due = next_fire(expression, last)
        now = datetime.now(UTC)
        if due <= now and config.schedule.missed_runs == "skip":
            log.warning("skipping the run due at %s (missed); next at %s",
                        due.isoformat(), next_fire(expression, now).isoformat())
            last = now
            continue
        if due > now:
            time.sleep((due - now).total_seconds())
        else:
            log.info("catching up on the run due at %s", due.isoformat())
        fires += 1
        _fire(config, run, due)
        last = due if due > now else datetime.now(UTC)
        _save_last_fire(marker, last)
    return fires


def _fire(config: Config, run: Callable[[], object], due: datetime) -> None:
    log.info("scheduled run for %s starting", due.isoformat())
    try:
        run_locked(config, run)
    except PipelineLocked as exc:
        log.warning("scheduled run for %s not started: %s", due.isoformat(), exc)
    except Exception:  # one failed run must not stop the schedule
        log.exception("scheduled run for %s failed", due.isoformat())


def _last_fire(marker: Path) -> datetime | None:
    try:
        return datetime.fromisoformat(json.loads(marker.read_text())["last_fire"])
    except (OSError, ValueError, KeyError):
        return None


def _save_last_fire(marker: Path, when: datetime) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"last_fire": when.isoformat()}))
