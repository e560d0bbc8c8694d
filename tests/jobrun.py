"""Running the real job (and the generator) as a user does, through the command line, or the
job's `main` in the test process; and reading back what it wrote: shared by every end-to-end
test module."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
from deltalake import DeltaTable
from pyspark.sql import Row, SparkSession

from jobs import resolve_entities
from jobs.logs import LOG_FORMAT
from jobs.session import persisted_rdd_ids, release_persisted
from jobs.tracking import job_run_metrics

ROOT = Path(__file__).resolve().parent.parent
LOCAL_CONF = ROOT / "conf" / "local.yaml"


def job_env() -> dict[str, str]:
    """The environment a job subprocess runs in: this interpreter for workers, loopback."""
    return dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")


def run_module(*args: str | Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """`python -m ...` (or a script) from the project root, output captured."""
    return subprocess.run(
        [sys.executable, *[str(a) for a in args]],
        cwd=ROOT,
        env=job_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def job_args(in_dir: Path | str, out: Path | str, *extra: str | Path) -> list[str]:
    """The job's arguments: input, output and `extra`, with the small-data config unless
    `extra` names one."""
    conf = () if "--conf" in extra else ("--conf", LOCAL_CONF)
    return [str(a) for a in ("--input", in_dir, "--output", out, *conf, *extra)]


def resolve(in_dir: Path, out: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    """The job through its command line (`job_args`)."""
    return run_module("-m", "jobs.resolve_entities", *job_args(in_dir, out, *extra))


def resolve_here(
    spark: SparkSession, in_dir: Path, out: Path | str, *extra: str | Path
) -> subprocess.CompletedProcess[str]:
    """The job's `main` with `job_args`, run in this process on the test session.

    For the scenario tests that run the job several times: the job's `getOrCreate` finds the
    test session, so each run skips the JVM start and warm-up (a 1,500-account run measured
    240 s as a new process, 100 s here once the JVM is warm). What the job applies to the
    shared session (its SQL settings, checkpoint folder, log level) is put back afterwards.
    The exit code is `main`'s, stdout is what it printed and stderr its log lines and errors,
    but not the JVM's own output: tests of the command line itself use `resolve`.
    """
    argv = job_args(in_dir, out, *extra)
    settings = spark.conf.getAll
    checkpoint_dir = spark.sparkContext.getCheckpointDir()
    persisted = persisted_rdd_ids(spark)
    stdout, stderr = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    captured = logging.StreamHandler(stderr)
    captured.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(captured)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = resolve_entities.main(argv)
            except SystemExit as exit_:  # argparse
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
        _restore_settings(spark, settings)
        left = persisted_rdd_ids(spark) - persisted
        _release(spark, persisted)
        # The folder the run checkpointed to (set by the job's `build_session`, if it got
        # that far): the job deletes it when it ends (`jobs.session.remove_checkpoints`).
        job_checkpoints = spark.sparkContext.getCheckpointDir()
        if checkpoint_dir is not None:
            spark.sparkContext.setCheckpointDir(checkpoint_dir)
        spark.sparkContext.setLogLevel("ERROR")
    # The job releases what it persisted (`jobs.session.release_persisted`), success or not.
    assert not left, f"the job run left {len(left)} RDDs persisted: {sorted(left)}"
    if job_checkpoints is not None and job_checkpoints != checkpoint_dir:
        kept = Path(urlparse(job_checkpoints).path)
        assert not kept.exists(), f"the job run left its checkpoints in {kept}"
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


def _release(spark: SparkSession, persisted: set[int]) -> None:
    """Drop what a job run left: the cache manager's entries (tests cache no frame across a job
    run; the job unpersists its frames' storage, but the entries of frames its core cached
    stay) and, should the job have failed to, the RDDs not in `persisted` (the ids persisted
    before it ran), so that one leak does not spill into the next test's memory."""
    spark.catalog.clearCache()
    release_persisted(spark, persisted)


def _restore_settings(spark: SparkSession, settings: dict[str, str]) -> None:
    """The session's runtime settings as they were (`settings`), where they may be changed."""
    now = spark.conf.getAll
    for key in set(now) | set(settings):
        if now.get(key) != settings.get(key) and spark.conf.isModifiable(key):
            if key in settings:
                spark.conf.set(key, settings[key])
            else:
                spark.conf.unset(key)


def generate(out_dir: Path, accounts: int, seed: int, truth: Path | None = None) -> None:
    """Generated inputs (and truth) through the generator's command line."""
    args: list[str | Path] = ["-m", "jobs.generate_synthetic", "--output", out_dir]
    args += ["--accounts", str(accounts), "--seed", str(seed)]
    if truth is not None:
        args += ["--truth", truth]
    result = run_module(*args)
    assert result.returncode == 0, result.stderr[-5000:]


def read_table(out: Path, name: str, version: int | None = None) -> pd.DataFrame:
    """A Delta table of OUT_DIR read without Spark (delta-rs), at `version` if given."""
    return DeltaTable(str(out / name), version=version).to_pandas()


def read_state(spark: SparkSession, out: Path) -> list[Row]:
    """`account_state` of OUT_DIR, read with Spark: it has deletion vectors
    (`outputs.deletion_vectors`), which delta-rs does not read."""
    return spark.read.format("delta").load(str(out / "account_state")).collect()


def run_metrics(out: Path, run_id: str) -> dict[str, float]:
    """The MLflow metrics of the job run `run_id` in `out`."""
    return run_metrics_in(out / "_mlflow", run_id)


def run_metrics_in(mlflow_dir: Path, run_id: str) -> dict[str, float]:
    """The metrics of the job run `run_id` in the MLflow store in `mlflow_dir`."""
    return job_run_metrics(mlflow_dir, run_id)
