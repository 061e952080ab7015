"""Run states: SIGINT and SIGTERM end the stage run and every open parent KILLED (exit 130, 143); a run left
RUNNING by kill -9 is marked FAILED, with the reason, by the next command on the same host. In process (fast) and
with real signals sent to a real CLI process (slow)."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dualvgr.core.runner import Runner, pipeline_run
from dualvgr.core.runstate import Interrupted, ProcessIdentity
from dualvgr.core.spec import dump_spec, replace_in, spec_from_dict
from dualvgr.core.stage import Stage, StageResult, seed_label
from dualvgr.core.tracking import (
    TAG_ERROR,
    TAG_HOST,
    TAG_PID,
    TAG_PID_NAMESPACE,
    TAG_STAGE,
    Tracker,
    process_tags,
)

REPO = Path(__file__).resolve().parents[2]


def write_spec(tmp_path: Path, **train) -> Path:
    spec = spec_from_dict({"name": "run-states", "tracking": {"outputs": str(tmp_path / "outputs")},
                           "train": train or {"epochs": 3}})
    path = tmp_path / "spec.yaml"
    path.write_text(dump_spec(spec))
    return path


def environment(tmp_path: Path, **extra: str) -> dict:
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", PYTHONPATH=str(REPO), **extra)
    env.pop("MLFLOW_RUN_ID", None)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.core.stage_process", *args, "--quiet"]


def start_sleeping(tmp_path: Path, stage: str, *args: str, **extra: str) -> subprocess.Popen:
    """A CLI process running ``args`` whose ``stage`` sleeps once its output is written; returns once it sleeps."""
    marker = tmp_path / f"sleeping-{stage}"
    marker.unlink(missing_ok=True)
    process = subprocess.Popen(command(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environment(tmp_path, STAGE_SLEEP=stage, STAGE_MARKER=str(marker),
                                                          **extra))
    deadline = time.monotonic() + 180
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the CLI ended before {stage} slept: {process.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, f"{stage} did not start within 3 minutes"
        time.sleep(0.05)
    return process


def runs_by_name(tmp_path: Path) -> dict[str, object]:
    runs = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}").search("attributes.status != 'none'")
    return {run.info.run_name: run for run in runs}


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupted_run_and_its_parents_end_killed(tmp_path, signum, code):
    spec = write_spec(tmp_path, seeds=[1, 2])
    process = start_sleeping(tmp_path, "sleeper", "pipeline", "-e", str(spec))
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert process.returncode == code, (process.returncode, err[-3000:])
    assert err.strip().splitlines()[-1] == f"error: interrupted by {name}; open runs were ended KILLED", err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    runs = runs_by_name(tmp_path)
    states = {run_name: run.info.status for run_name, run in runs.items()}
    assert states == {"pipeline": "KILLED", "sleeper-seeds": "KILLED", "sleeper-seed1": "KILLED",
                      "source": "FINISHED"}, states
    assert runs["sleeper-seed1"].data.tags[TAG_ERROR] == f"interrupted by {name}"


@pytest.mark.slow
def test_run_left_running_by_kill_9_is_marked_failed_by_the_next_command(tmp_path):
    spec = write_spec(tmp_path, seeds=[1, 2])
    process = start_sleeping(tmp_path, "sleeper", "pipeline", "-e", str(spec))
    process.kill()
    process.communicate(timeout=60)
    runs = runs_by_name(tmp_path)
    assert {runs[name].info.status for name in ("pipeline", "sleeper-seeds", "sleeper-seed1")} == {"RUNNING"}

    # Runs no one may touch: another host's, and one of a live process of this host (this test's).
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    namespace = runs["pipeline"].data.tags[TAG_PID_NAMESPACE]
    other_host = tracker.start_run("run-states", "elsewhere", {TAG_STAGE: "sleeper", TAG_HOST: "another-host",
                                                               TAG_PID: str(process.pid), TAG_PID_NAMESPACE: namespace})
    alive = tracker.start_run("run-states", "alive", {TAG_STAGE: "sleeper", TAG_HOST: platform.node(),
                                                      TAG_PID: str(os.getpid()), TAG_PID_NAMESPACE: namespace})

    done = subprocess.run(command("source", "-e", str(spec)), cwd=tmp_path, env=environment(tmp_path),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = runs_by_name(tmp_path)
    reason = (f"process {process.pid} on host {platform.node()} is gone: the run was killed (kill -9 or a crash) "
              f"while RUNNING")
    for name in ("pipeline", "sleeper-seeds", "sleeper-seed1"):
        assert runs[name].info.status == "FAILED", (name, runs[name].info.status)
        assert runs[name].data.tags[TAG_ERROR] == reason, runs[name].data.tags.get(TAG_ERROR)
        assert (f"[tracking] run {runs[name].info.run_id[:8]} ({name}) was left RUNNING by process {process.pid} "
                f"on {platform.node()}, which is gone: marked FAILED") in done.stderr, done.stderr[-3000:]
    assert runs["source"].info.status == "FINISHED"
    for untouched in (other_host, alive):
        run = tracker.client.get_run(untouched.run_id)
        assert run.info.status == "RUNNING" and TAG_ERROR not in run.data.tags, run.info.run_name


def toy_stages(interrupt: bool) -> dict[str, Stage]:
    def source(ctx):
        path = ctx.out_dir / "numbers.txt"
        path.write_text("1")
        return StageResult({"numbers": path})

    def sink(ctx):
        if interrupt:
            raise Interrupted(signal.SIGTERM)  # what the CLI's handler raises when SIGTERM arrives
        path = ctx.out_dir / "out.txt"
        path.write_text("2")
        return StageResult({"out": path})

    return {"source": Stage("source", "1", params=lambda spec: {}, run=source),
            "sink": Stage("sink", "1", params=lambda spec: {"seed": spec.train.seed}, run=sink,
                          upstream=lambda spec: ("source",), run_label=seed_label,
                          variants=lambda spec: [replace_in(spec, **{"train.seed": s, "train.seeds": []})
                                                 for s in spec.run_seeds])}


def local_tracker(tmp_path: Path) -> Tracker:
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_interruption_ends_the_stage_and_every_open_parent_killed(tmp_path):
    tracker = local_tracker(tmp_path)
    runner = Runner(toy_stages(interrupt=True), tracker, progress=False, echo=False)
    spec = spec_from_dict({"name": "run-states", "tracking": {"outputs": str(tmp_path / "outputs")},
                           "train": {"seeds": [1, 2]}})
    with pytest.raises(Interrupted), pipeline_run(runner, spec) as parent:
        runner.run("sink", spec, parent_run_id=parent.run_id)
    runs = {run.info.run_name: run for run in tracker.search("attributes.status != 'none'")}
    states = {name: run.info.status for name, run in runs.items()}
    assert states == {"pipeline": "KILLED", "sink-seeds": "KILLED", "sink-seed1": "KILLED", "source": "FINISHED"}
    assert runs["sink-seed1"].data.tags[TAG_ERROR] == "interrupted by SIGTERM"
    assert Interrupted(signal.SIGTERM).exit_code == 143 and Interrupted(signal.SIGINT).exit_code == 130


def gone_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_running_run_of_a_gone_process_is_marked_failed_and_no_other(tmp_path, capsys):
    tracker = local_tracker(tmp_path)
    here = ProcessIdentity.current()
    dead = ProcessIdentity(here.host, gone_pid(), here.namespace)
    made = {
        "dead": process_tags(dead),
        "other-host": process_tags(ProcessIdentity("another-host", dead.pid, here.namespace)),
        "other-namespace": process_tags(ProcessIdentity(here.host, dead.pid, "pid:[1]")),
        "alive": process_tags(here),
        "unrecorded": {},  # made by something that records no process (an older harness, mlflow run's own)
    }
    ids = {name: tracker.start_run("run-states", name, {TAG_STAGE: "sink"} | tags).run_id for name, tags in made.items()}
    runner = Runner(toy_stages(interrupt=False), tracker, progress=False, echo=True)
    runner.run("source", spec_from_dict({"name": "run-states", "tracking": {"outputs": str(tmp_path / "out")}}))
    states = {name: tracker.client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert states == {"dead": "FAILED", "other-host": "RUNNING", "other-namespace": "RUNNING", "alive": "RUNNING",
                      "unrecorded": "RUNNING"}, states
    reason = tracker.client.get_run(ids["dead"]).data.tags[TAG_ERROR]
    assert reason == (f"process {dead.pid} on host {here.host} is gone: the run was killed (kill -9 or a crash) "
                      f"while RUNNING")
    assert (f"[tracking] run {ids['dead'][:8]} (dead) was left RUNNING by process {dead.pid} on {here.host}, which "
            f"is gone: marked FAILED") in capsys.readouterr().err
