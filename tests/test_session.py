"""Tests of jobs.session's log levels and its release of what a run persisted, on a real local
Spark session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from jobs.config import DRIVER_JAVA_OPTIONS, SparkConfig, load_config
from jobs.session import (
    DRIVER_JAVA_OPTIONS_KEY,
    DRIVER_MEMORY_KEY,
    EXPECTED_WARNINGS,
    driver_java_options,
    mebibytes,
    persisted_rdd_ids,
    quiet_expected_warnings,
    release_persisted,
)

OTHER = "org.apache.spark.sql.execution.adaptive.AdaptiveSparkPlanExec"


def _level(spark: SparkSession, name: str) -> str:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return str(jvm.org.apache.logging.log4j.LogManager.getLogger(name).getLevel())


@pytest.fixture()
def loggers_at_warn(spark: SparkSession) -> Iterator[None]:
    """The expected-warning loggers and one other at WARN, as in a job (the tests' sessions
    log errors only); their levels back afterwards."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    log4j = jvm.org.apache.logging.log4j
    names = [*EXPECTED_WARNINGS, OTHER]
    before = {name: log4j.LogManager.getLogger(name).getLevel() for name in names}
    for name in names:
        log4j.core.config.Configurator.setLevel(name, log4j.Level.WARN)
    yield
    for name, level in before.items():
        log4j.core.config.Configurator.setLevel(name, level)


@pytest.mark.usefixtures("loggers_at_warn")
def test_expected_warnings_are_quiet_and_no_other_logger_is(spark: SparkSession) -> None:
    quiet_expected_warnings(spark)
    assert {name: _level(spark, name) for name in EXPECTED_WARNINGS} == dict.fromkeys(
        EXPECTED_WARNINGS, "ERROR"
    )
    assert _level(spark, OTHER) == "WARN"


def test_release_frees_local_checkpoints(spark: SparkSession) -> None:
    before = persisted_rdd_ids(spark)
    kept = spark.range(1000).selectExpr("id % 7 AS k").localCheckpoint()  # persisted blocks
    assert kept.count() == 1000
    assert persisted_rdd_ids(spark) - before  # the checkpoint holds storage
    assert release_persisted(spark, before) >= 1
    assert persisted_rdd_ids(spark) == before


def test_the_job_imports_great_expectations_mlflow_and_matplotlib_only_when_it_runs() -> None:
    """Importing the job loads none of the three (about 4 s of Python): `run` imports them in
    a thread while the Spark session's JVM starts (`_LATER_MODULES`), and each module that
    uses one imports it where it does. A top-level import of one of them anywhere the job
    imports would put those seconds back before the session."""
    import subprocess
    import sys
    from pathlib import Path

    from jobs.resolve_entities import _LATER_MODULES

    probe = (
        "import sys, jobs.resolve_entities; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'great_expectations', "
        "'mlflow', 'matplotlib'}))"
    )
    root = Path(__file__).resolve().parent.parent
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
    assert {name.split(".")[0] for name in _LATER_MODULES} == {
        "great_expectations",
        "mlflow",
        "matplotlib",
    }


def test_driver_java_options_come_first_and_extra_options_after_them() -> None:
    options = {DRIVER_JAVA_OPTIONS_KEY: "-XX:+UseG1GC -Dx=1"}
    assert driver_java_options(SparkConfig(options=options)) == (
        f"{DRIVER_JAVA_OPTIONS} -XX:+UseG1GC -Dx=1"  # the later flag wins in the JVM
    )
    assert driver_java_options(SparkConfig(driver_java_options=None)) == ""
    assert driver_java_options(SparkConfig(driver_java_options=" ", options=options)) == (
        "-XX:+UseG1GC -Dx=1"
    )


def test_the_driver_gets_its_whole_heap_at_start_unless_told_not_to() -> None:
    """`-Xms` of `spark.driver.memory` (Spark's size strings, as MiB) comes first, so an `-Xms`
    in the configured options wins; without a driver memory, or with `driver_heap_at_start`
    false, there is none."""
    options = {DRIVER_MEMORY_KEY: "12g", DRIVER_JAVA_OPTIONS_KEY: "-Xms2g"}
    assert driver_java_options(SparkConfig(options=options)) == (
        f"-Xms12288m {DRIVER_JAVA_OPTIONS} -Xms2g"
    )
    assert driver_java_options(SparkConfig(options={DRIVER_MEMORY_KEY: "1536"})) == (
        f"-Xms1536m {DRIVER_JAVA_OPTIONS}"
    )
    assert (
        driver_java_options(
            SparkConfig(options={DRIVER_MEMORY_KEY: "12g"}, driver_heap_at_start=False)
        )
        == DRIVER_JAVA_OPTIONS
    )
    # A size Spark will refuse itself adds nothing here.
    assert (
        driver_java_options(
            SparkConfig(options={DRIVER_MEMORY_KEY: "lots"}, driver_java_options=None)
        )
        == ""
    )


def test_the_driver_jvm_runs_with_the_configured_options(spark: SparkSession) -> None:
    """The suite's session is started with the job's default driver options, as the builder
    passes them to the JVM PySpark launches: its collector is the parallel one and the JIT
    thresholds are those configured."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    management = jvm.java.lang.management.ManagementFactory
    collectors = {bean.getName() for bean in management.getGarbageCollectorMXBeans()}
    assert collectors == {"PS Scavenge", "PS MarkSweep"}
    arguments = set(management.getRuntimeMXBean().getInputArguments())
    assert set(DRIVER_JAVA_OPTIONS.split()) <= arguments
    # The whole heap from the start: the suite's session has the default config's memory (4g).
    heap = mebibytes(str(load_config().spark.options[DRIVER_MEMORY_KEY]))
    assert heap == 4096
    assert f"-Xms{heap}m" in arguments
    assert management.getMemoryMXBean().getHeapMemoryUsage().getInit() == heap * 1024**2
