"""The backbone registry: config values -> entries; the feature stages and the extraction only read entries."""

from __future__ import annotations

import dataclasses

import h5py
import pytest
import torch
from torch import nn

from dualvgr.core.errors import SpecError
from dualvgr.core.schema import AppearanceSpec, MotionSpec
from dualvgr.core.spec import spec_from_dict
from dualvgr.features import AppearanceSettings, extract_features
from dualvgr.features.registry import BACKBONES, backbone_entry, resolve_weights
from dualvgr.features.stage import feature_params, feature_settings
from dualvgr.features.weights import random_weights


def _toy_entry() -> dict:
    """A registry entry written outside the package: an 8-wide per-frame network."""

    def build(weights, settings):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(weights.seed)
            return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()

    return dataclasses.replace(
        BACKBONES["resnet101"], name="toy", feature_dim=8, weight_sources={"random": random_weights},
        checkpoint_hint="a toy checkpoint path", build=build, fingerprint=lambda settings: {"toy": 1},
    )


def test_schema_defaults_name_registered_entries_of_their_kind():
    assert backbone_entry(AppearanceSpec().backbone, "appearance").name == "resnet101"
    assert backbone_entry(MotionSpec().backbone, "motion").name == "resnext101"
    assert {name: entry.feature_dim for name, entry in BACKBONES.items()} == {"resnet101": 2048, "resnext101": 2048}


def test_unknown_backbone_is_an_error_listing_the_registered_ones():
    with pytest.raises(SpecError) as error:
        backbone_entry("vgg16", "appearance")
    assert str(error.value) == (
        "features.appearance.backbone 'vgg16' is not a registered appearance backbone: registered are resnet101"
    )
    with pytest.raises(SpecError) as error:
        resolve_weights("random", "vgg16", allow_random=True)
    assert str(error.value) == "'vgg16' is not a registered backbone: registered are resnet101, resnext101"


def test_backbone_of_the_other_kind_is_refused_before_anything_runs(videos, appearance_weights, tmp_path):
    with pytest.raises(SpecError) as error:
        extract_features(videos, AppearanceSettings(num_clips=3, backbone="resnext101"), appearance_weights,
                         tmp_path / "x.h5", progress=False)
    assert str(error.value) == (
        "features.appearance.backbone 'resnext101' is not a registered appearance backbone (resnext101 is a motion "
        "backbone): registered are resnet101"
    )
    assert not (tmp_path / "x.h5").exists()


def test_the_backbone_keys_are_read_and_enter_the_fingerprint(monkeypatch):
    spec = spec_from_dict({"name": "registry", "features": {"motion": {"sample_size": 112}}})
    assert feature_settings(spec, "motion").backbone == spec.features.motion.backbone
    motion = feature_params(spec, "motion")["backbone"]
    assert motion == BACKBONES["resnext101"].fingerprint(feature_settings(spec, "motion"))
    assert motion["sample_size"] == 112, "the 3D ResNeXt's pooling kernel is part of its network"
    other = spec_from_dict({"name": "registry", "features": {"motion": {"sample_size": 32, "image_size": 32}}})
    assert feature_params(other, "motion")["backbone"] != motion

    monkeypatch.setitem(BACKBONES, "toy", _toy_entry())
    spec.features.appearance.backbone = "toy"  # the schema's Literal admits only resnet101 today
    assert feature_settings(spec, "appearance").backbone == "toy"
    assert feature_params(spec, "appearance")["backbone"] == {"toy": 1}


def test_a_registered_backbone_is_extracted_without_any_other_change(videos, tmp_path, monkeypatch):
    monkeypatch.setitem(BACKBONES, "toy", _toy_entry())
    weights = resolve_weights("random", "toy", allow_random=True, seed=0)
    settings = AppearanceSettings(num_clips=3, frames_per_clip=4, image_size=32, backbone="toy")
    out = tmp_path / "toy.h5"
    result = extract_features(videos, settings, weights, out, progress=False)
    assert result.width == 8 and result.num_extracted == len(videos)
    with h5py.File(out, "r") as handle:
        assert handle["resnet_features"].shape == (len(videos), 3, 4, 8), "the entry's width, the kind's layout"
        assert handle.attrs["backbone"] == "toy"
        assert handle["resnet_features"][:].std(axis=0).mean() > 0, "features differ by video"
    with pytest.raises(SpecError, match="weights 'imagenet' do not exist for toy: use one of random"):
        resolve_weights("imagenet", "toy")
