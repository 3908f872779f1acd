"""The real shared services a team runs (object store, PostgreSQL, MLflow tracking
server) as process managers: `mlpipe services up` and the tests start and stop them."""

from pipelines.services.objectstore import ObjectStore
from pipelines.services.postgres import PostgresServer
from pipelines.services.team import TeamPorts, TeamServices
from pipelines.services.tracking_server import TrackingServer

__all__ = ["ObjectStore", "PostgresServer", "TeamPorts", "TeamServices", "TrackingServer"]
