"""A tracking store that is down, never answers, is locked, read-only or damaged: every command ends within
30 s with one line naming the store and the fix, exit 2 (never a hang or a traceback)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from dualvgr.core.store import HTTP_LIMITS, GuardedClient, TrackingStoreError, bound_http_retries
from dualvgr.core.tracking import Tracker

REPO = Path(__file__).resolve().parents[2]
LIMIT_SECONDS = 30


def _import_seconds() -> float:
    """What loading the command's heavy modules costs on this machine now (seconds on an idle one, much more when
    other jobs share the cores): the part of a command's time that does not depend on the store."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import mlflow, torch, dualvgr.core.tracking"], check=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, timeout=300)
    return time.monotonic() - started


def run_cli(tmp_path: Path, uri: str) -> tuple[int, list[str], float]:
    """(exit code, stderr lines, seconds spent beyond loading the modules): a dead store must end the command
    within LIMIT_SECONDS on an idle machine; the import time measured alongside keeps a busy machine from
    failing the test without hiding a hang (a hang waits minutes)."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(REPO))
    env.pop("MLFLOW_RUN_ID", None)
    baseline = _import_seconds()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dualvgr", "data", "-e", str(REPO / "experiments/demo.yaml"),
         "--set", f"tracking.outputs={tmp_path / 'outputs'}", "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stderr.strip().splitlines(), time.monotonic() - started - max(baseline - 3.0, 0.0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mlflow_db(path: Path) -> Path:
    MlflowClient(f"sqlite:///{path}").search_experiments()  # an initialised store
    return path


def test_tracking_server_that_refuses_connections_is_one_line_within_30_s(tmp_path):
    port = closed_port()
    code, lines, seconds = run_cli(tmp_path, f"http://127.0.0.1:{port}")
    assert code == 2 and seconds < LIMIT_SECONDS, (code, seconds, lines)
    assert lines == [
        f"error: the MLflow tracking server at http://127.0.0.1:{port} does not answer (connection refused); start it "
        f"(mlflow server --host 127.0.0.1 --port {port} ...) or unset MLFLOW_TRACKING_URI to use ./mlflow.db"], lines
    assert not (tmp_path / "mlflow.db").exists(), "nothing may fall back to the local store"


def test_tracking_server_that_accepts_but_never_answers_is_one_line_within_30_s(tmp_path):
    with socket.socket() as silent:  # listens (the kernel completes connections) but never reads or replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        code, lines, seconds = run_cli(tmp_path, f"http://127.0.0.1:{port}")
    assert code == 2 and seconds < LIMIT_SECONDS, (code, seconds, lines)
    assert lines == [
        f"error: the MLflow tracking server at http://127.0.0.1:{port} does not answer (no response within 5 s); "
        f"start it (mlflow server --host 127.0.0.1 --port {port} ...) or unset MLFLOW_TRACKING_URI to use ./mlflow.db"
    ], lines


@pytest.mark.parametrize("lock", ["EXCLUSIVE", "IMMEDIATE"])
def test_mlflow_db_locked_by_another_process_is_one_line(tmp_path, lock):
    """EXCLUSIVE blocks reading (MLflow cannot even open the store); IMMEDIATE only writing (a process writing)."""
    db = mlflow_db(tmp_path / "mlflow.db")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute(f"BEGIN {lock}")
    try:
        code, lines, seconds = run_cli(tmp_path, f"sqlite:///{db}")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2 and seconds < LIMIT_SECONDS, (code, seconds, lines)
    assert lines == [
        f"error: the tracking store {db} is locked by another process (SQLite: database is locked); wait for that "
        f"process to finish or stop it (`fuser {db}` names it), or point MLFLOW_TRACKING_URI at another store"], lines


def test_read_only_mlflow_db_is_one_line(tmp_path):
    """Tests run as root, whom file permissions do not stop: SQLite's own read-only mode is the honest stand-in."""
    db = mlflow_db(tmp_path / "mlflow.db")
    code, lines, _ = run_cli(tmp_path, f"sqlite:///file:{db}?mode=ro&uri=true")
    assert code == 2, (code, lines)
    assert lines == [
        f"error: the tracking store {db} is read-only (SQLite: attempt to write a readonly database); fix the "
        f"permissions of the file and of its folder, or point MLFLOW_TRACKING_URI at a writable store"], lines


def test_damaged_mlflow_db_is_one_line(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(os.urandom(64 * 1024))
    code, lines, _ = run_cli(tmp_path, f"sqlite:///{db}")
    assert code == 2, (code, lines)
    assert lines == [
        f"error: the tracking store {db} is damaged or not an MLflow database (SQLite: file is not a database); "
        f"move it aside (mv {db} {db}.damaged) to start an empty store, or point MLFLOW_TRACKING_URI at another "
        f"store"], lines


def test_mlflow_db_whose_folder_cannot_be_made_is_an_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    with pytest.raises(TrackingStoreError) as raised:
        Tracker(f"sqlite:///{blocker / 'mlflow.db'}")
    assert str(raised.value) == (
        f"the tracking store {blocker / 'mlflow.db'} cannot be created (making its folder: File exists: {blocker}); "
        f"make its folder a writable directory, or point MLFLOW_TRACKING_URI at another store")


def test_server_that_goes_away_mid_run_is_one_line(monkeypatch):
    """After the probe, every client call translates a dead server too (here MLflow's real client, no retries)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{closed_port()}"
    client = GuardedClient(MlflowClient(uri), uri)
    with pytest.raises(TrackingStoreError, match=r"^the MLflow tracking server at http://127\.0\.0\.1:\d+ does not "
                                                 r"answer \(connection refused\); start it"):
        client.search_experiments()


def test_other_mlflow_errors_pass_unchanged(tracker):
    """Only store failures are translated: a missing run is MLflow's own error, for the code that asked."""
    with pytest.raises(MlflowException) as raised:
        tracker.client.get_run("0" * 32)
    assert not isinstance(raised.value, TrackingStoreError)


def test_http_limits_respect_values_set_in_the_environment():
    environ = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "300"}
    bound_http_retries(environ)
    assert environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300", "a value the user set stays"
    assert environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == HTTP_LIMITS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    assert int(environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) < 7, "tighter than MLflow's default of 7 retries"
