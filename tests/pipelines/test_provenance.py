"""Deployments sharing a registry do not overwrite each other, and the gate and batch
scoring load only verified versions of their own deployment.

Each test has a data root, and so an embedded registry, of its own. The refusals come
before any Spark job: the steps run without a Spark session (one asked for fails the test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from models.model_uri import version_uri
from models.storage import local_path
from pipelines.orchestration.step_runner import record_result, run_step
from pipelines.platform.config import Config
from pipelines.platform.errors import RegistryConflictError
from pipelines.platform.registry import (
    CANDIDATE,
    CHAMPION,
    deployment_of,
    register_candidate,
)
from pipelines.platform.step import StepContext, StepResult
from pipelines.platform.tracking import start_run
from pipelines.release.batch_score import BATCH_SCORE
from pipelines.release.evaluate import EVALUATE
from pipelines.release.promote import PROMOTE
from pipelines.training.regression import TRAIN_REGRESSION
from serving.provenance import (
    DECISION_TAG,
    DEPLOYMENT_TAG,
    DIGEST_TAG,
    NOT_PROMOTED,
    OTHER_DEPLOYMENT,
    ModelRefused,
    artifact_digest,
)
from tests.conftest import make_config

NAME = "flight-delay-linear"  # in the flights catalogue, so every step considers it
ELSEWHERE = "s3a://elsewhere/data"


class Doubled(mlflow.pyfunc.PythonModel):
    """Stands in for a trained model; no test here gets as far as loading it."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return model_input["x"].to_numpy() * 2.0


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Config]:
    yield make_config(tmp_path / "data")
    mlflow.set_tracking_uri(None)  # the runs pointed the client at this test's registry
    mlflow.set_registry_uri(None)
    os.environ.pop("MLFLOW_REGISTRY_URI", None)  # where set_registry_uri put it


def logged(config: Config) -> tuple[str, str]:
    """(model URI, run id) of a model logged as a training step logs one."""
    example = pd.DataFrame({"x": [1.0, 2.0]})
    with start_run(config, "train") as run:
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Doubled(), pip_requirements=["mlflow"],
            signature=infer_signature(example, example["x"].to_numpy() * 2.0))
    return info.model_uri, run.info.run_id


def no_spark(config: Config):
    raise AssertionError("a refused version must stop the step before any Spark job")


def run_refused(step_run, config: Config) -> ModelRefused:
    with pytest.raises(ModelRefused) as refusal:
        step_run(StepContext(config, session_factory=no_spark))
    return refusal.value


def test_a_run_of_another_deployment_cannot_register_into_the_owners_names(
        config: Config) -> None:
    uri, run_id = logged(config)
    ours = register_candidate(NAME, uri, run_id, deployment_of(config))
    with pytest.raises(RegistryConflictError, match=rf"{NAME} belongs to deployment "
                                                    rf"{deployment_of(config)}"):
        register_candidate(NAME, uri, run_id, ELSEWHERE)
    client = MlflowClient()
    assert [v.version for v in client.search_model_versions(f"name = '{NAME}'")] == \
        [ours.version]
    assert client.get_model_version_by_alias(NAME, CANDIDATE).version == ours.version


def test_a_training_step_is_refused_before_it_trains_into_another_deployments_name(
        config: Config) -> None:
    uri, run_id = logged(config)
    register_candidate(NAME, uri, run_id, ELSEWHERE)
    with pytest.raises(RegistryConflictError, match=rf"{NAME} belongs to deployment "
                                                    rf"{ELSEWHERE}"):
        run_step(TRAIN_REGRESSION, config, StepContext(config, session_factory=no_spark))


def test_the_gate_refuses_another_deployments_candidate(config: Config) -> None:
    uri, run_id = logged(config)
    theirs = register_candidate(NAME, uri, run_id, ELSEWHERE)
    for step in (EVALUATE, PROMOTE):
        refusal = run_refused(step.run, config)
        assert refusal.reason == OTHER_DEPLOYMENT
        assert str(refusal) == (f"{version_uri(NAME, theirs.version)} refused: it belongs to "
                                f"deployment {ELSEWHERE}, not {deployment_of(config)} "
                                "(mlpipe.deployment)")
    assert DECISION_TAG not in MlflowClient().get_model_version(NAME, theirs.version).tags


def test_evaluate_and_batch_score_refuse_a_champion_the_gate_did_not_promote(
        config: Config) -> None:
    uri, run_id = logged(config)
    first = register_candidate(NAME, uri, run_id, deployment_of(config))
    MlflowClient().set_registered_model_alias(NAME, CHAMPION, first.version)  # by hand
    register_candidate(NAME, uri, run_id, deployment_of(config))
    for step in (EVALUATE, BATCH_SCORE):
        refusal = run_refused(step.run, config)
        assert refusal.reason == NOT_PROMOTED
        assert str(refusal) == (f"{version_uri(NAME, first.version)} refused: not promoted "
                                "(mlpipe.decision=<unset>)")


def test_a_step_result_is_registered_with_its_deployment_and_digest(config: Config) -> None:
    """What record_result writes is what the loaders check."""
    uri, run_id = logged(config)
    with start_run(config, "train_regression") as run:
        record_result(StepResult(models={NAME: uri}), run.info.run_id, deployment_of(config))
    client = MlflowClient()
    version = client.get_model_version_by_alias(NAME, CANDIDATE)
    assert version.tags[DEPLOYMENT_TAG] == deployment_of(config) == str(Path(config.data_root))
    store = local_path(client.get_model_version_download_uri(NAME, version.version))
    assert version.tags[DIGEST_TAG] == artifact_digest(store)
    assert client.get_registered_model(NAME).tags[DEPLOYMENT_TAG] == deployment_of(config)
