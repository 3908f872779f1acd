"""The layout: every location under the data root, local or on an object store."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.platform.config import load_config
from pipelines.platform.errors import ConfigError
from pipelines.platform.layout import Layout
from tests.support.flights import FEATURE_TABLE


def layout_for(project_conf: Path, data_root: str) -> Layout:
    return Layout.of(load_config(env="base", conf_dir=project_conf,
                                 overrides=[f"data_root={data_root}"]))


def test_local_root_is_made_absolute(project_conf: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    layout = layout_for(project_conf, "./d/")
    assert layout.root == f"{tmp_path}/d"
    assert not layout.is_remote
    assert layout.table("bronze", "flights") == f"{tmp_path}/d/lake/bronze/flights"
    assert layout.landing("weather") == f"{tmp_path}/d/landing/weather"
    assert layout.landing() == f"{tmp_path}/d/landing"
    assert layout.mlflow_store == f"{tmp_path}/d/mlflow"
    assert layout_for(project_conf, f"file://{tmp_path}/e").root == f"{tmp_path}/e"


def test_home_is_expanded(project_conf: Path, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert layout_for(project_conf, "~/mlpipe").root == f"{tmp_path}/mlpipe"


def test_object_store_root_stays_a_uri(project_conf: Path) -> None:
    layout = layout_for(project_conf, "s3a://bucket/root/")
    assert layout.root == "s3a://bucket/root"
    assert layout.is_remote
    assert layout.table("silver", FEATURE_TABLE) == f"s3a://bucket/root/lake/silver/{FEATURE_TABLE}"
    assert layout.feature_spec(FEATURE_TABLE, 3) == \
        f"s3a://bucket/root/lake/silver/_specs/{FEATURE_TABLE}/v3.json"
    assert layout.ingest_checkpoint("flights") == "s3a://bucket/root/lake/state/ingest/flights"
    assert layout.pipeline_lock == "s3a://bucket/root/state/pipeline.lock"
    assert layout.pipeline_state == "s3a://bucket/root/state/pipeline_state.json"
    assert layout.schedule_marker == "s3a://bucket/root/state/schedule.json"
    assert layout.training("train_deep") == "s3a://bucket/root/training/train_deep"
    # SQLite needs a local disk: there is no embedded tracking store under a remote root.
    assert layout.mlflow_store is None
    bucket_root = layout_for(project_conf, "s3://bucket")
    assert bucket_root.landing("flights") == "s3://bucket/landing/flights"


def test_unknown_layer_is_refused(project_conf: Path, tmp_path: Path) -> None:
    layout = layout_for(project_conf, str(tmp_path))
    with pytest.raises(ValueError, match="platinum"):
        layout.table("platinum", "x")


def test_unsupported_scheme_is_a_config_error_naming_data_root(project_conf: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env="base", conf_dir=project_conf, overrides=["data_root=gs://x/root"])
    message = str(info.value)
    assert "--set: data_root:" in message
    assert "gs" in message
