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
    """Times named stages and keeps their durations and row counts for the run's metrics."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        logger.info("stage %s: started", name)
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        logger.info("stage %s: done in %.1f s", name, elapsed)

    def materialise(self, name: str, frame: DataFrame) -> DataFrame:
        """Persist `frame`, count it once and log the count with the time it took."""
        with self.stage(name):
            persisted = frame.persist(StorageLevel.MEMORY_AND_DISK)
            self.rows[name] = persisted.count()
            logger.info("stage %s: %d rows", name, self.rows[name])
        return persisted
