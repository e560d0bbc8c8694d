"""Where a run's CPU went, by process and thread: the JIT compilers, the garbage collector, the
tasks, the driver's own threads and the Python workers.

Spark's event log counts the tasks' time only. On a 2-core machine the JVM's own threads (C1
and C2 compiling Spark's code, the collector's threads) take CPU from the tasks, and a task's
run time then exceeds its CPU time without any of it showing as a stage. This runs a command
and samples, every `--interval` seconds, the CPU time (user + system, from
`/proc/PID/task/TID/stat`) of every thread of the command's process tree; at the end it sums
each thread's last reading by process and thread name (digits folded, so `Executor task
launch worker for task 12.0` and `... 13.0` count together; the compiler threads `C1 ...` and
`C2 ...` are kept apart). A thread that ended between two samples loses at most one interval.
Linux only::

    python -m bench.thread_cpu [--out FILE.json] -- .venv/bin/python -m jobs.resolve_entities ...

Process kinds: `java` (the driver's JVM, which runs the tasks in local mode), `python-worker`
(PySpark's workers: pandas and Python UDFs), `python` (the driver's Python) and `other`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench.proctree import process_tree

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_DIGITS = re.compile(r"[0-9]+")


def process_kind(pid: int) -> str:
    """`java`, `python-worker`, `python` or `other`, from the command line of `pid`."""
    try:
        words = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "other"
    command = " ".join(word.decode(errors="replace") for word in words)
    program = Path(words[0].decode(errors="replace")).name if words and words[0] else ""
    if program == "java":
        return "java"
    if "pyspark.daemon" in command or "pyspark.worker" in command:
        return "python-worker"
    if program.startswith("python"):
        return "python"
    return "other"


def thread_group(name: str) -> str:
    """A thread's name with its numbers folded (the JIT compilers keep C1 and C2 apart)."""
    if name.startswith(("C1 ", "C2 ")):
        return name[:2] + " compiler"
    return _DIGITS.sub("#", name)


def thread_times(pid: int) -> Iterable[tuple[int, str, float]]:
    """`(tid, name, cpu seconds)` of each thread of `pid` alive now."""
    for task in (_PROC / str(pid) / "task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # Fields 14 and 15 of stat (utime, stime), counted from the state (field 3) here.
        yield int(task.name), name, (int(fields[11]) + int(fields[12])) / _TICKS


def sample(root: int, latest: dict[tuple[int, int], tuple[str, str, float]]) -> None:
    """Record the current CPU time of every thread of `root`'s process tree in `latest`."""
    for pid in process_tree(root):
        kind = process_kind(pid)
        for tid, name, seconds in thread_times(pid):
            latest[(pid, tid)] = (kind, thread_group(name), seconds)


def summarise(latest: dict[tuple[int, int], tuple[str, str, float]]) -> Counter[str]:
    """CPU seconds by `kind: thread group`."""
    totals: Counter[str] = Counter()
    for kind, group, seconds in latest.values():
        totals[f"{kind}: {group}"] += seconds
    return totals


def report(totals: Counter[str], wall: float, *, top: int) -> str:
    total = sum(totals.values())
    busy = total / wall if wall > 0 else 0.0
    lines = [f"wall {wall:.1f} s, CPU {total:.1f} s ({busy:.2f} cores busy on average)"]
    for key, seconds in totals.most_common(top):
        share = 100 * seconds / total if total > 0 else 0.0
        lines.append(f"{seconds:9.1f} s {share:5.1f}%  {key}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--top", type=int, default=20, help="thread groups to print")
    parser.add_argument("--out", type=Path, help="also write the totals here (JSON)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    latest: dict[tuple[int, int], tuple[str, str, float]] = {}
    started = time.monotonic()
    child = subprocess.Popen(command)
    while child.poll() is None:
        sample(child.pid, latest)
        time.sleep(args.interval)
    wall = time.monotonic() - started
    totals = summarise(latest)
    print(report(totals, wall, top=args.top), file=sys.stderr)
    if args.out is not None:
        payload = {"command": command, "wall_s": wall, "returncode": child.returncode}
        args.out.write_text(json.dumps({**payload, "cpu_s": dict(totals)}, indent=2) + "\n")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
