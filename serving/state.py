"""The served model's lifecycle: load in the background, report ready, follow an alias."""

from __future__ import annotations

import asyncio
import logging
import os

from serving.batching import Batcher
from serving.metrics import MODEL_VERSION
from serving.registry import model_name_from_uri
from serving.runtime import ModelRuntime, limit_tensorflow_threads, load_runtime
from serving.settings import ServingSettings
from serving.watcher import watch_alias

log = logging.getLogger(__name__)

EXIT_LOAD_FAILED = 3


class ServingState:
    """What the routes share: settings, the model's name, and the batcher once loaded."""

    def __init__(self, model_uri: str, settings: ServingSettings, watch: bool) -> None:
        self.model_uri = model_uri
        self.settings = settings
        self.watch = watch
        self.name = settings.model_name or model_name_from_uri(model_uri)
        self.batcher: Batcher | None = None

    async def load(self) -> None:
        """Load and warm up off the event loop, so /v2/health/live answers meanwhile."""
        limit_tensorflow_threads(self.settings.model_threads)
        try:
            runtime = await asyncio.to_thread(
                load_runtime, self.model_uri, self.settings.allowed_batch_sizes)
        except Exception as error:
            # Live but never ready would hide the failure: exit with uvicorn's code for a
            # failed startup. Nothing is in flight, as no model ever answered.
            log.critical("could not load %s: %s", self.model_uri, error, exc_info=True)
            logging.shutdown()
            os._exit(EXIT_LOAD_FAILED)
        settings = self.settings
        self.batcher = Batcher(runtime, settings.max_batch_size, settings.max_delay_ms,
                               settings.max_queue)
        self.batcher.start()
        self._record_version(runtime)
        if self.watch:
            await watch_alias(self.model_uri, settings.watch_interval_s,
                              settings.allowed_batch_sizes, self.runtime, self.swap)

    def runtime(self) -> ModelRuntime:
        assert self.batcher is not None
        return self.batcher.runtime

    def swap(self, runtime: ModelRuntime) -> None:
        assert self.batcher is not None
        self.batcher.runtime = runtime
        self._record_version(runtime)

    def _record_version(self, runtime: ModelRuntime) -> None:
        MODEL_VERSION.clear()
        MODEL_VERSION.labels(self.name, runtime.version).set(1)
