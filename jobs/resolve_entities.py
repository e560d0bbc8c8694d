"""Resolve seller accounts into the operators behind them.

    python -m jobs.resolve_entities --input IN_DIR --output OUT_DIR [--conf FILE] [--truth FILE]
                                    [--run-id ID] [--incremental]
    spark-submit jobs/resolve_entities.py --input IN_DIR --output OUT_DIR [...]

Exit status: 0 success; 2 unusable invocation or input (one line on stderr naming the file and
column); 3 a blocking data-quality check failed (the line names the check); 1 anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file (spark-submit jobs/resolve_entities.py): import the project as a package,
    # and keep jobs/ itself off the path so its modules cannot shadow standard-library ones.
    _jobs_dir = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(_jobs_dir)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from delta.tables import DeltaTable  # noqa: E402
from pyspark.sql import Column, DataFrame, Row, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from features import columns as c  # noqa: E402
from features.standardise import (  # noqa: E402
    standardise_accounts,
    standardise_logistics,
    standardise_payments,
)
from jobs import charts  # noqa: E402
from jobs.concurrency import Background, run_together  # noqa: E402
from jobs.config import PRETRAINED_MODEL, JobConfig, load_config  # noqa: E402
from jobs.hash_key import load_hash_key  # noqa: E402
from jobs.inputs import LoadedInputs, RawInputs, Reread, load_inputs, open_inputs  # noqa: E402
from jobs.logs import configure_logging  # noqa: E402
from jobs.outputs import MERGED_TABLES, RUN_ID_PATTERN, OutputWriter, RunRecord  # noqa: E402
from jobs.progress import StageClock  # noqa: E402
from jobs.quality import (  # noqa: E402
    WHOLE_TABLES,
    PreviousRun,
    QualityConfig,
    QualityReport,
    QualityRun,
    validate_inputs,
    validate_outputs,
)
from jobs.session import (  # noqa: E402
    build_session,
    persisted_rdd_ids,
    release_persisted,
    remove_checkpoints,
)
from jobs.storage import Location, Storage  # noqa: E402
from jobs.tracking import DATA_DOCS_DIR, RunTracker, flatten  # noqa: E402
from resolution.blocking import restore_desk_phones, summarise_pairs_by_attribute  # noqa: E402
from resolution.comparisons import profile_fields  # noqa: E402
from resolution.config import BlockingConfig  # noqa: E402
from resolution.errors import (  # noqa: E402
    ConfigError,
    InputError,
    QualityCheckError,
    ResolutionError,
)
from resolution.evaluation import (  # noqa: E402
    BlockingDiagnostics,
    Evaluation,
    blocking_diagnostics,
    entity_size_histogram,
    evaluate,
    lead_precision,
    threshold_curve,
    weight_histogram,
)
from resolution.fellegi_sunter import FellegiSunterModel  # noqa: E402
from resolution.incremental import (  # noqa: E402
    CHANGE,
    CHANGED,
    KEY_PROBES,
    NEW,
    PROFILE,
    QUARANTINED_ROWS,
    RESCORED,
    UNCHANGED,
    WriteScopes,
    accepted_changes,
    account_changes,
    accounts_with,
    change_counts,
    few_touched,
    input_fingerprints,
    population_sizes,
    profile_type,
    state_rows,
)
from resolution.network import LEAD_RANK, REASONS  # noqa: E402
from resolution.pipeline import (  # noqa: E402
    PreviousEntities,
    Resolution,
    check_model,
    investigate,
    resolve,
    resolve_incremental,
)
from resolution.shared_keys import shared_rows  # noqa: E402

# Probability thresholds of the precision and recall chart.
CURVE_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (0.97, 0.99, 0.995, 0.999)

logger = logging.getLogger("jobs.resolve_entities")

# Libraries the run needs only after its Spark session is up, which the modules that use them
# import where they use them: imported in a driver thread while the session's JVM starts,
# instead of before it (about 4 s of Python on this project's 2-core machines, most of it
# Great Expectations).
_LATER_MODULES = (
    "great_expectations",
    "great_expectations.expectations",
    "mlflow",
    "mlflow.tracking",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
)

# Per resolved account: its input fingerprint and blocking keys, the base of incremental runs.
STATE_TABLE = "account_state"
SHARED_TABLE = "shared_keys"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="resolve_entities", description="Resolve seller accounts into entities."
    )
    parser.add_argument(
        "--input",
        required=True,
        type=Location.parse,
        help="folder of input datasets: a local path or a URI (s3a://, abfss://, gs://, hdfs://)",
    )
    parser.add_argument(
        "--output",
        required=True,
        type=Location.parse,
        help="folder of output Delta tables: a local path or a URI",
    )
    parser.add_argument(
        "--conf", type=Path, default=None, help="YAML config (default conf/default.yaml)"
    )
    parser.add_argument(
        "--truth", type=Location.parse, default=None, help="truth file (evaluation only)"
    )
    parser.add_argument("--run-id", default=None, help="run id (default: time and random suffix)")
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="resolve new and changed accounts against the last succeeded run (see README)",
    )
    return parser.parse_args(argv)


# With --truth, how many of the top leads are checked against it.
LEADS_CHECKED = 20


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def read_truth(spark: SparkSession, path: Location | Path | str) -> DataFrame:
    """The truth table: a parquet or CSV file, or a Delta table folder (local or a URI)."""
    path = Location.parse(path)
    storage = Storage(spark)
    if not storage.exists(path):
        raise InputError(f"{path}: truth file not found")
    if storage.is_dir(path / "_delta_log"):
        truth = spark.read.format("delta").load(str(path))
    elif path.suffix == ".csv":
        truth = spark.read.option("header", True).csv(str(path))
    else:
        truth = spark.read.parquet(str(path))
    for column in (c.ACCOUNT_ID, c.ENTITY_ID):
        if column not in truth.columns:
            raise InputError(
                f"{path}: required column {column!r} is missing (found: {', '.join(truth.columns)})"
            )
    return truth.select(F.col(c.ACCOUNT_ID).cast("string"), F.col(c.ENTITY_ID).cast("string"))


def _require_quality(
    report: QualityReport, folder: Path, *, checks: QualityRun | None, tracker: RunTracker
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{report.suite}.json").write_text(report.to_json(), encoding="utf-8")
    if checks is not None:  # before a blocking failure stops the run: its pages show why
        _publish_data_docs(checks, folder / "data_docs", tracker)
    if not report.success:
        names = ", ".join(result.check for result in report.failed_blocking)
        raise QualityCheckError(f"data-quality check failed ({report.suite}): {names}")


def _publish_data_docs(checks: QualityRun, folder: Path, tracker: RunTracker) -> None:
    """Render the run's validations so far as Great Expectations Data Docs in `folder` and log
    them to MLflow (`data_docs/`). A failure is a warning: the checks decide the run,
    not the rendering of their results."""
    try:
        checks.build_data_docs(folder)
        tracker.log_artifacts(folder, DATA_DOCS_DIR)
    except Exception as error:  # GX's renderers and MLflow's stores raise many kinds
        logger.warning(
            "Great Expectations Data Docs not written to %s (quality.data_docs): %s: %s",
            folder,
            type(error).__name__,
            error,
        )


def _entity_size_metrics(entities: DataFrame) -> dict[str, float]:
    row = entities.agg(
        F.count(F.lit(1)).alias("entities"),
        F.max(c.ACCOUNT_COUNT).alias("largest"),
        F.sum(F.when(F.col(c.ACCOUNT_COUNT) == 1, 1).otherwise(0)).alias("singletons"),
        F.sum(F.when(F.col(c.ACCOUNT_COUNT) >= 5, 1).otherwise(0)).alias("entities_5_plus"),
        F.percentile_approx(c.ACCOUNT_COUNT, 0.99).alias("p99"),
    ).first()
    assert row is not None
    return {
        "entities": float(row["entities"] or 0),
        "largest_entity": float(row["largest"] or 0),
        "singleton_entities": float(row["singletons"] or 0),
        "entities_5_plus": float(row["entities_5_plus"] or 0),
        "entity_size_p99": float(row["p99"] or 0),
    }


def _summary(
    out_dir: Location,
    run_id: str,
    inputs: LoadedInputs,
    sizes: dict[str, float],
    largest: list[Any],
    evaluation: Evaluation | None,
    tracker: RunTracker | None,
    model_path: Path | None = None,
    blocking: BlockingDiagnostics | None = None,
    leads: list[Any] | None = None,
    lead_hits: tuple[int, int] | None = None,
) -> str:
    lines = [f"run {run_id} succeeded; tables under {out_dir}/"]
    for name, counts in inputs.counts.items():
        lines.append(
            f"  {name:<20} read {counts.read:>9,}  accepted {counts.accepted:>9,}  "
            f"quarantined {counts.quarantined:>6,}"
        )
    lines.append(
        f"  entities {int(sizes['entities']):,} (largest {int(sizes['largest_entity'])} accounts, "
        f"{int(sizes['entities_5_plus']):,} with 5 or more, "
        f"{int(sizes['singleton_entities']):,} single accounts)"
    )
    if blocking is not None:
        line = (
            f"  blocking: {blocking.candidate_pairs:,} candidate pairs, "
            f"{blocking.pairs_compared_share:.2e} of all pairs"
        )
        if blocking.pair_completeness is not None:
            line += (
                f"; true pairs compared {blocking.pair_completeness:.4f}, reachable "
                f"{blocking.pair_completeness_reachable:.4f}"
            )
        lines.append(line)
    lines.append("  largest entities:")
    for row in largest:
        lines.append(f"    {row[c.ENTITY_ID]}  {row[c.ACCOUNT_COUNT]:>5} accounts")
    if leads:
        lines.append("  top leads (entity_leads):")
        for row in leads:
            lines.append(f"    {row[LEAD_RANK]:>3}. {row[c.ENTITY_ID]}  {row[REASONS]}")
    if evaluation is not None:
        ev = evaluation
        lines.append(
            f"  against truth: pairwise precision {ev.pairwise_precision:.4f} "
            f"recall {ev.pairwise_recall:.4f} F1 {ev.pairwise_f1:.4f}; B-cubed precision "
            f"{ev.bcubed_precision:.4f} recall {ev.bcubed_recall:.4f} F1 {ev.bcubed_f1:.4f}"
        )
        lines.append(
            f"  true entities recovered exactly: {evaluation.entities_recovered_exactly:,} of "
            f"{evaluation.true_entities:,}; largest predicted {evaluation.largest_predicted_entity}"
            f" vs true {evaluation.largest_true_entity}"
        )
    if lead_hits is not None:
        lines.append(
            f"  leads: {lead_hits[0]} of the top {lead_hits[1]} are true multi-account operators "
            "with signals"
        )
    if model_path is not None:
        lines.append(f"  model: {model_path} (score later runs with it: model.load_from)")
    if tracker is not None:
        lines.append(f"  MLflow: {tracker.ui_command()}")
    return "\n".join(lines)


def _files_dir(out_dir: Location, config: JobConfig) -> tuple[Path, bool]:
    """The local folder for the files beside the tables, and whether it is temporary (an
    OUT_DIR in object storage without `outputs.files_dir`: the files then live in MLflow)."""
    if config.outputs.files_dir:
        return Path(config.outputs.files_dir).absolute(), False
    if out_dir.is_local:
        return out_dir.local_path, False
    return Path(tempfile.mkdtemp(prefix="seller-er-files-")), True


def _tracker(out_dir: Location, config: JobConfig, run_id: str) -> RunTracker:
    """MLflow at `tracking.uri`, else a sqlite store in `tracking.dir`, else in
    OUT_DIR/_mlflow, which needs a local OUT_DIR."""
    experiment = config.tracking.experiment
    if config.tracking.uri:
        return RunTracker(None, experiment, run_id, uri=config.tracking.uri)
    if config.tracking.dir:
        return RunTracker(Path(config.tracking.dir), experiment, run_id)
    if not out_dir.is_local:
        raise ConfigError(
            f"--output {out_dir} is not a local folder, so MLflow's sqlite store cannot live "
            "in it: set tracking.uri (an MLflow server) or tracking.dir (a local folder)"
        )
    return RunTracker(out_dir.local_path / "_mlflow", experiment, run_id)


def _import_later_modules() -> None:
    """Import `_LATER_MODULES` (a failure is raised again where the module is used)."""
    started = time.perf_counter()
    for name in _LATER_MODULES:
        importlib.import_module(name)
    logger.debug("imported %s in %.1f s", ", ".join(_LATER_MODULES), time.perf_counter() - started)


def run(args: argparse.Namespace, config: JobConfig, run_id: str) -> int:
    """Everything after argument and config parsing; raises the project's errors."""
    started_at = datetime.now(UTC)
    clock = StageClock(
        rows_per_partition=config.spark.rows_per_partition,
        local_checkpoints=config.spark.local_checkpoints,
    )
    out_dir: Location = args.output
    files_dir, temporary_files = _files_dir(out_dir, config)
    tracker = _tracker(out_dir, config, run_id)
    if out_dir.is_local:
        out_dir.local_path.mkdir(parents=True, exist_ok=True)
    checkpoint_dir = config.spark.checkpoint_dir or str(out_dir / "_checkpoints")
    with clock.stage("session"):
        imports = Background(_import_later_modules, name="imports")
        spark = build_session(
            config.spark, clustering=config.resolution.clustering, checkpoint_dir=checkpoint_dir
        )
        # Joined before any other work: no two threads import at once after this.
        imports.wait()
    # What the run persists is released when it ends, as it would be with its own JVM: a
    # long-lived session (a notebook, `main` called again) keeps only what it had before.
    persisted_before = persisted_rdd_ids(spark)
    # The demo key is refused outside local mode, and only the session knows the master
    # (spark-submit may set it).
    hash_key = load_hash_key(config.hashing, master=spark.sparkContext.master)
    writer = OutputWriter(spark, out_dir, run_id, deletion_vectors=config.outputs.deletion_vectors)
    config_json = json.dumps(_plain(config), sort_keys=True)
    parallel = config.outputs.parallel_writes
    # The run's "running" row is written while the inputs are read (the session's first Delta
    # commit: some 10 s of a cold JVM at 1,000,000 accounts); joined before the next write.
    started = Background(
        lambda: writer.record_run(
            RunRecord(run_id=run_id, started_at=started_at, status="running", config=config_json)
        ),
        name="runs_row",
        enabled=parallel > 1,
    )
    inputs: LoadedInputs | None = None
    early_fingerprints: Background | None = None

    def finish(status: str, **details: Any) -> None:
        """Record this run's final row in `runs`, with what is known by now."""
        started.wait()  # the final row replaces the "running" one
        writer.record_run(
            RunRecord(
                run_id=run_id,
                started_at=started_at,
                finished_at=datetime.now(UTC),
                status=status,
                table_versions=writer.table_versions,
                input_counts=None
                if inputs is None
                else {name: dataclasses.asdict(n) for name, n in inputs.counts.items()},
                config=config_json,
                **details,
            )
        )

    try:
        with tracker:
            tracker.log_params(_plain(config))
            tracker.log_params({"run_id": run_id, "input": str(args.input)})
            with clock.stage("read_inputs"):
                raw = open_inputs(spark, args.input)

            def checked(only: Reread | None = None) -> LoadedInputs:
                """The inputs checked (`load_inputs`): all, or the rows `only` names."""
                with clock.stage("read_inputs"):
                    return load_inputs(
                        spark,
                        raw,
                        run_id=run_id,
                        broadcast_ids=config.inputs.broadcast_unknown_ids,
                        only=only,
                        workers=parallel,
                    )

            incremental = args.incremental or config.incremental
            if incremental:
                # An incremental run fingerprints every row as read, whatever base it finds:
                # started now, the pass over the inputs overlaps the opening of the previous
                # run's tables (their Delta logs and the `runs` lookups: some 7 s of small
                # jobs and driver work at 1,000,000 accounts).
                early_fingerprints = Background(
                    partial(_read_fingerprints, spark, raw, hash_key, clock),
                    name="fingerprints",
                    enabled=parallel > 1,
                )
            previous_entities, previous_run = previous_state(spark, out_dir, run_id)
            base = None
            if incremental:
                base = _incremental_base(
                    spark, out_dir, run_id, config, previous_entities, files_dir=files_dir
                )
            if base is not None:
                # Before any frame reads them: the tables it MERGEs into hold the base's rows
                # again if a run that did not succeed wrote to them since.
                with clock.stage("roll_back"):
                    _roll_back(writer, base.versions, workers=parallel)
            changes = None
            per_change: dict[str, int] = {}  # accounts of each kind of change
            if base is not None:
                # The rows as read are fingerprinted first, so that only those of the new and
                # changed accounts (and of accounts with a row quarantined before) are
                # checked, then standardised: at 1,000,000 accounts checking every row took
                # 85 s and fingerprinting the accepted ones 21 s.
                assert early_fingerprints is not None  # started for every incremental run
                fingerprints = early_fingerprints.result()
                with raw.reading():
                    seen = clock.materialise(
                        "accounts_seen", account_changes(fingerprints, base.state)
                    )
                per_seen = change_counts(seen)
                flagged_before = base.state.where(F.col(QUARANTINED_ROWS) > 0).select(c.ACCOUNT_ID)
                unchanged = accounts_with(seen, UNCHANGED)
                again = clock.materialise(
                    "read_again",
                    accounts_with(seen, NEW, CHANGED).unionByName(
                        flagged_before.join(unchanged, on=c.ACCOUNT_ID, how="left_semi")
                    ),
                )
                inputs = checked(
                    Reread(
                        accounts=again,
                        kept=unchanged,
                        broadcast=few_touched(per_seen, config.resolution.blocking),
                    )
                )
                changes = clock.materialise(
                    "account_changes",
                    accepted_changes(seen, inputs.accepted[c.ACCOUNTS].select(c.ACCOUNT_ID)),
                )
                per_change = change_counts(changes)
                if not _same_hub_cap(per_change, config.resolution.blocking):
                    base, changes = None, None
                    inputs.release()
            if base is None:
                inputs = checked()
            started.result()
            quality_dir = files_dir / "_quality" / run_id
            checks = QualityRun(run_id)
            docs = checks if config.quality.data_docs else None
            loaded = inputs

            def input_checks() -> QualityReport:
                with clock.stage("quarantine"):
                    writer.replace_run_rows("quarantine", loaded.quarantine)
                with clock.stage("quality_inputs"):
                    return validate_inputs(loaded.account_ids, config=config.quality, run=checks)

            def require_inputs(report: QualityReport) -> None:
                tracker.log_text(report.to_json(), "quality/inputs.json")
                _require_quality(report, quality_dir, checks=docs, tracker=tracker)

            if base is None:
                require_inputs(input_checks())
                # After the checks: a file that cannot be read fails them first, naming it (a
                # run that looked for a base and found none has them read already).
                every = (
                    _fingerprints(spark, raw, hash_key)
                    if early_fingerprints is None
                    else early_fingerprints.result()
                )
                fingerprints = clock.materialise(
                    "fingerprints",
                    every.join(inputs.account_ids, on=c.ACCOUNT_ID, how="left_semi"),
                )
            accepted = dict(inputs.accepted)
            if base is not None and changes is not None:
                touched = accounts_with(changes, NEW, CHANGED)
                few = few_touched(per_change, config.resolution.blocking)
                if few:
                    # Few: the inputs are only scanned for them. A shuffled join moved and
                    # sorted the 1,000,000 accounts' rows to pick 12,000 (15 s), and the
                    # standardised rows came out in 224 small partitions, each a Python
                    # worker's round trip in every later pass (12 s in the key extraction).
                    touched = F.broadcast(touched)
                for name in (c.ACCOUNTS, c.PAYMENT_INSTRUMENTS, c.LOGISTICS):
                    accepted[name] = accepted[name].join(touched, c.ACCOUNT_ID, "left_semi")
                    if few:
                        # In as many partitions as cores: at 1,000,000 accounts the 11,000
                        # touched accounts' rows came in 9 partitions, each a round of the
                        # standardisation's Python workers (0.8 s a task).
                        accepted[name] = accepted[name].coalesce(
                            spark.sparkContext.defaultParallelism
                        )
            # Materialised once each: blocking reads them in several branches (payment keys,
            # logistics addresses, label phones), each of which would redo the hashing and
            # the phone and address standardisation (three passes over the logistics at
            # 1,000,000 accounts, 10 minutes of the blocking stage on 2 cores). Independent of
            # each other (and, in an incremental run, of the input checks): side by side.
            standardised: list[tuple[str, Callable[[], Any]]] = [
                (
                    "standardise_accounts",
                    lambda: clock.materialise(
                        "standardise_accounts",
                        standardise_accounts(
                            accepted[c.ACCOUNTS], hash_key=hash_key, config=config.standardise
                        ),
                    ),
                ),
                (
                    "standardise_payments",
                    lambda: clock.materialise(
                        "standardise_payments",
                        standardise_payments(accepted[c.PAYMENT_INSTRUMENTS], hash_key=hash_key),
                    ),
                ),
                (
                    "standardise_logistics",
                    lambda: clock.materialise(
                        "standardise_logistics",
                        standardise_logistics(accepted[c.LOGISTICS], config=config.standardise),
                    ),
                ),
            ]
            if base is not None:
                standardised.append(("input_checks", input_checks))
            done = run_together(standardised, workers=parallel)
            accounts_std, payments_std, logistics_std = done[:3]
            if base is not None:
                require_inputs(done[3])
            saved_model = (
                base.model if base is not None else load_model(config.resolution.model.load_from)
            )
            pretrained = (
                load_pretrained(config.resolution.model.pretrained)
                if saved_model is None and config.resolution.model.kind == "fellegi_sunter"
                else None
            )
            if base is not None and changes is not None and previous_entities is not None:
                resolution: Resolution = resolve_incremental(
                    accounts_std,
                    payments_std,
                    logistics_std,
                    state=base.state,
                    changes=changes,
                    previous=previous_entities,
                    previous_edges=base.match_edges,
                    config=config.resolution,
                    checkpoint=clock.materialise,
                    run_id=run_id,
                    model=saved_model,
                    previous_shared=base.shared,
                    per_change=per_change,
                )
            else:
                resolution = resolve(
                    accounts_std,
                    payments_std,
                    logistics_std,
                    config=config.resolution,
                    model=saved_model,
                    checkpoint=clock.materialise,
                    run_id=run_id,
                    previous=previous_entities,
                    pretrained=pretrained,
                )
            model_path = (
                None
                if resolution.model is None
                else _save_model(files_dir, run_id, resolution, tracker)
            )
            tracker.log_params({"model_source": resolution.model_source})
            # The entity network and leads read only this run's frames: computed alongside the
            # output checks and writes, written once those are done.
            investigation = Background(
                lambda: _investigation(resolution, inputs, config=config, clock=clock),
                name="investigation",
                enabled=parallel > 1,
            )
            try:
                with clock.stage("quality_outputs"):
                    output_report = validate_outputs(
                        accepted_accounts=inputs.account_ids,
                        entity_membership=resolution.entity_membership,
                        entities=resolution.entities,
                        match_edges=resolution.match_edges,
                        config=config.quality,
                        previous=previous_run,
                        run=checks,
                        scope=_checked_scope(resolution, config.quality),
                    )
                    tracker.log_text(output_report.to_json(), "quality/outputs.json")
                    _require_quality(output_report, quality_dir, checks=docs, tracker=tracker)
                with clock.stage("write_outputs"):
                    run_together(
                        _output_writes(
                            writer,
                            resolution,
                            inputs,
                            fingerprints,
                            accounts_std=accounts_std,
                            logistics_std=logistics_std,
                            run_id=run_id,
                        ),
                        workers=parallel,
                    )
                    _check_written(
                        spark,
                        out_dir,
                        writer.table_versions,
                        {name: clock.rows[name] for name in _RECONCILED_TABLES},
                    )
                entity_links, entity_leads = investigation.result()
            finally:
                investigation.wait()
            with clock.stage("write_investigation"):
                run_together(
                    [
                        ("entity_links", lambda: writer.replace("entity_links", entity_links)),
                        ("entity_leads", lambda: writer.replace("entity_leads", entity_leads)),
                    ],
                    workers=parallel,
                )
            top_leads = entity_leads.orderBy(LEAD_RANK).limit(5).collect()

            with clock.stage("metrics"):
                sizes = _entity_size_metrics(resolution.entities)
                largest = (
                    resolution.entities.orderBy(F.desc(c.ACCOUNT_COUNT), c.ENTITY_ID)
                    .limit(5)
                    .collect()
                )
                truth = None if args.truth is None else read_truth(spark, args.truth)
                evaluation = None
                lead_hits = None
                if truth is not None:
                    evaluation = evaluate(resolution.entity_membership, truth)
                    lead_hits = lead_precision(
                        entity_leads,
                        resolution.entity_membership,
                        truth,
                        inputs.accepted[c.ENFORCEMENT_SIGNALS],
                        top=LEADS_CHECKED,
                    )
                blocking = None
                if resolution.incremental is None:
                    blocking = blocking_diagnostics(
                        resolution.candidate_pairs,
                        accounts_std,
                        truth=truth,
                        pairs_by_rule=summarise_pairs_by_attribute(resolution.candidate_pairs),
                        clustering=config.resolution.clustering,
                    )
            with clock.stage("charts"):
                _log_charts(
                    resolution,
                    truth,
                    threshold=config.resolution.model.threshold,
                    folder=files_dir / "_charts" / run_id,
                    tracker=tracker,
                )
            metrics: dict[str, float] = {}
            for name, counts in inputs.counts.items():
                metrics.update(
                    {
                        f"input.{name}.read": counts.read,
                        f"input.{name}.accepted": counts.accepted,
                        f"input.{name}.quarantined": counts.quarantined,
                    }
                )
            metrics.update({f"rows.{name}": float(n) for name, n in clock.rows.items()})
            metrics.update({f"seconds.{name}": s for name, s in clock.seconds.items()})
            metrics.update({f"span.{name}": s for name, s in clock.spans.items()})
            metrics.update(sizes)
            if blocking is not None:
                metrics.update(blocking.as_metrics())
            metrics.update(_incremental_metrics(resolution, clock.rows))
            metrics.update(_training_metrics(resolution))
            metrics.update(_cluster_metrics(resolution))
            if evaluation is not None:
                metrics.update(evaluation.as_metrics())
            if lead_hits is not None:
                metrics[f"leads.top{LEADS_CHECKED}_true_operators_with_signals"] = lead_hits[0]
                metrics[f"leads.top{LEADS_CHECKED}_looked_at"] = lead_hits[1]
            tracker.log_metrics(metrics)
            output_counts = {
                "entity_membership": clock.rows["entity_membership"],
                "entities": clock.rows["entities"],
                "match_edges": clock.rows["match_edges"],
                "hub_values": clock.rows["hub_values"],
                "largest_entity": int(sizes["largest_entity"]),
                "entity_changes": clock.rows["entity_changes"],
                "entity_splits": clock.rows.get("entity_splits", 0),
                "entity_links": clock.rows["entity_links"],
                "entity_leads": clock.rows["entity_leads"],
                "quarantine": sum(counts.quarantined for counts in inputs.counts.values()),
            }
            with clock.stage("maintenance"):
                writer.describe_tables(
                    {
                        "delta.logRetentionDuration": config.outputs.log_retention,
                        "delta.deletedFileRetentionDuration": config.outputs.deleted_file_retention,
                    },
                    workers=parallel,
                )
                succeeded_before = _succeeded_runs(spark, out_dir, run_id)
                if (succeeded_before + 1) % config.outputs.maintenance_every_runs == 0:
                    writer.maintain(
                        compact_min_files=config.outputs.compact_min_files,
                        vacuum=config.outputs.vacuum,
                    )
                else:
                    logger.info(
                        "maintenance (OPTIMIZE, VACUUM) runs every %d succeeded runs; this is "
                        "run %d",
                        config.outputs.maintenance_every_runs,
                        succeeded_before + 1,
                    )
            finish("succeeded", output_counts=output_counts)
            print(
                _summary(
                    out_dir,
                    run_id,
                    inputs,
                    sizes,
                    largest,
                    evaluation,
                    tracker,
                    model_path=model_path,
                    blocking=blocking,
                    leads=top_leads,
                    lead_hits=lead_hits,
                )
            )
    except BaseException as error:
        try:
            finish("failed", error=f"{type(error).__name__}: {error}"[:2000])
        except Exception as recording:  # the run's own error is what to report
            # A failed run whose `runs` row cannot be written either (a full disk, a lost
            # store) still ends with its own error and exit code, not the recording's.
            logger.error("could not record the failed run in runs: %s", recording)
        raise
    finally:
        if early_fingerprints is not None:
            early_fingerprints.wait()  # a run that failed before joining it
        if temporary_files:
            shutil.rmtree(files_dir, ignore_errors=True)
        try:
            clock.release()
            if inputs is not None:
                inputs.release()
            released = release_persisted(spark, persisted_before)
            logger.debug("released %d persisted RDDs of the run", released)
            removed = remove_checkpoints(spark)
            if removed is not None:
                logger.info("removed the run's checkpoints (%s)", removed)
        except Exception as error:  # a stopped session must not hide the run's own error
            logger.warning("could not release the run's persisted data: %s", error)
    return 0


