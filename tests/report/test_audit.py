"""Fidelity audit: deviations detected from runs in a temporary tracking store, and the key table."""

from __future__ import annotations

import pytest

from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.spec import dump_spec, flatten
from dualvgr.report.audit import KEY_RULES, audit, rule_for
from dualvgr.report.collect import collect
from dualvgr.report.findings import Evidence, Findings, Severity
from dualvgr.report.paper import paper_spec, paper_table
from tests.report.fakes import (
    TOKENIZER,
    Upstream,
    log_reproduction,
    log_train,
    log_upstream,
    paper_like_spec,
    unique_name,
)

MSVD = paper_table("msvd-qa")


def run_audit(tracker, name: str, comparable: bool = True):
    return audit(collect(tracker, name), MSVD, paper_spec(MSVD), "experiments/msvd_qa.yaml", comparable)


def severities(result) -> dict[str, Severity]:
    return {finding.topic: finding.severity for finding in result.findings}


def test_a_topic_keeps_its_most_serious_severity_and_all_evidence():
    findings = Findings()
    findings.add("dataset.root", "root", Severity.COSMETIC, "relocated", Evidence("run1", "dataset.root", "/a"))
    findings.add("dataset.root", "root", Severity.RESULTS, "other data", Evidence("run2", "dataset.root", "/b"))
    findings.add("dataset.root", "root", Severity.COSMETIC, "relocated", Evidence("run2", "dataset.root", "/b"))
    (finding,) = findings.sorted()
    assert finding.severity is Severity.RESULTS and finding.why == "other data"
    assert [e.run_id for e in finding.evidence] == ["run1", "run2"], "evidence is merged without duplicates"


def test_every_schema_key_is_classified():
    keys = flatten(ExperimentSpec(name="x"))
    unclassified = [key for key in keys if rule_for(key) is None]
    assert not unclassified, (f"add {unclassified} to KEY_RULES in dualvgr/report/audit.py: cosmetic, conditional "
                              f"or can change results (see the module docstring)")
    stale = [p for p in KEY_RULES if "*" not in p and p not in keys]
    assert not stale, f"KEY_RULES names keys the schema no longer has: {stale}"


def test_faithful_reproduction_with_relocated_inputs_is_only_cosmetic(tracker, request):
    name = unique_name(request)
    spec = paper_like_spec(name, **{"dataset.root": "/data/MSVD-QA", "questions.glove": "/g/glove.840B.300d.zip",
                                    "features.motion.weights": "/w/resnext-101-kinetics.pth", "train.workers": 8,
                                    "train.device": "cuda:0", "features.num_shards": 4})
    log_reproduction(tracker, spec, {666: 0.39})
    result = run_audit(tracker, name)
    assert result.by_severity(Severity.RESULTS) == [], [f.title for f in result.by_severity(Severity.RESULTS)]
    found = severities(result)
    for key in ("name", "dataset.root", "questions.glove", "features.motion.weights", "train.workers",
                "train.device", "features.num_shards"):
        assert found.get(key) is Severity.COSMETIC, f"{key} relocates or parallelises: cosmetic, got {found.get(key)}"
    assert result.unverified == [], result.unverified
    root = result.topic("dataset.root").evidence[0]
    assert (root.key, root.value, root.paper) == ("dataset.root", "/data/MSVD-QA", "data/msvd-qa")


