"""Decoding: the needed frames only, the original's frame count, clear errors for bad files (B21, B22)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.features import DamagedVideo, clip_frame_indices, count_frames, read_clip_frames, read_video_clips
from dualvgr.features import video as video_module
from dualvgr.features.reference import read_all_frames, sample_clips


@pytest.mark.parametrize("codec, suffix", [("MJPG", "avi"), ("mp4v", "mp4")])
@pytest.mark.parametrize("num_frames", [1, 9, 40])
def test_clips_equal_reading_every_frame(video_factory, codec, suffix, num_frames):
    path = video_factory(f"clip.{suffix}", num_frames, codec=codec)
    everything = read_all_frames(path)
    clips, total = read_video_clips(path, num_clips=4, frames_per_clip=8)
    assert total == len(everything), f"counted {total} frames, the read-every-frame loop reads {len(everything)}"
    expected = np.stack(sample_clips(everything, 4, 8))
    assert clips.shape == expected.shape and np.array_equal(clips, expected), "decoded clip frames differ from read()"


def test_only_distinct_needed_frames_are_kept(video_factory):
    path = video_factory("long.avi", 120)
    clip_frames = read_clip_frames(path, num_clips=3, frames_per_clip=4)
    assert clip_frames.frame_ids.tolist() == sorted(set(clip_frame_indices(120, 3, 4).ravel().tolist()))
    assert len(clip_frames.frames) == 12, "3 clips x 4 frames, none shared"
    assert clip_frames.decode_passes == 1


_REAL_CAPTURE = cv2.VideoCapture


def _lying_capture(offset: int):
    """cv2.VideoCapture whose container frame count is off by ``offset``, as some containers' metadata is."""

    class LyingCapture:
        def __init__(self, path: str) -> None:
            self._capture = _REAL_CAPTURE(path)

        def get(self, prop: int) -> float:
            value = self._capture.get(prop)
            return value + offset if prop == cv2.CAP_PROP_FRAME_COUNT else value

        def __getattr__(self, name: str):
            return getattr(self._capture, name)

    return LyingCapture


def test_container_declaring_too_few_frames_still_gives_the_original_frames(video_factory, monkeypatch):
    path = video_factory("liar.avi", 30)
    expected = np.stack(sample_clips(read_all_frames(path), 4, 8))
    monkeypatch.setattr(video_module.cv2, "VideoCapture", _lying_capture(-13))
    clip_frames = read_clip_frames(path, num_clips=4, frames_per_clip=8)
    assert clip_frames.total_frames == 30, "T must be counted, not taken from the container"
    assert clip_frames.decode_passes == 2, "the guessed frames were wrong, a second pass should fetch the right ones"
    assert np.array_equal(clip_frames.clips(), expected)


def test_container_declaring_more_frames_than_decode_is_a_failed_video(video_factory, monkeypatch):
    """Whatever the cause, fewer frames than declared is what a truncated file looks like: never a short video."""
    path = video_factory("liar.avi", 30)
    monkeypatch.setattr(video_module.cv2, "VideoCapture", _lying_capture(+13))
    with pytest.raises(DamagedVideo) as error:
        read_clip_frames(path, num_clips=4, frames_per_clip=8)
    assert str(error.value) == f"{path}: only 30 of 43 frames decode (the file is truncated or damaged)"
    with pytest.raises(DamagedVideo, match="only 30 of 43 frames decode"):
        count_frames(path)


def test_b22_missing_video_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere.avi"
    with pytest.raises(DataError, match=f"video file not found: {missing}"):
        read_clip_frames(missing, 8, 16)


def test_b22_corrupt_video_is_an_error_naming_it(tmp_path):
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match=str(corrupt)):
        read_clip_frames(corrupt, 8, 16)


def test_b22_video_without_frames_is_an_error_naming_it(video_factory):
    empty = video_factory("empty.avi", 0)
    with pytest.raises(DataError, match=str(empty)):
        read_clip_frames(empty, 8, 16)


def test_bgr_frames_are_the_rgb_frames_reversed(video_factory):
    path = video_factory("order.avi", 20)
    rgb = read_clip_frames(path, num_clips=2, frames_per_clip=4)
    bgr = read_clip_frames(path, num_clips=2, frames_per_clip=4, channels="bgr")
    assert np.array_equal(bgr.frames[..., ::-1], rgb.frames), "bgr must be OpenCV's order, rgb its reversal"
    with pytest.raises(ValueError, match=r"channels must be 'rgb' or 'bgr', got 'hsv'"):
        read_clip_frames(path, 2, 4, channels="hsv")


class _AllocatingCapture:
    """A capture whose retrieve() ignores the buffer it is given, as OpenCV does when a frame's size changes."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames, self.position = frames, -1

    def grab(self) -> bool:
        self.position += 1
        return self.position < len(self.frames)

    def retrieve(self, image=None):
        return True, self.frames[self.position].copy()

    def release(self) -> None:
        pass


def test_frames_opencv_did_not_write_into_the_buffer_are_kept():
    frames = [np.full((2, 3, 3), value, np.uint8) for value in range(6)]
    store, count = video_module._walk(_AllocatingCapture(frames), [1, 3, 4])
    assert count == 6
    taken = store.take([1, 3, 4])
    assert [int(frame[0, 0, 0]) for frame in taken] == [1, 3, 4], "every wanted frame, in order, whichever way it came"
