"""The one filesystem layer: a local path and an object-store URI are read and written alike.

Spark reaches the lake through Hadoop (``s3a://``); everything written outside Spark
(feature specs, pipeline state and lock, landing files, training checkpoints) comes
through here, on ``pyarrow.fs``. It sits at the bottom of the dependency graph because
the Horovod workers write checkpoints and read shards through it, and they may not
import ``pipelines``. Credentials are never passed around: pyarrow, boto3 and delta-rs
all read the standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``)
or the provider's credential chain, so they cannot end up in a config or a task file.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict, Field

# Spark's (s3a) and the AWS tools' (s3) spellings of one S3-compatible store.
OBJECT_STORE_SCHEMES = ("s3a", "s3")


class ObjectStoreSettings(BaseModel):
    """How to reach the object store behind an ``s3a://`` or ``s3://`` location.

    It is also the config's ``object_store`` section (validated from YAML as it is), so
    the settings the driver reads and those the workers rebuild from a task file are
    one class. ``endpoint`` empty means the provider's default (AWS S3); an on-premises
    store is ``http://host:port``. ``path_style_access`` addresses ``endpoint/bucket/key``,
    which on-premises stores need; virtual-host style is AWS's default. Credentials are
    never among them: they come from the environment.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str
    region: str
    path_style_access: bool
    connect_timeout_s: float = Field(gt=0)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


def scheme_of(location: str) -> str:
    """The URI scheme of ``location``, "" for a plain local path."""
    return urlsplit(location).scheme if "://" in location else ""


def is_remote(location: str) -> bool:
    """The one local-or-remote decision: True for an object-store URI, False for a local path.

    ``file://`` URIs are local. Any other scheme is refused here, once, rather than
    turned into a local folder named after it.
    """
    scheme = scheme_of(location)
    if scheme in ("", "file"):
        return False
    if scheme in OBJECT_STORE_SCHEMES:
        return True
    supported = ", ".join(f"{s}://" for s in OBJECT_STORE_SCHEMES)
    raise ValueError(f"{location}: unsupported storage scheme {scheme!r}; use a local path "
                     f"or an object-store URI ({supported})")


def local_path(location: str) -> str:
    """A local location as a plain path (``file://`` stripped)."""
    return location.removeprefix("file://") if location.startswith("file://") else location


def bucket_and_key(location: str) -> tuple[str, str]:
    """``s3a://bucket/a/b`` -> ``("bucket", "a/b")``."""
    parts = urlsplit(location)
    return parts.netloc, parts.path.lstrip("/")


