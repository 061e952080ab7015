"""Provenance of a report: code, packages, devices, data and weights fingerprints, run ids.

Everything comes from the tags the stage runner and the stages record (``dualvgr.git_commit``,
``dualvgr.version.<package>``, ``dualvgr.device``, ``dualvgr.dataset_fingerprint``, ``dualvgr.weights.sha256``,
``dualvgr.glove.sha256``, ``dualvgr.upstream.<stage>``); values that differ between runs are all listed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

from dualvgr.core.tracking import TAG_GIT_COMMIT, TAG_GIT_DIRTY, git_state
from dualvgr.report.collect import UPSTREAM_STAGES, Collection, RunInfo

VERSION_PREFIX = "dualvgr.version."


@dataclass(frozen=True)
class Provenance:
    facts: tuple[tuple[str, str], ...]  # (what, value)
    versions: tuple[tuple[str, str], ...]  # (package, version(s))
    run_ids: tuple[tuple[str, ...], ...]  # (seed, train, data, appearance, motion, questions)


def _values(runs: list[RunInfo], read) -> str:
    """Distinct values over runs, with a count when they differ ("a (2 runs); b (1 run)")."""
    counts = Counter(v for v in (read(run) for run in runs) if v not in (None, ""))
    if not counts:
        return "not recorded"
    if len(counts) == 1:
        return next(iter(counts))
    return "; ".join(f"{value} ({n} run{'s' if n > 1 else ''})" for value, n in counts.most_common())


def _commit(run: RunInfo) -> str | None:
    commit = run.tags.get(TAG_GIT_COMMIT)
    if commit is None:
        return None
    dirty = run.tags.get(TAG_GIT_DIRTY)
    state = {"true": "dirty: uncommitted changes", "false": "clean"}.get(dirty, "dirty flag not recorded")
    return f"`{commit}` ({state})"


def _metric(name: str, scale: float = 1.0, fmt: str = "{:g}"):
    def read(run: RunInfo) -> str | None:
        value = run.metrics.get(name)
        return None if value is None else fmt.format(value * scale)
    return read


def _tag(name: str):
    return lambda run: run.tags.get(name)


def _weights(run: RunInfo) -> str | None:
    source = run.tags.get("dualvgr.weights.source")
    if source is None:
        return None
    sha = run.tags.get("dualvgr.weights.sha256")
    path = run.tags.get("dualvgr.weights.path")
    return source + (f", sha256 `{sha}`" if sha else "") + (f", file `{path}`" if path else "")


def _glove(run: RunInfo) -> str | None:
    source = run.tags.get("dualvgr.glove.source")
    if source is None:
        return None
    sha = run.tags.get("dualvgr.glove.sha256")
    rate = run.metrics.get("glove_oov_rate")
    return source + (f", sha256 `{sha}`" if sha else "") + (f", OOV rate {rate:.2%}" if rate is not None else "")


def _splits(prefix: str):
    def read(run: RunInfo) -> str | None:
        values = [run.metrics.get(f"{prefix}_{split}") for split in ("train", "val", "test")]
        if all(v is None for v in values):
            return None
        return " / ".join("?" if v is None else f"{int(v):,}" for v in values)
    return read


def provenance(collection: Collection) -> Provenance:
    train = [run.info for run in collection.runs]
    stage_runs = {stage: [r for run in collection.runs if (r := run.upstream.get(stage)) is not None]
                  for stage in UPSTREAM_STAGES}
    commit, dirty = git_state()
    facts = [
        ("tracking store", f"`{collection.tracking_uri}`"),
        (f"pool ({collection.pooled_by})", f"`{collection.pool_key}`"),
        ("code of the train runs", _values(train, _commit)),
        *((f"code of the {stage} runs", _values(runs, _commit)) for stage, runs in stage_runs.items() if runs),
        ("code of this report", f"`{commit}` ({'dirty: uncommitted changes' if dirty else 'clean'})"),
        ("report written", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("train device", _values(train, _tag("dualvgr.device"))),
        ("train precision", _values(train, _tag("dualvgr.precision"))),
        ("train host", _values(train, _tag("dualvgr.host"))),
        ("data fingerprint", _values(stage_runs["data"], _tag("dualvgr.dataset_fingerprint"))),
        ("questions train / val / test (data run)", _values(stage_runs["data"], _splits("questions"))),
        ("videos train / val / test (data run)", _values(stage_runs["data"], _splits("videos"))),
        ("videos missing (data run)", _values(stage_runs["data"], _metric("videos_missing"))),
        ("appearance weights", _values(stage_runs["appearance"], _weights)),
        ("appearance feature width", _values(stage_runs["appearance"], _metric("feature_width"))),
        ("motion weights", _values(stage_runs["motion"], _weights)),
        ("motion feature width", _values(stage_runs["motion"], _metric("feature_width"))),
        ("GloVe", _values(stage_runs["questions"], _glove)),
        ("tokenizer (questions run)", _values(stage_runs["questions"], _tag("dualvgr.tokenizer"))),
        ("vocabulary (questions run)", _values(stage_runs["questions"], _tag("dualvgr.vocabulary.source"))),
        ("vocabulary: question words / answers", _values(
            stage_runs["questions"],
            lambda r: None if "vocab_questions" not in r.metrics else
            f"{int(r.metrics['vocab_questions']):,} / {int(r.metrics.get('vocab_answers', 0)):,}")),
        ("unknown answers train / val / test (counted wrong in val/test, a kept quirk of the original)",
         _values(stage_runs["questions"], _splits("unknown_answers"))),
        ("questions without '?' train / val / test (lose a real character, B36)",
         _values(stage_runs["questions"], _splits("questions_without_qmark"))),
    ]
    packages = sorted({key[len(VERSION_PREFIX):] for run in train for key in run.tags
                       if key.startswith(VERSION_PREFIX)})
    versions = tuple((package, _values(train, _tag(VERSION_PREFIX + package))) for package in packages)
    run_ids = tuple(
        (run.info.seed, f"`{run.run_id}`",
         *(f"`{up.run_id}`" if (up := run.upstream.get(stage)) is not None else
           ("missing from the store" if stage in run.upstream else "not recorded") for stage in UPSTREAM_STAGES))
        for run in collection.runs
    )
    return Provenance(tuple(facts), versions, run_ids)
