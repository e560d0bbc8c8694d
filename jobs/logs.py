"""Logging set-up shared by the command-line entry points."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Libraries whose INFO lines are their own housekeeping, not the run's: py4j logs every call
# to the JVM, and Great Expectations over 200 lines a run as it registers its classes
# ("Skipping registering function ..."). Their warnings and errors still show.
QUIET_LIBRARIES = ("py4j", "great_expectations")


def configure_logging(level: int = logging.INFO) -> None:
    """Timestamped lines on stderr, unless the caller (a test, a notebook) already set logging
    up: `logging.basicConfig` does nothing when the root logger has handlers. The loggers of
    `QUIET_LIBRARIES` are set to WARNING either way."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
