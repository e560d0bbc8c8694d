"""The stage clock: a stage's own time, and the span that also holds the eager work before it."""

from __future__ import annotations

import time

import pytest

from jobs.progress import StageClock


def test_spans_hold_the_work_between_stages_and_add_up_to_the_wall_time() -> None:
    started = time.perf_counter()
    clock = StageClock()
    with clock.stage("first"):
        time.sleep(0.05)
    time.sleep(0.2)  # eager work outside any stage (connected components, say)
    with clock.stage("second"):
        time.sleep(0.05)
    with clock.stage("second"):  # a stage met twice adds up
        time.sleep(0.05)
    wall = time.perf_counter() - started

    assert clock.seconds["first"] == pytest.approx(0.05, abs=0.04)
    assert clock.seconds["second"] == pytest.approx(0.10, abs=0.04)
    assert clock.spans["first"] == pytest.approx(clock.seconds["first"], abs=0.04)
    # The 0.2 s between the stages is in the second stage's span, not in its own time.
    assert clock.spans["second"] - clock.seconds["second"] == pytest.approx(0.2, abs=0.04)
    assert sum(clock.spans.values()) == pytest.approx(wall, abs=0.04)
