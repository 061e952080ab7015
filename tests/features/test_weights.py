"""Weights sources and checkpoint loading (dualvgr-original.md §2.4-2.5, B7, B10)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import pytest
import torch

from dualvgr.core import fingerprint
from dualvgr.core.errors import DataError, SpecError
from dualvgr.core.fingerprint import stat_cache_in
from dualvgr.features import build_appearance_backbone, build_motion_backbone, resolve_weights
from dualvgr.features.backbones.resnext3d import resnext3d_101
from dualvgr.features.weights import imagenet_weights_path, read_state_dict


def _hara_checkpoint(model: torch.nn.Module) -> dict:
    """The layout of resnext-101-kinetics.pth: DataParallel keys inside a training checkpoint."""
    state_dict = OrderedDict((f"module.{key}", value) for key, value in model.state_dict().items())
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]}
    return {"epoch": 200, "arch": "resnext-101", "state_dict": state_dict, "optimizer": optimizer}


def test_b10_hara_kinetics_checkpoint_loads_strictly(tmp_path):
    source = resnext3d_101()
    with torch.no_grad():
        source.conv1.weight.add_(1.0)  # differs from any seeded init
        source.layer4[2].bn3.running_var.fill_(3.0)
    path = tmp_path / "resnext-101-kinetics.pth"
    torch.save(_hara_checkpoint(source), path)

    weights = resolve_weights(path, "resnext101")
    assert weights.source == "file" and weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    model = build_motion_backbone(weights, sample_size=112, sample_duration=16)
    assert not model.training, "feature backbones run in eval mode"
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), f"{key} not loaded"


def test_checkpoint_without_batchnorm_counters_loads(tmp_path):
    """Checkpoints saved before torch 0.4.1 have no num_batches_tracked entries (Hara's is from 2017)."""
    source = resnext3d_101(sample_size=32, sample_duration=8)
    legacy = {key: value for key, value in source.state_dict().items() if not key.endswith("num_batches_tracked")}
    path = tmp_path / "legacy.pth"
    torch.save({"state_dict": {f"module.{key}": value for key, value in legacy.items()}}, path)
    build_motion_backbone(resolve_weights(path, "resnext101"), sample_size=32, sample_duration=8)


def test_appearance_file_in_torchvision_layout_loads(tmp_path):
    source = build_appearance_backbone(resolve_weights("random", "resnet101", allow_random=True, seed=3)).net
    path = tmp_path / "resnet101.pth"
    torch.save({**source.state_dict(), "fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}, path)
    model = build_appearance_backbone(resolve_weights(path, "resnet101"))
    assert torch.equal(model.net.conv1.weight, source.conv1.weight)


def test_wrong_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "not-resnext.pth"
    torch.save({"state_dict": {"module.conv1.weight": torch.zeros(64, 3, 7, 7, 7)}}, path)
    with pytest.raises(DataError, match=r"does not fit the resnext101 architecture .*Missing key"):
        build_motion_backbone(resolve_weights(path, "resnext101"), sample_size=112, sample_duration=16)


def test_read_state_dict_unwraps_and_strips_the_prefix(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 1, "state_dict": {"module.a": torch.ones(1), "module.b.c": torch.zeros(2)}}, path)
    assert sorted(read_state_dict(path)) == ["a", "b.c"]


def test_random_weights_are_refused_unless_allowed():
    with pytest.raises(SpecError, match=r"random weights refused.*allow_random_weights: true"):
        resolve_weights("random", "resnext101")
    weights = resolve_weights("random", "resnext101", allow_random=True, seed=5)
    assert weights.is_random and weights.seed == 5 and "random" in weights.describe()


def test_random_weights_are_reproducible():
    weights = resolve_weights("random", "resnext101", allow_random=True, seed=1)
    first = build_motion_backbone(weights, sample_size=32, sample_duration=8)
    torch.manual_seed(123)  # the global RNG must not matter
    second = build_motion_backbone(weights, sample_size=32, sample_duration=8)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_imagenet_offline_error_says_which_file_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    expected = tmp_path / "torch-home" / "hub" / "checkpoints" / "resnet101-63fe2227.pth"
    assert imagenet_weights_path() == expected
    with pytest.raises(DataError) as error:
        resolve_weights("imagenet", "resnet101")
    message = str(error.value)
    assert str(expected) in message, "must say where to place the file"
    assert "https://download.pytorch.org/models/resnet101-63fe2227.pth" in message, "must say where to download it"
    assert "IMAGENET1K_V1" in message
    assert "does not download during a run: `dualvgr fetch -e <experiment>` downloads and checks it" in message, \
        "a run never downloads; it names the command that does"


def test_b7_imagenet_file_with_the_wrong_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    imagenet_weights_path().parent.mkdir(parents=True)
    imagenet_weights_path().write_bytes(b"not the V1 weights")
    with pytest.raises(DataError, match="not IMAGENET1K_V1"):
        resolve_weights("imagenet", "resnet101")


def test_named_sources_fit_their_backbone():
    with pytest.raises(SpecError, match="cannot be downloaded.*resnext-101-kinetics.pth"):
        resolve_weights("kinetics", "resnext101")
    with pytest.raises(SpecError, match="'imagenet' do not exist for resnext101"):
        resolve_weights("imagenet", "resnext101")
    with pytest.raises(SpecError, match="'kinetics' do not exist for resnet101"):
        resolve_weights("kinetics", "resnet101")


def test_missing_weights_file(tmp_path):
    with pytest.raises(DataError, match="weights file not found"):
        resolve_weights(tmp_path / "absent.pth", "resnet101")


def test_weights_file_is_hashed_once_through_the_stat_cache(tmp_path, monkeypatch):
    """A 170 MB checkpoint is read once, not on every run: its digest is remembered by (size, mtime, inode...)."""
    monkeypatch.setattr(fingerprint, "RACY_SECONDS", 0.0)  # just written; trust it at once
    path = tmp_path / "resnet101.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    first_cache = stat_cache_in(tmp_path / "outputs")
    first = resolve_weights(path, "resnet101", cache=first_cache)
    assert first.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and first_cache.hashed == [path]
    again_cache = stat_cache_in(tmp_path / "outputs")  # the next run
    assert resolve_weights(path, "resnet101", cache=again_cache) == first
    assert again_cache.hashed == [], "an unchanged weights file must not be read again"
    torch.save({"conv1.weight": torch.ones(1)}, path)  # same size, other content
    changed_cache = stat_cache_in(tmp_path / "outputs")
    assert resolve_weights(path, "resnet101", cache=changed_cache).sha256 != first.sha256
