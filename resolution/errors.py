"""The project's one exception hierarchy.

Every error the project raises on purpose derives from `ResolutionError`; the job maps
`InputError` to exit status 2 and `QualityCheckError` to exit status 3 (see the data contract).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class ResolutionError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(ResolutionError):
    """The configuration is invalid; the message lists every problem found."""


class InputError(ResolutionError):
    """An input dataset is missing, unreadable or lacks a required column (exit status 2)."""


class QualityCheckError(ResolutionError):
    """A blocking data-quality check failed (exit status 3); the message names the check."""


class ClusteringError(ResolutionError):
    """Connected components could not run as configured (for example its engine is absent)."""


def require_columns(frame: DataFrame, what: str, required: Sequence[str]) -> None:
    """Raise `ResolutionError` naming the columns `frame` (`what`) lacks, and those it has."""
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise ResolutionError(
            f"{what} lacks column(s) {', '.join(missing)}; found: {', '.join(frame.columns)}"
        )
