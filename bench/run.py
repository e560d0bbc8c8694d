"""Scaling benchmark: the job against Splink 5 (DuckDB), time, memory and accuracy against N.

For each size N the project's generator writes WORK/n<N>-seed<S>/{in,truth.parquet} (kept and
reused by later runs with the same N and seed); then, per repeat, each tool runs as its own
process exactly as a user runs it, into a fresh output folder:

- ours: `python -m jobs.resolve_entities --input ... --output ... --truth ... --conf ...
  --run-id ...` with SELLER_ER_HASH_KEY set to a benchmark key; its per-stage seconds and rows,
  candidate pairs and own accuracy figures are read back from OUT/_mlflow;
- Splink: `.venv-splink/bin/python -m bench.splink_runner` (bench/splink_settings.yaml, the
  threshold of --conf).

Wall time is that of the whole process. Peak memory is sampled every 0.5 s from /proc: the sum
of the resident set sizes of the process and all its descendants (for the job: the Python
driver and the JVM that holds the local executors), and the JVM's own. Shared pages count once
per process, so the sum can overstate a little. Both tools' memberships are judged by the same
code (bench/evaluate.py) against the truth.

Writes WORK/results.json (machine, settings, every run, medians), WORK/results.csv (one row
per tool, size and repeat), WORK/table.md (also printed), WORK/scaling.png (log-log), and logs
all of it to the MLflow store WORK/_mlflow (one run, a nested run per tool, size and repeat).

    python -m bench.run --work DIR [--sizes 100000,300000,1000000] [--repeats 3]
        [--conf conf/default.yaml] [--no-splink] [--seed 7]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import yaml
from deltalake import DeltaTable
from mlflow.tracking import MlflowClient

from bench.evaluate import pairwise_scores
from bench.proctree import process_tree
from jobs.tracking import job_run_metrics

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPLINK_PYTHON = PROJECT_ROOT / ".venv-splink" / "bin" / "python"
SPLINK_SETTINGS = PROJECT_ROOT / "bench" / "splink_settings.yaml"
BENCHMARK_HASH_KEY = "seller-er-benchmark-key-not-secret"
EXPERIMENT = "seller-er-benchmark"
OURS, SPLINK = "ours", "splink"
SAMPLE_SECONDS = 0.5
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# --- memory of a process tree, from /proc ------------------------------------------------


def _rss_and_label(pid: int) -> tuple[int, str]:
    """Resident bytes of `pid` and a label: `java`, or the interpreter and its module
    (`python -m pyspark.daemon`); (0, "") when the process has gone."""
    try:
        with open(f"/proc/{pid}/statm", encoding="utf-8") as statm:
            resident_pages = int(statm.read().split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read().decode("utf-8", "replace").split("\0")
    except (OSError, IndexError, ValueError):
        return 0, ""
    program = os.path.basename(argv[0]) if argv else ""
    label = f"{program} -m {argv[2]}" if len(argv) > 2 and argv[1] == "-m" else program
    return resident_pages * _PAGE_SIZE, label


class TreeMemorySampler(threading.Thread):
    """Samples the RSS of a process tree until stopped; keeps the peaks of the sum and of the
    JVM (processes named `java`), and at the peak of the sum, bytes and process count per
    label (which processes made the peak)."""

    def __init__(self, root: int, interval: float = SAMPLE_SECONDS) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_rss = 0
        self.peak_jvm_rss = 0
        self.peak_breakdown: dict[str, dict[str, int]] = {}
        self.samples = 0
        self._stopped = threading.Event()

    def sample(self) -> None:
        total = jvm = 0
        breakdown: dict[str, dict[str, int]] = {}
        tree = process_tree(self.root)
        measured = {pid: _rss_and_label(pid) for pid in tree}
        for pid, (rss, label) in measured.items():
            if not label:
                continue
            if label == "java" and measured.get(tree[pid], (0, ""))[1] == "java":
                # A `java` child of the JVM is the JVM forking to run a command (Hadoop's
                # shell calls): until it execs it shows the JVM's pages, not a second JVM.
                continue
            total += rss
            if label == "java":
                jvm += rss
            entry = breakdown.setdefault(label, {"processes": 0, "rss_bytes": 0})
            entry["processes"] += 1
            entry["rss_bytes"] += rss
        if total > self.peak_rss:
            self.peak_rss, self.peak_breakdown = total, breakdown
        self.peak_jvm_rss = max(self.peak_jvm_rss, jvm)
        self.samples += 1

    def run(self) -> None:
        while not self._stopped.is_set():
            self.sample()
            self._stopped.wait(self.interval)

    def stop(self) -> None:
        self._stopped.set()
        self.join()


@dataclass
class Measured:
    exit_code: int
    wall_seconds: float
    peak_rss: int
    peak_jvm_rss: int
    peak_breakdown: dict[str, dict[str, int]]
    samples: int


def run_measured(command: Sequence[str], log_file: Path, env: Mapping[str, str]) -> Measured:
    """Run `command` from the project folder, output to `log_file`, timing and sampling it."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logger.info("running %s", " ".join(command))
    with log_file.open("w", encoding="utf-8") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            list(command), cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(env)
        )
        sampler = TreeMemorySampler(process.pid)
        sampler.start()
        exit_code = process.wait()
        wall = time.monotonic() - started
        sampler.stop()
    return Measured(
        exit_code,
        wall,
        sampler.peak_rss,
        sampler.peak_jvm_rss,
        sampler.peak_breakdown,
        sampler.samples,
    )


