"""Run stages with the cache: reuse a FINISHED run whose outputs still exist, else run upstream first.

Every executed stage is one MLflow run tagged with its stage, fingerprint, spec hash, git state, package versions
and the process running it; upstream stages executed on the way become child runs. A stage that raises leaves its
run FAILED with the error and traceback logged; one interrupted (Ctrl-C, SIGTERM) leaves it KILLED, and every
open parent run (seed group, pipeline) with it. Runs a vanished process left RUNNING (kill -9) are marked FAILED
when a runner first runs a stage. Under ``mlflow run`` the run MLflow created (``MLFLOW_RUN_ID``) is used for
the requested stage, in whatever MLflow experiment it lives; the cache and the report search all experiments.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from dualvgr.core import staging
from dualvgr.core.errors import StageError
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.spec import config_hash, dump_spec, flatten, replace_in, spec_hash
from dualvgr.core.stage import (
    Stage,
    StageContext,
    StageRecord,
    code_version,
    describe_output,
    input_fingerprint,
    output_change,
    stage_fingerprint,
    stat_cache,
)
from dualvgr.core.tracking import (
    TAG_CACHE_HIT,
    TAG_CACHED_RUN,
    TAG_CODE_VERSION,
    TAG_CONFIG_HASH,
    TAG_EXPERIMENT,
    TAG_FINGERPRINT,
    TAG_INPUT_FINGERPRINT,
    TAG_OUTPUTS,
    TAG_POOL_KEY,
    TAG_SEED,
    TAG_SPEC_HASH,
    TAG_STAGE,
    TAG_UPSTREAM_PREFIX,
    RunLogger,
    Tracker,
    process_of,
    provenance_tags,
)


ARTIFACT_LIMIT = 64 * 2**20  # outputs up to this size are also logged as artifacts of their run


@dataclass
class Runner:
    stages: dict[str, Stage]
    tracker: Tracker
    progress: bool = True
    echo: bool = True
    _fingerprints: dict = field(default_factory=dict, repr=False)
    _dead_runs_checked: bool = field(default=False, repr=False)

    # ----------------------------------------------------------------------------------------- public API

    def run(
        self, name: str, spec: ExperimentSpec, *, force: bool = False, launched_run_id: str | None = None,
        parent_run_id: str | None = None,
    ) -> list[StageRecord]:
        """Make ``name``'s outputs exist for every variant of ``spec`` (one per seed for train)."""
        stage = self._stage(name)
        self.fail_dead_runs()
        variants = stage.variants(spec)
        if len(variants) == 1:
            return [self._run_variant(stage, variants[0], force, launched_run_id, parent_run_id)]
        group = self.parent_run(f"{stage.name}-seeds", spec, launched_run_id, parent_run_id)
        try:
            records = [self._run_variant(stage, v, force, None, group.run_id) for v in variants]
        except BaseException as error:
            group.fail(error)
            raise
        group.finish()
        return records

    def fail_dead_runs(self) -> None:
        """Once per runner: runs left RUNNING by a process of this host that is gone (kill -9) become FAILED."""
        if self._dead_runs_checked:
            return
        self._dead_runs_checked = True
        for run in self.tracker.fail_dead_runs():
            process = process_of(run.data.tags)
            self._say(f"[tracking] run {run.info.run_id[:8]} ({run.info.run_name}) was left RUNNING by process "
                      f"{process.pid} on {process.host}, which is gone: marked FAILED")

    def fingerprint(self, name: str, spec: ExperimentSpec) -> str:
        return stage_fingerprint(self.stages, name, spec, self._fingerprints)

    def pool_key(self, name: str, spec: ExperimentSpec) -> str:
        """The fingerprint with the seed left out: runs that share it differ only by seed (the report pools them)."""
        return self.fingerprint(name, replace_in(spec, **{"train.seed": 0, "train.seeds": []}))

    def cached(self, name: str, spec: ExperimentSpec) -> StageRecord | None:
        """The newest FINISHED run of this stage and fingerprint whose outputs all still have their content."""
        return self._lookup(name, spec)[0]

    def _lookup(self, name: str, spec: ExperimentSpec) -> tuple[StageRecord | None, str | None]:
        """(cache hit or None, why the newest matching run is not a hit: "output best.pt changed since run ...")."""
        fingerprint = self.fingerprint(name, spec)
        cache = stat_cache(spec)
        stale = None
        for run in self.tracker.executed_runs(name, fingerprint):
            try:
                outputs = json.loads(run.data.tags.get(TAG_OUTPUTS, "{}"))
            except json.JSONDecodeError:
                continue
            if not outputs:
                continue
            changes = {key: output_change(record, cache) for key, record in outputs.items()}
            changed = [(key, why) for key, why in changes.items() if why]
            if not changed:
                paths = {key: Path(record["path"]) for key, record in outputs.items()}
                return StageRecord(name, fingerprint, run.info.run_id, paths, cache_hit=True, spec=spec), None
            if stale is None:
                key, why = changed[0]
                more = f" (and {len(changed) - 1} more output(s))" if len(changed) > 1 else ""
                stale = f"output {Path(outputs[key]['path']).name} {why} since run {run.info.run_id[:8]}{more}"
        return None, stale

    # ------------------------------------------------------------------------------------------ internals

    def _stage(self, name: str) -> Stage:
        if name not in self.stages:
            raise StageError(f"unknown stage '{name}' (stages: {', '.join(self.stages)})")
        return self.stages[name]

    def _run_variant(
        self, stage: Stage, spec: ExperimentSpec, force: bool, launched_run_id: str | None, parent_run_id: str | None
    ) -> StageRecord:
        fingerprint = self.fingerprint(stage.name, spec)
        out_dir = Path(spec.tracking.outputs) / stage.name / fingerprint[:16]
        staging.clear_leftovers(out_dir, self._say)  # before the lookup: a swap cut short may have the old output
        hit, stale = (None, None) if force or not stage.cacheable else self._lookup(stage.name, spec)
        if hit is not None:
            self._say(f"[{stage.name}] cache hit: run {hit.run_id} ({fingerprint[:12]}); --force reruns it")
            if launched_run_id:
                self._record_cache_hit(launched_run_id, stage, spec, hit)
            return hit

        if stale:
            self._say(f"[{stage.name}] {stale}: rerunning from scratch")
        fresh = force or stale is not None  # outputs that changed behind our back are not resumed from
        log = self._open_run(stage, spec, fingerprint, launched_run_id, parent_run_id)
        build = None
        try:
            upstream, upstream_runs = {}, {}
            for up in stage.upstream(spec):
                records = self.run(up, spec, parent_run_id=log.run_id)
                upstream_runs[up] = records
                if len(records) == 1:  # several seeds: only the stage's list of runs (report) makes sense
                    upstream[up] = records[0]
            log.set_tags({TAG_UPSTREAM_PREFIX + up: ",".join(r.run_id for r in recs) for up, recs in upstream_runs.items()})
            # From scratch: built beside the old output, which stays valid until the new one is complete;
            # otherwise in the output folder itself, where a killed run resumes.
            build = staging.prepare(out_dir, from_scratch=fresh)
            context = StageContext(spec, fingerprint, build.work_dir, upstream, log, self.progress, upstream_runs)
            beside = f" (built in {build.work_dir.name}, swapped in when complete)" if build.staged else ""
            self._say(f"[{stage.name}] running ({fingerprint[:12]}) -> {out_dir}{beside}")
            started = time.perf_counter()
            result = stage.run(context)
            cache = stat_cache(spec)
            staging.check_no_build_path(stage.name, build, result.outputs.values())
            built = {key: describe_output(path, cache) for key, path in result.outputs.items()}
            staging.swap_in(build, cache)
            outputs = {key: dict(record, path=str(build.final(record["path"]))) for key, record in built.items()}
            metrics = dict(result.metrics, stage_seconds=time.perf_counter() - started)
            log.log_metrics(metrics)
            for record in outputs.values():  # small outputs travel with the run; large ones by path + sha256
                if record["kind"] == "file" and record["size"] <= ARTIFACT_LIMIT:
                    log.log_artifact(record["path"], "outputs")
            log.log_dict(outputs, "outputs.json")
            log.set_tags({TAG_OUTPUTS: json.dumps(outputs, sort_keys=True)})
        except BaseException as error:
            if build is not None:
                staging.discard(build)
            log.fail(error)
            raise
        log.finish()
        if result.summary:
            self._say(f"[{stage.name}] {result.summary}")
        paths = {key: Path(record["path"]) for key, record in outputs.items()}
        return StageRecord(stage.name, fingerprint, log.run_id, paths, cache_hit=False, spec=spec)

    def _open_run(
        self, stage: Stage, spec: ExperimentSpec, fingerprint: str, launched_run_id: str | None,
        parent_run_id: str | None,
    ) -> RunLogger:
        tags = self._tags(stage.name, spec) | {
            TAG_FINGERPRINT: fingerprint, TAG_CACHE_HIT: "false", TAG_POOL_KEY: self.pool_key(stage.name, spec),
            TAG_INPUT_FINGERPRINT: input_fingerprint(self.stages, stage.name, spec, self._fingerprints),
            TAG_CODE_VERSION: code_version(stage, self._fingerprints),
        }
        if launched_run_id:
            log = self.tracker.attach(launched_run_id)
            log.set_tags(tags)
        else:
            log = self.tracker.start_run(spec.mlflow_experiment, stage.run_name(spec), tags, parent_run_id)
        log.log_params(flatten(spec))
        log.log_text(dump_spec(spec), "spec.yaml")
        return log

    def parent_run(
        self, label: str, spec: ExperimentSpec, launched_run_id: str | None = None, parent_run_id: str | None = None
    ) -> RunLogger:
        """A run that only groups child runs (a pipeline, several seeds); the report never counts it."""
        self.fail_dead_runs()
        tags = self._tags(label, spec)
        if launched_run_id:
            log = self.tracker.attach(launched_run_id)
            log.set_tags(tags)
        else:
            log = self.tracker.start_run(spec.mlflow_experiment, label, tags, parent_run_id)
        log.log_params(flatten(spec))
        log.log_text(dump_spec(spec), "spec.yaml")
        return log

    def _record_cache_hit(self, run_id: str, stage: Stage, spec: ExperimentSpec, hit: StageRecord) -> None:
        log = self.tracker.attach(run_id)
        log.set_tags(
            self._tags(stage.name, spec)
            | {TAG_FINGERPRINT: hit.fingerprint, TAG_CACHE_HIT: "true", TAG_CACHED_RUN: hit.run_id}
        )
        log.log_params(flatten(spec))

    @staticmethod
    def _tags(stage: str, spec: ExperimentSpec) -> dict[str, str]:
        return provenance_tags() | {
            TAG_STAGE: stage,
            TAG_EXPERIMENT: spec.name,
            TAG_SPEC_HASH: spec_hash(spec),
            TAG_CONFIG_HASH: config_hash(spec),
            TAG_SEED: str(spec.train.seed),
        } | ({"mlflow.note.content": spec.description} if spec.description else {})  # MLflow's run description

    def _say(self, message: str) -> None:
        if self.echo:
            print(message, file=sys.stderr, flush=True)


@contextmanager
def pipeline_run(runner: Runner, spec: ExperimentSpec, launched_run_id: str | None = None) -> Iterator[RunLogger]:
    """The parent run of a whole pipeline: FINISHED when every stage is, else FAILED with the error (KILLED when
    interrupted)."""
    log = runner.parent_run("pipeline", spec, launched_run_id)
    try:
        yield log
    except BaseException as error:
        log.fail(error)
        raise
    log.finish()
