"""Visible progress of long stages: start, end, duration and row counts, through logging."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark import StorageLevel
from pyspark.sql import DataFrame

logger = logging.getLogger(__name__)


class StageClock:
    """Times named stages and keeps their durations and row counts for the run's metrics.

    Two times per stage: `seconds`, the stage's own (the action that materialises it), and
    `spans`, the wall time from the end of the previous stage to the end of this one. Spark is
    lazy, and some steps run eagerly between stages (connected components, cluster control's
    rounds): their time shows in the span of the next stage, so the spans add up to the run's
    wall time from the clock's start and nothing goes unaccounted.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.spans: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self._persisted: list[DataFrame] = []
        self._last_end = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        logger.info("stage %s: started", name)
        started = time.perf_counter()
        yield
        ended = time.perf_counter()
        elapsed = ended - started
        span = ended - self._last_end
        self._last_end = ended
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        self.spans[name] = self.spans.get(name, 0.0) + span
        logger.info(
            "stage %s: done in %.1f s (%.1f s since the previous stage)", name, elapsed, span
        )

    def materialise(self, name: str, frame: DataFrame) -> DataFrame:
        """Persist `frame`, count it once and log the count with the time it took."""
        with self.stage(name):
            persisted = frame.persist(StorageLevel.MEMORY_AND_DISK)
            self._persisted.append(persisted)
            self.rows[name] = persisted.count()
            logger.info("stage %s: %d rows", name, self.rows[name])
        return persisted

    def release(self) -> None:
        """Unpersist every frame `materialise` persisted (at the end of a run)."""
        for frame in self._persisted:
            frame.unpersist(blocking=False)
        self._persisted.clear()
