"""The benchmark's baseline: Splink 5 with DuckDB on the same input folder as the job.

Runs in its own virtualenv (.venv-splink, from bench/requirements-splink.lock; `make bench`
creates it), started by bench/run.py as a separate process so that its time and memory are
measured like the job's:

    .venv-splink/bin/python -m bench.splink_runner --input IN_DIR --output OUT_DIR
        [--settings bench/splink_settings.yaml] [--threshold 0.9] [--seed 7]

Reads IN_DIR/{accounts,payment_instruments,logistics}.parquet (or .csv), makes one row per
account (bench/convert.py), nulls values held by too many accounts, trains a model (prior from
deterministic rules, u by random sampling, m by EM), scores the blocked pairs at the threshold,
clusters at the same threshold, and writes into OUT_DIR:

- `membership.parquet`: `account_id`, `cluster_id` (every account, singletons included);
- `model.json`: the trained Splink model;
- `metrics.json`: seconds per stage, candidate pairs, accepted pairs, rows, versions.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import splink
import splink.comparison_library as cl
import yaml
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from bench.convert import ACCOUNT_ID, account_rows, drop_common_values

logger = logging.getLogger(__name__)

DEFAULT_SETTINGS = Path(__file__).resolve().parent / "splink_settings.yaml"


class Clock:
    """Seconds per named stage, in the order they ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        logger.info("stage %s", name)
        try:
            yield
        finally:
            self.seconds[name] = time.monotonic() - started


def read_dataset(in_dir: Path, name: str, *, required: bool) -> pd.DataFrame | None:
    """IN_DIR/NAME.parquet (file or folder) or IN_DIR/NAME.csv, as pandas; None if absent."""
    parquet, csv = in_dir / f"{name}.parquet", in_dir / f"{name}.csv"
    if parquet.exists():
        return pd.read_parquet(parquet)
    if csv.exists():
        return pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
    if required:
        raise FileNotFoundError(f"{in_dir}: no {name}.parquet or {name}.csv")
    return None


def blocking_rule(spec: Mapping[str, Any]) -> Any:
    """`{columns: [...], explode: [...]}` -> Splink's block_on."""
    explode = list(spec.get("explode") or []) or None
    return block_on(*spec["columns"], arrays_to_explode=explode)


def comparison(spec: Mapping[str, Any]) -> Any:
    """`{kind: ClassName, column: name, args: {...}}` -> a splink.comparison_library object."""
    kind = spec["kind"]
    if not hasattr(cl, kind):
        raise ValueError(f"splink.comparison_library has no {kind!r} (settings: {spec})")
    created = getattr(cl, kind)(spec["column"], **(spec.get("args") or {}))
    if spec.get("configure"):
        # e.g. {term_frequency_adjustments: true}: ComparisonCreator.configure()
        created = created.configure(**spec["configure"])
    return created


def log_parameters(linker: Linker) -> None:
    """The trained prior and, per comparison level, m, u and the match weight (the values of
    Splink's match weights / m-u charts), for checking that the model makes sense."""
    model = linker.misc.save_model_to_json()
    logger.info(
        "probability_two_random_records_match %.3g", model["probability_two_random_records_match"]
    )
    for comparison_dict in model["comparisons"]:
        for level in comparison_dict["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            weight = math.log2(m / u) if m and u else float("nan")
            logger.info(
                "  %-20s %-45s m=%s u=%s weight=%.2f%s",
                comparison_dict["output_column_name"],
                level["label_for_charts"][:45],
                f"{m:.3g}" if m is not None else None,
                f"{u:.3g}" if u is not None else None,
                weight,
                " tf" if level.get("tf_adjustment_column") else "",
            )


def build_settings(settings: Mapping[str, Any]) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=ACCOUNT_ID,
        blocking_rules_to_generate_predictions=[
            blocking_rule(rule) for rule in settings["blocking_rules"]
        ],
        comparisons=[comparison(spec) for spec in settings["comparisons"]],
    )


