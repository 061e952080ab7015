"""The written report: report.md and report.html carry every section; results.csv; figures; the demo banner."""

from __future__ import annotations

import csv
import re

import pytest

from dualvgr.report.render import Document, Figure, Paragraph, Section, Table, render_html, render_markdown
from dualvgr.report.stage import write_report
from tests.report.conftest import PER_TYPE
from tests.report.fakes import log_reproduction, log_train, log_upstream, paper_like_spec, unique_name


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
    # [37.70, 40.43] reaches outside 39.03 ± 1: inconclusive; std 0.5508: t(3) * 0.5508 / 2 = 0.876 <= 40.03 - 39.07
    judgement = msvd_report.results.headline_judgement
    assert judgement.verdict.value == "inconclusive" and judgement.seeds_needed == 4
    metrics = msvd_report.metrics()
    assert metrics["n_seeds"] == 3 and metrics["reproduced_test_acc_mean"] == pytest.approx(39.066667, abs=1e-4)
    assert metrics["delta_points"] == 0.04, "Δ as printed"
    assert metrics["paper_test_acc"] == 39.03
    assert metrics["findings_implementation"] == 6, "the ledger's six deviations apply to a faithful reproduction"
    assert "-> inconclusive" in msvd_report.summary() and "n=3" in msvd_report.summary()


@pytest.mark.parametrize("kind", ["md", "html"])
def test_report_contains_every_section(msvd_report, kind):
    text = (msvd_report.markdown if kind == "md" else msvd_report.html).read_text(encoding="utf-8")
    plain = re.sub(r"<[^>]+>", " ", text) if kind == "html" else text
    for needle in ("Headline", "39.07 ± 0.55", "[37.70, 40.43]", "39.03", "Inconclusive.",
                   "4 seeds in all (1 more) would put the interval inside the band",
                   "Accuracy per question type", "HME", "HGA", "HCRN", "TSN", "DualVGR (paper)", "28.65", "53.82",
                   "28.00 ± 0.00", "-0.65",
                   "Fidelity audit", "train.epochs", "can change results", "cosmetic",
                   "Provenance", "0123456789abcdef0123456789abcdef01234567", "63fe2227", "dddddddd", "torch",
                   "Ledger", "B25", "B20", "kept", "fixed", "HSIC summed", "arXiv 2107.04768",
                   "implementation-level", "D6: Question tokens", "nltk 3.10.4 word_tokenize", "deviation",
                   "pooled by", "dualvgr.pool_key"):
        assert needle in plain, f"report.{kind} lacks {needle!r}"
    assert "NOT comparable" not in plain, "a paper reproduction has no demo banner"
    for stale in ("shared/", "dualvgr-original.md", "config_hash`", "older configuration"):
        assert stale not in plain, f"report.{kind} still says {stale!r}"


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
    for table_id in ("headline", "per-type", "per-type-detail", "seeds", "audit-results", "audit-implementation",
                     "provenance", "ledger"):
        assert f'<table id="{table_id}">' in html, f"table {table_id} missing"


def test_results_csv_one_row_per_seed(msvd_report):
    rows = list(csv.DictReader(msvd_report.csv.open(encoding="utf-8")))
    assert [r["seed"] for r in rows] == ["666", "667", "668"]
    assert [float(r["acc_all_pct"]) for r in rows] == pytest.approx([38.5, 39.1, 39.6])
    assert {r["eval_split"] for r in rows} == {"test"}, "the split the acc_* columns are on"
    assert rows[0]["acc_what_pct"] == "28.0000" and rows[0]["epochs_logged"] == "4"
    assert rows[0]["prior_pct"] == "5.0000" and rows[0]["test_questions_dropped"] == "0"
    assert rows[0]["pooled_by"] == "dualvgr.pool_key" and rows[0]["pool_key"].startswith("pool-train-")
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


def _plain_markdown(files) -> str:
    return files.markdown.read_text(encoding="utf-8")


