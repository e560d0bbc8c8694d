"""Visible progress of long stages: start, end, duration and row counts, through logging."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark import SparkContext, StorageLevel
from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from resolution.lineage import cut_now, local_cut_now

logger = logging.getLogger(__name__)


JOB_DESCRIPTION = "spark.job.description"


@contextmanager
def _described(name: str) -> Iterator[None]:
    """The Spark jobs run inside carry `stage NAME` as their description (the Spark UI's and
    the event log's name for them, which `bench.event_log` sums by); the description before
    is restored after. Local properties are per thread (PySpark pins Python threads to JVM
    threads), so stages run side by side keep their own."""
    context = SparkContext._active_spark_context
    if context is None:
        yield
        return
    before = context.getLocalProperty(JOB_DESCRIPTION)
    context.setJobDescription(f"stage {name}")
    try:
        yield
    finally:
        context.setJobDescription(before)  # type: ignore[arg-type]


class StageClock:
    """Times named stages and keeps their durations and row counts for the run's metrics.

    Two times per stage: `seconds`, the stage's own (the action that materialises it), and
    `spans`, the wall time from the end of the previous stage to the end of this one. Spark is
    lazy, and some steps run eagerly between stages (connected components, cluster control's
    rounds): their time shows in the span of the next stage, so the spans add up to the run's
    wall time from the clock's start and nothing goes unaccounted. A stage timed in another
    thread than the one that made the clock (work run alongside, `jobs.concurrency`) has its
    `seconds` only: its wall time overlaps the spans of the stages around it.

    `rows_per_partition` (None: off): a materialised frame with more partitions than
    `max(default parallelism, rows / rows_per_partition)` is handed back with that many (its
    partitions merged, no shuffle). An incremental run's frames are small (a few thousand to a
    few hundred thousand rows) but come in the 16 to 98 partitions of the population-sized
    scans and shuffles they were cut from, and every later pass over them paid a task a
    partition: at 1,000,000 accounts 5,600 of its 6,400 tasks ran under 0.1 s each, 146 s of
    task time on 2 cores.

    `local_checkpoints`: when the lineage cut is local (the executors run in the driver's
    process, `resolution.lineage`), every materialised frame is kept as a local checkpoint
    instead of persisted, as a `cut` one is (see `materialise`). Planning then meets a leaf
    where the frame's plan was, and nothing is added to Spark's cache, which every later
    query's planning searches for reusable parts: an incremental run materialises some sixty
    frames, and at 5,000 accounts (its fixed costs) it took 76 s against 85 s. On a cluster
    the frames are persisted as before.
    """

    def __init__(
        self, *, rows_per_partition: int | None = None, local_checkpoints: bool = False
    ) -> None:
        self.local_checkpoints = local_checkpoints
        self.seconds: dict[str, float] = {}
        self.spans: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self._persisted: list[DataFrame] = []
        self._last_end = time.perf_counter()
        self._owner = threading.get_ident()
        self._lock = threading.Lock()
        self._rows_per_partition = rows_per_partition

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        logger.info("stage %s: started", name)
        started = time.perf_counter()
        with _described(name):
            yield
        ended = time.perf_counter()
        elapsed = ended - started
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            if threading.get_ident() != self._owner:
                logger.info("stage %s: done in %.1f s (alongside other work)", name, elapsed)
                return
            span = ended - self._last_end
            self._last_end = ended
            self.spans[name] = self.spans.get(name, 0.0) + span
        logger.info(
            "stage %s: done in %.1f s (%.1f s since the previous stage)", name, elapsed, span
        )

    def materialise(self, name: str, frame: DataFrame, *, cut: bool = False) -> DataFrame:
        """Persist `frame` (or keep it as a local checkpoint, below), count it once and log
        the count with the time it took. A small frame (see the class doc) comes back as a
        view of the kept one with fewer partitions: unpersisting the view releases nothing, a
        persisted frame is released by `release` (local checkpoints by the job's
        `jobs.session.release_persisted`).

        With `cut`, the frame comes back with its lineage cut (`resolution.lineage.cut_now`).
        When that cut is local (the executors run in the driver's process), the frame is
        not persisted but kept as a local checkpoint (`resolution.lineage.local_cut_now`),
        its rows counted by the checkpoint's own job. (Persisted, then cut, it was computed
        into Spark's compressed column cache, read back into the checkpoint's rows, and kept
        twice.) A reliable cut is written from the persisted copy, which is then released.
        With `local_checkpoints` every frame is kept the local way when the cut is local."""
        with self.stage(name):
            local = self._kept_locally(name, frame) if cut or self.local_checkpoints else None
            if local is not None:
                result, rows = local
            else:
                result, rows = self._persisted_and_counted(frame, cut=cut)
            with self._lock:
                self.rows[name] = rows
            logger.info("stage %s: %d rows", name, rows)
        return result

    def _kept_locally(self, name: str, frame: DataFrame) -> tuple[DataFrame, int] | None:
        """`frame` as a local checkpoint (merged into fewer partitions when small) and its row
        count, or None when the cut is reliable. The rows are counted as the checkpoint is
        computed (an observed metric of its job), so no second job counts them."""
        observation = Observation(f"rows of stage {name} {uuid.uuid4().hex}")
        kept = local_cut_now(frame.observe(observation, F.count(F.lit(1)).alias("rows")))
        if kept is None:
            return None
        rows = int(observation.get["rows"])
        wanted = (
            None
            if self._rows_per_partition is None
            # A leaf now: its partition count plans nothing.
            else self._partitions_for(kept, rows, kept.rdd.getNumPartitions())
        )
        return (kept if wanted is None else kept.coalesce(wanted)), rows

    def _persisted_and_counted(self, frame: DataFrame, *, cut: bool) -> tuple[DataFrame, int]:
        """`frame` persisted and counted (merged into fewer partitions when small), then with
        `cut` written as a reliable checkpoint and released; and its row count."""
        kept = frame.persist(StorageLevel.MEMORY_AND_DISK)
        with self._lock:
            self._persisted.append(kept)
        if self._rows_per_partition is None:
            rows = kept.count()
            result = kept
        else:
            # The rows of each partition, in the one job a count takes: its partition count
            # without planning the frame again (`DataFrame.rdd` did, seconds for a large
            # plan). Empty partitions are not seen, so they are not counted.
            per_partition = (
                kept.groupBy(F.spark_partition_id().alias("_partition")).count().collect()
            )
            rows = sum(int(row["count"]) for row in per_partition)
            wanted = self._partitions_for(kept, rows, len(per_partition))
            # A view, not a second persisted copy: persisting it would plan the frame again,
            # and unpersisting the original would invalidate that copy too (Spark rebuilds a
            # cached plan whose cached input goes).
            result = kept if wanted is None else kept.coalesce(wanted)
        if cut:
            result = cut_now(result)
            with self._lock:
                self._persisted = [other for other in self._persisted if other is not kept]
            kept.unpersist()
        return result, rows

    def _partitions_for(self, frame: DataFrame, rows: int, filled: int) -> int | None:
        """The partition count a frame of `rows` rows in `filled` partitions (the non-empty
        ones, where they were counted one by one) is merged down to, or None to keep it."""
        assert self._rows_per_partition is not None
        parallelism = frame.sparkSession.sparkContext.defaultParallelism
        wanted = max(parallelism, -(-rows // self._rows_per_partition), 1)
        return wanted if wanted < filled else None

    def release(self) -> None:
        """Unpersist every frame `materialise` persisted (at the end of a run)."""
        for frame in self._persisted:
            frame.unpersist(blocking=False)
        self._persisted.clear()