def _checked_scope(resolution: Resolution, config: QualityConfig) -> WriteScopes | None:
    """The rows the output checks read (`validate_outputs(scope=...)`): an incremental run's
    write scopes unless `quality.incremental_outputs` is `whole`; None (every row) otherwise.

    At 1,000,000 accounts the whole tables took 20 to 23 task-seconds to check (coverage,
    uniqueness and member counts over 1,000,000 membership rows), the rows a 1% change wrote
    and the whole-table counts 12; every other row is the previous run's, checked by it."""
    if resolution.incremental is None or config.incremental_outputs == WHOLE_TABLES:
        return None
    return resolution.incremental.scopes


def _output_writes(
    writer: OutputWriter,
    resolution: Resolution,
    inputs: LoadedInputs,
    fingerprints: DataFrame,
    *,
    accounts_std: DataFrame,
    logistics_std: DataFrame,
    run_id: str,
) -> list[tuple[str, Callable[[], int]]]:
    """The writes of the resolved tables, one `(table, write)` each, independent of each
    other (`jobs.concurrency.run_together`), the longest first. A full run overwrites the
    tables; an incremental run MERGEs its changes into them, within its `WriteScopes`."""
    edges = resolution.match_edges.select(
        c.ACCOUNT_ID_L,
        c.ACCOUNT_ID_R,
        c.MATCH_PROBABILITY,
        c.MATCH_WEIGHT,
        _informative_evidence(resolution),
    )
    # The keys as extracted (desk phones restored): an account's state changes only with its
    # own input, so an incremental run rewrites only the touched (whose keys it extracted; its
    # `blocking_keys` may be the shared ones only).
    extracted_keys = (
        resolution.incremental.keys
        if resolution.incremental is not None
        else restore_desk_phones(
            resolution.blocking_keys.select(c.ACCOUNT_ID, c.ATTRIBUTE, c.VALUE_KEY)
        )
    )
    # The profiles the comparisons read, kept for incremental runs (null with the evidence
    # score, which reads none).
    stored_type = profile_type(profile_fields(accounts_std, logistics_std))
    writes: list[tuple[str, Callable[[], int]]]
    if resolution.incremental is None:
        state = state_rows(
            fingerprints,
            extracted_keys,
            resolution.profiles,
            stored_type=stored_type,
            quarantined=inputs.quarantined_accounts,
        )
        writes = [
            (STATE_TABLE, lambda: writer.replace(STATE_TABLE, state)),
            ("match_edges", lambda: writer.replace("match_edges", edges)),
            (
                "entity_membership",
                lambda: writer.replace("entity_membership", resolution.entity_membership),
            ),
            ("entities", lambda: writer.replace("entities", resolution.entities)),
        ]
    else:
        scopes = resolution.incremental.scopes
        touched = F.broadcast(scopes.state) if scopes.broadcast else scopes.state
        merge = partial(writer.merge, broadcast_scope=scopes.broadcast)
        state = state_rows(
            fingerprints.join(touched, on=c.ACCOUNT_ID, how="left_semi"),
            extracted_keys.join(touched, on=c.ACCOUNT_ID, how="left_semi"),
            resolution.profiles,
            stored_type=stored_type,
            quarantined=inputs.quarantined_accounts,
        )
        writes = [
            (
                "match_edges",
                lambda: merge(
                    "match_edges", edges, [c.ACCOUNT_ID_L, c.ACCOUNT_ID_R], scope=scopes.edges
                ),
            ),
            # Every touched account's state row changed (its fingerprint did).
            (
                STATE_TABLE,
                lambda: merge(STATE_TABLE, state, [c.ACCOUNT_ID], scope=touched, compare=False),
            ),
            (
                "entity_membership",
                lambda: merge(
                    "entity_membership",
                    resolution.entity_membership,
                    [c.ACCOUNT_ID],
                    scope=scopes.accounts,
                ),
            ),
            (
                "entities",
                lambda: merge(
                    "entities", resolution.entities, [c.ENTITY_ID], scope=scopes.entities
                ),
            ),
        ]
    # What the next incremental run updates instead of recounting every key.
    shared = shared_rows(resolution.blocking_keys)
    writes.insert(1, (SHARED_TABLE, lambda: writer.replace(SHARED_TABLE, shared)))
    writes.append(("hub_values", lambda: writer.replace("hub_values", resolution.hub_values)))
    changes = resolution.entity_changes.withColumn(c.RUN_ID, F.lit(run_id))
    writes.append(("entity_changes", lambda: writer.replace_run_rows("entity_changes", changes)))
    if resolution.entity_splits is not None:
        splits = resolution.entity_splits.withColumn(c.RUN_ID, F.lit(run_id))
        writes.append(("entity_splits", lambda: writer.replace_run_rows("entity_splits", splits)))
    return writes


