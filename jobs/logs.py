"""Logging set-up shared by the command-line entry points."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Timestamped lines on stderr, unless the caller (a test, a notebook) already set logging
    up: `logging.basicConfig` does nothing when the root logger has handlers."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
