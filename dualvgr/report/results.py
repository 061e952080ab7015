"""Accuracies of the reported runs, summarised over seeds and judged against the paper; ``results.csv``.

Train runs log accuracies as fractions (``test_acc``, ``test_acc_<type>``, ``best_val_acc``); the paper's tables
are in %, so everything here is in points. A question type absent from a split has no metric: it is left out of
that column's statistics (n can differ between columns), never counted as 0.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from dualvgr.report.collect import Collection, TrainRun
from dualvgr.report.paper import COLUMNS, QUESTION_TYPES, PaperTable
from dualvgr.report.stats import Judgement, Summary, judge, summarize

TYPE_METRICS = {**{t: f"test_acc_{t}" for t in QUESTION_TYPES}, "all": "test_acc"}


@dataclass(frozen=True)
class Results:
    columns: dict[str, Summary | None]  # what..where, all -> summary over seeds (points)
    judgements: dict[str, Judgement | None]
    best_val: Summary | None
    prior: Summary | None  # test_prior_acc: most frequent train answer per question type, a floor
    eval_splits: tuple[str, ...]  # the splits the "test" metrics were computed on
    tolerance: float
    comparable: bool

    @property
    def headline(self) -> Summary | None:
        return self.columns["all"]

    @property
    def headline_judgement(self) -> Judgement | None:
        return self.judgements["all"]

    @property
    def on_val(self) -> bool:
        return "val" in self.eval_splits

    @property
    def split_label(self) -> str:
        return "/".join(self.eval_splits) if self.eval_splits else "test"


def _points(run: TrainRun, key: str) -> float | None:
    value = run.info.metrics.get(key)
    return None if value is None else 100.0 * value


def _summary(runs: list[TrainRun], key: str) -> Summary | None:
    values = [v for v in (_points(run, key) for run in runs) if v is not None]
    return summarize(values) if values else None


def aggregate(collection: Collection, table: PaperTable, tolerance: float, comparable: bool) -> Results:
    columns = {column: _summary(collection.runs, TYPE_METRICS[column]) for column in COLUMNS}
    judgements = {
        column: None if summary is None else judge(summary, table.reference_row[column], tolerance, comparable)
        for column, summary in columns.items()
    }
    splits = tuple(sorted({str(run.value("train.eval_split", "test")) for run in collection.runs}))
    return Results(columns, judgements, _summary(collection.runs, "best_val_acc"),
                   _summary(collection.runs, "test_prior_acc"), splits, tolerance, comparable)


CSV_COLUMNS = ("experiment", "config_hash", "run_id", "seed", "started", "eval_split", "device", "precision",
               *(f"test_{column}_pct" for column in COLUMNS), "best_val_pct", "best_epoch_1based", "test_prior_pct",
               "epochs_logged")


def _pct_text(run: TrainRun, key: str) -> str:
    value = _points(run, key)
    return "" if value is None else f"{value:.4f}"


def run_rows(collection: Collection) -> list[dict[str, str]]:
    """One row per reported run (accuracies in %, empty where the metric is absent)."""
    rows = []
    for run in collection.runs:
        metrics = run.info.metrics
        pct = partial(_pct_text, run)
        best_epoch = metrics.get("best_epoch")
        row = {
            "experiment": collection.experiment, "config_hash": collection.config_hash, "run_id": run.run_id,
            "seed": run.info.seed, "started": run.info.started,
            "eval_split": str(run.value("train.eval_split", "")),
            "device": run.info.tags.get("dualvgr.device", ""), "precision": run.info.tags.get("dualvgr.precision", ""),
            **{f"test_{column}_pct": pct(TYPE_METRICS[column]) for column in COLUMNS},
            "best_val_pct": pct("best_val_acc"),
            "best_epoch_1based": "" if best_epoch is None else str(int(best_epoch) + 1),  # logged 0-based
            "test_prior_pct": pct("test_prior_acc"),
            "epochs_logged": str(len(run.curves.get("val_acc", run.curves.get("train_loss", [])))),
        }
        rows.append(row)
    return rows


def write_csv(collection: Collection, path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(run_rows(collection))
    return path
