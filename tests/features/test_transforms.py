"""Resize and normalisation reproduce the original's arithmetic (dualvgr-original.md §2.3, B25)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualvgr.features.reference import normalise_clip
from dualvgr.features.settings import NORMALISATIONS
from dualvgr.features.transforms import FrameNormaliser, motion_clips, normalisation_table
FRAMES = np.random.default_rng(0).integers(0, 256, (5, 30, 40, 3), dtype=np.uint8)


def test_b25_original_normalisation_keeps_std_0224():
    assert NORMALISATIONS["original"][1] == (0.229, 0.224, 0.224), "HCRN's blue std 0.224 is kept for fidelity"
    assert NORMALISATIONS["torchvision"][1] == (0.229, 0.224, 0.225)


@pytest.mark.parametrize("normalisation", ["original", "torchvision"])
def test_table_equals_the_original_float64_arithmetic_for_every_value(normalisation):
    table = normalisation_table(*NORMALISATIONS[normalisation])
    every_value = np.tile(np.arange(256, dtype=np.uint8), (3, 1))[None, :, :, None]  # (F=1, 3, h=256, w=1)
    expected = normalise_clip(every_value, normalisation)[0, :, :, 0].T  # (256, 3)
    assert table.dtype == np.float32
    assert np.array_equal(table, expected), f"max difference {np.abs(table - expected).max()}"


@pytest.mark.parametrize("normalisation", ["original", "torchvision"])
def test_frame_normaliser_matches_the_original_on_frames(normalisation):
    normaliser = FrameNormaliser(*NORMALISATIONS[normalisation], torch.device("cpu"))
    got = normaliser(torch.from_numpy(FRAMES))  # (B, 3, H, W)
    expected = normalise_clip(FRAMES.transpose(0, 3, 1, 2), normalisation)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert got.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.gpu
def test_frame_normaliser_on_cuda_matches_cpu():
    normaliser_cpu = FrameNormaliser(*NORMALISATIONS["original"], torch.device("cpu"))
    normaliser_gpu = FrameNormaliser(*NORMALISATIONS["original"], torch.device("cuda"))
    frames = torch.from_numpy(FRAMES)
    assert torch.equal(normaliser_gpu(frames.cuda()).cpu(), normaliser_cpu(frames))


def test_motion_clips_stay_in_0_255_with_channels_first():
    clips = torch.from_numpy(np.stack([FRAMES, FRAMES[::-1]]))  # (2, F=5, H, W, 3)
    got = motion_clips(clips)
    expected = clips.numpy().transpose(0, 4, 1, 2, 3).astype(np.float32)
    assert got.shape == (2, 3, 5, 30, 40)
    assert torch.equal(got, torch.from_numpy(expected)), "motion input is the raw 0..255 values, C x F x H x W"