# --- the machine and the config --------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model and logical cores from /proc/cpuinfo, memory from /proc/meminfo."""
    cpu_model, cores = "", 0
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            key, _, value = line.partition(":")
            if key.strip() == "processor":
                cores += 1
            elif key.strip() == "model name" and not cpu_model:
                cpu_model = value.strip()
    memory_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
                break
    return {
        "cpu_model": cpu_model,
        "cores": cores,
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_bytes": memory_kib * 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def read_conf(path: Path) -> dict[str, Any]:
    """The job's YAML config with `extends` applied as the job does it (mappings merge, other
    values are replaced)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    base = raw.pop("extends", None)
    if base is None:
        return raw
    return _merge(read_conf(path.parent / base), raw)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- one size, one repeat, one tool ----------------------------------------------------


@dataclass
class Result:
    tool: str
    accounts: int
    repeat: int
    status: str
    exit_code: int
    wall_seconds: float
    peak_rss_bytes: int
    peak_jvm_rss_bytes: int
    memory_samples: int
    peak_breakdown: dict[str, dict[str, int]] = field(default_factory=dict)
    candidate_pairs: float | None = None
    accepted_pairs: float | None = None
    scores: dict[str, float | int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # ours only: wall time from the end of the previous stage (jobs.progress.StageClock)
    stage_spans: dict[str, float] = field(default_factory=dict)
    stage_rows: dict[str, float] = field(default_factory=dict)
    job_metrics: dict[str, float] = field(default_factory=dict)
    output: str = ""
    log: str = ""


def generate(size: int, seed: int, folder: Path, env: Mapping[str, str]) -> tuple[Path, Path]:
    in_dir, truth = folder / "in", folder / "truth.parquet"
    if truth.exists() and (in_dir / "accounts.parquet").exists():
        logger.info("n=%d: reusing %s", size, in_dir)
        return in_dir, truth
    command = [
        sys.executable,
        "-m",
        "jobs.generate_synthetic",
        "--output",
        str(in_dir),
        "--accounts",
        str(size),
        "--seed",
        str(seed),
        "--truth",
        str(truth),
    ]
    measured = run_measured(command, folder / "generate.log", env)
    if measured.exit_code != 0:
        raise RuntimeError(f"generator exited {measured.exit_code}; see {folder / 'generate.log'}")
    logger.info("n=%d: data written in %.0f s", size, measured.wall_seconds)
    return in_dir, truth


def _job_metrics(out_dir: Path, run_id: str) -> dict[str, float]:
    return job_run_metrics(out_dir / "_mlflow", run_id)


def run_ours(
    in_dir: Path,
    truth: Path,
    out_dir: Path,
    *,
    size: int,
    repeat: int,
    conf: Path,
    env: Mapping[str, str],
) -> Result:
    run_id = f"bench-n{size}-r{repeat}"
    command = [
        sys.executable,
        "-m",
        "jobs.resolve_entities",
        "--input",
        str(in_dir),
        "--output",
        str(out_dir),
        "--truth",
        str(truth),
        "--conf",
        str(conf),
        "--run-id",
        run_id,
    ]
    log = out_dir.parent / f"{out_dir.name}.log"
    measured = run_measured(command, log, env)
    result = _result(OURS, size, repeat, measured, out_dir, log)
    if measured.exit_code != 0:
        return result
    metrics = _job_metrics(out_dir, run_id)
    result.job_metrics = {k: v for k, v in metrics.items() if k.startswith("eval_")}
    result.stage_seconds = _prefixed(metrics, "seconds.")
    result.stage_spans = _prefixed(metrics, "span.")
    result.stage_rows = _prefixed(metrics, "rows.")
    result.candidate_pairs = metrics.get("blocking_candidate_pairs")
    result.accepted_pairs = metrics.get("rows.match_edges")
    membership = DeltaTable(str(out_dir / "entity_membership")).to_pandas(
        columns=["account_id", "entity_id"]
    )
    result.scores = pairwise_scores(membership, pd.read_parquet(truth)).as_dict()
    return result


def run_splink(
    in_dir: Path,
    truth: Path,
    out_dir: Path,
    *,
    size: int,
    repeat: int,
    threshold: float,
    seed: int,
    python: Path,
    settings: Path,
    env: Mapping[str, str],
) -> Result:
    command = [
        str(python),
        "-m",
        "bench.splink_runner",
        "--input",
        str(in_dir),
        "--output",
        str(out_dir),
        "--settings",
        str(settings),
        "--threshold",
        str(threshold),
        "--seed",
        str(seed),
    ]
    log = out_dir.parent / f"{out_dir.name}.log"
    measured = run_measured(command, log, env)
    result = _result(SPLINK, size, repeat, measured, out_dir, log)
    if measured.exit_code != 0:
        return result
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    result.stage_seconds = dict(metrics["seconds"])
    result.stage_rows = {"accounts": metrics["accounts"], "rows_read": metrics["rows_read"]}
    result.candidate_pairs = metrics["candidate_pairs"]
    result.accepted_pairs = metrics["accepted_pairs"]
    membership = pd.read_parquet(out_dir / "membership.parquet")
    result.scores = pairwise_scores(
        membership, pd.read_parquet(truth), cluster_column="cluster_id"
    ).as_dict()
    return result


def _result(
    tool: str, size: int, repeat: int, measured: Measured, out_dir: Path, log: Path
) -> Result:
    if measured.exit_code != 0:
        logger.error(
            "%s n=%d repeat %d exited %d; see %s", tool, size, repeat, measured.exit_code, log
        )
    else:
        logger.info(
            "%s n=%d repeat %d: %.1f s, peak %.2f GiB",
            tool,
            size,
            repeat,
            measured.wall_seconds,
            measured.peak_rss / 2**30,
        )
    return Result(
        tool=tool,
        accounts=size,
        repeat=repeat,
        status="ok" if measured.exit_code == 0 else "failed",
        exit_code=measured.exit_code,
        wall_seconds=measured.wall_seconds,
        peak_rss_bytes=measured.peak_rss,
        peak_jvm_rss_bytes=measured.peak_jvm_rss,
        memory_samples=measured.samples,
        peak_breakdown=measured.peak_breakdown,
        output=str(out_dir),
        log=str(log),
    )


def _prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {k[len(prefix) :]: v for k, v in sorted(metrics.items()) if k.startswith(prefix)}


# --- summaries and reports -------------------------------------------------------------


def summarise(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Medians over the successful repeats, per tool and size, with ratios ours / Splink."""
    groups: dict[tuple[str, int], list[Result]] = {}
    for result in results:
        groups.setdefault((result.tool, result.accounts), []).append(result)
    summary = []
    for (tool, size), runs in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        ok = [run for run in runs if run.status == "ok"]
        row: dict[str, Any] = {
            "tool": tool,
            "accounts": size,
            "repeats": len(runs),
            "succeeded": len(ok),
        }
        if ok:
            row.update(
                wall_seconds=statistics.median(r.wall_seconds for r in ok),
                peak_rss_bytes=statistics.median(r.peak_rss_bytes for r in ok),
                peak_jvm_rss_bytes=statistics.median(r.peak_jvm_rss_bytes for r in ok),
                candidate_pairs=_median(r.candidate_pairs for r in ok),
                accepted_pairs=_median(r.accepted_pairs for r in ok),
            )
            for name in ("pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_f1"):
                row[name] = _median(r.scores.get(name) for r in ok)
        summary.append(row)
    by_key = {(row["tool"], row["accounts"]): row for row in summary}
    for row in summary:
        other = by_key.get((SPLINK, row["accounts"]))
        if row["tool"] == OURS and other and "wall_seconds" in row and "wall_seconds" in other:
            row["wall_ratio_vs_splink"] = row["wall_seconds"] / other["wall_seconds"]
            row["memory_ratio_vs_splink"] = row["peak_rss_bytes"] / other["peak_rss_bytes"]
    return summary


def _median(values: Any) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def table(summary: Sequence[Mapping[str, Any]]) -> str:
    header = [
        "tool",
        "N",
        "wall s",
        "peak memory (JVM)",
        "candidate pairs",
        "pairwise P",
        "pairwise R",
        "pairwise F1",
        "wall ours/Splink",
        "memory ours/Splink",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary:
        if "wall_seconds" not in row:
            cells = [row["tool"], f"{row['accounts']:,}", "failed", *[""] * (len(header) - 3)]
        else:
            memory = _gib(row["peak_rss_bytes"])
            if row["peak_jvm_rss_bytes"]:
                memory += f" ({_gib(row['peak_jvm_rss_bytes'])})"
            cells = [
                row["tool"],
                f"{row['accounts']:,}",
                f"{row['wall_seconds']:.1f}",
                memory,
                _number(row.get("candidate_pairs"), "{:,.0f}"),
                _number(row.get("pairwise_precision"), "{:.4f}"),
                _number(row.get("pairwise_recall"), "{:.4f}"),
                _number(row.get("pairwise_f1"), "{:.4f}"),
                _number(row.get("wall_ratio_vs_splink"), "{:.2f}"),
                _number(row.get("memory_ratio_vs_splink"), "{:.2f}"),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def _number(value: float | None, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def write_csv(results: Sequence[Result], path: Path) -> None:
    stages = sorted({name for r in results for name in r.stage_seconds})
    spans = sorted({name for r in results for name in r.stage_spans})
    rows = sorted({name for r in results for name in r.stage_rows})
    score_names = [
        "pairwise_precision",
        "pairwise_recall",
        "pairwise_f1",
        "bcubed_precision",
        "bcubed_recall",
        "bcubed_f1",
        "predicted_pairs",
        "true_pairs",
        "true_positive_pairs",
        "missing_accounts",
        "largest_cluster",
    ]
    fields = [
        "tool",
        "accounts",
        "repeat",
        "status",
        "exit_code",
        "wall_seconds",
        "peak_rss_bytes",
        "peak_jvm_rss_bytes",
        "memory_samples",
        "candidate_pairs",
        "accepted_pairs",
        *score_names,
        "job_eval_pairwise_f1",
        "job_eval_bcubed_f1",
        *[f"seconds.{s}" for s in stages],
        *[f"span.{s}" for s in spans],
        *[f"rows.{s}" for s in rows],
        "log",
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for r in results:
            row: dict[str, Any] = {
                "tool": r.tool,
                "accounts": r.accounts,
                "repeat": r.repeat,
                "status": r.status,
                "exit_code": r.exit_code,
                "wall_seconds": round(r.wall_seconds, 3),
                "peak_rss_bytes": r.peak_rss_bytes,
                "peak_jvm_rss_bytes": r.peak_jvm_rss_bytes,
                "memory_samples": r.memory_samples,
                "candidate_pairs": r.candidate_pairs,
                "accepted_pairs": r.accepted_pairs,
                "log": r.log,
                "job_eval_pairwise_f1": r.job_metrics.get("eval_pairwise_f1"),
                "job_eval_bcubed_f1": r.job_metrics.get("eval_bcubed_f1"),
            }
            row.update({name: r.scores.get(name) for name in score_names})
            row.update({f"seconds.{k}": round(v, 3) for k, v in r.stage_seconds.items()})
            row.update({f"span.{k}": round(v, 3) for k, v in r.stage_spans.items()})
            row.update({f"rows.{k}": v for k, v in r.stage_rows.items()})
            writer.writerow(row)


def plot(summary: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    panels = (
        ("wall_seconds", "wall time (s)", 1.0),
        ("candidate_pairs", "candidate pairs", 1.0),
        ("peak_rss_bytes", "peak memory (GiB)", 2.0**-30),
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2))
    styles = {
        OURS: ("tab:blue", "o", "ours (Spark, local)"),
        SPLINK: ("tab:orange", "s", "Splink 5 (DuckDB)"),
    }
    for axis, (key, label, scale) in zip(axes, panels, strict=True):
        for tool, (colour, marker, name) in styles.items():
            points = sorted(
                (row["accounts"], row[key] * scale)
                for row in summary
                if row["tool"] == tool and row.get(key)
            )
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, marker=marker, color=colour, label=name)
                for x, y in points:
                    axis.annotate(
                        _compact(y),
                        (x, y),
                        textcoords="offset points",
                        xytext=(6, 4),
                        fontsize=8,
                        color=colour,
                    )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.margins(x=0.15, y=0.2)
        sizes = sorted({row["accounts"] for row in summary})
        axis.set_xticks(sizes, [_compact(size) for size in sizes])
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _compact(value)))
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("accounts (N)")
        axis.set_ylabel(label)
        axis.set_title(f"{label} against N")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.suptitle("Seller-account entity resolution: scaling (medians over repeats)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _compact(value: float) -> str:
    """3 significant digits, with k and M: 460, 31.9k, 1M, 0.729."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def log_to_mlflow(
    work: Path, report: Mapping[str, Any], results: Sequence[Result], files: Sequence[Path]
) -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = work / "_mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(folder / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        found.experiment_id
        if found is not None
        else client.create_experiment(
            EXPERIMENT, artifact_location=(folder / "artifacts").resolve().as_uri()
        )
    )
    settings = report["settings"]
    with mlflow.start_run(experiment_id=experiment_id, run_name=settings["started_at"]):
        mlflow.log_params(
            {
                "sizes": ",".join(str(s) for s in settings["sizes"]),
                "repeats": settings["repeats"],
                "seed": settings["seed"],
                "conf": settings["conf"],
                "threshold": settings["threshold"],
                "splink": settings["splink"],
                **{f"machine.{k}": v for k, v in report["machine"].items()},
            }
        )
        for row in report["summary"]:
            prefix = f"{row['tool']}.n{row['accounts']}"
            mlflow.log_metrics(
                {
                    f"{prefix}.{key}": float(value)
                    for key, value in row.items()
                    if key not in ("tool", "accounts") and isinstance(value, int | float)
                }
            )
        for result in results:
            with mlflow.start_run(
                experiment_id=experiment_id,
                run_name=f"{result.tool}-n{result.accounts}-r{result.repeat}",
                nested=True,
            ):
                mlflow.log_params(
                    {
                        "tool": result.tool,
                        "accounts": result.accounts,
                        "repeat": result.repeat,
                        "status": result.status,
                    }
                )
                metrics = {
                    "wall_seconds": result.wall_seconds,
                    "peak_rss_bytes": result.peak_rss_bytes,
                    "peak_jvm_rss_bytes": result.peak_jvm_rss_bytes,
                    **result.scores,
                    **{f"seconds.{k}": v for k, v in result.stage_seconds.items()},
                    **{f"span.{k}": v for k, v in result.stage_spans.items()},
                    **{f"rows.{k}": v for k, v in result.stage_rows.items()},
                    **result.job_metrics,
                }
                if result.candidate_pairs is not None:
                    metrics["candidate_pairs"] = result.candidate_pairs
                mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in files:
            mlflow.log_artifact(str(path))
    logger.info("MLflow: mlflow ui --backend-store-uri %s", uri)


# --- entry point ----------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--sizes: {text!r} is not a list of numbers") from error
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--sizes: {text!r}: give positive account counts")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for data and results")
    parser.add_argument("--sizes", type=_sizes, default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conf", type=Path, default=PROJECT_ROOT / "conf" / "default.yaml")
    parser.add_argument("--no-splink", action="store_true", help="run only the job")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--splink-python", type=Path, default=SPLINK_PYTHON)
    parser.add_argument("--splink-settings", type=Path, default=SPLINK_SETTINGS)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.repeats < 1:
        parser.error("--repeats: at least 1")
    conf_path = args.conf.resolve()
    if not conf_path.is_file():
        parser.error(f"--conf: {conf_path} not found")
    if not args.no_splink and not args.splink_python.exists():
        parser.error(
            f"{args.splink_python} not found: `make bench` creates .venv-splink from "
            "bench/requirements-splink.lock; or pass --no-splink"
        )
    conf = read_conf(conf_path)
    threshold = float(conf["resolution"]["model"]["threshold"])
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ)
    env.update(
        SELLER_ER_HASH_KEY=BENCHMARK_HASH_KEY,
        MLFLOW_DISABLE_TELEMETRY="true",
        GX_ANALYTICS_ENABLED="false",
    )
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    splink_settings = yaml.safe_load(args.splink_settings.read_text(encoding="utf-8"))
    report: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "sizes": args.sizes,
            "repeats": args.repeats,
            "seed": args.seed,
            "conf": str(conf_path),
            "threshold": threshold,
            "max_block_size": conf["resolution"]["blocking"].get("max_block_size"),
            "splink": "off" if args.no_splink else _splink_version(args.splink_python),
            "splink_settings": splink_settings,
            "memory_sample_seconds": SAMPLE_SECONDS,
        },
    }
    results: list[Result] = []
    for size in args.sizes:
        folder = work / f"n{size}-seed{args.seed}"
        in_dir, truth = generate(size, args.seed, folder, env)
        for repeat in range(1, args.repeats + 1):
            # Alternate the tools within a repeat so that drift in machine load hits both.
            out = folder / f"ours-r{repeat}"
            shutil.rmtree(out, ignore_errors=True)
            results.append(
                run_ours(in_dir, truth, out, size=size, repeat=repeat, conf=conf_path, env=env)
            )
            if not args.no_splink:
                out = folder / f"splink-r{repeat}"
                shutil.rmtree(out, ignore_errors=True)
                results.append(
                    run_splink(
                        in_dir,
                        truth,
                        out,
                        size=size,
                        repeat=repeat,
                        threshold=threshold,
                        seed=args.seed,
                        python=args.splink_python,
                        settings=args.splink_settings.resolve(),
                        env=env,
                    )
                )
            _write_report(work, report, results)

    summary_table = _write_report(work, report, results)
    plot(report["summary"], work / "scaling.png")
    log_to_mlflow(
        work,
        report,
        results,
        [work / name for name in ("results.json", "results.csv", "table.md", "scaling.png")],
    )
    print(summary_table)
    failed = [r for r in results if r.status != "ok"]
    return 1 if failed else 0


def _write_report(work: Path, report: dict[str, Any], results: Sequence[Result]) -> str:
    """(Re)write results.json, results.csv and table.md: after every repeat, so that a long
    run stopped part-way keeps what it measured."""
    report["runs"] = [vars(result) for result in results]
    report["summary"] = summarise(results)
    (work / "results.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    write_csv(results, work / "results.csv")
    text = table(report["summary"])
    (work / "table.md").write_text(text + "\n", encoding="utf-8")
    return text


def _splink_version(python: Path) -> str:
    completed = subprocess.run(
        [str(python), "-c", "import duckdb, splink; print(splink.__version__, duckdb.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    splink_version, duckdb_version = completed.stdout.split()
    return f"splink {splink_version}, duckdb {duckdb_version}"


if __name__ == "__main__":
    sys.exit(main())
