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

from croniter import croniter

from models.storage import Storage
from pipelines.orchestration.lock import PipelineLocked, pipeline_lock
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError
from pipelines.platform.layout import Layout

log = logging.getLogger(__name__)


def run_locked(config: Config, run: Callable[[], object]) -> object:
    """Run ``run`` holding the pipeline lock, waiting for it or not as configured."""
    settings, layout = config.schedule, Layout.of(config)
    with pipeline_lock(layout.storage, layout.pipeline_lock, wait=settings.on_overlap == "wait",
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
    layout = Layout.of(config)
    marker = layout.schedule_marker
    last = _last_fire(layout.storage, marker) or datetime.now(UTC)
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
        layout.storage.write_text(marker, json.dumps({"last_fire": last.isoformat()}))
    return fires


def _fire(config: Config, run: Callable[[], object], due: datetime) -> None:
    log.info("scheduled run for %s starting", due.isoformat())
    try:
        run_locked(config, run)
    except PipelineLocked as exc:
        log.warning("scheduled run for %s not started: %s", due.isoformat(), exc)
    except Exception:  # one failed run must not stop the schedule
        log.exception("scheduled run for %s failed", due.isoformat())


def _last_fire(storage: Storage, marker: str) -> datetime | None:
    try:
        return datetime.fromisoformat(json.loads(storage.read_text(marker))["last_fire"])
    except (OSError, ValueError, KeyError):
        return None
