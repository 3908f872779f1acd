"""The pipeline lock: one run at a time per data root, on any number of hosts.

The lock is a small JSON file under the data root naming its holder (host, pid,
start time, a token of its own). It is created only if absent, which the storage
decides atomically: ``O_EXCL`` on a local disk, a conditional PUT
(``If-None-Match: *``) on an object store, so two hosts racing for a remote root
cannot both win. A lock whose process is gone (on this host) or that is older than
``schedule.stale_lock_after_s`` (anywhere) was left by a killed run: it is taken over
with a write that succeeds only if the lock is still the stale one (``If-Match``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from models.storage import Storage
from pipelines.platform.errors import MlpipeError

log = logging.getLogger(__name__)


class PipelineLocked(MlpipeError):
    """Another run holds the lock."""


def holder_record() -> dict[str, Any]:
    """What this process writes into the lock it takes."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started_at": time.time(),
            "token": uuid.uuid4().hex}


def read_holder(storage: Storage, location: str) -> tuple[dict[str, Any], str] | None:
    """Who holds the lock and the lock's version tag, or None if nobody does."""
    current = storage.read_tagged(location)
    if current is None:
        return None
    try:
        holder = json.loads(current[0])
    except ValueError:
        holder = {}  # torn or foreign: treated as stale below, since it has no start time
    return (holder if isinstance(holder, dict) else {}), current[1]


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


def try_acquire(storage: Storage, location: str, stale_after_s: float,
                record: dict[str, Any] | None = None) -> bool:
    """Take the lock if it is free or stale; False if a live run holds it."""
    record = record or holder_record()
    data = json.dumps(record).encode()
    if storage.create_exclusive(location, data):
        return True
    current = read_holder(storage, location)
    if current is None:  # released between the two calls: try once more
        return storage.create_exclusive(location, data)
    holder, tag = current
    if not is_stale(holder, stale_after_s):
        return False
    log.warning("taking over a stale pipeline lock %s left by %s", location, holder)
    return storage.replace_tagged(location, data, tag)


def describe_holder(holder: dict[str, Any]) -> str:
    started = holder.get("started_at")
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(started))) \
        if started else "an unknown time"
    return f"host {holder.get('host')}, pid {holder.get('pid')}, since {since}"


@contextmanager
def pipeline_lock(storage: Storage, location: str, *, wait: bool, wait_timeout_s: float,
                  stale_after_s: float, poll_s: float = 1.0) -> Iterator[None]:
    """Hold the lock for the block; exit at once or wait for it, as configured."""
    record = holder_record()
    deadline = time.monotonic() + wait_timeout_s
    while not try_acquire(storage, location, stale_after_s, record):
        holder = (read_holder(storage, location) or ({}, ""))[0]
        if not wait or time.monotonic() >= deadline:
            raise PipelineLocked(
                f"another pipeline run holds {location} ({describe_holder(holder)}); "
                "not starting a second one")
        time.sleep(poll_s)
    try:
        yield
    finally:
        current = read_holder(storage, location)
        if current is not None and current[0].get("token") == record["token"]:
            storage.delete(location)
