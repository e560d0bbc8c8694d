"""Incremental-run benchmark: a full run against an incremental one on the same input.

From one generated population of N accounts it writes two inputs: *day 1* lacks a share of the
accounts (`--change`, default 1%), and *day 2* has them back, with a few hundredths of that share
of day-1 accounts changed (a new phone) and as many removed. Then, each as the user runs it:

1. a full run on day 1 into WORK/incremental/out (the base);
2. an incremental run on day 2 into the same folder, timed;
3. a full run on day 2 into WORK/full/out, timed;

and it reports both times, their ratio, and how many accounts end with exactly the same fellow
accounts in both (`same_membership_share`; the target is at least 0.999). Figures go to stdout
and WORK/results.json.

    python -m jobs.benchmark_incremental --work /tmp/er-incremental --accounts 100000
        [--change 0.01] [--conf conf/default.yaml] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from deltalake import DeltaTable

from jobs.benchmark_quality import run_logged
from jobs.logs import configure_logging
from jobs.tracking import job_run_metrics

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("accounts", "payment_instruments", "logistics", "enforcement_signals")


def _read(in_dir: Path, name: str) -> pd.DataFrame | None:
    path = in_dir / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def write_days(source: Path, day1: Path, day2: Path, *, change: float, seed: int) -> dict[str, int]:
    """Write the day-1 and day-2 inputs from the input folder `source` (see the module doc);
    returns how many accounts are new, changed and removed on day 2."""
    rng = np.random.default_rng(seed)
    accounts = _read(source, "accounts")
    if accounts is None:
        raise FileNotFoundError(f"{source}: no accounts.parquet")
    ids = accounts["account_id"].dropna().unique()
    n_new = max(1, round(len(ids) * change))
    n_other = max(1, n_new // 10)
    chosen = rng.choice(ids, size=n_new + 2 * n_other, replace=False)
    new, changed, removed = (
        set(chosen[:n_new]),
        set(chosen[n_new : n_new + n_other]),
        set(chosen[n_new + n_other :]),
    )
    day1.mkdir(parents=True, exist_ok=True)
    day2.mkdir(parents=True, exist_ok=True)
    for name in DATASETS:
        frame = _read(source, name)
        if frame is None:
            continue
        frame[~frame["account_id"].isin(new)].to_parquet(day1 / f"{name}.parquet", index=False)
        later = frame[~frame["account_id"].isin(removed)].copy()
        if name == "accounts":
            moved = later["account_id"].isin(changed)
            later.loc[moved, "phone"] = [
                f"+86 139 {i:04d} {j:04d}"
                for i, j in zip(
                    rng.integers(0, 10_000, moved.sum()),
                    rng.integers(0, 10_000, moved.sum()),
                    strict=True,
                )
            ]
        later.to_parquet(day2 / f"{name}.parquet", index=False)
    return {"new": len(new), "changed": len(changed), "removed": len(removed)}


def same_membership_share(left: pd.DataFrame, right: pd.DataFrame) -> float:
    """The share of accounts (of `left`) whose entity holds exactly the same accounts in
    `right`: an account counts when its (left entity, right entity) cell is both entities
    whole."""
    joined = left[["account_id", "entity_id"]].merge(
        right[["account_id", "entity_id"]], on="account_id", how="left", suffixes=("_a", "_b")
    )
    if joined.empty:
        return 1.0
    cell = joined.groupby(["entity_id_a", "entity_id_b"]).size().rename("cell")
    size_a = left.groupby("entity_id").size().rename("size_a")
    size_b = right.groupby("entity_id").size().rename("size_b")
    cells = (
        cell.reset_index()
        .merge(size_a, left_on="entity_id_a", right_index=True)
        .merge(size_b, left_on="entity_id_b", right_index=True)
    )
    whole = cells[(cells["cell"] == cells["size_a"]) & (cells["cell"] == cells["size_b"])]
    return float(whole["cell"].sum()) / len(joined)


def stage_spans(out_dir: Path, run_id: str) -> dict[str, float]:
    """The `span.<stage>` seconds the job logged to MLflow for `run_id` in `out_dir`."""
    metrics = job_run_metrics(out_dir / "_mlflow", run_id)
    return {k.removeprefix("span."): v for k, v in metrics.items() if k.startswith("span.")}


def _resolve(in_dir: Path, out_dir: Path, conf: Path, run_id: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jobs.resolve_entities",
        "--input",
        str(in_dir),
        "--output",
        str(out_dir),
        "--conf",
        str(conf),
        "--run-id",
        run_id,
        *extra,
    ]


def measure(work: Path, *, accounts: int, change: float, conf: Path, seed: int) -> dict[str, Any]:
    source = work / "generated"
    if not (source / "accounts.parquet").exists():
        seconds = run_logged(
            [
                sys.executable,
                "-m",
                "jobs.generate_synthetic",
                "--output",
                str(source),
                "--accounts",
                str(accounts),
                "--seed",
                str(seed),
            ],
            work / "generate.log",
        )
        logger.info("generated %d accounts in %.0f s", accounts, seconds)
    day1, day2 = work / "day1", work / "day2"
    counts = write_days(source, day1, day2, change=change, seed=seed)
    incremental_out, full_out = work / "incremental" / "out", work / "full" / "out"
    for folder in (incremental_out, full_out):
        if folder.exists():
            subprocess.run(["rm", "-rf", str(folder)], check=True)
    base_s = run_logged(_resolve(day1, incremental_out, conf, "day1"), work / "day1.log")
    logger.info("day 1, full: %.0f s", base_s)
    incremental_s = run_logged(
        _resolve(day2, incremental_out, conf, "day2", "--incremental"),
        work / "day2-incremental.log",
    )
    logger.info("day 2, incremental: %.0f s", incremental_s)
    full_s = run_logged(_resolve(day2, full_out, conf, "day2"), work / "day2-full.log")
    logger.info("day 2, full: %.0f s", full_s)
    incremental = DeltaTable(str(incremental_out / "entity_membership")).to_pandas()
    full = DeltaTable(str(full_out / "entity_membership")).to_pandas()
    return {
        "accounts": accounts,
        "change": change,
        "day2_accounts": counts,
        "seconds": {"day1_full": base_s, "day2_incremental": incremental_s, "day2_full": full_s},
        "speedup": full_s / incremental_s,
        "same_membership_share": same_membership_share(full, incremental),
        "spans": {
            "day2_incremental": stage_spans(incremental_out, "day2"),
            "day2_full": stage_spans(full_out, "day2"),
        },
        "membership_rows": {"full": len(full), "incremental": len(incremental)},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "conf": str(conf),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--change", type=float, default=0.01)
    parser.add_argument("--conf", type=Path, default=PROJECT_ROOT / "conf" / "default.yaml")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    configure_logging()
    args.work.mkdir(parents=True, exist_ok=True)
    result = measure(
        args.work, accounts=args.accounts, change=args.change, conf=args.conf, seed=args.seed
    )
    (args.work / "results.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
