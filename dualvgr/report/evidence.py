"""Run-time evidence for the fidelity audit: what the train runs and their upstream runs recorded.

A spec can declare the paper's values and still not reproduce the paper's inputs. The stages record what they
actually did (the tags and metrics the README lists), and this module turns it into findings:

- any ``dualvgr.deviation.<name>`` tag on the train run or an upstream run (a stage's own verdict). The names
  the stages write (``random_weights[_<kind>]``, ``failed_videos_<kind>``, ``glove``, ``missing_videos``,
  ``eval_split``, ``precision``, ``permute_visual``) join the finding of the matching spec key or check, so a
  deviation is reported once with all its evidence; other names become findings of their own;
- data run: missing videos; split sizes other than the published ones (on the paper's data set only), counted as
  the table publishes them: by questions, or by videos where the question counts are not published (SVQA);
- appearance / motion runs: random weights (``dualvgr.weights.source``), features not 2048 wide (32768 is the
  B20 misconfiguration: 224x224 frames into the 3D ResNeXt's fixed 4x4 pool), videos that failed to decode;
- questions run: no GloVe, or an OOV rate above :data:`GLOVE_OOV_LIMIT`;
- train run: precision other than fp32 (``dualvgr.precision``); questions dropped because their video has no
  features (``<split>_questions_dropped``): the paper scores every question.

Evidence that cannot be checked (an upstream run not recorded, a metric absent) is listed as *unverified*
rather than assumed fine.
"""

from __future__ import annotations

from dualvgr.core.tracking import TAG_DEVIATION_PREFIX
from dualvgr.report.collect import UPSTREAM_STAGES, RunInfo, TrainRun
from dualvgr.report.findings import Evidence, Findings, Severity
from dualvgr.report.paper import PaperTable
from dualvgr.report.results import SPLITS, dropped_metric

EXPECTED_WIDTH = 2048  # ResNet-101 and 3D ResNeXt-101 pooled features (vision_dim)
# glove.840B.300d covers all but a few percent of the paper's data sets' question words; a rate above this points
# at another embedding file or a tokenisation that differs from the original's.
GLOVE_OOV_LIMIT = 0.10
FEATURE_STAGES = ("appearance", "motion")
RESULTS = Severity.RESULTS


def _metric(run: RunInfo, key: str) -> float | None:
    return run.metrics.get(key)


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


RANDOM_WEIGHTS_WHY = "random backbone weights: the features carry no pretrained knowledge"
EVAL_SPLIT_WHY = ("the reported accuracy is on val, not test: the paper reports test, and its author states that "
                  "val accuracy must not be reported")
DROPPED_WHY = ("questions whose video has no features were dropped: dropped val/test questions are not scored (the "
               "paper scores every question), dropped train questions are not trained on")
# Deviation tags the stages write (dualvgr.deviation.<name>) -> the topic they share with a spec key or a check,
# so one deviation is one finding whatever recorded it. Any other name becomes its own finding.
_DEVIATION_TOPICS: dict[str, tuple[str, str, str]] = {
    "missing_videos": ("missing_videos", "missing videos", "the reproduction does not use every video"),
    "glove": ("questions.glove", "GloVe embeddings",
              "no GloVe: word embeddings start random instead of from glove.840B.300d"),
    "eval_split": ("train.eval_split", "split the reported accuracy was computed on", EVAL_SPLIT_WHY),
    "precision": ("train.precision", "numeric precision", "reduced precision changes the numerics"),
    "permute_visual": ("train.permute_visual", "train.permute_visual",
                       "a control that shuffles the visual features across videos"),
    **{f"random_weights_{kind}": (f"features.{kind}.weights", f"random {kind} backbone weights", RANDOM_WEIGHTS_WHY)
       for kind in FEATURE_STAGES},
    **{f"failed_videos_{kind}": (f"{kind}_failed_videos", f"{kind} extraction failed on some videos",
                                 "unreadable videos got zero feature rows") for kind in FEATURE_STAGES},
}


def deviation_topic(stage: str, name: str) -> tuple[str, str, str]:
    """(topic, title, why) of the deviation tag ``name`` written by ``stage``."""
    if name == "random_weights" and stage in FEATURE_STAGES:
        name = f"random_weights_{stage}"
    if name in _DEVIATION_TOPICS:
        return _DEVIATION_TOPICS[name]
    return f"deviation.{name}", name.replace("_", " "), f"recorded as a deviation at run time by the {stage} stage"


def deviation_tags(stage: str, run: RunInfo, findings: Findings) -> None:
    for key, value in run.tags.items():
        if key.startswith(TAG_DEVIATION_PREFIX):
            topic, title, why = deviation_topic(stage, key[len(TAG_DEVIATION_PREFIX):])
            findings.add(topic, title, RESULTS, why, Evidence(run.run_id, key, value))


