"""The paper's published tables, shipped as data (``paper_tables.yaml``) with their columns and source.

One table per data set (MSVD-QA, MSRVTT-QA, SVQA), accuracy in %, "/" = not reported. Each table declares its
own columns (the question types or categories the paper prints, with the metric suffix the train stage logs for
each, and optional header groups), the row a reproduction is judged against (DualVGR; the other methods are
context), the experiment file holding the paper's configuration (what the fidelity audit compares runs with),
the ``dataset.kind`` of the paper's data and the kinds that stand in for it (demos in its format), and the
published split sizes (by questions, or by videos where question counts are not published), which tell a
relocated copy of the standard data from other data. Everything the report knows about a data set comes from
here: no module of the report branches on a data set's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml

from dualvgr.core.errors import StageError
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.spec import load_spec

DATA_FILE = "paper_tables.yaml"
WHERE = f"dualvgr/report/{DATA_FILE}"
ALL = "all"  # the column of the overall accuracy (<prefix>acc); every table has it
NONE = "none"  # paper.table of an experiment that reproduces no published table
SPLIT_UNITS = ("questions", "videos")  # what split sizes count; the data stage logs <unit>_<split>
_TABLE_KEYS = {"title", "spec", "dataset", "stand_ins", "category", "source", "columns", "reference", "rows",
               "split_sizes"}


@dataclass(frozen=True)
class PaperSource:
    paper: str
    transcribed_from: str
    protocol: str


@dataclass(frozen=True)
class Column:
    """One column of a table: a question type or category, or the overall accuracy (key ``all``)."""

    key: str  # the metric suffix: <prefix>acc_<key>; "all" = <prefix>acc
    label: str  # as the paper prints it
    group: str = ""  # the heading over consecutive columns ("Integer comparison"); "" = none
    in_paper: bool = True  # False: a category the runs log that the paper's table lacks (the report adds it)

    @property
    def heading(self) -> str:
        """The label with its group, where one line must say both (Markdown, figure ticks)."""
        return f"{self.group}: {self.label}" if self.group else self.label


@dataclass(frozen=True)
class SplitSizes:
    """The published size of each split, counted by ``unit``; a tuple of accepted counts per split."""

    unit: str  # "questions" or "videos"
    counts: dict[str, tuple[int, ...]]

    def metric(self, split: str) -> str:
        """The data stage's metric holding this count (questions_train, videos_test)."""
        return f"{self.unit}_{split}"

    def describe(self) -> str:
        """``8400 / 1200 / 2400 videos (train / val / test)``."""
        counts = " / ".join(" or ".join(map(str, accepted)) for accepted in self.counts.values())
        return f"{counts} {self.unit} ({' / '.join(self.counts)})"


@dataclass(frozen=True)
class Category:
    name: str  # "question type", "question category": what one column is
    rule: str  # how a question gets one ("the question's first word ...")


@dataclass(frozen=True)
class PaperTable:
    """One data set's comparison table: rows of method -> accuracy (%) per column key, None where not reported."""

    key: str  # the value of paper.table
    title: str
    spec_file: str  # experiments/<spec_file>: the paper's configuration
    dataset: str  # dataset.kind of the paper's data
    stand_ins: tuple[str, ...]  # dataset kinds in this data set's format that reproduce no table
    category: Category
    columns: tuple[Column, ...]  # in the paper's order, "all" among them
    reference: str  # the row a reproduction is judged against
    rows: dict[str, dict[str, float | None]]
    split_sizes: SplitSizes
    source: PaperSource

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(column.key for column in self.columns)

    @property
    def grouped(self) -> bool:
        return any(column.group for column in self.columns)

    @property
    def reference_row(self) -> dict[str, float | None]:
        return self.rows[self.reference]

    @property
    def context_rows(self) -> dict[str, dict[str, float | None]]:
        return {method: row for method, row in self.rows.items() if method != self.reference}


@lru_cache(maxsize=1)
def _raw() -> dict:
    text = resources.files("dualvgr.report").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _text(value: str) -> str:
    return " ".join(str(value).split())


def table_keys() -> tuple[str, ...]:
    return tuple(_raw()["tables"])


def _columns(key: str, raw: list[dict[str, Any]]) -> tuple[Column, ...]:
    columns = tuple(Column(str(c["key"]), str(c["label"]), str(c.get("group") or "")) for c in raw)
    keys = [c.key for c in columns]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{DATA_FILE}: table {key} lists a column key twice: {keys}")
    if ALL not in keys:
        raise ValueError(f"{DATA_FILE}: table {key} has no column '{ALL}' (the overall accuracy the headline judges)")
    seen: list[str] = []
    for column in columns:  # a group heading spans consecutive columns only
        if column.group and column.group in seen and seen[-1] != column.group:
            raise ValueError(f"{DATA_FILE}: table {key}: the columns of group '{column.group}' are not consecutive")
        seen.append(column.group)
    return columns


def _split_sizes(key: str, raw: dict[str, Any]) -> SplitSizes:
    unit = raw.get("by")
    if unit not in SPLIT_UNITS:
        raise ValueError(f"{DATA_FILE}: table {key}: split_sizes.by is {unit!r}, expected one of {SPLIT_UNITS}")
    return SplitSizes(unit, {split: tuple(int(n) for n in counts) for split, counts in raw.items() if split != "by"})


