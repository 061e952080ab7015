"""Collect the train runs a report is about, with their resolved specs, curves and upstream runs.

Selection: for one experiment name, the train runs that are FINISHED and executed (cache hit "false"), pooled by
what changes their results: ``dualvgr.pool_key``, the train stage's fingerprint with the seed left out (its code
version, parameters, upstream stages' fingerprints and input files), which the runner tags on every executed run.
So seeds that differ only in settings no stage fingerprints (``*.workers``, ``report.*``, ``paper.*``, the device
label ``auto`` vs ``cpu``) share a pool, and seeds trained by other code or on other inputs do not. Runs logged
before the runner recorded that tag are pooled by ``dualvgr.config_hash`` (the spec hash without the seed, which
covers neither the code nor the input files) instead, and a note says so. The pool with the newest run is
reported, the other pools are listed; one run per seed, the newest when a seed appears twice; notes say when the
pooled seeds span several git commits or come from a checkout with uncommitted changes. Grouping runs
(``pipeline``, ``train-seeds``) carry other stage tags and never count.

:func:`select_runs` is pure (plain :class:`RunInfo` values); :func:`collect` reads the tracking store (any
``MLFLOW_TRACKING_URI``, a remote server included) through :class:`~dualvgr.core.tracking.Tracker`.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from mlflow.exceptions import MlflowException

from dualvgr.core.errors import SpecError, StageError
from dualvgr.core.spec import flatten, spec_from_dict
from dualvgr.core.tracking import (
    TAG_CACHE_HIT,
    TAG_CONFIG_HASH,
    TAG_EXPERIMENT,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_POOL_KEY,
    TAG_SEED,
    TAG_STAGE,
    TAG_UPSTREAM_PREFIX,
    Tracker,
)

TRAIN_STAGE = "train"
UPSTREAM_STAGES = ("data", "appearance", "motion", "questions")
CURVE_METRICS = ("train_loss", "val_acc", "train_acc")
NO_KEY = "(none)"


@dataclass(frozen=True)
class RunInfo:
    """What the report reads from one MLflow run (tags, params and metrics as MLflow stores them)."""

    run_id: str
    status: str
    start_time: int  # ms since the epoch
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # latest value of each metric

    @property
    def stage(self) -> str:
        return self.tags.get(TAG_STAGE, "")

    @property
    def pool(self) -> tuple[str, str]:
        """(tag, value) the run is pooled by: its pool key, else (older runs) its config hash."""
        if self.tags.get(TAG_POOL_KEY):
            return TAG_POOL_KEY, self.tags[TAG_POOL_KEY]
        return TAG_CONFIG_HASH, self.tags.get(TAG_CONFIG_HASH) or NO_KEY

    @property
    def seed(self) -> str:
        return self.tags.get(TAG_SEED) or self.params.get("train.seed", "?")

    @property
    def started(self) -> str:
        return datetime.fromtimestamp(self.start_time / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    @classmethod
    def from_mlflow(cls, run) -> RunInfo:
        return cls(run.info.run_id, run.info.status, run.info.start_time or 0, dict(run.data.tags),
                   dict(run.data.params), dict(run.data.metrics))


@dataclass(frozen=True)
class GroupNote:
    """A pool that is not reported."""

    pooled_by: str  # TAG_POOL_KEY, or TAG_CONFIG_HASH for runs without a pool key
    key: str
    run_ids: tuple[str, ...]
    seeds: tuple[str, ...]
    newest_start: str


@dataclass(frozen=True)
class RunSelection:
    runs: tuple[RunInfo, ...]  # the reported pool, one per seed, sorted by seed
    pooled_by: str
    pool_key: str
    older_groups: tuple[GroupNote, ...]
    notes: tuple[str, ...]


@dataclass
class TrainRun:
    """One reported seed: its run, resolved spec (flattened), per-epoch curves and upstream runs.

    The spec is kept as flattened values (``train.epochs`` -> 25), not as an ``ExperimentSpec``: a run logged
    under an older schema still reports and is still compared key by key.
    """

    info: RunInfo
    values: dict[str, Any] | None  # the resolved spec, flattened; None when neither spec.yaml nor params exist
    spec_note: str | None  # how the spec was read when not from a valid spec.yaml
    curves: dict[str, list[tuple[int, float]]]  # metric -> [(epoch, value)]
    upstream: dict[str, RunInfo | None]  # stage -> run; None when the tag names a run the store lacks

    @property
    def run_id(self) -> str:
        return self.info.run_id

    def value(self, key: str, default: Any = None) -> Any:
        return default if self.values is None else self.values.get(key, default)


@dataclass
class Collection:
    experiment: str
    tracking_uri: str
    runs: list[TrainRun]
    pooled_by: str  # the tag the reported runs share: TAG_POOL_KEY, or TAG_CONFIG_HASH for older runs
    pool_key: str  # its value
    older_groups: tuple[GroupNote, ...]
    notes: tuple[str, ...]


def _seed_key(seed: str) -> tuple[int, int | str]:
    return (0, int(seed)) if seed.lstrip("-").isdigit() else (1, seed)


def _seeds(runs: list[RunInfo]) -> str:
    seeds = sorted({r.seed for r in runs}, key=_seed_key)
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}"


def code_notes(runs: list[RunInfo], pooled_by: str) -> list[str]:
    """Notes when the pooled seeds were trained by several git commits, by a dirty checkout, or by unknown code."""
    notes = []
    by_commit: dict[str, list[RunInfo]] = {}
    for run in runs:
        by_commit.setdefault(run.tags.get(TAG_GIT_COMMIT) or "", []).append(run)
    commits = {commit: group for commit, group in by_commit.items() if commit}
    if len(commits) > 1:
        listed = "; ".join(f"`{commit[:12]}` ({_seeds(group)})" for commit, group in commits.items())
        why = ("their pool key matched (the same stage code versions, parameters and inputs, as the stages declare "
               "them): compare the commits if the training code changed in between" if pooled_by == TAG_POOL_KEY else
               f"their {TAG_CONFIG_HASH} does not cover the code, so these seeds may come from different code")
        notes.append(f"the pooled seeds were trained by {len(commits)} git commits: {listed}; {why}")
    if "" in by_commit:
        notes.append(f"{_seeds(by_commit[''])}: no {TAG_GIT_COMMIT} tag, the code that trained them is unknown")
    dirty = [run for run in runs if run.tags.get(TAG_GIT_DIRTY) == "true"]
    if dirty:
        notes.append(f"{_seeds(dirty)}: trained from a checkout with uncommitted changes ({TAG_GIT_DIRTY}), so "
                     f"the commit does not identify the code")
    return notes


def select_runs(candidates: list[RunInfo], experiment: str) -> RunSelection:
    """Pick the reported runs among ``candidates`` (any runs of the store; non-train runs are ignored)."""
    notes: list[str] = []
    train = [r for r in candidates if r.stage == TRAIN_STAGE and r.tags.get(TAG_EXPERIMENT) == experiment]
    unfinished = [r for r in train if r.status != "FINISHED"]
    cached = [r for r in train if r.status == "FINISHED" and r.tags.get(TAG_CACHE_HIT) != "false"]
    if unfinished:
        states = ", ".join(sorted({r.status for r in unfinished}))
        notes.append(f"{len(unfinished)} train run(s) not FINISHED ({states}) were ignored")
    if cached:
        notes.append(f"{len(cached)} cache-hit train run(s) were ignored (they point at runs already counted)")
    executed = [r for r in train if r.status == "FINISHED" and r.tags.get(TAG_CACHE_HIT) == "false"]
    if not executed:
        return RunSelection((), TAG_POOL_KEY, NO_KEY, (), tuple(notes))

    groups: dict[tuple[str, str], list[RunInfo]] = {}
    for run in executed:
        groups.setdefault(run.pool, []).append(run)
    ordered = sorted(groups.items(), key=lambda item: max(r.start_time for r in item[1]), reverse=True)
    ((pooled_by, key), group), older = ordered[0], ordered[1:]
    if pooled_by != TAG_POOL_KEY:
        notes.append(f"the reported runs have no {TAG_POOL_KEY} tag (they were logged before the runner recorded "
                     f"it): they are pooled by {TAG_CONFIG_HASH}, the spec without the seed, which covers neither "
                     f"the code version nor the input files")

    by_seed: dict[str, RunInfo] = {}
    for run in sorted(group, key=lambda r: r.start_time, reverse=True):
        if run.seed in by_seed:
            notes.append(f"seed {run.seed} was trained twice in this pool: run {by_seed[run.seed].run_id} (newest) "
                         f"is reported, run {run.run_id} is not")
            continue
        by_seed[run.seed] = run
    runs = tuple(by_seed[seed] for seed in sorted(by_seed, key=_seed_key))
    notes += code_notes(list(runs), pooled_by)
    older_notes = tuple(
        GroupNote(tag, key_, tuple(r.run_id for r in runs_), tuple(sorted({r.seed for r in runs_}, key=_seed_key)),
                  max(runs_, key=lambda r: r.start_time).started)
        for (tag, key_), runs_ in older
    )
    if older_notes:
        notes.append(f"{len(older_notes)} older pool(s) of '{experiment}' (other code, parameters or inputs) exist "
                     f"and are not reported (listed under Runs)")
    return RunSelection(runs, pooled_by, key, older_notes, tuple(notes))


# ------------------------------------------------------------------------------------------ store access


def train_run_candidates(tracker: Tracker, experiment: str) -> list[RunInfo]:
    if "'" in experiment or "`" in experiment:
        raise StageError(f"experiment name {experiment!r} cannot contain quotes")
    found = tracker.search(f"tags.`{TAG_STAGE}` = '{TRAIN_STAGE}' and tags.`{TAG_EXPERIMENT}` = '{experiment}'")
    return [RunInfo.from_mlflow(run) for run in found]


@contextmanager
def _quiet_downloads():
    """MLflow draws a progress bar per artifact download; a report reads one small file per run."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def read_spec(tracker: Tracker, info: RunInfo) -> tuple[dict[str, Any] | None, str | None]:
    """The run's resolved spec, flattened, from its ``spec.yaml`` artifact, else from its params; and a note."""
    try:
        with tempfile.TemporaryDirectory(prefix="dualvgr-report-") as tmp, _quiet_downloads():
            path = tracker.client.download_artifacts(info.run_id, "spec.yaml", tmp)
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (MlflowException, OSError, yaml.YAMLError) as error:  # absent, unreachable or not YAML
        if not info.params:
            return None, f"run {info.run_id} has neither a readable spec.yaml ({type(error).__name__}) nor params"
        return flatten(unflatten_params(info.params)), f"run {info.run_id}: no readable spec.yaml, read its params"
    if not isinstance(raw, dict):
        return None, f"run {info.run_id}: spec.yaml is not a mapping"
    try:
        spec_from_dict(raw, source=f"run {info.run_id} spec.yaml")
    except SpecError as error:
        return flatten(raw), f"run {info.run_id}: its spec.yaml does not validate against today's schema ({error})"
    return flatten(raw), None


