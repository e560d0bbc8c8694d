"""Tests of jobs.session's release of what a run persisted, on a real local Spark session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from jobs.session import persisted_rdd_ids, release_persisted

RDD_LOGGER = "org.apache.spark.rdd.MapPartitionsRDD"


def _level(spark: SparkSession) -> str:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return str(jvm.org.apache.logging.log4j.LogManager.getLogger(RDD_LOGGER).getLevel())


@pytest.fixture()
def rdd_logger_at_warn(spark: SparkSession) -> Iterator[None]:
    """The RDD logger at WARN, as in a job (the tests' sessions log errors only)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    log4j = jvm.org.apache.logging.log4j
    before = log4j.LogManager.getLogger(RDD_LOGGER).getLevel()
    log4j.core.config.Configurator.setLevel(RDD_LOGGER, log4j.Level.WARN)
    yield
    log4j.core.config.Configurator.setLevel(RDD_LOGGER, before)


@pytest.mark.usefixtures("rdd_logger_at_warn")
def test_release_frees_local_checkpoints_and_gives_the_rdd_logger_its_level_back(
    spark: SparkSession,
) -> None:
    before = persisted_rdd_ids(spark)
    kept = spark.range(1000).selectExpr("id % 7 AS k").localCheckpoint()  # persisted blocks
    assert kept.count() == 1000
    assert persisted_rdd_ids(spark) - before  # the checkpoint holds storage

    assert release_persisted(spark, before) >= 1
    assert persisted_rdd_ids(spark) == before
    # Quietened for the release only: later warnings of that logger still show.
    assert _level(spark) == "WARN"
