"""Faults survived: the job killed while writing its tables, re-run with the killed run's id, and
read by another process while it writes.

A copy of the shared first run (`e2e-1`) is the state every reader sees at first; the next run
(`e2e-2`) resolves a changed input (fewer accounts), so old and new states differ. A reader
thread polls the tables the whole time, as a data scientist with delta-rs would, through the
`runs` table (the documented way) and each table's latest version; every snapshot it reads must
be whole: one run's rows, one row per account, entities that add up to their membership.
The killed run is a process of its own; the completing re-run calls the job's `main` in the
test session (`tests.jobrun.resolve_here`). An incremental run killed the same way must not
leave its rows to the next incremental run, which MERGEs into the tables' latest versions.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from tests.jobrun import ROOT, job_args, job_env, read_table, resolve_here

DROPPED_ACCOUNTS = 120


def _current(out: Path) -> tuple[pd.Series, dict[str, int]]:
    """The latest succeeded `runs` row and the table versions it names."""
    runs = read_table(out, "runs")
    current = runs[runs.status == "succeeded"].sort_values("finished_at").iloc[-1]
    return current, json.loads(current.table_versions)


def snapshot_problems(out: Path) -> tuple[str, int, list[str]]:
    """Read the current state as the README says (runs, then time travel) and each table's
    latest version; return (run id, membership rows, what is inconsistent)."""
    problems: list[str] = []
    current, versions = _current(out)
    membership = read_table(out, "entity_membership", versions["entity_membership"])
    entities = read_table(out, "entities", versions["entities"])
    edges = read_table(out, "match_edges", versions["match_edges"])
    run_id = str(current.run_id)
    for name, frame in (("entity_membership", membership), ("entities", entities)):
        if set(frame.run_id) != {run_id}:
            problems.append(f"{name} at the current run's version holds {set(frame.run_id)}")
    if membership.account_id.duplicated().any():
        problems.append("an account is in two entities")
    if set(entities.entity_id) != set(membership.entity_id):
        problems.append("entities and entity_membership name different entities")
    if int(entities.account_count.sum()) != len(membership):
        problems.append("entity sizes do not add up to the membership")
    accounts = set(membership.account_id)
    if not (set(edges.account_id_l) | set(edges.account_id_r)) <= accounts:
        problems.append("an accepted edge names an account outside the membership")
    latest = read_table(out, "entity_membership")
    if latest.run_id.nunique() != 1 or latest.account_id.duplicated().any():
        problems.append("the latest entity_membership version mixes runs or repeats accounts")
    return run_id, len(membership), problems


class Reader(threading.Thread):
    """Polls `snapshot_problems` until stopped; keeps what it saw."""

    def __init__(self, out: Path) -> None:
        super().__init__(daemon=True)
        self.out = out
        self.stop = threading.Event()
        self.seen: set[tuple[str, int]] = set()
        self.problems: list[str] = []
        self.reads = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                run_id, rows, problems = snapshot_problems(self.out)
            except Exception as error:  # any failed read is a finding, not a crash
                self.problems.append(f"read failed: {error!r}")
            else:
                self.seen.add((run_id, rows))
                self.problems.extend(problems)
                self.reads += 1
            time.sleep(0.2)

    def read_after_now(self, timeout: float = 60) -> None:
        """Wait until a read that started after this call has finished: the second read from
        now (the one under way may have started before). A run can end between two polls,
        and the reader must still see its state before it is stopped."""
        wanted = self.reads + 2
        deadline = time.monotonic() + timeout
        while self.reads < wanted and time.monotonic() < deadline and self.is_alive():
            time.sleep(0.05)


def _commits(table: Path) -> int:
    return len(list((table / "_delta_log").glob("*.json")))


def _start_job(in_dir: Path, out: Path, run_id: str, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "jobs.resolve_entities"]
    command += job_args(in_dir, out, "--run-id", run_id, *extra)
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=job_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def _kill_at_first_new_commit(job: subprocess.Popen[str], table: Path, timeout: float) -> bool:
    """SIGKILL the job (its whole process group: driver and JVM) the moment `table` gains a
    commit: after its first table write, before the run is recorded. False if the job ended
    first."""
    before = _commits(table)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and job.poll() is None:
        if _commits(table) > before:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(timeout=60)
            return True
        time.sleep(0.02)
    if job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)
    return False


def _copy_of_run(
    run_out: Path, tmp_path: Path
) -> tuple[Path, pd.Series, dict[str, int], dict[str, pd.DataFrame]]:
    """A copy of a finished run's output folder, its current `runs` row and table versions,
    and its `entity_membership`, `entities` and `match_edges` as that run left them."""
    out = tmp_path / "out"
    shutil.copytree(run_out, out)
    current, versions = _current(out)
    tables = {
        name: read_table(out, name, versions[name])
        for name in ("entity_membership", "entities", "match_edges")
    }
    return out, current, versions, tables


@pytest.fixture(scope="module")
def changed_input(generated: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared input without its last DROPPED_ACCOUNTS accounts (their payment and logistics
    rows stay: the job quarantines them as orphans)."""
    in_dir, _ = generated
    changed = tmp_path_factory.mktemp("faults") / "in"
    shutil.copytree(in_dir, changed)
    accounts = pd.read_parquet(changed / "accounts.parquet")
    accounts.iloc[:-DROPPED_ACCOUNTS].to_parquet(changed / "accounts.parquet", index=False)
    return changed


