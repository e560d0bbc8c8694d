"""One Spark session for the whole test run, with the real Delta and GraphX jars."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from pyspark.sql import SparkSession

from jobs.config import load_config
from jobs.session import DRIVER_MEMORY_KEY, driver_java_options, project_jars
from tests.jobrun import generate, resolve

# Executors must use this interpreter (pandas UDFs need the venv's pandas); bind to loopback.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# In CI the property tests draw a fixed sequence of examples, so a red run can be repeated;
# locally they explore fresh examples every run.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

CODEGEN_CACHE = "spark.sql.codegen.cache.maxEntries"


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    scratch = tmp_path_factory.mktemp("spark")
    job_spark = load_config().spark
    session = (
        SparkSession.builder.master("local[2]")  # two threads: exercises real shuffles
        .appName("seller-er-tests")
        .config("spark.jars", ",".join(str(jar) for jar in project_jars()))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        # Tiny data: one shuffle partition avoids scheduling hundreds of empty tasks.
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "2")
        # The scenario tests run the job in this JVM (tests.jobrun.resolve_here); on its own the
        # job has 2g (conf/local.yaml). Here it has the default config's (4g): the value the
        # driver options below take their -Xms from, so the two cannot disagree.
        .config(DRIVER_MEMORY_KEY, str(job_spark.options[DRIVER_MEMORY_KEY]))
        # Adaptive execution only re-plans; on tiny data it costs more than it saves.
        .config("spark.sql.adaptive.enabled", "false")
        # No web UI or console progress bars in tests.
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Delta rebuilds a table's state with 50 partitions by default: far too many here.
        .config("spark.databricks.delta.snapshotPartitions", "1")
        # Delta's VACUUM lists files in this many tasks (default 10,000: minutes of empty tasks).
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        # As in jobs.session: pandas' nanosecond timestamps arrive as longs.
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
        .config("spark.local.dir", str(scratch / "local"))
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        # The job's driver options and generated-class cache (conf/default.yaml: less JIT and
        # GC work).
        .config(
            "spark.driver.extraJavaOptions",
            f"{driver_java_options(job_spark)} -Dderby.system.home={scratch}",
        )
        .config(CODEGEN_CACHE, str(job_spark.options[CODEGEN_CACHE]))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(str(scratch / "checkpoints"))
    yield session
    session.stop()


# One generated input and one job run on it, shared by every module that reads a finished run's
# outputs (end to end, notebooks, faults): each job run costs about a minute.
E2E_ACCOUNTS = 1500
E2E_SEED = 11
E2E_RUN_ID = "e2e-1"


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(IN_DIR, truth file) of E2E_ACCOUNTS generated accounts."""
    base = tmp_path_factory.mktemp("e2e")
    in_dir, truth = base / "in", base / "truth.parquet"
    generate(in_dir, E2E_ACCOUNTS, E2E_SEED, truth)
    return in_dir, truth


@pytest.fixture(scope="session")
def first_run(generated: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(OUT_DIR, completed process) of the job's run E2E_RUN_ID on `generated`, with --truth.

    Tests may re-run the job into OUT_DIR only with the same input and run id (which must leave
    every table as it was); anything else works on a copy."""
    in_dir, truth = generated
    out = tmp_path_factory.mktemp("e2e-out") / "out"
    result = resolve(in_dir, out, "--truth", truth, "--run-id", E2E_RUN_ID)
    assert result.returncode == 0, result.stderr[-5000:]
    return out, result
