"""A lock file that keeps two pipeline runs from overlapping, and notices stale ones.

The lock is created atomically (``O_EXCL``) and names its holder (host, pid,
start time). A lock whose process is gone, on this host, or older than the
configured limit, was left by a killed run: it is cleared with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipelines.errors import MlpipeError

log = logging.getLogger(__name__)


class PipelineLocked(MlpipeError):
    """Another run holds the lock."""


def read_holder(path: Path) -> dict[str, Any] | None:
    """Who holds the lock, or None if nobody does (or the file is unreadable)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_stale(holder: dict[str, Any], stale_after_s: float) -> bool:
    """True when the holder is surely gone: a dead pid on this host, or too old anywhere."""
    if time.time() - float(holder.get("started_at", 0)) > stale_after_s:
        return True
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, ValueError):
        return False
    return False


def try_acquire(path: Path, stale_after_s: float) -> bool:
    """Take the lock if it is free or stale; False if a live run holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_holder(path)
            if holder is not None and not is_stale(holder, stale_after_s):
                return False
            log.warning("clearing a stale pipeline lock %s left by %s", path, holder)
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(),
                       "started_at": time.time()}, handle)
        return True
    return False


@contextmanager
def pipeline_lock(path: Path, *, wait: bool, wait_timeout_s: float, stale_after_s: float,
                  poll_s: float = 1.0) -> Iterator[None]:
    """Hold the lock for the block; exit at once or wait for it, as configured."""
    deadline = time.monotonic() + wait_timeout_s
    while not try_acquire(path, stale_after_s):
        holder = read_holder(path) or {}
        if not wait or time.monotonic() >= deadline:
            raise PipelineLocked(
                f"another pipeline run holds {path} (host {holder.get('host')}, "
                f"pid {holder.get('pid')}); not starting a second one")
        time.sleep(poll_s)
    try:
        yield
    finally:
        if (read_holder(path) or {}).get("pid") == os.getpid():
            path.unlink(missing_ok=True)
