"""The two feature backbones, built with their weights: ResNet-101 (appearance) and 3D ResNeXt-101 (motion).

Both come back in eval mode (BatchNorm uses its running statistics, as the original's ``model.eval()``).
Random weights are drawn from their seed in a forked RNG, so the global torch RNG is untouched and every
process (shards, reruns) builds the same network. Random networks also get BatchNorm statistics from one
forward pass of seeded smooth noise (:func:`calibrate_batchnorm`): with the initial statistics (mean 0, var 1)
eval-mode activations grow to ~1e4 over a hundred layers and saturate the model's tanh on appearance features,
so the demo's random features would carry almost nothing. Pretrained weights are used exactly as loaded. :func:`fold_batchnorm` gives the inference copy the
extractor runs.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from dualvgr.features.backbones.resnet import ResNetAppearance, resnet101_trunk
from dualvgr.features.backbones.resnext3d import ResNeXt3D, pooled_grid, resnext3d_101
from dualvgr.features.weights import BackboneWeights, load_weights

__all__ = [
    "ResNeXt3D",
    "ResNetAppearance",
    "build_appearance_backbone",
    "build_motion_backbone",
    "calibrate_batchnorm",
    "fold_batchnorm",
    "pooled_grid",
]
_CONVS = (nn.Conv2d, nn.Conv3d)
CALIBRATION_POSITIONS = 64  # samples per channel the deepest BatchNorm sees when calibrating random weights
_NORMS = (nn.BatchNorm2d, nn.BatchNorm3d)


@contextmanager
def _seeded(seed: int | None):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0 if seed is None else seed)
        yield


def _check_backbone(weights: BackboneWeights, expected: str) -> None:
    if weights.backbone != expected:
        raise ValueError(f"weights resolved for {weights.backbone} cannot build {expected}")


def build_appearance_backbone(weights: BackboneWeights) -> ResNetAppearance:
    """ResNet-101 trunk with ``weights`` loaded (strict), fc dropped, eval mode."""
    _check_backbone(weights, "resnet101")
    with _seeded(weights.seed):
        net = resnet101_trunk()
        model = ResNetAppearance(net)
        if weights.is_random:
            # Normalised frames: 1/f colour noise around 0 with unit spread; 8 at 96x96 give the last stage's
            # BatchNorm 72 positions per channel.
            calibrate_batchnorm(model, _smooth_noise((8, 3), (6, 6), (96, 96)))
    load_weights(net, weights)
    return model.eval()


def build_motion_backbone(weights: BackboneWeights, *, sample_size: int, sample_duration: int) -> ResNeXt3D:
    """3D ResNeXt-101 whose fixed pooling kernel is built for ``sample_size`` frames of ``sample_duration``."""
    _check_backbone(weights, "resnext101")
    with _seeded(weights.seed):
        net = resnext3d_101(sample_size=sample_size, sample_duration=sample_duration)
        if weights.is_random:
            # Raw 0..255 clips, as the motion network is fed (dualvgr-original.md §2.3); enough clips that the
            # last stage's BatchNorm sees >= 64 positions per channel (1 per clip at 32x32).
            positions = math.ceil(sample_duration / 16) * math.ceil(sample_size / 32) ** 2
            clips = max(4, math.ceil(CALIBRATION_POSITIONS / positions))
            size = (sample_duration, sample_size, sample_size)
            noise = _smooth_noise((clips, 3), (max(1, sample_duration // 4), 4, 4), size)
            calibrate_batchnorm(net, noise.sigmoid() * 255.0)
    load_weights(net, weights)
    return net.eval()


def _smooth_noise(leading: tuple[int, ...], coarse: tuple[int, ...], size: tuple[int, ...]) -> torch.Tensor:
    """Seeded (by the caller's RNG) noise with a natural-image-like 1/f spectrum: N(0, 1) octaves from ``coarse``
    up to ``size``, each interpolated to ``size`` and weighted by its scale, normalised to unit spread."""
    mode = "bilinear" if len(size) == 2 else "trilinear"
    total = torch.zeros(*leading, *size)
    grid, weight = list(coarse), 1.0
    while True:
        octave = torch.randn(*leading, *grid)
        total += weight * torch.nn.functional.interpolate(octave, size=size, mode=mode, align_corners=False)
        if all(g >= s for g, s in zip(grid, size)):
            break
        grid, weight = [min(2 * g, s) for g, s in zip(grid, size)], weight / 2
    return total / total.std()


def calibrate_batchnorm(model: nn.Module, sample: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of one forward pass of ``sample`` (random weights)."""
    norms = [module for module in model.modules() if isinstance(module, _NORMS)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: exactly this batch's statistics
        norm.train()
    with torch.no_grad():
        model(sample)
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with each eval-mode BatchNorm folded into the convolution it follows.

    Both backbones name their pairs ``conv{i}``/``bn{i}`` (stem and bottlenecks) and ``downsample = [conv, bn]``.
    The function is the same up to float32 rounding (measured 5e-7 relative on the pooled features; TF32 would
    be 1e-3, B40) and runs one pass fewer per layer (about 1.1-1.2x on a CPU). ``model`` is left unchanged.
    """
    folded = copy.deepcopy(model)
    for module in folded.modules():
        for index in (1, 2, 3):
            conv, norm = getattr(module, f"conv{index}", None), getattr(module, f"bn{index}", None)
            if isinstance(conv, _CONVS) and isinstance(norm, _NORMS):
                setattr(module, f"conv{index}", fuse_conv_bn_eval(conv, norm))
                setattr(module, f"bn{index}", nn.Identity())
        downsample = getattr(module, "downsample", None)
        if isinstance(downsample, nn.Sequential) and len(downsample) == 2:
            conv, norm = downsample
            if isinstance(conv, _CONVS) and isinstance(norm, _NORMS):
                downsample[0], downsample[1] = fuse_conv_bn_eval(conv, norm), nn.Identity()
    return folded
