"""Accuracies of the reported runs, summarised over seeds and judged against the paper; ``results.csv``.

The train stage scores its best checkpoint on the split ``train.eval_split`` names and logs the final metrics
under that split's name (:data:`FINAL_METRIC_PREFIX`): ``test`` -> ``test_acc``, ``test_acc_<type>``,
``test_prior_acc``; ``val`` -> ``best_val_acc``, ``best_val_acc_<type>``, ``best_val_prior_acc`` (and no
``test_*`` metric at all). The report reads the scored split's metrics and names that split wherever it shows
them. Runs log fractions; the paper's tables are in %, so everything here is in points.

The columns are the paper table's (its question types or categories, each with the metric suffix the train stage
logs for it), in its order. A category absent from a split has no metric: it is left out of that column's
statistics (n can differ between columns), never counted as 0. A category the runs log but the table lacks is
kept as an extra column after the table's, marked "(not in the paper)", so no measured number is dropped
silently. Questions the train stage dropped (``<split>_questions_dropped``: their video has no features) are
not scored; their counts are carried beside the accuracies.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from dualvgr.core.errors import StageError
from dualvgr.core.tracking import TAG_CONFIG_HASH, TAG_GIT_COMMIT
from dualvgr.report.collect import Collection, TrainRun
from dualvgr.report.paper import ALL, Column, PaperTable
from dualvgr.report.stats import Judgement, Summary, judge, summarize
from dualvgr.train.metrics import FINAL_METRIC_PREFIX

DEFAULT_SPLIT = "test"  # runs logged before train.eval_split existed were scored on test
SPLITS = ("train", "val", "test")
BEST_VAL = "best_val_acc"  # the model-selection accuracy, logged whatever the scored split


@dataclass(frozen=True)
class ScoredSplit:
    """The split the final metrics were computed on, and their names."""

    name: str  # "test" or "val"

    @property
    def prefix(self) -> str:
        return FINAL_METRIC_PREFIX[self.name]

    def accuracy(self, column: str) -> str:
        """The metric of the column keyed ``column`` (a question type or category, or "all")."""
        return f"{self.prefix}acc" if column == ALL else f"{self.prefix}acc_{column}"

    def category_of(self, metric: str) -> str | None:
        """The column key whose accuracy ``metric`` is (``test_acc_what`` -> what), else None."""
        stem = f"{self.prefix}acc_"
        return metric[len(stem):] if metric.startswith(stem) and len(metric) > len(stem) else None

    @property
    def prior(self) -> str:
        return f"{self.prefix}prior_acc"


def dropped_metric(split: str) -> str:
    return f"{split}_questions_dropped"


def questions_dropped(run: TrainRun, split: str) -> int:
    """Questions of ``split`` the run dropped (0 when it logged none, or logged no count)."""
    return int(run.info.metrics.get(dropped_metric(split), 0))


def scored_split(collection: Collection) -> ScoredSplit:
    """The split every reported run was scored on; StageError if it is unknown or the runs disagree."""
    by_split: dict[str, list[str]] = {}
    for run in collection.runs:
        by_split.setdefault(str(run.value("train.eval_split", DEFAULT_SPLIT)), []).append(run.run_id)
    unknown = sorted(set(by_split) - set(FINAL_METRIC_PREFIX))
    if unknown:
        raise StageError(f"train.eval_split {unknown[0]!r} of run(s) {', '.join(by_split[unknown[0]])} names no split "
                         f"the report knows: expected one of {', '.join(FINAL_METRIC_PREFIX)}")
    if len(by_split) > 1:
        listed = "; ".join(f"{split}: {', '.join(ids)}" for split, ids in by_split.items())
        raise StageError(f"the reported runs of '{collection.experiment}' were scored on different splits ({listed}); "
                         f"their accuracies cannot be pooled: report each split's runs as their own experiment")
    return ScoredSplit(next(iter(by_split), DEFAULT_SPLIT))


@dataclass(frozen=True)
class Results:
    split: ScoredSplit  # what the accuracies below were computed on
    layout: tuple[Column, ...]  # the table's columns, then the extra ones the runs log (in_paper False)
    columns: dict[str, Summary | None]  # column key -> summary over seeds (points), in the layout's order
    judgements: dict[str, Judgement | None]
    paper: dict[str, float | None]  # the paper's (test) value per column
    best_val: Summary | None  # model-selection val accuracy; None when val is the scored split (= the headline)
    prior: Summary | None  # answer prior on the scored split: most frequent train answer per question type
    dropped: dict[str, dict[str, int]]  # run id -> split -> questions dropped (non-zero counts only)
    tolerance: float
    comparable: bool

    @property
    def headline(self) -> Summary | None:
        return self.columns[ALL]

    @property
    def headline_judgement(self) -> Judgement | None:
        return self.judgements[ALL]

    @property
    def extra(self) -> tuple[Column, ...]:
        """The columns the runs log but the paper's table lacks."""
        return tuple(column for column in self.layout if not column.in_paper)

    @property
    def on_val(self) -> bool:
        return self.split.name == "val"