def _investigation(
    resolution: Resolution, inputs: LoadedInputs, *, config: JobConfig, clock: StageClock
) -> tuple[DataFrame, DataFrame]:
    """`entity_links` and `entity_leads` of the run, materialised."""
    found = investigate(
        resolution.entity_membership,
        resolution.blocking_keys,
        inputs.accepted[c.ENFORCEMENT_SIGNALS],
        resolution.match_edges,
        config=config.resolution,
        entities=resolution.entities,
    )
    return (
        clock.materialise("entity_links", found.entity_links),
        clock.materialise("entity_leads", found.entity_leads),
    )


def _read_fingerprints(
    spark: SparkSession, raw: RawInputs, key: bytes, clock: StageClock
) -> DataFrame:
    """`_fingerprints` materialised (the `fingerprints` stage), a file that cannot be read
    named (`RawInputs.reading`)."""
    with raw.reading():
        return clock.materialise("fingerprints", _fingerprints(spark, raw, key))


def _fingerprints(spark: SparkSession, raw: RawInputs, key: bytes) -> DataFrame:
    """`input_fingerprints` of every account id in the inputs as read."""
    return input_fingerprints(
        raw.hashed(spark, c.ACCOUNTS),
        raw.hashed(spark, c.PAYMENT_INSTRUMENTS),
        raw.hashed(spark, c.LOGISTICS),
        key=key,
    )


