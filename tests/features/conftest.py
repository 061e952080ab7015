"""Tiny videos written with OpenCV, small settings and random weights for the feature-extraction tests."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dualvgr.features import AppearanceSettings, MotionSettings, resolve_weights

VideoFactory = Callable[..., Path]


def write_video(
    path: Path, num_frames: int, *, size: tuple[int, int] = (36, 48), fps: int = 10, seed: int = 0, codec: str = "MJPG"
) -> Path:
    """A video of ``num_frames`` distinct frames (height, width = size): a drifting random texture."""
    height, width = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {codec} to {path}"
    texture = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        frame = np.roll(texture, t, axis=1)
        frame[:4, :4] = (t * 7) % 256  # a corner that differs per frame
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """These networks run on a few 32x32 frames: one thread is as fast, and far faster on a shared, busy CPU
    (OpenMP threads wait on each other when the machine is oversubscribed)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def video_factory(tmp_path: Path) -> VideoFactory:
    def make(name: str, num_frames: int, **kwargs) -> Path:
        return write_video(tmp_path / name, num_frames, **kwargs)

    return make


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> list[tuple[int, Path]]:
    """Five short videos with unsorted, non-contiguous ids (rows must come out sorted by id)."""
    folder = tmp_path_factory.mktemp("videos")
    lengths = {42: 23, 7: 9, 19: 40, 3: 1, 100: 17}
    return [(i, write_video(folder / f"video{i}.avi", frames, seed=i)) for i, frames in lengths.items()]


@pytest.fixture(scope="session")
def appearance_weights():
    return resolve_weights("random", "resnet101", allow_random=True, seed=0)


@pytest.fixture(scope="session")
def motion_weights():
    return resolve_weights("random", "resnext101", allow_random=True, seed=0)


@pytest.fixture(scope="session")
def appearance_settings() -> AppearanceSettings:
    return AppearanceSettings(num_clips=3, frames_per_clip=4, image_size=32)


@pytest.fixture(scope="session")
def motion_settings() -> MotionSettings:
    return MotionSettings(num_clips=3, frames_per_clip=8, image_size=32, sample_size=32, sample_duration=8)


@pytest.fixture(scope="session", autouse=True)
def _reuse_built_backbones():
    """Build each (backbone, weights, fingerprint parameters) network once per session: construction dominates
    these tests' time. The builders themselves are tested in test_weights.py; inference never changes a network.
    """
    from dualvgr.features.registry import BACKBONES

    with pytest.MonkeyPatch.context() as patch:
        for name, entry in list(BACKBONES.items()):
            patch.setitem(BACKBONES, name, dataclasses.replace(entry, build=_memoised(entry)))
        yield


_BUILT: dict[tuple, object] = {}


def _memoised(entry):
    def cached(weights, settings):
        key = (entry.name, weights, json.dumps(entry.fingerprint(settings), sort_keys=True))
        if key not in _BUILT:
            _BUILT[key] = entry.build(weights, settings)
        return _BUILT[key]

    return cached


@pytest.fixture(scope="session")
def appearance_model(appearance_weights, appearance_settings, _reuse_built_backbones):
    """The ResNet-101 (random, seed 0) that extractions with ``appearance_weights`` use."""
    from dualvgr.features.registry import BACKBONES

    return BACKBONES["resnet101"].build(appearance_weights, appearance_settings)


@pytest.fixture(scope="session")
def motion_model(motion_weights, motion_settings, _reuse_built_backbones):
    """The 3D ResNeXt-101 (random, seed 0, pooling for 8 frames of 32x32) of ``motion_settings``."""
    from dualvgr.features.registry import BACKBONES

    return BACKBONES["resnext101"].build(motion_weights, motion_settings)