def _points(run: TrainRun, key: str) -> float | None:
    value = run.info.metrics.get(key)
    return None if value is None else 100.0 * value


def _summary(runs: list[TrainRun], key: str) -> Summary | None:
    values = [v for v in (_points(run, key) for run in runs) if v is not None]
    return summarize(values) if values else None


def layout(collection: Collection, table: PaperTable) -> tuple[Column, ...]:
    """The table's columns, then one per category some run logs on the scored split that the table lacks."""
    split = scored_split(collection)
    logged = {key for run in collection.runs for metric in run.info.metrics
              if (key := split.category_of(metric)) is not None}
    extra = sorted(logged - set(table.keys))
    return (*table.columns, *(Column(key, f"{key} (not in the paper)", in_paper=False) for key in extra))


def aggregate(collection: Collection, table: PaperTable, tolerance: float, comparable: bool) -> Results:
    split = scored_split(collection)
    columns_ = layout(collection, table)
    columns = {column.key: _summary(collection.runs, split.accuracy(column.key)) for column in columns_}
    paper = {column.key: table.reference_row.get(column.key) for column in columns_}
    judgements = {
        key: None if summary is None else judge(summary, paper[key], tolerance, comparable)
        for key, summary in columns.items()
    }
    dropped = {run.run_id: counts for run in collection.runs
               if (counts := {s: n for s in SPLITS if (n := questions_dropped(run, s))})}
    best_val = None if split.accuracy(ALL) == BEST_VAL else _summary(collection.runs, BEST_VAL)
    return Results(split, columns_, columns, judgements, paper, best_val,
                   _summary(collection.runs, split.prior), dropped, tolerance, comparable)


def csv_columns(columns: tuple[Column, ...]) -> tuple[str, ...]:
    """``results.csv``'s header: one ``acc_<key>_pct`` per report column (the table's, then the extra ones)."""
    return ("experiment", "pooled_by", "pool_key", "config_hash", "run_id", "seed", "git_commit", "started",
            "eval_split", "device", "precision", *(f"acc_{column.key}_pct" for column in columns), "prior_pct",
            "best_val_pct", "best_epoch_1based", *(dropped_metric(s) for s in SPLITS), "epochs_logged")


def _pct_text(run: TrainRun, key: str) -> str:
    value = _points(run, key)
    return "" if value is None else f"{value:.4f}"


def run_rows(collection: Collection, columns: tuple[Column, ...]) -> list[dict[str, str]]:
    """One row per reported run: accuracies in % on the split ``eval_split`` names, empty where a metric is absent."""
    split = scored_split(collection)
    rows = []
    for run in collection.runs:
        metrics, tags = run.info.metrics, run.info.tags
        pct = partial(_pct_text, run)
        best_epoch = metrics.get("best_epoch")
        row = {
            "experiment": collection.experiment, "pooled_by": collection.pooled_by, "pool_key": collection.pool_key,
            "config_hash": tags.get(TAG_CONFIG_HASH, ""), "run_id": run.run_id, "seed": run.info.seed,
            "git_commit": tags.get(TAG_GIT_COMMIT, ""), "started": run.info.started, "eval_split": split.name,
            "device": tags.get("dualvgr.device", ""), "precision": tags.get("dualvgr.precision", ""),
            **{f"acc_{column.key}_pct": pct(split.accuracy(column.key)) for column in columns},
            "prior_pct": pct(split.prior), "best_val_pct": pct(BEST_VAL),
            "best_epoch_1based": "" if best_epoch is None else str(int(best_epoch) + 1),  # logged 0-based
            **{dropped_metric(s): "" if (v := metrics.get(dropped_metric(s))) is None else str(int(v))
               for s in SPLITS},
            "epochs_logged": str(len(run.curves.get("val_acc", run.curves.get("train_loss", [])))),
        }
        rows.append(row)
    return rows


def write_csv(collection: Collection, columns: tuple[Column, ...], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=csv_columns(columns))
        writer.writeheader()
        writer.writerows(run_rows(collection, columns))
    return path