def _succeeded_runs(spark: SparkSession, out_dir: Location, run_id: str) -> int:
    """How many other runs in `out_dir` succeeded."""
    runs_path = str(out_dir / "runs")
    if not DeltaTable.isDeltaTable(spark, runs_path):
        return 0
    runs = spark.read.format("delta").load(runs_path)
    return runs.where((F.col("status") == "succeeded") & (F.col(c.RUN_ID) != run_id)).count()


# The `account_state` columns added since incremental runs began, with what each keeps: a base
# without one resolves in full.
_STATE_COLUMNS_ADDED = (
    (PROFILE, "kept profiles"),
    (KEY_PROBES, "key probes"),
    (QUARANTINED_ROWS, "fingerprints of the inputs as read"),
)


def _incremental_base(
    spark: SparkSession,
    out_dir: Location,
    run_id: str,
    config: JobConfig,
    previous: PreviousEntities | None,
    *,
    files_dir: Path,
) -> IncrementBase | None:
    """The base an incremental run continues, or None (with the reason logged) when it has to
    resolve in full.

    With `model.kind: fellegi_sunter` the run scores with a fixed model, as every pair it keeps
    was scored: `model.load_from` if set, else the model the base run used (FILES_DIR/_models/
    RUN_ID/model.json). A base run without one used the evidence score and kept no profiles,
    and a base model whose comparisons differ from the configured ones compared its pairs
    otherwise: either way the run resolves in full (and trains)."""
    base = increment_base(spark, out_dir, run_id)
    if base is None or previous is None:
        logger.warning(
            "incremental run asked for, but no succeeded run in %s left an account_state: "
            "resolving in full",
            out_dir,
        )
        return None
    for column, kept in _STATE_COLUMNS_ADDED:
        if column not in base.state.columns:
            logger.warning(
                "incremental run asked for, but the account_state of run %s predates %s: "
                "resolving in full",
                base.run_id,
                kept,
            )
            return None
    changed = [] if base.config is None else changed_settings(base.config, _plain(config))
    if changed:
        logger.warning(
            "incremental run asked for, but settings that decide the matches differ from those "
            "of run %s, whose entities it would continue (%s): resolving in full",
            base.run_id,
            "; ".join(changed),
        )
        return None
    if config.resolution.model.kind == "fellegi_sunter":
        model = _continued_model(
            config, base.run_id, files_dir / "_models" / base.run_id / "model.json"
        )
        if model is None:
            return None
        base = dataclasses.replace(base, model=model)
    logger.info("incremental run: continuing run %s", base.run_id)
    return base


