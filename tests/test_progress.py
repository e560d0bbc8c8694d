"""The stage clock: a stage's own time, and the span that also holds the eager work before it."""

from __future__ import annotations

import threading

import pytest
from pyspark import SparkContext, inheritable_thread_target
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.progress import JOB_DESCRIPTION, StageClock


class _FakeTime:
    """A `time` module whose clock moves only when `sleep` is called: a loaded machine's real
    sleeps overshoot (a 0.1 s stage measured 0.143 s in a CI run), which tells nothing about
    the clock's accounting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_spans_hold_the_work_between_stages_and_add_up_to_the_wall_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _FakeTime()
    monkeypatch.setattr("jobs.progress.time", fake)
    started = fake.perf_counter()
    clock = StageClock()
    with clock.stage("first"):
        fake.sleep(0.05)
    fake.sleep(0.2)  # eager work outside any stage (connected components, say)
    with clock.stage("second"):
        fake.sleep(0.05)
    with clock.stage("second"):  # a stage met twice adds up
        fake.sleep(0.05)
    wall = fake.perf_counter() - started

    assert clock.seconds["first"] == pytest.approx(0.05)
    assert clock.seconds["second"] == pytest.approx(0.10)
    assert clock.spans["first"] == pytest.approx(0.05)
    # The 0.2 s between the stages is in the second stage's span, not in its own time.
    assert clock.spans["second"] == pytest.approx(0.30)
    assert sum(clock.spans.values()) == pytest.approx(wall)


def test_a_small_materialised_frame_comes_back_in_fewer_partitions(spark: SparkSession) -> None:
    frame = spark.range(0, 1000, numPartitions=16).withColumn("double", F.col("id") * 2)
    parallelism = spark.sparkContext.defaultParallelism
    clock = StageClock(rows_per_partition=100)
    merged = clock.materialise("small", frame)
    try:
        assert clock.rows["small"] == 1000
        assert merged.rdd.getNumPartitions() == max(parallelism, 10)
        assert sorted(r["double"] for r in merged.collect()) == [2 * i for i in range(1000)]
        # Without the setting, or when the frame already has few enough partitions, as it was.
        assert StageClock().materialise("kept", frame).rdd.getNumPartitions() == 16
        # 800 rows in 13 of the 16 partitions: 8 of 100 rows.
        assert clock.materialise("part", frame.where("id < 800")).rdd.getNumPartitions() == 8
        assert clock.rows["part"] == 800
        fine = StageClock(rows_per_partition=10).materialise("fine", frame)
        assert fine.rdd.getNumPartitions() == 16
    finally:
        clock.release()
        frame.unpersist()


def test_a_cut_frame_is_computed_once_and_read_back_from_its_checkpoint(
    spark: SparkSession,
) -> None:
    calls = spark.sparkContext.accumulator(0)

    def seen(value: int) -> int:
        calls.add(1)
        return value

    frame = spark.range(0, 1000, numPartitions=16).withColumn(
        "double", F.udf(seen, "long")(F.col("id")) * 2
    )
    clock = StageClock(rows_per_partition=100)
    cut = clock.materialise("cut", frame, cut=True)
    try:
        assert clock.rows["cut"] == 1000
        assert calls.value == 1000  # every row computed once
        assert sorted(r["double"] for r in cut.collect()) == [2 * i for i in range(1000)]
        assert cut.groupBy().sum("double").first()[0] == 999 * 1000
        assert calls.value == 1000  # read back from the checkpoint, not computed again
        assert cut.rdd.getNumPartitions() == max(spark.sparkContext.defaultParallelism, 10)
        # The lineage is cut: the plan starts at the checkpoint's rows, not at the range.
        plan = cut._jdf.queryExecution().logical().toString()
        assert "LogicalRDD" in plan and "Range" not in plan
        # Nothing left in Spark's cache to release: the checkpoint is the only copy.
        assert not frame.is_cached and not cut.is_cached
        # A clock keeping local checkpoints keeps every stage that way; without, a stage is
        # persisted (in Spark's cache, its lineage whole).
        kept = StageClock(local_checkpoints=True).materialise("kept", frame.where("id < 10"))
        assert calls.value == 1010 and kept.count() == 10 and calls.value == 1010
        assert not kept.is_cached and "Range" not in kept._jdf.queryExecution().logical().toString()
        persisted = clock.materialise("persisted", frame.where("id < 10"))
        assert (
            persisted.is_cached and "Range" in persisted._jdf.queryExecution().logical().toString()
        )
        # A local checkpoint is counted by its own job: one Spark job for the stage.
        context = spark.sparkContext
        context.setLocalProperty("spark.jobGroup.id", "one stage")
        try:
            one = StageClock(local_checkpoints=True, rows_per_partition=100).materialise(
                "one", frame.where("id < 500")
            )
        finally:
            context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        assert len(context.statusTracker().getJobIdsForGroup("one stage")) == 1
        assert one.count() == 500 and calls.value == 1520  # its 500 rows computed once
    finally:
        clock.release()


def test_a_stage_names_its_spark_jobs_and_restores_the_name_before(spark: SparkSession) -> None:
    context = spark.sparkContext
    clock = StageClock()
    assert context.getLocalProperty(JOB_DESCRIPTION) is None
    with clock.stage("outer"):
        assert context.getLocalProperty(JOB_DESCRIPTION) == "stage outer"
        with clock.stage("inner"):
            assert context.getLocalProperty(JOB_DESCRIPTION) == "stage inner"
            # Another thread's stage is its own: the property is per thread.
            seen: list[str | None] = []
            other = threading.Thread(
                target=inheritable_thread_target(
                    lambda: seen.append(_named(clock, "aside", context))
                )
            )
            other.start()
            other.join()
            assert seen == ["stage aside"]
            assert context.getLocalProperty(JOB_DESCRIPTION) == "stage inner"
        assert context.getLocalProperty(JOB_DESCRIPTION) == "stage outer"
    assert context.getLocalProperty(JOB_DESCRIPTION) is None
    # Restored when the stage fails too.
    with pytest.raises(RuntimeError), clock.stage("failing"):
        raise RuntimeError("boom")
    assert context.getLocalProperty(JOB_DESCRIPTION) is None


def _named(clock: StageClock, name: str, context: SparkContext) -> str | None:
    with clock.stage(name):
        return context.getLocalProperty(JOB_DESCRIPTION)
