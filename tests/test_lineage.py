"""How lineage is cut (`resolution.lineage`): local checkpoints when the executors are the
driver's process, reliable ones on a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from resolution.cluster_control import _cutter
from resolution.config import ClusterControlConfig
from resolution.lineage import cut_now, is_one_process_master, resolved_cut


@pytest.mark.parametrize(
    ("master", "one_process"),
    [
        ("local", True),
        ("local[2]", True),
        ("local[*]", True),
        ("local[2,3]", True),
        ("local[*, 4]", True),
        ("local-cluster[2,1,1024]", False),
        ("spark://10.0.0.5:7077", False),
        ("yarn", False),
        ("k8s://https://api.example:6443", False),
        ("locally", False),
    ],
)
def test_one_process_masters(master: str, one_process: bool) -> None:
    assert is_one_process_master(master) is one_process


def test_auto_resolves_to_local_in_one_process_and_explicit_modes_stand(
    spark: SparkSession,
) -> None:
    assert spark.sparkContext.master.startswith("local")
    assert spark.sparkContext.getCheckpointDir()  # the suite's session has one
    assert resolved_cut("auto", spark) == "local"
    assert resolved_cut("local", spark) == "local"
    assert resolved_cut("reliable", spark) == "reliable"
    with pytest.raises(ValueError, match="lineage cut 'none'"):
        resolved_cut("none", spark)


def _plan(frame) -> str:  # type: ignore[no-untyped-def]
    return frame._jdf.queryExecution().optimizedPlan().toString()


def _checkpoint_files(spark: SparkSession) -> int:
    folder = spark.sparkContext.getCheckpointDir()
    assert folder is not None
    return sum(1 for path in Path(folder.removeprefix("file:")).rglob("part-*"))


def test_a_cut_keeps_the_rows_drops_the_lineage_and_writes_only_when_reliable(
    spark: SparkSession,
) -> None:
    frame = spark.range(100).selectExpr("id", "id % 7 AS bucket").where("bucket < 5")
    rows = sorted(frame.collect())
    for mode, writes in (("auto", False), ("local", False), ("reliable", True)):
        files = _checkpoint_files(spark)
        cut = cut_now(frame, mode)
        assert sorted(cut.collect()) == rows
        plan = _plan(cut)
        assert "Filter" not in plan and "Range" not in plan, plan
        assert (_checkpoint_files(spark) > files) is writes, mode


def test_cluster_controls_cutter_follows_the_mode(spark: SparkSession) -> None:
    frame = spark.range(10).selectExpr("id", "id * 2 AS twice")
    before = spark.sparkContext.getCheckpointDir()
    assert before is not None
    # Lazy local cut: nothing computed until the frame is used; the rows are the same.
    local = _cutter(ClusterControlConfig(lineage_cut="auto"), spark)(frame)
    assert sorted(local.collect()) == sorted(frame.collect())
    assert "Range" not in _plan(local)
    reliable = _cutter(ClusterControlConfig(lineage_cut="reliable"), spark)(frame)
    assert sorted(reliable.collect()) == sorted(frame.collect())
    assert "Range" not in _plan(reliable)
