"""The Delta output writer: replaced and ledger tables, table properties and maintenance."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable as RustDeltaTable
from pyspark.sql import SparkSession

from jobs.outputs import OutputWriter, RunRecord

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
