"""``mlpipe services up``: the team setup's services on this machine, where the config points.

The object store listens on ``object_store.endpoint``'s port, the tracking server on
``mlflow.tracking_uri``'s, and a Spark standalone master on ``spark.master``'s (when it
names this machine), so ``mlpipe --env team run`` in another terminal uses them unchanged.
They run in the foreground until Ctrl-C or SIGTERM, then stop in reverse order; their
data stays in ``services.dir`` for the next start.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from urllib.parse import urlsplit

from models.storage import bucket_and_key, is_remote
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError
from pipelines.services.spark_cluster import SparkCluster
from pipelines.services.team import IDENTITIES, TeamPorts, TeamServices

log = logging.getLogger(__name__)

LOCAL_HOSTS = ("127.0.0.1", "localhost")
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def local_port(uri: str, key: str) -> int:
    """The port of a URI that must name this machine (the services run here)."""
    parts = urlsplit(uri)
    if parts.hostname not in LOCAL_HOSTS or parts.port is None:
        raise ConfigError(f"{key}: {uri!r} must be http://127.0.0.1:PORT for "
                          "`mlpipe services up`, which runs the services on this machine")
    return parts.port


def build_services(config: Config) -> tuple[TeamServices, SparkCluster | None]:
    """The services the config points at, not started yet."""
    missing = [name for name in CREDENTIALS if not os.environ.get(name)]
    if missing:
        raise ConfigError(f"set {' and '.join(missing)}: the object store is started with "
                          "these credentials, and every client reads them")
    if not is_remote(config.data_root):
        raise ConfigError(f"data_root: {config.data_root!r} is local; select the team overlay "
                          "(--env team) or set an s3a:// data_root")
    root = Path(config.services.dir).expanduser().resolve()
    team = TeamServices(
        root, artifacts=config.services.mlflow_artifacts,
        access_key=os.environ[CREDENTIALS[0]], secret_key=os.environ[CREDENTIALS[1]],
        ports=TeamPorts(s3=local_port(config.object_store.endpoint, "object_store.endpoint"),
                        postgres=config.services.postgres_port,
                        tracking=local_port(config.mlflow.tracking_uri, "mlflow.tracking_uri")))
    cluster = None
    if config.spark.master.startswith("spark://"):
        cluster = SparkCluster(root / "spark", workers=config.services.spark_workers,
                               cores=config.services.spark_worker_cores,
                               memory=config.services.spark_worker_memory,
                               port=local_port(config.spark.master, "spark.master"),
                               env={name: os.environ[name] for name in CREDENTIALS})
    return team, cluster


def services_up(config: Config) -> int:
    """Start everything, say where it is, and hold until interrupted."""
    team, cluster = build_services(config)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with team:
        team.store.create_bucket(bucket_and_key(config.data_root)[0])
        if cluster is not None:
            cluster.start()
        try:
            print(f"object store   {team.store.endpoint}  (data_root {config.data_root})")
            print(f"tracking       {team.tracking.uri}  (PostgreSQL on port "
                  f"{config.services.postgres_port}, artifacts in "
                  f"{config.services.mlflow_artifacts})")
            if cluster is not None:
                print(f"spark          {cluster.url}  ({len(cluster.workers)} workers, "
                      f"UI {cluster.master.ui_url})")
            for identity in IDENTITIES:
                print(f"mlflow user    {team.identities[identity].username:16} "
                      f"--set mlflow.credentials_file={team.credentials_file(identity)}")
            print(f"data and logs  {team.root}\nready: run `mlpipe --env {config.env} run --set "
                  f"mlflow.credentials_file={team.credentials_file('pipeline')}` in another "
                  "terminal with the same AWS_* variables; Ctrl-C stops the services",
                  flush=True)
            stop.wait()
        finally:
            if cluster is not None:
                cluster.stop()
    return 0
