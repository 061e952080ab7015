"""ResNet-101 up to global average pooling, for appearance features.

Follows ``dualvgr-original.md`` §2.4: torchvision's ``resnet101`` with the fc layer dropped
(``nn.Sequential(children[:-1])`` in the original), i.e. conv1 ... layer4 and ``AdaptiveAvgPool2d(1)``, so any
frame size gives 2048 features per frame. Pretrained weights are IMAGENET1K_V1, what the original's
``pretrained=True`` loaded (never ``DEFAULT``/V2, bug B7). We keep torchvision's module and its parameter
names, so a torchvision state dict loads with ``strict=True``, and replace ``fc`` by an identity.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import ResNet, resnet101

FEATURE_DIM = 2048


class ResNetAppearance(nn.Module):
    """Frames (B, 3, H, W), normalised -> pooled features (B, 2048)."""

    def __init__(self, net: ResNet) -> None:
        super().__init__()
        net.fc = nn.Identity()  # the original dropped the last child; the pooled, flattened vector remains
        self.net = net

    def forward_features(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)  # (B, 2048)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.forward_features(frames)


def resnet101_trunk() -> ResNet:
    """A randomly initialised torchvision ResNet-101 (fc still present, so full state dicts load strictly)."""
    return resnet101(weights=None)
