"""The team's object store: SeaweedFS's S3 gateway, where the lake and MLflow's artifacts
live in a local team trial (`mlpipe services up`) and in the tests.

One `weed server` process (master, volume server, filer, S3 gateway) with its data in its
own folder, every port chosen for it (two stores run side by side), one access key with
every S3 action (a request signed with any other key is refused), telemetry off.
Stopping and starting it again keeps the data: the fault tests restart it mid-write.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import boto3
import botocore.exceptions
from botocore.client import BaseClient
from botocore.config import Config

from models.private_files import write_private
from models.project import PROJECT_ROOT, cache_dir
from pipelines.services.processes import LOOPBACK, ServiceProcess, free_ports

log = logging.getLogger(__name__)

BUILD_SCRIPT = PROJECT_ROOT / "scripts" / "build_seaweedfs.sh"
# S3 wants a region; SeaweedFS accepts any.
REGION = "us-east-1"
# Every action SeaweedFS's identities know: the one key is the store's administrator.
ADMIN_ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]
WRITE_PROBE_KEY = ".mlpipe-write-probe"


def find_weed() -> Path:
    """The `weed` binary scripts/build_seaweedfs.sh built and cached for its version."""
    version = re.search(r"^VERSION=(\S+)$", BUILD_SCRIPT.read_text(), re.MULTILINE)
    if version is None:
        raise RuntimeError(f"{BUILD_SCRIPT} names no VERSION")
    binary = cache_dir() / "bin" / f"weed-{version.group(1)}"
    if not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"SeaweedFS's weed is not built ({binary} is missing): run "
                                f"`make setup`, or {BUILD_SCRIPT.relative_to(PROJECT_ROOT)}")
    return binary


@dataclass(frozen=True)
class StorePorts:
    """Every port `weed server` listens on; none is left to its fixed defaults."""

    s3: int
    s3_grpc: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int

    @classmethod
    def free(cls, s3: int | None = None) -> StorePorts:
        """Free ports for all, the S3 gateway's given one if any."""
        ports = free_ports(len(fields(cls)))
        return cls(*([s3] if s3 else ports[:1]), *ports[1:])


