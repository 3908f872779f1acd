"""The team's shared MLflow tracking server: runs and the model registry in PostgreSQL,
artifacts in the object store, served through the server (`--serve-artifacts`) so that a
client needs only the tracking URI, never the store's credentials.

It runs MLflow's basic-auth app: every request but the health check names a user. The
admin (the services' owner) manages users; the pipeline's user owns the experiments and
registered models it creates, so only it may write them; every other user, serving
included, may only read (``default_permission = READ``). A serving identity therefore
cannot move an alias or replace an artifact: a registry write is no longer open to anyone
who can reach the port.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from models.private_files import write_private
from models.tracking_identity import TrackingIdentity
from pipelines.services.processes import LOOPBACK, ServiceProcess, free_port, http_ok

log = logging.getLogger(__name__)

USERS_API = "/api/2.0/mlflow/users"
AUTH_CACHE_S = 300


class TrackingServer(ServiceProcess):
    """`mlflow server --app-name basic-auth` on a loopback port, one worker (a 2-core
    machine runs it).

    ``store_environment`` is what the server needs to write artifacts into the object
    store: the S3 endpoint (`MLFLOW_S3_ENDPOINT_URL`) and AWS credentials. ``admin`` is
    created on the first start against an empty user store; ``users`` are created (or
    given their password again) on every start. The secrets reach the server through its
    environment and a private file, never its command line.
    """

    name = "MLflow tracking server"
    # The first start against an empty database runs MLflow's schema migrations.
    ready_timeout_s = 120.0

    def __init__(self, root: Path, *, backend_store_uri: str, artifacts_destination: str,
                 store_environment: Mapping[str, str], admin: TrackingIdentity,
                 session_key: str, users: Sequence[TrackingIdentity] = (),
                 port: int | None = None) -> None:
        super().__init__(root, "tracking-server.log")
        self.port = port or free_port()
        self.backend_store_uri = backend_store_uri
        self.artifacts_destination = artifacts_destination
        self.store_environment = dict(store_environment)
        self.admin = admin
        self.users = tuple(users)
        self._session_key = session_key

    @property
    def uri(self) -> str:
        """The tracking (and registry) URI clients set: `http://127.0.0.1:PORT`."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def _auth_config(self) -> Path:
        return self.root / "basic_auth.ini"

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_private(self._auth_config, "\n".join([
            "[mlflow]", "default_permission = READ",
            f"database_uri = sqlite:///{self.root / 'users.db'}",
            f"admin_username = {self.admin.username}",
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
            # A password check is a scrypt hash, ~0.12 s of CPU: on every request it made
            # the team pipeline run several times slower. A credential checked once is
            # trusted for AUTH_CACHE_S; with one worker, a password changed through the
            # API is forgotten at once.
            f"auth_cache_ttl_seconds = {AUTH_CACHE_S}",
            ""]))

    def _command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "mlflow"), "server", "--app-name", "basic-auth",
                "--serve-artifacts", "--artifacts-destination", self.artifacts_destination,
                "--host", LOOPBACK, "--port", str(self.port), "--workers", "1"]

    def _environment(self) -> dict[str, str]:
        # Job execution (GenAI evaluation jobs) would start a job runner and queue files in
        # /dev/shm: nothing this project uses.
        return {**self.store_environment, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "MLFLOW_BACKEND_STORE_URI": self.backend_store_uri,
                "MLFLOW_AUTH_CONFIG_PATH": str(self._auth_config),
                "MLFLOW_AUTH_ADMIN_PASSWORD": self.admin.password,
                # Signs the UI's sessions and CSRF tokens.
                "MLFLOW_FLASK_SERVER_SECRET_KEY": self._session_key}

    def _ready(self) -> bool:
        return http_ok(f"{self.uri}/health")

    def _after_ready(self) -> None:
        with httpx.Client(base_url=self.uri, auth=(self.admin.username, self.admin.password),
                          timeout=10) as admin:
            for user in self.users:
                _ensure_user(admin, user)
        log.info("%s on %s (artifacts in %s; users %s)", self.name, self.uri,
                 self.artifacts_destination, ", ".join(user.username for user in self.users))


def _ensure_user(admin: httpx.Client, user: TrackingIdentity) -> None:
    """Create ``user``, or set its password again when it exists (a kept identity)."""
    exists = admin.get(f"{USERS_API}/get", params={"username": user.username})
    if exists.status_code == 200:
        reply = admin.patch(f"{USERS_API}/update-password",
                            json={"username": user.username, "password": user.password})
    else:
        reply = admin.post(f"{USERS_API}/create",
                           json={"username": user.username, "password": user.password})
    if reply.status_code != 200:
        raise RuntimeError(f"the tracking server would not set up user {user.username!r}: "
                           f"HTTP {reply.status_code} {reply.text[:300]}")