# The settings an incremental run may change against its base run: what they decide is redone
# over the whole population every run (links, leads), or they change how fast, not what, it
# resolves. The model's training settings are here because an incremental run does not train
# (its Fellegi-Sunter model is the base run's, checked by `_continued_model`). Every other
# setting of `standardise` and `resolution` decides keys, pairs, scores or entities, which an
# incremental run keeps for the accounts it does not touch.
_SETTINGS_FREE_TO_CHANGE = (
    "resolution.network",
    "resolution.leads",
    "resolution.clustering",
    "resolution.blocking.incremental_rescore",
    "resolution.blocking.broadcast_touched_accounts",
    "resolution.blocking.broadcast_region_accounts",
    "resolution.cluster_control.lineage_cut",
    "resolution.cluster_control.grouped_relabel_max_accounts",
    "resolution.model.load_from",
    "resolution.model.pretrained",
    "resolution.model.training",
    "resolution.model.training_sessions",
    "resolution.model.min_training_accounts",
    "resolution.model.random_pairs",
    "resolution.model.seed",
    "resolution.model.u_smoothing",
    "resolution.model.em_max_iterations",
    "resolution.model.em_tolerance",
    "resolution.model.initial_prior",
)
_SETTINGS_THAT_DECIDE = ("standardise", "resolution")


