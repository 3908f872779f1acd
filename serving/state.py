"""The served model's lifecycle: load in the background, report ready, follow an alias."""

from __future__ import annotations

import asyncio
import gc
import logging
import os

from serving import exit_codes
from serving.batch_policy import policy_for
from serving.batching import Batcher
from serving.metrics import MODEL_VERSION
from serving.provenance import ModelRefused
from serving.registry import model_name_from_uri
from serving.runtime import ModelRuntime, limit_tensorflow_threads, load_runtime
from serving.settings import ServingSettings
from serving.watcher import watch_alias

log = logging.getLogger(__name__)

class ServingState:
    """What the routes share: settings, the model's name, the runtime and batcher once loaded.

    `runtime()` is the version a new request is decoded for; the request then carries
    it through the batcher, so a swap never changes the model a request runs on.
    """

    def __init__(self, model_uri: str, settings: ServingSettings, watch: bool) -> None:
        self.model_uri = model_uri
        self.settings = settings
        self.watch = watch
        self.name = settings.model_name or model_name_from_uri(model_uri)
        self.batcher: Batcher | None = None
        self._runtime: ModelRuntime | None = None

    async def load(self) -> None:
        """Load and warm up off the event loop, so /v2/health/live answers meanwhile."""
        limit_tensorflow_threads(self.settings.model_threads)
        try:
            runtime = await asyncio.to_thread(
                load_runtime, self.model_uri, self.settings.allowed_batch_sizes,
                deployment=self.settings.deployment)
        except Exception as error:
            # Live but never ready would hide the failure: exit with uvicorn's code for a
            # failed startup. Nothing is in flight, as no model ever answered.
            log.critical("could not load %s: %s", self.model_uri, error, exc_info=True)
            logging.shutdown()
            os._exit(exit_codes.MODEL_REFUSED if isinstance(error, ModelRefused)
                     else exit_codes.LOAD_FAILED)
        settings = self.settings
        self.swap(runtime)
        self.batcher = Batcher(policy_for(settings), settings.max_queue,
                               settings.low_priority_max_wait_ms)
        self.batcher.start()
        if self.watch:
            await watch_alias(self.model_uri, settings, self.runtime, self.swap)

    def runtime(self) -> ModelRuntime:
        assert self._runtime is not None
        return self._runtime

    def swap(self, runtime: ModelRuntime) -> None:
        """Serve `runtime` to requests that arrive from now on; queued ones keep theirs."""
        self._runtime = runtime
        MODEL_VERSION.clear()
        MODEL_VERSION.labels(self.name, runtime.version).set(1)
        _freeze_loaded_objects()


def _freeze_loaded_objects() -> None:
    """Move what loading left (TensorFlow, MLflow, the model: ~600,000 objects) out of the
    collector's reach.

    Otherwise every full collection walks them all, a 0.1-1.7 s pause of the event loop
    under load, which set the p99 of single-row requests (bench/RESULTS.md). Unfreezing
    first lets a swapped-out version's objects be freed once its last request is done.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
