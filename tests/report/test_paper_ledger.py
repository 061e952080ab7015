"""The data the report ships: the paper's tables (with their source) and the ledger of bugs and quirks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dualvgr.core.errors import SpecError, StageError
from dualvgr.core.spec import load_spec
from dualvgr.report.ledger import deviations, ledger, parse_entry
from dualvgr.report.paper import choose_table, paper_spec, paper_table, parse_table, table_keys, table_of_kind
from tests.conftest import FIXTURES_DIR
from tests.report.fakes import SVQA_CATEGORIES, svqa_stand_ins

REPO = Path(__file__).resolve().parents[2]
# The published numbers, transcribed apart from paper_tables.yaml; every table the report ships is checked against
# its section, so a slip in either shows.
REFERENCE = FIXTURES_DIR / "paper_results.md"


def test_dualvgr_rows_are_the_published_numbers():
    msvd, msrvtt = paper_table("msvd-qa"), paper_table("msrvtt-qa")
    assert msvd.reference_row == dict(what=28.65, who=53.82, how=80.0, when=70.69, where=46.43, all=39.03)
    assert msrvtt.reference_row == dict(what=29.4, who=45.56, how=79.76, when=76.66, where=36.4, all=35.52)
    for table in (msvd, msrvtt):
        assert list(table.context_rows) == ["HME", "HGA", "HCRN", "TSN"], "the paper's other rows are context"
        assert table.rows["HCRN"]["all"] is not None and table.rows["HCRN"]["what"] is None, "'/' = not reported"
    assert "arXiv 2107.04768" in msvd.source.paper and "7fbd38e" in msvd.source.transcribed_from


def test_svqa_table_has_the_original_categories_grouped_as_the_paper_prints_them():
    table = paper_table("svqa")
    assert table.keys == (*SVQA_CATEGORIES, "all"), "the original's 15 category names, in the paper's order"
    assert list(table.context_rows) == ["Unified-Attn", "SA+TA-GRU", "STRN"] and table.reference == "DualVGR"
    assert table.reference_row["all"] == 50.38 and table.reference_row["query_actiontype"] == 64.19
    groups = [(c.group, c.label) for c in table.columns]
    assert groups[:2] == [("", "Exist"), ("", "Count")] and groups[-1] == ("", "All")
    assert groups[2:5] == [("Integer comparison", label) for label in ("More", "Equal", "Less")]
    for start, group in ((5, "Attribute comparison"), (10, "Query")):
        assert groups[start:start + 5] == [(group, label) for label in ("Color", "Size", "Type", "Dir", "Shape")]
    assert (table.dataset, table.stand_ins, table.spec_file) == ("svqa", ("synthetic-svqa",), "svqa.yaml")
    assert table.split_sizes.unit == "videos", "SVQA publishes videos per split, not questions"
    assert table.split_sizes.counts == {"train": (8400,), "val": (1200,), "test": (2400,)}
    assert "SVQA_SoTA.png" in table.source.transcribed_from


def _reference_rows(title: str) -> tuple[list[str], dict[str, list[str]]]:
    """(column headings, method -> cells) of the reference document's section ``## <title>``."""
    text = REFERENCE.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}( [^\n]*)?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"{REFERENCE} has no section '## {title}'"
    block = found.group(2)
    lines = [[c.strip().strip("*") for c in line.strip().strip("|").split("|")]
             for line in block.splitlines() if line.startswith("|") and not line.startswith("|---")]
    header, *rows = lines
    return header[1:], {cells[0]: cells[1:] for cells in rows}


@pytest.mark.parametrize("key", table_keys())
def test_tables_match_the_reference_document(key):
    table = paper_table(key)
    headings, rows = _reference_rows(table.title)
    assert len(headings) == len(table.columns), f"{key}: {len(table.columns)} columns, the reference has {headings}"
    for heading, column in zip(headings, table.columns, strict=True):
        assert heading.endswith(column.label), f"{key}: column {column.key} ({column.label}) is {heading!r} there"
    assert set(rows) == set(table.rows), f"{key}: rows {list(table.rows)}, the reference has {list(rows)}"
    for method, cells in rows.items():
        expected = [None if c == "/" else float(c) for c in cells]
        assert [table.rows[method][k] for k in table.keys] == expected, f"{key}/{method} differs from the reference"


def test_each_table_names_its_paper_configuration(tmp_path):
    with svqa_stand_ins(tmp_path):  # experiments/svqa.yaml comes with the SVQA data set
        for key in table_keys():
            table = paper_table(key)
            spec = paper_spec(table)
            assert spec.paper.table == key, f"experiments/{table.spec_file} must declare paper.table: {key}"
            assert spec.dataset.kind == table.dataset, f"experiments/{table.spec_file}: dataset.kind {table.dataset}"


