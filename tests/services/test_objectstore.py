"""SeaweedFS as the team's object store: signed access only, data that survives a restart,
and the conditional writes the pipeline lock is built on."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from pathlib import Path

import botocore.exceptions
import pytest

from pipelines.services import ObjectStore, TeamServices
from pipelines.services.objectstore import find_weed


def error_code(error: botocore.exceptions.ClientError) -> tuple[str, int]:
    return (error.response["Error"]["Code"],
            error.response["ResponseMetadata"]["HTTPStatusCode"])


@pytest.fixture
def store(team_services: TeamServices) -> ObjectStore:
    return team_services.store


@pytest.fixture
def key() -> str:
    return f"tests/{uuid.uuid4().hex}"


def test_the_store_key_round_trips_and_any_other_key_is_refused(store: ObjectStore,
                                                                key: str) -> None:
    bucket = "mlpipe"
    store.client().put_object(Bucket=bucket, Key=key, Body=b"lake bytes")
    assert store.client().get_object(Bucket=bucket, Key=key)["Body"].read() == b"lake bytes"

    wrong_secret = store.client(secret_key="not-the-secret", attempts=1)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        wrong_secret.get_object(Bucket=bucket, Key=key)
    assert error_code(refused.value) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        wrong_secret.put_object(Bucket=bucket, Key=key, Body=b"overwritten")
    assert error_code(refused.value) == ("SignatureDoesNotMatch", 403)

    unknown_key = store.client(access_key="SOMEONE-ELSE", attempts=1)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        unknown_key.list_objects_v2(Bucket=bucket)
    assert error_code(refused.value) == ("InvalidAccessKeyId", 403)

    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{store.endpoint}/{bucket}/{key}", timeout=5)
    assert anonymous.value.code == 403
    assert store.client().get_object(Bucket=bucket, Key=key)["Body"].read() == b"lake bytes"


def test_if_none_match_creates_a_key_only_once(store: ObjectStore, key: str) -> None:
    client = store.client()
    first = client.put_object(Bucket="mlpipe", Key=key, Body=b"owner-1", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError) as taken:
        client.put_object(Bucket="mlpipe", Key=key, Body=b"owner-2", IfNoneMatch="*")
    assert error_code(taken.value) == ("PreconditionFailed", 412)
    current = client.get_object(Bucket="mlpipe", Key=key)
    assert current["Body"].read() == b"owner-1"
    assert current["ETag"] == first["ETag"]


def test_if_match_replaces_only_the_version_read(store: ObjectStore, key: str) -> None:
    client = store.client()
    first = client.put_object(Bucket="mlpipe", Key=key, Body=b"v1")
    second = client.put_object(Bucket="mlpipe", Key=key, Body=b"v2", IfMatch=first["ETag"])
    with pytest.raises(botocore.exceptions.ClientError) as stale:
        client.put_object(Bucket="mlpipe", Key=key, Body=b"v3 from a stale read",
                          IfMatch=first["ETag"])
    assert error_code(stale.value) == ("PreconditionFailed", 412)
    with pytest.raises(botocore.exceptions.ClientError) as stale_delete:
        client.delete_object(Bucket="mlpipe", Key=key, IfMatch=first["ETag"])
    assert error_code(stale_delete.value) == ("PreconditionFailed", 412)
    assert client.get_object(Bucket="mlpipe", Key=key)["Body"].read() == b"v2"
    client.delete_object(Bucket="mlpipe", Key=key, IfMatch=second["ETag"])
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        client.head_object(Bucket="mlpipe", Key=key)
    assert error_code(gone.value)[1] == 404


def test_a_restart_keeps_the_data_and_the_endpoint(store: ObjectStore, key: str) -> None:
    store.create_bucket("restart-check")
    store.client().put_object(Bucket="restart-check", Key=key, Body=b"before")
    endpoint = store.endpoint
    store.restart()
    assert store.endpoint == endpoint
    client = store.client()
    assert client.get_object(Bucket="restart-check", Key=key)["Body"].read() == b"before"
    client.put_object(Bucket="restart-check", Key=f"{key}-after", Body=b"after")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket="restart-check")["Contents"]]
    assert sorted(keys) == [key, f"{key}-after"]
    store.create_bucket("restart-check")  # already there: fine


def test_a_second_store_runs_beside_and_leaves_nothing_in_tmp(store: ObjectStore,
                                                              tmp_path: Path) -> None:
    # No buckets to create: its start does not wait for the first write (see _after_ready).
    with ObjectStore(tmp_path / "second", access_key="second", secret_key="second-secret"
                     ) as second:
        second.create_bucket("elsewhere")
        assert set(vars(second.ports).values()).isdisjoint(vars(store.ports).values())
        assert [b["Name"] for b in second.client().list_buckets()["Buckets"]] == ["elsewhere"]
        assert "elsewhere" not in [b["Name"] for b in store.client().list_buckets()["Buckets"]]
        sockets = [Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock") for service, port in
                   (("master", second.ports.master_grpc), ("filer", second.ports.filer_grpc),
                    ("volume", second.ports.volume_grpc), ("s3", second.ports.s3_grpc))]
    assert not second.running
    assert [path for path in sockets if path.exists()] == []
    assert list((tmp_path / "second" / "tmp").iterdir()) == []


def test_a_missing_binary_names_the_setup_step(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("MLPIPE_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make setup.*build_seaweedfs.sh"):
        find_weed()
