"""The written report: report.md and report.html carry every section; results.csv; figures; the demo banner."""

from __future__ import annotations

import csv
import re

import pytest

from dualvgr.report.render import Document, Figure, Paragraph, Section, Table, render_html, render_markdown


def test_files_are_written(msvd_report):
    directory = msvd_report.directory
    assert directory.name == "rep-render-msvd"
    for name in ("report.md", "report.html", "results.csv", "accuracy_by_type.png", "training_curves.png"):
        assert (directory / name).is_file(), f"{name} missing from {directory}"
    for figure in msvd_report.figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{figure} is not a PNG"


def test_headline_statistics_and_verdict(msvd_report):
    head = msvd_report.results.headline
    # (38.5 + 39.1 + 39.6) / 3 = 39.0667; std = sqrt((0.3211 + 0.0011 + 0.2844) / 2) = 0.5508
    assert head.n == 3 and head.mean == pytest.approx(39.066667, abs=1e-4)
    assert head.std == pytest.approx(0.550757, abs=1e-4)
    assert msvd_report.results.headline_judgement.verdict.value == "reproduced"
    metrics = msvd_report.metrics()
    assert metrics["n_seeds"] == 3 and metrics["reproduced_test_acc_mean"] == pytest.approx(39.066667, abs=1e-4)
    assert metrics["delta_points"] == pytest.approx(39.066667 - 39.03, abs=1e-4)
    assert metrics["paper_test_acc"] == pytest.approx(39.03)
    assert "reproduced" in msvd_report.summary() and "n=3" in msvd_report.summary()


@pytest.mark.parametrize("kind", ["md", "html"])
def test_report_contains_every_section(msvd_report, kind):
    text = (msvd_report.markdown if kind == "md" else msvd_report.html).read_text(encoding="utf-8")
    plain = re.sub(r"<[^>]+>", " ", text) if kind == "html" else text
    for needle in ("Headline", "39.07 ± 0.55", "[37.70, 40.43]", "39.03", "reproduced",
                   "Accuracy per question type", "HME", "HGA", "HCRN", "TSN", "DualVGR (paper)", "28.65", "53.82",
                   "28.00 ± 0.00", "-0.65",
                   "Fidelity audit", "train.epochs", "can change results", "cosmetic",
                   "Provenance", "0123456789abcdef0123456789abcdef01234567", "63fe2227", "dddddddd", "torch",
                   "Ledger", "B25", "B20", "kept", "fixed", "HSIC summed", "arXiv 2107.04768"):
        assert needle in plain, f"report.{kind} lacks {needle!r}"
    assert "NOT comparable" not in plain, "a paper reproduction has no demo banner"


def test_per_type_table_rows_in_markdown(msvd_report):
    text = msvd_report.markdown.read_text(encoding="utf-8")
    assert "| HCRN | — | — | — | — | — | 36.1 |" in text, "'/' in the paper renders as —"
    assert "| **DualVGR (paper)** | **28.65** | **53.82** | **80.00** | **70.69** | **46.43** | **39.03** |" in text
    assert "| Δ vs DualVGR (points) | -0.65 | +0.18 | +0.00 | +0.31 | -1.43 | +0.04 |" in text


def test_html_is_self_contained(msvd_report):
    html = msvd_report.html.read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 2, "both figures embedded"
    assert not re.search(r'(src|href)="(https?:|//|file:)', html), "no external resource"
    assert "<script" not in html
    for table_id in ("headline", "per-type", "per-type-detail", "seeds", "audit-results", "provenance", "ledger"):
        assert f'<table id="{table_id}">' in html, f"table {table_id} missing"


def test_results_csv_one_row_per_seed(msvd_report):
    rows = list(csv.DictReader(msvd_report.csv.open(encoding="utf-8")))
    assert [r["seed"] for r in rows] == ["666", "667", "668"]
    assert [float(r["test_all_pct"]) for r in rows] == pytest.approx([38.5, 39.1, 39.6])
    assert rows[0]["test_what_pct"] == "28.0000" and rows[0]["epochs_logged"] == "4"
    assert rows[0]["best_epoch_1based"] == "4", "best_epoch is logged 0-based"


def test_demo_report_says_not_comparable_and_keeps_every_section(demo_report):
    for path in (demo_report.markdown, demo_report.html):
        text = path.read_text(encoding="utf-8")
        head = text[:2500]
        assert "NOT comparable to the paper" in head, f"{path.name}: the banner must come first"
        for needle in ("Headline", "not comparable", "Accuracy per question type", "HME", "Training",
                       "Fidelity audit", "msvd_qa.yaml", "random appearance backbone weights", "Provenance", "Ledger"):
            assert needle in text, f"demo {path.name} lacks {needle!r}"
    assert demo_report.results.headline_judgement.verdict.value == "not comparable"
    assert demo_report.results.columns["when"] is None, "a type absent from the split is absent, not 0"


def test_markdown_and_html_rendering_of_a_small_document(tmp_path):
    from matplotlib.figure import Figure as MplFigure

    png = tmp_path / "f.png"
    MplFigure(figsize=(1, 1)).savefig(png)
    document = Document("T <1>", "sub", "careful", [Section("S", "s", [
        Paragraph("a `code` and **bold** <tag>"), Table(("h|1", "h2"), (("a|b", "c"),), caption="cap",
                                                         emphasis=frozenset({0}), table_id="t"),
        Figure(png, "fig")])])
    md, html = render_markdown(document), render_html(document)
    assert "| h\\|1 | h2 |" in md and "| **a\\|b** | **c** |" in md and "![fig](f.png)" in md and "> **careful**" in md
    assert "<code>code</code>" in html and "<strong>bold</strong>" in html and "&lt;tag&gt;" in html
    assert '<table id="t"><caption>cap</caption>' in html and '<tr class="em">' in html
    with pytest.raises(ValueError, match="cells"):
        Table(("a", "b"), (("only one",),))
