"""Side by side: an incremental run's MERGE into `account_state`, with and without Delta
deletion vectors (`outputs.deletion_vectors`).

Builds one table shaped like `account_state` at N accounts (account id, fingerprint, an array
of `--keys` blocking keys per account, a null profile), written as the job writes it
(`OutputWriter.replace`, `--partitions` files), then for each repeat and each mode in turn:
copies it to a fresh folder with or without deletion vectors, and times the job's own scoped
MERGE (`OutputWriter.merge`) of a `--change` share of accounts (half changed, half new, as many
removed), the same change every time. Both modes run in one process on one session, alternated,
so their ratio compares them under the same load.

    python -m bench.merge_vectors --work DIR [--accounts 1000000] [--change 0.01]
        [--keys 30] [--repeats 2] [--partitions 16]

Writes DIR/merge_vectors.json (machine, settings, every timing, medians) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.config import load_config
from jobs.outputs import DELETION_VECTORS_PROPERTY, OutputWriter, sql_identifier, sql_string
from jobs.session import build_session

logger = logging.getLogger(__name__)

TABLE = "account_state"


def state_frame(spark: SparkSession, accounts: int, keys: int, *, salt: str) -> DataFrame:
    """`account_state`-shaped rows for account ids 0..accounts-1; `salt` changes every
    fingerprint and key (a changed account)."""
    key = F.struct(
        F.lit("device").alias("attribute"),
        F.sha2(F.concat_ws("|", F.col("id").cast("string"), F.lit(salt), F.col("k")), 256).alias(
            "value_key"
        ),
    )
    return (
        spark.range(accounts)
        .withColumn("k", F.explode(F.sequence(F.lit(0), F.lit(keys - 1)).cast("array<string>")))
        .groupBy("id")
        .agg(F.array_sort(F.collect_list(key)).alias("k"))
        .select(
            F.format_string("S%09d", F.col("id")).alias("account_id"),
            F.sha2(F.concat_ws("|", F.col("id").cast("string"), F.lit(salt)), 256).alias(
                "fingerprint"
            ),
            F.col("k").alias("blocking_keys"),
            F.lit(None).cast("struct<name_key:string>").alias("profile"),
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--change", type=float, default=0.01)
    parser.add_argument("--keys", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    work = args.work.absolute()
    shutil.rmtree(work / "tables", ignore_errors=True)
    config = load_config(None)
    spark = build_session(
        config.spark, clustering=config.resolution.clustering, checkpoint_dir=str(work / "_ck")
    )
    spark.conf.set("spark.sql.shuffle.partitions", str(args.partitions))
    base_dir = work / "tables" / "base"
    OutputWriter(spark, base_dir, "day1").replace(
        TABLE,
        state_frame(spark, args.accounts, args.keys, salt="day1").repartition(args.partitions),
    )
    changed = int(args.accounts * args.change / 2)
    # Spread over the id range, as a real change is: every file holds some of them.
    step = max(1, args.accounts // max(changed, 1))
    changed_ids = spark.range(0, args.accounts, step).limit(changed)
    removed_ids = spark.range(1, args.accounts, step).limit(changed)
    new = state_frame(spark, changed, args.keys, salt="day2").withColumn(
        "account_id", F.format_string("N%09d", F.monotonically_increasing_id())
    )
    account = F.format_string("S%09d", F.col("id")).alias("account_id")
    touched_changed = changed_ids.select(account)
    changed_rows = state_frame(spark, args.accounts, args.keys, salt="day2").join(
        touched_changed, "account_id", "left_semi"
    )
    frame = changed_rows.unionByName(new).localCheckpoint(eager=True)
    scope = (
        touched_changed.unionByName(removed_ids.select(account))
        .unionByName(frame.select("account_id"))
        .distinct()
        .localCheckpoint(eager=True)
    )
    timings: dict[str, list[float]] = {"plain": [], "deletion_vectors": []}
    for repeat in range(args.repeats):
        for mode in timings:
            out = work / "tables" / f"{mode}-{repeat}"
            shutil.copytree(base_dir, out)
            vectors = [TABLE] if mode == "deletion_vectors" else []
            if vectors:
                spark.sql(
                    f"ALTER TABLE delta.{sql_identifier(str(out / TABLE))} "
                    f"SET TBLPROPERTIES ({sql_string(DELETION_VECTORS_PROPERTY)} = 'true')"
                )
            writer = OutputWriter(spark, out, "day2", deletion_vectors=vectors)
            started = time.perf_counter()
            writer.merge(TABLE, frame, ["account_id"], scope=scope)
            seconds = time.perf_counter() - started
            rows = spark.read.format("delta").load(str(out / TABLE)).count()
            logger.info("repeat %d %s: MERGE %.1f s, %d rows after", repeat, mode, seconds, rows)
            timings[mode].append(seconds)
            shutil.rmtree(out)
    medians = {mode: statistics.median(values) for mode, values in timings.items()}
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "accounts": args.accounts,
        "change": args.change,
        "keys_per_account": args.keys,
        "files": args.partitions,
        "merged_rows": frame.count(),
        "scope_rows": scope.count(),
        "seconds": timings,
        "median_seconds": medians,
        "ratio_plain_over_vectors": medians["plain"] / medians["deletion_vectors"],
    }
    (work / "merge_vectors.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print("| mode | MERGE seconds (median) | runs |")
    print("|---|---|---|")
    for mode, values in timings.items():
        print(f"| {mode} | {medians[mode]:.1f} | {', '.join(f'{v:.1f}' for v in values)} |")
    print(f"plain / deletion vectors: {result['ratio_plain_over_vectors']:.2f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
