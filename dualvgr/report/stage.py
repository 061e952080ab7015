"""The ``report`` stage: train runs in the tracking store -> ``reports/<experiment>/`` and a ``report`` run.

Input: the FINISHED, executed train runs of ``report.experiments`` (empty = this experiment) in the tracking
store this run logs to (``MLFLOW_TRACKING_URI``, a remote server included), with their upstream runs.
Output, per experiment, in ``<report.output_dir>/<experiment>/`` (relative to the working directory):
``report.md``, a self-contained ``report.html``, ``accuracy_by_type.png``, ``training_curves.png`` and
``results.csv``; the same files are logged as artifacts under ``<experiment>/`` of the report run, with the
headline numbers as metrics. The paper's settings (table, tolerance) come from this run's spec for its own
experiment and from the reported runs' specs for other experiments.

:func:`write_report` is the package function (collect -> statistics -> audit -> figures -> render); the stage
only resolves names and logs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from dualvgr.core.errors import SpecError
from dualvgr.core.schema import ExperimentSpec, PaperSpec
from dualvgr.core.stage import Stage, StageContext, StageResult
from dualvgr.core.tracking import Tracker
from dualvgr.report.audit import audit
from dualvgr.report.collect import Collection, collect
from dualvgr.report.figures import accuracy_by_type, training_curves
from dualvgr.report.findings import Audit, Severity
from dualvgr.report.paper import ALL, choose_table, paper_spec
from dualvgr.report.provenance import provenance
from dualvgr.report.render import render_html, render_markdown
from dualvgr.report.results import Results, aggregate, write_csv
from dualvgr.report.sections import Inputs, build_document

MARKDOWN, HTML, CSV = "report.md", "report.html", "results.csv"
FINDING_METRICS = {Severity.RESULTS: "findings_can_change_results", Severity.IMPLEMENTATION: "findings_implementation",
                   Severity.COSMETIC: "findings_cosmetic"}
TYPE_FIGURE, CURVES_FIGURE = "accuracy_by_type.png", "training_curves.png"  # per question type or category


@dataclass(frozen=True)
class ReportFiles:
    experiment: str
    directory: Path
    markdown: Path
    html: Path
    csv: Path
    figures: tuple[Path, ...]
    results: Results
    audit: Audit
    n_runs: int

    def summary(self) -> str:
        """One line: the headline number, the verdict and the audit's count."""
        head, judgement = self.results.headline, self.results.headline_judgement
        split = self.results.split.name
        serious = len(self.audit.by_severity(Severity.RESULTS))
        if head is None:
            return f"{self.experiment}: no {split} accuracy logged; {self.html}"
        return (f"{self.experiment}: {split} acc {head.mean_std()} % (n={head.n}), Δ {judgement.delta:+.2f} vs the "
                f"paper's test -> {judgement.verdict.value}; {serious} audit finding(s) can change results; "
                f"{self.html}")

    def metrics(self) -> dict[str, float]:
        """Headline numbers for the report run (points), named after the split they were computed on."""
        values: dict[str, float] = {"n_seeds": float(self.n_runs)}
        for severity, name in FINDING_METRICS.items():
            values[name] = float(len(self.audit.by_severity(severity)))
        split = self.results.split.name
        for column, summary in self.results.columns.items():
            if summary is None:
                continue
            name = f"reproduced_{split}_acc" if column == ALL else f"reproduced_{split}_acc_{column}"
            values[f"{name}_mean"] = summary.mean
            if summary.std is not None:
                values[f"{name}_std"] = summary.std
                values[f"{name}_ci_low"], values[f"{name}_ci_high"] = summary.ci_low, summary.ci_high
        judgement = self.results.headline_judgement
        if judgement is not None and judgement.delta is not None:
            values["delta_points"] = judgement.delta  # as printed: whole hundredths
            values["paper_test_acc"] = self.results.paper[ALL]
        return values


def _paper_settings(collection: Collection) -> tuple[PaperSpec, str]:
    """The newest reported run's paper settings (the seeds of a pool normally share them), and where they are from."""
    newest = max(collection.runs, key=lambda r: r.info.start_time)
    default = PaperSpec()
    return (PaperSpec(table=newest.value("paper.table", default.table),
                      tolerance=newest.value("paper.tolerance", default.tolerance)),
            f"the spec of train run {newest.run_id}")


