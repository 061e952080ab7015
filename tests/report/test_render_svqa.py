"""A report follows its paper table: SVQA's 15 grouped categories, a category no run logs, one the table lacks, the
SVQA demo beside the SVQA table, SVQA's split sizes by videos."""

from __future__ import annotations

import csv
import re

import pytest

from dualvgr.report.render import Document, Section, Table, render_html, render_markdown
from dualvgr.report.stage import write_report
from tests.report.conftest import PER_TYPE, svqa_accuracies
from tests.report.fakes import (
    SVQA_CATEGORIES,
    SVQA_VIDEOS,
    Upstream,
    log_reproduction,
    log_train,
    log_upstream,
    paper_like_spec,
    svqa_spec,
    svqa_stand_ins,
    unique_name,
)

GROUPED_HEADER = (
    "| Method | Exist | Count | Integer comparison: More | Integer comparison: Equal | Integer comparison: Less | "
    "Attribute comparison: Color | Attribute comparison: Size | Attribute comparison: Type | Attribute comparison: Dir "
    "| Attribute comparison: Shape | Query: Color | Query: Size | Query: Type | Query: Dir | Query: Shape | All |"
)


def _detail(markdown: str, header: str = "| Question category | Paper (test) |") -> dict[str, list[str]]:
    """The per-category statistics table (the one whose header starts with ``header``): heading -> its cells."""
    block = markdown.split(header, 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.splitlines()[2:]]
    return {cells[0]: cells[1:] for cells in rows}


def test_svqa_report_has_the_15_categories_and_the_overall_column(svqa_report):
    results = svqa_report.results
    assert [c.key for c in results.layout] == [*SVQA_CATEGORIES, "all"] and not results.extra
    assert svqa_report.results.headline.mean == pytest.approx(50.38, abs=1e-6)
    text = svqa_report.markdown.read_text(encoding="utf-8")
    assert "## Accuracy per question category" in text and "Accuracy per question type" not in text
    assert "compared with the SVQA table of Wang et al." in text
    assert "Unified-Attn, SA+TA-GRU, STRN are the paper's comparison rows" in text, "context rows from the table"
    assert "| HME |" not in text and "| Method | What |" not in text, "nothing of the MSVD-QA table"
    assert "NOT comparable" not in text


def test_svqa_markdown_header_says_each_column_with_its_group(svqa_report):
    text = svqa_report.markdown.read_text(encoding="utf-8")
    assert GROUPED_HEADER in text
    assert ("| **DualVGR (paper)** | **54.15** | **49.55** | **80.89** | **57.63** | **59.71** | **56.87** | "
            "**51.90** | **49.79** | **49.78** | **51.53** | **27.96** | **60.65** | **64.19** | **34.46** | **47.48** | "
            "**50.38** |" in text)
    assert "| Δ vs DualVGR (points) | +0.00 | -3.00 | +3.00 | — | +0.60 | +0.00 |" in text


def test_svqa_html_header_groups_columns_under_spanning_cells(svqa_report):
    html = svqa_report.html.read_text(encoding="utf-8")
    head = re.search(r'<table id="per-type">.*?<thead>(.*?)</thead>', html, re.S).group(1)
    top, bottom = re.findall(r"<tr>(.*?)</tr>", head)
    assert re.findall(r"<th([^>]*)>([^<]*)</th>", top) == [
        (' rowspan="2"', "Method"), (' rowspan="2"', "Exist"), (' rowspan="2"', "Count"),
        (' colspan="3" class="group"', "Integer comparison"), (' colspan="5" class="group"', "Attribute comparison"),
        (' colspan="5" class="group"', "Query"), (' rowspan="2"', "All")]
    assert re.findall(r"<th>([^<]*)</th>", bottom) == ["More", "Equal", "Less", *["Color", "Size", "Type", "Dir",
                                                                                  "Shape"] * 2]
    assert '<table id="per-type-detail">' in html and "Attribute comparison: Type" in html


@pytest.mark.parametrize("heading, verdict, n, seeds", [
    ("Exist", "reproduced", "3", "—"),
    ("Count", "below", "3", "—"),
    ("Integer comparison: More", "above", "3", "—"),
    ("Integer comparison: Less", "inconclusive", "3", "5"),
    ("Query: Shape", "inconclusive", "2", "3"),  # seed 668 logged no query_shape
    ("Query: Type", "reproduced", "3", "—"),
    ("All", "reproduced", "3", "—"),
])
def test_svqa_verdict_per_column(svqa_report, heading, verdict, n, seeds):
    row = _detail(svqa_report.markdown.read_text(encoding="utf-8"))[heading]
    assert (row[2], row[5], row[6]) == (n, verdict, seeds), f"{heading}: {row}"


def test_category_no_run_logs_is_left_out_not_counted_as_zero(svqa_report):
    results = svqa_report.results
    assert results.columns["compare_equal"] is None and results.judgements["compare_equal"] is None
    assert _detail(svqa_report.markdown.read_text(encoding="utf-8"))["Integer comparison: Equal"] == [
        "57.63", "—", "0", "—", "—", "—", "—"], "the paper's value, nothing reproduced"
    assert results.columns["query_shape"].n == 2, "a category one seed lacks is over the seeds that have it"
    metrics = svqa_report.metrics()
    assert "reproduced_test_acc_compare_equal_mean" not in metrics
    assert metrics["reproduced_test_acc_query_shape_mean"] == pytest.approx(47.33, abs=1e-6)
    assert metrics["reproduced_test_acc_attribute_compare_actiontype_mean"] == pytest.approx(49.79, abs=1e-6)


