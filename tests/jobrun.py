"""Running the real job (and the generator) as a user does, through the command line, and
reading back what it wrote: shared by every end-to-end test module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable
from pyspark.sql import Row, SparkSession

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


def resolve(in_dir: Path, out: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    """The job through its command line, with the small-data config unless `extra` names one."""
    conf = () if "--conf" in extra else ("--conf", LOCAL_CONF)
    return run_module(
        "-m", "jobs.resolve_entities", "--input", in_dir, "--output", out, *conf, *extra
    )


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
