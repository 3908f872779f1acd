"""The session builder: Delta enabled, settings from config, driver on loopback."""

from __future__ import annotations

from pyspark.sql import SparkSession

from pipelines.platform.spark import DELTA_SETTINGS, delta_jars


def test_session_has_delta_and_config_settings(spark: SparkSession) -> None:
    conf = spark.sparkContext.getConf()
    for key, value in DELTA_SETTINGS.items():
        assert conf.get(key) == value
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.sparkContext.master == "local[2]"


def test_local_driver_binds_to_loopback(spark: SparkSession) -> None:
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.host") == "127.0.0.1"
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"


def test_delta_jars_match_installed_versions(spark: SparkSession) -> None:
    jars = spark.sparkContext.getConf().get("spark.jars")
    for jar in delta_jars():
        assert jar.exists() and str(jar) in jars
    assert "delta-spark_" + ".".join(spark.version.split(".")[:2]) in jars
