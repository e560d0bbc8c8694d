"""Independent Spark work run side by side from driver threads.

A run ends in many small, independent pieces of work: a Delta MERGE or overwrite per output
table, the entity network and leads, table properties. Each is a chain of small Spark jobs
with driver work in between (planning, Delta log reads and commits), so one at a time they
leave the executors idle much of the time: at 1,000,000 accounts on 2 cores the writes of an
incremental run spent 10 of their 52 s with no job running and most of the rest in jobs of
one or two tasks. Spark schedules jobs from several driver threads at once (FIFO between
them), and Delta commits to different tables do not conflict, so these pieces run in a small
thread pool instead (`outputs.parallel_writes`; 1 runs them one by one, in order).

Threads are started through PySpark's `inheritable_thread_target`, so each sees the calling
thread's local properties (job group, scheduler pool) as pinned-thread mode requires. Every
piece is waited for, failed or not, before the first failure is raised: no write is left
running behind an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from pyspark.sql import SparkSession
from pyspark.util import inheritable_thread_target

logger = logging.getLogger(__name__)

T = TypeVar("T")


def run_together(tasks: Sequence[tuple[str, Callable[[], Any]]], *, workers: int) -> list[Any]:
    """Run `tasks` (`(name, function)`), at most `workers` at a time; their results in order.

    With `workers` 1 (or a single task) they run one by one in the calling thread. Otherwise
    every task runs to its end, and the first failure in `tasks` order is raised then (the
    others are logged). Example::

        run_together(
            [("entities", lambda: writer.replace("entities", entities)),
             ("hub_values", lambda: writer.replace("hub_values", hubs))],
            workers=3,
        )
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or len(tasks) <= 1:
        return [function() for _, function in tasks]
    with ThreadPoolExecutor(
        max_workers=min(workers, len(tasks)), thread_name_prefix="spark"
    ) as pool:
        futures = [pool.submit(_inheriting(function)) for _, function in tasks]
        return _results([name for name, _ in tasks], futures)


def _inheriting(function: Callable[[], T]) -> Callable[[], T]:
    """`function` to run in another thread with the calling thread's Spark local properties
    and the active session's tags (without a session PySpark warns that tags are lost)."""
    session = SparkSession.getActiveSession()
    if session is None:
        return inheritable_thread_target(function)
    return inheritable_thread_target(session)(function)


def _results(names: Sequence[str], futures: Sequence[Future[Any]]) -> list[Any]:
    """The futures' results once all are done; the first failure raised, later ones logged."""
    failures: list[tuple[str, BaseException]] = []
    results = []
    for name, future in zip(names, futures, strict=True):
        error = future.exception()  # waits
        if error is None:
            results.append(future.result())
        else:
            failures.append((name, error))
            results.append(None)
    if failures:
        for name, error in failures[1:]:
            logger.error("%s failed too: %s: %s", name, type(error).__name__, error)
        raise failures[0][1]
    return results


class Background:
    """One piece of work started in a driver thread now and joined later, so that it overlaps
    what the calling thread does meanwhile. `result()` waits and returns its value or raises
    its error, the same however often it is asked; `wait()` only waits (for cleanup paths: an
    error `result()` did not raise is logged).
    With `enabled=False` the work runs at once, in the calling thread (an error is raised
    there and then). Example::

        links = Background(lambda: materialise(found.entity_links), name="links")
        ...  # checks and writes meanwhile
        writer.replace("entity_links", links.result())
    """

    def __init__(self, function: Callable[[], T], *, name: str, enabled: bool = True) -> None:
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._value: Any = None
        self._joined = False
        if enabled:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
            self._future: Future[Any] | None = self._pool.submit(_inheriting(function))
        else:
            self._future = None
            self._value = function()

    def result(self) -> Any:
        if self._future is None:
            return self._value
        try:
            return self._future.result()
        finally:
            self._joined = True
            self._shutdown()

    def wait(self) -> None:
        """Wait for the work to end, whatever its outcome (its error is logged, not raised)."""
        if self._future is None or self._joined:
            return
        error = self._future.exception()
        self._joined = True
        self._shutdown()
        if error is not None:
            logger.warning(
                "%s (in the background) failed: %s: %s", self.name, type(error).__name__, error
            )

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