class ObjectStore(ServiceProcess):
    """SeaweedFS in ``root``: `endpoint` is its S3 gateway, signed with the given key;
    ``buckets`` exist once it has started."""

    name = "SeaweedFS"
    ready_timeout_s = 60.0
    # On SIGTERM `weed server` stops its volume server (within ~0.1 s) before its filer,
    # whose final metadata-log flush then retries forever: SIGKILL ends it. Nothing is lost
    # by then: the volumes are closed and the filer's store holds every entry it acknowledged.
    stop_grace_s = 1.5

    def __init__(self, root: Path, *, access_key: str, secret_key: str,
                 buckets: Sequence[str] = (), s3_port: int | None = None) -> None:
        super().__init__(root, "weed.log")
        self.access_key = access_key
        self.secret_key = secret_key
        self.buckets = tuple(buckets)
        self.ports = StorePorts.free(s3_port)
        self._weed = find_weed()

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL: `http://127.0.0.1:PORT`."""
        return f"http://{LOOPBACK}:{self.ports.s3}"

    def client_environment(self) -> dict[str, str]:
        """What an S3 client (boto3, MLflow's artifact store) reads to reach this store."""
        return {"AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL_S3": self.endpoint,
                "MLFLOW_S3_ENDPOINT_URL": self.endpoint}

    def client(self, *, access_key: str | None = None, secret_key: str | None = None,
               attempts: int = 3) -> BaseClient:
        """A boto3 S3 client for this store, with the store's key unless another is given."""
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(retries={"max_attempts": attempts, "mode": "standard"},
                          connect_timeout=2, read_timeout=30, s3={"addressing_style": "path"}))

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name``; one that this store already has is fine."""
        try:
            self.client().create_bucket(Bucket=name)
        except botocore.exceptions.ClientError as error:
            if error.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou",
                                                      "BucketAlreadyExists"}:
                raise

    def restart(self) -> None:
        """Stop and start again: same folder, same ports, so the data and URLs survive."""
        self.stop()
        self.start()

    def stop(self) -> None:
        super().stop()
        self._remove_grpc_sockets()

    def _prepare(self) -> None:
        for folder in ("data", "tmp", "config"):
            (self.root / folder).mkdir(exist_ok=True)
        identities = {"identities": [{
            "name": "mlpipe",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ADMIN_ACTIONS}]}
        write_private(self.root / "config" / "s3.json", json.dumps(identities, indent=2))
        # A bucket is a collection, and the master grows 7 volumes for each by default:
        # a few buckets would take every volume slot. One volume per bucket is plenty here.
        (self.root / "config" / "master.toml").write_text(
            "[master.volume_growth]\ncopy_1 = 1\n")

    def _command(self) -> list[str]:
        ports = self.ports
        return [
            # Logs to stderr (our log file), config only from its own folder.
            str(self._weed), "-logtostderr", f"-config_dir={self.root / 'config'}", "server",
            f"-dir={self.root / 'data'}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
            # A lone master elects itself: on a restart, after 1 s instead of 10 s.
            "-master.telemetry=false", "-master.electionTimeout=1s",
            f"-master.port={ports.master}", f"-master.port.grpc={ports.master_grpc}",
            f"-volume.port={ports.volume}", f"-volume.port.grpc={ports.volume_grpc}",
            # Volumes are files that grow as written: many small ones, not a few of 30 GB.
            "-master.volumeSizeLimitMB=512", "-volume.max=64", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={ports.filer}", f"-filer.port.grpc={ports.filer_grpc}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3", f"-s3.port={ports.s3}", f"-s3.port.grpc={ports.s3_grpc}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={self.root / 'config' / 's3.json'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
        ]

    def _environment(self) -> dict[str, str]:
        return {"TMPDIR": str(self.root / "tmp")}

    def _ready(self) -> bool:
        """The S3 gateway answers a signed request and a volume server has joined the
        master: before that, the first write would fail."""
        try:
            with urllib.request.urlopen(
                    f"http://{LOOPBACK}:{self.ports.master}/dir/status", timeout=2) as response:
                if json.load(response)["Topology"]["Max"] == 0:  # no volume slots yet
                    return False
            self.client(attempts=1).list_buckets()
        except (OSError, ValueError, KeyError, botocore.exceptions.BotoCoreError,
                botocore.exceptions.ClientError):
            return False
        return True

    def _after_ready(self) -> None:
        """Create ``buckets``, then write once. Writes take the filer's lock ring, which
        the filer joins only after waiting for peers (3 s on a fresh store, 10 s on a
        restarted one, then a ring update): the start should take that wait, not the
        caller's first write."""
        for bucket in self.buckets:
            self.create_bucket(bucket)
        if self.buckets:
            client = self.client()
            client.put_object(Bucket=self.buckets[0], Key=WRITE_PROBE_KEY, Body=b"")
            client.delete_object(Bucket=self.buckets[0], Key=WRITE_PROBE_KEY)
        log.info("%s S3 gateway on %s (data in %s)", self.name, self.endpoint, self.root)

    def _remove_grpc_sockets(self) -> None:
        """`weed server` also serves each gRPC port on /tmp/seaweedfs-<service>-grpc-<port>.sock,
        a path no flag or TMPDIR changes, and leaves some behind: they are ours by port."""
        for service, port in (("master", self.ports.master_grpc),
                              ("volume", self.ports.volume_grpc),
                              ("filer", self.ports.filer_grpc), ("s3", self.ports.s3_grpc)):
            socket_path = Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock")
            try:
                if stat.S_ISSOCK(socket_path.lstat().st_mode):
                    socket_path.unlink()
            except FileNotFoundError:
                pass