def checked_tolerance(value: object, source: str) -> float:
    """``paper.tolerance`` as a number of points >= 0, or a SpecError that names it, its source and the fix."""
    try:
        tolerance = float(value)
    except (TypeError, ValueError):
        tolerance = math.nan
    if not math.isfinite(tolerance) or tolerance < 0:
        raise SpecError(f"paper.tolerance is {value!r} in {source}: expected a number of accuracy points >= 0 (the "
                        f"half-width of the band around the paper's value, default {PaperSpec().tolerance}); set "
                        f"e.g. --set paper.tolerance={PaperSpec().tolerance}")
    return tolerance


def write_report(tracker: Tracker, experiment: str, output_dir: str | Path,
                 paper_settings: PaperSpec | None = None) -> ReportFiles:
    """Collect ``experiment``'s train runs from ``tracker`` and write its report files to ``output_dir/experiment``."""
    collection = collect(tracker, experiment)
    settings, source = (paper_settings, "the report's spec") if paper_settings else _paper_settings(collection)
    tolerance = checked_tolerance(settings.tolerance, source)
    newest_last = sorted(collection.runs, key=lambda run: run.info.start_time)
    choice = choose_table(settings.table, {run.run_id: run.value("dataset.kind") for run in newest_last})
    table, comparable = choice.table, choice.comparable
    results = aggregate(collection, table, tolerance, comparable)
    findings = audit(collection, table, paper_spec(table), f"experiments/{table.spec_file}", comparable)

    directory = Path(output_dir) / experiment
    directory.mkdir(parents=True, exist_ok=True)
    ours_label = f"reproduced on {results.split.name}" + ("" if comparable else " (not comparable)")
    category = table.category.name
    type_figure = accuracy_by_type(
        directory / TYPE_FIGURE, results.layout, results.paper, results.columns,
        paper_label=f"{table.reference} (paper)", ours_label=f"{ours_label}, mean ± std",
        title=f"{experiment}: accuracy per {category} vs {table.title} (paper: test)")
    curves_figure = training_curves(
        directory / CURVES_FIGURE, {run.info.seed: run.curves for run in collection.runs},
        title=f"{experiment}: training curves")
    csv_path = write_csv(collection, results.layout, directory / CSV)
    document = build_document(Inputs(experiment, collection, table, results, findings, provenance(collection),
                                     type_figure, curves_figure, choice.why_not))
    markdown = directory / MARKDOWN
    markdown.write_text(render_markdown(document), encoding="utf-8")
    html = directory / HTML
    html.write_text(render_html(document), encoding="utf-8")
    return ReportFiles(experiment, directory, markdown, html, csv_path, (type_figure, curves_figure), results,
                       findings, len(collection.runs))


def report_params(spec: ExperimentSpec) -> dict:
    return {"experiments": list(spec.report.experiments) or [spec.name], "output_dir": spec.report.output_dir,
            "paper": spec.paper}


def run_report(ctx: StageContext) -> StageResult:
    tracker = Tracker(ctx.log.client.tracking_uri)
    names = list(ctx.spec.report.experiments) or [ctx.spec.name]
    outputs, metrics, lines, tags = {}, {}, [], {}
    for name in names:
        files = write_report(tracker, name, ctx.spec.report.output_dir,
                             paper_settings=ctx.spec.paper if name == ctx.spec.name else None)
        for path in (files.markdown, files.html, files.csv, *files.figures):
            ctx.log.log_artifact(path, artifact_path=name)
        prefix = "" if len(names) == 1 else f"{name}."
        metrics.update({prefix + key: value for key, value in files.metrics().items()})
        if files.results.headline_judgement is not None:
            tags[f"dualvgr.report.verdict{'' if len(names) == 1 else '.' + name}"] = \
                files.results.headline_judgement.verdict.value
        outputs |= {f"{prefix}report_md": files.markdown, f"{prefix}report_html": files.html,
                    f"{prefix}results_csv": files.csv}
        lines.append(files.summary())
    ctx.log.set_tags(tags)
    return StageResult(outputs=outputs, metrics=metrics, summary="; ".join(lines))


REPORT_STAGE = Stage(
    name="report",
    version="1",
    params=report_params,
    run=run_report,
    upstream=lambda spec: ("train",) if not spec.report.experiments else (),
    cacheable=False,
)