def test_deviations_are_detected_with_evidence(tracker, request):
    name = unique_name(request)
    spec = paper_like_spec(name, **{
        "features.appearance.weights": "random", "features.allow_random_weights": True,
        "features.motion.image_size": 224, "train.eval_split": "val", "train.epochs": 12, "questions.glove": "none",
        "dataset.allow_missing_videos": True})
    up = Upstream(appearance_source="random", motion_width=32768, glove_source="none", videos_missing=5,
                  questions={"train": 30933, "val": 6415, "test": 13000})
    (train_id,) = log_reproduction(tracker, spec, {666: 0.30}, up)
    result = run_audit(tracker, name)
    found = severities(result)
    expected = {
        "features.appearance.weights": "random weights (spec and appearance run)",
        "motion_width": "32768-wide motion features (B20)",
        "features.motion.image_size": "motion frames 224 instead of 112",
        "train.eval_split": "accuracy computed on val",
        "train.epochs": "fewer epochs",
        "questions.glove": "GloVe absent",
        "missing_videos": "missing videos",
        "dataset_size": "test split smaller than published",
    }
    for topic, what in expected.items():
        assert found.get(topic) is Severity.RESULTS, f"{what}: expected a 'can change results' finding {topic}"
    weights = result.topic("features.appearance.weights")
    assert weights.title == "random appearance backbone weights"
    assert {(e.key, e.value) for e in weights.evidence} >= {
        ("features.appearance.weights", "random"), ("dualvgr.weights.source", "random"),
        ("dualvgr.deviation.random_weights", "true")}
    width = result.topic("motion_width").evidence[0]
    assert (width.key, width.value, width.paper) == ("feature_width", "32768", "2048")
    assert "B20" in result.topic("motion_width").why
    epochs = result.topic("train.epochs").evidence[0]
    assert (epochs.run_id, epochs.value, epochs.paper) == (train_id, "12", "25")
    assert result.topic("dataset_size").evidence[0].key == "questions_test"
    assert found["features.allow_random_weights"] is Severity.COSMETIC, "a permission is not itself a deviation"
    assert not [t for t in found if t.startswith("deviation.")], "the stages' deviation tags join their spec key"
    split_evidence = {(e.key, e.value) for e in result.topic("train.eval_split").evidence}
    assert ("dualvgr.deviation.eval_split", "val") in split_evidence


def test_glove_oov_rate_and_precision_from_run_time_evidence(tracker, request):
    name = unique_name(request)
    spec = paper_like_spec(name)
    log_reproduction(tracker, spec, {666: 0.38}, Upstream(glove_oov_rate=0.35), precision="bf16",
                     extra_tags={"dualvgr.deviation.tf32": "true"})
    result = run_audit(tracker, name)
    found = severities(result)
    assert found.get("glove_oov") is Severity.RESULTS, "a 35% OOV rate is not glove.840B.300d as the original used"
    assert "35.0%" in result.topic("glove_oov").title
    assert found.get("train.precision") is Severity.RESULTS, "bf16 logged by the train run"
    assert found.get("deviation.tf32") is Severity.RESULTS, "any dualvgr.deviation.* tag becomes a finding"


def test_low_oov_and_faithful_inputs_give_no_glove_finding(tracker, request):
    name = unique_name(request)
    log_reproduction(tracker, paper_like_spec(name), {666: 0.39}, Upstream(glove_oov_rate=0.02))
    found = severities(run_audit(tracker, name))
    assert "glove_oov" not in found and "questions.glove" not in found


def test_missing_upstream_evidence_is_listed_as_unverified(tracker, request):
    name = unique_name(request)
    log_train(tracker, paper_like_spec(name), 666, 0.39, upstream={})
    result = run_audit(tracker, name)
    text = " ".join(result.unverified)
    for stage in ("data", "appearance", "motion", "questions"):
        assert f"no upstream {stage} run" in text, f"a missing {stage} run must be reported as unverified"
    assert result.topic("features.motion.weights") is None, "the paper's weights path: nothing to flag"


def test_demo_is_audited_against_msvd_and_says_so(tracker, request):
    name = unique_name(request)
    demo = paper_like_spec(name, experiment="demo.yaml")
    log_reproduction(tracker, demo, {666: 0.5}, Upstream(appearance_source="random", motion_source="random",
                                                         glove_source="none",
                                                         questions={"train": 768, "val": 192, "test": 320}))
    result = run_audit(tracker, name, comparable=False)
    assert "msvd_qa.yaml" in result.note and "paper.table: none" in result.note
    found = severities(result)
    for topic in ("dataset.kind", "features.motion.weights", "features.appearance.weights", "model.module_dim",
                  "train.epochs", "questions.glove"):
        assert found.get(topic) is Severity.RESULTS, f"the demo differs from the paper in {topic}"
    assert "dataset_size" not in found, "synthetic data is flagged by dataset.kind, not by split sizes"
    assert result.topic("features.motion.weights").title == "random motion backbone weights"


