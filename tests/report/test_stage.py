"""The report stage through the real runner: a report run with artifacts, metrics, verdict tag; clear errors."""

from __future__ import annotations

import pytest

from dualvgr.core.errors import SpecError, StageError
from dualvgr.core.runner import Runner
from dualvgr.core.spec import dump_spec
from dualvgr.core.tracking import TAG_STAGE
from dualvgr.report.stage import REPORT_STAGE, write_report
from tests.report.fakes import REPO, log_reproduction, log_train, paper_like_spec, unique_name


def report_spec(name: str, experiments: list[str], tmp_path):
    return paper_like_spec(name, **{"report.experiments": experiments, "report.output_dir": str(tmp_path / "reports"),
                                    "tracking.outputs": str(tmp_path / "outputs")})


def test_upstream_is_train_only_for_its_own_experiment():
    assert REPORT_STAGE.upstream(paper_like_spec("x")) == ("train",)
    assert REPORT_STAGE.upstream(paper_like_spec("x", **{"report.experiments": ["y"]})) == ()
    assert not REPORT_STAGE.cacheable


def test_report_run_logs_files_metrics_and_verdict(tracker, request, tmp_path):
    first, second = unique_name(request, "-a"), unique_name(request, "-b")
    log_reproduction(tracker, paper_like_spec(first), {666: 0.389, 667: 0.390, 668: 0.391})  # [38.75, 39.25]
    log_train(tracker, paper_like_spec(second, **{"train.eval_split": "val"}), 666, 0.30, upstream={})
    runner = Runner({"report": REPORT_STAGE}, tracker, progress=False, echo=False)

    (record,) = runner.run("report", report_spec(unique_name(request, "-r"), [first], tmp_path))
    run = tracker.client.get_run(record.run_id)
    assert run.info.status == "FINISHED" and run.data.tags[TAG_STAGE] == "report"
    assert run.data.metrics["n_seeds"] == 3 and run.data.metrics["reproduced_test_acc_mean"] == pytest.approx(39.0)
    assert run.data.tags["dualvgr.report.verdict"] == "reproduced"
    artifacts = {a.path for a in tracker.client.list_artifacts(record.run_id, first)}
    assert {f"{first}/{n}" for n in ("report.md", "report.html", "results.csv", "accuracy_by_type.png",
                                      "training_curves.png")} <= artifacts
    assert record.outputs["report_html"] == (tmp_path / "reports" / first / "report.html").resolve()

    (both,) = runner.run("report", report_spec(unique_name(request, "-r2"), [first, second], tmp_path))
    metrics = tracker.client.get_run(both.run_id).data.metrics
    assert metrics[f"{first}.n_seeds"] == 3 and metrics[f"{second}.n_seeds"] == 1, "several experiments: prefixed"
    assert f"{second}.reproduced_val_acc_mean" in metrics, "the val experiment's numbers are named val"
    assert tracker.client.get_run(both.run_id).data.tags[f"dualvgr.report.verdict.{second}"] == "inconclusive"
    text = (tmp_path / "reports" / second / "report.md").read_text(encoding="utf-8")
    assert "Computed on val, not test" in text and "Overall val accuracy" in text
    assert "n=1: no standard deviation and no interval" in text and "One seed has no spread" in text


def test_no_train_runs_fails_the_report_run_with_the_fix(tracker, request, tmp_path):
    missing = unique_name(request, "-none")
    runner = Runner({"report": REPORT_STAGE}, tracker, progress=False, echo=False)
    with pytest.raises(StageError, match=f"no FINISHED train runs for experiment '{missing}'.*dualvgr train"):
        runner.run("report", report_spec(unique_name(request), [missing], tmp_path))