def changed_settings(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The settings (dotted names, `before -> now`) that decide an incremental run's keys,
    pairs, scores or entities and differ between two configurations as `runs` holds them
    (`_plain`): under `standardise` and `resolution`, but for `_SETTINGS_FREE_TO_CHANGE`.
    A setting only one side holds (a config written before the setting existed) counts as
    changed: the run then resolves in full, once.

    >>> changed_settings(
    ...     {"resolution": {"model": {"threshold": 0.9, "seed": 1}}, "spark": {"master": "a"}},
    ...     {"resolution": {"model": {"threshold": 0.95, "seed": 2}}, "spark": {"master": "b"}},
    ... )
    ['resolution.model.threshold: 0.9 -> 0.95']
    """

    def settings(config: Mapping[str, Any]) -> dict[str, Any]:
        # Keys sorted as the `runs` row stores them, so that a sequence of mappings (the
        # model's comparisons) flattens to the same text on both sides.
        decide = {section: config.get(section, {}) for section in _SETTINGS_THAT_DECIDE}
        flat = flatten(json.loads(json.dumps(decide, sort_keys=True)))
        return {
            name: value
            for name, value in flat.items()
            if not any(
                name == free or name.startswith(f"{free}.") for free in _SETTINGS_FREE_TO_CHANGE
            )
        }

    old, new = settings(before), settings(now)
    missing = "(not set)"
    return [
        f"{name}: {json.dumps(old.get(name, missing))} -> {json.dumps(new.get(name, missing))}"
        for name in sorted(old.keys() | new.keys())
        if old.get(name, missing) != new.get(name, missing)
    ]


_RECONCILED_TABLES = ("entity_membership", "entities", "match_edges")


def _check_written(
    spark: SparkSession, out_dir: Location, versions: Mapping[str, int], rows: Mapping[str, int]
) -> None:
    """Raise `ResolutionError` unless each table of `rows` holds, at the Delta version this run
    wrote (`versions`), as many rows as the run resolved: what the next run and every reader
    take for this run's result is what it checked. (A MERGE changes only its scope; rows left
    in the table by anything else would show here. Delta counts from its log.)"""
    for table, expected in rows.items():
        path = str(out_dir / table)
        written = (
            spark.read.format("delta").option("versionAsOf", versions[table]).load(path).count()
        )
        if written != expected:
            raise ResolutionError(
                f"{path}: version {versions[table]} holds {written:,} rows, but this run resolved "
                f"{expected:,}: the table was changed by something other than this run's write"
            )


def _roll_back(writer: OutputWriter, versions: Mapping[str, int], *, workers: int) -> None:
    """`OutputWriter.roll_back` of each table an incremental run MERGEs into, to the version
    the base run recorded (`versions`), `workers` tables at a time."""
    run_together(
        [
            (table, partial(writer.roll_back, table, versions[table]))
            for table in MERGED_TABLES
            if table in versions
        ],
        workers=workers,
    )


def _continued_model(
    config: JobConfig, base_run_id: str, base_model: Path
) -> FellegiSunterModel | None:
    """The model an incremental Fellegi-Sunter run scores with: `model.load_from` if set, else
    the one the base run saved at `base_model`. None, with the reason logged, when the run has
    to resolve in full: the base run saved no model, or the comparisons changed since it (its
    pairs were compared otherwise, so none of them can be kept)."""
    if not base_model.is_file():
        logger.warning(
            "incremental run asked for, but run %s left no model at %s (it used the evidence "
            "score, or its files are elsewhere: outputs.files_dir): resolving in full",
            base_run_id,
            base_model,
        )
        return None
    pinned = config.resolution.model.load_from
    model = load_model(pinned or str(base_model))
    if model is not None and not pinned:
        try:
            check_model(model, config.resolution.model)
        except ConfigError as error:
            logger.warning(
                "incremental run asked for, but the model of run %s does not fit the "
                "configured comparisons (%s): resolving in full, which trains a new model",
                base_run_id,
                error,
            )
            return None
    return model


def _same_hub_cap(per_change: dict[str, int], blocking: BlockingConfig) -> bool:
    """Whether the population keeps its hub cap (`BlockingConfig.hub_cap`) from the previous
    run to this one (`per_change`: the accounts of each kind of change, `change_counts`);
    logs why the run resolves in full when it does not.

    Under 10,000 accounts (with the defaults) the cap follows the population's size. An
    incremental run re-pairs only the accounts around the changed ones, so a value that
    crossed a moved cap without changing holders would keep its old pairs (or lack new
    ones): such a run resolves in full instead."""
    before, now = population_sizes(per_change)
    cap_before, cap_now = blocking.hub_cap(before), blocking.hub_cap(now)
    if cap_before != cap_now:
        logger.warning(
            "incremental run asked for, but the hub cap moves with the population "
            "(%d -> %d accounts: cap %d -> %d accounts, blocking.hub_share): resolving in full",
            before,
            now,
            cap_before,
            cap_now,
        )
    return cap_before == cap_now


def _latest_succeeded_run(spark: SparkSession, out_dir: Location, run_id: str) -> Row | None:
    """The `runs` row of the latest succeeded run in `out_dir` other than `run_id`."""
    runs_path = out_dir / "runs"
    if not DeltaTable.isDeltaTable(spark, str(runs_path)):
        return None
    return (
        spark.read.format("delta")
        .load(str(runs_path))
        .where((F.col("status") == "succeeded") & (F.col(c.RUN_ID) != run_id))
        .orderBy(F.desc("finished_at"), F.desc(c.RUN_ID))
        .select(c.RUN_ID, "table_versions", "output_counts", "config")
        .first()
    )


@dataclass(frozen=True)
class IncrementBase:
    """What an incremental run starts from: the latest succeeded run's `account_state` and
    `match_edges`, read at the Delta versions its `runs` row names."""

    run_id: str
    state: DataFrame
    match_edges: DataFrame
    model: FellegiSunterModel | None = None  # the model to score with (fellegi_sunter)
    # Its `shared_keys` (`resolution.shared_keys`); None when it wrote none (an earlier
    # version), and the holder counts are then counted again.
    shared: DataFrame | None = None
    # The Delta version of each table its `runs` row names.
    versions: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # Its configuration as its `runs` row holds it (`_plain`); None for a row without one.
    config: Mapping[str, Any] | None = None


def increment_base(spark: SparkSession, out_dir: Location, run_id: str) -> IncrementBase | None:
    """The base of an incremental run, or None when no succeeded run wrote an `account_state`
    (then the run resolves in full)."""
    row = _latest_succeeded_run(spark, out_dir, run_id)
    if row is None:
        return None
    versions = json.loads(row["table_versions"] or "{}")
    if not {STATE_TABLE, "match_edges"} <= set(versions):
        return None

    def read(table: str) -> DataFrame:
        return (
            spark.read.format("delta")
            .option("versionAsOf", versions[table])
            .load(str(out_dir / table))
            .drop(c.RUN_ID)
        )

    return IncrementBase(
        run_id=row[c.RUN_ID],
        state=read(STATE_TABLE),
        match_edges=read("match_edges"),
        shared=read(SHARED_TABLE) if SHARED_TABLE in versions else None,
        versions={name: int(version) for name, version in versions.items()},
        config=json.loads(row["config"]) if row["config"] else None,
    )


def previous_state(
    spark: SparkSession, out_dir: Location, run_id: str
) -> tuple[PreviousEntities | None, PreviousRun | None]:
    """The latest succeeded run in `out_dir` other than `run_id`: its `entity_membership` (the
    Delta version its `runs` row names, so a later failed run's half-writes are never read)
    and every entity id issued so far (`entity_changes`), for stable ids; its entity counts,
    for the quality checks against it. (None, None) on a first run."""
    row = _latest_succeeded_run(spark, out_dir, run_id)
    if row is None:
        return None, None
    versions = json.loads(row["table_versions"] or "{}")
    counts = json.loads(row["output_counts"] or "{}")
    previous_run = None
    if "entities" in counts and "largest_entity" in counts:
        previous_run = PreviousRun(
            run_id=row[c.RUN_ID],
            entities=int(counts["entities"]),
            largest_entity=int(counts["largest_entity"]),
        )
    if "entity_membership" not in versions:
        return None, previous_run
    membership = (
        spark.read.format("delta")
        .option("versionAsOf", versions["entity_membership"])
        .load(str(out_dir / "entity_membership"))
        .select(c.ACCOUNT_ID, c.ENTITY_ID)
    )
    known_ids = None
    changes_path = out_dir / "entity_changes"
    if DeltaTable.isDeltaTable(spark, str(changes_path)):
        known_ids = (
            spark.read.format("delta")
            .load(str(changes_path))
            .where(F.col(c.RUN_ID) != run_id)
            .select(c.ENTITY_ID)
            .unionByName(membership.select(c.ENTITY_ID))
            .distinct()
        )
    logger.info(
        "continuing run %s: entity_membership version %s",
        row[c.RUN_ID],
        versions["entity_membership"],
    )
    return PreviousEntities(membership=membership, known_ids=known_ids), previous_run


def _log_charts(
    resolution: Resolution,
    truth: DataFrame | None,
    *,
    threshold: float,
    folder: Path,
    tracker: RunTracker,
) -> None:
    """Match weight distribution, entity sizes and (with truth) precision and recall against
    the threshold, as PNG files under `folder`, logged to MLflow under charts/."""
    paths = [
        charts.write_weight_distribution(
            weight_histogram(resolution.scored_pairs, truth=truth),
            folder / "match_weight_distribution.png",
        ),
        charts.write_entity_sizes(
            entity_size_histogram(resolution.entity_membership, truth),
            folder / "entity_sizes.png",
        ),
    ]
    if truth is not None:
        curve = threshold_curve(resolution.scored_pairs, truth, thresholds=CURVE_THRESHOLDS)
        paths.append(
            charts.write_threshold_curve(
                curve, folder / "precision_recall_threshold.png", threshold=threshold
            )
        )
        tracker.log_text(curve.to_csv(index=False), "charts/precision_recall_threshold.csv")
    for path in paths:
        tracker.log_chart(path)


def load_model(path: str | None, *, setting: str = "model.load_from") -> FellegiSunterModel | None:
    """The saved model at `path` (a `model.json` an earlier run wrote), or None to train;
    errors name the `setting` that gave the path."""
    if path is None:
        return None
    model_file = Path(path)
    if not model_file.is_file():
        raise ConfigError(f"{setting}: {model_file}: no such file")
    try:
        data = json.loads(model_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{setting}: {model_file}: not a model JSON file: {error}") from error
    model = FellegiSunterModel.from_dict(data)
    if setting == "model.load_from":
        logger.info("scoring with the saved model %s", model_file)
    else:
        logger.info("read the model %s (%s)", model_file, setting)
    return model


def load_pretrained(path: str | None) -> FellegiSunterModel | None:
    """The model a population under `model.min_training_accounts` is scored with: the one at
    `model.pretrained` (`path`; an error when it is missing), else the one the project ships,
    `PRETRAINED_MODEL`. When that is not there (the job run from a copy without conf/models),
    None with a warning: such a population is trained on."""
    if path is not None:
        return load_model(path, setting="model.pretrained")
    if not PRETRAINED_MODEL.is_file():
        logger.warning(
            "no pretrained model at %s: a population under model.min_training_accounts will "
            "be trained on (set model.pretrained to a model.json)",
            PRETRAINED_MODEL,
        )
        return None
    return load_model(str(PRETRAINED_MODEL), setting="model.pretrained")


def _save_model(files_dir: Path, run_id: str, resolution: Resolution, tracker: RunTracker) -> Path:
    """Write the model used to FILES_DIR/_models/RUN_ID/model.json (FILES_DIR: OUT_DIR when
    local, see `outputs.files_dir`) and log it to MLflow."""
    assert resolution.model is not None
    folder = files_dir / "_models" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.json"
    path.write_text(json.dumps(resolution.model.to_dict(), indent=2) + "\n", encoding="utf-8")
    tracker.log_dict(resolution.model.to_dict(), "model/model.json")
    tracker.log_text(resolution.model.describe() + "\n", "model/model.txt")
    if resolution.training is not None:
        sessions = [
            {
                "rules": list(rules),
                "pairs": pairs,
                "iterations": None if result is None else result.iterations,
                "converged": None if result is None else result.converged,
                "history": [] if result is None else list(result.history),
            }
            for rules, pairs, result in resolution.training.sessions
        ]
        tracker.log_dict({"sessions": sessions}, "model/em_sessions.json")
    logger.info("model written to %s", path)
    return path


def _informative_evidence(resolution: Resolution) -> Column:
    """Why the pair matched: its evidence, without the comparisons that had no information."""
    if resolution.model is None:
        return F.col(c.EVIDENCE)
    return F.filter(c.EVIDENCE, lambda e: e.getField("level") != F.lit("null")).alias(c.EVIDENCE)


def _incremental_metrics(resolution: Resolution, rows: dict[str, int]) -> dict[str, float]:
    """An incremental run's accounts per change, affected and recomputed accounts, new edges
    (the last three as counted when their stages were materialised: `rows`)."""
    parts = resolution.incremental
    if parts is None:
        return {}
    metrics = {
        f"incremental.accounts_{row[CHANGE]}": float(row["count"])
        for row in parts.changes.groupBy(CHANGE).count().collect()
    }
    metrics["incremental.affected_accounts"] = float(rows["affected_accounts"])
    metrics["incremental.rescored_accounts"] = float(parts.affected.where(RESCORED).count())
    metrics["incremental.region_accounts"] = float(rows["affected_region"])
    metrics["incremental.new_edges"] = float(rows["new_match_edges"])
    # 1 when the holder counts were updated from the previous run's shared keys, 0 when the
    # population's keys were counted again (`resolution.shared_keys`).
    metrics["incremental.holder_counts_updated"] = float(parts.holder_counts == "updated")
    if "recounted_values" in rows:
        metrics["incremental.recounted_values"] = float(rows["recounted_values"])
    return metrics


def _cluster_metrics(resolution: Resolution) -> dict[str, float]:
    """Cluster control's statistics and the entity changes per type, as metrics."""
    metrics: dict[str, float] = {}
    if resolution.cluster_statistics is not None:
        row = resolution.cluster_statistics.first()
        if row is not None:
            for name, value in row.asDict().items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    metrics[f"clusters.{name}"] = float(value)
    if resolution.entity_changes is not None:
        for row in resolution.entity_changes.groupBy("change_type").count().collect():
            metrics[f"entity_changes.{row['change_type']}"] = float(row["count"])
    return metrics


def _training_metrics(resolution: Resolution) -> dict[str, float]:
    metrics = {
        "model.pretrained": float(resolution.model_source == "pretrained"),
        "accounts": float(resolution.account_count),
        "blocking.hub_cap": float(resolution.hub_cap),
    }
    if resolution.model is not None:
        metrics["model.prior"] = resolution.model.prior
    if resolution.training is not None:
        for index, (_rules, pairs, result) in enumerate(resolution.training.sessions):
            metrics[f"model.session{index}.pairs"] = float(pairs)
            if result is not None:
                metrics[f"model.session{index}.em_iterations"] = float(result.iterations)
                metrics[f"model.session{index}.em_converged"] = float(result.converged)
    return metrics


def _plain(config: JobConfig) -> Any:
    """The config with read-only mappings turned into dicts, for JSON and MLflow."""
    return json.loads(json.dumps(config, default=_to_builtin))


def _to_builtin(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if hasattr(value, "items"):
        return dict(value.items())
    raise TypeError(f"cannot serialise {type(value).__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        config = load_config(args.conf)
        run_id = args.run_id or new_run_id()
        if not RUN_ID_PATTERN.match(run_id):
            raise ConfigError(
                f"--run-id {run_id!r}: use 1-128 letters, digits, '.', '_', ':' or '-'"
            )
        status = run(args, config, run_id)
    except (InputError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except QualityCheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except ResolutionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    logger.info("finished in %.1f s", time.perf_counter() - started)
    return status


if __name__ == "__main__":
    sys.exit(main())
