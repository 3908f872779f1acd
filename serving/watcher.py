"""`--watch`: follow a registry alias and swap in new versions without dropping requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from serving.metrics import VERSIONS_REFUSED
from serving.provenance import ModelRefused
from serving.registry import alias_of, resolve_version
from serving.runtime import ModelRuntime, load_runtime
from serving.settings import ServingSettings

log = logging.getLogger(__name__)


def check_watchable(model_uri: str) -> None:
    """Fail at startup, not silently later, when there is no alias to follow."""
    if alias_of(model_uri) is None:
        raise ValueError(f"--watch needs a models:/<name>@<alias> URI, got {model_uri!r}")


async def watch_alias(model_uri: str, settings: ServingSettings,
                      current: Callable[[], ModelRuntime],
                      swap: Callable[[ModelRuntime], None]) -> None:
    """Poll the alias; load and warm a new version off the event loop, then swap.

    The swap is one attribute assignment on the event loop: a request is decoded for
    the version served when it arrives and carries that runtime through the batcher,
    so requests queued before the swap still run on the old model and report it, and
    later ones use the new one; no batch mixes them and none fails. The old runtime is
    freed with its last request. A version that fails to load is logged and the old
    one keeps serving.

    A version the provenance checks refuse (serving/provenance.py) is logged, counted
    on /metrics by reason, and not tried again until the alias moves: it would be
    refused again, and a retry would download it at every poll.
    """
    refused: str | None = None
    while True:
        await asyncio.sleep(settings.watch_interval_s)
        try:
            _, version = await asyncio.to_thread(resolve_version, model_uri)
            if version in (current().version, refused):
                continue
            log.info("%s now points at version %s; loading it", model_uri, version)
            runtime = await asyncio.to_thread(load_runtime, model_uri,
                                              settings.allowed_batch_sizes,
                                              deployment=settings.deployment)
        except ModelRefused as refusal:
            refused = refusal.version
            VERSIONS_REFUSED.labels(refusal.reason).inc()
            log.error("%s; still serving version %s", refusal, current().version)
            continue
        except Exception:  # the registry or the new model failing must not stop serving
            log.exception("could not load the new version of %s; still serving %s",
                          model_uri, current().version)
            continue
        swap(runtime)
        log.info("now serving version %s", runtime.version)
