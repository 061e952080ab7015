"""3D ResNeXt-101 (32x4d, shortcut B) for motion features, written bottom-up.

Follows ``dualvgr-original.md`` §2.5: the architecture of Kensho Hara's ``video-classification-3d-cnn-pytorch``
``models/resnext.py`` as DualVGR/HCRN build it (``resnet101(num_classes=400, shortcut_type='B',
cardinality=32, sample_size=112, sample_duration=16, last_fc=False)``). Parameter names are Hara's, so
``resnext-101-kinetics.pth`` loads with ``strict=True`` once its ``module.`` prefix is stripped (B10):
48,340,816 parameters, 626 state-dict entries.

The pooling kernel is **fixed** at construction from ``sample_size``/``sample_duration``
(``AvgPool3d((ceil(D/16), ceil(S/32), ceil(S/32)), stride=1)``), not adaptive. Frames of another size give
a wider feature (224x224 frames with a 112 kernel: 2048 x 4 x 4 = 32768, bug B20); :func:`pooled_grid`
predicts that width so callers can refuse it before running the network. The fc layer exists (it is in the
checkpoint) but :meth:`ResNeXt3D.forward_features` stops before it, as the original's ``last_fc=False``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

EXPANSION = 2  # ResNeXtBottleneck widens planes x2: outputs 256/512/1024/2048 channels
FEATURE_DIM = 1024 * EXPANSION  # 2048, the width of one pooled position
STAGE_PLANES = (128, 256, 512, 1024)


def pooled_grid(
    frames: int, height: int, width: int, *, sample_duration: int, sample_size: int
) -> tuple[int, int, int]:
    """(time, height, width) positions left after the fixed average pool, for input clips of that size.

    Every stride-2 stage rounds up, so layer4 is ceil(frames/16) x ceil(h/32) x ceil(w/32); the pool kernel is
    ceil(sample_duration/16) x ceil(sample_size/32)^2 with stride 1. A position count <= 0 means the network
    cannot run (the kernel is larger than the map). The feature width is 2048 x t x h x w.
    """
    kernel_t, kernel_s = math.ceil(sample_duration / 16), math.ceil(sample_size / 32)
    return (
        math.ceil(frames / 16) - kernel_t + 1,
        math.ceil(height / 32) - kernel_s + 1,
        math.ceil(width / 32) - kernel_s + 1,
    )


def conv3x3x3(in_planes: int, out_planes: int, *, stride: int = 1, groups: int = 1) -> nn.Conv3d:
    return nn.Conv3d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1x1(in_planes: int, out_planes: int, *, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ResNeXtBottleneck(nn.Module):
    """1x1x1 reduce -> grouped 3x3x3 (stride here) -> 1x1x1 expand, plus the (projected) shortcut."""

    def __init__(
        self, inplanes: int, planes: int, *, cardinality: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        mid_planes = cardinality * (planes // 32)  # 128/256/512/1024 for cardinality 32
        self.conv1 = conv1x1x1(inplanes, mid_planes)
        self.bn1 = nn.BatchNorm3d(mid_planes)
        self.conv2 = conv3x3x3(mid_planes, mid_planes, stride=stride, groups=cardinality)
        self.bn2 = nn.BatchNorm3d(mid_planes)
        self.conv3 = conv1x1x1(mid_planes, planes * EXPANSION)
        self.bn3 = nn.BatchNorm3d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNeXt3D(nn.Module):
    """Hara's 3D ResNeXt: clips (B, 3, T, H, W) -> pooled features (B, 2048 x pooled positions)."""

    def __init__(
        self,
        layers: Sequence[int],
        *,
        sample_size: int,
        sample_duration: int,
        cardinality: int = 32,
        num_classes: int = 400,
    ) -> None:
        super().__init__()
        self.sample_size = sample_size
        self.sample_duration = sample_duration
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for index, (planes, blocks) in enumerate(zip(STAGE_PLANES, layers, strict=True)):
            stride = 1 if index == 0 else 2
            stage, inplanes = _make_stage(inplanes, planes, blocks, cardinality=cardinality, stride=stride)
            self.add_module(f"layer{index + 1}", stage)
        # Fixed kernel sized for sample_size x sample_size frames (see pooled_grid and B20).
        kernel_t, kernel_s = math.ceil(sample_duration / 16), math.ceil(sample_size / 32)
        self.avgpool = nn.AvgPool3d((kernel_t, kernel_s, kernel_s), stride=1)
        self.fc = nn.Linear(cardinality * 32 * EXPANSION, num_classes)  # in the checkpoint, unused for features
        _init_like_hara(self)

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(clips))))  # (B, 64, T/2, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 2048, T/16, H/32, W/32)
        x = self.avgpool(x)  # (B, 2048, t, h, w): 1x1x1 when frames match sample_size/duration
        return x.flatten(1)  # (B, 2048 * t * h * w), flattened c-major like the original's view

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)  # Kinetics-400 logits; DualVGR never calls it

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.forward_features(clips)


def _make_stage(inplanes: int, planes: int, blocks: int, *, cardinality: int, stride: int) -> tuple[nn.Sequential, int]:
    out_planes = planes * EXPANSION
    downsample = None
    if stride != 1 or inplanes != out_planes:  # shortcut B: projection only where the shape changes
        downsample = nn.Sequential(conv1x1x1(inplanes, out_planes, stride=stride), nn.BatchNorm3d(out_planes))
    first = ResNeXtBottleneck(inplanes, planes, cardinality=cardinality, stride=stride, downsample=downsample)
    rest = [ResNeXtBottleneck(out_planes, planes, cardinality=cardinality) for _ in range(1, blocks)]
    return nn.Sequential(first, *rest), out_planes


def _init_like_hara(model: nn.Module) -> None:
    """Hara's init (only matters for random weights): N(0, sqrt(2/n)), n = kT*kH*out_channels; BN 1/0."""
    for module in model.modules():
        if isinstance(module, nn.Conv3d):
            n = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / n))
        elif isinstance(module, nn.BatchNorm3d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def _resnext3d(layers: Sequence[int], *, sample_size: int, sample_duration: int, num_classes: int) -> ResNeXt3D:
    return ResNeXt3D(layers, sample_size=sample_size, sample_duration=sample_duration, num_classes=num_classes)


def resnext3d_101(*, sample_size: int = 112, sample_duration: int = 16, num_classes: int = 400) -> ResNeXt3D:
    """ResNeXt-101 32x4d as in the Kinetics checkpoint; sizes default to Hara's (112x112, 16 frames)."""
    return _resnext3d([3, 4, 23, 3], sample_size=sample_size, sample_duration=sample_duration, num_classes=num_classes)
