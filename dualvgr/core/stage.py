"""What a pipeline stage is: its parameters, upstream stages, fingerprint and outputs.

A stage's fingerprint = sha256 of (stage name, its code version, its salt, the spec values it reads, the
fingerprints of its upstream stages, and the identity of external input files). The code version is derived
from the source of the modules the stage's outputs depend on (``dualvgr.core.code_version`` states the rule), so
no code change can leave a stale cache hit behind. Its outputs live in
``<tracking.outputs>/<stage>/<fingerprint[:16]>/`` so that two experiments that agree on a stage share it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from dualvgr.core.code_version import stage_code_version
from dualvgr.core.fingerprint import StatCache, describe_file_change, folder_manifest, manifest_digest, stat_cache_in
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.spec import sha256_of

if TYPE_CHECKING:  # MLflow takes seconds to import; the CLI's validate and --help never need it
    from dualvgr.core.tracking import RunLogger


@dataclass(frozen=True)
class StageRecord:
    """A stage whose outputs exist: just executed, or found FINISHED in the tracking store."""

    stage: str
    fingerprint: str
    run_id: str
    outputs: dict[str, Path]
    cache_hit: bool
    spec: ExperimentSpec


@dataclass
class StageResult:
    """What a stage's ``run`` returns: paths downstream stages read, and final metrics to log."""

    outputs: dict[str, Path]
    metrics: dict[str, float] = field(default_factory=dict)
    summary: str = ""


@dataclass
class StageContext:
    spec: ExperimentSpec
    fingerprint: str
    # Where the stage writes its outputs. From scratch (--force) this is a staging folder that is renamed to the
    # output folder once the stage completes (dualvgr.core.staging): never write its absolute path into a file.
    out_dir: Path
    upstream: dict[str, StageRecord]
    log: RunLogger
    progress: bool = True
    # Every record of every upstream stage (a stage with several seeds has several); ``upstream`` holds the
    # single ones.
    upstream_runs: dict[str, list[StageRecord]] = field(default_factory=dict)

    def input(self, stage: str, output: str) -> Path:
        return self.upstream[stage].outputs[output]


@dataclass(frozen=True)
class Stage:
    name: str
    # A salt for what the source cannot show (a format read from elsewhere); code changes need no bump: the code
    # version is derived from the source.
    version: str
    params: Callable[[ExperimentSpec], dict]
    run: Callable[[StageContext], StageResult]
    upstream: Callable[[ExperimentSpec], tuple[str, ...]] = lambda spec: ()
    external_inputs: Callable[[ExperimentSpec], Any] = lambda spec: None
    # One spec per independent run (train: one per seed).
    variants: Callable[[ExperimentSpec], list[ExperimentSpec]] = lambda spec: [spec]
    cacheable: bool = True
    # What tells this stage's runs apart in the tracking UI beyond its name ("seed666"); "" for nothing.
    run_label: Callable[[ExperimentSpec], str] = lambda spec: ""
    # Under torchrun: what ranks > 0 do with a job this stage's run on rank 0 sends them (``Ranks.send``), called
    # as follow(job, ranks) (dualvgr.core.ranks); None for a stage that runs on rank 0 alone.
    follow: Callable[[Any, Any], None] | None = None

    def run_name(self, spec: ExperimentSpec) -> str:
        label = self.run_label(spec)
        return f"{self.name}-{label}" if label else self.name


def seed_label(spec: ExperimentSpec) -> str:
    """The run label of a stage run once per seed."""
    return f"seed{spec.train.seed}"


def stat_cache(spec: ExperimentSpec) -> StatCache:
    """The file-digest cache of this spec's outputs folder (shared by every stage and experiment using it)."""
    return stat_cache_in(spec.tracking.outputs)


def describe_output(path: Path, cache: StatCache) -> dict:
    """How an output is recorded: path, size and sha256 (file) or path and content digest (folder)."""
    path = Path(path).resolve()
    if path.is_dir():
        manifest = folder_manifest(path, cache)
        return {"path": str(path), "kind": "dir", "files": len(manifest), "digest": manifest_digest(manifest)}
    return {"path": str(path), "kind": "file", "size": path.stat().st_size, "sha256": cache.sha256(path, progress=True)}


def output_change(record: dict, cache: StatCache) -> str | None:
    """None when a recorded output still has its recorded content, else what changed ("changed content ...")."""
    path = Path(record["path"])
    if record.get("kind") == "dir":
        if not path.is_dir():
            return "is missing"
        return None if manifest_digest(folder_manifest(path, cache)) == record["digest"] else "changed content"
    if "sha256" not in record:
        return "has no recorded sha256 (recorded by an older harness)"
    return describe_file_change(path, record, cache)


def stage_fingerprint(stages: dict[str, Stage], name: str, spec: ExperimentSpec, memo: dict | None = None) -> str:
    """sha256 of the stage's name, code version, salt and parameters and of its input fingerprint."""
    memo = {} if memo is None else memo
    stage = stages[name]
    return sha256_of({"stage": name, "code": code_version(stage, memo), "version": stage.version,
                      "params": _plain(stage.params(spec)), "inputs": input_fingerprint(stages, name, spec, memo)})


def code_version(stage: Stage, memo: dict | None = None) -> str:
    """The stage's code version (derived from its source); ``memo`` keeps it for one command's fingerprints."""
    memo = {} if memo is None else memo
    key = ("code", stage.name)
    if key not in memo:
        memo[key] = stage_code_version(stage.run)
    return memo[key]


def input_fingerprint(stages: dict[str, Stage], name: str, spec: ExperimentSpec, memo: dict | None = None) -> str:
    """sha256 of what a stage reads: its upstream stages' fingerprints and its external files' identity.

    ``memo`` avoids re-identifying external inputs (hashing files) within one command.
    """
    memo = {} if memo is None else memo
    key = (name, sha256_of(dataclasses.asdict(spec)))
    if key not in memo:
        stage = stages[name]
        memo[key] = sha256_of({
            "upstream": {up: stage_fingerprint(stages, up, spec, memo) for up in stage.upstream(spec)},
            "external": stage.external_inputs(spec),
        })
    return memo[key]


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
