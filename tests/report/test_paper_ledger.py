"""The data the report ships: the paper's tables (with their source) and the ledger of bugs and quirks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dualvgr.core.errors import StageError
from dualvgr.report.ledger import ledger
from dualvgr.report.paper import COLUMNS, paper_spec, paper_table, table_for, table_keys
from tests.conftest import shared_file

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
def test_tables_match_the_reference_document(key, heading):
    text = shared_file("reference/paper-results.md").read_text(encoding="utf-8")
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
    assert {e.status for e in entries} == {"fixed", "kept"}
    assert [e.status for e in entries] == sorted((e.status for e in entries), key=lambda s: s != "kept"), \
        "kept quirks come first"
    kept = " ".join(f"{e.bug} {e.title}" for e in entries if e.status == "kept")
    for needle in ("B25", "0.224", "Motion frames are not normalised", "UNK1", "B11", "HSIC summed",
                   "gradient spike"):
        assert needle in kept, f"the ledger must list the kept quirk '{needle}'"
    fixed = {e.bug for e in entries if e.status == "fixed"}
    assert {"B1", "B2", "B3", "B7", "B20", "B22", "B30"} <= fixed


def test_ledger_bug_numbers_and_locations_exist():
    for entry in ledger():
        assert re.fullmatch(r"B([1-9]|[1-3]\d|4[0-4])|§\d(\.\d)?", entry.bug), f"{entry.bug}: not a B-number or §"
        assert entry.paths, f"{entry.bug} names no harness location"
        for path in entry.paths:
            assert (REPO / path).exists(), f"ledger entry {entry.bug} points at {path}, which does not exist"
