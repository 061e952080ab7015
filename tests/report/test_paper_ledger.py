"""The data the report ships: the paper's tables (with their source) and the ledger of bugs and quirks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dualvgr.core.errors import StageError
from dualvgr.report.ledger import deviations, ledger, parse_entry
from dualvgr.report.paper import COLUMNS, paper_spec, paper_table, table_for, table_keys
from tests.conftest import FIXTURES_DIR

REPO = Path(__file__).resolve().parents[2]


def test_dualvgr_rows_are_the_published_numbers():
    msvd, msrvtt = paper_table("msvd-qa"), paper_table("msrvtt-qa")
    assert msvd.reference_row == dict(what=28.65, who=53.82, how=80.0, when=70.69, where=46.43, all=39.03)
    assert msrvtt.reference_row == dict(what=29.4, who=45.56, how=79.76, when=76.66, where=36.4, all=35.52)
    for table in (msvd, msrvtt):
        assert list(table.context_rows) == ["HME", "HGA", "HCRN", "TSN"], "the paper's other rows are context"
        assert table.rows["HCRN"]["all"] is not None and table.rows["HCRN"]["what"] is None, "'/' = not reported"
    assert "arXiv 2107.04768" in msvd.source.paper and "7fbd38e" in msvd.source.transcribed_from


@pytest.mark.parametrize("key, heading", [("msvd-qa", "## MSVD-QA"), ("msrvtt-qa", "## MSRVTT-QA")])
def test_tables_match_the_independent_transcription(key, heading):
    """paper_tables.yaml against tests/fixtures/paper_results.md, transcribed apart: a slip in either shows."""
    text = (FIXTURES_DIR / "paper_results.md").read_text(encoding="utf-8")
    block = text.split(heading, 1)[1].split("\n## ", 1)[0]
    table = paper_table(key)
    for line in block.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] in table.rows:
            expected = [None if c == "/" else float(c) for c in cells[1:]]
            assert [table.rows[cells[0]][c] for c in COLUMNS] == expected, f"{key}/{cells[0]} differs from {heading}"


def test_each_table_names_its_paper_configuration():
    for key in table_keys():
        spec = paper_spec(paper_table(key))
        assert spec.paper.table == key, f"experiments/{paper_table(key).spec_file} must declare paper.table: {key}"
    table, comparable = table_for("none")
    assert table.key == "msvd-qa" and not comparable, "a demo is shown against MSVD-QA, marked not comparable"
    with pytest.raises(StageError, match="msvd-qa"):
        paper_table("svqa")


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
