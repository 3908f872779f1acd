"""The team's services together: what `describe` hands a client is all it needs."""

from __future__ import annotations

import uuid

import boto3
import pytest
from mlflow import MlflowClient

from pipelines.services import TeamServices


def test_describe_is_the_whole_client_environment(team_services: TeamServices,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    environment = team_services.describe()
    assert environment["MLFLOW_TRACKING_URI"] == team_services.tracking.uri
    assert environment["AWS_ENDPOINT_URL_S3"] == team_services.store.endpoint
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    key = f"tests/{uuid.uuid4().hex}"
    s3 = boto3.client("s3")  # endpoint, region and key from the environment alone
    s3.put_object(Bucket=team_services.bucket, Key=key, Body=b"from describe()")
    assert team_services.store.client().get_object(
        Bucket=team_services.bucket, Key=key)["Body"].read() == b"from describe()"
    assert MlflowClient().get_experiment("0").name == "Default"  # the URI from the env