@pytest.mark.parametrize("kind, table", [("synthetic", "msvd-qa"), ("synthetic-svqa", "svqa"), ("svqa", "svqa"),
                                         ("msrvtt-qa", "msrvtt-qa")])
def test_demo_is_shown_beside_the_table_of_its_data_set_not_comparable(kind, table):
    choice = choose_table("none", {"run1": kind})
    assert (choice.table.key, choice.comparable) == (table, False)
    assert choice.why_not.startswith("paper.table is none")
    assert table_of_kind()[kind] == table


def test_runs_on_another_data_set_than_the_table_are_not_comparable():
    assert choose_table("svqa", {"a": "svqa", "b": None}).comparable, "an unreadable spec does not decide"
    choice = choose_table("svqa", {"a": "synthetic-svqa"})
    assert not choice.comparable
    assert choice.why_not == "the runs use dataset.kind synthetic-svqa, not the paper's SVQA data (svqa)"


def test_demo_on_a_data_set_no_table_covers_fails_with_the_tables_to_choose():
    with pytest.raises(StageError) as error:
        choose_table("none", {"0123abcd": "my-qa"})
    assert str(error.value) == (
        "paper.table is none and the runs have dataset.kind 'my-qa' (run 0123abcd), which no published table covers "
        "(dualvgr/report/paper_tables.yaml maps dataset kinds msrvtt-qa, msvd-qa, svqa, synthetic, synthetic-svqa "
        "to tables); set paper.table to one of msvd-qa, msrvtt-qa, svqa to show the report beside that table, "
        "marked not comparable")


def test_unknown_published_table_lists_the_tables():
    with pytest.raises(StageError) as error:
        paper_table("tgif-qa")
    assert str(error.value) == ("no published table 'tgif-qa': the paper's tables (dualvgr/report/paper_tables.yaml) "
                                "are msvd-qa, msrvtt-qa, svqa")


def test_paper_table_not_shipped_is_a_spec_error_listing_the_tables():
    with pytest.raises(SpecError) as error:
        load_spec(REPO / "experiments" / "demo.yaml", ["paper.table=svqa2"])
    assert str(error.value) == (
        f"{REPO / 'experiments' / 'demo.yaml'}: 'paper.table' must be one of none, msvd-qa, msrvtt-qa, svqa (the "
        f"tables in dualvgr/report/paper_tables.yaml), got 'svqa2'; did you mean 'svqa'?")
    assert load_spec(REPO / "experiments" / "demo.yaml", ["paper.table=svqa"]).paper.table == "svqa"


def test_data_set_claimed_by_two_tables_is_refused():
    first = parse_table("t", _raw_table(stand_ins=["demo"]), "paper")
    second = parse_table("u", _raw_table(dataset="u", stand_ins=["demo"]), "paper")
    assert table_of_kind([first]) == {"t": "t", "demo": "t"}
    with pytest.raises(ValueError) as error:
        table_of_kind([first, second])
    assert str(error.value) == ("paper_tables.yaml: dataset kind 'demo' belongs to both tables t and u: a data set is "
                                "shown beside one table")


def _raw_table(**changes) -> dict:
    raw = {"title": "T", "spec": "t.yaml", "dataset": "t", "stand_ins": [], "reference": "DualVGR",
           "category": {"name": "question type", "rule": "r"}, "source": {"transcribed_from": "x", "protocol": "p"},
           "columns": [{"key": "a", "label": "A", "group": "G"}, {"key": "all", "label": "All"}],
           "rows": {"DualVGR": [1.0, 2.0]}, "split_sizes": {"by": "videos", "train": [1]}}
    return raw | changes


@pytest.mark.parametrize("changes, message", [
    ({"rows": {"DualVGR": [1.0]}}, "paper_tables.yaml: t/DualVGR has 1 values, expected 2 (one per column: a, all)"),
    ({"columns": [{"key": "a", "label": "A"}]},
     "paper_tables.yaml: table t has no column 'all' (the overall accuracy the headline judges)"),
    ({"columns": [{"key": "a", "label": "A"}, {"key": "a", "label": "B"}, {"key": "all", "label": "All"}],
      "rows": {"DualVGR": [1, 2, 3]}}, "paper_tables.yaml: table t lists a column key twice: ['a', 'a', 'all']"),
    ({"columns": [{"key": "a", "label": "A", "group": "G"}, {"key": "b", "label": "B"},
                  {"key": "c", "label": "C", "group": "G"}, {"key": "all", "label": "All"}],
      "rows": {"DualVGR": [1, 2, 3, 4]}}, "paper_tables.yaml: table t: the columns of group 'G' are not consecutive"),
    ({"reference": "Ours"}, "paper_tables.yaml: table t: reference row 'Ours' is not among its rows ['DualVGR']"),
    ({"split_sizes": {"by": "clips", "train": [1]}},
     "paper_tables.yaml: table t: split_sizes.by is 'clips', expected one of ('questions', 'videos')"),
    ({"videos": 1970}, "paper_tables.yaml: table t: unknown keys ['videos'], missing keys []; expected ['category', "
                       "'columns', 'dataset', 'reference', 'rows', 'source', 'spec', 'split_sizes', 'stand_ins', "
                       "'title']"),
])
def test_malformed_paper_table_is_refused_naming_table_and_fault(changes, message):
    with pytest.raises(ValueError) as error:
        parse_table("t", _raw_table(**changes), "paper")
    assert str(error.value) == message
    assert parse_table("t", _raw_table(), "paper").columns[0].heading == "G: A", "the unchanged entry parses"


