"""Clip sampling equals the original's, edge padding included (``original_clip_indices.json``: the frame indices
the original's ``extract_clips_with_consecutive_frames`` picked, made by ``tests/fixtures/make_clip_indices.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.features import clip_frame_indices
from dualvgr.features.reference import sample_clips
from tests.conftest import FIXTURES_DIR


def test_indices_equal_the_original_fixture():
    cases = json.loads((FIXTURES_DIR / "original_clip_indices.json").read_text(encoding="utf-8"))["cases"]
    assert cases, "fixture has no cases"
    for case in cases:
        got = clip_frame_indices(case["total_frames"], case["num_clips"], case["frames_per_clip"])
        expected = np.asarray(case["indices"])
        assert np.array_equal(got, expected), (
            f"T={case['total_frames']} N={case['num_clips']}: first differing clip "
            f"{int(np.flatnonzero((got != expected).any(axis=1))[0])}: {got.tolist()} vs {expected.tolist()}"
        )


def test_documented_examples():
    assert clip_frame_indices(100, 8)[0].tolist() == list(range(3, 19)), "T=100: c=11 gives frames 3..18"
    assert clip_frame_indices(40, 8)[0].tolist() == [0] * 5 + list(range(1, 12))
    assert clip_frame_indices(40, 8)[-1].tolist() == list(range(27, 40)) + [39] * 3
    assert clip_frame_indices(10, 8)[0].tolist() == [0] * 8 + list(range(1, 9)), "T=10 never uses frame 9"


@pytest.mark.parametrize("frames_per_clip", [1, 2, 3, 4, 8, 15, 16, 17, 32])
@pytest.mark.parametrize("num_clips", [1, 3, 8, 20])
def test_shape_bounds_and_order(num_clips, frames_per_clip):
    for total in [1, 2, 5, 9, 16, 17, 33, 100, 1001]:
        got = clip_frame_indices(total, num_clips, frames_per_clip)
        assert got.shape == (num_clips, frames_per_clip) and got.dtype == np.int64, f"T={total}: shape {got.shape}"
        assert got.min() >= 0 and got.max() < total, f"T={total}: indices {got.min()}..{got.max()} out of range"
        assert (np.diff(got, axis=1) >= 0).all(), f"T={total}: frames within a clip go backwards"
        assert (np.diff(got[:, 0]) >= 0).all(), f"T={total}: clips are not in time order"


@pytest.mark.parametrize("frames_per_clip", [2, 4, 8, 16])
def test_even_clip_lengths_follow_the_original_rule(frames_per_clip):
    """For even F our generalisation is the original's c - F/2 .. c + F/2 - 1 window with its padding."""
    for total in [1, 2, 3, 7, 10, 16, 17, 40, 100, 301]:
        frames = list(range(total))  # a "video" whose frames are their own indices
        expected = np.stack(sample_clips(frames, 8, frames_per_clip))
        assert np.array_equal(clip_frame_indices(total, 8, frames_per_clip), expected), f"T={total}, F={frames_per_clip}"


def test_odd_clip_length_window_starts_half_before_the_centre():
    # T=100, N=1: centre 50; F=5 -> 48..52 (the original's c±2 would hold only 4 frames and crash)
    assert clip_frame_indices(100, 1, 5).tolist() == [[48, 49, 50, 51, 52]]


def test_b22_zero_frames_is_an_error_naming_the_video():
    with pytest.raises(DataError, match=r"clips/broken\.avi: 0 frames decoded"):
        clip_frame_indices(0, 8, source="clips/broken.avi")


def test_single_frame_video_repeats_it():
    assert clip_frame_indices(1, 2, 4).tolist() == [[0] * 4] * 2
