"""bench.event_log: task time per named stage from a Spark event log (events as Spark 4 writes
them: one JSON object a line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.event_log import event_files, main, summarise


def _job(job: int, stages: list[int], at: int, description: str | None) -> dict:
    properties = {} if description is None else {"spark.job.description": description}
    return {
        "Event": "SparkListenerJobStart",
        "Job ID": job,
        "Submission Time": at,
        "Stage IDs": stages,
        "Properties": properties,
    }


def _end(job: int, at: int) -> dict:
    return {"Event": "SparkListenerJobEnd", "Job ID": job, "Completion Time": at}


def _task(stage: int, run_ms: int, cpu_ms: int, launched: int | None = None) -> dict:
    event = {
        "Event": "SparkListenerTaskEnd",
        "Stage ID": stage,
        "Task Metrics": {"Executor Run Time": run_ms, "Executor CPU Time": cpu_ms * 1_000_000},
    }
    if launched is not None:
        event["Task Info"] = {"Launch Time": launched, "Finish Time": launched + run_ms}
    return event


EVENTS = [
    {"Event": "SparkListenerApplicationStart", "Timestamp": 0},
    _job(0, [0], 1_000, "stage read"),
    _task(0, 400, 300, launched=1_000),
    _task(0, 600, 500, launched=1_000),
    _end(0, 1_600),
    # Unnamed (eager work between stages, or Delta's own descriptions): the next stage's.
    _job(1, [1, 2], 2_000, "Delta: Compute snapshot"),
    _task(1, 250, 100, launched=2_000),
    _task(2, 250, 100, launched=2_050),
    _end(1, 2_300),
    _job(2, [3], 3_000, "stage score"),
    # Run side by side with job 2: the stage's wall time is the union of the two spans.
    _job(3, [4], 3_500, "stage score"),
    _task(3, 2_000, 1_000, launched=3_000),
    _task(4, 1_500, 1_500, launched=3_500),
    _end(2, 5_000),
    _end(3, 6_000),
    _job(4, [5], 7_000, None),
    _task(5, 100, 40, launched=7_000),
    _end(4, 7_100),
    # Delta's own step inside a stage: named after the stage, with the step.
    _job(5, [6], 8_000, "Delta: Delta: stage score: Filtering files for query"),
    _task(6, 300, 200, launched=8_000),
    _end(5, 8_300),
]


def test_task_time_sums_by_stage_and_unnamed_jobs_go_to_the_next_stage() -> None:
    times = {t.name: t for t in summarise(EVENTS)}
    assert list(times) == [
        "read",
        "before score",
        "score",
        "before score: Filtering files for query",
        "score: Filtering files for query",
    ]
    assert (times["read"].tasks, times["read"].task_ms, times["read"].cpu_ns) == (
        2,
        1_000,
        800_000_000,
    )
    assert times["read"].wall_ms == 600
    assert (times["before score"].tasks, times["before score"].task_ms) == (2, 500)
    assert times["score"].task_ms == 3_500
    assert times["score"].wall_ms == 3_000  # 3.0-6.0 s, not 2.0 + 2.5
    assert times["before score: Filtering files for query"].task_ms == 100
    assert times["score: Filtering files for query"].task_ms == 300
    # No task ran 0-1.0 s (before read), 1.6-2.0 s and 2.3-3.0 s (before the Delta job and
    # before score), 5.0-7.0 s and 7.1-8.0 s.
    idle = {name: t.idle_ms for name, t in times.items()}
    assert idle == {
        "read": 1_000,
        "before score": 400,
        "score": 700,
        "before score: Filtering files for query": 2_000,
        "score: Filtering files for query": 900,
    }


def test_reads_a_rolling_log_folder_in_order_and_prints_largest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "eventlog_v2_local-1"
    folder.mkdir()
    # The second part is named so that a text sort would put it first (10 < 2).
    for number, part in ((2, EVENTS[:9]), (10, EVENTS[9:])):
        text = "\n".join(json.dumps(event) for event in part)
        (folder / f"events_{number}_local-1").write_text(text + "\n", encoding="utf-8")
    (folder / "appstatus_local-1").write_text("", encoding="utf-8")
    assert [p.name for p in event_files(folder)] == ["events_2_local-1", "events_10_local-1"]

    assert main([str(folder)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split()[0] for row in rows[1:4]] == ["score", "read", "before"]
    assert rows[-2].split()[:2] == ["all", "(5"]
    assert rows[-2].split()[-3:] == ["5.4", "3.7", "5.0"]
    # 0-1.0, 1.6-2.0, 2.3-3.0, 5.0-7.0 and 7.1-8.0 s idle; two tasks at once 1.0-1.4,
    # 2.05-2.25 and 3.5-5.0 s; one the rest, to the last task's end at 8.3 s.
    assert (
        rows[-1] == "wall 8.3 s: 5.0 s with no task running, 1.2 s with one, 2.1 s with two or more"
    )


def test_a_compressed_or_missing_log_is_refused_by_name(tmp_path: Path) -> None:
    compressed = tmp_path / "events_1_local-1.zstd"
    compressed.write_bytes(b"\x28\xb5\x2f\xfd")
    with pytest.raises(SystemExit, match="spark.eventLog.compress=false"):
        main([str(compressed)])
    assert main([str(tmp_path / "nothing")]) == 2
