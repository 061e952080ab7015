"""Stage runs as the harness's stages log them, written directly into a tracking store (no training).

Follows the stages' tag and metric contract (the README's metric names): every run has the runner's tags (the
pool key included), the flattened spec as params and ``spec.yaml``; upstream runs carry the tags and metrics the
audit reads; train runs carry per-epoch curves, the final metrics of the split ``train.eval_split`` names
(fractions) and the dropped-question counts.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal, get_args

import pytest

from dualvgr.core import schema
from dualvgr.core.errors import SpecError
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.spec import config_hash, dump_spec, flatten, load_spec, replace_in, spec_from_dict, spec_hash
from dualvgr.core.tracking import Tracker
from dualvgr.report import paper
from dualvgr.report.results import FINAL_METRIC_PREFIX

REPO = Path(__file__).resolve().parents[2]
MSVD_COUNTS = {"train": 30933, "val": 6415, "test": 13157}
TYPES = ("what", "who", "how", "when", "where")
# The original code's 15 SVQA question categories (the last function of a question's program).
SVQA_CATEGORIES = (
    "exist", "count", "compare_more", "compare_equal", "compare_less",
    *(f"attribute_compare_{a}" for a in ("color", "size", "actiontype", "direction", "shape")),
    *(f"query_{a}" for a in ("color", "size", "actiontype", "direction", "shape")),
)
SVQA_VIDEOS = {"train": 8400, "val": 1200, "test": 2400}
SVQA_KINDS = ("svqa", "synthetic-svqa")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKENIZER = "nltk 3.10.4 word_tokenize (punkt_tab english, embedded)"


def unique_name(request, suffix: str = "") -> str:
    """A valid, unique experiment name from the test's name (the session store is shared)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"rep-{request.node.name}{suffix}")[:100]


def paper_like_spec(name: str, experiment: str = "msvd_qa.yaml", **overrides) -> ExperimentSpec:
    """The paper's experiment file with ``name`` and dotted overrides (``train.epochs=12``)."""
    sets = [f"name={name}", *(f"{key}={value}" for key, value in overrides.items())]
    return load_spec(REPO / "experiments" / experiment, sets)


@dataclass
class Upstream:
    """Knobs of the upstream runs of a reproduction; defaults = a faithful MSVD-QA reproduction."""

    appearance_source: str = "imagenet"
    appearance_sha256: str = "63fe2227" + "0" * 56
    motion_source: str = "file"
    motion_sha256: str = "ab" * 32
    motion_width: int = 2048
    glove_source: str = "file"
    glove_oov_rate: float = 0.03
    videos_missing: int = 0
    questions: dict[str, int] = field(default_factory=lambda: dict(MSVD_COUNTS))
    videos: dict[str, int] = field(default_factory=dict)  # split -> videos (the data stage's videos_<split>)
    deviation_tags: dict[str, dict[str, str]] = field(default_factory=dict)  # stage -> {name: value}


def log_run(tracker: Tracker, spec: ExperimentSpec, stage: str, *, tags=None, metrics=None, curves=None,
            cache_hit: bool = False, status: str = "FINISHED", spec_yaml: str | None = None) -> str:
    """One stage run; ``tags`` override the runner's tags, a tag set to None is left out (an older run)."""
    base = {
        "dualvgr.stage": stage, "dualvgr.experiment": spec.name, "dualvgr.spec_hash": spec_hash(spec),
        "dualvgr.config_hash": config_hash(spec), "dualvgr.fingerprint": f"fp-{stage}-{spec_hash(spec)[:12]}",
        # The runner's pool key is the fingerprint without the seed; here the seed-free config hash stands in.
        "dualvgr.pool_key": f"pool-{stage}-{config_hash(spec)[:12]}",
        "dualvgr.cache_hit": str(cache_hit).lower(), "dualvgr.seed": str(spec.train.seed),
        "dualvgr.git_commit": COMMIT, "dualvgr.git_dirty": "false",
        "dualvgr.version.python": "3.11.2", "dualvgr.version.torch": "2.14.1", "dualvgr.version.mlflow": "3.17.2",
        "dualvgr.host": "test-host",
    }
    merged = {key: value for key, value in (base | (tags or {})).items() if value is not None}
    log = tracker.start_run(spec.mlflow_experiment, f"{stage}-seed{spec.train.seed}", merged)
    log.log_params(flatten(spec))
    log.log_text(dump_spec(spec) if spec_yaml is None else spec_yaml, "spec.yaml")
    for epoch, values in sorted((curves or {}).items()):
        log.log_metrics(values, step=epoch)
    if metrics:
        log.log_metrics(metrics)
    if status == "FINISHED":
        log.finish()
    else:
        log.client.set_terminated(log.run_id, status)
    return log.run_id


