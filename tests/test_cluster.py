"""The job on a real Spark standalone cluster (a master and two workers started from the installed
pyspark), submitted with spark-submit as `make cluster-demo` does, surviving a worker killed in
the middle of its run.

One cluster run covers both: a plain demo run and a run with a killed worker cost about five
minutes each, and the second checks everything the first would."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pandas as pd
import pytest

from jobs.cluster_demo import main
from tests.conftest import E2E_ACCOUNTS, E2E_SEED
from tests.jobrun import read_table


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("spark://").split(":")
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, int(port))) == 0


def test_cluster_demo_survives_a_worker_killed_mid_run(
    first_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """`make cluster-demo` (its `main`) on the first run's input (same size and seed): generate,
    start, package, submit, check, stop. Worker 0 and its executor are SIGKILLed when candidate
    pairs start (the inputs and features cached on it are lost); the job finishes on worker 1
    with the very membership and entity ids of the local run on the same input."""
    work = tmp_path / "demo"
    argv = ["--work", str(work), "--accounts", str(E2E_ACCOUNTS), "--seed", str(E2E_SEED)]
    assert main([*argv, "--kill-worker-at", "candidate_pairs"]) == 0
    printed = capsys.readouterr().out
    assert "cluster demo succeeded" in printed
    log = (work / "job.log").read_text(encoding="utf-8")
    # The driver ran on the cluster, with one executor on each worker, and nothing was local.
    (master,) = set(re.findall(r"spark://127\.0\.0\.1:\d+", log))
    workers = set(re.findall(r"Executor added: app-\S+ on (worker-\S+)", log))
    assert len(workers) == 2
    assert "run cluster-demo succeeded" in log
    assert re.search(r"Lost executor \d+ on 127\.0\.0\.1: worker lost", log)
    assert not _port_open(master), "the demo left its master running"
    # What the job wrote, read back without Spark: every accepted account once, in the
    # entities of the local run.
    membership = read_table(work / "out", "entity_membership")
    accounts = pd.read_parquet(work / "in" / "accounts.parquet")
    assert set(membership.account_id) <= set(accounts.account_id)
    assert len(membership) >= len(accounts) - 20  # the generator's malformed rows are quarantined
    assert not membership.account_id.duplicated().any()

    def sorted_membership(out: Path) -> pd.DataFrame:
        frame = read_table(out, "entity_membership")[["account_id", "entity_id"]]
        return frame.sort_values("account_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(sorted_membership(work / "out"), sorted_membership(first_run[0]))
