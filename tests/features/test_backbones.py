"""The two backbones: Hara's 3D ResNeXt-101 layout and pooling, torchvision's ResNet-101 trunk (§2.4-2.5)."""

from __future__ import annotations

import copy

import pytest
import torch

from dualvgr.core.errors import DataError, SpecError
from dualvgr.features import MotionSettings
from dualvgr.features.backbones import fold_batchnorm
from dualvgr.features.backbones.resnext3d import pooled_grid, resnext3d_101
from dualvgr.features.settings import check_motion_width


def test_resnext101_has_the_kinetics_checkpoint_layout():
    model = resnext3d_101()
    state_dict = model.state_dict()
    assert len(state_dict) == 626, f"{len(state_dict)} state-dict entries, the checkpoint has 626"
    assert sum(p.numel() for p in model.parameters()) == 48_340_816
    assert state_dict["layer1.0.conv2.weight"].shape == (128, 4, 3, 3, 3), "grouped 3x3x3, cardinality 32"
    assert state_dict["layer4.0.downsample.0.weight"].shape == (2048, 1024, 1, 1, 1), "shortcut B projection"
    assert state_dict["fc.weight"].shape == (400, 2048), "fc present (unused)"
    assert model.avgpool.kernel_size == (1, 4, 4) and model.avgpool.stride == 1


@pytest.mark.parametrize("frames, height, width", [(8, 32, 32), (8, 64, 40), (17, 48, 33)])
def test_pooled_grid_predicts_the_width(motion_model, frames, height, width):
    """motion_model pools with a 1x1x1 kernel (built for 8 frames of 32x32): every layer4 position survives."""
    with torch.inference_mode():
        produced = motion_model(torch.rand(1, 3, frames, height, width) * 255).shape[1]
    grid = pooled_grid(frames, height, width, sample_duration=8, sample_size=32)
    assert produced == 2048 * grid[0] * grid[1] * grid[2], f"predicted grid {grid}, the network gave width {produced}"


def test_pooled_grid_with_a_larger_kernel():
    model = resnext3d_101(sample_size=64, sample_duration=8).eval()  # kernel 1x2x2
    with torch.inference_mode():
        produced = model(torch.rand(1, 3, 8, 96, 96) * 255).shape[1]
    assert pooled_grid(8, 96, 96, sample_duration=8, sample_size=64) == (1, 2, 2) and produced == 2048 * 4


def test_b20_224_frames_with_a_112_kernel_give_32768():
    assert pooled_grid(16, 224, 224, sample_duration=16, sample_size=112) == (1, 4, 4)
    assert MotionSettings(num_clips=8, image_size=224).feature_width == 32768


def test_b20_motion_guard_refuses_224_before_running():
    settings = MotionSettings(num_clips=8, image_size=224)
    with pytest.raises(SpecError) as error:
        settings.check_pooling()
    message = str(error.value)
    assert "32768 wide, expected 2048" in message
    assert "fixed 4x4 kernel sized for 112x112" in message and "image_size: 112" in message, message
    MotionSettings(num_clips=8).check_pooling()  # the faithful 112 passes
    MotionSettings(num_clips=8, frames_per_clip=8, image_size=32, sample_size=32, sample_duration=8).check_pooling()


def test_b20_produced_width_is_checked_too():
    settings = MotionSettings(num_clips=8)
    with pytest.raises(DataError, match="out.h5: motion features are 32768 wide"):
        check_motion_width(32768, settings, where="out.h5")
    check_motion_width(2048, settings, where="out.h5")


def test_frames_smaller_than_the_kernel_are_refused():
    with pytest.raises(SpecError, match="smaller than the 3D ResNeXt's fixed pooling kernel"):
        MotionSettings(num_clips=8, image_size=64).check_pooling()


def test_appearance_trunk_pools_to_2048_at_any_size(appearance_model):
    model = appearance_model
    assert not hasattr(model.net.fc, "weight"), "fc dropped"
    with torch.inference_mode():
        for size in (32, 70):
            assert model(torch.randn(2, 3, size, size)).shape == (2, 2048)


