"""What one feature extraction samples and feeds its backbone: clips, frame size, normalisation, which backbone.

Defaults are the original's faithful values (``dualvgr-original.md`` §2.2-2.5, checklist §6); ``num_clips`` has
none because it must equal the model's ``num_of_nodes`` (8/16/20 per data set; the original's default 24 matched
none of them, B27). The motion network's pooling kernel is sized by ``sample_size``/``sample_duration``,
separately from the frames actually fed (``image_size``): a mismatch is how the original produced 32768-wide
features (B20), so :meth:`MotionSettings.check_pooling` refuses it before any network runs and
:func:`explain_motion_width` words the diagnosis for every place that meets such a width. ``backbone`` names a
registry entry (:mod:`dualvgr.features.registry`), which owns the network itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from dualvgr.core.errors import DataError, SpecError
from dualvgr.features.backbones.resnext3d import FEATURE_DIM, pooled_grid

IMAGENET_MEAN = (0.485, 0.456, 0.406)
NORMALISATIONS = {
    "original": (IMAGENET_MEAN, (0.229, 0.224, 0.224)),  # HCRN's typo in the blue std, kept for fidelity (B25)
    "torchvision": (IMAGENET_MEAN, (0.229, 0.224, 0.225)),  # torchvision's ImageNet statistics
}


def _size(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    height, width = (value, value) if isinstance(value, int) else tuple(value)
    if min(height, width) < 1:
        raise SpecError(f"{name} must be positive, got {value}")
    return int(height), int(width)


def _check_counts(num_clips: int, frames_per_clip: int) -> None:
    if num_clips < 1 or frames_per_clip < 1:
        raise SpecError(
            f"num_clips={num_clips}, frames_per_clip={frames_per_clip}: both must be >= 1 (num_clips must equal "
            f"the model's num_of_nodes: 8 MSVD-QA, 16 MSRVTT-QA, 20 SVQA)"
        )


def _sampling_attrs(settings: AppearanceSettings | MotionSettings) -> dict[str, object]:
    """The HDF5 attributes both feature files carry: what was sampled and how it was fed."""
    return {
        "kind": settings.kind,
        "backbone": settings.backbone,
        "num_clips": settings.num_clips,
        "frames_per_clip": settings.frames_per_clip,
        "image_size": list(settings.image_size),
        "normalisation": settings.normalisation,
    }


@dataclass(frozen=True)
class AppearanceSettings:
    """ResNet-101 on every frame of every clip -> (num_clips, frames_per_clip, 2048) per video."""

    num_clips: int
    frames_per_clip: int = 16  # the original's clips; ResNet runs per frame, so any count works
    image_size: tuple[int, int] = (224, 224)  # (height, width) fed to the network; an int means square
    normalisation: str = "original"  # 'original' keeps std 0.224 (B25); 'torchvision' uses 0.225
    backbone: str = "resnet101"  # an appearance entry of the backbone registry

    kind: ClassVar[str] = "appearance"

    def __post_init__(self) -> None:
        _check_counts(self.num_clips, self.frames_per_clip)
        object.__setattr__(self, "image_size", _size(self.image_size, "appearance image_size"))
        if self.normalisation not in NORMALISATIONS:
            raise SpecError(
                f"appearance normalisation '{self.normalisation}' unknown: expected one of "
                f"{', '.join(NORMALISATIONS)} ('original' is faithful)"
            )

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return NORMALISATIONS[self.normalisation]

    def feature_shape(self, feature_dim: int) -> tuple[int, ...]:
        """One video's features for a backbone ``feature_dim`` wide: a vector per clip frame."""
        return (self.num_clips, self.frames_per_clip, feature_dim)

    def attrs(self) -> dict[str, object]:
        mean, std = self.mean_std
        return {**_sampling_attrs(self), "normalisation_mean": list(mean), "normalisation_std": list(std)}


