"""A `dualvgr train` killed with SIGKILL after its first epoch resumes from last.pt and ends exactly as an
uninterrupted run (CPU), with a complete metric history in its MLflow run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dualvgr.core.spec import dump_spec, replace_in
from dualvgr.core.tracking import Tracker
from tests.train.test_train_stage import pipeline_spec

EPOCHS = 8


def command(spec_path):
    return [sys.executable, "-m", "dualvgr", "train", "-e", str(spec_path), "--quiet"]


def environment(store):
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{store}", OMP_NUM_THREADS="1")
    env.pop("MLFLOW_RUN_ID", None)
    return env


def final_run(store):
    (run,) = Tracker(f"sqlite:///{store}").executed_runs("train")
    return run


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_result(tmp_path):
    spec = pipeline_spec(tmp_path, epochs=EPOCHS)
    plain, killed = tmp_path / "plain", tmp_path / "killed"
    for folder in (plain, killed):
        folder.mkdir()
        variant = replace_in(spec, **{"tracking.outputs": str(folder / "outputs"),
                                      "tracking.tensorboard_dir": str(folder / "tb")})
        (folder / "spec.yaml").write_text(dump_spec(variant))
    subprocess.run(command(plain / "spec.yaml"), cwd=plain, env=environment(plain / "mlflow.db"), check=True)

    victim = subprocess.Popen(command(killed / "spec.yaml"), cwd=killed, env=environment(killed / "mlflow.db"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not list((killed / "outputs" / "train").glob("*/last.pt")):
        assert victim.poll() is None, "training ended before its first epoch was written"
        assert time.time() < deadline, "no last.pt after 10 minutes"
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not Tracker(f"sqlite:///{killed / 'mlflow.db'}").executed_runs("train"), (
        "the run must have been killed before finishing; the test needs more epochs")

    subprocess.run(command(killed / "spec.yaml"), cwd=killed, env=environment(killed / "mlflow.db"), check=True)
    a, b = final_run(plain / "mlflow.db"), final_run(killed / "mlflow.db")
    assert int(b.data.tags["dualvgr.resumed_from_epoch"]) < EPOCHS - 1
    for name in ("test_acc", "best_val_acc", "best_epoch", "test_prior_acc"):
        assert a.data.metrics[name] == b.data.metrics[name], (name, a.data.metrics[name], b.data.metrics[name])
    for name in ("val_acc", "train_loss"):
        history_a = [m.value for m in Tracker(f"sqlite:///{plain / 'mlflow.db'}").client.get_metric_history(a.info.run_id, name)]
        history_b = [m.value for m in Tracker(f"sqlite:///{killed / 'mlflow.db'}").client.get_metric_history(b.info.run_id, name)]
        assert len(history_b) == EPOCHS and history_a == history_b, (name, history_a, history_b)
