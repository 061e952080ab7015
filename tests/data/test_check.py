"""The dataset check: every video decoded to its end (truncated and damaged ones found), content fingerprint."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dualvgr.core import fingerprint
from dualvgr.core.fingerprint import stat_cache_in
from dualvgr.data.check import damaged_message, inspect_dataset
from dualvgr.features.reference import read_all_frames
from tests.data.test_layout import make_msvd

FIX = (
    "replace it, or set features.allow_failed_videos: true to record it as failed (a zero row, audited as a "
    "deviation)"
)


def textured_video(path: Path, frames: int = 24) -> None:
    """An MJPG AVI of ``frames`` distinct 48x36 frames (a drifting texture: JPEG frames of realistic size)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (48, 36))
    texture = np.random.default_rng(len(path.name)).integers(0, 256, (36, 48, 3), dtype=np.uint8)
    for t in range(frames):
        writer.write(np.roll(texture, t, axis=1))
    writer.release()


def truncate_video(path: Path, frames: int = 24) -> int:
    """Write a ``frames``-frame MJPG AVI at ``path`` cut to half its bytes; returns the frames the original's
    read loop still gets from it (fewer than ``frames``: the header keeps declaring all of them)."""
    textured_video(path, frames=frames)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    decoded = len(read_all_frames(path))
    assert 0 < decoded < frames, f"half the bytes should decode some but not all frames, got {decoded}"
    return decoded


def overwrite_middle(path: Path, length: int = 16) -> None:
    """Overwrite ``length`` bytes in the middle of ``path`` with noise: a same-size change."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + length] = np.random.default_rng(0).integers(0, 256, length, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def test_truncated_video_is_damaged_not_missing(tmp_path):
    make_msvd(tmp_path, "YouTubeClips")
    video = tmp_path / "YouTubeClips" / "abc_1_5.avi"
    decoded = truncate_video(video)
    inventory = inspect_dataset("msvd-qa", tmp_path, progress=False)
    assert inventory.problems == {}, "a truncated video opens and decodes: it is not missing"
    assert inventory.damaged == {1: f"only {decoded} of 24 frames decode (the file is truncated or damaged)"}
    assert 1 in inventory.usable_videos, "damaged videos stay in the manifest, for the feature stages to record"


def test_one_damaged_video_is_one_line_naming_file_frames_and_fix(tmp_path):
    make_msvd(tmp_path, "YouTubeClips")
    video = tmp_path / "YouTubeClips" / "abc_1_5.avi"
    decoded = truncate_video(video)
    message = damaged_message(inspect_dataset("msvd-qa", tmp_path, progress=False), "LIST")
    assert message == f"video 1 ({video}): only {decoded} of 24 frames decode (the file is truncated or damaged); {FIX}"


def test_several_damaged_videos_are_listed_with_the_fix(tmp_path):
    make_msvd(tmp_path, "YouTubeClips")
    decoded = {vid: truncate_video(tmp_path / "YouTubeClips" / f"{name}.avi")
               for vid, name in ((1, "abc_1_5"), (3, "xyz_0_4"))}
    message = damaged_message(inspect_dataset("msvd-qa", tmp_path, progress=False), "LIST")
    assert message == (
        f"2 of 3 videos of {tmp_path} are truncated or damaged (they decode fewer frames than their container "
        f"declares):\n"
        f"  video 1 ({tmp_path / 'YouTubeClips' / 'abc_1_5.avi'}): only {decoded[1]} of 24 frames decode (the file "
        f"is truncated or damaged)\n"
        f"  video 3 ({tmp_path / 'YouTubeClips' / 'xyz_0_4.avi'}): only {decoded[3]} of 24 frames decode (the file "
        f"is truncated or damaged)\n"
        f"Full list: LIST. For each video: {FIX}."
    )


def test_same_size_change_to_a_video_changes_the_dataset_fingerprint(tmp_path):
    """A few garbage bytes inside one JPEG frame: FFmpeg conceals them (every frame still decodes), so only the
    content fingerprint can tell the dataset changed."""
    make_msvd(tmp_path, "YouTubeClips")
    video = tmp_path / "YouTubeClips" / "d-e_f_3_9.avi"
    textured_video(video)
    before = inspect_dataset("msvd-qa", tmp_path, progress=False)
    size = video.stat().st_size
    overwrite_middle(video)
    after = inspect_dataset("msvd-qa", tmp_path, progress=False)
    assert video.stat().st_size == size
    assert not after.problems and not after.damaged, "concealed damage decodes: the check cannot see it"
    assert after.fingerprint != before.fingerprint, "a same-size change must change the dataset fingerprint"
    assert after.identities[2][1] != before.identities[2][1] and after.identities[1] == before.identities[1]


def test_unchanged_dataset_is_not_rehashed_through_the_stat_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "RACY_SECONDS", 0.0)  # the files were just written; trust them at once
    make_msvd(tmp_path / "data", "YouTubeClips")
    first_cache = stat_cache_in(tmp_path / "outputs")
    first = inspect_dataset("msvd-qa", tmp_path / "data", progress=False, cache=first_cache)
    assert len(first_cache.hashed) == 3 + 4, "three videos, three QA files and the mapping file"
    again_cache = stat_cache_in(tmp_path / "outputs")  # the next command
    again = inspect_dataset("msvd-qa", tmp_path / "data", progress=False, cache=again_cache)
    assert again.fingerprint == first.fingerprint
    assert again_cache.hashed == [], "an unchanged dataset must be answered from the stat cache"


@pytest.mark.parametrize("workers", [0, 2])
def test_decoding_processes_find_the_same_problems(tmp_path, workers):
    make_msvd(tmp_path, "YouTubeClips")
    (tmp_path / "YouTubeClips" / "xyz_0_4.avi").unlink()
    decoded = truncate_video(tmp_path / "YouTubeClips" / "abc_1_5.avi")
    inventory = inspect_dataset("msvd-qa", tmp_path, progress=False, workers=workers)
    assert inventory.problems == {3: f"missing: {tmp_path / 'YouTubeClips' / 'xyz_0_4.avi'}"}
    assert inventory.damaged == {1: f"only {decoded} of 24 frames decode (the file is truncated or damaged)"}
