"""How a frame's lineage is cut: a reliable checkpoint or a local one.

A reliable checkpoint (`DataFrame.checkpoint`) writes the frame to the checkpoint directory,
so that it survives the loss of the executor that computed it, at the cost of a second job
over the frame and a disk write. A local checkpoint (`DataFrame.localCheckpoint`) keeps the
blocks on the executors. When the executors are the driver's own JVM (master `local`,
`local[N]`, `local[*]`, `local[N,F]`), losing an executor means losing the run, so a
reliable checkpoint protects nothing a local one does not; `auto` then takes the local one.
A standalone, YARN or Kubernetes master, and `local-cluster[...]` (executors in processes of
their own), keep reliable checkpoints.

Measured on 2 cores (5,000 accounts, where the fixed costs show): the reliable cuts of cluster
control and of an incremental run's stages took 37 s of a 191 s incremental run.
"""

from __future__ import annotations

import re
from typing import Protocol

from pyspark.sql import DataFrame, SparkSession

from resolution.config import LINEAGE_CUTS

_ONE_PROCESS_MASTER = re.compile(r"local(\[[^\]]*\])?")


def is_one_process_master(master: str) -> bool:
    """Whether a Spark master URL runs the executors in the driver's JVM (`local`,
    `local[N]`, `local[*]`, `local[N,F]`; not `local-cluster[...]`)."""
    return _ONE_PROCESS_MASTER.fullmatch(master.strip()) is not None


def runs_in_one_process(spark: SparkSession) -> bool:
    """Whether `spark`'s executors run in the driver's JVM (`is_one_process_master`)."""
    return is_one_process_master(spark.sparkContext.master)


def resolved_cut(mode: str, spark: SparkSession) -> str:
    """`reliable` or `local`: `mode` (one of `LINEAGE_CUTS`), with `auto` resolved for `spark`.

    `reliable` needs the session's checkpoint directory; without one it falls back to `local`.
    """
    if mode not in LINEAGE_CUTS:
        raise ValueError(f"lineage cut {mode!r}: expected one of {LINEAGE_CUTS}")
    if mode == "auto":
        mode = "local" if runs_in_one_process(spark) else "reliable"
    if mode == "reliable" and not spark.sparkContext.getCheckpointDir():
        return "local"
    return mode


def cut_now(frame: DataFrame, mode: str = "auto") -> DataFrame:
    """`frame` computed now, with its lineage cut as `mode` says (`resolved_cut`)."""
    if resolved_cut(mode, frame.sparkSession) == "reliable":
        return frame.checkpoint(eager=True)
    return frame.localCheckpoint(eager=True)


def local_cut_now(frame: DataFrame, mode: str = "auto") -> DataFrame | None:
    """`frame` computed now and kept as a local checkpoint, or None when `mode` resolves to
    `reliable` (which writes its files in a job of its own, reading the frame again: the
    caller persists it first).

    Eager, not marked for the first action to keep (`localCheckpoint(eager=False)`): the
    stage clock counts the rows in the checkpoint's own job (an observed metric), so a lazy
    mark would save no job. (A full run with lazily marked stage frames once gave other value
    cuts; the cause was cluster control's grouped searches receiving entities in pieces under
    adaptive execution, from run to run whatever the marks, since fixed in
    `resolution.cluster_control.map_groups`.)
    """
    if resolved_cut(mode, frame.sparkSession) == "reliable":
        return None
    return frame.localCheckpoint(eager=True)


class StageHook(Protocol):
    """What the pipelines call at each named stage: `hook(name, frame)` hands `frame` back,
    computed now or not as the hook decides (the job's `StageClock.materialise` keeps,
    counts and times it); `hook(name, frame, cut=True)` also cuts its lineage (`cut_now`)."""

    def __call__(self, name: str, frame: DataFrame, *, cut: bool = False) -> DataFrame: ...


def unstaged(_name: str, frame: DataFrame, *, cut: bool = False) -> DataFrame:
    """The `StageHook` of a caller that times nothing: the frame as it is, or cut when asked."""
    return cut_now(frame) if cut else frame
