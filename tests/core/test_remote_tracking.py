"""The whole pipeline against a real `mlflow server` (SQLite backend, local artifact root) on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from dualvgr.core.spec import dump_spec
from dualvgr.core.tracking import TAG_STAGE, Tracker
from tests.train.test_train_stage import pipeline_spec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def mlflow_server(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
               "--default-artifact-root", str(tmp_path / "artifacts"), "--workers", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                pytest.fail(f"mlflow server did not start: {server.stderr.read()[-2000:] if server.stderr else ''}")
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_every_stage_logs_to_a_remote_server(tmp_path, mlflow_server):
    spec = pipeline_spec(tmp_path, epochs=1)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(dump_spec(spec))
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server, OMP_NUM_THREADS="1")
    env.pop("MLFLOW_RUN_ID", None)
    done = subprocess.run([sys.executable, "-m", "dualvgr", "pipeline", "-e", str(spec_path), "--quiet"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists(), "nothing may fall back to the local default store"

    tracker = Tracker(mlflow_server)
    runs = tracker.search("attributes.status = 'FINISHED'")
    stages = {run.data.tags.get(TAG_STAGE) for run in runs}
    assert {"pipeline", "data", "appearance", "motion", "questions", "train", "report"} <= stages, stages
    train = next(run for run in runs if run.data.tags.get(TAG_STAGE) == "train")
    assert "test_acc" in train.data.metrics
    artifacts = {a.path for a in tracker.client.list_artifacts(train.info.run_id, "outputs")}
    assert "outputs/test_predictions.csv" in artifacts, artifacts
    report = next(run for run in runs if run.data.tags.get(TAG_STAGE) == "report")
    assert tracker.client.list_artifacts(report.info.run_id), "the report's files are logged to the server"
