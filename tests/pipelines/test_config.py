"""Configuration: precedence, validation errors that name file and key, the CLI view."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from models.storage import ObjectStoreSettings
from models.training.task import Runtime, Schedule, TrainTask
from pipelines.platform.config import load_config, parse_override
from pipelines.platform.errors import ConfigError


@pytest.fixture
def conf_dir(project_conf: Path) -> Path:
    """The project's conf/ with a test overlay."""
    (project_conf / "staging.yaml").write_text(
        "seed: 7\nspark:\n  master: local[1]\n  conf:\n    spark.sql.shuffle.partitions: '3'\n")
    return project_conf


def test_base_values_load(conf_dir: Path) -> None:
    config = load_config(env="base", conf_dir=conf_dir)
    assert config.seed == 42
    assert config.spark.master == "local[*]"
    assert config.env == "base"


def test_env_overlay_beats_base_and_set_beats_env(conf_dir: Path) -> None:
    config = load_config(env="staging", conf_dir=conf_dir)
    assert (config.seed, config.spark.master) == (7, "local[1]")
    assert config.spark.conf["spark.sql.shuffle.partitions"] == "3"
    # the overlay merges into spark.conf instead of replacing the whole mapping
    assert config.spark.conf["spark.sql.session.timeZone"] == "UTC"

    config = load_config(env="staging", conf_dir=conf_dir,
                         overrides=["seed=11", "spark.conf.spark.sql.shuffle.partitions=5"])
    assert config.seed == 11
    assert config.spark.conf["spark.sql.shuffle.partitions"] == "5"
    assert config.spark.master == "local[1]"


def test_env_variable_selects_overlay(conf_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_ENV", "staging")
    assert load_config(conf_dir=conf_dir).seed == 7


def test_local_overlay_applies_after_env(conf_dir: Path) -> None:
    (conf_dir / "local.yaml").write_text("seed: 99\n")
    assert load_config(env="staging", conf_dir=conf_dir).seed == 99


def test_unknown_key_names_file_and_key(conf_dir: Path) -> None:
    (conf_dir / "staging.yaml").write_text("spark:\n  matser: local[2]\n")
    with pytest.raises(ConfigError) as info:
        load_config(env="staging", conf_dir=conf_dir)
    message = str(info.value)
    assert str(conf_dir / "staging.yaml") in message
    assert "spark.matser" in message and "unknown key" in message


def test_wrong_type_names_file_and_key(conf_dir: Path) -> None:
    (conf_dir / "staging.yaml").write_text("mlflow:\n  ui_port: lots\n")
    with pytest.raises(ConfigError) as info:
        load_config(env="staging", conf_dir=conf_dir)
    message = str(info.value)
    assert str(conf_dir / "staging.yaml") in message and "mlflow.ui_port" in message


def test_bad_override_names_set(conf_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"--set: seed"):
        load_config(conf_dir=conf_dir, overrides=["seed=abc"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(conf_dir=conf_dir, overrides=["seed"])


def test_missing_overlay_is_an_error(conf_dir: Path) -> None:
    with pytest.raises(ConfigError, match="prod.yaml"):
        load_config(env="prod", conf_dir=conf_dir)


def test_config_is_frozen(conf_dir: Path) -> None:
    config = load_config(conf_dir=conf_dir)
    with pytest.raises(ValidationError):
        config.seed = 1  # type: ignore[misc]


def test_parse_override_keeps_spark_keys_whole() -> None:
    assert parse_override("spark.conf.spark.sql.shuffle.partitions=4") == {
        "spark": {"conf": {"spark.sql.shuffle.partitions": "4"}}}
    assert parse_override("a.b=[1, 2]") == {"a": {"b": [1, 2]}}


def test_fingerprint_changes_with_section(conf_dir: Path) -> None:
    one = load_config(conf_dir=conf_dir)
    two = load_config(conf_dir=conf_dir, overrides=["seed=1"])
    assert one.fingerprint() != two.fingerprint()
    assert one.fingerprint("spark") == two.fingerprint("spark")


def test_sections_the_workers_read_are_validated_with_names_of_file_and_key(
        conf_dir: Path) -> None:
    # object_store, horovod.mpi and the training schedule are the classes of models/,
    # validated from YAML as they are: their errors still name the key and where it was set.
    for override, key, problem in [
            ("object_store.connect_timeout_s=0", "object_store.connect_timeout_s",
             "greater than 0"),
            ("horovod.mpi.hostz=[a]", "horovod.mpi.hostz", "unknown key"),
            ("train_deep.warmup_epochs=soon", "train_deep.warmup_epochs", "valid integer")]:
        with pytest.raises(ConfigError) as info:
            load_config(conf_dir=conf_dir, overrides=[override])
        assert f"--set: {key}: " in str(info.value) and problem in str(info.value)


def test_the_workers_get_the_config_s_own_settings(conf_dir: Path) -> None:
    config = load_config(conf_dir=conf_dir, overrides=["horovod.mpi.hosts=[a:2, b:2]"])
    assert isinstance(config.object_store, ObjectStoreSettings)
    assert isinstance(config.train_deep, Schedule)
    assert config.horovod.mpi.slots == 4
    schedule = Schedule(**config.train_deep.model_dump(include=set(Schedule.model_fields)))
    assert TrainTask.from_json(TrainTask(
        kind="tabular", table_path="t", table_version=0, encoder="m:f", encoder_arg="s",
        label="y", model={}, schedule=schedule,
        runtime=Runtime(threads_per_worker=1, fp16_allreduce=False), seed=1,
        output_dir="o").to_json()).schedule == schedule
