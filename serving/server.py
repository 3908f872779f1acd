"""`serve()`: run the HTTP server for one model until SIGTERM/SIGINT."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys

import uvicorn

from serving import exit_codes
from serving.app import create_app
from serving.auth import InsecureServingError, with_token
from serving.fleet import run_fleet
from serving.fleet.replicas import REUSEPORT_ENV, mlflow_environment
from serving.inference import InferenceRoutes
from serving.protocol import PROTOCOL
from serving.settings import ServingSettings
from serving.watcher import check_watchable

log = logging.getLogger(__name__)

# How `serve()` hands its arguments to worker processes, which uvicorn starts by import.
_SPEC_ENV = "MLPIPE_SERVING_SPEC"


def serve(model_uri: str, settings: ServingSettings, *, watch: bool = False) -> None:
    """Serve `model_uri` and block until shut down.

    The server is live at once and ready once the model is loaded and warmed up; a model
    that cannot be loaded ends the process with exit code 3, a version the provenance
    checks refuse with 4, and a server that would be open beyond loopback without a token
    (serving/auth.py, `with_token`) with 2 (serving/exit_codes.py).

    On SIGTERM uvicorn stops accepting, lets in-flight requests finish (up to
    `graceful_shutdown_s`), then the batcher drains and the process exits. Each worker
    process loads its own copy of the model; `workers: 1` keeps one process.

    `replicas: N` (N > 1) runs a fleet instead: this process becomes the supervisor of N
    replica servers (serving/fleet), behind HAProxy, or with `balance: reuseport` each
    binding this port itself with SO_REUSEPORT, the kernel spreading the connections.
    """
    try:
        settings = with_token(settings)
    except InsecureServingError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(exit_codes.INSECURE) from None
    if settings.replicas > 1:
        code = run_fleet(model_uri, settings, watch=watch)
        if code:
            raise SystemExit(code)
        return
    if watch:
        check_watchable(model_uri)
    options = dict(
        host=settings.host, port=settings.port, log_level=settings.log_level,
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        timeout_keep_alive=settings.keep_alive_s,
        # Our own bounded queue answers overload with 503 + Retry-After.
        backlog=max(2048, settings.max_queue), access_log=False,
        # Clients are told apart by their TCP connection (admission's hold), and no
        # balancer of ours sends X-Forwarded-For: the rewriting would only cost time.
        proxy_headers=False,
        # httptools with a deadline on each request's headers (slowloris).
        http=PROTOCOL,
    )
    if settings.workers == 1:
        app = create_app(model_uri, settings, watch=watch)
        shared = os.environ.get(REUSEPORT_ENV)
        sockets = None if shared is None else [  # a replica of a `balance: reuseport` fleet
            _listening_socket(settings.host, settings.port, options["backlog"]),
            _listening_socket(*_address(shared), options["backlog"], reuseport=True)]
        uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=sockets)
        return
    # Workers re-create the app from the environment: uvicorn imports it in each process.
    os.environ[_SPEC_ENV] = json.dumps(
        {"model_uri": model_uri, "settings": settings.model_dump(mode="json"), "watch": watch})
    os.environ.update(mlflow_environment())
    uvicorn.run("serving.server:app_from_environment", factory=True,
                workers=settings.workers, **options)


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def _listening_socket(host: str, port: int, backlog: int, *,
                      reuseport: bool = False) -> socket.socket:
    """A TCP socket listening on host:port; with `reuseport`, one of a SO_REUSEPORT group,
    among which the kernel spreads new connections by a hash of their addresses."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def app_from_environment() -> InferenceRoutes:
    """The app factory a worker process calls (see `serve`)."""
    spec = json.loads(os.environ[_SPEC_ENV])
    return create_app(spec["model_uri"], ServingSettings.model_validate(spec["settings"]),
                      watch=spec["watch"])
