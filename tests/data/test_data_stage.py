"""The data stage through the runner: tracked run, dataset input, cache, missing-video failure."""

from __future__ import annotations

import pytest

from dualvgr.core.errors import DataError
from dualvgr.core.runner import Runner
from dualvgr.core.spec import spec_from_dict
from dualvgr.core.tracking import TAG_DEVIATION_PREFIX
from dualvgr.data.stage import DATA_STAGE, load_manifest
from tests.data.test_layout import make_msvd


def runner_for(tracker) -> Runner:
    return Runner({"data": DATA_STAGE}, tracker, progress=False, echo=False)


def synthetic_spec(tmp_path):
    return spec_from_dict({
        "name": "data-stage-test",
        "dataset": {"kind": "synthetic", "root": str(tmp_path / "demo"),
                    "synthetic": {"num_videos": 12, "frames": 12, "width": 48, "height": 36}},
        "tracking": {"outputs": str(tmp_path / "outputs")},
    })


def test_synthetic_data_stage_is_tracked_and_cached(tmp_path, tracker):
    runner = runner_for(tracker)
    spec = synthetic_spec(tmp_path)
    (record,) = runner.run("data", spec)
    run = tracker.client.get_run(record.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["dataset.kind"] == "synthetic"
    assert run.data.metrics["videos_total"] == 12 and run.data.metrics["videos_missing"] == 0
    for tag in ("dualvgr.spec_hash", "dualvgr.git_commit", "dualvgr.git_dirty", "dualvgr.version.torch",
                "dualvgr.dataset_fingerprint"):
        assert tag in run.data.tags, f"missing tag {tag}"
    assert len(run.inputs.dataset_inputs) == 1, "the dataset is logged with mlflow.log_input"
    manifest = load_manifest(record.outputs["manifest"])
    assert len(manifest["videos"]) == 12 and all(p.is_file() for p in manifest["videos"].values())

    (again,) = runner.run("data", spec)
    assert again.cache_hit and again.run_id == record.run_id
    # Deleting a video invalidates the cache: the dataset is rebuilt.
    next(iter(manifest["videos"].values())).unlink()
    (rebuilt,) = runner.run("data", spec)
    assert not rebuilt.cache_hit


def test_missing_videos_fail_the_run_with_the_list(tmp_path, tracker):
    root = tmp_path / "msvd"
    make_msvd(root, "YouTubeClips")
    (root / "YouTubeClips" / "abc_1_5.avi").unlink()
    spec = spec_from_dict({"name": "data-missing", "dataset": {"kind": "msvd-qa", "root": str(root)},
                           "tracking": {"outputs": str(tmp_path / "out")}})
    with pytest.raises(DataError, match="1 of 3 videos") as err:
        runner_for(tracker).run("data", spec)
    assert "abc_1_5.avi" in str(err.value)
    failed = tracker.search("tags.`dualvgr.experiment` = 'data-missing' and attributes.status = 'FAILED'")
    assert failed, "the run must be left FAILED"
    artifacts = {a.path for a in tracker.client.list_artifacts(failed[0].info.run_id)}
    assert {"missing_videos.txt", "error.txt"} <= artifacts

    allowed = spec_from_dict({"name": "data-missing", "dataset": {"kind": "msvd-qa", "root": str(root),
                                                                   "allow_missing_videos": True},
                              "tracking": {"outputs": str(tmp_path / "out")}})
    (record,) = runner_for(tracker).run("data", allowed)
    tags = tracker.client.get_run(record.run_id).data.tags
    assert tags[TAG_DEVIATION_PREFIX + "missing_videos"] == "1"
    assert len(load_manifest(record.outputs["manifest"])["videos"]) == 2
