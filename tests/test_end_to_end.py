"""The real job on generated data, with real Delta, GraphX, Great Expectations and MLflow;
outputs read back with Spark and with delta-rs (no Spark). The shared first run and the tests
of the command line itself start the job as a new process (`resolve`); scenarios of several
runs call its `main` in this process (`resolve_here`), on the test session's warm JVM."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from deltalake import DeltaTable
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

from jobs.benchmark_incremental import same_membership_share
from jobs.config import PRETRAINED_MODEL, JobConfig, load_config
from jobs.outputs import OutputWriter, RunRecord
from jobs.resolve_entities import IncrementBase, _incremental_base, previous_state
from jobs.storage import Location
from jobs.tracking import find_job_run, tracking_uri
from tests.conftest import E2E_RUN_ID
from tests.jobrun import (
    LOCAL_CONF,
    read_state,
    read_table,
    resolve,
    resolve_here,
    run_metrics,
    run_metrics_in,
    run_module,
)

FS_CONF = yaml.safe_load((LOCAL_CONF.parent / "fellegi_sunter.yaml").read_text(encoding="utf-8"))


def test_job_writes_contract_tables_readable_without_spark(generated, first_run) -> None:  # type: ignore[no-untyped-def]
    in_dir, truth_path = generated
    out, result = first_run
    membership = read_table(out, "entity_membership")
    entities = read_table(out, "entities")
    edges = read_table(out, "match_edges")
    quarantine = read_table(out, "quarantine")
    runs = read_table(out, "runs")
    hubs = read_table(out, "hub_values")

    # Every accepted account exactly once; accepted + quarantined = generated accounts.
    accounts_in = pd.read_parquet(in_dir / "accounts.parquet")
    assert membership["account_id"].is_unique
    quarantined_accounts = int((quarantine["dataset"] == "accounts").sum())
    assert len(membership) + quarantined_accounts == len(accounts_in)
    assert set(membership["account_id"]) <= set(accounts_in["account_id"].dropna())
    assert set(membership["run_id"]) == {"e2e-1"}

    # Entities agree with membership; edges are ordered, known and probabilities in [0, 1].
    sizes = membership.groupby("entity_id").size()
    assert (
        dict(zip(entities["entity_id"], entities["account_count"], strict=True)) == sizes.to_dict()
    )
    assert (edges["account_id_l"] < edges["account_id_r"]).all()
    assert set(edges["account_id_l"]) | set(edges["account_id_r"]) <= set(membership["account_id"])
    assert edges["match_probability"].between(0, 1).all()
    assert all(len(evidence) > 0 for evidence in edges["evidence"])
    # Edge endpoints share an entity.
    entity_of = dict(zip(membership["account_id"], membership["entity_id"], strict=True))
    assert all(
        entity_of[left] == entity_of[right]
        for left, right in zip(edges["account_id_l"], edges["account_id_r"], strict=True)
    )

    # The runs ledger: succeeded, counts reconcile, versions point at this run's tables.
    (run,) = runs.to_dict("records")
    assert run["status"] == "succeeded"
    counts = json.loads(run["input_counts"])
    for name, dataset_counts in counts.items():
        assert (
            dataset_counts["read"] == dataset_counts["accepted"] + dataset_counts["quarantined"]
        ), name
    assert counts["accounts"]["read"] == len(accounts_in)
    versions = json.loads(run["table_versions"])
    assert set(versions) >= {
        "entity_membership",
        "entities",
        "match_edges",
        "hub_values",
        "quarantine",
    }

    # Accuracy on generated truth (what the demo prints), and the summary names it.
    assert "pairwise precision" in result.stdout
    client = MlflowClient(tracking_uri(out / "_mlflow"))
    (mlflow_run,) = client.search_runs(
        [client.get_experiment_by_name("seller-entity-resolution").experiment_id],
        filter_string="tags.`seller_er.run_id` = 'e2e-1'",
    )
    metrics = mlflow_run.data.metrics
    assert metrics["eval_pairwise_precision"] >= 0.9
    assert metrics["eval_bcubed_f1"] >= 0.9
    assert metrics["input.accounts.read"] == len(accounts_in)
    # 1% of the population: a value held by more than 20 of these accounts is a hub.
    assert metrics["blocking.hub_cap"] == 20
    assert hubs["account_count"].min() > 20
    assert metrics["seconds.candidate_pairs"] > 0
    # The span of the stage after connected components holds them: more than the stage itself.
    assert metrics["span.clusters"] > metrics["seconds.clusters"] > 0
    assert mlflow_run.data.params["resolution.clustering.engine"] == "graphx"
    artifacts = {a.path for a in client.list_artifacts(mlflow_run.info.run_id, "quality")}
    assert artifacts == {"quality/inputs.json", "quality/outputs.json"}
    # Connected components checkpointed there; the job deleted its checkpoints when done.
    assert (out / "_checkpoints").is_dir()
    assert not [p for p in (out / "_checkpoints").rglob("*") if p.is_file()]


def test_spark_reads_the_same_tables(spark: SparkSession, first_run) -> None:  # type: ignore[no-untyped-def]
    out, _ = first_run
    for name in ("entity_membership", "entities", "match_edges", "quarantine", "runs"):
        with_spark = spark.read.format("delta").load(str(out / name)).count()
        assert with_spark == len(read_table(out, name)), name


def test_rerun_with_same_run_id_duplicates_nothing(
    spark: SparkSession, generated, first_run
) -> None:  # type: ignore[no-untyped-def]
    in_dir, truth = generated
    out, _ = first_run
    before = {
        name: read_table(out, name) for name in ("entity_membership", "quarantine", "match_edges")
    }
    result = resolve_here(spark, in_dir, out, "--run-id", "e2e-1")
    assert result.returncode == 0, result.stderr[-5000:]
    runs = read_table(out, "runs")
    assert list(runs["run_id"]) == ["e2e-1"]
    assert list(runs["status"]) == ["succeeded"]
    for name, frame in before.items():
        after = read_table(out, name)
        key = list(after.columns[:2])
        pd.testing.assert_frame_equal(
            after.drop(columns=["evidence"], errors="ignore")
            .sort_values(key)
            .reset_index(drop=True),
            frame.drop(columns=["evidence"], errors="ignore")
            .sort_values(key)
            .reset_index(drop=True),
        )


def test_next_run_keeps_ids_and_records_changes(
    spark: SparkSession, generated, first_run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A second run on the same input continues the first: every id kept, no entity change;
    the first run's changes are one `born` per entity. Then one ring loses its accounts from
    the input: its id retires, everything else keeps its id."""
    in_dir, _ = generated
    out = tmp_path / "out"
    shutil.copytree(first_run[0], out)
    first = read_table(out, "entity_membership")
    born = read_table(out, "entity_changes")
    assert (born["change_type"] == "born").all()
    assert len(born) == first["entity_id"].nunique()

    again = resolve_here(spark, in_dir, out, "--run-id", "e2e-next")
    assert again.returncode == 0, again.stderr[-5000:]
    second = read_table(out, "entity_membership")
    merged = first.merge(second, on="account_id", suffixes=("_1", "_2"))
    assert len(merged) == len(first) == len(second)
    assert (merged["entity_id_1"] == merged["entity_id_2"]).all()
    changes = read_table(out, "entity_changes")
    assert set(changes["run_id"]) == {"e2e-1"}  # the second run changed nothing

    # Drop the accounts of the largest entity (and their rows) from the input: it retires.
    sizes = second.groupby("entity_id").size().sort_values(ascending=False)
    gone = set(second.loc[second["entity_id"] == sizes.index[0], "account_id"])
    smaller = tmp_path / "in"
    smaller.mkdir()
    for path in sorted(in_dir.iterdir()):
        frame = pd.read_parquet(path)
        frame[~frame["account_id"].isin(gone)].to_parquet(smaller / path.name, index=False)
    third = resolve_here(spark, smaller, out, "--run-id", "e2e-third")
    assert third.returncode == 0, third.stderr[-5000:]
    after = read_table(out, "entity_membership")
    kept = second[~second["account_id"].isin(gone)].merge(after, on="account_id")
    assert len(kept) == len(after)
    # Its accounts gone, the values they held are held by fewer accounts, which may move a
    # few neighbours; nearly every other account keeps its entity id.
    assert (kept["entity_id_x"] == kept["entity_id_y"]).mean() > 0.99
    latest = read_table(out, "entity_changes").query("run_id == 'e2e-third'")
    retired = latest.query("change_type == 'retired'")
    assert list(retired["entity_id"]) == [sizes.index[0]]
    assert int(retired["account_count"].iloc[0]) == len(gone)
    runs = read_table(out, "runs").set_index("run_id")
    assert json.loads(runs.loc["e2e-third", "table_versions"])["entity_changes"] >= 2


