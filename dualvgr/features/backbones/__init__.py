"""The two feature backbones, built with their weights: ResNet-101 (appearance) and 3D ResNeXt-101 (motion).

Both come back in eval mode (BatchNorm uses its running statistics, as the original's ``model.eval()``).
Random weights are drawn from their seed in a forked RNG, so the global torch RNG is untouched and every
process (shards, reruns) builds the same network. Random networks also get BatchNorm statistics from one
forward pass of seeded noise (and, for the 3D network, damped residual branches) (:func:`calibrate_batchnorm`): with the initial
statistics (mean 0, var 1) eval-mode activations grow to ~1e4 over a hundred layers (or 1e9 in the 3D network
at 32x32) and saturate the model's tanh on appearance features, so the demo's random features would carry almost
nothing. Pretrained weights are used exactly as loaded. :func:`fold_batchnorm` gives the inference copy the
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
MOTION_BRANCH_GAIN = 0.7  # random 3D ResNeXt only: see calibrate_batchnorm
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
        load_weights(net, weights)
        model = ResNetAppearance(net)  # drops fc, so it comes after loading a full state dict
        if weights.is_random:
            # Normalised frames: 1/f colour noise and white noise around 0 with unit spread (natural frames
            # lie between the two); 8 at 96x96 give the last stage's BatchNorm 72 positions per channel.
            calibrate_batchnorm(model, torch.cat([_smooth_noise((4, 3), (6, 6), (96, 96)), torch.randn(4, 3, 96, 96)]),
                                branch_gain=1.0)
    return model.eval()


def build_motion_backbone(weights: BackboneWeights, *, sample_size: int, sample_duration: int) -> ResNeXt3D:
    """3D ResNeXt-101 whose fixed pooling kernel is built for ``sample_size`` frames of ``sample_duration``."""
    _check_backbone(weights, "resnext101")
    with _seeded(weights.seed):
        net = resnext3d_101(sample_size=sample_size, sample_duration=sample_duration)
        if weights.is_random:
            # Raw 0..255 clips, as the motion network is fed (dualvgr-original.md §2.3), half smooth, half white
            # noise; enough clips that the last stage's BatchNorm sees >= 64 positions per channel.
            positions = math.ceil(sample_duration / 16) * math.ceil(sample_size / 32) ** 2
            clips = max(4, math.ceil(CALIBRATION_POSITIONS / positions))
            size = (sample_duration, sample_size, sample_size)
            smooth = _smooth_noise((clips - clips // 2, 3), (max(1, sample_duration // 4), 4, 4), size).sigmoid()
            calibrate_batchnorm(net, torch.cat([smooth, torch.rand(clips // 2, 3, *size)]) * 255.0,
                                branch_gain=MOTION_BRANCH_GAIN)
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


def calibrate_batchnorm(model: nn.Module, sample: torch.Tensor, *, branch_gain: float = 1.0) -> None:
    """Random weights only: every BatchNorm's running statistics from one forward pass of ``sample``, then each
    residual branch's output scaled by ``branch_gain``."""
    norms = [module for module in model.modules() if isinstance(module, _NORMS)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: exactly this batch's statistics
        norm.train()
    with torch.no_grad():
        model(sample)
        for norm in norms:
            norm.momentum = 0.1
        # The random 3D ResNeXt with unit-gain branches is chaotic: it amplifies any rounding difference (folded
        # BatchNorm, another batch shape) to ~1e-3 of its output. Scaling each residual branch's output (the
        # last BatchNorm of a bottleneck) by 0.7 makes it stable (~3e-5) while features stay distinct by video.
        for module in model.modules():
            last = getattr(module, "bn3", None)
            if branch_gain != 1.0 and isinstance(last, _NORMS) and getattr(module, "conv3", None) is not None:
                last.weight.mul_(branch_gain)
                last.bias.mul_(branch_gain)
    model.eval()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with each eval-mode BatchNorm folded into the convolution it follows.

    Both backbones name their pairs ``conv{i}``/``bn{i}`` (stem and bottlenecks) and ``downsample = [conv, bn]``.
    The function is the same up to float32 rounding and runs one pass fewer per layer (about 1.1-1.2x on a CPU).
    A pair is left unfolded where its channels' running mean is large against their spread
    (|mean| / std > ``FOLD_MEAN_TO_STD``): there the folded bias cancels a large convolution output, and float32
    rounding would move the result by ~1e-7 x |mean| / std of its scale. ``model`` is left unchanged.
    """
    folded = copy.deepcopy(model)
    for module in folded.modules():
        for index in (1, 2, 3):
            conv, norm = getattr(module, f"conv{index}", None), getattr(module, f"bn{index}", None)
            if _foldable(conv, norm):
                setattr(module, f"conv{index}", fuse_conv_bn_eval(conv, norm))
                setattr(module, f"bn{index}", nn.Identity())
        downsample = getattr(module, "downsample", None)
        if isinstance(downsample, nn.Sequential) and len(downsample) == 2 and _foldable(*downsample):
            downsample[0], downsample[1] = fuse_conv_bn_eval(*downsample), nn.Identity()
    return folded


FOLD_MEAN_TO_STD = 100.0


def _foldable(conv: object, norm: object) -> bool:
    if not (isinstance(conv, _CONVS) and isinstance(norm, _NORMS)):
        return False
    ratio = norm.running_mean.abs() / torch.sqrt(norm.running_var + norm.eps)
    return bool(ratio.max() <= FOLD_MEAN_TO_STD)
