"""MLflow tracking: runs with explicit ids (no fluent global state), provenance tags, cache lookups.

The store is MLflow's default (``mlflow.db`` in the working directory) or whatever ``MLFLOW_TRACKING_URI`` names
(a remote ``mlflow server`` included); ``dualvgr.core.store`` turns a store that is down, locked, read-only or
damaged into one line. Tag names used across the harness are defined here once.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import subprocess
import traceback
import warnings
from pathlib import Path
from typing import Any, Iterable

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.utils.time import get_current_time_millis

from dualvgr.core.runstate import ProcessIdentity
from dualvgr.core.store import (
    GuardedClient,
    TrackingStoreError,
    bound_http_retries,
    is_http,
    probe,
    quiet_store_logging,
    translated,
)

# Tag names: the contract between stages, the cache and the report.
TAG_STAGE = "dualvgr.stage"
TAG_EXPERIMENT = "dualvgr.experiment"
TAG_SPEC_HASH = "dualvgr.spec_hash"
# The spec hash with the seed left out: runs that differ only by seed share it (the report groups by it).
TAG_CONFIG_HASH = "dualvgr.config_hash"
TAG_FINGERPRINT = "dualvgr.fingerprint"
TAG_INPUT_FINGERPRINT = "dualvgr.input_fingerprint"  # upstream fingerprints + external files
TAG_CACHE_HIT = "dualvgr.cache_hit"
TAG_CACHED_RUN = "dualvgr.cached_run_id"
TAG_OUTPUTS = "dualvgr.outputs"
TAG_ERROR = "dualvgr.error"
TAG_GIT_COMMIT = "dualvgr.git_commit"
TAG_GIT_DIRTY = "dualvgr.git_dirty"
TAG_UPSTREAM_PREFIX = "dualvgr.upstream."
TAG_DEVIATION_PREFIX = "dualvgr.deviation."
TAG_SEED = "dualvgr.seed"
# The stage fingerprint computed with the seed left out (code version, parameters, upstream stages, input
# files): train runs that share it differ only by seed, and the report pools exactly those.
TAG_POOL_KEY = "dualvgr.pool_key"
TAG_CODE_VERSION = "dualvgr.code_version"  # derived from the stage's source (dualvgr.core.code_version)
# The process that runs a run: a RUNNING run whose process is gone is marked FAILED by the next command.
TAG_HOST = "dualvgr.host"
TAG_PID = "dualvgr.pid"
TAG_PID_NAMESPACE = "dualvgr.pid_namespace"

PACKAGES = ("torch", "torchvision", "mlflow", "numpy", "h5py", "opencv-python-headless", "nltk", "pandas", "pyyaml")
_MAX_TAG = 5000  # MLflow stores up to 8000 characters per tag value; keep headroom
_BATCH = 100  # MLflow's limit of params/metrics/tags per log_batch call


def git_state(directory: Path | None = None) -> tuple[str, bool]:
    """(commit, dirty) of the checkout holding the package; ("unknown", True) outside git."""
    directory = directory or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory, capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True
    return commit, bool(status.strip())


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def provenance_tags() -> dict[str, str]:
    commit, dirty = git_state()
    tags = {TAG_GIT_COMMIT: commit, TAG_GIT_DIRTY: str(dirty).lower(), "mlflow.source.git.commit": commit}
    tags.update({f"dualvgr.version.{name}": version for name, version in package_versions().items()})
    return tags | process_tags()


def process_tags(process: ProcessIdentity | None = None) -> dict[str, str]:
    process = process or ProcessIdentity.current()
    return {TAG_HOST: process.host, TAG_PID: str(process.pid), TAG_PID_NAMESPACE: process.namespace}


def process_of(tags: dict[str, str]) -> ProcessIdentity | None:
    """The process recorded on a run, or None for a run that recorded none (made elsewhere or by older code)."""
    if TAG_HOST not in tags or not tags.get(TAG_PID, "").isdigit():
        return None
    return ProcessIdentity(tags[TAG_HOST], int(tags[TAG_PID]), tags.get(TAG_PID_NAMESPACE, ""))


class RunLogger:
    """Logs to one MLflow run by id, so nested stage runs never depend on an active-run stack."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client = client
        self.run_id = run_id

    def set_tags(self, tags: dict[str, Any]) -> None:
        items = [RunTag(key, _tag_value(value)) for key, value in tags.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, tags=items[start:start + _BATCH])

    def log_params(self, params: dict[str, Any]) -> None:
        items = [Param(key, _param_value(value)) for key, value in params.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + _BATCH])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        now = get_current_time_millis()
        items = [Metric(key, float(value), now, step or 0) for key, value in metrics.items() if value is not None]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, metrics=items[start:start + _BATCH])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, value: Any, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, value, artifact_file)

    def log_input(self, dataset: Any, context: str) -> None:
        from mlflow.entities import DatasetInput, InputTag

        # Schema inference warns about integer columns, which is irrelevant for a manifest of files.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            entity = dataset._to_mlflow_entity()
        self.client.log_inputs(
            self.run_id, datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])]
        )

    def fail(self, error: BaseException) -> None:
        """End the run on ``error``: KILLED for an interruption (Ctrl-C, SIGTERM), FAILED for anything else.

        When the error is that the store cannot be reached, nothing can be recorded: the run stays RUNNING and
        the next command that finds its process gone marks it FAILED.
        """
        if isinstance(error, TrackingStoreError):
            return
        killed = isinstance(error, KeyboardInterrupt)
        try:
            self.set_tags({TAG_ERROR: str(error) if killed else f"{type(error).__name__}: {error}"})
            self.log_text("".join(traceback.format_exception(error)), "error.txt")
            self.client.set_terminated(self.run_id, "KILLED" if killed else "FAILED")
        except TrackingStoreError:
            pass  # the store went away too; ``error`` is what the user must see

    def finish(self) -> None:
        self.client.set_terminated(self.run_id, "FINISHED")


