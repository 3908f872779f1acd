"""Only what the gate released is loaded: an alias moved to anything else is refused.

Four versions no server may load, each wrong in one way only: rejected by the gate, its
artifacts overwritten after registration, registered from a folder outside the artifact
root (with tags copied from a good version, digest included), and tagged as another
deployment's. Each is refused by the loader a server starts with, a server whose alias
names one exits at startup, and under --watch each is refused in turn while the running
version keeps answering, the refusal counted on /metrics by reason; a fleet starts a
replica for a refused version once, not at every poll.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow.entities.model_registry import ModelVersion
from prometheus_client.parser import text_string_to_metric_families

from lab.registry import LAB_DEPLOYMENT
from models.model_uri import alias_uri, version_uri
from models.storage import local_path
from pipelines.platform.registry import record_decision, tag_version
from serving import exit_codes
from serving.fleet import Fleet
from serving.fleet.replicas import Replica
from serving.provenance import (
    DECISION_TAG,
    DEPLOYMENT_TAG,
    DIGEST_MISMATCH,
    DIGEST_TAG,
    NOT_PROMOTED,
    OTHER_DEPLOYMENT,
    OUTSIDE_ARTIFACT_ROOT,
    ModelRefused,
)
from serving.runtime import load_runtime
from serving.settings import load_settings
from tests.serving.conftest import ServerProcess, start_server
from tests.serving.models import log_scaled_model

NAME = "guarded"
REFUSED_METRIC = "mlpipe_serving_model_versions_refused"
WAIT_S = 30.0


@dataclass(frozen=True)
class Versions:
    good: str
    refused: dict[str, tuple[str, str]]  # reason -> (version, what the message says)
    next_good: str


def version(number: str) -> ModelVersion:
    return mlflow.MlflowClient().get_model_version(NAME, number)


def released(factor: float) -> str:
    """A released version answering `factor * x`."""
    return log_scaled_model(NAME, "x", factor, delay_s=0.0)


@pytest.fixture(scope="module")
def versions(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Versions:
    client = mlflow.MlflowClient()
    good = released(1.0)

    rejected = released(3.0)
    record_decision(version(rejected), "rejected", "does not beat the champion")

    tampered = released(4.0)  # its pickled code replaced by another version's, in the store
    store = local_path(client.get_model_version_download_uri(NAME, tampered))
    other = local_path(client.get_model_version_download_uri(NAME, rejected))
    shutil.copyfile(Path(other) / "python_model.pkl", Path(store) / "python_model.pkl")

    # The good version's files, registered from a folder of their own with its run and
    # tags: only where the files lie gives it away.
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "model"
    shutil.copytree(local_path(client.get_model_version_download_uri(NAME, good)), elsewhere)
    source = version(good)
    outside = client.create_model_version(NAME, str(elsewhere), run_id=source.run_id)
    tag_version(outside, {tag: source.tags[tag]
                          for tag in (DIGEST_TAG, DEPLOYMENT_TAG, DECISION_TAG)})

    foreign = released(5.0)
    tag_version(version(foreign), {DEPLOYMENT_TAG: "s3a://elsewhere/data"})

    client.set_registered_model_alias(NAME, "champion", good)
    return Versions(good, {
        NOT_PROMOTED: (rejected, "not promoted (mlpipe.decision=rejected)"),
        DIGEST_MISMATCH: (tampered, "its artifacts changed since registration"),
        OUTSIDE_ARTIFACT_ROOT: (outside.version, f"its artifacts at {elsewhere} are outside "
                                                 "the artifact root"),
        OTHER_DEPLOYMENT: (foreign, "it belongs to deployment s3a://elsewhere/data, not lab"),
    }, next_good=released(2.0))


@pytest.mark.parametrize("reason", [NOT_PROMOTED, DIGEST_MISMATCH, OUTSIDE_ARTIFACT_ROOT,
                                    OTHER_DEPLOYMENT])
def test_the_loader_refuses_a_version_the_gate_did_not_release(versions: Versions,
                                                               reason: str) -> None:
    number, detail = versions.refused[reason]
    with pytest.raises(ModelRefused) as refusal:
        load_runtime(version_uri(NAME, number), (1,), deployment=LAB_DEPLOYMENT)
    assert refusal.value.reason == reason
    assert str(refusal.value).startswith(f"{version_uri(NAME, number)} refused: {detail}")


def test_the_loader_loads_a_released_version_of_any_deployment_when_none_is_set(
        versions: Versions) -> None:
    # Loaded through its models:/ URI elsewhere, as in a notebook: MLflow writes a file of
    # its own into the store's folder, which does not make the version look tampered with.
    mlflow.pyfunc.load_model(version_uri(NAME, versions.good))
    runtime = load_runtime(version_uri(NAME, versions.good), (1,), deployment="")
    assert runtime.version == versions.good
    foreign, _ = versions.refused[OTHER_DEPLOYMENT]
    assert load_runtime(version_uri(NAME, foreign), (1,), deployment="").version == foreign


def test_a_server_whose_alias_names_an_unpromoted_version_exits_at_startup(
        versions: Versions, tmp_path: Path) -> None:
    rejected, detail = versions.refused[NOT_PROMOTED]
    mlflow.MlflowClient().set_registered_model_alias(NAME, "startup", rejected)
    server = start_server(alias_uri(NAME, "startup"), tmp_path, wait_ready=False)
    assert server.process.wait(WAIT_S) == exit_codes.MODEL_REFUSED
    assert f"{version_uri(NAME, rejected)} refused: {detail}" in server.log_tail()


def test_watch_refuses_each_unreleased_version_and_keeps_serving(
        versions: Versions, tmp_path: Path) -> None:
    client = mlflow.MlflowClient()
    server = start_server(alias_uri(NAME, "champion"), tmp_path, "--watch",
                          "--watch-interval-s", "0.2", "--deployment", LAB_DEPLOYMENT)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for reason, (number, detail) in versions.refused.items():
                client.set_registered_model_alias(NAME, "champion", number)
                wait_for(lambda reason=reason: refusals(http).get(reason) == 1.0, server)
                assert answer(http) == (versions.good, 2.0)
                assert f"{version_uri(NAME, number)} refused: {detail}" in server.log_tail()
            client.set_registered_model_alias(NAME, "champion", versions.next_good)
            wait_for(lambda: answer(http)[0] == versions.next_good, server)
            assert answer(http) == (versions.next_good, 4.0)
            assert refusals(http) == dict.fromkeys(versions.refused, 1.0)
    finally:
        server.stop()


def answer(http: httpx.Client) -> tuple[str, float]:
    """(version that answered, its prediction) for x = 2."""
    response = http.post("/invocations", json={"dataframe_split": {"columns": ["x"],
                                                                   "data": [[2.0]]}})
    response.raise_for_status()
    return response.headers["x-model-version"], response.json()["predictions"][0]


def refusals(http: httpx.Client) -> dict[str, float]:
    """The refusal counter on /metrics, by reason."""
    text = http.get("/metrics").text
    return {sample.labels["reason"]: sample.value
            for family in text_string_to_metric_families(text) if family.name == REFUSED_METRIC
            for sample in family.samples if sample.name.endswith("_total")}


def wait_for(condition: Callable[[], bool], server: ServerProcess) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S} s; server log:\n{server.log_tail()}")
        time.sleep(0.1)


class CountingFleet(Fleet):
    """A fleet that notes the version of each replica it starts."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[str] = []

    def start_replica(self, name: str, model_uri: str, version: str) -> Replica:
        self.started.append(version)
        return super().start_replica(name, model_uri, version)


