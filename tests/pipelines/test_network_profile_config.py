"""``horovod.network_profile`` fills the keys left null; written values win; names are checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.platform.config import load_config
from pipelines.platform.errors import ConfigError
from tests.conftest import CONF_DIR


@pytest.fixture(scope="module")
def conf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("profiles") / "conf"
    shutil.copytree(CONF_DIR, folder, ignore=shutil.ignore_patterns("local.yaml"))
    (folder / "gigabit.yaml").write_text(
        "horovod:\n  network_profile: ethernet-1g\n  fusion_threshold_mb: 8\n")
    return folder


def test_loopback_default_keeps_the_single_machine_settings(conf_dir: Path) -> None:
    config = load_config(conf_dir=conf_dir)
    profile = config.horovod.network_profiles["loopback"]
    assert config.horovod.network_profile == "loopback"
    assert (config.horovod.fusion_threshold_mb, config.horovod.fp16_allreduce,
            config.train_deep.batch_size, config.train_sequence.batch_size) == (
        profile.fusion_threshold_mb, profile.fp16_allreduce, profile.train_deep_batch_size,
        profile.train_sequence_batch_size)


def test_profile_fills_null_keys_and_written_values_win(conf_dir: Path) -> None:
    config = load_config(env="gigabit", conf_dir=conf_dir,
                         overrides=["train_sequence.batch_size=32"])
    profile = config.horovod.network_profiles["ethernet-1g"]
    assert config.horovod.fusion_threshold_mb == 8  # the overlay's own value
    assert config.train_sequence.batch_size == 32  # --set
    assert config.horovod.fp16_allreduce == profile.fp16_allreduce
    assert config.train_deep.batch_size == profile.train_deep_batch_size
    assert config.train_deep.batch_size != load_config(conf_dir=conf_dir).train_deep.batch_size


def test_unknown_profile_names_where_it_was_set(conf_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"--set: horovod.network_profile: 'infiniband'.*"
                                          r"loopback, ethernet-1g"):
        load_config(conf_dir=conf_dir, overrides=["horovod.network_profile=infiniband"])


def test_profile_fields_are_validated(conf_dir: Path) -> None:
    with pytest.raises(ConfigError, match="network_profiles.loopback.fp16_allreduce"):
        load_config(conf_dir=conf_dir,
                    overrides=["horovod.network_profiles.loopback.fp16_allreduce=maybe"])
