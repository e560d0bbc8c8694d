"""Where a run's task time went, by stage: a summary of a Spark event log.

The job names the Spark jobs of each timed stage `stage NAME` (`jobs.progress.StageClock`),
so an event log of a run says, per stage, how much executor time its tasks took, not only its
wall time: on 2 cores a stage run alongside another shows the same wall time whether it used
one core or both. Jobs run outside any stage (connected components and cluster control's
rounds run eagerly between stages) are counted under the next stage the run entered, as the
stage clock's spans count them: `before NAME`.

Record a run with an uncompressed event log (Spark 4 compresses them by default)::

    spark:
      options:
        spark.eventLog.enabled: "true"
        spark.eventLog.dir: file:///tmp/events
        spark.eventLog.compress: "false"

then::

    python -m bench.event_log /tmp/events/eventlog_v2_local-1733350000000 [--top 30]

Columns: `tasks`, `task s` (executor run time summed over tasks, Python workers' time
included), `cpu s` (JVM CPU time of the tasks), `wall s` (union of the stage's jobs' spans),
`task/wall` (cores it kept busy on average), `idle s` (time no task at all ran before the
stage's jobs: driver work such as planning, Delta's log, Python, Great Expectations).
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DESCRIPTION = "spark.job.description"
_PREFIX = "stage "
_DELTA = "Delta: "


def stage_name(description: str) -> str | None:
    """The stage a job description names, or None. Delta Lake prefixes its own steps'
    descriptions with `Delta: ` (once per nesting level) and appends the step to ours, so
    `Delta: Delta: stage write_outputs: Filtering files for query` names `write_outputs:
    Filtering files for query`."""
    while description.startswith(_DELTA):
        description = description[len(_DELTA) :]
    return description[len(_PREFIX) :] if description.startswith(_PREFIX) else None


@dataclass
class StageTime:
    """The jobs and tasks of one named stage."""

    name: str
    tasks: int = 0
    task_ms: int = 0
    cpu_ns: int = 0
    spans: list[tuple[int, int]] = field(default_factory=list)
    idle_ms: int = 0

    @property
    def wall_ms(self) -> int:
        """The union of the jobs' spans (jobs run side by side are not counted twice)."""
        total, end = 0, None
        for start, finish in sorted(self.spans):
            if end is None or start > end:
                total += finish - start
                end = finish
            elif finish > end:
                total += finish - end
                end = finish
        return total


def event_files(path: Path) -> list[Path]:
    """The files of an event log: `path` itself, or the `events_N_*` files of a rolling log's
    folder (`eventlog_v2_*`, Spark 4's default) in their order."""
    if not path.is_dir():
        return [path]
    found = [p for p in path.iterdir() if p.name.startswith("events_")]
    if not found:
        raise SystemExit(f"{path}: a folder without events_* files, not a rolling event log")
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def _events(paths: Sequence[Path]) -> Iterator[dict]:
    for path in paths:
        yield from _file_events(path)


def _file_events(path: Path) -> Iterator[dict]:
    if path.suffix in (".zstd", ".lz4", ".snappy", ".lzf"):
        raise SystemExit(
            f"{path}: a compressed event log; record the run with "
            "spark.eventLog.compress=false (see this module's doc)"
        )
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise SystemExit(f"{path}, line {number}: not an event ({error})") from error


def summarise(events: Sequence[dict]) -> list[StageTime]:
    """Per named stage, in the order the run first entered it."""
    stage_of_job: dict[int, str | None] = {}
    job_start: dict[int, int] = {}
    spark_stage_job: dict[int, int] = {}
    tasks: list[tuple[int, int, int]] = []  # (spark stage, run ms, cpu ns)
    job_end: dict[int, int] = {}
    for event in events:
        kind = event.get("Event")
        if kind == "SparkListenerJobStart":
            job = event["Job ID"]
            text = (event.get("Properties") or {}).get(DESCRIPTION) or ""
            stage_of_job[job] = stage_name(text)
            job_start[job] = event["Submission Time"]
            for stage in event.get("Stage IDs", []):
                spark_stage_job.setdefault(stage, job)
        elif kind == "SparkListenerJobEnd":
            job_end[event["Job ID"]] = event["Completion Time"]
        elif kind == "SparkListenerTaskEnd":
            metrics = event.get("Task Metrics") or {}
            tasks.append(
                (
                    event["Stage ID"],
                    int(metrics.get("Executor Run Time", 0)),
                    int(metrics.get("Executor CPU Time", 0)),
                )
            )
    # Unnamed jobs count under the next named one (the stage clock's spans do the same). The
    # jobs in the order they started: the dict's insertion order.
    named: dict[int, str] = {}
    pending: list[int] = []
    for job, name in stage_of_job.items():
        if name is None:
            pending.append(job)
            continue
        for waiting in pending:
            named[waiting] = f"before {name}"
        pending.clear()
        named[job] = name
    for waiting in pending:
        named[waiting] = "after the last stage"
    found: dict[str, StageTime] = {}
    for job in stage_of_job:
        time = found.setdefault(named[job], StageTime(named[job]))
        time.spans.append((job_start[job], job_end.get(job, job_start[job])))
    for stage, run_ms, cpu_ns in tasks:
        job = spark_stage_job.get(stage)
        if job is None:
            continue
        time = found[named[job]]
        time.tasks += 1
        time.task_ms += run_ms
        time.cpu_ns += cpu_ns
    starts = sorted((at, named[job]) for job, at in job_start.items())
    for begin, end, level in _segments(events):
        if level:
            continue
        following = bisect.bisect_left(starts, (end, ""))
        if following < len(starts):
            # No task ran: driver work before the next job (planning, Delta's log, Python,
            # GX), counted under that job's stage as the spans count eager work.
            found[starts[following][1]].idle_ms += end - begin
    return list(found.values())


