"""``mlpipe submit STEP``: run a step's job with ``spark-submit`` on a cluster.

The project's code travels to the executors as one zip on ``--py-files`` (built
from the installed packages), Delta's jars on ``--jars``, and the driver reads the
same ``conf/`` folder, so a job behaves on a cluster as it does locally.

``spark.conf`` goes in a private properties file (``--properties-file``, mode 0600, removed
when the job ends), never on the command line, which any local user can read in the
process table: it may hold a key or a password. The installation's own
``spark-defaults.conf`` still applies beneath it (``--load-spark-defaults``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pyspark

from models.private_files import write_private
from models.project import PROJECT_ROOT
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError
from pipelines.platform.redact import redact
from pipelines.platform.spark import delta_jars

PACKAGES = ("jobs", "pipelines", "models", "serving")
# Steps whose job module is not simply jobs/<step>.py.
JOB_MODULES = {"features": "build_features"}


def job_script(step: str) -> Path:
    """The spark-submit entry point of ``step`` in ``jobs/``."""
    script = PROJECT_ROOT / "jobs" / f"{JOB_MODULES.get(step, step)}.py"
    if not script.exists():
        raise ConfigError(f"no spark-submit job for step {step!r} (looked for {script})")
    return script


def build_code_archive(dest_dir: Path) -> Path:
    """Zip the project's packages for ``--py-files`` (sources only, no caches)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive = dest_dir / "mlpipe.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for package in PACKAGES:
            for path in sorted((PROJECT_ROOT / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    bundle.write(path, path.relative_to(PROJECT_ROOT))
    return archive


def spark_submit_executable() -> str:
    """``spark-submit`` from the installed pyspark (the pip package ships it)."""
    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def spark_properties(config: Config) -> dict[str, str]:
    """What the job's Spark conf is: ``spark.conf``, run with this interpreter."""
    # The driver runs here, with this interpreter; executors use it too unless the
    # config names the cluster's own.
    return {"spark.pyspark.python": sys.executable, **config.spark.conf,
            "spark.pyspark.driver.python": sys.executable}


def write_properties(properties: dict[str, str], path: Path) -> Path:
    """``properties`` in spark-defaults.conf's format (``key value`` lines), private."""
    return write_private(path, "".join(f"{key} {value}\n" for key, value in properties.items()))


def submit_command(config: Config, step: str, archive: Path, *, conf_dir: Path,
                   properties_file: Path, overrides: Sequence[str] = (),
                   step_args: Sequence[str] = ()) -> list[str]:
    """The full ``spark-submit`` command line for ``step`` against ``spark.master``, its
    Spark conf read from ``properties_file``."""
    command = [spark_submit_executable(), "--master", config.spark.master,
               "--name", f"{config.spark.app_name}-{step}",
               "--jars", ",".join(str(jar) for jar in delta_jars()),
               "--py-files", str(archive),
               "--properties-file", str(properties_file), "--load-spark-defaults",
               str(job_script(step)), "--config", str(conf_dir), "--env", config.env]
    for override in overrides:
        command += ["--set", override]
    return command + list(step_args)


def submit(config: Config, step: str, *, conf_dir: Path, overrides: Sequence[str] = (),
           step_args: Sequence[str] = (), dry_run: bool = False) -> int:
    """Build the archive and run (or, with ``dry_run``, print) the spark-submit command,
    and the properties it reads with their secrets redacted."""
    archive = build_code_archive(PROJECT_ROOT / "build" / "spark-submit")
    properties = spark_properties(config)
    with tempfile.TemporaryDirectory(prefix="mlpipe-submit-") as private:  # mode 0700
        command = submit_command(config, step, archive, conf_dir=conf_dir,
                                 properties_file=Path(private) / "spark.properties",
                                 overrides=overrides, step_args=step_args)
        print(" ".join(command))
        for key, value in redact(properties).items():
            print(f"  {key} {value}")
        if dry_run:
            return 0
        write_properties(properties, Path(private) / "spark.properties")
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
        return subprocess.call(command, env=env)
