"""Checks that run before any work: a run that cannot write its results should not start.

A remote data root needs its object store reachable, the credentials accepted and the
bucket present; a remote tracking server needs to answer. Each failure names the
endpoint and the setting to fix, and the run exits 1 having written nothing.
"""

from __future__ import annotations

from models.storage import bucket_and_key
from pipelines.platform.config import Config
from pipelines.platform.errors import StorageUnavailableError
from pipelines.platform.layout import Layout
from pipelines.platform.tracking import configure_tracking


def check_object_store(layout: Layout) -> None:
    """Raise :class:`StorageUnavailableError` unless the root's bucket can be listed."""
    if not layout.is_remote:
        return
    endpoint = layout.object_store.endpoint or "the provider's default endpoint"
    bucket, _ = bucket_and_key(layout.root)
    try:
        # Asking for the bucket needs a reachable endpoint and accepted credentials.
        found = layout.storage.is_dir(f"s3://{bucket}")
    except OSError as exc:
        raise StorageUnavailableError(
            f"object store {endpoint} cannot be used for data_root {layout.root}: "
            f"{_first_line(exc)}; check object_store.endpoint and the credentials in "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY") from None
    if not found:
        raise StorageUnavailableError(
            f"object store {endpoint} has no bucket {bucket!r} (data_root {layout.root}); "
            "create it, or point data_root at an existing bucket")


def check_services(config: Config, *, tracking: bool = True) -> None:
    """Every shared service a command will write to, once, before any work: the object
    store, then (unless the command logs nothing) the tracking server."""
    check_object_store(Layout.of(config))
    if tracking:
        configure_tracking(config)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