def test_a_fleet_tries_a_refused_version_once_and_keeps_serving(versions: Versions) -> None:
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(NAME, "fleet", versions.good)
    settings = load_settings(replicas=1, balance="roundrobin", port=0, watch_interval_s=0.2,
                             deployment=LAB_DEPLOYMENT, log_level="warning",
                             health_check_interval_ms=200, graceful_shutdown_s=10)
    rejected, _ = versions.refused[NOT_PROMOTED]
    with CountingFleet(alias_uri(NAME, "fleet"), settings, watch=True) as fleet, \
            httpx.Client(base_url=fleet.url, timeout=10) as http:
        client.set_registered_model_alias(NAME, "fleet", rejected)
        deadline = time.monotonic() + WAIT_S
        while fleet.roll_attempts.refused != rejected:
            assert time.monotonic() < deadline, "the refusal was not noticed"
            time.sleep(0.1)
        time.sleep(10 * settings.watch_interval_s)  # ten polls that must not try again
        assert fleet.started.count(rejected) == 1
        assert answer(http) == (versions.good, 2.0)
        client.set_registered_model_alias(NAME, "fleet", versions.next_good)
        deadline = time.monotonic() + WAIT_S
        while answer(http)[0] != versions.next_good:
            assert time.monotonic() < deadline, "the next good version was not rolled in"
            time.sleep(0.2)
    assert fleet.started == [versions.good, rejected, versions.next_good]
