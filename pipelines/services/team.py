"""A team's shared services on one machine: the object store (the lake and MLflow's
artifacts), PostgreSQL and the MLflow tracking server on it, started together in one folder.

`mlpipe services up` runs them for a local trial of the team setup, and the tests share
one set per test session; `describe` is the environment a client (the pipeline, a
notebook, a Spark job) needs to use them.

The tracking server knows three users, each kept (random password, mode 0600) in
``root``/credentials/<name> in MLflow's credentials format, for ``mlflow.credentials_file``:
``admin`` manages users, ``pipeline`` writes runs and registers models, ``serving`` reads.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from models.storage import bucket_and_key
from pipelines.services.objectstore import ObjectStore
from pipelines.services.postgres import PostgresServer
from pipelines.services.secrets import kept_identity, kept_secret
from pipelines.services.tracking_server import TrackingServer

log = logging.getLogger(__name__)

# The tracking server's users: the first is its admin.
IDENTITIES = ("admin", "pipeline", "serving")


@dataclass(frozen=True)
class TeamPorts:
    """Ports to run on; None picks a free one (the tests' choice, so runs never clash)."""

    s3: int | None = None
    postgres: int | None = None
    tracking: int | None = None


class TeamServices:
    """The object store with its bucket, PostgreSQL and the tracking server, in ``root``.

    Stopping keeps their data in ``root``: starting again with the same folder finds the
    bucket, the runs and the registered models where they were.
    """

    def __init__(self, root: Path, *, artifacts: str, ports: TeamPorts = TeamPorts(),
                 access_key: str = "mlpipe", secret_key: str | None = None) -> None:
        """``artifacts`` is where the tracking server keeps run artifacts
        (``services.mlflow_artifacts``, e.g. ``s3://mlpipe/mlflow-artifacts``); its bucket
        is created in the object store. ``secret_key`` None: one kept in ``root``/credentials,
        random on first use."""
        self.root = root
        bucket, _ = bucket_and_key(artifacts)
        self.bucket = bucket
        secret_key = secret_key or kept_secret(self.credentials_file("s3-secret-key"))
        self.store = ObjectStore(root / "objectstore", access_key=access_key,
                                 secret_key=secret_key, buckets=[bucket], s3_port=ports.s3)
        self.postgres = PostgresServer(root / "postgres", port=ports.postgres)
        self.identities = {name: kept_identity(self.credentials_file(name), f"mlpipe-{name}")
                           for name in IDENTITIES}
        self.tracking = TrackingServer(
            root / "tracking", backend_store_uri=self.postgres.sqlalchemy_url,
            artifacts_destination=artifacts,
            store_environment=self.store.client_environment(),
            admin=self.identities["admin"],
            users=[self.identities[name] for name in IDENTITIES if name != "admin"],
            session_key=kept_secret(root / "tracking" / "session-key"), port=ports.tracking)

    def credentials_file(self, identity: str) -> Path:
        """Where ``identity`` is kept: admin, pipeline and serving are each a
        ``mlflow.credentials_file``; s3-secret-key is the store's generated key."""
        return self.root / "credentials" / identity

    def start(self) -> None:
        """Start the object store beside PostgreSQL and then the tracking server, which
        needs no object store until the first artifact: the store's wait for its first
        write overlaps theirs. On a failure, stop everything."""
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:  # its exit waits for the store
                store_started = pool.submit(self.store.start)
                self.postgres.start()
                self.tracking.start()
            store_started.result()
        except BaseException:
            self.stop()
            raise
        log.info("team services up in %s: S3 %s, tracking %s", self.root, self.store.endpoint,
                 self.tracking.uri)

    def stop(self) -> None:
        """Stop the tracking server before the database and store it writes to (stopping
        one that is not running does nothing)."""
        for service in (self.tracking, self.postgres, self.store):
            service.stop()

    def describe(self, identity: str = "pipeline") -> dict[str, str]:
        """The environment a client needs: S3 endpoint and credentials, tracking URI, and
        the tracking server user it runs as."""
        return {**self.store.client_environment(), "MLFLOW_TRACKING_URI": self.tracking.uri,
                **self.identities[identity].environment()}

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