class Tracker:
    """The tracking store: experiments, run creation and the searches the cache and report need.

    Making one probes the store (``dualvgr.core.store``): a server that is down or an SQLite file that is locked or
    damaged is a one-line :class:`TrackingStoreError` within seconds, and so is any later call that meets one.
    """

    def __init__(self, tracking_uri: str | None = None):
        uri = tracking_uri or mlflow.get_tracking_uri()
        if is_http(uri):
            bound_http_retries()
        quiet_store_logging()
        with translated(uri, creating=True):
            client = MlflowClient(uri)
        self.client = GuardedClient(client, uri)
        probe(self.client, uri)

    @property
    def tracking_uri(self) -> str:
        return self.client.tracking_uri

    def experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            return self.client.create_experiment(name)
        if experiment.lifecycle_stage == "deleted":
            self.client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id

    def start_run(self, experiment: str, run_name: str, tags: dict[str, Any], parent_run_id: str | None = None) -> RunLogger:
        tags = dict(tags)
        tags["mlflow.runName"] = run_name
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id(experiment), tags={k: _tag_value(v) for k, v in tags.items()})
        return RunLogger(self.client, run.info.run_id)

    def attach(self, run_id: str) -> RunLogger:
        return RunLogger(self.client, run_id)

    def search(self, filter_string: str, order_by: Iterable[str] = ("attributes.start_time DESC",)) -> list:
        """Runs matching ``filter_string`` in every active experiment of the store."""
        experiment_ids = [e.experiment_id for e in self.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
        if not experiment_ids:
            return []
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                experiment_ids, filter_string=filter_string, order_by=list(order_by), max_results=1000, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def fail_dead_runs(self) -> list:
        """Mark FAILED every RUNNING run of this host whose process is gone; returns those runs.

        Only runs that recorded their process (host, pid, pid namespace) are judged, and only where this process
        can judge them (same host and namespace), so runs on other machines or still running are never touched.
        """
        here = ProcessIdentity.current()
        dead = []
        for run in self.search(f"attributes.status = 'RUNNING' and tags.`{TAG_HOST}` = '{here.host}'"):
            process = process_of(run.data.tags)
            if process is None or process.pid == here.pid or not process.is_ours_to_judge() or not process.is_gone():
                continue
            log = self.attach(run.info.run_id)
            log.set_tags({TAG_ERROR: f"process {process.pid} on host {process.host} is gone: the run was killed "
                                     f"(kill -9 or a crash) while RUNNING"})
            self.client.set_terminated(run.info.run_id, "FAILED")
            dead.append(run)
        return dead

    def executed_runs(self, stage: str, fingerprint: str | None = None) -> list:
        """FINISHED runs that executed ``stage`` (cache hits excluded), newest first."""
        conditions = [
            f"tags.`{TAG_STAGE}` = '{stage}'",
            f"tags.`{TAG_CACHE_HIT}` = 'false'",
            "attributes.status = 'FINISHED'",
        ]
        if fingerprint:
            conditions.append(f"tags.`{TAG_FINGERPRINT}` = '{fingerprint}'")
        return self.search(" and ".join(conditions))


def _tag_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_TAG else text[: _MAX_TAG - 20] + "...[truncated]"


def _param_value(value: Any) -> str:
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_TAG else text[: _MAX_TAG - 20] + "...[truncated]"