@pytest.mark.slow  # a fresh MLflow client for the CLI opens the store again (~10 s)
def test_cli_report_command_writes_the_report(tracker, request, tmp_path, monkeypatch):
    """`dualvgr report` (what `mlflow run . -e report` calls) against the store named by MLFLOW_TRACKING_URI."""
    import dualvgr.cli
    import dualvgr.pipeline

    name = unique_name(request)
    log_reproduction(tracker, paper_like_spec(name), {666: 0.39})
    monkeypatch.setattr(dualvgr.pipeline, "all_stages", lambda: {"report": REPORT_STAGE})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.tracking_uri)
    monkeypatch.chdir(tmp_path)
    code = dualvgr.cli.main(["report", "--experiment", str(REPO / "experiments/msvd_qa.yaml"), "--quiet",
                             "--set", f"report.experiments=[{name}]", "--set", f"tracking.outputs={tmp_path}/o"])
    assert code == 0
    text = (tmp_path / "reports" / name / "report.md").read_text(encoding="utf-8")
    assert "**Inconclusive.**" in text and "One seed has no spread, hence no interval" in text


@pytest.mark.parametrize("tolerance", [-0.5, "wide"])
def test_tolerance_that_is_not_points_fails_the_report_naming_key_run_and_fix(tracker, request, tmp_path, tolerance):
    name = unique_name(request)
    spec = paper_like_spec(name)
    (train_id,) = log_reproduction(tracker, spec, {666: 0.39})
    bad = dump_spec(spec).replace("tolerance: 1.0", f"tolerance: {tolerance}")
    assert f"tolerance: {tolerance}" in bad
    log_train(tracker, spec, 667, 0.39, upstream={}, spec_yaml=bad)  # the newest run's spec gives the settings
    with pytest.raises(SpecError) as error:
        write_report(tracker, name, tmp_path)
    message = str(error.value)
    assert message.startswith(f"paper.tolerance is {tolerance!r} in the spec of train run "), message
    assert message.endswith("expected a number of accuracy points >= 0 (the half-width of the band around the "
                            "paper's value, default 1.0); set e.g. --set paper.tolerance=1.0"), message
    assert train_id not in message, "the run whose spec was read is named, not another"


def test_runs_scored_on_different_splits_are_not_pooled(tracker, request, tmp_path):
    """A pool whose seeds name different train.eval_split values would mix val and test numbers: refused."""
    name = unique_name(request)
    pool = {"dualvgr.pool_key": "forged-shared-pool"}
    log_train(tracker, paper_like_spec(name), 666, 0.39, upstream={}, extra_tags=pool)
    val_id = log_train(tracker, paper_like_spec(name, **{"train.eval_split": "val"}), 667, 0.30, upstream={},
                       extra_tags=pool)
    with pytest.raises(StageError) as error:
        write_report(tracker, name, tmp_path)
    message = str(error.value)
    assert f"the reported runs of '{name}' were scored on different splits (" in message
    assert f"val: {val_id}" in message and message.endswith(
        "their accuracies cannot be pooled: report each split's runs as their own experiment")


def test_negative_tolerance_in_the_report_spec_is_a_spec_error(tracker, request, tmp_path):
    from dualvgr.core.schema import PaperSpec

    name = unique_name(request)
    log_reproduction(tracker, paper_like_spec(name), {666: 0.39})
    with pytest.raises(SpecError, match=r"^paper.tolerance is -1.0 in the report's spec: expected a number of "
                                        r"accuracy points >= 0 .*--set paper.tolerance=1.0$"):
        write_report(tracker, name, tmp_path, paper_settings=PaperSpec(table="msvd-qa", tolerance=-1.0))


def test_generated_reports_are_ignored_by_git_but_the_folder_readme_is_not():
    """reports/<experiment>/ is generated (/reports/*/ in .gitignore); reports/README.md says what lands there."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        done = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO, capture_output=True)
        assert done.returncode in (0, 1), done.stderr
        return done.returncode == 0

    assert (REPO / "reports" / "README.md").is_file(), "reports/README.md describes the generated folders"
    assert not ignored("reports/README.md"), ".gitignore must not ignore reports/README.md"
    for generated in ("report.md", "report.html", "results.csv", "accuracy_by_type.png"):
        assert ignored(f"reports/msvd_qa/{generated}"), f"reports/msvd_qa/{generated} must be ignored by git"
    text = (REPO / "reports" / "README.md").read_text(encoding="utf-8")
    for needle in ("report.md", "report.html", "results.csv", "accuracy_by_type.png", "training_curves.png",
                   "dualvgr report", "mlflow run . -e report", "/reports/*/"):
        assert needle in text, f"reports/README.md must mention {needle}"