def data_checks(run: TrainRun, data: RunInfo, table: PaperTable, findings: Findings, unverified: list[str]) -> None:
    missing = _metric(data, "videos_missing")
    if missing is None:
        unverified.append(f"data run {data.run_id} has no videos_missing metric: missing videos unverified")
    elif missing > 0:
        total = _metric(data, "videos_total")
        value = _count(missing) + (f" of {_count(total)}" if total else "")
        topic, title, why = deviation_topic("data", "missing_videos")
        findings.add(topic, title, RESULTS, why, Evidence(data.run_id, "videos_missing", value))
    if run.value("dataset.kind") != table.dataset:
        return  # another dataset altogether: the dataset.kind finding says so
    sizes = table.split_sizes
    for split, accepted in sizes.counts.items():
        value = _metric(data, sizes.metric(split))
        if value is None:
            unverified.append(f"data run {data.run_id} has no {sizes.metric(split)} metric: split size unverified")
        elif int(value) not in accepted:
            findings.add("dataset_size", f"{table.title} split sizes differ from the published ones", RESULTS,
                         f"other annotations or a subset: accuracies are over other questions (the published "
                         f"sizes count {sizes.unit})",
                         Evidence(data.run_id, sizes.metric(split), _count(value), " or ".join(map(str, accepted))))


def feature_checks(stage: str, feature: RunInfo, findings: Findings, unverified: list[str]) -> None:
    source = feature.tags.get("dualvgr.weights.source")
    if source is None:
        unverified.append(f"{stage} run {feature.run_id} has no dualvgr.weights.source tag: weights unverified")
    elif source == "random":
        findings.add(f"features.{stage}.weights", f"random {stage} backbone weights", RESULTS, RANDOM_WEIGHTS_WHY,
                     Evidence(feature.run_id, "dualvgr.weights.source", source))
    width = _metric(feature, "feature_width")
    if width is None:
        unverified.append(f"{stage} run {feature.run_id} has no feature_width metric: feature width unverified")
    elif int(width) != EXPECTED_WIDTH:
        why = (f"{stage} features must be {EXPECTED_WIDTH} wide (vision_dim)" + (
            ": 32768 = 2048 x 4 x 4, 224x224 frames into the 3D ResNeXt's fixed 4x4 pool (B20); "
            "re-extract with features.motion.image_size: 112" if stage == "motion" else ""))
        findings.add(f"{stage}_width", f"{stage} features {_count(width)} wide, not {EXPECTED_WIDTH}", RESULTS, why,
                     Evidence(feature.run_id, "feature_width", _count(width), str(EXPECTED_WIDTH)))
    failed = _metric(feature, "videos_failed")
    if failed:
        topic, title, why = deviation_topic(stage, f"failed_videos_{stage}")
        findings.add(topic, title, RESULTS, why, Evidence(feature.run_id, "videos_failed", _count(failed), "0"))


def question_checks(questions: RunInfo, findings: Findings, unverified: list[str]) -> None:
    source = questions.tags.get("dualvgr.glove.source")
    if source is None:
        unverified.append(f"questions run {questions.run_id} has no dualvgr.glove.source tag: GloVe unverified")
    elif source == "none":
        topic, title, why = deviation_topic("questions", "glove")
        findings.add(topic, title, RESULTS, why, Evidence(questions.run_id, "dualvgr.glove.source", source, "file"))
        return
    rate = _metric(questions, "glove_oov_rate")
    if rate is None:
        if source is not None:
            unverified.append(f"questions run {questions.run_id} has no glove_oov_rate metric: OOV rate unverified")
    elif rate > GLOVE_OOV_LIMIT:
        oov = _metric(questions, "glove_oov")
        findings.add("glove_oov", f"GloVe OOV rate {rate:.1%}", RESULTS,
                     f"above {GLOVE_OOV_LIMIT:.0%}: another embedding file or tokenisation than the original's",
                     Evidence(questions.run_id, "glove_oov_rate",
                              f"{rate:.4f}" + (f" ({_count(oov)} words)" if oov is not None else ""),
                              f"<= {GLOVE_OOV_LIMIT}"))


def dropped_checks(info: RunInfo, findings: Findings) -> None:
    for split in SPLITS:
        count = _metric(info, dropped_metric(split))
        if count:
            findings.add("questions_dropped", "questions dropped (their video has no features)", RESULTS, DROPPED_WHY,
                         Evidence(info.run_id, dropped_metric(split), _count(count), "0"))


def runtime_evidence(run: TrainRun, table: PaperTable, findings: Findings, unverified: list[str]) -> None:
    """Add the findings that the runs' tags and metrics show (see the module docstring)."""
    info = run.info
    dropped_checks(info, findings)
    precision = info.tags.get("dualvgr.precision")
    if precision is None:
        unverified.append(f"train run {info.run_id} has no dualvgr.precision tag: precision unverified")
    elif precision != "fp32":
        topic, title, why = deviation_topic("train", "precision")
        findings.add(topic, title, RESULTS, why, Evidence(info.run_id, "dualvgr.precision", precision, "fp32"))
    deviation_tags("train", info, findings)
    for stage in UPSTREAM_STAGES:
        if stage not in run.upstream:
            unverified.append(f"train run {info.run_id} records no upstream {stage} run "
                              f"(tag dualvgr.upstream.{stage}): its inputs are unverified")
        elif run.upstream[stage] is None:
            unverified.append(f"train run {info.run_id}: its upstream {stage} run is not in the tracking store")
    for stage, upstream in run.upstream.items():
        if upstream is None:
            continue
        deviation_tags(stage, upstream, findings)
        if stage == "data":
            data_checks(run, upstream, table, findings, unverified)
        elif stage in FEATURE_STAGES:
            feature_checks(stage, upstream, findings, unverified)
        elif stage == "questions":
            question_checks(upstream, findings, unverified)
