"""The original extraction procedure, step by step, as an executable yardstick (not used by the pipeline).

A direct restatement of ``dualvgr-original.md`` §2.1-2.5 with none of our optimisations: read every frame,
BGR->RGB with split/merge, slice and pad each clip from the frame list, resize every clip frame with Pillow,
normalise in float64, one forward per clip (appearance) or per video (motion) with autograd left on. The
tests compare the pipeline against it, and ``benchmarks/features.py`` times both. Only the crashes are left
out (``cv2.waitKey`` under headless OpenCV, B21; ``np.int``, B5).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from dualvgr.features.pillow_bicubic import pillow_resize
from dualvgr.features.settings import NORMALISATIONS


def read_all_frames(path: str) -> list[np.ndarray]:
    """Every frame ``read()`` returns, converted BGR->RGB by splitting and merging the channels."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while capture.isOpened():
        ok, frame = capture.read()
        if not ok:
            break
        blue, green, red = cv2.split(frame)
        frames.append(cv2.merge([red, green, blue]))
    capture.release()
    return frames


def sample_clips(frames: list[np.ndarray], num_clips: int, frames_per_clip: int = 16) -> list[np.ndarray]:
    """The clips as frame arrays (F, H, W, 3), built from the frame list the way the original slices and pads."""
    total = len(frames)
    half = frames_per_clip // 2
    clips = []
    for centre in np.linspace(0, total, num_clips + 2, dtype=np.int32)[1 : num_clips + 1]:
        start, end = int(centre) - half, int(centre) - half + frames_per_clip
        start = max(start, 0)
        if end > total:
            end = total - 1
        clip = list(frames[start:end])
        if start == 0:
            clip = [frames[start]] * (frames_per_clip - (end - start)) + clip
        if end == total - 1:
            clip = clip + [frames[end]] * (frames_per_clip - (end - start))
        clips.append(np.stack(clip[:frames_per_clip]))
    return clips


def resize_clip(clip: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(F, H, W, 3) -> (F, 3, h, w) uint8: Pillow bicubic on every frame, then HWC -> CHW."""
    return pillow_resize(clip, *size).transpose(0, 3, 1, 2)


def normalise_clip(clip: np.ndarray, normalisation: str = "original") -> np.ndarray:
    """(F, 3, h, w) uint8 -> float32: float32 / 255.0, then (x - mean) / std in float64, cast back."""
    mean, std = (np.asarray(values, np.float64).reshape(1, 3, 1, 1) for values in NORMALISATIONS[normalisation])
    return ((clip.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def appearance_inputs(
    path: str, num_clips: int, frames_per_clip: int, size: tuple[int, int], normalisation: str = "original"
) -> list[np.ndarray]:
    """Per clip, the (F, 3, h, w) float32 batch the original fed ResNet-101."""
    clips = sample_clips(read_all_frames(path), num_clips, frames_per_clip)
    return [normalise_clip(resize_clip(clip, size), normalisation) for clip in clips]


def motion_inputs(path: str, num_clips: int, frames_per_clip: int, size: tuple[int, int]) -> np.ndarray:
    """The (N, 3, F, h, w) float32 batch (0..255) the original fed the 3D ResNeXt."""
    clips = sample_clips(read_all_frames(path), num_clips, frames_per_clip)
    return np.stack([resize_clip(clip, size).transpose(1, 0, 2, 3) for clip in clips]).astype(np.float32)


def appearance_features(
    model: nn.Module, path: str, num_clips: int, frames_per_clip: int, size: tuple[int, int]
) -> np.ndarray:
    """(N, F, 2048): one forward per clip, autograd on, as the original's run_batch."""
    batches = appearance_inputs(path, num_clips, frames_per_clip, size)
    return np.stack([model(torch.from_numpy(batch)).detach().numpy() for batch in batches])


def motion_features(
    model: nn.Module, path: str, num_clips: int, frames_per_clip: int, size: tuple[int, int]
) -> np.ndarray:
    """(N, width): all clips of the video in one forward, autograd on, as the original."""
    return model(torch.from_numpy(motion_inputs(path, num_clips, frames_per_clip, size))).detach().numpy()