def _quarantined(folder: Path, run_id: str) -> list[tuple[str, str, str]]:
    """(dataset, record, reason) of run `run_id`'s quarantine rows in `folder`, sorted."""
    rows = read_table(folder, "quarantine")
    rows = rows[rows["run_id"] == run_id]
    return sorted(zip(rows["dataset"], rows["record"], rows["reason"], strict=True))


def _input_counts(folder: Path, run_id: str) -> dict[str, dict[str, int]]:
    """The `runs` row's input counts of run `run_id` in `folder`."""
    runs = read_table(folder, "runs")
    return json.loads(runs.loc[runs["run_id"] == run_id, "input_counts"].item())


def _write_day1(in_dir: Path, day1: Path) -> tuple[set[str], set[str], set[str]]:
    """Day 1 of `in_dir` (day 2) into `day1`: without 3% of the accounts (`new` on day 2), 10
    others with another phone (`changed`), and 10 more, as `GONE<id>`, that are gone by day 2
    (`extra`, their original ids). Returns (new, changed, extra)."""
    accounts = pd.read_parquet(in_dir / "accounts.parquet")
    ids = sorted(accounts["account_id"].dropna().unique())
    new, changed, extra = set(ids[::33]), set(ids[1::97][:10]), set(ids[2::97][:10])
    day1.mkdir()
    for path in sorted(in_dir.iterdir()):
        frame = pd.read_parquet(path)
        kept = frame[~frame["account_id"].isin(new)].copy()
        if path.name == "accounts.parquet":
            moved = kept["account_id"].isin(changed)
            kept.loc[moved, "phone"] = "+86 139 0000 0000"
        gone = frame[frame["account_id"].isin(extra)].assign(
            account_id=lambda f: "GONE" + f["account_id"]
        )
        pd.concat([kept, gone]).to_parquet(day1 / path.name, index=False)
    return new, changed, extra


