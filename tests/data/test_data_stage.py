"""The data stage through the runner: tracked run, dataset input, cache, missing and damaged videos, content."""

from __future__ import annotations

import pytest

from dualvgr.core.errors import DataError
from dualvgr.core.runner import Runner
from dualvgr.core.schema import SyntheticSpec
from dualvgr.core.spec import spec_from_dict
from dualvgr.core.tracking import TAG_DEVIATION_PREFIX
from dualvgr.data.stage import DATA_STAGE, load_manifest
from dualvgr.data.synthetic import generate_dataset
from dualvgr.features.stage import APPEARANCE_STAGE, MOTION_STAGE
from tests.data.test_check import overwrite_middle, truncate_video
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


def _msvd_spec(name, root, outputs, **sections):
    dataset = {"kind": "msvd-qa", "root": str(root), **sections.pop("dataset", {})}
    return spec_from_dict({"name": name, "dataset": dataset, "tracking": {"outputs": str(outputs)}, **sections})


def test_truncated_video_fails_the_data_stage_naming_its_frames(tmp_path, tracker):
    root = tmp_path / "msvd"
    make_msvd(root, "YouTubeClips")
    video = root / "YouTubeClips" / "abc_1_5.avi"
    decoded = truncate_video(video)
    expected = (
        f"video 1 ({video}): only {decoded} of 24 frames decode (the file is truncated or damaged); replace it, or "
        f"set features.allow_failed_videos: true to record it as failed (a zero row, audited as a deviation)"
    )
    with pytest.raises(DataError) as error:
        runner_for(tracker).run("data", _msvd_spec("data-damaged", root, tmp_path / "out"))
    assert str(error.value) == expected
    failed = tracker.search("tags.`dualvgr.experiment` = 'data-damaged' and attributes.status = 'FAILED'")
    assert failed and "damaged_videos.txt" in {a.path for a in tracker.client.list_artifacts(failed[0].info.run_id)}

    # A damaged video is not a missing one: allowing missing videos does not let it through.
    with pytest.raises(DataError) as error:
        runner_for(tracker).run("data", _msvd_spec("data-damaged", root, tmp_path / "out",
                                                   dataset={"allow_missing_videos": True}))
    assert str(error.value) == expected


def test_allowed_damaged_video_passes_the_data_stage_for_the_feature_stages_to_record(tmp_path, tracker):
    root = tmp_path / "msvd"
    make_msvd(root, "YouTubeClips")
    decoded = truncate_video(root / "YouTubeClips" / "abc_1_5.avi")
    spec = _msvd_spec("data-damaged-allowed", root, tmp_path / "out", features={"allow_failed_videos": True})
    (record,) = runner_for(tracker).run("data", spec)
    run = tracker.client.get_run(record.run_id)
    assert run.data.metrics["videos_damaged"] == 1 and run.data.metrics["videos_missing"] == 0
    assert not any(tag.startswith(TAG_DEVIATION_PREFIX) for tag in run.data.tags), \
        "the feature stages record the failed video as a deviation, where its zero row is written"
    manifest = load_manifest(record.outputs["manifest"])
    assert 1 in manifest["videos"], "the damaged video stays in the manifest, so extraction records it as failed"
    assert manifest["damaged"] == {"1": f"only {decoded} of 24 frames decode (the file is truncated or damaged)"}


def test_same_size_change_to_a_real_video_invalidates_data_and_every_feature_stage(tmp_path, tracker):
    """Real-format data (a tiny synthetic dataset read as msvd-qa): a video's content is an input of the data
    stage, so a same-size change gives the data, appearance and motion stages new fingerprints."""
    root = tmp_path / "msvd"
    generate_dataset(root, SyntheticSpec(num_videos=6, frames=12, width=48, height=36), progress=False)
    spec = _msvd_spec("data-content", root, tmp_path / "out")
    stages = {"data": DATA_STAGE, "appearance": APPEARANCE_STAGE, "motion": MOTION_STAGE}
    runner = Runner(stages, tracker, progress=False, echo=False)
    (first,) = runner.run("data", spec)
    before = {name: runner.fingerprint(name, spec) for name in stages}

    video = sorted((root / "video").glob("*.avi"))[2]
    size = video.stat().st_size
    overwrite_middle(video)
    assert video.stat().st_size == size
    runner = Runner(stages, tracker, progress=False, echo=False)  # the next command
    after = {name: runner.fingerprint(name, spec) for name in stages}
    assert all(after[name] != before[name] for name in stages), f"unchanged fingerprints: {before} {after}"
    (second,) = runner.run("data", spec)
    assert not second.cache_hit
    tags = [tracker.client.get_run(r.run_id).data.tags["dualvgr.dataset_fingerprint"] for r in (first, second)]
    assert tags[0] != tags[1], "the logged dataset fingerprint covers the videos' content"


def test_generated_video_changed_on_disk_is_written_again(tmp_path, tracker):
    """The synthetic dataset is a function of its config: a changed video is a changed output, so the data stage
    reruns from scratch and restores it, and the features made from the generator's videos stay valid."""
    spec = synthetic_spec(tmp_path)
    stages = {"data": DATA_STAGE, "appearance": APPEARANCE_STAGE}
    runner = Runner(stages, tracker, progress=False, echo=False)
    (record,) = runner.run("data", spec)
    appearance = runner.fingerprint("appearance", spec)
    video = sorted(load_manifest(record.outputs["manifest"])["videos"].values())[0]
    original = video.read_bytes()
    overwrite_middle(video)
    assert video.read_bytes() != original and video.stat().st_size == len(original)
    runner = Runner(stages, tracker, progress=False, echo=False)
    (again,) = runner.run("data", spec)
    assert not again.cache_hit, "a same-size change to a generated video must not be a cache hit"
    assert video.read_bytes() == original, "the rerun writes the generator's video again"
    assert runner.fingerprint("appearance", spec) == appearance