def test_svqa_results_csv_has_one_column_per_category(svqa_report):
    with svqa_report.csv.open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    accuracy_columns = [name for name in reader.fieldnames if name.startswith("acc_")]
    assert accuracy_columns == [f"acc_{key}_pct" for key in (*SVQA_CATEGORIES, "all")]
    assert [r["seed"] for r in rows] == ["666", "667", "668"]
    assert rows[0]["acc_count_pct"] == "46.2500" and rows[0]["acc_compare_equal_pct"] == ""
    assert rows[0]["acc_query_shape_pct"] == "47.1800" and rows[2]["acc_query_shape_pct"] == "", "seed 668 lacks it"


def test_svqa_relocated_data_is_recognised_by_its_videos_per_split(svqa_report):
    finding = svqa_report.audit.topic("dataset.root")
    assert finding.severity.value == "cosmetic"
    assert finding.why == "relocates the data: the data run found the published SVQA split sizes (videos per split)"
    assert svqa_report.audit.topic("dataset_size") is None
    text = svqa_report.markdown.read_text(encoding="utf-8")
    assert "- Published split sizes: 8400 / 1200 / 2400 videos (train / val / test)" in text
    assert "| videos train / val / test (data run) | 8,400 / 1,200 / 2,400 |" in text


def test_svqa_split_with_other_video_count_is_not_the_published_data(tracker, request, tmp_path):
    name = unique_name(request)
    with svqa_stand_ins(tmp_path / "spec"):
        spec = svqa_spec(name, **{"dataset.root": "/data/SVQA-subset"})
        upstream = log_upstream(tracker, spec, Upstream(videos=SVQA_VIDEOS | {"train": 4200}))
        log_train(tracker, spec, 666, *svqa_accuracies(0.0)[:1], upstream=upstream,
                  per_type=svqa_accuracies(0.0)[1])
        files = write_report(tracker, name, tmp_path)
    size = files.audit.topic("dataset_size")
    assert size.title == "SVQA split sizes differ from the published ones" and size.severity.value == \
        "can change results"
    assert [(e.key, e.value, e.paper) for e in size.evidence] == [("videos_train", "4200", "8400")]
    assert size.why.endswith("(the published sizes count videos)")
    assert files.audit.topic("dataset.root").severity.value == "can change results"


def test_svqa_demo_is_shown_beside_the_svqa_table_not_comparable(tracker, request, tmp_path):
    name = unique_name(request)
    with svqa_stand_ins(tmp_path / "spec"):
        spec = svqa_spec(name, **{"paper.table": "none", "dataset.kind": "synthetic-svqa",
                                  "dataset.root": "data/demo-svqa"})
        overall, per_category = svqa_accuracies(0.0)
        log_reproduction(tracker, spec, {666: overall, 667: overall}, Upstream(videos={"train": 60, "val": 15,
                                                                                        "test": 25}),
                         per_type=per_category)
        files = write_report(tracker, name, tmp_path)
    text = files.markdown.read_text(encoding="utf-8")
    assert files.results.headline_judgement.verdict.value == "not comparable"
    assert ("> **These numbers are NOT comparable to the paper: paper.table is none and dataset.kind synthetic-svqa "
            "is a stand-in in the SVQA format, not the paper's data. The fidelity audit lists every difference from "
            "the paper's configuration; the paper's SVQA numbers are shown for orientation only.**") in text
    assert GROUPED_HEADER in text and "compared with the SVQA table" in text
    assert "audited against experiments/svqa.yaml, the paper's SVQA configuration" in files.audit.note
    kind = files.audit.topic("dataset.kind")
    assert kind.severity.value == "can change results" and kind.evidence[0].value == "synthetic-svqa"
    assert files.audit.topic("dataset_size") is None, "a demo's split sizes are not compared with the paper's"


def test_category_the_table_lacks_is_an_extra_column_marked_not_in_the_paper(tracker, request, tmp_path):
    name = unique_name(request)
    log_reproduction(tracker, paper_like_spec(name), {666: 0.385, 667: 0.391},
                     per_type=PER_TYPE | {"other": 0.12})
    files = write_report(tracker, name, tmp_path)
    assert [c.key for c in files.results.extra] == ["other"]
    text = files.markdown.read_text(encoding="utf-8")
    assert "| Method | What | Who | How | When | Where | All | other (not in the paper) |" in text
    assert "| HCRN | — | — | — | — | — | 36.1 | — |" in text
    assert "Columns marked (not in the paper) are question types the runs log that the paper's table lacks." in text
    row = _detail(text, "| Question type | Paper (test) |")["other (not in the paper)"]
    assert row == ["—", "12.00 ± 0.00", "2", "[12.00, 12.00]", "—", "no paper value", "—"]
    with files.csv.open(encoding="utf-8") as handle:
        assert next(csv.DictReader(handle))["acc_other_pct"] == "12.0000"
    assert files.metrics()["reproduced_test_acc_other_mean"] == pytest.approx(12.0)
    assert files.results.headline_judgement.verdict.value == "inconclusive", "the headline still judges 'all'"


def test_table_groups_must_name_every_header_cell():
    with pytest.raises(ValueError, match=r"table groups \('', 'G'\) name 2 cells, the header \('a', 'b', 'c'\) has 3"):
        Table(("a", "b", "c"), (), groups=("", "G"))
    document = Document("t", "s", None, [Section("S", "s", [
        Table(("a", "b", "c"), (("1", "2", "3"),), groups=("", "G", "G"), table_id="g")])])
    assert "| a | G: b | G: c |" in render_markdown(document)
    assert ('<thead><tr><th rowspan="2">a</th><th colspan="2" class="group">G</th></tr><tr><th>b</th><th>c</th>'
            '</tr></thead>' in render_html(document))
