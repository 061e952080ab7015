"""The report's figures as PNG files: accuracy per question type or category, and training curves per seed.

The accuracy figure has one pair of bars per column of the paper's table (plus the categories the runs log that
the table lacks, marked with "*"), its group headings written under their columns' labels.

matplotlib's object API on the Agg canvas (no pyplot, no display, no global backend switch), so figures can be
drawn from any thread or a server without ``DISPLAY``.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dualvgr.report.paper import Column
from dualvgr.report.stats import Summary

DPI = 110
PAPER_COLOUR, OURS_COLOUR = "#8c8c8c", "#1f77b4"


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=DPI, format="png", metadata={"Software": "dualvgr report"})
    return path


def accuracy_by_type(path: Path, columns: tuple[Column, ...], paper: dict[str, float | None],
                     ours: dict[str, Summary | None], *, paper_label: str, ours_label: str, title: str) -> Path:
    """Grouped bars per column (in ``columns``' order): the paper's value and ours (mean, std as error bar)."""
    # Tables range from 6 to 16 columns; labels stay readable at about 0.6 inch a column.
    figure = Figure(figsize=(max(7.5, 0.62 * len(columns) + 2), 3.8 + (0.35 if _groups(columns) else 0)),
                    layout="constrained")
    axes = figure.add_subplot()
    width = 0.38
    labelled = set()

    def label(name: str) -> str | None:  # each series in the legend once
        if name in labelled:
            return None
        labelled.add(name)
        return name

    for i, column in enumerate(columns):
        value = paper.get(column.key)
        if value is not None:
            axes.bar(i - width / 2, value, width, color=PAPER_COLOUR, label=label(paper_label))
            axes.annotate(f"{value:.1f}", (i - width / 2, value), ha="center", va="bottom", fontsize=7)
        summary = ours.get(column.key)
        if summary is not None:
            axes.bar(i + width / 2, summary.mean, width, color=OURS_COLOUR, label=label(ours_label),
                     yerr=summary.std or 0.0, capsize=3, ecolor="black")
            top = summary.mean + (summary.std or 0.0)
            axes.annotate(f"{summary.mean:.1f}", (i + width / 2, top), ha="center", va="bottom", fontsize=7)
    axes.set_xticks(range(len(columns)), [column.label if column.in_paper else f"{column.key}*"
                                          for column in columns], fontsize=8)
    if groups := _groups(columns):  # group headings on a second tick row under their columns
        below = axes.secondary_xaxis("bottom")
        below.set_xticks([(first + last) / 2 for _, first, last in groups], [name for name, _, _ in groups],
                         fontsize=8, fontweight="bold")
        below.tick_params(axis="x", length=0, pad=16)
        below.spines["bottom"].set_visible(False)
    if any(not column.in_paper for column in columns):
        axes.set_xlabel("* not in the paper's table", fontsize=7, loc="right")
    axes.set_ylabel("accuracy (%)")
    axes.set_ylim(0, 100)
    axes.set_title(title, fontsize=10)
    if labelled:
        axes.legend(fontsize=8, loc="upper left")
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def _groups(columns: tuple[Column, ...]) -> list[tuple[str, int, int]]:
    """(group, first index, last index) of each run of consecutive columns under one group heading."""
    runs: list[tuple[str, int, int]] = []
    for i, column in enumerate(columns):
        if column.group and runs and runs[-1][0] == column.group and runs[-1][2] == i - 1:
            runs[-1] = (column.group, runs[-1][1], i)
        elif column.group:
            runs.append((column.group, i, i))
    return runs


def training_curves(path: Path, curves: dict[str, dict[str, list[tuple[int, float]]]], *, title: str) -> Path:
    """Train loss and val accuracy per epoch (1-based on the axis), one line per seed.

    ``curves``: seed -> metric -> [(epoch, value)] (epochs 0-based, as logged); accuracies are fractions, drawn in %.
    """
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    loss_axes, acc_axes = figure.subplots(1, 2)
    drawn = False
    for label, metrics in curves.items():
        if metrics.get("train_loss"):
            epochs, values = zip(*metrics["train_loss"], strict=True)
            loss_axes.plot([e + 1 for e in epochs], values, marker="o", markersize=3, label=label)
            drawn = True
        if metrics.get("val_acc"):
            epochs, values = zip(*metrics["val_acc"], strict=True)
            acc_axes.plot([e + 1 for e in epochs], [100 * v for v in values], marker="o", markersize=3, label=label)
            drawn = True
    loss_axes.set(title="train loss", xlabel="epoch", ylabel="loss")
    acc_axes.set(title="val accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for axes in (loss_axes, acc_axes):
        axes.grid(alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8, title="seed", title_fontsize=8)
        else:
            axes.text(0.5, 0.5, "no per-epoch metrics logged", ha="center", va="center", transform=axes.transAxes)
    figure.suptitle(title if drawn else f"{title} (no curves)", fontsize=10)
    return _save(figure, path)