def join(base: str, *parts: str) -> str:
    """Join path parts onto a local path or a URI such as ``s3a://bucket/x``."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


class Storage:
    """Files under a local folder or an object store, through one interface.

    Writes are whole-object: a local write goes through a hidden temporary file and a
    rename, an object-store write is a single PUT, so a reader never sees half a file.
    """

    def __init__(self, settings: ObjectStoreSettings) -> None:
        self.settings = settings
        self._remote: pafs.FileSystem | None = None
        self._local = pafs.LocalFileSystem()

    # -- the filesystem behind a location -------------------------------------------------
    def resolve(self, location: str) -> tuple[pafs.FileSystem, str]:
        """The pyarrow filesystem and the path within it for ``location``."""
        if not is_remote(location):
            return self._local, os.path.abspath(local_path(location))
        bucket, key = bucket_and_key(location)
        return self.object_store(), f"{bucket}/{key}".rstrip("/")

    def object_store(self) -> pafs.S3FileSystem:
        if self._remote is None:
            s = self.settings
            endpoint = urlsplit(s.endpoint) if s.endpoint else None
            self._remote = pafs.S3FileSystem(
                region=s.region, endpoint_override=endpoint.netloc if endpoint else None,
                scheme=endpoint.scheme if endpoint else "https",
                force_virtual_addressing=not s.path_style_access,
                connect_timeout=s.connect_timeout_s, request_timeout=max(30.0, s.connect_timeout_s),
                retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3))
        return self._remote

    # -- reading -------------------------------------------------------------------------
    def exists(self, location: str) -> bool:
        fs, path = self.resolve(location)
        return fs.get_file_info(path).type != pafs.FileType.NotFound

    def is_dir(self, location: str) -> bool:
        fs, path = self.resolve(location)
        return fs.get_file_info(path).type == pafs.FileType.Directory

    def read_bytes(self, location: str) -> bytes:
        fs, path = self.resolve(location)
        with fs.open_input_stream(path) as stream:
            return stream.read()

    def read_text(self, location: str) -> str:
        return self.read_bytes(location).decode()

    def list_files(self, location: str) -> list[tuple[str, int]]:
        """Every file under ``location`` (recursively) as (path relative to it, size), sorted.

        Hidden names (a leading ``.`` or ``_`` in any part below ``location``, as Spark
        and the writers here use for work in progress) are left out. Missing: empty.
        """
        fs, path = self.resolve(location)
        if fs.get_file_info(path).type != pafs.FileType.Directory:
            return []
        found = []
        for info in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
            if info.type != pafs.FileType.File:
                continue
            relative = info.path[len(path):].lstrip("/")
            if not any(part.startswith((".", "_")) for part in relative.split("/")):
                found.append((relative, info.size))
        return sorted(found)

    # -- writing -------------------------------------------------------------------------
    def write_bytes(self, location: str, data: bytes) -> None:
        """Write a whole file at once; a reader sees the old one or the new one, never half.

        On a local disk the file is flushed before the rename and the folder after it:
        without both, a power loss can leave the new name pointing at an empty file.
        """
        fs, path = self.resolve(location)
        if fs is self._local:
            folder, name = os.path.split(path)
            os.makedirs(folder, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}.", delete=False) as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(out.name, path)
            _fsync_folder(folder)
            return
        with fs.open_output_stream(path) as stream:
            stream.write(data)

    def write_text(self, location: str, text: str) -> None:
        self.write_bytes(location, text.encode())

    def upload(self, local_file: str, location: str) -> None:
        """Copy a local file to ``location`` (the same atomic whole-file write)."""
        with open(local_file, "rb") as source:
            self.write_bytes(location, source.read())

    def move(self, source: str, target: str) -> None:
        """Rename a file. On an object store this is a server-side copy and a delete: the
        target appears whole, but the pair is not atomic, so give sources hidden names."""
        fs, source_path = self.resolve(source)
        target_fs, target_path = self.resolve(target)
        if target_fs is not fs:
            raise ValueError(f"cannot move {source} to {target}: different filesystems")
        if fs is self._local:
            os.makedirs(os.path.dirname(target_path), exist_ok=True)
        fs.move(source_path, target_path)

    def delete_dir(self, location: str) -> None:
        """Remove a folder and everything under it; a missing one is not an error."""
        fs, path = self.resolve(location)
        if fs.get_file_info(path).type == pafs.FileType.Directory:
            fs.delete_dir(path)

    def delete(self, location: str) -> None:
        """Remove a file; a missing one is not an error."""
        fs, path = self.resolve(location)
        try:
            fs.delete_file(path)
        except FileNotFoundError:
            pass

    # -- the delta-rs view of the same store ---------------------------------------------
    def delta_options(self, location: str) -> tuple[str, dict[str, str]]:
        """``(uri, storage_options)`` for delta-rs, which spells the scheme ``s3://``.

        delta-rs only reads here (Spark writes every table), so no commit settings.
        """
        if not is_remote(location):
            return os.path.abspath(local_path(location)), {}
        bucket, key = bucket_and_key(location)
        s = self.settings
        options = {"AWS_REGION": s.region,
                   "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": str(not s.path_style_access).lower()}
        if s.endpoint:
            options["AWS_ENDPOINT_URL"] = s.endpoint
            options["AWS_ALLOW_HTTP"] = str(s.endpoint.startswith("http://")).lower()
        return f"s3://{bucket}/{key}", options

    # -- compare-and-swap, for the pipeline's lock ----------------------------------------
    def create_exclusive(self, location: str, data: bytes) -> bool:
        """Create the file only if nothing is there yet; False if something is.

        Locally a hard link of a finished hidden file (``link`` fails if the name exists),
        so the file appears whole: a reader never sees it empty and takes it for a torn,
        stale lock. On the object store a conditional PUT (``If-None-Match: *``), which
        the store decides atomically, so two hosts can never both succeed.
        """
        if not is_remote(location):
            folder, name = os.path.split(os.path.abspath(local_path(location)))
            os.makedirs(folder, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}.", delete=False) as out:
                out.write(data)
            try:
                os.link(out.name, os.path.join(folder, name))
            except FileExistsError:
                return False
            finally:
                os.unlink(out.name)
            return True
        bucket, key = bucket_and_key(location)
        return self._conditional(lambda s3: s3.put_object(Bucket=bucket, Key=key, Body=data,
                                                         IfNoneMatch="*"))

    def read_tagged(self, location: str) -> tuple[bytes, str] | None:
        """The file's bytes and a tag that changes whenever it is rewritten; None if missing."""
        if not is_remote(location):
            path = os.path.abspath(local_path(location))
            try:
                with open(path, "rb") as source:
                    stat = os.fstat(source.fileno())
                    return source.read(), f"{stat.st_ino}-{stat.st_mtime_ns}"
            except FileNotFoundError:
                return None
        bucket, key = bucket_and_key(location)
        s3 = self.s3_client()
        try:
            answer = s3.get_object(Bucket=bucket, Key=key)
        except s3.exceptions.NoSuchKey:
            return None
        return answer["Body"].read(), answer["ETag"]

    def replace_tagged(self, location: str, data: bytes, tag: str) -> bool:
        """Overwrite the file only if it still carries ``tag`` (``If-Match`` on the store)."""
        if not is_remote(location):
            current = self.read_tagged(location)
            if current is None or current[1] != tag:
                return False
            self.write_bytes(location, data)
            return True
        bucket, key = bucket_and_key(location)
        return self._conditional(lambda s3: s3.put_object(Bucket=bucket, Key=key, Body=data,
                                                         IfMatch=tag))

    def s3_client(self) -> Any:
        """A boto3 S3 client for the few calls pyarrow does not offer (conditional writes)."""
        import boto3
        from botocore.config import Config as BotoConfig

        s = self.settings
        addressing = "path" if s.path_style_access else "virtual"
        return boto3.client(
            "s3", endpoint_url=s.endpoint or None, region_name=s.region,
            config=BotoConfig(s3={"addressing_style": addressing},
                              connect_timeout=s.connect_timeout_s,
                              retries={"max_attempts": 3, "mode": "standard"}))

    def _conditional(self, put: Any) -> bool:
        """Run a conditional PUT: True if it was applied, False if its precondition failed."""
        from botocore.exceptions import ClientError

        try:
            put(self.s3_client())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed",
                                                              "ConditionalRequestConflict"):
                return False
            raise
        return True


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (its entry is data of the folder)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