def unflatten_params(params: dict[str, str]) -> dict:
    """MLflow params (``train.lr`` -> "0.0001") back to a nested spec dict; values parsed as YAML when they parse."""
    nested: dict = {}
    for key, text in params.items():
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        if not isinstance(value, (list, int, float, bool)) and value is not None:
            value = text  # strings (and anything YAML turns into another type) stay as logged
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def read_curves(tracker: Tracker, info: RunInfo) -> dict[str, list[tuple[int, float]]]:
    curves = {}
    for key in CURVE_METRICS:
        if key in info.metrics:
            history = tracker.client.get_metric_history(info.run_id, key)
            latest: dict[int, tuple[int, float]] = {}
            for metric in history:  # a resumed run may log an epoch twice: keep the last logged value
                if metric.step not in latest or metric.timestamp >= latest[metric.step][0]:
                    latest[metric.step] = (metric.timestamp, metric.value)
            curves[key] = [(step, value) for step, (_, value) in sorted(latest.items())]
    return curves


def read_upstream(tracker: Tracker, info: RunInfo, cache: dict[str, RunInfo | None]) -> dict[str, RunInfo | None]:
    """stage -> upstream run (``dualvgr.upstream.<stage>`` tags); seeds share them, so ``cache`` keeps each once."""
    upstream: dict[str, RunInfo | None] = {}
    for key, run_id in info.tags.items():
        if not key.startswith(TAG_UPSTREAM_PREFIX):
            continue
        if run_id not in cache:
            try:
                cache[run_id] = RunInfo.from_mlflow(tracker.client.get_run(run_id))
            except MlflowException:  # deleted, or the id of another store
                cache[run_id] = None
        upstream[key[len(TAG_UPSTREAM_PREFIX):]] = cache[run_id]
    return upstream


def collect(tracker: Tracker, experiment: str) -> Collection:
    """The reported train runs of ``experiment``; StageError when there is none."""
    selection = select_runs(train_run_candidates(tracker, experiment), experiment)
    if not selection.runs:
        extra = f" ({'; '.join(selection.notes)})" if selection.notes else ""
        raise StageError(
            f"no FINISHED train runs for experiment '{experiment}' in {tracker.tracking_uri}{extra}; "
            f"run `dualvgr train -e experiments/{experiment}.yaml` (or the file declaring name: {experiment}) first"
        )
    runs, cache = [], {}
    for info in selection.runs:
        values, note = read_spec(tracker, info)
        runs.append(TrainRun(info, values, note, read_curves(tracker, info), read_upstream(tracker, info, cache)))
    return Collection(experiment, tracker.tracking_uri, runs, selection.pooled_by, selection.pool_key,
                      selection.older_groups, selection.notes)