def _segments(events: Sequence[dict]) -> Iterator[tuple[int, int, int]]:
    """`(begin, end, tasks running)` over the application, from its start to its end (or to
    the last task's end), in time order."""
    steps: list[tuple[int, int]] = []  # (time, +1 a task starts / -1 it ends)
    first = last = None
    for event in events:
        kind = event.get("Event")
        if kind == "SparkListenerApplicationStart":
            first = event["Timestamp"]
        elif kind == "SparkListenerApplicationEnd":
            last = event["Timestamp"]
        elif kind == "SparkListenerTaskEnd":
            info = event.get("Task Info") or {}
            if "Launch Time" in info and "Finish Time" in info:
                steps += [(info["Launch Time"], 1), (info["Finish Time"], -1)]
    if not steps:
        return
    steps.sort()
    at = first if first is not None else steps[0][0]
    level = 0
    for time, step in [*steps, (last if last is not None else steps[-1][0], 0)]:
        if time > at:
            yield at, time, level
            at = time
        level += step


def running_tasks(events: Sequence[dict]) -> dict[int, int]:
    """Milliseconds of the application spent with 0, 1, 2, ... tasks running: the cores a
    local run kept busy."""
    spent: dict[int, int] = {}
    for begin, end, level in _segments(events):
        spent[level] = spent.get(level, 0) + end - begin
    return spent


def _running_line(spent: dict[int, int]) -> str:
    wall = sum(spent.values())
    parts = [
        f"{spent.get(0, 0) / 1000:.1f} s with no task running",
        f"{spent.get(1, 0) / 1000:.1f} s with one",
        f"{sum(v for k, v in spent.items() if k >= 2) / 1000:.1f} s with two or more",
    ]
    return f"wall {wall / 1000:.1f} s: " + ", ".join(parts)


def render(times: Sequence[StageTime], *, top: int | None = None) -> str:
    """A text table, largest task time first, with the totals."""
    ordered = sorted(times, key=lambda t: t.task_ms, reverse=True)
    shown = ordered if top is None else ordered[:top]
    total = f"all ({len(times)} stages)"
    w = max([len("stage"), len(total)] + [len(time.name) for time in shown])
    lines = [
        f"{'stage':<{w}} {'tasks':>7} {'task s':>8} {'cpu s':>8} {'wall s':>8} {'task/wall':>9} "
        f"{'idle s':>7}"
    ]
    for time in shown:
        ratio = time.task_ms / time.wall_ms if time.wall_ms else 0.0
        lines.append(
            f"{time.name:<{w}} {time.tasks:>7} {time.task_ms / 1000:>8.1f} "
            f"{time.cpu_ns / 1e9:>8.1f} {time.wall_ms / 1000:>8.1f} {ratio:>9.2f} "
            f"{time.idle_ms / 1000:>7.1f}"
        )
    lines.append(
        f"{total:<{w}} {sum(t.tasks for t in times):>7} "
        f"{sum(t.task_ms for t in times) / 1000:>8.1f} "
        f"{sum(t.cpu_ns for t in times) / 1e9:>8.1f} {'':>8} {'':>9} "
        f"{sum(t.idle_ms for t in times) / 1000:>7.1f}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "event_log",
        type=Path,
        help="an uncompressed Spark event log: a file or a rolling log's folder",
    )
    parser.add_argument("--top", type=int, default=None, help="show the N largest stages only")
    args = parser.parse_args(argv)
    if not args.event_log.exists():
        print(f"{args.event_log}: no such event log", file=sys.stderr)
        return 2
    events = list(_events(event_files(args.event_log)))
    print(render(summarise(events), top=args.top))
    spent = running_tasks(events)
    if spent:
        print(_running_line(spent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
