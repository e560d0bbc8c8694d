"""The command-line entry points' logging set-up."""

from __future__ import annotations

import logging

import pytest

from jobs.logs import configure_logging


def test_library_housekeeping_is_quiet_and_the_runs_lines_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Great Expectations' and py4j's INFO lines are dropped, their warnings and the job's own
    INFO lines are kept."""
    configure_logging()
    with caplog.at_level(logging.INFO):
        logging.getLogger("great_expectations._docs_decorators").info(
            "Skipping registering function f because it is a closure"
        )
        logging.getLogger("py4j.clientserver").info("Command to send")
        logging.getLogger("great_expectations.core").warning("a warning of theirs")
        logging.getLogger("jobs.progress").info("stage session: started")
    assert [record.getMessage() for record in caplog.records] == [
        "a warning of theirs",
        "stage session: started",
    ]