@pytest.mark.slow
def test_resnext101_stage_shapes_at_112():
    """The verified shape table of §2.5 at the faithful size: one full-size forward (slow on a CPU)."""
    model = resnext3d_101().eval()
    shapes = {}
    for name in ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4"):
        hook = lambda _module, _input, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))  # noqa: E731
        getattr(model, name).register_forward_hook(hook)
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 16, 112, 112) * 255)
    assert shapes == {
        "conv1": (64, 16, 56, 56),
        "maxpool": (64, 8, 28, 28),
        "layer1": (256, 8, 28, 28),
        "layer2": (512, 4, 14, 14),
        "layer3": (1024, 2, 7, 7),
        "layer4": (2048, 1, 4, 4),
    }
    assert out.shape == (1, 2048) and torch.isfinite(out).all()


def test_folded_batchnorm_is_the_same_function(motion_model, appearance_model):
    for shared, inputs in ((motion_model, torch.rand(2, 3, 8, 32, 32) * 255), (appearance_model, torch.randn(3, 3, 32, 32))):
        model = copy.deepcopy(shared)  # the session's models stay as built
        with torch.no_grad():  # give BatchNorm non-trivial statistics, as trained weights have
            for module in model.modules():
                if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                    module.running_mean.uniform_(-0.1, 0.1)
                    module.running_var.uniform_(0.5, 2.0)
        folded = fold_batchnorm(model)
        kinds = {type(m) for m in folded.modules()}
        assert not kinds & {torch.nn.BatchNorm2d, torch.nn.BatchNorm3d}, "every BatchNorm folded"
        assert any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)) for m in model.modules()), "original unchanged"
        with torch.inference_mode():
            expected, got = model(inputs), folded(inputs)
        relative = ((got - expected).abs().max() / expected.abs().max()).item()
        assert relative < 1e-5, f"folding changed the features by {relative:.1e} (relative)"


def test_random_backbones_give_unit_scale_features():
    """Random weights get BatchNorm statistics from seeded noise, so eval-mode features stay O(1) instead of
    growing to ~1e4 (appearance) or exploding where the last stage sees one position per clip (motion at 32x32)."""
    from dualvgr.features.backbones import build_appearance_backbone, build_motion_backbone
    from dualvgr.features.registry import resolve_weights

    torch.manual_seed(1)
    appearance = build_appearance_backbone(resolve_weights("random", "resnet101", allow_random=True))
    motion = build_motion_backbone(resolve_weights("random", "resnext101", allow_random=True),
                                   sample_size=32, sample_duration=16)
    from dualvgr.core.schema import SyntheticSpec
    from dualvgr.data.synthetic import plan_scenes, render_frames

    config = SyntheticSpec(num_videos=4, frames=8, width=64, height=64)
    rgb = torch.stack([torch.from_numpy(render_frames(s, config)[..., ::-1].copy()) for s in plan_scenes(config)])
    rgb = rgb.permute(0, 4, 1, 2, 3).float()  # (videos, 3, frames, H, W) in 0..255
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.224])
    normalised = (rgb[:, :, 0] / 255 - mean[:, None, None]) / std[:, None, None]
    with torch.no_grad():
        frames = appearance(normalised)
        clips = motion(torch.nn.functional.interpolate(rgb, size=(8, 32, 32)))
    assert frames.abs().mean() < 20 and clips.abs().mean() < 20, (frames.abs().mean(), clips.abs().mean())
    assert frames.std(dim=0).mean() > 1e-3 and clips.std(dim=0).mean() > 1e-3, "features must differ by video"
    again = build_motion_backbone(resolve_weights("random", "resnext101", allow_random=True),
                                  sample_size=32, sample_duration=16)
    for (name, a), b in zip(motion.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), f"random weights must be reproducible (shards, reruns): {name} differs"
