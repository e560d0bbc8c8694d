"""The one place that builds a SparkSession, locally or under spark-submit."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.config import PROJECT_ROOT, SparkConfig
from resolution.config import ClusteringConfig
from resolution.errors import ResolutionError

logger = logging.getLogger(__name__)

JARS_DIR_ENV = "SELLER_ER_JARS_DIR"
DEFAULT_JARS_DIR = PROJECT_ROOT / ".jars"


class SetupError(ResolutionError):
    """The runtime is incomplete (for example `make setup` has not fetched the jars)."""


def under_spark_submit() -> bool:
    """True when spark-submit (or the pyspark shell) started this Python process."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def project_jars(jars_dir: Path | None = None) -> list[Path]:
    """The jars `make setup` put in `.jars/` (or `$SELLER_ER_JARS_DIR`), sorted by name."""
    folder = jars_dir or Path(os.environ.get(JARS_DIR_ENV, DEFAULT_JARS_DIR))
    jars = sorted(folder.glob("*.jar"))
    if not jars:
        raise SetupError(
            f"no jars in {folder}: run `make setup` (it fetches Delta with Maven and builds the "
            "GraphX adapter), or set SELLER_ER_JARS_DIR"
        )
    return jars


def persisted_rdd_ids(spark: SparkSession) -> set[int]:
    """The ids of the RDDs persisted in `spark`'s context now (cached frames' buffers, local
    and reliable checkpoints' data)."""
    return set(spark.sparkContext._jsc.getPersistentRDDs().keys())


# JVM loggers whose warnings a run makes on purpose, set to ERROR (`quiet_expected_warnings`):
# 39 lines each in a run at 1,000,000 accounts, which told an operator nothing.
EXPECTED_WARNINGS = (
    # The leads are ranked in one window over all of them (`resolution.network.entity_leads`,
    # one narrow row per lead): Spark warns each time it plans a window without partitions,
    # and drops a constant partition key first.
    "org.apache.spark.sql.execution.window.WindowExec",
    # The run unpersists its local checkpoints once nothing reads them (`release_persisted`,
    # a MERGE refreshing the frames that read its table): Spark warns they cannot be
    # recomputed.
    "org.apache.spark.rdd.MapPartitionsRDD",
)


def quiet_expected_warnings(spark: SparkSession) -> None:
    """Set the loggers of `EXPECTED_WARNINGS` to ERROR: their errors still show."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    log4j = jvm.org.apache.logging.log4j
    for name in EXPECTED_WARNINGS:
        log4j.core.config.Configurator.setLevel(name, log4j.Level.ERROR)


def release_persisted(spark: SparkSession, before: set[int]) -> int:
    """Unpersist every RDD persisted since `before` (`persisted_rdd_ids`), without waiting;
    returns how many.

    A job run persists stage outputs, inputs and local checkpoints; in its own process the JVM
    frees them when it ends, but in a long-lived session (a notebook, an all-purpose cluster, a
    test session calling `main` again) they would pile up run after run. What was persisted
    before the run (a notebook's own caches) is left alone. Frames the run cached through the
    DataFrame API should also be unpersisted by their owner (the cache manager keeps an entry
    for them); this frees their storage either way.
    """
    released = 0
    for rdd_id, rdd in spark.sparkContext._jsc.getPersistentRDDs().items():
        if rdd_id not in before:
            rdd.unpersist(False)
            released += 1
    return released


def remove_checkpoints(spark: SparkSession) -> str | None:
    """Delete the folder of this session's reliable checkpoints (the unique folder Spark made
    under `spark.checkpoint_dir` when the run set it) and return its path; None when none is
    set or it holds nothing.

    Connected components and cluster control checkpoint there (3.3 GB at 1,000,000 accounts);
    once the run has written its tables and released what it persisted nothing reads them, and
    left alone they would pile up run after run. Call it after `release_persisted`.
    """
    folder = spark.sparkContext.getCheckpointDir()
    if folder is None:
        return None
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(folder)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return None
    fs.delete(path, True)
    return str(folder)


def _option_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


DRIVER_JAVA_OPTIONS_KEY = "spark.driver.extraJavaOptions"
DRIVER_MEMORY_KEY = "spark.driver.memory"
# Spark's size strings (a number, then an optional unit; no unit means MiB for
# spark.driver.memory) and the MiB in each unit.
_SIZE = re.compile(r"(\d+)\s*([kmgtp]?)b?", re.IGNORECASE)
_MIB_PER_UNIT = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024**2, "p": 1024**3}


def mebibytes(size: str) -> int | None:
    """The MiB of a `spark.driver.memory` value (`12g`, `4096m`, `2048`, `1gb`), or None when
    Spark's own check should report it.

    >>> mebibytes("12g"), mebibytes("4096m"), mebibytes("2048"), mebibytes("1GB")
    (12288, 4096, 2048, 1024)
    >>> mebibytes("lots") is None
    True
    """
    match = _SIZE.fullmatch(size.strip())
    if match is None:
        return None
    return max(1, int(int(match.group(1)) * _MIB_PER_UNIT[match.group(2).lower()]))


def driver_java_options(config: SparkConfig) -> str:
    """The driver JVM's options for a driver the job starts: with `driver_heap_at_start`, an
    `-Xms` of `spark.driver.memory` (when `options` sets it); then `driver_java_options`; then
    any `spark.driver.extraJavaOptions` of `options` (a later JVM flag wins over an earlier
    one)."""
    initial_heap = None
    memory = config.options.get(DRIVER_MEMORY_KEY)
    if config.driver_heap_at_start and memory is not None:
        size = mebibytes(str(memory))
        initial_heap = f"-Xms{size}m" if size is not None else None
    parts = (initial_heap, config.driver_java_options, config.options.get(DRIVER_JAVA_OPTIONS_KEY))
    return " ".join(str(part).strip() for part in parts if part).strip()


def build_session(
    config: SparkConfig, *, clustering: ClusteringConfig, checkpoint_dir: str
) -> SparkSession:
    """A session with Delta Lake configured and the checkpoint directory set.

    Locally the master is `config.master` or `local[*]` and the jars are the explicit list in
    `.jars/` (a glob is not shipped to executors). Under spark-submit the master and the jars are
    whatever spark-submit was given (`--packages` or `--jars`).
    """
    builder = SparkSession.builder.appName(config.app_name)
    if under_spark_submit():
        logger.info("running under spark-submit: master and jars come from spark-submit")
    else:
        # Executors must run the same interpreter (and packages) as the driver.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        jars = project_jars()
        builder = builder.master(config.master or "local[*]").config(
            "spark.jars", ",".join(str(jar) for jar in jars)
        )
    settings = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(config.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        # GraphX's Pregel loop cuts its lineage every N supersteps, as GraphFrames does.
        "spark.graphx.pregel.checkpointInterval": str(clustering.checkpoint_interval),
        "spark.ui.showConsoleProgress": "false",
        # pandas writes nanosecond timestamps; Spark reads them only as longs (see jobs.inputs).
        "spark.sql.legacy.parquet.nanosAsLong": "true",
    }
    settings.update({key: _option_text(value) for key, value in config.options.items()})
    if not under_spark_submit():
        java_options = driver_java_options(config)
        if java_options:
            settings[DRIVER_JAVA_OPTIONS_KEY] = java_options
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    quiet_expected_warnings(spark)
    spark.sparkContext.setCheckpointDir(checkpoint_dir)
    logger.info(
        "spark %s, master %s, default parallelism %d",
        spark.version,
        spark.sparkContext.master,
        spark.sparkContext.defaultParallelism,
    )
    return spark