def parse_table(key: str, raw: dict[str, Any], paper: str) -> PaperTable:
    """One entry of the data file as a :class:`PaperTable`; ValueError naming the table and what is wrong."""
    unknown, missing = sorted(set(raw) - _TABLE_KEYS), sorted(_TABLE_KEYS - set(raw))
    if unknown or missing:
        raise ValueError(f"{DATA_FILE}: table {key}: unknown keys {unknown}, missing keys {missing}; expected "
                         f"{sorted(_TABLE_KEYS)}")
    columns = _columns(key, raw["columns"])
    rows = {}
    for method, values in raw["rows"].items():
        if len(values) != len(columns):
            raise ValueError(f"{DATA_FILE}: {key}/{method} has {len(values)} values, expected {len(columns)} "
                             f"(one per column: {', '.join(c.key for c in columns)})")
        rows[str(method)] = {c.key: (None if v is None else float(v)) for c, v in zip(columns, values, strict=True)}
    if raw["reference"] not in rows:
        raise ValueError(f"{DATA_FILE}: table {key}: reference row {raw['reference']!r} is not among its rows "
                         f"{list(rows)}")
    source = raw["source"]
    return PaperTable(
        key=key, title=str(raw["title"]), spec_file=str(raw["spec"]), dataset=str(raw["dataset"]),
        stand_ins=tuple(raw["stand_ins"] or ()), category=Category(raw["category"]["name"], raw["category"]["rule"]),
        columns=columns, reference=raw["reference"], rows=rows, split_sizes=_split_sizes(key, raw["split_sizes"]),
        source=PaperSource(_text(paper), _text(source["transcribed_from"]), _text(source["protocol"])),
    )


@lru_cache(maxsize=None)
def paper_table(key: str) -> PaperTable:
    """The table for ``paper.table`` = ``key``; StageError listing the tables the report ships otherwise."""
    tables = _raw()["tables"]
    if key not in tables:
        raise StageError(f"no published table '{key}': the paper's tables ({WHERE}) are {', '.join(tables)}")
    return parse_table(key, tables[key], _raw()["source"]["paper"])


def table_of_kind(tables: Iterable[PaperTable] | None = None) -> dict[str, str]:
    """dataset.kind -> the table it is shown beside: each table's own data set and its stand-ins (of ``tables``,
    default the shipped ones); a kind claimed by two tables is an error naming both."""
    mapping: dict[str, str] = {}
    for table in tables if tables is not None else map(paper_table, table_keys()):
        for kind in (table.dataset, *table.stand_ins):
            if mapping.setdefault(kind, table.key) != table.key:
                raise ValueError(f"{DATA_FILE}: dataset kind '{kind}' belongs to both tables {mapping[kind]} and "
                                 f"{table.key}: a data set is shown beside one table")
    return mapping


@dataclass(frozen=True)
class TableChoice:
    """The table a report is shown beside, and whether its numbers are comparable (else why not)."""

    table: PaperTable
    comparable: bool
    why_not: str = ""  # a clause for the banner ("dataset.kind synthetic is ..."), "" when comparable


def choose_table(spec_table: str, kinds: dict[str, str | None]) -> TableChoice:
    """The table for ``paper.table`` = ``spec_table``, judged against the reported runs' data sets.

    ``kinds``: run id -> its ``dataset.kind`` (None where its spec is unreadable: it does not decide). With
    ``none`` the table is the one of the newest run's data set (``kinds``' last entry with a kind), never
    comparable. Otherwise the numbers are comparable when every known kind is the table's own data set.
    """
    known = {run: kind for run, kind in kinds.items() if kind is not None}
    if spec_table == NONE:
        kind = next(reversed(known.values()), None)
        mapping = table_of_kind()
        if kind not in mapping:
            recorded = (f"dataset.kind '{kind}' (run {next(reversed(known))})" if kind is not None else
                        "no dataset.kind (the runs' specs are unreadable)")
            raise StageError(
                f"paper.table is none and the runs have {recorded}, which no published table covers ({WHERE} maps "
                f"dataset kinds {', '.join(sorted(mapping))} to tables); set paper.table to one of "
                f"{', '.join(table_keys())} to show the report beside that table, marked not comparable")
        table = paper_table(mapping[kind])
        why = (f"paper.table is none and dataset.kind {kind} is a stand-in in the {table.title} format, not the "
               f"paper's data" if kind in table.stand_ins else
               f"paper.table is none: the experiment claims no published table (its data, dataset.kind {kind}, is "
               f"the paper's {table.title} data)")
        return TableChoice(table, False, why)
    table = paper_table(spec_table)
    other = sorted({kind for kind in known.values() if kind != table.dataset})
    if other:
        return TableChoice(table, False, f"the runs use dataset.kind {', '.join(other)}, not the paper's "
                                         f"{table.title} data ({table.dataset})")
    return TableChoice(table, True)


def spec_roots() -> tuple[Path, ...]:
    """Where the paper's experiment files are looked for: ``experiments/`` of the checkout the package is in, then
    of the working directory."""
    return Path(__file__).resolve().parents[2] / "experiments", Path.cwd() / "experiments"


def paper_spec_path(table: PaperTable) -> Path:
    """``experiments/<spec>`` in the first of :func:`spec_roots` that has it."""
    candidates = [root / table.spec_file for root in spec_roots()]
    for path in candidates:
        if path.is_file():
            return path
    raise StageError(
        f"the paper's configuration {table.spec_file} was not found (looked in "
        f"{', '.join(str(p.parent) for p in candidates)}); run the report from the repository checkout"
    )


def paper_spec(table: PaperTable) -> ExperimentSpec:
    return load_spec(paper_spec_path(table))
