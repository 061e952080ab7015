"""The appearance stage under torchrun (2 gloo processes on the CPU), through the real CLI, with ResNet-101.

Every test here launches ``torch.distributed.run`` as a subprocess on ``tests/features/ranks_process.py`` (the
CLI, with a fault injected into one rank on request) and compares with one single-process run of the same
experiment: the merged file must be that file, bit for bit, and the tracking store must hold one run.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from dualvgr.core.spec import dump_spec, spec_from_dict
from dualvgr.core.tracking import TAG_ERROR, TAG_STAGE, Tracker
from dualvgr.features.hdf5 import partial_path, shard_path
from tests.features.test_extract import _assert_same_file

pytestmark = pytest.mark.slow  # each launch starts 2 processes that build a ResNet-101 (~30-60 s on 2 cores)

PROCESS = Path(__file__).with_name("ranks_process.py")
VIDEOS, PER_GROUP = 8, 2  # batch_size 8 frames = 2 videos of 2 clips x 2 frames: 4 groups, 2 per rank
LAUNCH_LIMIT = 600  # seconds; a launch that hangs fails the test instead of the suite


def _spec(root: Path) -> str:
    return dump_spec(spec_from_dict({
        "name": "ranks",
        "dataset": {"kind": "synthetic", "root": str(root / "data"),
                    "synthetic": {"num_videos": VIDEOS, "frames": 8, "fps": 4, "width": 32, "height": 24,
                                  "questions_per_video": 1}},
        "features": {"num_clips": 2, "workers": 0, "device": "cpu", "allow_random_weights": True,
                     "appearance": {"weights": "random", "frames_per_clip": 2, "image_size": 32, "batch_size": 8}},
    }))


def _env(folder: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}", OMP_NUM_THREADS="1", **extra)
    env.pop("MLFLOW_RUN_ID", None)
    return env


def _dualvgr(folder: Path, spec: Path, *, ranks: int, **env: str) -> subprocess.CompletedProcess:
    """``dualvgr appearance`` in ``folder`` (its own store and outputs), under torchrun when ``ranks`` > 1."""
    command = [sys.executable, str(PROCESS), "appearance", "-e", str(spec), "--quiet",
               "--set", f"tracking.outputs={folder / 'outputs'}"]
    if ranks > 1:
        command[1:1] = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    folder.mkdir(exist_ok=True)
    return subprocess.run(command, cwd=folder, env=_env(folder, **env), capture_output=True, text=True,
                          timeout=LAUNCH_LIMIT)


def _feature_file(folder: Path) -> Path:
    (path,) = (folder / "outputs" / "appearance").glob("*/synthetic_appearance_feat.h5")
    return path


def _summary(stderr: str, kind: str) -> str:
    (line,) = [line for line in stderr.splitlines() if line.startswith(f"[{kind}] {kind}: ")]
    return line


def _appearance_runs(folder: Path) -> list:
    tracker = Tracker(f"sqlite:///{folder / 'mlflow.db'}")
    return tracker.search(f"tags.`{TAG_STAGE}` = 'appearance'")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> tuple[Path, Path]:
    """The experiment file, and the feature file one process extracts from it (no torchrun)."""
    root = tmp_path_factory.mktemp("ranks")
    spec = root / "spec.yaml"
    spec.write_text(_spec(root))
    done = _dualvgr(root / "single", spec, ranks=1)
    assert done.returncode == 0, done.stderr[-3000:]
    return spec, _feature_file(root / "single")


def test_two_ranks_extract_the_single_process_file_in_one_run(experiment, tmp_path):
    spec, single = experiment
    done = _dualvgr(tmp_path, spec, ranks=2)
    assert done.returncode == 0, done.stderr[-3000:]
    merged = _feature_file(tmp_path)
    _assert_same_file(merged, single)
    assert sorted(path.name for path in merged.parent.iterdir()) == ["failed_videos.json", merged.name]
    (run,) = _appearance_runs(tmp_path)  # rank 1 never touches the store
    assert run.info.status == "FINISHED" and run.data.metrics["videos_extracted"] == VIDEOS
    assert _summary(done.stderr, "appearance").endswith("random weights, 2 shards merged)")

    again = _dualvgr(tmp_path, spec, ranks=2)  # a cache hit on rank 0: every rank ends cleanly
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[appearance] cache hit" in again.stderr
    assert len(_appearance_runs(tmp_path)) == 1


def test_rank_killed_midway_leaves_its_shard_resumable(experiment, tmp_path):
    spec, single = experiment
    killed = _dualvgr(tmp_path, spec, ranks=2, INJECT="kill", INJECT_RANK="1", INJECT_AFTER="1")
    assert killed.returncode != 0, killed.stderr[-3000:]
    (run,) = _appearance_runs(tmp_path)
    assert run.info.status in ("KILLED", "FAILED"), run.info.status
    (folder,) = (tmp_path / "outputs" / "appearance").iterdir()
    with h5py.File(partial_path(shard_path(folder / "synthetic_appearance_feat.h5", 1, 2)), "r") as shard:
        assert int(shard["_done"][:].sum()) == PER_GROUP, "rank 1 had written its first group when it was killed"

    done = _dualvgr(tmp_path, spec, ranks=2)
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_same_file(_feature_file(tmp_path), single)
    finished = [r for r in _appearance_runs(tmp_path) if r.info.status == "FINISHED"]
    assert len(finished) == 1
    assert finished[0].data.metrics["videos_extracted"] <= VIDEOS - PER_GROUP, "rank 1's first group is not redone"


def test_error_on_rank_1_ends_rank_0_with_one_line_and_the_run_failed(experiment, tmp_path):
    spec, _ = experiment
    done = _dualvgr(tmp_path, spec, ranks=2, INJECT="error", INJECT_RANK="1", INJECT_AFTER="1",
                    INJECT_MARKER=str(tmp_path / "rank1-failed"), WAIT_RANK="0")
    assert done.returncode != 0
    expected = f"error: rank 1 of 2 (host {platform.node()}) failed: injected failure on rank 1 after 2 video(s)"
    errors = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("error:")]
    assert errors == [expected], done.stderr[-3000:]
    (run,) = _appearance_runs(tmp_path)
    assert run.info.status == "FAILED"
    assert run.data.tags[TAG_ERROR] == "RankFailed: " + expected.removeprefix("error: ")
    (folder,) = (tmp_path / "outputs" / "appearance").iterdir()
    with h5py.File(partial_path(shard_path(folder / "synthetic_appearance_feat.h5", 0, 2)), "r") as shard:
        assert int(shard["_done"][:].sum()) == PER_GROUP, "rank 0 stopped after its group, before the next"


def test_train_under_torchrun_extracts_its_upstream_features_across_the_same_ranks(tmp_path):
    """One launch: rank 0 sends rank 1 an appearance job, a motion job, then the training job; one run each."""
    from tests.train.test_train_stage import pipeline_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text(dump_spec(pipeline_spec(tmp_path, epochs=1)))
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              "-m", "dualvgr", "train", "-e", str(spec), "--quiet"]
    done = subprocess.run(launch, cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=LAUNCH_LIMIT)
    assert done.returncode == 0, done.stderr[-3000:]
    for kind in ("appearance", "motion"):
        assert "weights, 2 shards merged)" in _summary(done.stderr, kind), "extracted by both ranks"
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for stage in ("data", "appearance", "motion", "questions", "train"):
        runs = tracker.search(f"tags.`{TAG_STAGE}` = '{stage}'")
        assert [run.info.status for run in runs] == ["FINISHED"], f"{stage}: {[r.info.status for r in runs]}"
    for kind in ("appearance", "motion"):
        (folder,) = (tmp_path / "outputs" / kind).iterdir()
        assert sorted(path.name for path in folder.iterdir()) == ["failed_videos.json", f"synthetic_{kind}_feat.h5"]