def test_ledger_statuses_and_required_entries():
    entries = ledger()
    order = ("kept", "deviation", "fixed")
    assert {e.status for e in entries} == set(order)
    assert [e.status for e in entries] == sorted((e.status for e in entries), key=order.index), \
        "kept quirks first, then deviations, then fixed bugs"
    kept = " ".join(f"{e.bug} {e.title}" for e in entries if e.status == "kept")
    for needle in ("B25", "0.224", "Motion frames are not normalised", "UNK1", "B11", "HSIC summed",
                   "gradient spike"):
        assert needle in kept, f"the ledger must list the kept quirk '{needle}'"
    fixed = {e.bug for e in entries if e.status == "fixed"}
    assert {"B1", "B2", "B3", "B7", "B20", "B22", "B30"} <= fixed


def test_ledger_bug_numbers_and_locations_exist():
    for entry in ledger():
        assert re.fullmatch(r"B([1-9]|[1-3]\d|4[0-4])|§\d(\.\d)?|D\d+", entry.bug), \
            f"{entry.bug}: not a B-number, a § or a D-number"
        assert entry.paths, f"{entry.bug} names no harness location"
        for path in entry.paths:
            assert (REPO / path).exists(), f"ledger entry {entry.bug} points at {path}, which does not exist"


@pytest.mark.parametrize("bug, needles", [
    ("D1", ("Initial weights", "gain 1.414", "N(0, 0.01)", "seed 666 gives other initial weights")),
    ("D2", ("shuffle", "(seed, epoch)", "global RNG")),
    ("D3", ("fused=True", "float rounding")),
    ("D4", ("BatchNorm folded", "float32 rounding")),
    ("D5", ("`nan`", "`null`", "`n/a`", "NaN key", "zero rows")),
    ("D6", ("nltk.word_tokenize", "vocabulary's size and order")),
])
def test_every_implementation_deviation_has_a_ledger_entry(bug, needles):
    entry = {e.bug: e for e in deviations()}.get(bug)
    assert entry is not None, f"the ledger lacks deviation {bug}"
    for needle in needles:
        assert needle in entry.title, f"{bug} must say {needle!r}: {entry.title}"
    assert entry.effect, f"{bug} must say how it can change the numbers"


def test_deviation_evidence_names_tags_a_stage_writes():
    """A tag the audit reads must be one some stage sets (a renamed tag would silently show no evidence)."""
    sources = " ".join(path.read_text(encoding="utf-8") for path in (REPO / "dualvgr").rglob("*.py")
                       if "report" not in path.parts)
    named = [tag for e in deviations() for _, tags in e.evidence for tag in tags]
    named += [tag for e in deviations() for _, tag, _ in e.unless]
    assert "dualvgr.tokenizer" in named, "the tokenizer deviation shows the questions run's tokenizer tag"
    for tag in named:
        assert f'"{tag}"' in sources, f"no stage writes the tag {tag} the ledger's evidence names"


@pytest.mark.parametrize("raw, message", [
    ({"bug": "D9", "title": "t", "status": "maybe", "where": "w"},
     "ledger.yaml: D9 has status 'maybe', expected one of ('kept', 'deviation', 'fixed')"),
    ({"bug": "D9", "title": "t", "status": "deviation", "where": "w"},
     "ledger.yaml: deviation D9 needs an effect (how it can change the numbers)"),
    ({"bug": "D9", "title": "t", "status": "deviation", "where": "w", "effect": "e", "evidence": {"report": ["x"]}},
     "ledger.yaml: D9's evidence must map stages (train, data, appearance, motion, questions) to tags, "
     "got {'report': ['x']}"),
])
def test_malformed_ledger_entry_is_refused_with_the_fix(raw, message):
    with pytest.raises(ValueError) as error:
        parse_entry(raw)
    assert str(error.value) == message
