"""PNG charts of the small frames `resolution.evaluation` returns.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot): nothing opens a window,
no global figure state is kept between calls, and it works on a machine without a display.
Each `draw_*` function returns the figure (for `RunTracker.log_chart`), each `write_*` function
saves it as PNG and returns the written path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

# matplotlib is imported where a figure is made: the job imports it while the Spark session's
# JVM starts (`jobs.resolve_entities`), not before.
if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

_SIZE = (7.0, 4.2)
_DPI = 120
_TRUE_COLOUR = "#2a7fb8"
_FALSE_COLOUR = "#d95f02"
_PREDICTED_COLOUR = "#1b9e77"


def _new_figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _note_empty(figure: Figure, what: str) -> None:
    figure.axes[0].text(0.5, 0.5, f"no {what}", ha="center", va="center")


def save_png(figure: Figure, path: Path) -> Path:
    """Write `figure` to `path` as PNG (parent folders are created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    logger.info("chart written to %s", path)
    return path


def draw_weight_distribution(histogram: pd.DataFrame) -> Figure:
    """Bars of pairs per `match_weight` bin on a log count axis, true over false when known.

    `histogram` is `resolution.evaluation.weight_histogram`'s frame (`bin_lower`, `bin_upper`,
    `pairs`, optionally `true_pairs` and `false_pairs`).
    """
    figure = _new_figure()
    axes = figure.add_subplot()
    axes.set(xlabel="match weight (log2 Bayes factor)", ylabel="pairs", title="Match weights")
    if histogram.empty or int(histogram["pairs"].sum()) == 0:
        _note_empty(figure, "scored pairs")
        return figure
    lower = histogram["bin_lower"].to_numpy(dtype=float)
    width = histogram["bin_upper"].to_numpy(dtype=float) - lower
    if {"true_pairs", "false_pairs"} <= set(histogram.columns):
        false_pairs = histogram["false_pairs"].to_numpy(dtype=float)
        axes.bar(lower, false_pairs, width=width, align="edge", color=_FALSE_COLOUR, label="false")
        axes.bar(
            lower,
            histogram["true_pairs"].to_numpy(dtype=float),
            width=width,
            bottom=false_pairs,
            align="edge",
            color=_TRUE_COLOUR,
            label="true",
        )
        axes.legend()
    else:
        axes.bar(
            lower,
            histogram["pairs"].to_numpy(dtype=float),
            width=width,
            align="edge",
            color=_TRUE_COLOUR,
        )
    axes.set_yscale("log")
    return figure


def write_weight_distribution(histogram: pd.DataFrame, path: Path) -> Path:
    """`draw_weight_distribution` saved as PNG at `path`."""
    return save_png(draw_weight_distribution(histogram), path)


def draw_threshold_curve(curve: pd.DataFrame, *, threshold: float | None = None) -> Figure:
    """Precision, recall and F1 against the probability threshold.

    `curve` is `resolution.evaluation.threshold_curve`'s frame; `threshold`, when given, is the
    configured acceptance threshold, marked with a vertical line.
    """
    figure = _new_figure()
    axes = figure.add_subplot()
    axes.set(
        xlabel="match probability threshold",
        ylabel="pairwise score",
        title="Precision and recall against threshold",
        ylim=(0.0, 1.02),
    )
    if curve.empty:
        _note_empty(figure, "thresholds")
        return figure
    for name, style in (("precision", "-"), ("recall", "-"), ("f1", ":")):
        axes.plot(curve["threshold"], curve[name], style, marker=".", label=name)
    if threshold is not None:
        axes.axvline(threshold, color="grey", linewidth=0.8, label=f"threshold {threshold:g}")
    axes.legend(loc="lower left")
    return figure


def write_threshold_curve(
    curve: pd.DataFrame, path: Path, *, threshold: float | None = None
) -> Path:
    """`draw_threshold_curve` saved as PNG at `path`."""
    return save_png(draw_threshold_curve(curve, threshold=threshold), path)


def draw_entity_sizes(sizes: pd.DataFrame) -> Figure:
    """Entities per size on log-log axes, predicted against true when known.

    `sizes` is `resolution.evaluation.entity_size_histogram`'s frame (`entity_size`,
    `predicted_entities`, optionally `true_entities`); zero counts are not drawn (log axes).
    """
    figure = _new_figure()
    axes = figure.add_subplot()
    axes.set(xlabel="accounts per entity", ylabel="entities", title="Entity sizes")
    if sizes.empty:
        _note_empty(figure, "entities")
        return figure
    series = [("predicted_entities", "predicted", _PREDICTED_COLOUR, "o")]
    if "true_entities" in sizes.columns:
        series.append(("true_entities", "true", _TRUE_COLOUR, "x"))
    for column, label, colour, marker in series:
        shown = sizes[sizes[column] > 0]
        axes.plot(
            shown["entity_size"],
            shown[column],
            linestyle="none",
            marker=marker,
            color=colour,
            label=label,
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.legend()
    return figure


def write_entity_sizes(sizes: pd.DataFrame, path: Path) -> Path:
    """`draw_entity_sizes` saved as PNG at `path`."""
    return save_png(draw_entity_sizes(sizes), path)
