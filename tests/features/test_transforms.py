"""Resize and normalisation reproduce the original's arithmetic (dualvgr-original.md §2.3, B25)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dualvgr.features.reference import normalise_clip
from dualvgr.features.settings import NORMALISATIONS
from dualvgr.features.transforms import FrameNormaliser, motion_clips, normalisation_table, resize_frames

RNG = np.random.default_rng(0)
FRAMES = RNG.integers(0, 256, (5, 30, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(224, 224), (112, 112), (32, 48), (48, 32)])
def test_resize_is_pillow_bicubic_with_height_then_width(size):
    got = resize_frames(FRAMES, size)
    assert got.shape == (5, *size, 3), f"(height, width) = {size} must give frames {size} high and wide"
    expected = np.stack([np.asarray(Image.fromarray(f).resize(size[::-1], Image.BICUBIC)) for f in FRAMES])
    assert np.array_equal(got, expected)


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
