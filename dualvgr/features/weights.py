"""Backbone weights as values that carry their provenance: source, file, sha256 (house style item 7).

Sources (``dualvgr-original.md`` §2.4-2.5, bugs B7, B10); which named ones a backbone accepts is its registry
entry's business (:mod:`dualvgr.features.registry`), this module only implements them:

- a file path: any torch checkpoint holding a state dict, bare or wrapped as ``{'state_dict': ...}`` (Hara's
  ``resnext-101-kinetics.pth`` adds ``epoch``/``arch``/``optimizer``); a ``module.`` prefix left by
  ``nn.DataParallel`` is stripped; loading is ``strict=True``; the file's sha256 is recorded.
- ``imagenet`` (ResNet-101): torchvision's IMAGENET1K_V1 file, the weights of the original's
  ``pretrained=True`` (not V2, B7), read offline from torchvision's cache; its name carries the first 8 hex
  digits of its sha256, which we check.
- ``kinetics`` (3D ResNeXt-101): not downloadable (Hara distributes it from a shared drive), so it is an error
  asking for the file's path.
- ``random``: the architecture's own initialisation from a fixed seed (shards and reruns get identical
  weights). Refused unless the caller allows it: the features are meaningless except as plumbing.

Files are hashed through a :class:`~dualvgr.core.fingerprint.StatCache` (a 170 MB checkpoint is read once, not
on every run); without one, they are hashed every time.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet101_Weights

from dualvgr.core.errors import DataError, SpecError
from dualvgr.core.fingerprint import StatCache

IMAGENET_WEIGHTS = ResNet101_Weights.IMAGENET1K_V1  # = the original's pretrained=True (B7)
KINETICS_FILE = "resnext-101-kinetics.pth"
KINETICS_SOURCE = (
    "Kensho Hara's video-classification-3d-cnn-pytorch README (the 'pretrained models' Google Drive link)"
)


@dataclass(frozen=True)
class BackboneWeights:
    """Which weights a backbone gets and where they came from."""

    backbone: str  # the registry name of the backbone they fit ('resnet101', 'resnext101')
    source: str  # 'file', 'imagenet' or 'random'
    path: Path | None = None  # the file read, for 'file' and 'imagenet'
    sha256: str | None = None  # of that file
    seed: int | None = None  # for 'random'

    @property
    def is_random(self) -> bool:
        return self.source == "random"

    def describe(self) -> str:
        if self.is_random:
            return f"{self.backbone}: random weights (seed {self.seed}), features only exercise the pipeline"
        return f"{self.backbone}: {self.source} weights from {self.path} (sha256 {self.sha256})"

    def attrs(self) -> dict[str, object]:
        """What an output file records about these weights (the path is machine-specific and left out)."""
        return {
            "weights_source": self.source,
            "weights_sha256": self.sha256 or "",
            "weights_seed": -1 if self.seed is None else self.seed,
        }


@dataclass(frozen=True)
class WeightRequest:
    """What a named weights source is asked for: the backbone, and the caller's permissions."""

    backbone: str
    checkpoint_hint: str  # what a checkpoint for this backbone is, for messages ("a checkpoint path or 'imagenet'")
    allow_random: bool
    seed: int
    cache: StatCache


def random_weights(request: WeightRequest) -> BackboneWeights:
    if not request.allow_random:
        raise SpecError(
            f"{request.backbone}: random weights refused: the features would carry no visual information. For a "
            f"demo or a test, allow them explicitly (features.allow_random_weights: true); otherwise give "
            f"{request.checkpoint_hint}"
        )
    return BackboneWeights(request.backbone, "random", seed=request.seed)


def kinetics_weights(request: WeightRequest) -> BackboneWeights:
    raise SpecError(
        f"{request.backbone}: 'kinetics' weights cannot be downloaded automatically; download {KINETICS_FILE} "
        f"from {KINETICS_SOURCE} and give its path as the motion weights (the original looked for "
        f"./pretrained/{KINETICS_FILE} relative to the working directory, B10)"
    )


def imagenet_weights_path() -> Path:
    """Where torchvision's cache keeps the IMAGENET1K_V1 ResNet-101 file ($TORCH_HOME/hub/checkpoints/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_WEIGHTS.url.rsplit("/", 1)[-1]


def imagenet_weights(request: WeightRequest) -> BackboneWeights:
    path = imagenet_weights_path()
    if not path.is_file():
        raise DataError(
            f"{request.backbone}: ImageNet weights (IMAGENET1K_V1, the original's pretrained=True) not found at "
            f"{path}. This harness does not download during a run: `dualvgr fetch -e <experiment>` downloads and "
            f"checks it (or fetch {IMAGENET_WEIGHTS.url} elsewhere and place it at {path}; the directory follows "
            f"$TORCH_HOME), or give the file's path as the appearance weights"
        )
    digest = request.cache.sha256(path)
    expected_prefix = path.stem.rsplit("-", 1)[-1]  # torchvision names files <arch>-<sha256[:8]>.pth
    if not digest.startswith(expected_prefix):
        raise DataError(
            f"{request.backbone}: {path} has sha256 {digest}, but its name promises a hash starting "
            f"{expected_prefix}: the file is corrupt or not IMAGENET1K_V1 (V2 would change the features, B7); "
            f"download {IMAGENET_WEIGHTS.url} again"
        )
    return BackboneWeights(request.backbone, "imagenet", path=path, sha256=digest)


def file_weights(path: str | os.PathLike, backbone: str, cache: StatCache) -> BackboneWeights:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{backbone}: weights file not found: {path}")
    return BackboneWeights(backbone, "file", path=path, sha256=cache.sha256(path, progress=True))


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint file: unwrapped from ``{'state_dict': ...}``, ``module.`` stripped."""
    try:
        # weights_only (torch >= 2.6 default) reads Hara's dict of tensors, ints, strings and optimizer state.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise DataError(
            f"{path}: refused by torch.load(weights_only=True), the file pickles more than tensors ({error}). If "
            f"you trust it, re-save only its state dict: torch.save(torch.load(path, weights_only=False)"
            f"['state_dict'], 'clean.pth') and give clean.pth"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise DataError(f"{path}: not a readable torch checkpoint ({error})") from error
    if isinstance(checkpoint, Mapping) and "state_dict" in checkpoint:
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise DataError(
            f"{path}: expected a state dict (name -> tensor), bare or under 'state_dict', "
            f"got {type(checkpoint).__name__}"
        )
    if checkpoint and all(key.startswith("module.") for key in checkpoint):  # saved from nn.DataParallel (B10)
        checkpoint = {key[len("module.") :]: value for key, value in checkpoint.items()}
    return dict(checkpoint)


def load_weights(model: nn.Module, weights: BackboneWeights) -> None:
    """Load a file's state dict into ``model`` with ``strict=True``; random weights need nothing."""
    if weights.is_random:
        return
    assert weights.path is not None, f"{weights.source} weights without a path"
    state_dict = read_state_dict(weights.path)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        expected = list(model.state_dict())
        raise DataError(
            f"{weights.path} does not fit the {weights.backbone} architecture ({len(state_dict)} entries, "
            f"expected {len(expected)}, e.g. {', '.join(expected[:3])}): {_first_lines(str(error))}"
        ) from error


def _first_lines(text: str, count: int = 4) -> str:
    lines = text.strip().splitlines()
    return " ".join(line.strip() for line in lines[:count]) + (" ..." if len(lines) > count else "")
