"""Data-parallel training under torchrun (2 gloo processes on the CPU) against a single process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dualvgr.core.spec import dump_spec
from dualvgr.core.tracking import Tracker
from dualvgr.train.distributed import Distributed
from tests.train.test_train_stage import CONTRACT_EPOCH, CONTRACT_FINAL, pipeline_spec

import torch


def test_global_batch_is_shared_between_ranks():
    """Every global batch of the single-process order is cut into contiguous rank shares (B=5, K=2, 12 samples)."""
    order = torch.arange(12)
    shares = [Distributed(rank, 2).shard_order(order, 5) for rank in range(2)]
    assert shares[0].tolist() == [0, 1, 2, 5, 6, 7, 10, 11]
    assert shares[1].tolist() == [3, 4, 8, 9, 10], "the short last batch leaves rank 1 a weight-0 stand-in"
    weights = [[Distributed(rank, 2).batch_weight(None, 5, 12, step) for step in range(3)] for rank in range(2)]
    assert weights == [[1.2, 1.2, 2.0], [0.8, 0.8, 0.0]], "rank weights average to 1 per global batch"


def test_single_process_broadcast_returns_the_value():
    job = {"spec": "x"}
    assert Distributed.single().broadcast(job) is job and Distributed.single().broadcast() is None


def test_follower_of_the_train_stage_is_declared_by_the_stage_without_an_import_cycle():
    """What ranks > 0 do is the stage's ``follow`` (send_job on rank 0 sends to it); the process group and the
    jobs' broadcast are dualvgr.core.ranks', so distributed.py imports no stage code."""
    import ast
    import inspect

    import dualvgr.train.distributed as distributed
    from dualvgr.core.ranks import Ranks
    from dualvgr.train.stage import TRAIN_STAGE, follow, send_job

    imported = {node.module for node in ast.walk(ast.parse(inspect.getsource(distributed)))
                if isinstance(node, ast.ImportFrom)}
    assert {name for name in imported if name and name.startswith("dualvgr")} == {"dualvgr.core.ranks"}, imported
    assert issubclass(Distributed, Ranks) and isinstance(Distributed.single(), Distributed)
    assert TRAIN_STAGE.follow is follow and callable(send_job)
    with pytest.raises(ModuleNotFoundError):
        __import__("dualvgr.train.followers")


@pytest.mark.slow
def test_two_process_training_matches_one_process(tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(dump_spec(pipeline_spec(tmp_path, epochs=4, lr=2e-3)))
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", OMP_NUM_THREADS="1")
    env.pop("MLFLOW_RUN_ID", None)
    single = [sys.executable, "-m", "dualvgr", "train", "-e", str(spec_path), "--quiet"]
    subprocess.run(single, cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              "-m", "dualvgr", "train", "-e", str(spec_path), "--quiet", "--force"]
    done = subprocess.run(launch, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]

    tracker = Tracker(env["MLFLOW_TRACKING_URI"])
    runs = tracker.executed_runs("train")
    assert len(runs) == 2, f"one run per command (rank 1 must not log), got {len(runs)}"
    distributed, one = runs  # newest first
    for run in (one, distributed):
        for name in CONTRACT_FINAL:
            assert name in run.data.metrics, f"{name} missing in run {run.info.run_id}"
        for name in CONTRACT_EPOCH:
            steps = [m.step for m in tracker.client.get_metric_history(run.info.run_id, name)]
            assert steps == [0, 1, 2, 3], f"{name}: {steps}"
    a, b = one.data.metrics, distributed.data.metrics
    assert abs(a["test_acc"] - b["test_acc"]) <= 0.1, (a["test_acc"], b["test_acc"])
    assert abs(a["train_loss"] - b["train_loss"]) <= 0.15 * abs(a["train_loss"]), (a["train_loss"], b["train_loss"])
