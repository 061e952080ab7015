"""The appearance stage through the runner, on real stages: a damaged video allowed through is a failed video."""

from __future__ import annotations

import json

import pytest

from dualvgr.core.runner import Runner
from dualvgr.core.spec import spec_from_dict
from dualvgr.core.tracking import TAG_DEVIATION_PREFIX
from dualvgr.data.stage import DATA_STAGE
from dualvgr.features.stage import APPEARANCE_STAGE
from tests.data.test_check import truncate_video
from tests.data.test_layout import make_msvd


@pytest.mark.slow  # builds a ResNet-101 and runs two stages (~20 s on 2 cores)
def test_allowed_truncated_video_is_a_zero_row_and_a_deviation_of_the_feature_stage(tmp_path, tracker):
    root = tmp_path / "msvd"
    make_msvd(root, "YouTubeClips")
    video = root / "YouTubeClips" / "abc_1_5.avi"
    decoded = truncate_video(video)
    spec = spec_from_dict({
        "name": "features-damaged",
        "dataset": {"kind": "msvd-qa", "root": str(root)},
        "features": {"num_clips": 2, "workers": 0, "allow_failed_videos": True, "allow_random_weights": True,
                     "appearance": {"weights": "random", "frames_per_clip": 2, "image_size": 32}},
        "tracking": {"outputs": str(tmp_path / "outputs")},
    })
    runner = Runner({"data": DATA_STAGE, "appearance": APPEARANCE_STAGE}, tracker, progress=False, echo=False)
    (record,) = runner.run("appearance", spec)
    run = tracker.client.get_run(record.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[TAG_DEVIATION_PREFIX + "failed_videos_appearance"] == "1"
    assert run.data.metrics["videos_failed"] == 1 and run.data.metrics["videos_extracted"] == 2
    failed = json.loads(record.outputs["failed"].read_text())
    assert failed == [{
        "video_id": 1, "path": str(video),
        "reason": f"{video}: only {decoded} of 24 frames decode (the file is truncated or damaged)",
    }]
