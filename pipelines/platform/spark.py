"""The one place a SparkSession is built: Delta Lake enabled, settings from config.

Local runs bind the driver to loopback (Spark otherwise binds to the machine's
first non-loopback interface) and make executors use this interpreter, so a
virtual environment works without being activated. Under ``spark-submit`` the
master and the jars come from the submit command (``--jars`` with the two Delta
jars) and are left alone.

An object-store data root adds the S3A connector (hadoop-aws and the AWS SDK
bundle) to the classpath, not to ``spark.jars``: the bundle is ~690 MB and would be
copied into every session's work folder. On a cluster the same jars must be on
every node's classpath (``spark.executor.extraClassPath``) or in the image.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from models.storage import ObjectStoreSettings, is_remote
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DELTA_SETTINGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def maven_jar(group: str, artifact: str, version: str) -> Path:
    """A jar in the local Maven repository (``~/.m2`` or ``$MLPIPE_M2_REPOSITORY``)."""
    repository = Path(os.environ.get("MLPIPE_M2_REPOSITORY", Path.home() / ".m2" / "repository"))
    return repository.joinpath(*group.split("."), artifact, version, f"{artifact}-{version}.jar")


def require(jars: list[Path], what: str) -> list[Path]:
    missing = [str(jar) for jar in jars if not jar.exists()]
    if missing:
        raise ConfigError(f"{what} jars not found: {', '.join(missing)}; "
                          "run `make setup` (scripts/fetch_spark_jars.sh) to fetch them")
    return jars


def delta_jars() -> list[Path]:
    """The Delta Lake jars matching the installed pyspark and delta-spark."""
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    version = importlib.metadata.version("delta-spark")
    return require([maven_jar("io.delta", name, version)
                    for name in (f"delta-spark_{spark_minor}_2.13", "delta-storage")], "Delta Lake")


def s3a_jars() -> list[Path]:
    """hadoop-aws for the Hadoop inside pyspark, with the SDK versions its release names."""
    jars_dir = Path(pyspark.__file__).parent / "jars"
    hadoop = next(jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
                  for jar in jars_dir.glob("hadoop-client-api-*.jar"))
    project_pom = maven_jar("org.apache.hadoop", "hadoop-project", hadoop).with_suffix(".pom")
    pom = project_pom.read_text() if project_pom.exists() else ""

    def managed(name: str) -> str:
        start = pom.find(f"<{name}>")
        return pom[start + len(name) + 2:pom.find(f"</{name}>")] if start >= 0 else "missing"

    return require([
        maven_jar("org.apache.hadoop", "hadoop-aws", hadoop),
        maven_jar("software.amazon.awssdk", "bundle", managed("aws-java-sdk-v2.version")),
        maven_jar("software.amazon.s3.analyticsaccelerator", "analyticsaccelerator-s3",
                  managed("amazon-s3-analyticsaccelerator-s3.version"))], "S3A connector")


def s3a_settings(store: ObjectStoreSettings) -> dict[str, str]:
    """Hadoop's S3A settings for the configured object store, for both URI spellings.

    Credentials are not set here: S3A's default chain reads ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` from the environment (or the instance's role).
    """
    settings = {
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.path.style.access": str(store.path_style_access).lower(),
        "spark.hadoop.fs.s3a.endpoint.region": store.region,
        "spark.hadoop.fs.s3a.connection.establish.timeout": f"{int(store.connect_timeout_s)}s",
        # Fail a run against an unreachable store in seconds rather than retrying for minutes.
        "spark.hadoop.fs.s3a.attempts.maximum": "3",
        "spark.hadoop.fs.s3a.retry.limit": "3",
    }
    if store.endpoint:
        settings["spark.hadoop.fs.s3a.endpoint"] = store.endpoint
        settings["spark.hadoop.fs.s3a.connection.ssl.enabled"] = \
            str(store.endpoint.startswith("https://")).lower()
    return settings


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
    extra: dict[str, str] = {}
    if is_remote(config.data_root):
        extra = s3a_settings(config.object_store)
        if not submitted:
            classpath = os.pathsep.join(str(jar) for jar in s3a_jars())
            extra |= {"spark.driver.extraClassPath": classpath,
                      "spark.executor.extraClassPath": classpath}
    for key, value in {**DELTA_SETTINGS, **extra, **settings.conf}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(settings.log_level)
    log.debug("Spark %s session, master %s", session.version, session.sparkContext.master)
    return session