def run(
    in_dir: Path, out_dir: Path, settings: Mapping[str, Any], *, threshold: float, seed: int
) -> dict[str, Any]:
    """Everything between reading IN_DIR and writing OUT_DIR; returns the metrics written."""
    clock = Clock()
    metrics: dict[str, Any] = {
        "splink_version": splink.__version__,
        "duckdb_version": duckdb.__version__,
        "threshold": threshold,
        "seed": seed,
    }
    with clock.stage("read_and_convert"):
        accounts = read_dataset(in_dir, "accounts", required=True)
        assert accounts is not None
        rows = account_rows(
            accounts,
            read_dataset(in_dir, "payment_instruments", required=False),
            read_dataset(in_dir, "logistics", required=False),
        )
        rows, dropped = drop_common_values(
            rows,
            columns=settings.get("capped_columns") or [],
            max_holders=settings.get("max_value_holders"),
        )
    metrics["rows_read"] = len(accounts)
    metrics["accounts"] = len(rows)
    metrics["common_values_dropped"] = dropped
    logger.info(
        "%d account rows (%d read); common values dropped: %s", len(rows), len(accounts), dropped
    )

    with clock.stage("register"):
        db_api = DuckDBAPI()
        accounts_sdf = db_api.register(
            pa.Table.from_pandas(rows, preserve_index=False), table_name="accounts"
        )
        linker = Linker(accounts_sdf, build_settings(settings))
    with clock.stage("train_prior"):
        prior = settings["prior"]
        linker.training.estimate_probability_two_random_records_match(
            [blocking_rule(rule) for rule in prior["deterministic_rules"]],
            recall=prior["recall"],
        )
    with clock.stage("train_u"):
        linker.training.estimate_u_using_random_sampling(
            max_pairs=float(settings["u_max_pairs"]), seed=seed
        )
    with clock.stage("train_m"):
        for rule in settings["em_rules"]:
            linker.training.estimate_parameters_using_expectation_maximisation(
                blocking_rule(rule), estimate_without_term_frequencies=True
            )
    log_parameters(linker)
    with clock.stage("block"):
        blocked = linker.inference.compute_blocked_pairs_for_predict()
        candidate_pairs = _count(blocked)
    with clock.stage("predict"):
        predictions = linker.inference.predict(threshold_match_probability=threshold)
        accepted_pairs = _count(predictions)
    with clock.stage("cluster"):
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=threshold
        )
    with clock.stage("write"):
        out_dir.mkdir(parents=True, exist_ok=True)
        membership = clusters.as_duckdbpyrelation().select(
            f"CAST({ACCOUNT_ID} AS VARCHAR) AS {ACCOUNT_ID}, "
            "CAST(cluster_id AS VARCHAR) AS cluster_id"
        )
        membership.to_parquet(str(out_dir / "membership.parquet"))
        linker.misc.save_model_to_json(str(out_dir / "model.json"), overwrite=True)
    metrics["candidate_pairs"] = candidate_pairs
    metrics["accepted_pairs"] = accepted_pairs
    metrics["seconds"] = clock.seconds
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    logger.info(
        "%d candidate pairs, %d accepted at %.2f; seconds %s",
        candidate_pairs,
        accepted_pairs,
        threshold,
        {name: round(s, 1) for name, s in clock.seconds.items()},
    )
    return metrics


def _count(frame: Any) -> int:
    # DuckDB 2 relations have no fetchone(): fetchall() of the one-row count.
    return int(frame.as_duckdbpyrelation().count("*").fetchall()[0][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="IN_DIR of the contract")
    parser.add_argument("--output", type=Path, required=True, help="folder for the results")
    parser.add_argument("--settings", type=Path, default=DEFAULT_SETTINGS)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = yaml.safe_load(args.settings.read_text(encoding="utf-8"))
    run(args.input, args.output, settings, threshold=args.threshold, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
