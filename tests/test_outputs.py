"""The Delta output writer: replaced and ledger tables, table properties and maintenance,
descriptions and column comments."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest
from delta.tables import DeltaTable
from deltalake import DeltaTable as RustDeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import table_docs
from jobs.outputs import OutputWriter, RunRecord, merge_source, sql_identifier, sql_string
from jobs.resolve_entities import _check_written
from jobs.storage import Location
from resolution.errors import ResolutionError
from tests.sqlconf import sql_settings

PROPERTIES = {
    "delta.logRetentionDuration": "interval 30 days",
    "delta.deletedFileRetentionDuration": "interval 7 days",
}


def _ledger_run(spark: SparkSession, out: Path, run_id: str) -> OutputWriter:
    writer = OutputWriter(spark, out, run_id)
    rows = spark.createDataFrame(
        [(f"{run_id}-{i}", "born", run_id) for i in range(3)],
        "entity_id string, change_type string, run_id string",
    )
    writer.replace_run_rows("entity_changes", rows)
    writer.replace("entities", spark.createDataFrame([("E1", 2)], "entity_id string, n long"))
    writer.record_run(RunRecord(run_id=run_id, started_at=datetime.now(UTC), status="succeeded"))
    return writer


def test_properties_are_set_and_ledgers_compacted_and_readable_after(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path.parent)
    relative = Path(tmp_path.name)  # as `--output demo/out` gives it
    for index in range(4):
        writer = _ledger_run(spark, relative, f"r{index}")
    files = writer.maintain(compact_min_files=100, vacuum=False)
    assert files["entity_changes"] >= 4  # one file per run at least, nothing compacted yet

    writer.set_properties(PROPERTIES)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{tmp_path / 'entity_changes'}`").first()
    assert detail is not None
    for key, value in PROPERTIES.items():
        assert detail["properties"][key] == value
    writer.set_properties(PROPERTIES)  # unchanged: no new commit
    history = spark.sql(f"DESCRIBE HISTORY delta.`{tmp_path / 'entity_changes'}`")
    assert history.where("operation = 'SET TBLPROPERTIES'").count() == 1

    writer.maintain(compact_min_files=2, vacuum=True)
    after = spark.sql(f"DESCRIBE DETAIL delta.`{tmp_path / 'entity_changes'}`").first()
    assert after is not None and after["numFiles"] == 1
    # Compaction changes files, not rows; the table still reads without Spark, all runs in it.
    table = RustDeltaTable(str(tmp_path / "entity_changes")).to_pandas()
    assert sorted(table["run_id"].unique()) == ["r0", "r1", "r2", "r3"]
    assert len(table) == 12
    # Vacuum keeps files inside the retention: the first run's version still reads.
    first = spark.read.format("delta").option("versionAsOf", 0).load(str(tmp_path / "entities"))
    assert first.count() == 1


# Descriptions and column comments (jobs.table_docs) -----------------------------------------
def _comments(path: Path) -> dict[str, str | None]:
    """Column -> comment of a Delta table, read without Spark (delta-rs field metadata)."""
    return {f.name: f.metadata.get("comment") for f in RustDeltaTable(str(path)).schema().fields}


def _operations(path: Path) -> list[str]:
    return [entry["operation"] for entry in reversed(RustDeltaTable(str(path)).history())]


def test_comments_come_with_the_writes_and_survive_overwrite_merge_and_ledger_runs(
    spark: SparkSession, tmp_path: Path
) -> None:
    membership = table_docs.TABLES["entity_membership"]
    quarantine = table_docs.TABLES["quarantine"]
    rows = [("a1", "E1"), ("a2", "E1"), ("a3", "E3")]
    frame = spark.createDataFrame(rows, "account_id string, entity_id string")
    ledger_rows = spark.createDataFrame(
        [("accounts", '{"account_id": ""}', "account_id: empty")],
        "dataset string, record string, reason string",
    )

    first = OutputWriter(spark, tmp_path, "r1")
    first.replace("entity_membership", frame)
    first.replace_run_rows("quarantine", ledger_rows.withColumn("run_id", F.lit("r1")))
    # Created with their comments: no separate commit was needed for them.
    assert _comments(tmp_path / "entity_membership") == dict(membership.comments)
    assert _comments(tmp_path / "quarantine") == dict(quarantine.comments)
    first.describe_tables(PROPERTIES)
    for table in ("entity_membership", "quarantine"):
        assert _operations(tmp_path / table) == ["WRITE", "SET TBLPROPERTIES"]
        metadata = RustDeltaTable(str(tmp_path / table)).metadata()
        assert metadata.description == table_docs.TABLES[table].table_comment
        assert metadata.configuration == PROPERTIES  # the description is no property

    # A second full run overwrites; an incremental one MERGEs; a ledger run appends its rows.
    second = OutputWriter(spark, tmp_path, "r2")
    second.replace("entity_membership", frame.where("account_id != 'a3'"))
    third = OutputWriter(spark, tmp_path, "r3")
    third.merge("entity_membership", frame.replace("E3", "E9"), ["account_id"])
    third.replace_run_rows("quarantine", ledger_rows.withColumn("run_id", F.lit("r3")))
    third.describe_tables(PROPERTIES, workers=2)  # nothing differs: no commit
    assert _operations(tmp_path / "entity_membership")[2:] == ["WRITE", "MERGE"]
    assert _operations(tmp_path / "quarantine")[2:] == ["WRITE"]
    assert _comments(tmp_path / "entity_membership") == dict(membership.comments)
    assert _comments(tmp_path / "quarantine") == dict(quarantine.comments)
    for table in ("entity_membership", "quarantine"):
        description = RustDeltaTable(str(tmp_path / table)).metadata().description
        assert description == table_docs.TABLES[table].table_comment
    merged = RustDeltaTable(str(tmp_path / "entity_membership")).to_pandas()
    assert sorted(
        merged[["account_id", "entity_id", "run_id"]].itertuples(index=False, name=None)
    ) == [
        ("a1", "E1", "r2"),
        ("a2", "E1", "r2"),
        ("a3", "E9", "r3"),
    ]


@pytest.mark.parametrize("broadcast_scope", [False, True])
def test_a_scoped_merge_changes_only_rows_whose_keys_are_in_scope(
    spark: SparkSession, tmp_path: Path, broadcast_scope: bool
) -> None:
    """In scope: a changed row is updated (a value that became null, a7, or stopped being
    null, a8, is a change), a row missing from the frame is deleted, a new key is inserted, an
    equal row keeps its run id (a null equal to a null, a9, too). Out of scope: rows stay as
    they are, whether the frame differs from them (a2) or lacks them (a4). A broadcast scope
    gives the same rows."""
    schema = "account_id string, entity_id string"
    table = tmp_path / "entity_membership"
    before = [
        ("a1", "E1"),
        ("a2", "E1"),
        ("a3", "E3"),
        ("a4", "E4"),
        ("a5", "E5"),
        ("a7", "E7"),
        ("a8", None),
        ("a9", None),
    ]
    OutputWriter(spark, tmp_path, "r1").replace(
        "entity_membership", spark.createDataFrame(before, schema)
    )
    frame = spark.createDataFrame(
        [
            ("a1", "E1"),
            ("a2", "E2"),
            ("a3", "E9"),
            ("a6", "E6"),
            ("a7", None),
            ("a8", "E8"),
            ("a9", None),
        ],
        schema,
    )
    scope = spark.createDataFrame(
        [("a1",), ("a3",), ("a5",), ("a6",), ("a7",), ("a8",), ("a9",)], "account_id string"
    )
    OutputWriter(spark, tmp_path, "r2").merge(
        "entity_membership", frame, ["account_id"], scope=scope, broadcast_scope=broadcast_scope
    )
    after = RustDeltaTable(str(table)).to_pandas()
    rows = after[["account_id", "entity_id", "run_id"]].astype(object)
    assert sorted(rows.where(rows.notna(), None).itertuples(index=False, name=None)) == [
        ("a1", "E1", "r1"),
        ("a2", "E1", "r1"),
        ("a3", "E9", "r2"),
        ("a4", "E4", "r1"),
        ("a6", "E6", "r2"),
        ("a7", None, "r2"),
        ("a8", "E8", "r2"),
        ("a9", None, "r1"),
    ]
    history = DeltaTable.forPath(spark, str(table)).history(1).first()
    assert history is not None
    metrics = history["operationMetrics"]
    # Only the three that differ are updated; the equal rows in scope (a1, a9) are not.
    assert (metrics["numTargetRowsUpdated"], metrics["numTargetRowsDeleted"]) == ("3", "1")
    assert metrics["numTargetRowsInserted"] == "1"
    with pytest.raises(ResolutionError, match="scoped MERGE needs the table"):
        OutputWriter(spark, tmp_path, "r3").merge("entities", frame, ["account_id"], scope=scope)


@pytest.mark.parametrize("broadcast", [False, True])
def test_a_merge_source_marks_the_held_keys_the_frame_lacks(
    spark: SparkSession, broadcast: bool
) -> None:
    """Held keys missing from the frame come as deletions; with `broadcast_frame_keys` the
    frame's keys are broadcast as the anti join's right side, where Spark can build them (a
    hint on the left side, the held keys, was ignored with a warning), even with automatic
    broadcasts off."""
    frame = spark.createDataFrame(
        [("a1", "E1", 3), ("a2", "E2", 4)], "account_id string, entity_id string, size int"
    )
    held = spark.createDataFrame([("a1",), ("a3",)], "account_id string")
    settings = {
        "spark.sql.autoBroadcastJoinThreshold": "-1",
        "spark.sql.adaptive.autoBroadcastJoinThreshold": "-1",
    }
    with sql_settings(spark, settings):
        source = merge_source(frame, held, ["account_id"], broadcast_frame_keys=broadcast)
        rows = sorted(tuple(row) for row in source.collect())
        plan = source._jdf.queryExecution().executedPlan().toString()
    assert source.columns == ["account_id", "entity_id", "size", "_delete"]
    assert rows == [("a1", "E1", 3, False), ("a2", "E2", 4, False), ("a3", None, None, True)]
    assert ("BroadcastHashJoin" in plan and "LeftAnti, BuildRight" in plan) == broadcast


def test_a_merge_without_comparison_rewrites_every_scoped_row(
    spark: SparkSession, tmp_path: Path
) -> None:
    """`compare=False`: every row of the frame in scope is written with this run's id, even
    one equal to the table's (a1); a scoped key the frame lacks is deleted (a3), one the table
    never held deletes nothing (a7); rows out of scope stay (a2, a4). It needs a scope."""
    schema = "account_id string, fingerprint string"
    table = tmp_path / "account_state"
    before = [("a1", "f1"), ("a2", "f2"), ("a3", "f3"), ("a4", "f4")]
    OutputWriter(spark, tmp_path, "r1").replace(
        "account_state", spark.createDataFrame(before, schema)
    )
    frame = spark.createDataFrame([("a1", "f1"), ("a2", "g2"), ("a5", "f5")], schema)
    scope = spark.createDataFrame([("a1",), ("a3",), ("a5",), ("a7",)], "account_id string")
    OutputWriter(spark, tmp_path, "r2").merge(
        "account_state", frame, ["account_id"], scope=scope, compare=False
    )
    after = RustDeltaTable(str(table)).to_pandas()
    assert sorted(
        after[["account_id", "fingerprint", "run_id"]].itertuples(index=False, name=None)
    ) == [
        ("a1", "f1", "r2"),
        ("a2", "f2", "r1"),
        ("a4", "f4", "r1"),
        ("a5", "f5", "r2"),
    ]
    with pytest.raises(ValueError, match="without comparison needs a scope"):
        OutputWriter(spark, tmp_path, "r3").merge(
            "account_state", frame, ["account_id"], compare=False
        )


def test_a_merge_into_a_table_with_deletion_vectors_rewrites_no_file(
    spark: SparkSession, tmp_path: Path
) -> None:
    """`account_state` configured with deletion vectors: created with the feature, a scoped
    MERGE gives the same rows as without them but marks the replaced rows in vectors and
    copies no unchanged row; unconfigured, set_properties turns the property off."""
    schema = "account_id string, fingerprint string"
    before = [(f"a{i}", f"f{i}") for i in range(40)]
    first = OutputWriter(spark, tmp_path, "r1", deletion_vectors=["account_state"])
    first.replace(
        "account_state", spark.createDataFrame(before, schema).repartition(4, "account_id")
    )
    path = str(tmp_path / "account_state")
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert detail is not None
    assert "deletionVectors" in detail["tableFeatures"]
    assert detail["properties"]["delta.enableDeletionVectors"] == "true"

    changed = [("a1", "g1"), ("a2", "f2"), ("a40", "f40")]
    scope = spark.createDataFrame([("a1",), ("a2",), ("a3",), ("a40",)], "account_id string")
    OutputWriter(spark, tmp_path, "r2", deletion_vectors=["account_state"]).merge(
        "account_state", spark.createDataFrame(changed, schema), ["account_id"], scope=scope
    )
    metrics = DeltaTable.forPath(spark, path).history(1).first()["operationMetrics"]
    assert int(metrics["numTargetDeletionVectorsAdded"]) > 0
    assert int(metrics["numTargetRowsCopied"]) == 0
    assert int(metrics["numTargetFilesRemoved"]) == 0
    after = {
        (row["account_id"], row["fingerprint"], row["run_id"])
        for row in spark.read.format("delta").load(path).collect()
    }
    expected = {(a, f, "r1") for a, f in before if a not in {"a1", "a3"}}
    assert after == expected | {("a1", "g1", "r2"), ("a40", "f40", "r2")}

    # Maintenance compacts a table with deletion vectors like a ledger (the MERGE added files);
    # a merged table without them is left as it is.
    maintainer = OutputWriter(spark, tmp_path, "r2", deletion_vectors=["account_state"])
    maintainer.table_versions["account_state"] = 1
    files = maintainer.maintain(compact_min_files=2, vacuum=False)
    assert files["account_state"] > 2
    assert DeltaTable.forPath(spark, path).history(1).first()["operation"] == "OPTIMIZE"
    assert {
        (row["account_id"], row["fingerprint"], row["run_id"])
        for row in spark.read.format("delta").load(path).collect()
    } == after

    unconfigured = OutputWriter(spark, tmp_path, "r3")
    unconfigured.replace("account_state", spark.createDataFrame(changed, schema))
    unconfigured.set_properties(PROPERTIES)
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert detail is not None
    assert detail["properties"]["delta.enableDeletionVectors"] == "false"


def test_a_table_whose_comments_differ_is_brought_up_to_date_in_one_commit(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A ledger table written before the docs existed (or with older text) has no comments.
    path = tmp_path / "entity_changes"
    spark.createDataFrame(
        [("E1", "born", None, 2, None, "r0")],
        "entity_id string, change_type string, related_entity_id string, account_count long, "
        "overlap_count long, run_id string",
    ).write.format("delta").save(str(path))
    # Text that needs quoting in SQL: quotes, a backslash, a backquote, a newline, Unicode.
    awkward = "It's a \\ back`slash; -- not SQL\n'; DROP TABLE x; '实体 ＩＤ"
    doc = table_docs.TABLES["entity_changes"]
    columns = tuple(
        dataclasses.replace(column, comment=awkward) if column.name == "entity_id" else column
        for column in doc.columns
    )
    tables = {**table_docs.TABLES, "entity_changes": dataclasses.replace(doc, columns=columns)}
    monkeypatch.setattr(table_docs, "TABLES", MappingProxyType(tables))

    writer = OutputWriter(spark, tmp_path, "r1")
    writer.replace_run_rows(
        "entity_changes",
        spark.createDataFrame(
            [("E2", "born", None, 1, None, "r1")],
            "entity_id string, change_type string, related_entity_id string, "
            "account_count long, overlap_count long, run_id string",
        ),
    )
    assert set(_comments(path).values()) == {None}  # an append keeps the table's schema
    writer.set_column_comments()
    writer.set_column_comments()  # already up to date: no second commit
    assert _operations(path) == ["WRITE", "WRITE", "CHANGE COLUMNS"]
    assert _comments(path) == {column.name: column.comment for column in columns}
    assert _comments(path)["entity_id"] == awkward


def test_an_undocumented_column_is_written_without_a_comment_and_logged(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = OutputWriter(spark, tmp_path, "r1")
    with caplog.at_level(logging.WARNING, logger="jobs.outputs"):
        writer.replace(
            "entities",
            spark.createDataFrame(
                [("E1", 2, 7)], "entity_id string, account_count long, extra long"
            ),
        )
    comments = _comments(tmp_path / "entities")
    assert comments["extra"] is None
    assert comments["entity_id"] == table_docs.TABLES["entities"].comments["entity_id"]
    assert "entities: no description of column(s) extra in jobs/table_docs.py" in caplog.text


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("plain", "'plain'"),
        ("it's", "'it\\'s'"),
        ("a\\b", "'a\\\\b'"),
        ("\\'", "'\\\\\\''"),
    ],
)
def test_sql_string_escapes_backslashes_and_quotes(text: str, literal: str) -> None:
    assert sql_string(text) == literal


def test_sql_identifier_doubles_backquotes() -> None:
    assert sql_identifier("/tmp/a`b") == "`/tmp/a``b`"


def test_roll_back_restores_the_rows_a_run_that_did_not_succeed_changed(
    spark: SparkSession, tmp_path: Path
) -> None:
    """After the base version, commits that change no row (a succeeded run's table
    properties) leave the table alone; a MERGE (a run killed before it recorded success) is
    undone in one RESTORE commit to the version before it, the abandoned version still
    readable by time travel; a table restored so already is left alone."""
    schema = "account_id string, entity_id string"
    path = str(tmp_path / "entity_membership")
    writer = OutputWriter(spark, tmp_path, "r1")
    base = writer.replace(
        "entity_membership",
        spark.createDataFrame([("a1", "E1"), ("a2", "E1"), ("a3", "E3")], schema),
    )
    writer.set_properties(PROPERTIES)
    with_properties = RustDeltaTable(path).version()
    assert with_properties > base
    assert OutputWriter(spark, tmp_path, "r3").roll_back("entity_membership", base) is None
    assert RustDeltaTable(path).version() == with_properties

    OutputWriter(spark, tmp_path, "r2").merge(
        "entity_membership",
        spark.createDataFrame([("a1", "E1"), ("a2", "E2"), ("a4", "E4")], schema),
        ["account_id"],
    )
    abandoned = RustDeltaTable(path).version()
    restored = OutputWriter(spark, tmp_path, "r3").roll_back("entity_membership", base)
    assert restored == with_properties

    def rows(version: int | None = None) -> list[tuple[str, str, str]]:
        frame = RustDeltaTable(path, version=version).to_pandas()
        return sorted(frame[["account_id", "entity_id", "run_id"]].itertuples(index=False))

    assert rows() == [("a1", "E1", "r1"), ("a2", "E1", "r1"), ("a3", "E3", "r1")]
    assert ("a4", "E4", "r2") in rows(abandoned)
    table = DeltaTable.forPath(spark, path)
    assert table.history(1).first()["operation"] == "RESTORE"
    assert (
        table.detail().first()["properties"]["delta.logRetentionDuration"]
        == (PROPERTIES["delta.logRetentionDuration"])
    )
    restore = RustDeltaTable(path).version()
    assert OutputWriter(spark, tmp_path, "r4").roll_back("entity_membership", base) is None
    assert RustDeltaTable(path).version() == restore


def test_the_written_tables_must_hold_as_many_rows_as_the_run_resolved(
    spark: SparkSession, tmp_path: Path
) -> None:
    """`_check_written` counts each table at the version the run wrote: equal counts pass, a
    table holding rows the run did not resolve fails the run, naming table, version and both
    counts."""
    writer = OutputWriter(spark, tmp_path, "r1")
    version = writer.replace(
        "entity_membership",
        spark.createDataFrame([("a1", "E1"), ("a2", "E1")], "account_id string, entity_id string"),
    )
    out = Location.parse(tmp_path)
    _check_written(spark, out, {"entity_membership": version}, {"entity_membership": 2})
    with pytest.raises(ResolutionError, match=r"entity_membership: version 0 holds 2 rows, but"):
        _check_written(spark, out, {"entity_membership": version}, {"entity_membership": 3})
