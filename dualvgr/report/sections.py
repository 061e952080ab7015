"""The report as a document: headline, per-type table, curves, fidelity audit, runs, provenance, ledger, source.

Pure: takes what the other modules computed (results, audit, provenance, figure files) and arranges it; the
Markdown and HTML renderings both come from this one document (``render.py``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dualvgr.report.audit import Audit
from dualvgr.report.collect import Collection
from dualvgr.report.findings import Finding, Severity
from dualvgr.report.ledger import ledger
from dualvgr.report.paper import COLUMNS, PaperTable
from dualvgr.report.provenance import Provenance
from dualvgr.report.render import Bullets, Document, Figure, Paragraph, Section, Table
from dualvgr.report.results import Results
from dualvgr.report.stats import Judgement, Summary

SHORT = 8  # run ids are abbreviated in the audit; Provenance lists them in full
NOT_COMPARABLE_BANNER = (
    "Synthetic data: these numbers are NOT comparable to the paper. This experiment runs the pipeline on data "
    "that is not the paper's (the fidelity audit lists every difference from the paper's configuration); the "
    "paper's {title} numbers are shown for orientation only."
)


@dataclass(frozen=True)
class Inputs:
    experiment: str
    collection: Collection
    table: PaperTable
    results: Results
    audit: Audit
    provenance: Provenance
    type_figure: Path
    curves_figure: Path


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _delta(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f}"


def _verdict(judgement: Judgement | None) -> str:
    return "—" if judgement is None else judgement.verdict.value


def _ms(summary: Summary | None) -> str:
    return "—" if summary is None else summary.mean_std()


def headline(inputs: Inputs) -> Section:
    results, table = inputs.results, inputs.table
    summary, judgement = results.headline, results.headline_judgement
    paper = table.reference_row["all"]
    split = "val" if results.on_val else "test"
    blocks: list = []
    if summary is None:
        blocks.append(Paragraph("**No accuracy to report:** the runs have no `test_acc` metric."))
    else:
        interval = (f"95% CI {summary.interval()}, Student t with {summary.n - 1} d.o.f." if summary.n > 1 else
                    "n=1: no standard deviation and no interval" + (
                        ", so the verdict is by tolerance only" if results.comparable else ""))
        blocks.append(Paragraph(
            f"**{judgement.verdict.value.capitalize()}.** Overall {split} accuracy **{summary.mean_std()} %** "
            f"(mean ± std over n={summary.n} seed{'s' if summary.n > 1 else ''}; {interval}) against the "
            f"paper's {table.title} {paper:.2f} % ({table.reference}): Δ = {_delta(judgement.delta)} points. "
            f"{judgement.reason[0].upper() + judgement.reason[1:]}."))
    if results.on_val:
        blocks.append(Paragraph(
            "**Computed on val, not test** (`train.eval_split: val`): the paper reports test accuracy and its "
            "author states that val must not be reported. See the fidelity audit."))
    blocks.append(Table(
        ("Metric", "Reproduced (mean ± std)", "n", "95% CI", "Paper", "Δ (points)", "Verdict"),
        (
            (f"{split} accuracy, all questions", _ms(summary), str(summary.n) if summary else "0",
             summary.interval() if summary else "—", _num(paper), _delta(judgement.delta if judgement else None),
             _verdict(judgement)),
            ("best val accuracy", _ms(results.best_val), str(results.best_val.n) if results.best_val else "0",
             results.best_val.interval() if results.best_val else "—", "not reported", "—", "—"),
            ("answer prior (most frequent train answer per type), test", _ms(results.prior),
             str(results.prior.n) if results.prior else "0", "—", "—", "—", "—"),
        ),
        caption=f"Accuracy in %. Verdict: reproduced when the paper's value is inside the 95% interval or "
                f"|Δ| ≤ {results.tolerance:g} point(s) (paper.tolerance); otherwise below / above.",
        emphasis=frozenset({0}), table_id="headline"))
    return Section("Headline", "headline", blocks)


def per_type(inputs: Inputs) -> Section:
    results, table = inputs.results, inputs.table
    header = ("Method", *(c.capitalize() for c in COLUMNS))
    rows = [(method, *(_num(row[c], 1) for c in COLUMNS)) for method, row in table.context_rows.items()]
    rows.append((f"{table.reference} (paper)", *(_num(table.reference_row[c]) for c in COLUMNS)))
    rows.append(("Reproduced (mean ± std)", *(_ms(results.columns[c]) for c in COLUMNS)))
    rows.append((f"Δ vs {table.reference} (points)", *(
        _delta(j.delta if (j := results.judgements[c]) else None) for c in COLUMNS)))
    comparison = Table(header, tuple(rows), caption=f"{table.title}, accuracy in % per question type (first word "
                       f"of the question); HME, HGA, HCRN, TSN are the paper's comparison rows, for context.",
                       emphasis=frozenset({len(rows) - 3, len(rows) - 2}), table_id="per-type")
    detail_rows = []
    for column in COLUMNS:
        summary, judgement = results.columns[column], results.judgements[column]
        detail_rows.append((column, _num(table.reference_row[column]), _ms(summary),
                            str(summary.n) if summary else "0", summary.interval() if summary else "—",
                            _delta(judgement.delta if judgement else None), _verdict(judgement)))
    detail = Table(("Type", "Paper", "Reproduced (mean ± std)", "n", "95% CI", "Δ (points)", "Verdict"),
                   tuple(detail_rows), caption="Per-type statistics over seeds; a type absent from the split has "
                   "no metric and is left out (n counts the runs that have it).", table_id="per-type-detail")
    figure = Figure(inputs.type_figure, f"Accuracy per question type: {table.reference} in the paper vs reproduced "
                    f"(mean over seeds, error bar = std).")
    return Section("Accuracy per question type", "per-type", [comparison, detail, figure])


def training(inputs: Inputs) -> Section:
    rows = []
    for run in inputs.collection.runs:
        metrics = run.info.metrics
        best_epoch = metrics.get("best_epoch")
        epochs = len(run.curves.get("val_acc", run.curves.get("train_loss", [])))
        rows.append((run.info.seed, f"`{run.run_id[:SHORT]}`", _num(_pct(metrics.get("test_acc"))),
                     _num(_pct(metrics.get("best_val_acc"))),
                     "—" if best_epoch is None else str(int(best_epoch) + 1), str(epochs),
                     run.info.tags.get("dualvgr.device", "—"), run.info.tags.get("dualvgr.precision", "—"),
                     run.info.started))
    table = Table(("Seed", "Run", "Test acc", "Best val acc", "Best epoch (1-based)", "Epochs logged", "Device",
                   "Precision", "Started"), tuple(rows), caption="One train run per seed.", table_id="seeds")
    figure = Figure(inputs.curves_figure, "Training curves: train loss and val accuracy per epoch, one line per seed.")
    return Section("Training", "training", [table, figure])


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _evidence(finding: Finding) -> str:
    grouped: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for item in finding.evidence:
        grouped[(item.key, item.value, item.paper)].append(item.run_id[:SHORT])
    parts = []
    for (key, value, paper), runs in grouped.items():
        text = f"`{key}` = {value}" + (f" (paper: {paper})" if paper else "")
        parts.append(f"{text}; run{'s' if len(runs) > 1 else ''} {', '.join(runs)}")
    return " · ".join(parts)


def audit_section(inputs: Inputs) -> Section:
    audit = inputs.audit
    results_findings, cosmetic = audit.by_severity(Severity.RESULTS), audit.by_severity(Severity.COSMETIC)
    blocks: list = [Paragraph(audit.note), Paragraph(
        f"**{len(results_findings)} difference(s) can change results, {len(cosmetic)} are cosmetic.** Each "
        f"compares the runs' resolved specs with `{audit.reference}` and what the stages recorded at run time; "
        f"run ids are abbreviated to {SHORT} characters (full ids under Provenance).")]
    header = ("Finding", "Severity", "Evidence (run, key, value)", "Why")
    for title, findings, ident in (("Can change results", results_findings, "audit-results"),
                                   ("Cosmetic", cosmetic, "audit-cosmetic")):
        if findings:
            blocks.append(Table(header, tuple((f.title, f.severity.value, _evidence(f), f.why) for f in findings),
                                caption=title, table_id=ident))
    if not audit.findings:
        blocks.append(Paragraph("No difference from the paper's configuration was found."))
    if audit.unverified:
        blocks += [Paragraph("**Not verified**: evidence the tracking store lacks, and specs not read from a valid "
                             "`spec.yaml`:"),
                   Bullets(tuple(audit.unverified))]
    return Section("Fidelity audit", "audit", blocks)


def runs_section(inputs: Inputs) -> Section:
    collection = inputs.collection
    blocks: list = [Paragraph(
        f"FINISHED, executed (not cache-hit) train runs of experiment `{collection.experiment}`, newest "
        f"configuration `{collection.config_hash[:16]}`; one run per seed.")]
    if collection.notes:
        blocks.append(Bullets(collection.notes))
    if collection.older_groups:
        blocks.append(Table(("Older configuration", "Runs", "Seeds", "Newest run started"), tuple(
            (f"`{g.config_hash[:16]}`", ", ".join(f"`{r[:SHORT]}`" for r in g.run_ids), ", ".join(g.seeds),
             g.newest_start) for g in collection.older_groups), caption="Not reported", table_id="older"))
    return Section("Runs", "runs", blocks)


def provenance_section(inputs: Inputs) -> Section:
    prov = inputs.provenance
    return Section("Provenance", "provenance", [
        Table(("What", "Value"), prov.facts, table_id="provenance"),
        Table(("Package", "Version (train runs)"), prov.versions, caption="Package versions", table_id="versions"),
        Table(("Seed", "Train run", "Data run", "Appearance run", "Motion run", "Questions run"), prov.run_ids,
              caption="Run ids", table_id="run-ids"),
    ])


def ledger_section() -> Section:
    entries = ledger()
    kept = sum(e.status == "kept" for e in entries)
    return Section("Ledger: the original's bugs and quirks", "ledger", [
        Paragraph(f"From `dualvgr-original.md` §5–6: {kept} quirks of the original are **kept** on purpose because "
                  f"the paper's numbers were produced with them; {len(entries) - kept} bugs are **fixed** (without "
                  f"changing the original's numbers where the fix is faithful)."),
        Table(("Bug", "Status", "What", "Where in the harness"),
              tuple((e.bug, e.status, e.title, f"`{e.where}`") for e in entries), table_id="ledger"),
    ])


def source_section(table: PaperTable) -> Section:
    source = table.source
    return Section("Source of the paper's numbers", "source", [Bullets((
        f"Paper: {source.paper}", f"Numbers: {source.transcribed_from}", f"Protocol: {source.protocol}",
        f"Paper configuration audited against: `experiments/{table.spec_file}`"))])


def build_document(inputs: Inputs) -> Document:
    results, table = inputs.results, inputs.table
    n = len(inputs.collection.runs)
    subtitle = (f"Experiment `{inputs.experiment}` · {n} seed{'s' if n != 1 else ''} · compared with the "
                f"{table.title} table of Wang et al., DualVGR (IEEE TMM 2021)")
    banner = None if results.comparable else NOT_COMPARABLE_BANNER.format(title=table.title)
    return Document(
        title=f"DualVGR reproduction report: {inputs.experiment}", subtitle=subtitle, banner=banner,
        sections=[headline(inputs), per_type(inputs), training(inputs), audit_section(inputs), runs_section(inputs),
                  provenance_section(inputs), ledger_section(), source_section(table)],
    )
