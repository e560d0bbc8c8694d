"""Side-by-side Spark work from driver threads (`jobs.concurrency`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from jobs.concurrency import Background, run_together


def test_run_together_gives_results_in_order_and_threads_see_local_properties(
    spark: SparkSession,
) -> None:
    context = spark.sparkContext
    context.setLocalProperty("seller_er.test", "inherited")
    try:

        def task(n: int) -> tuple[int, str | None, str]:
            rows = spark.range(n * 1000).count()
            return rows, context.getLocalProperty("seller_er.test"), threading.current_thread().name

        results = run_together([(f"t{n}", lambda n=n: task(n)) for n in (3, 1, 2)], workers=2)
    finally:
        context.setLocalProperty("seller_er.test", None)  # type: ignore[arg-type]
    assert [r[0] for r in results] == [3000, 1000, 2000]
    assert [r[1] for r in results] == ["inherited"] * 3
    assert all(name.startswith("spark") for _, _, name in results)
    # One worker: in the calling thread, in order.
    here = threading.current_thread().name
    assert run_together([("a", lambda: here), ("b", lambda: 2)], workers=1) == [here, 2]


def test_run_together_waits_for_every_task_then_raises_the_first_failure(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "slow")

    def slow_write() -> str:
        time.sleep(0.5)
        spark.range(5).write.format("delta").save(path)
        return "written"

    def fails(message: str) -> None:
        raise ValueError(message)

    with pytest.raises(ValueError, match="first"):
        run_together(
            [("fails", lambda: fails("first")), ("slow", slow_write), ("too", lambda: fails("2"))],
            workers=3,
        )
    # The slow write was not abandoned: it ended before the error came back.
    assert DeltaTable.forPath(spark, path).toDF().count() == 5
    with pytest.raises(ValueError, match="workers"):
        run_together([("a", lambda: 1)], workers=0)


def test_background_overlaps_the_caller_and_hands_back_its_value_or_error(
    spark: SparkSession, caplog: pytest.LogCaptureFixture
) -> None:
    started = threading.Event()

    def work() -> int:
        started.set()
        return spark.range(10).count()

    background = Background(work, name="count")
    assert started.wait(timeout=60)  # running before anyone asks for it
    assert background.result() == 10
    assert background.result() == 10  # asked again: the same value

    def broken() -> None:
        raise RuntimeError("no such table")

    failing = Background(broken, name="broken")
    with caplog.at_level("WARNING", logger="jobs.concurrency"):
        failing.wait()  # logs, does not raise
    assert "broken (in the background) failed: RuntimeError: no such table" in caplog.text
    raised = Background(broken, name="broken")
    for _ in range(2):  # asked again: the same error
        with pytest.raises(RuntimeError, match="no such table"):
            raised.result()
    caplog.clear()
    raised.wait()  # the error was raised to the caller: not logged again
    assert "in the background" not in caplog.text
    # Disabled: runs at once in the calling thread, errors included.
    with pytest.raises(RuntimeError, match="no such table"):
        Background(broken, name="inline", enabled=False)
    assert Background(
        lambda: threading.current_thread().name, name="x", enabled=False
    ).result() == (threading.current_thread().name)
