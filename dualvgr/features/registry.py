"""The feature backbones as plain data: ``features.<kind>.backbone`` -> the entry that owns everything about it.

One :class:`Backbone` per config value (house style item 13): its builder, the named weights it accepts
(``imagenet``/``kinetics``/``random``, implemented in :mod:`~dualvgr.features.weights`), the transform from
decoded uint8 frames to its input, its output width and the parameters that enter the feature stages'
fingerprint. The extraction and the stages look the entry up (:func:`backbone_entry`) and never branch on the
name, so a new backbone is one more entry in :data:`BACKBONES`. Today's two are the original's: torchvision's
ResNet-101 on every frame (``dualvgr-original.md`` §2.4) and Hara's 3D ResNeXt-101 on every clip (§2.5).

An entry serves one feature kind: ``appearance`` backbones run on each distinct frame and give one vector per
frame, ``motion`` backbones run on each distinct clip and give one vector per clip.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from dualvgr.core.errors import DataError, SpecError
from dualvgr.core.fingerprint import StatCache
from dualvgr.features.backbones import build_appearance_backbone, build_motion_backbone
from dualvgr.features.backbones.resnet import FEATURE_DIM as RESNET_DIM
from dualvgr.features.backbones.resnext3d import FEATURE_DIM as RESNEXT_DIM
from dualvgr.features.settings import FeatureSettings, explain_motion_width
from dualvgr.features.transforms import FrameNormaliser, motion_clips
from dualvgr.features.weights import (
    KINETICS_FILE,
    BackboneWeights,
    WeightRequest,
    file_weights,
    imagenet_weights,
    kinetics_weights,
    random_weights,
)

InputTransform = Callable[[torch.Tensor], torch.Tensor]


def _accept(settings: FeatureSettings) -> None:
    """Most backbones run on any clips the settings sample."""


@dataclass(frozen=True)
class Backbone:
    """Everything specific to one backbone; code elsewhere only reads these fields."""

    name: str  # the config value
    kind: str  # the feature kind it serves: 'appearance' (per frame) or 'motion' (per clip)
    feature_dim: int  # width of one frame's (appearance) or clip's (motion) feature
    # Named weights it accepts besides a checkpoint path, each a function of the request.
    weight_sources: Mapping[str, Callable[[WeightRequest], BackboneWeights]]
    checkpoint_hint: str  # how to give it real weights, for messages
    build: Callable[[BackboneWeights, FeatureSettings], nn.Module]  # eval mode, weights loaded
    input_transform: Callable[[FeatureSettings, torch.device], InputTransform]  # uint8 units -> float32 input
    cpu_memory_format: torch.memory_format  # the input layout its CPU convolutions run fastest in
    fingerprint: Callable[[FeatureSettings], dict]  # what, besides the sampling, changes its features
    # Refuses settings it cannot run, before anything is decoded (the 3D ResNeXt's fixed pooling, B20).
    check_settings: Callable[[FeatureSettings], None] = field(default=_accept)
    # Why the network gave another width than feature_dim, when the entry can tell (B20); None: say only that.
    explain_width: Callable[[int, FeatureSettings], str] | None = None

    def resolve_weights(
        self, source: str | os.PathLike, *, allow_random: bool = False, seed: int = 0, cache: StatCache | None = None
    ) -> BackboneWeights:
        """A named source of this backbone, or a checkpoint path (hashed through ``cache``)."""
        cache = StatCache(None) if cache is None else cache
        if isinstance(source, str) and source in named_sources():
            if source not in self.weight_sources:
                raise SpecError(
                    f"weights '{source}' do not exist for {self.name}: use one of {', '.join(self.weight_sources)} "
                    f"or a checkpoint path"
                )
            request = WeightRequest(self.name, self.checkpoint_hint, allow_random, seed, cache)
            return self.weight_sources[source](request)
        return file_weights(source, self.name, cache)

    def check_width(self, width: int, settings: FeatureSettings, *, where: str) -> None:
        """The width the network produced must be the entry's (motion settings explain B20 widths)."""
        if width == self.feature_dim:
            return
        if self.explain_width is not None:
            raise DataError(f"{where}: {self.explain_width(width, settings)}")
        raise DataError(f"{where}: {settings.kind} features are {width} wide, expected {self.feature_dim}")


def _resnet_input(settings: FeatureSettings, device: torch.device) -> InputTransform:
    return FrameNormaliser(*settings.mean_std, device)


def _resnext_input(settings: FeatureSettings, device: torch.device) -> InputTransform:
    return motion_clips  # raw 0..255 clips, as the original fed them (§2.3)


def _build_resnext(weights: BackboneWeights, settings: FeatureSettings) -> nn.Module:
    return build_motion_backbone(weights, sample_size=settings.sample_size, sample_duration=settings.sample_duration)


RESNET101 = Backbone(
    name="resnet101",
    kind="appearance",
    feature_dim=RESNET_DIM,
    weight_sources={"imagenet": imagenet_weights, "random": random_weights},
    checkpoint_hint="a checkpoint path or 'imagenet'",
    build=lambda weights, settings: build_appearance_backbone(weights),
    input_transform=_resnet_input,
    cpu_memory_format=torch.channels_last,
    fingerprint=lambda settings: {"architecture": "torchvision resnet101, fc dropped", "width": RESNET_DIM},
)

RESNEXT101 = Backbone(
    name="resnext101",
    kind="motion",
    feature_dim=RESNEXT_DIM,
    weight_sources={"kinetics": kinetics_weights, "random": random_weights},
    checkpoint_hint=f"a checkpoint path ({KINETICS_FILE})",
    build=_build_resnext,
    input_transform=_resnext_input,
    cpu_memory_format=torch.channels_last_3d,
    # The pooling kernel is fixed at construction from these two (B20), so they are part of the network.
    fingerprint=lambda settings: {
        "architecture": "Hara 3D ResNeXt-101 32x4d, shortcut B", "width": RESNEXT_DIM,
        "sample_size": settings.sample_size, "sample_duration": settings.sample_duration,
    },
    check_settings=lambda settings: settings.check_pooling(),
    explain_width=lambda width, settings: explain_motion_width(
        width, sample_size=settings.sample_size, sample_duration=settings.sample_duration
    ),
)

BACKBONES: dict[str, Backbone] = {entry.name: entry for entry in (RESNET101, RESNEXT101)}


def named_sources() -> set[str]:
    """Every weights name some backbone accepts: such a word is a name (right or wrong here), never a path."""
    return {source for entry in BACKBONES.values() for source in entry.weight_sources}


def backbone_entry(name: str, kind: str | None = None) -> Backbone:
    """The registered backbone ``name`` (of feature kind ``kind`` when given), or an error listing the others."""
    candidates = {key: entry for key, entry in BACKBONES.items() if kind is None or entry.kind == kind}
    if name in candidates:
        return candidates[name]
    what = f"{kind} backbone" if kind else "backbone"
    key = f"features.{kind}.backbone " if kind else ""
    also = f" ({name} is a {BACKBONES[name].kind} backbone)" if name in BACKBONES else ""
    raise SpecError(
        f"{key}'{name}' is not a registered {what}{also}: registered are {', '.join(sorted(candidates)) or 'none'}"
    )


def resolve_weights(
    source: str | os.PathLike, backbone: str, *, allow_random: bool = False, seed: int = 0,
    cache: StatCache | None = None,
) -> BackboneWeights:
    """Turn a weights source (a path, or one of the backbone's named sources) into a checked value."""
    return backbone_entry(backbone).resolve_weights(source, allow_random=allow_random, seed=seed, cache=cache)