def test_run_from_an_older_schema_is_still_compared_key_by_key(tracker, request):
    name = unique_name(request)
    spec = paper_like_spec(name)
    old = dump_spec(spec).replace("motion: {backbone: resnext101,", "motion: {backbone: resnext101-3d,").replace(
        "  num_shards: 1\n", "  legacy_knob: 3\n")
    assert "legacy_knob" in old and "resnext101-3d" in old
    log_train(tracker, spec, 666, 0.39, upstream=log_upstream(tracker, spec), spec_yaml=old)
    result = run_audit(tracker, name)
    assert any("does not validate against today's schema" in note for note in result.unverified)
    found = severities(result)
    assert found["features.motion.backbone"] is Severity.RESULTS
    assert found["features.legacy_knob"] is Severity.RESULTS, "a key today's schema lacks"
    assert found["features.num_shards"] is Severity.COSMETIC, "absent from the old run, cosmetic by the table"
    assert result.topic("features.legacy_knob").evidence[0].paper == "(absent)"


@pytest.mark.parametrize("key, severity", [
    ("report.output_dir", Severity.COSMETIC), ("tracking.outputs", Severity.COSMETIC),
    ("dataset.synthetic.fps", Severity.COSMETIC), ("model.beta", Severity.RESULTS),
    ("train.lr", Severity.RESULTS), ("some.future_key", None),
])
def test_key_patterns(key, severity):
    rule = rule_for(key)
    assert (rule[0] if rule is not None else None) is severity


def test_ledger_deviations_are_findings_with_code_and_run_evidence(tracker, request):
    name = unique_name(request)
    log_reproduction(tracker, paper_like_spec(name), {666: 0.39, 667: 0.40})
    result = run_audit(tracker, name)
    implementation = {f.topic: f for f in result.by_severity(Severity.IMPLEMENTATION)}
    assert set(implementation) == {f"ledger.D{i}" for i in range(1, 7)}, sorted(implementation)
    init = implementation["ledger.D1"]
    assert init.code == "dualvgr/model/dualvgr.py, dualvgr/train/build.py" and init.evidence == []
    assert "seed 666 gives other initial weights than the original's seed 666" in init.title
    tokens = implementation["ledger.D6"]
    assert {(e.key, e.value) for e in tokens.evidence} == {
        ("dualvgr.tokenizer", TOKENIZER), ("dualvgr.vocabulary.source", "built from data/msvd-qa/train_qa.json")}
    assert len({e.run_id for e in tokens.evidence}) == 1, "the seeds share one questions run: its evidence once"
    assert result.by_severity(Severity.RESULTS) == [], "deviations do not count as settings that change results"


def test_glove_deviation_does_not_apply_without_glove(tracker, request):
    name = unique_name(request)
    log_reproduction(tracker, paper_like_spec(name, **{"questions.glove": "none"}), {666: 0.39},
                     Upstream(glove_source="none"))
    result = run_audit(tracker, name)
    assert result.topic("ledger.D5") is None, "no GloVe file was read: its NA-like rows cannot differ"
    assert result.topic("ledger.D6") is not None and result.topic("questions.glove") is not None


def test_deviation_without_recorded_evidence_says_so_in_the_report(tracker, request):
    from dualvgr.report.sections import _evidence

    name = unique_name(request)
    log_reproduction(tracker, paper_like_spec(name), {666: 0.39})
    result = run_audit(tracker, name)
    assert _evidence(result.topic("ledger.D3")) == "in the code: `dualvgr/train/loop.py` · not recorded by the runs"
    assert _evidence(result.topic("ledger.D6")).startswith(
        "in the code: `dualvgr/text/tokenize.py, dualvgr/text/punkt_english.py` · `dualvgr.tokenizer` = nltk 3.10.4")


def test_a_topic_takes_the_most_serious_of_three_severities():
    findings = Findings()
    findings.add("t", "cosmetic title", Severity.COSMETIC, "c")
    findings.add("t", "implementation title", Severity.IMPLEMENTATION, "i")
    assert findings.sorted()[0].severity is Severity.IMPLEMENTATION
    findings.add("t", "results title", Severity.RESULTS, "r")
    findings.add("t", "implementation title", Severity.IMPLEMENTATION, "i")
    (finding,) = findings.sorted()
    assert (finding.severity, finding.title, finding.evidence) == (Severity.RESULTS, "results title", [])