def test_incremental_run_equals_a_full_run_on_the_same_input(
    spark: SparkSession, generated, first_run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Day 1 lacks 3% of the accounts, has 10 others with another phone and 10 more that are
    gone by day 2; day 2 is the generated input, whose full run is `first_run`. Resolving day
    2 incrementally on top of day 1 re-pairs a fraction of the accounts and ends with the same
    entities as the full run, written with MERGE."""
    in_dir, _ = generated
    day1 = tmp_path / "day1"
    new, changed, extra = _write_day1(in_dir, day1)
    out = tmp_path / "out"
    base = resolve_here(spark, day1, out, "--run-id", "day1")
    assert base.returncode == 0, base.stderr[-5000:]
    before = read_table(out, "entity_membership")

    step = resolve_here(spark, in_dir, out, "--run-id", "day2", "--incremental")
    assert step.returncode == 0, step.stderr[-5000:]
    assert "incremental run: continuing run day1" in step.stderr
    incremental = read_table(out, "entity_membership")
    full = read_table(first_run[0], "entity_membership")
    assert sorted(incremental["account_id"]) == sorted(full["account_id"])
    assert same_membership_share(full, incremental) == 1.0

    metrics = run_metrics(out, "day2")
    assert metrics["incremental.accounts_new"] == len(new & set(full["account_id"]))
    assert metrics["incremental.accounts_removed"] == len(extra)
    assert metrics["incremental.accounts_changed"] >= len(changed)
    assert 0 < metrics["incremental.affected_accounts"] < 0.5 * len(full)
    # Entities away from the change keep their ids and their rows (written by day 1).
    untouched = before.merge(incremental, on="account_id", suffixes=("_1", "_2"))
    same_id = untouched["entity_id_1"] == untouched["entity_id_2"]
    assert same_id.mean() > 0.9
    assert (untouched.loc[same_id, "run_id_2"] == "day1").mean() > 0.9
    history = DeltaTable(str(out / "entity_membership")).history()
    assert history[0]["operation"] == "MERGE"
    # The other tables it MERGEd only where the change reached hold what the full run wrote.
    full_out = first_run[0]
    assert sorted(read_table(out, "entities")["account_count"]) == sorted(
        read_table(full_out, "entities")["account_count"]
    )
    assert set(read_table(out, "entities")["entity_id"]) == set(incremental["entity_id"])

    def pairs(folder: Path) -> set[tuple[str, str]]:
        edges = read_table(folder, "match_edges")
        return set(zip(edges["account_id_l"], edges["account_id_r"], strict=True))

    assert pairs(out) == pairs(full_out)

    def states(folder: Path) -> dict[str, tuple[str, tuple[tuple[str, str], ...], int]]:
        return {
            row["account_id"]: (
                row["fingerprint"],
                tuple((k["attribute"], k["value_key"]) for k in row["blocking_keys"]),
                row["quarantined_rows"],
            )
            for row in read_state(spark, folder)
        }

    assert states(out) == states(full_out)

    # The output checks read the rows the run wrote, and counted the whole membership.
    report = json.loads((out / "_quality" / "day2" / "outputs.json").read_text(encoding="utf-8"))
    assert report["success"] is True
    assert {"membership_rows", "entity_sizes"} <= set(report["raw"])
    covered = next(
        r["observed"]
        for r in report["results"]
        if r["check"] == "entity_membership.covers_accepted_accounts"
    )
    assert covered.startswith(f"{len(full)} membership rows for {len(full)} accepted accounts")
    checked = {
        r["result"]["element_count"]
        for r in report["raw"]["entity_membership"]["results"]
        if "element_count" in r["result"]
    }
    assert len(checked) == 1 and 0 < checked.pop() < len(full)

    # The holder counts were updated from day 1's shared keys, not counted again, and came
    # out as the full run counted them.
    assert metrics["incremental.holder_counts_updated"] == 1.0
    assert metrics["incremental.recounted_values"] > 0

    def shared(folder: Path) -> set[tuple[str, str, str, int]]:
        rows = read_table(folder, "shared_keys")
        return set(
            zip(
                rows["account_id"],
                rows["attribute"],
                rows["value_key"],
                rows["account_count"],
                strict=True,
            )
        )

    assert shared(out) == shared(full_out)

    # Only the rows of new, changed and once quarantined accounts were checked again, yet the
    # run quarantined what the full run did and counted the same rows.
    assert _quarantined(out, "day2") == _quarantined(full_out, E2E_RUN_ID)
    assert {dataset for dataset, _, _ in _quarantined(out, "day2")} >= {
        "accounts",
        "payment_instruments",
        "logistics",
    }

    assert _input_counts(out, "day2") == _input_counts(full_out, E2E_RUN_ID)
    assert "the rows of new, changed and once quarantined accounts checked" in step.stderr


def test_an_incremental_run_whose_hub_cap_moves_resolves_in_full(
    spark: SparkSession, generated, first_run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Day 1 has the generated input plus 1,000 more accounts (copies under other ids), so its
    hub cap is 25 accounts; day 2, the generated 1,500, has 20. The incremental run finds it
    out after reading the changed rows only, reads the whole input again and resolves in full:
    the full run's entities, quarantine and counts."""
    in_dir, _ = generated
    day1 = tmp_path / "day1"
    day1.mkdir()
    accounts = pd.read_parquet(in_dir / "accounts.parquet")
    copied = set(accounts["account_id"].dropna().unique()[:1000])
    for path in sorted(in_dir.iterdir()):
        frame = pd.read_parquet(path)
        extra = frame[frame["account_id"].isin(copied)].assign(
            account_id=lambda f: "COPY" + f["account_id"]
        )
        pd.concat([frame, extra]).to_parquet(day1 / path.name, index=False)
    out = tmp_path / "out"
    base = resolve_here(spark, day1, out, "--run-id", "day1")
    assert base.returncode == 0, base.stderr[-5000:]

    step = resolve_here(spark, in_dir, out, "--run-id", "day2", "--incremental")
    assert step.returncode == 0, step.stderr[-5000:]
    assert "the hub cap moves with the population" in step.stderr
    full_out = first_run[0]
    full = read_table(full_out, "entity_membership")
    assert same_membership_share(full, read_table(out, "entity_membership")) == 1.0
    assert run_metrics(out, "day2").get("incremental.accounts_new") is None

    assert _quarantined(out, "day2") == _quarantined(full_out, E2E_RUN_ID) != []
    assert _input_counts(out, "day2") == _input_counts(full_out, E2E_RUN_ID)


def test_an_incremental_run_continues_its_base_only_under_the_settings_that_made_it(
    spark: SparkSession, first_run, tmp_path: Path, caplog
) -> None:  # type: ignore[no-untyped-def]
    """The accounts an incremental run does not touch keep the keys, edges and entities its
    base run made: a changed threshold, blocking rule or standardisation would leave them as
    the old settings decided, so the run resolves in full, naming what changed. Settings that
    change how fast it runs, or what is redone every run (leads), leave the base usable."""
    out = Location.parse(first_run[0])
    config = load_config(LOCAL_CONF)
    previous, _ = previous_state(spark, out, "next")

    def base_under(changed: JobConfig) -> IncrementBase | None:
        return _incremental_base(spark, out, "next", changed, previous, files_dir=tmp_path)

    free = dataclasses.replace(
        config,
        outputs=dataclasses.replace(config.outputs, parallel_writes=1),
        resolution=dataclasses.replace(
            config.resolution,
            blocking=dataclasses.replace(config.resolution.blocking, incremental_rescore="touched"),
            leads=dataclasses.replace(config.resolution.leads, min_accounts=3),
        ),
    )
    assert base_under(config) is not None
    assert base_under(free) is not None

    threshold = config.resolution.model.threshold
    stricter = dataclasses.replace(
        config,
        resolution=dataclasses.replace(
            config.resolution,
            model=dataclasses.replace(config.resolution.model, threshold=threshold + 0.05),
            blocking=dataclasses.replace(
                config.resolution.blocking, rules=config.resolution.blocking.rules[1:]
            ),
        ),
    )
    caplog.clear()
    assert base_under(stricter) is None
    warning = next(r.getMessage() for r in caplog.records if "resolving in full" in r.getMessage())
    assert f"resolution.model.threshold: {threshold} -> {threshold + 0.05}" in warning
    assert "resolution.blocking.rules" in warning
    assert "incremental_rescore" not in warning


def test_an_incremental_run_on_an_unreadable_file_exits_2_naming_it(
    spark: SparkSession, generated, first_run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The fingerprints of an incremental run are read in a driver thread while the previous
    run's tables are opened: a data file whose pages cannot be decoded (its footer, and so its
    schema, intact) still fails the run with the input exit code, naming the file."""
    in_dir, _ = generated
    day2 = tmp_path / "in"
    shutil.copytree(in_dir, day2)
    payments = day2 / "payment_instruments.parquet"
    data = bytearray(payments.read_bytes())
    data[4 : len(data) // 2] = bytes(len(data) // 2 - 4)
    payments.write_bytes(bytes(data))
    out = tmp_path / "out"
    shutil.copytree(first_run[0], out)
    result = resolve_here(spark, day2, out, "--run-id", "day2-unreadable", "--incremental")
    assert result.returncode == 2, result.stderr[-5000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), last
    assert f"{payments}: cannot be read as parquet" in last
    runs = read_table(out, "runs").set_index("run_id")
    assert runs.loc["day2-unreadable", "status"] == "failed"


def test_entity_ids_do_not_depend_on_cores_partitions_or_storage(
    generated, first_run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The job on one core with another shuffle partition count, the input rows in another
    order and file layout, and every path given as a `file://` URI (the object-storage route:
    Hadoop filesystem calls, MLflow in a local folder, no files beside the tables) gives every
    account the same entity id as the first run (two cores, two partitions, plain paths)."""
    in_dir, truth = generated
    shuffled = tmp_path / "in"
    shuffled.mkdir()
    for path in sorted(in_dir.iterdir()):
        frame = pd.read_parquet(path).sample(frac=1.0, random_state=3)
        folder = shuffled / path.name
        folder.mkdir()
        for part, rows in enumerate(np.array_split(frame, 3)):
            rows.to_parquet(folder / f"part-{part}.parquet", index=False)
    conf = tmp_path / "one-core.yaml"
    conf.write_text(
        f"extends: {LOCAL_CONF}\nspark:\n  master: local[1]\n  shuffle_partitions: 5\n"
        f"tracking:\n  dir: {tmp_path / 'mlflow'}\n",
        encoding="utf-8",
    )
    other = tmp_path / "out"
    result = resolve(
        shuffled.as_uri(), other.as_uri(), "--conf", conf, "--truth", truth.as_uri(),
        "--run-id", "one-core",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    assert f"tables under {other.as_uri()}/" in result.stdout
    first = read_table(first_run[0], "entity_membership")[["account_id", "entity_id"]]
    again = read_table(other, "entity_membership")[["account_id", "entity_id"]]
    joined = first.merge(again, on="account_id", suffixes=("_2cores", "_1core"))
    assert len(joined) == len(first) == len(again)
    assert (joined["entity_id_2cores"] == joined["entity_id_1core"]).all()
    assert not [p.name for p in other.iterdir() if p.name in ("_quality", "_charts", "_mlflow")]
    assert run_metrics_in(tmp_path / "mlflow", "one-core")["eval_pairwise_f1"] > 0.9


def test_links_and_leads_are_written_without_raw_numbers(generated, first_run) -> None:  # type: ignore[no-untyped-def]
    in_dir, _ = generated
    out, result = first_run
    leads = read_table(out, "entity_leads").sort_values("lead_rank")
    links = read_table(out, "entity_links")
    assert list(leads["lead_rank"]) == list(range(1, len(leads) + 1))
    assert (links["entity_id_l"] < links["entity_id_r"]).all()
    assert "top leads (entity_leads):" in result.stdout
    raw_numbers = set(pd.read_parquet(in_dir / "payment_instruments.parquet")["instrument_id"])
    raw_numbers |= set(pd.read_parquet(in_dir / "accounts.parquet")["id_number"].dropna())
    text = " ".join(leads["reasons"]) + " ".join(links.astype(str).to_numpy().ravel())
    assert not [n for n in raw_numbers if isinstance(n, str) and len(n) >= 8 and n in text]


def test_missing_required_column_exits_2_naming_file_and_column(
    spark: SparkSession, tmp_path: Path
) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    (in_dir / "accounts.csv").write_text("account_id,phone\nA1,13800138000\n", encoding="utf-8")
    (in_dir / "payment_instruments.csv").write_text(
        "account_id,instrument_id\nA1,x\n", encoding="utf-8"
    )
    result = resolve_here(spark, in_dir, tmp_path / "out")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert str(in_dir / "payment_instruments.csv") in last
    assert "'instrument_type'" in last


def test_a_failed_run_whose_record_cannot_be_written_still_exits_with_its_own_error(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that fails on its input and then cannot write its `failed` row to `runs` (a
    full disk, say) still exits 2 with the input's error as its last line; the recording's
    failure is logged, not raised in its place."""
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    (in_dir / "accounts.csv").write_text("account_id,phone\nA1,13800138000\n", encoding="utf-8")
    (in_dir / "payment_instruments.csv").write_text(
        "account_id,instrument_id\nA1,x\n", encoding="utf-8"
    )
    record_run = OutputWriter.record_run

    def full_disk(self: OutputWriter, record: RunRecord) -> int:
        if record.status == "failed":
            raise OSError(28, "No space left on device")
        return record_run(self, record)

    monkeypatch.setattr(OutputWriter, "record_run", full_disk)
    result = resolve_here(spark, in_dir, tmp_path / "out")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "'instrument_type'" in last
    assert "could not record the failed run in runs: [Errno 28] No space left" in result.stderr


def test_unusable_invocation_exits_2(tmp_path: Path) -> None:
    result = run_module("-m", "jobs.resolve_entities", "--output", tmp_path / "out")
    assert result.returncode == 2
    assert "--input" in result.stderr
    bad_conf = tmp_path / "bad.yaml"
    bad_conf.write_text("resolution:\n  clustering:\n    engine: networkx\n", encoding="utf-8")
    result = resolve(tmp_path, tmp_path / "out", "--conf", bad_conf)
    assert result.returncode == 2
    assert "clustering.engine" in result.stderr


def test_failed_blocking_quality_check_exits_3_and_keeps_results(
    spark: SparkSession, generated, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import yaml

    in_dir, _ = generated
    conf = {
        "extends": str(LOCAL_CONF),
        "quality": {
            "max_entity_accounts": 2,
            "severities": {"entities.account_count_below_max": "fail"},
        },
    }
    conf_path = tmp_path / "strict.yaml"
    conf_path.write_text(yaml.safe_dump(conf), encoding="utf-8")
    out = tmp_path / "out"
    result = resolve_here(spark, in_dir, out, "--conf", conf_path, "--run-id", "strict-1")
    assert result.returncode == 3, result.stderr[-3000:]
    assert "entities.account_count_below_max" in result.stderr.strip().splitlines()[-1]
    report = json.loads(
        (out / "_quality" / "strict-1" / "outputs.json").read_text(encoding="utf-8")
    )
    assert "entities.account_count_below_max" in json.dumps(report)
    (run,) = read_table(out, "runs").to_dict("records")
    assert (run["run_id"], run["status"]) == ("strict-1", "failed")
    assert "QualityCheckError" in run["error"]
    assert not (out / "entity_membership").exists()  # nothing published from a failed run


def _fellegi_sunter_conf(folder: Path, model_settings: str = "") -> Path:
    """The local settings with conf/fellegi_sunter.yaml's model kind, threshold and bridge
    weight, plus `model_settings` (YAML lines under `resolution.model`)."""
    conf = folder / "fs.yaml"
    conf.write_text(
        f"extends: {LOCAL_CONF}\n"
        "resolution:\n  model:\n    kind: fellegi_sunter\n"
        f"    threshold: {FS_CONF['resolution']['model']['threshold']}\n"
        f"{model_settings}"
        "  cluster_control:\n"
        f"    bridge_max_weight: {FS_CONF['resolution']['cluster_control']['bridge_max_weight']}\n",
        encoding="utf-8",
    )
    return conf


def _logged_model_files(out: Path, run_id: str) -> tuple[Run, set[str]]:
    """The MLflow run of job run `run_id` in `out` and the paths of its `model/` artifacts."""
    client, run = find_job_run(out / "_mlflow", run_id)
    return run, {a.path for a in client.list_artifacts(run.info.run_id, "model")}


def test_a_population_too_small_to_train_on_is_scored_with_the_pretrained_model(
    spark: SparkSession, generated, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """1,500 accounts are under model.min_training_accounts: the Fellegi-Sunter run scores
    with the model the project ships (trained on 20,000 generated accounts), trains nothing,
    and finds the rings (measured at 1,500 accounts, seed 11: pairwise P 0.998, R 0.974;
    B-cubed F1 0.990; trained on these accounts instead, pairwise P was 0.24)."""
    in_dir, truth = generated
    out = tmp_path / "out"
    conf = _fellegi_sunter_conf(tmp_path)
    result = resolve_here(
        spark, in_dir, out, "--conf", conf, "--truth", truth, "--run-id", "fs-small"
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert "scoring with the pretrained model" in result.stderr
    run, logged = _logged_model_files(out, "fs-small")
    assert run.data.params["model_source"] == "pretrained"
    assert run.data.metrics["model.pretrained"] == 1.0
    assert "model/model.json" in logged
    assert "model/em_sessions.json" not in logged  # nothing trained
    saved = out / "_models" / "fs-small" / "model.json"  # what an incremental run continues
    assert json.loads(saved.read_text(encoding="utf-8")) == json.loads(
        PRETRAINED_MODEL.read_text(encoding="utf-8")
    )
    assert run.data.metrics["eval_pairwise_precision"] >= 0.95
    assert run.data.metrics["eval_pairwise_recall"] >= 0.95
    assert run.data.metrics["eval_bcubed_f1"] >= 0.97


def test_fellegi_sunter_model_is_trained_logged_reloaded_and_continued_incrementally(
    spark: SparkSession, generated, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """kind fellegi_sunter: the run trains, writes and logs model.json. A day-1 run scoring
    with that saved model (load_from) trains nothing; an incremental day-2 run on top scores
    with the model of the run it continues and the profiles that run kept, and ends with the
    entities of the trained full run on the same input, which scores with the same model."""
    in_dir, truth = generated
    conf = _fellegi_sunter_conf(tmp_path, "    random_pairs: 20000\n    min_training_accounts: 0\n")
    out = tmp_path / "out"
    trained = resolve_here(spark, in_dir, out, "--conf", conf, "--run-id", "fs-1", "--truth", truth)
    assert trained.returncode == 0, trained.stderr[-5000:]
    model_file = out / "_models" / "fs-1" / "model.json"
    model = json.loads(model_file.read_text(encoding="utf-8"))
    assert 0.0 < model["prior"] < 0.01  # two random accounts rarely match
    names = [item["name"] for item in model["comparisons"]]
    assert {"payment_instrument", "device", "logistics_address"} <= set(names)
    client, run = find_job_run(out / "_mlflow", "fs-1")
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/model.json", "model/em_sessions.json"} <= logged
    charts = {a.path for a in client.list_artifacts(run.info.run_id, "charts")}
    assert "charts/precision_recall_threshold.png" in charts
    assert run.data.metrics["blocking_pair_completeness_reachable"] > 0.9

    reload_conf = tmp_path / "fs-load.yaml"
    reload_conf.write_text(
        f"extends: {conf}\nresolution:\n  model:\n    load_from: {model_file}\n",
        encoding="utf-8",
    )
    first = read_table(out, "entity_membership")

    # Day 1 scored with the saved model (nothing trained); day 2 (the generated input)
    # incrementally on top, with no load_from: it takes day 1's model, and compares unchanged
    # accounts through the profiles day 1 kept in account_state.
    day1 = tmp_path / "day1"
    new, _, extra = _write_day1(in_dir, day1)
    out3 = tmp_path / "out3"
    base = resolve_here(spark, day1, out3, "--conf", reload_conf, "--run-id", "fs-day1")
    assert base.returncode == 0, base.stderr[-5000:]
    assert f"scoring with the saved model {model_file}" in base.stderr
    run, logged = _logged_model_files(out3, "fs-day1")
    assert run.data.params["model_source"] == "given"
    assert "model/model.json" in logged
    assert "model/em_sessions.json" not in logged  # nothing trained
    assert all(row["profile"] is not None for row in read_state(spark, out3))
    step = resolve_here(spark, in_dir, out3, "--conf", conf, "--run-id", "fs-day2", "--incremental")
    assert step.returncode == 0, step.stderr[-5000:]
    assert "incremental run: continuing run fs-day1" in step.stderr
    assert f"scoring with the saved model {out3 / '_models' / 'fs-day1' / 'model.json'}" in (
        step.stderr
    )
    metrics = run_metrics(out3, "fs-day2")
    assert metrics["incremental.accounts_new"] == len(new & set(first["account_id"]))
    assert metrics["incremental.accounts_removed"] == len(extra)
    assert 0 < metrics["incremental.affected_accounts"] < 0.5 * len(first)
    incremental = read_table(out3, "entity_membership")
    assert sorted(incremental["account_id"]) == sorted(first["account_id"])
    assert same_membership_share(first, incremental) >= 0.999
    assert all(row["profile"] is not None for row in read_state(spark, out3))
    assert json.loads(
        (out3 / "_models" / "fs-day2" / "model.json").read_text(encoding="utf-8")
    ) == json.loads(model_file.read_text(encoding="utf-8"))
