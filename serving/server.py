"""`serve()`: run the HTTP server for one model until SIGTERM/SIGINT."""

from __future__ import annotations

import json
import logging
import os

import uvicorn
from starlette.applications import Starlette

from serving.app import create_app
from serving.settings import ServingSettings
from serving.watcher import check_watchable

log = logging.getLogger(__name__)

# How `serve()` hands its arguments to worker processes, which uvicorn starts by import.
_SPEC_ENV = "MLPIPE_SERVING_SPEC"


def serve(model_uri: str, settings: ServingSettings, *, watch: bool = False) -> None:
    """Serve `model_uri` and block until shut down.

    The server is live at once and ready once the model is loaded and warmed up; a model
    that cannot be loaded ends the process with exit code 3.

    On SIGTERM uvicorn stops accepting, lets in-flight requests finish (up to
    `graceful_shutdown_s`), then the batcher drains and the process exits. Each worker
    process loads its own copy of the model; `workers: 1` keeps one process.
    """
    if watch:
        check_watchable(model_uri)
    options = dict(
        host=settings.host, port=settings.port, log_level=settings.log_level,
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        timeout_keep_alive=settings.keep_alive_s,
        # Our own bounded queue answers overload with 503 + Retry-After.
        backlog=max(2048, settings.max_queue), access_log=False,
    )
    if settings.workers == 1:
        app = create_app(model_uri, settings, watch=watch)
        uvicorn.Server(uvicorn.Config(app, **options)).run()
        return
    # Workers re-create the app from the environment: uvicorn imports it in each process.
    os.environ[_SPEC_ENV] = json.dumps(
        {"model_uri": model_uri, "settings": settings.model_dump(mode="json"), "watch": watch})
    uvicorn.run("serving.server:app_from_environment", factory=True,
                workers=settings.workers, **options)


def app_from_environment() -> Starlette:
    """The app factory a worker process calls (see `serve`)."""
    spec = json.loads(os.environ[_SPEC_ENV])
    return create_app(spec["model_uri"], ServingSettings.model_validate(spec["settings"]),
                      watch=spec["watch"])
