"""The job on a real Spark standalone cluster (a master and two workers started from the installed
pyspark), submitted with spark-submit as `make cluster-demo` does; and the same job surviving a
worker killed in the middle of its run."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pandas as pd
import pytest

from jobs.cluster_demo import main, run_demo
from tests.jobrun import read_table


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("spark://").split(":")
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, int(port))) == 0


def test_cluster_demo_submits_the_job_to_a_standalone_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make cluster-demo` (its `main`): generate, start, package, submit, check, stop."""
    work = tmp_path / "demo"
    assert main(["--work", str(work), "--accounts", "1500", "--seed", "11"]) == 0
    printed = capsys.readouterr().out
    assert "cluster demo succeeded" in printed
    log = (work / "job.log").read_text(encoding="utf-8")
    # The driver ran on the cluster, with one executor on each worker, and nothing was local.
    (master,) = set(re.findall(r"spark://127\.0\.0\.1:\d+", log))
    workers = set(re.findall(r"Executor added: app-\S+ on (worker-\S+)", log))
    assert len(workers) == 2
    assert "run cluster-demo succeeded" in log
    assert not _port_open(master), "the demo left its master running"
    # What the job wrote, read back without Spark.
    membership = read_table(work / "out", "entity_membership")
    accounts = pd.read_parquet(work / "in" / "accounts.parquet")
    assert set(membership.account_id) <= set(accounts.account_id)
    assert len(membership) >= len(accounts) - 20  # the generator's malformed rows are quarantined
    assert not membership.account_id.duplicated().any()


def test_job_survives_a_worker_killed_mid_run(generated, first_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Worker 0 and its executor are SIGKILLed when candidate pairs start (the inputs and
    features cached on it are lost); the job finishes on worker 1 with the very membership and
    entity ids of the local run on the same input."""
    in_dir, truth = generated
    result = run_demo(
        tmp_path / "kill",
        accounts=0,
        input_dir=in_dir,
        truth=truth,
        kill_worker_at="candidate_pairs",
        run_id="killed-worker",
    )
    assert result.exit_status == 0 and result.worker_killed
    log = result.log_path.read_text(encoding="utf-8")
    assert re.search(r"Lost executor \d+ on 127\.0\.0\.1: worker lost", log)

    def membership(out: Path) -> pd.DataFrame:
        frame = read_table(out, "entity_membership")[["account_id", "entity_id"]]
        return frame.sort_values("account_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(membership(result.out_dir), membership(first_run[0]))