def test_report_scored_on_val_names_val_everywhere_and_never_test(tracker, request, tmp_path):
    """train.eval_split: val logs best_val_acc[_<type>] and best_val_prior_acc, no test_* metric at all."""
    name = unique_name(request)
    spec = paper_like_spec(name, **{"train.eval_split": "val"})
    log_reproduction(tracker, spec, {666: 0.385, 667: 0.391, 668: 0.396}, per_type=PER_TYPE)
    files = write_report(tracker, name, tmp_path)
    assert files.results.split.name == "val" and files.results.best_val is None, "best_val_acc is the headline"
    assert files.results.headline.mean == pytest.approx(39.066667, abs=1e-4), "read from best_val_acc"
    assert files.results.columns["what"].mean == pytest.approx(28.0), "read from best_val_acc_what"
    text = _plain_markdown(files)
    assert "Overall val accuracy **39.07 ± 0.55 %**" in text and "Computed on val, not test" in text
    assert "| **val accuracy, all scored questions** |" in text
    assert "answer prior (most frequent train answer per question type), val" in text
    assert "Reproduced on val (mean ± std)" in text and "| Seed | Run | Val acc | Best epoch" in text
    assert "test accuracy," not in text and "Test acc" not in text and ", test |" not in text, \
        "no val number may be called a test number"
    assert "the paper's MSVD-QA test accuracy 39.03 %" in text, "the paper's number is a test number"
    metrics = files.metrics()
    assert "reproduced_val_acc_mean" in metrics and not [k for k in metrics if k.startswith("reproduced_test")]
    rows = list(csv.DictReader(files.csv.open(encoding="utf-8")))
    assert {r["eval_split"] for r in rows} == {"val"} and rows[0]["acc_all_pct"] == "38.5000"
    assert "val acc 39.07 ± 0.55 %" in files.summary()


def test_dropped_questions_are_shown_beside_the_accuracies_and_audited(tracker, request, tmp_path):
    name = unique_name(request)
    spec = paper_like_spec(name)
    upstream = log_upstream(tracker, spec)
    log_train(tracker, spec, 666, 0.385, upstream=upstream)
    log_train(tracker, spec, 667, 0.391, upstream=upstream, dropped={"test": 12, "val": 3, "train": 40})
    files = write_report(tracker, name, tmp_path)
    text = _plain_markdown(files)
    assert ("**Test questions dropped** (their video has no features): 12 (seed 667). They are not scored") in text
    assert "| **38.80 ± 0.42 (12 dropped)** |" in text, "headline value with the dropped count"
    assert "| 667 |" in text and "| 39.10 (12 dropped) | 30.00 (3 dropped) | 40 |" in text, "per-run cells"
    assert "| 666 |" in text and "| 38.50 | 30.00 | 0 |" in text, "no count where none was dropped"
    finding = files.audit.topic("questions_dropped")
    assert finding is not None and finding.severity.value == "can change results"
    assert {(e.key, e.value) for e in finding.evidence} == {
        ("train_questions_dropped", "40"), ("val_questions_dropped", "3"), ("test_questions_dropped", "12")}


def test_no_dropped_questions_print_no_count(msvd_report):
    text = _plain_markdown(msvd_report)
    assert "dropped)" not in text and "questions dropped" not in text
    assert msvd_report.audit.topic("questions_dropped") is None


def test_pooled_seeds_from_two_commits_are_pointed_out_in_the_headline_and_runs(tracker, request, tmp_path):
    name = unique_name(request)
    spec = paper_like_spec(name)
    upstream = log_upstream(tracker, spec)
    log_train(tracker, spec, 666, 0.389, upstream=upstream)
    log_train(tracker, spec, 667, 0.391, upstream=upstream, extra_tags={"dualvgr.git_commit": "f" * 40,
                                                                       "dualvgr.git_dirty": "true"})
    text = _plain_markdown(write_report(tracker, name, tmp_path))
    assert "The pooled seeds were trained by 2 git commits (see Runs)." in text
    assert ("- the pooled seeds were trained by 2 git commits: `0123456789ab` (seed 666); `ffffffffffff` (seed 667)"
            in text)
    assert "- seed 667: trained from a checkout with uncommitted changes (dualvgr.git_dirty)" in text


def test_runs_without_a_pool_key_say_how_they_were_pooled(tracker, request, tmp_path):
    name = unique_name(request)
    log_reproduction(tracker, paper_like_spec(name), {666: 0.389, 667: 0.391},
                     extra_tags={"dualvgr.pool_key": None})
    files = write_report(tracker, name, tmp_path)
    text = _plain_markdown(files)
    assert "pooled by `dualvgr.config_hash`" in text and "covers neither the code version nor the input files" in text
    assert "- the reported runs have no dualvgr.pool_key tag" in text
    assert "| pool (dualvgr.config_hash) |" in text
