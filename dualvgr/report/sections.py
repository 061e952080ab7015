"""The report as a document: headline, per-category table, curves, fidelity audit, runs, provenance, ledger, source.

Pure: takes what the other modules computed (results, audit, provenance, figure files) and arranges it; the
Markdown and HTML renderings both come from this one document (``render.py``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dualvgr.core.tracking import TAG_CONFIG_HASH, TAG_GIT_COMMIT, TAG_POOL_KEY
from dualvgr.report.audit import Audit
from dualvgr.report.collect import Collection
from dualvgr.report.findings import Finding, Severity
from dualvgr.report.ledger import STATUSES, ledger
from dualvgr.report.paper import ALL, Column, PaperTable
from dualvgr.report.provenance import Provenance
from dualvgr.report.render import Bullets, Document, Figure, Paragraph, Section, Table
from dualvgr.report.results import BEST_VAL, Results
from dualvgr.report.stats import Judgement, Summary, printed

SHORT = 8  # run ids are abbreviated in the audit; Provenance lists them in full
NOT_COMPARABLE_BANNER = (
    "These numbers are NOT comparable to the paper: {why}. The fidelity audit lists every difference from the "
    "paper's configuration; the paper's {title} numbers are shown for orientation only."
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
    why_not_comparable: str = ""  # the banner's reason when the numbers are not comparable


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _delta(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f}"


def _verdict(judgement: Judgement | None) -> str:
    return "—" if judgement is None else judgement.verdict.value


def _ms(summary: Summary | None) -> str:
    return "—" if summary is None else summary.mean_std()


def _dropped_text(inputs: Inputs, split: str) -> str:
    """"12 (seed 667), 3 (seed 668)": the non-zero counts of ``split``'s dropped questions, per seed."""
    seeds = {run.run_id: run.info.seed for run in inputs.collection.runs}
    return ", ".join(f"{counts[split]} (seed {seeds[run_id]})" for run_id, counts in inputs.results.dropped.items()
                     if counts.get(split))


def _with_dropped(value: str, count: int) -> str:
    return value if not count or value == "—" else f"{value} ({count} dropped)"


def headline(inputs: Inputs) -> Section:
    results, table = inputs.results, inputs.table
    summary, judgement = results.headline, results.headline_judgement
    paper = table.reference_row[ALL]
    split = results.split.name
    blocks: list = []
    if summary is None:
        blocks.append(Paragraph(f"**No accuracy to report:** the runs have no `{results.split.accuracy(ALL)}` "
                                f"metric (the {split} split's accuracy, train.eval_split: {split})."))
    else:
        interval = (f"95% CI {summary.interval()}, Student t with {summary.n - 1} d.o.f." if summary.n > 1 else
                    "n=1: no standard deviation and no interval")
        blocks.append(Paragraph(
            f"**{judgement.verdict.value.capitalize()}.** Overall {split} accuracy **{summary.mean_std()} %** "
            f"(mean ± std over n={summary.n} seed{'s' if summary.n > 1 else ''}; {interval}) against the "
            f"paper's {table.title} test accuracy {paper:.2f} % ({table.reference}): Δ = {_delta(judgement.delta)} "
            f"points. {judgement.reason[0].upper() + judgement.reason[1:]}."))
    if results.on_val:
        blocks.append(Paragraph(
            "**Computed on val, not test** (`train.eval_split: val`): the paper reports test accuracy and its "
            "author states that val must not be reported. See the fidelity audit."))
    if dropped := _dropped_text(inputs, split):
        blocks.append(Paragraph(
            f"**{split.capitalize()} questions dropped** (their video has no features): {dropped}. They are not "
            f"scored, so those accuracies are over the remaining questions; the paper scores every question. See "
            f"the fidelity audit."))
    commits = {run.info.tags.get(TAG_GIT_COMMIT) for run in inputs.collection.runs} - {None, ""}
    if len(commits) > 1:
        blocks.append(Paragraph(f"The pooled seeds were trained by {len(commits)} git commits (see Runs)."))
    scored_dropped = sum(counts.get(split, 0) for counts in results.dropped.values())
    rows = [(f"{split} accuracy, all scored questions", _with_dropped(_ms(summary), scored_dropped),
             str(summary.n) if summary else "0", summary.interval() if summary else "—", _num(paper),
             _delta(judgement.delta if judgement else None), _verdict(judgement))]
    if results.best_val is not None:
        val_dropped = sum(counts.get("val", 0) for counts in results.dropped.values())
        rows.append(("best val accuracy (selects the checkpoint)", _with_dropped(_ms(results.best_val), val_dropped),
                     str(results.best_val.n), results.best_val.interval(), "not reported", "—", "—"))
    rows.append((f"answer prior (most frequent train answer per {table.category.name}), {split}", _ms(results.prior),
                 str(results.prior.n) if results.prior else "0", "—", "—", "—", "—"))
    blocks.append(Table(
        ("Metric", "Reproduced (mean ± std)", "n", "95% CI", "Paper (test)", "Δ (points)", "Verdict"), tuple(rows),
        caption=f"Accuracy in %, the reproduction's on the {split} split. "
                f"{VERDICT_RULE.format(printed(results.tolerance))}",
        emphasis=frozenset({0}), table_id="headline"))
    return Section("Headline", "headline", blocks)


