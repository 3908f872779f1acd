"""The one place a SparkSession is built: Delta Lake enabled, settings from config.

Local runs bind the driver to loopback (Spark otherwise binds to the machine's
first non-loopback interface) and make executors use this interpreter, so a
virtual environment works without being activated. Under ``spark-submit`` the
master and the jars come from the submit command (``--jars`` with the two Delta
jars) and are left alone.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from pipelines.config import Config
from pipelines.errors import ConfigError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DELTA_SETTINGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def delta_jars() -> list[Path]:
    """The Delta Lake jars matching the installed pyspark and delta-spark, from ``~/.m2``.

    ``scripts/fetch_delta_jars.sh`` (run by ``make setup``) puts them there.
    """
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    version = importlib.metadata.version("delta-spark")
    repository = Path(os.environ.get("MLPIPE_M2_REPOSITORY", Path.home() / ".m2" / "repository"))
    jars = [repository / "io" / "delta" / name / version / f"{name}-{version}.jar"
            for name in (f"delta-spark_{spark_minor}_2.13", "delta-storage")]
    missing = [str(jar) for jar in jars if not jar.exists()]
    if missing:
        raise ConfigError(f"Delta Lake jars not found: {', '.join(missing)}; "
                          "run `make setup` (scripts/fetch_delta_jars.sh) to fetch them")
    return jars


def launched_by_spark_submit() -> bool:
    """True when this Python process is the driver of a ``spark-submit`` application."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_spark_session(config: Config) -> SparkSession:
    """Get or create the session for this run, with Delta and every ``spark.*`` setting."""
    settings = config.spark
    builder = SparkSession.builder
    submitted = launched_by_spark_submit()
    local = not submitted and settings.master.startswith("local")
    if not submitted:
        builder = builder.master(settings.master).appName(settings.app_name)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
        builder = builder.config("spark.driver.host", LOOPBACK) \
                         .config("spark.driver.bindAddress", LOOPBACK)
    if not submitted:
        builder = builder.config("spark.jars", ",".join(str(jar) for jar in delta_jars()))
    for key, value in {**DELTA_SETTINGS, **settings.conf}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(settings.log_level)
    log.debug("Spark %s session, master %s", session.version, session.sparkContext.master)
    return session