def log_upstream(tracker: Tracker, spec: ExperimentSpec, up: Upstream | None = None) -> dict[str, str]:
    """data / appearance / motion / questions runs; returns stage -> run id."""
    up = up or Upstream()
    dev = {stage: {f"dualvgr.deviation.{k}": v for k, v in tags.items()} for stage, tags in up.deviation_tags.items()}
    data_tags = {"dualvgr.dataset_fingerprint": "d" * 64} | dev.get("data", {})
    if up.videos_missing:
        data_tags["dualvgr.deviation.missing_videos"] = str(up.videos_missing)
    data = log_run(tracker, spec, "data", tags=data_tags, metrics={
        **{f"questions_{s}": n for s, n in up.questions.items()}, **{f"videos_{s}": n for s, n in up.videos.items()},
        "videos_total": sum(up.videos.values()) or 1970,
        "videos_missing": up.videos_missing})

    def features(stage: str, source: str, sha: str, width: int) -> str:
        tags = {"dualvgr.weights.source": source, "dualvgr.weights.sha256": "" if source == "random" else sha,
                "dualvgr.weights.path": "" if source == "random" else f"/weights/{stage}.pth"} | dev.get(stage, {})
        if source == "random":  # as dualvgr/features/stage.py tags it
            tags |= {"dualvgr.deviation.random_weights": "true", f"dualvgr.deviation.random_weights_{stage}": "true"}
        return log_run(tracker, spec, stage, tags=tags, metrics={
            "videos_extracted": 1970, "videos_failed": 0, "feature_width": width, "frames_per_second": 100.0})

    appearance = features("appearance", up.appearance_source, up.appearance_sha256, 2048)
    motion = features("motion", up.motion_source, up.motion_sha256, up.motion_width)
    glove_tags = {"dualvgr.glove.source": up.glove_source, "dualvgr.tokenizer": TOKENIZER,
                  "dualvgr.vocabulary.source": "built from data/msvd-qa/train_qa.json"} | dev.get("questions", {})
    glove_tags["dualvgr.glove.path"] = "" if up.glove_source == "none" else "data/glove/glove.840B.300d.zip"
    if up.glove_source != "none":
        glove_tags["dualvgr.glove.sha256"] = "9" * 64
    else:  # as dualvgr/text/stage.py tags it
        glove_tags["dualvgr.deviation.glove"] = "none"
    question_metrics = {"vocab_questions": 4000, "vocab_answers": 4002,
                        **{f"unknown_answers_{s}": n for s, n in (("train", 0), ("val", 120), ("test", 260))}}
    if up.glove_source != "none":
        question_metrics |= {"glove_found": 3880, "glove_oov": round(4000 * up.glove_oov_rate),
                             "glove_oov_rate": up.glove_oov_rate}
    questions = log_run(tracker, spec, "questions", tags=glove_tags, metrics=question_metrics)
    return {"data": data, "appearance": appearance, "motion": motion, "questions": questions}


