"""What ``mlpipe submit`` hands to spark-submit: a job per step, the code archive, the conf.

tests/test_cluster.py runs one job on a real cluster; these check every job in jobs/ and
the command line without starting one.
"""

from __future__ import annotations

import runpy
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from pipelines.orchestration.catalogue import STEPS
from pipelines.orchestration.submit import (
    build_code_archive,
    job_script,
    spark_properties,
    submit_command,
    write_properties,
)
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError


@pytest.mark.parametrize("step", [step.name for step in STEPS])
def test_each_step_has_a_job_that_runs_that_step(step: str, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    script = job_script(step)
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(script), run_name="__main__")
    assert exited.value.code == 0
    assert f"Usage: mlpipe step {step} " in capsys.readouterr().out


def test_a_step_without_a_job_is_named() -> None:
    with pytest.raises(ConfigError, match="no spark-submit job for step 'nope'"):
        job_script("nope")


def test_the_archive_holds_the_product_packages_and_nothing_else(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_code_archive(tmp_path)) as archive:
        names = archive.namelist()
    assert {name.split("/", 1)[0] for name in names} == {"jobs", "pipelines", "models",
                                                          "serving"}
    assert "pipelines/cli.py" in names and "models/regression/tsqr.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_command_ships_the_archive_and_passes_the_settings_on(config: Config,
                                                                  tmp_path: Path) -> None:
    archive = tmp_path / "mlpipe.zip"
    command = submit_command(config, "ingest", archive, conf_dir=tmp_path / "conf",
                             properties_file=tmp_path / "spark.properties",
                             overrides=("seeding.end=2013-01-02",), step_args=("--source",
                                                                               "flights"))
    assert command[command.index("--py-files") + 1] == str(archive)
    assert command[command.index("--master") + 1] == config.spark.master
    assert command[command.index("--properties-file") + 1] == str(tmp_path / "spark.properties")
    assert "--load-spark-defaults" in command and "--conf" not in command
    jars = command[command.index("--jars") + 1].split(",")
    assert any("delta-spark" in jar for jar in jars)
    job = command.index(str(job_script("ingest")))
    assert command[job + 1:] == ["--config", str(tmp_path / "conf"), "--env", config.env,
                                 "--set", "seeding.end=2013-01-02", "--source", "flights"]


def test_the_spark_conf_travels_in_a_private_file_never_on_the_command_line(
        config: Config, tmp_path: Path) -> None:
    secret = "s3a-secret-for-the-test"
    conf = {**config.spark.conf, "spark.hadoop.fs.s3a.secret.key": secret}
    settings = config.model_copy(update={"spark": config.spark.model_copy(update={"conf": conf})})
    properties = spark_properties(settings)
    path = write_properties(properties, tmp_path / "spark.properties")
    command = submit_command(settings, "ingest", tmp_path / "mlpipe.zip", conf_dir=tmp_path,
                             properties_file=path)

    assert not any(secret in part for part in command)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert f"spark.hadoop.fs.s3a.secret.key {secret}" in lines
    assert f"spark.pyspark.driver.python {sys.executable}" in lines