@dataclass(frozen=True)
class MotionSettings:
    """3D ResNeXt-101 on every clip -> (num_clips, 2048) per video; frames stay in 0..255 as the original's."""

    num_clips: int
    frames_per_clip: int = 16  # Hara's networks were trained on 16-frame clips
    image_size: tuple[int, int] = (112, 112)  # (height, width) fed; must suit sample_size (B20)
    sample_size: int = 112  # frame size the fixed pooling kernel is built for (Hara's default)
    sample_duration: int = 16  # clip length the fixed pooling kernel is built for (Hara's default)
    backbone: str = "resnext101"  # a motion entry of the backbone registry

    kind: ClassVar[str] = "motion"
    normalisation: ClassVar[str] = "none"  # raw 0..255, no mean subtraction (§2.3), unlike Hara's own pipeline

    def __post_init__(self) -> None:
        _check_counts(self.num_clips, self.frames_per_clip)
        object.__setattr__(self, "image_size", _size(self.image_size, "motion image_size"))
        if self.sample_size < 1 or self.sample_duration < 1:
            raise SpecError(f"sample_size={self.sample_size}, sample_duration={self.sample_duration} must be >= 1")

    @property
    def pooled_grid(self) -> tuple[int, int, int]:
        """(time, height, width) positions the fixed pooling leaves for these clips; (1, 1, 1) when they fit."""
        return pooled_grid(
            self.frames_per_clip, *self.image_size, sample_duration=self.sample_duration, sample_size=self.sample_size
        )

    @property
    def feature_width(self) -> int:
        """Width the network will produce for these frames: 2048 x pooled positions."""
        return FEATURE_DIM * math.prod(self.pooled_grid)

    def feature_shape(self, feature_dim: int) -> tuple[int, ...]:
        """One video's features for a backbone ``feature_dim`` wide: a vector per clip."""
        return (self.num_clips, feature_dim)

    def check_pooling(self) -> None:
        """Refuse, before running anything, frames whose pooled map is not a single position (B20)."""
        height, width = self.image_size
        if min(self.pooled_grid) < 1:
            raise SpecError(
                f"motion clips of {self.frames_per_clip} frames of {height}x{width} are smaller than the 3D "
                f"ResNeXt's fixed pooling kernel (built for {self.sample_duration} frames of "
                f"{self.sample_size}x{self.sample_size}): set motion image_size to {self.sample_size} and "
                f"frames_per_clip to {self.sample_duration}, or shrink sample_size/sample_duration to match"
            )
        if self.feature_width != FEATURE_DIM:
            raise SpecError(
                explain_motion_width(
                    self.feature_width, sample_size=self.sample_size, sample_duration=self.sample_duration
                )
                + f" (motion image_size {height}x{width}, frames_per_clip {self.frames_per_clip})"
            )

    def attrs(self) -> dict[str, object]:
        return {**_sampling_attrs(self), "sample_size": self.sample_size, "sample_duration": self.sample_duration}


def explain_motion_width(width: int, *, sample_size: int = 112, sample_duration: int = 16) -> str:
    """Why motion features are ``width`` wide instead of 2048, and the fix (B20)."""
    kernel = math.ceil(sample_size / 32)
    positions, remainder = divmod(width, FEATURE_DIM)
    side = math.isqrt(positions)
    head = f"motion features are {width} wide, expected {FEATURE_DIM}"
    if remainder == 0 and positions > 1 and side * side == positions:
        map_side = side + kernel - 1
        low, high = 32 * (map_side - 1) + 1, 32 * map_side
        return (
            f"{head}: {positions} = {side}x{side} pooled positions per clip, so the last feature map was "
            f"{map_side}x{map_side} (frames of {low} to {high} pixels, e.g. the original's default 224x224) but the 3D "
            f"ResNeXt pools with a fixed {kernel}x{kernel} kernel sized for {sample_size}x{sample_size} frames: "
            f"re-extract motion features with motion image_size: {sample_size} (bug B20)"
        )
    if remainder == 0 and positions > 1:
        return (
            f"{head}: {positions} pooled positions per clip: the clips were longer than {sample_duration} frames "
            f"or larger than {sample_size}x{sample_size} pixels, which the 3D ResNeXt's fixed pooling kernel is "
            f"sized for: re-extract with motion frames_per_clip {sample_duration} and image_size {sample_size} (B20)"
        )
    return f"{head}: not produced by the 3D ResNeXt-101 (whose width is a multiple of {FEATURE_DIM}); re-extract"


def check_motion_width(width: int, settings: MotionSettings, *, where: str) -> None:
    """The produced width must be 2048, whatever the settings predicted (B20's second guard)."""
    if width != FEATURE_DIM:
        raise DataError(
            f"{where}: "
            + explain_motion_width(width, sample_size=settings.sample_size, sample_duration=settings.sample_duration)
        )


FeatureSettings = AppearanceSettings | MotionSettings