def log_train(tracker: Tracker, spec: ExperimentSpec, seed: int, accuracy: float, *, upstream: dict[str, str],
              per_type: dict[str, float] | None = None, epochs: int = 3, precision: str = "fp32",
              cache_hit: bool = False, status: str = "FINISHED", extra_tags: dict | None = None,
              spec_yaml: str | None = None, dropped: dict[str, int] | None = None) -> str:
    """One seed's train run: curves per epoch, then the final metrics of the scored split (fractions).

    ``accuracy`` is the scored split's overall accuracy (``test_acc``, or ``best_val_acc`` when
    ``train.eval_split`` is val); ``dropped``: split -> questions dropped (0 for the others).
    """
    seeded = replace_in(spec, **{"train.seed": seed})
    per_type = per_type if per_type is not None else {t: accuracy for t in TYPES}
    curves = {epoch: {"train_loss": 5.0 - epoch, "val_acc": 0.2 + 0.05 * epoch, "train_acc": 0.3 + 0.05 * epoch,
                      "lr": 1e-4} for epoch in range(epochs)}
    prefix = FINAL_METRIC_PREFIX[seeded.train.eval_split]
    metrics = {"best_val_acc": 0.2 + 0.05 * (epochs - 1), "best_epoch": epochs - 1, f"{prefix}acc": accuracy,
               f"{prefix}prior_acc": 0.05, **{f"{prefix}acc_{t}": v for t, v in per_type.items()},
               **{f"{split}_questions_dropped": (dropped or {}).get(split, 0) for split in ("train", "val", "test")}}
    tags = {"dualvgr.device": "cuda:NVIDIA H100 80GB HBM3", "dualvgr.precision": precision}
    if seeded.train.eval_split != "test":  # as dualvgr/train/stage.py tags them
        tags["dualvgr.deviation.eval_split"] = seeded.train.eval_split
    if precision != "fp32":
        tags["dualvgr.deviation.precision"] = precision
    tags |= {f"dualvgr.upstream.{stage}": run_id for stage, run_id in upstream.items()} | (extra_tags or {})
    return log_run(tracker, seeded, "train", tags=tags, metrics=metrics, curves=curves, cache_hit=cache_hit,
                   status=status, spec_yaml=spec_yaml)


def log_reproduction(tracker: Tracker, spec: ExperimentSpec, accuracies: dict[int, float],
                     up: Upstream | None = None, **train) -> list[str]:
    """Upstream runs shared by the seeds, then one train run per seed (seed -> overall accuracy on the scored split)."""
    upstream = log_upstream(tracker, spec, up)
    return [log_train(tracker, spec, seed, acc, upstream=upstream, **train) for seed, acc in accuracies.items()]


# ------------------------------------------------------------------------------------------ SVQA stand-ins


def _accepts_kind(kind: str) -> bool:
    try:
        spec_from_dict({"name": "probe", "dataset": {"kind": kind}})
    except SpecError:
        return False
    return True


@contextmanager
def svqa_stand_ins(folder: Path) -> Iterator[None]:
    """``dataset.kind: svqa`` / ``synthetic-svqa`` and ``experiments/svqa.yaml`` while the data-set work that
    provides them is not on this branch: each stand-in is used only where the real one is missing.

    The stand-in configuration is the MSVD-QA one on SVQA data (the SVQA setup is the data-set work's to write).
    """
    with pytest.MonkeyPatch.context() as patch:
        missing = [kind for kind in SVQA_KINDS if not _accepts_kind(kind)]
        if missing:
            assert hasattr(schema, "DatasetKind"), f"dataset.kind refuses {missing} and the schema has no DatasetKind"
            patch.setattr(schema, "DatasetKind", Literal[(*get_args(schema.DatasetKind), *missing)])
        table = paper.paper_table("svqa")
        if not (REPO / "experiments" / table.spec_file).is_file():
            folder.mkdir(parents=True, exist_ok=True)
            stand_in = load_spec(REPO / "experiments" / "msvd_qa.yaml", [
                "name=svqa", "paper.table=svqa", "dataset.kind=svqa", "dataset.root=data/svqa"])
            (folder / table.spec_file).write_text(dump_spec(stand_in), encoding="utf-8")
            real_roots = paper.spec_roots
            patch.setattr(paper, "spec_roots", lambda: (*real_roots(), folder))
        yield


def svqa_spec(name: str, **overrides) -> ExperimentSpec:
    """The paper's SVQA configuration (or its stand-in: call inside :func:`svqa_stand_ins`) with ``name``."""
    sets = [f"name={name}", *(f"{key}={value}" for key, value in overrides.items())]
    return load_spec(paper.paper_spec_path(paper.paper_table("svqa")), sets)
