"""One PNG per experiment, drawn with matplotlib's Agg canvas (no display, no pyplot state).

matplotlib is the optional extra ``benchmark``; without it the benchmark still measures
and writes its tables, JSON and CSV.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .runner import PointResult

FIGURE_INCHES = (6.4, 4.0)
DPI = 100
ROUNDS_OFFSET = 0.1  # each round's dot sits beside its value's error bar, not under it
HEADROOM = 1.3  # the y axis goes this far above the fastest round, leaving room for the legend


def plots_available() -> bool:
    """Whether matplotlib is installed."""
    return importlib.util.find_spec("matplotlib") is not None


def plot_experiment(experiment: str, results: list[PointResult], device: str, path: Path) -> bool:
    """Draw mean samples/s (± std) and every measured round against the tested values.

    Values are placed evenly, as in 1.10's tables (they usually grow geometrically).
    Returns False, drawing nothing, when no point of the experiment succeeded.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summaries = [result.summary() for result in results]
    measured = [index for index, summary in enumerate(summaries) if summary is not None]
    if not measured:
        return False
    figure = Figure(figsize=FIGURE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index in measured:
        speeds = results[index].speeds
        axes.scatter([index + ROUNDS_OFFSET] * len(speeds), speeds, s=12, color="0.55", zorder=2)
    axes.errorbar(
        measured,
        [summaries[index]["mean"] for index in measured],
        yerr=[summaries[index]["std"] for index in measured],
        marker="o",
        capsize=4,
        zorder=3,
        label=f"{device}: mean ± std (grey: each round)",
    )
    axes.set_xticks(range(len(results)))
    axes.set_xticklabels(
        [
            f"{result.point.value}" if summary else f"{result.point.value}\n(failed)"
            for result, summary in zip(results, summaries)
        ]
    )
    axes.set_xlim(-0.5, len(results) - 0.5)
    axes.set_ylim(0, HEADROOM * max(summaries[index]["max"] for index in measured))
    axes.set_xlabel(experiment)
    axes.set_ylabel("samples/s")
    axes.set_title(f"Speed w.r.t. {experiment}")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    return True