def test_killed_while_writing_then_rerun_with_its_id(
    spark: SparkSession, first_run, changed_input: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    out, before_run, before_versions, before = _copy_of_run(first_run[0], tmp_path)
    reader = Reader(out)
    reader.start()
    try:
        # 1. Killed between two table commits of its write stage.
        job = _start_job(changed_input, out, "e2e-2")
        assert _kill_at_first_new_commit(job, out / "entity_membership", timeout=900), (
            "the job finished before it could be killed while writing"
        )
        assert job.returncode == -signal.SIGKILL
        half_written = read_table(out, "entity_membership")
        assert set(half_written.run_id) == {"e2e-2"}, "the kill came before any table write"

        # The runs table still names the last complete run, and its versions read as before.
        runs = read_table(out, "runs")
        assert dict(zip(runs.run_id, runs.status, strict=True)) == {
            "e2e-1": "succeeded",
            "e2e-2": "running",
        }
        current, versions = _current(out)
        assert current.run_id == before_run.run_id and versions == before_versions
        for name, frame in before.items():
            pd.testing.assert_frame_equal(read_table(out, name, versions[name]), frame)

        # 2. The next run, with the killed run's id, completes and duplicates nothing.
        result = resolve_here(spark, changed_input, out, "--run-id", "e2e-2")
        assert result.returncode == 0, result.stderr[-5000:]
        reader.read_after_now()
    finally:
        reader.stop.set()
        reader.join(timeout=60)

    runs = read_table(out, "runs")
    assert sorted(zip(runs.run_id, runs.status, strict=True)) == [
        ("e2e-1", "succeeded"),
        ("e2e-2", "succeeded"),
    ]
    current, versions = _current(out)
    membership = read_table(out, "entity_membership", versions["entity_membership"])
    assert current.run_id == "e2e-2"
    assert not membership.account_id.duplicated().any()
    kept = pd.read_parquet(changed_input / "accounts.parquet").account_id
    accepted = set(before["entity_membership"].account_id) & set(kept)
    assert set(membership.account_id) == accepted
    changes = read_table(out, "entity_changes")
    change_key = ["run_id", "entity_id", "change_type", "related_entity_id"]
    assert not changes.duplicated(subset=change_key).any()

    # 3. The reader, all along: only whole snapshots, the old state and then the new one.
    assert reader.problems == []
    assert reader.reads >= 10
    assert {run for run, _ in reader.seen} == {"e2e-1", "e2e-2"}
    assert reader.seen == {("e2e-1", len(before["entity_membership"])), ("e2e-2", len(membership))}


def test_an_incremental_run_after_a_killed_one_starts_from_the_last_succeeded_run(
    spark: SparkSession,
    generated: tuple[Path, Path],
    first_run,  # type: ignore[no-untyped-def]
    changed_input: Path,
    tmp_path: Path,
) -> None:
    """An incremental run killed after its first MERGE leaves rows no succeeded run wrote in
    the tables' latest versions. The next incremental run, on the first run's own input (no
    change against its base), must give the first run's entities back, not keep the killed
    run's rows outside its own (empty) change and record them as its result."""
    in_dir, _ = generated
    out, _, _, before = _copy_of_run(first_run[0], tmp_path)
    job = _start_job(changed_input, out, "e2e-killed", "--incremental")
    assert _kill_at_first_new_commit(job, out / "entity_membership", timeout=900), (
        "the incremental job finished before it could be killed while writing"
    )
    killed = read_table(out, "entity_membership")
    assert len(killed) < len(before["entity_membership"]), "the killed run merged nothing"

    result = resolve_here(spark, in_dir, out, "--run-id", "e2e-after", "--incremental")
    assert result.returncode == 0, result.stderr[-5000:]
    assert "incremental run: continuing run e2e-1" in result.stderr
    assert "restoring version" in result.stderr

    current, versions = _current(out)
    assert current.run_id == "e2e-after"
    keys = {
        "entity_membership": ["account_id", "entity_id"],
        "entities": ["entity_id", "account_count"],
        "match_edges": ["account_id_l", "account_id_r"],
    }
    for name, columns in keys.items():
        after = read_table(out, name, versions[name])
        assert sorted(after[columns].itertuples(index=False)) == sorted(
            before[name][columns].itertuples(index=False)
        ), name