# How stats.judge decides, in the report's words.
VERDICT_RULE = (
    "Verdict, on the values as printed (2 decimals): reproduced when the 95% interval lies inside paper ± {} "
    "points (paper.tolerance); below / above when it lies entirely below / above that band; otherwise "
    "inconclusive, with the number of seeds the observed spread would need to decide. One seed has no interval: "
    "inconclusive."
)


def _labels(columns: tuple[Column, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(labels, groups) of the columns' header cells; groups are () when the table has none."""
    groups = tuple(column.group for column in columns)
    return tuple(column.label for column in columns), groups if any(groups) else ()


def per_type(inputs: Inputs) -> Section:
    """The paper's table with the reproduction's row and Δ, one column per question type or category; a category
    the runs log but the table lacks is an extra column marked "(not in the paper)"; then per-column statistics."""
    results, table = inputs.results, inputs.table
    split, category = results.split.name, table.category.name
    columns, keys = results.layout, tuple(column.key for column in results.layout)
    labels, groups = _labels(columns)
    header = ("Method", *labels)
    rows = [(method, *(_num(row.get(k), 1) for k in keys)) for method, row in table.context_rows.items()]
    rows.append((f"{table.reference} (paper)", *(_num(results.paper[k]) for k in keys)))
    rows.append((f"Reproduced on {split} (mean ± std)", *(_ms(results.columns[k]) for k in keys)))
    rows.append((f"Δ vs {table.reference} (points)", *(
        _delta(j.delta if (j := results.judgements[k]) else None) for k in keys)))
    context = ", ".join(table.context_rows)
    extra = (f" Columns marked (not in the paper) are {category}s the runs log that the paper's table lacks."
             if results.extra else "")
    comparison = Table(header, tuple(rows), caption=f"{table.title}, accuracy in % per {category} ("
                       f"{table.category.rule}): the paper's rows are on test, the reproduction's on {split}; "
                       f"{context} are the paper's comparison rows, for context.{extra}",
                       emphasis=frozenset({len(rows) - 3, len(rows) - 2}), table_id="per-type",
                       groups=("", *groups) if groups else ())
    detail_rows = []
    for column in columns:
        summary, judgement = results.columns[column.key], results.judgements[column.key]
        detail_rows.append((column.heading, _num(results.paper[column.key]), _ms(summary),
                            str(summary.n) if summary else "0", summary.interval() if summary else "—",
                            _delta(judgement.delta if judgement else None), _verdict(judgement),
                            (judgement.seeds or "—") if judgement else "—"))
    detail = Table((category.capitalize(), "Paper (test)", f"Reproduced on {split} (mean ± std)", "n", "95% CI",
                    "Δ (points)", "Verdict", "Seeds to decide"), tuple(detail_rows),
                   caption=f"Statistics per {category} over seeds, judged as the headline; a {category} absent from "
                   f"the split has no metric and is left out (n counts the runs that have it).",
                   table_id="per-type-detail")
    figure = Figure(inputs.type_figure, f"Accuracy per {category}: {table.reference} in the paper (test) vs "
                    f"reproduced on {split} (mean over seeds, error bar = std).")
    return Section(f"Accuracy per {category}", "per-type", [comparison, detail, figure])


def training(inputs: Inputs) -> Section:
    results = inputs.results
    split = results.split
    scored_is_val = results.best_val is None  # the scored metric is then best_val_acc itself
    train_dropped = any(counts.get("train") for counts in results.dropped.values())
    rows = []
    for run in inputs.collection.runs:
        metrics, dropped = run.info.metrics, results.dropped.get(run.run_id, {})
        best_epoch = metrics.get("best_epoch")
        epochs = len(run.curves.get("val_acc", run.curves.get("train_loss", [])))
        accuracies = [_with_dropped(_num(_pct(metrics.get(split.accuracy(ALL)))), dropped.get(split.name, 0))]
        if not scored_is_val:
            accuracies.append(_with_dropped(_num(_pct(metrics.get(BEST_VAL))), dropped.get("val", 0)))
        rows.append((run.info.seed, f"`{run.run_id[:SHORT]}`", *accuracies,
                     *((str(dropped.get("train", 0)),) if train_dropped else ()),
                     "—" if best_epoch is None else str(int(best_epoch) + 1), str(epochs),
                     run.info.tags.get("dualvgr.device", "—"), run.info.tags.get("dualvgr.precision", "—"),
                     run.info.started))
    header = ("Seed", "Run", f"{split.name.capitalize()} acc", *(() if scored_is_val else ("Best val acc",)),
              *(("Train questions dropped",) if train_dropped else ()), "Best epoch (1-based)", "Epochs logged",
              "Device", "Precision", "Started")
    table = Table(header, tuple(rows), caption="One train run per seed; accuracies in %, each on the split its "
                  "column names (a dropped count is the questions of that split not scored).", table_id="seeds")
    figure = Figure(inputs.curves_figure, "Training curves: train loss and val accuracy per epoch, one line per seed.")
    return Section("Training", "training", [table, figure])


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _evidence(finding: Finding) -> str:
    grouped: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for item in finding.evidence:
        grouped[(item.key, item.value, item.paper)].append(item.run_id[:SHORT])
    parts = [f"in the code: `{finding.code}`"] if finding.code else []
    for (key, value, paper), runs in grouped.items():
        text = f"`{key}` = {value}" + (f" (paper: {paper})" if paper else "")
        parts.append(f"{text}; run{'s' if len(runs) > 1 else ''} {', '.join(runs)}")
    if finding.code and not finding.evidence:
        parts.append("not recorded by the runs")
    return " · ".join(parts)


# Each severity's table in the audit: (caption, HTML id).
AUDIT_TABLES = {
    Severity.RESULTS: ("Can change results", "audit-results"),
    Severity.IMPLEMENTATION: ("Implementation-level deviations from the original code (the ledger's deviations)",
                              "audit-implementation"),
    Severity.COSMETIC: ("Cosmetic", "audit-cosmetic"),
}


def audit_section(inputs: Inputs) -> Section:
    audit = inputs.audit
    counts = {severity: len(audit.by_severity(severity)) for severity in Severity}
    blocks: list = [Paragraph(audit.note), Paragraph(
        f"**{counts[Severity.RESULTS]} difference(s) can change results, {counts[Severity.IMPLEMENTATION]} are "
        f"implementation-level deviations from the original code, {counts[Severity.COSMETIC]} are cosmetic.** The "
        f"audit compares the runs' resolved specs with `{audit.reference}`, reads what the stages recorded at run "
        f"time, and lists the ledger's deviations: differences below the level of settings that no spec shows, "
        f"with where they live in the code and what the runs record about them. Run ids are abbreviated to "
        f"{SHORT} characters (full ids under Provenance).")]
    header = ("Finding", "Severity", "Evidence (run, key, value)", "Why")
    for severity, (caption, ident) in AUDIT_TABLES.items():
        if findings := audit.by_severity(severity):
            blocks.append(Table(header, tuple((f.title, f.severity.value, _evidence(f), f.why) for f in findings),
                                caption=caption, table_id=ident))
    if not audit.findings:
        blocks.append(Paragraph("No difference from the paper's configuration was found."))
    if audit.unverified:
        blocks += [Paragraph("**Not verified**: evidence the tracking store lacks, and specs not read from a valid "
                             "`spec.yaml`:"),
                   Bullets(tuple(audit.unverified))]
    return Section("Fidelity audit", "audit", blocks)


POOLED_BY = {
    TAG_POOL_KEY: "the train stage's fingerprint without the seed: its code version, parameters, upstream stages "
                  "and input files",
    TAG_CONFIG_HASH: "the spec hash without the seed, for runs logged without a pool key: it covers neither the "
                     "code version nor the input files",
}


def runs_section(inputs: Inputs) -> Section:
    collection = inputs.collection
    blocks: list = [Paragraph(
        f"FINISHED, executed (not cache-hit) train runs of experiment `{collection.experiment}`, pooled by "
        f"`{collection.pooled_by}` = `{collection.pool_key[:16]}` ({POOLED_BY[collection.pooled_by]}); the pool "
        f"with the newest run is reported, one run per seed.")]
    if collection.notes:
        blocks.append(Bullets(collection.notes))
    if collection.older_groups:
        blocks.append(Table(("Other pool", "Pooled by", "Runs", "Seeds", "Newest run started"), tuple(
            (f"`{g.key[:16]}`", f"`{g.pooled_by}`", ", ".join(f"`{r[:SHORT]}`" for r in g.run_ids),
             ", ".join(g.seeds), g.newest_start) for g in collection.older_groups),
            caption="Not reported", table_id="older"))
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
    count = {status: sum(e.status == status for e in entries) for status in STATUSES}
    return Section("Ledger: the original's bugs and quirks, and the harness's deviations", "ledger", [
        Paragraph(f"Ids B1–B44 are the original code's bugs as numbered in `docs/original.md`, § ids that "
                  f"document's sections for quirks without a number, D ids the harness's own deviations. "
                  f"{count['kept']} quirks of the original are **kept** on purpose because the paper's numbers were "
                  f"produced with them; {count['deviation']} are implementation-level **deviations** from the "
                  f"original code, each listed in the fidelity audit with its effect; {count['fixed']} bugs are "
                  f"**fixed** (without changing the original's numbers where the fix is faithful)."),
        Table(("Id", "Status", "What", "Where in the harness"),
              tuple((e.bug, e.status, e.title, f"`{e.where}`") for e in entries), table_id="ledger"),
    ])


def source_section(table: PaperTable) -> Section:
    source = table.source
    return Section("Source of the paper's numbers", "source", [Bullets((
        f"Paper: {source.paper}", f"Numbers: {source.transcribed_from}", f"Protocol: {source.protocol}",
        f"Published split sizes: {table.split_sizes.describe()}",
        f"Paper configuration audited against: `experiments/{table.spec_file}`"))])


def build_document(inputs: Inputs) -> Document:
    results, table = inputs.results, inputs.table
    n = len(inputs.collection.runs)
    subtitle = (f"Experiment `{inputs.experiment}` · {n} seed{'s' if n != 1 else ''} · compared with the "
                f"{table.title} table of Wang et al., DualVGR (IEEE TMM 2021)")
    banner = None if results.comparable else NOT_COMPARABLE_BANNER.format(
        why=inputs.why_not_comparable or "the runs are not on the paper's data", title=table.title)
    return Document(
        title=f"DualVGR reproduction report: {inputs.experiment}", subtitle=subtitle, banner=banner,
        sections=[headline(inputs), per_type(inputs), training(inputs), audit_section(inputs), runs_section(inputs),
                  provenance_section(inputs), ledger_section(), source_section(table)],
    )
