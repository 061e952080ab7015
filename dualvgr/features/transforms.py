"""Frames -> network inputs: PIL bicubic resize, the original's normalisation, clip assembly.

Follows ``dualvgr-original.md`` §2.3. Resizing is Pillow's bicubic, exactly as the original (no crop, aspect
ratio not kept); PIL sizes are (width, height), so we pass ``(w, h)`` for a requested (height, width). The
original's ``--image_height H --image_width W`` flags therefore produced frames W high and H wide; only
non-square sizes notice. Each distinct frame is resized once (padding and overlapping clips repeat frames), with
:func:`~dualvgr.features.pillow_bicubic.resize_bicubic`: Pillow's integer arithmetic, vectorised, bit-identical.

Appearance normalisation is the original's arithmetic: ``uint8 -> float32``, ``/ 255.0`` in float32, then
``(x - mean) / std`` in float64, cast to float32. A uint8 input has 256 values per channel, so the result is
a (256, 3) table computed once with that arithmetic and then looked up: bit-identical, and cheaper than the
float64 pass. Motion frames are only cast to float32 (0..255, no normalisation, as the original).

Network inputs keep the frames' HWC memory layout: an NHWC tensor permuted to NCHW is ``channels_last``
(NDHWC for clips is ``channels_last_3d``), which both CPU (oneDNN) and cuDNN convolutions take directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch


def normalisation_table(mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(256, 3) float32: channel c of pixel value v normalised with the original's float32/float64 steps."""
    scaled = np.arange(256, dtype=np.float32) / 255.0  # float32 division, as astype(float32) / 255.0
    table = (scaled[:, None].astype(np.float64) - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)
    return table.astype(np.float32)  # (256, 3)


class FrameNormaliser:
    """uint8 frames (B, H, W, 3) on a device -> normalised float32 (B, 3, H, W), channels_last."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device) -> None:
        self.table = normalisation_table(mean, std)  # (256, 3)
        self.device = device
        self.flat_table = torch.from_numpy(self.table.reshape(-1)).to(device)  # entry 3*v + c

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.device.type == "cpu":
            # cv2.LUT applies the per-channel 256-entry table in one pass (multithreaded, no int64 indices).
            batch, height, width, _ = frames.shape
            lut = cv2.LUT(frames.numpy().reshape(batch * height, width, 3), self.table.reshape(1, 256, 3))
            values = torch.from_numpy(lut).view(batch, height, width, 3)
        else:
            channel = torch.arange(3, device=frames.device)
            values = self.flat_table[frames.long() * 3 + channel]  # (B, H, W, 3)
        return values.permute(0, 3, 1, 2)  # (B, 3, H, W), channels_last strides


def motion_clips(clips: torch.Tensor) -> torch.Tensor:
    """uint8 clips (B, F, H, W, 3) -> float32 (B, 3, F, H, W) in 0..255, channels_last_3d."""
    return clips.float().permute(0, 4, 1, 2, 3)
