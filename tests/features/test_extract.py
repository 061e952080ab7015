"""extract_features end to end on tiny videos: layout, fidelity, bad videos, resume, shards (§2, B5, B20, B22, B26)."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from dualvgr.core.errors import DataError, SpecError
from dualvgr.features import (
    MotionSettings,
    check_feature_file,
    extract_features,
    iter_network_inputs,
    merge_shards,
    partial_path,
    read_clip_frames,
)
from dualvgr.features import extract as extract_module
from dualvgr.features import reference
from dualvgr.features.hdf5 import PartialFeatureFile
from dualvgr.features.registry import BACKBONES


def _extract(videos, settings, weights, out, **options):
    """extract_features without a progress bar, with the spec hash every reference file here carries."""
    return extract_features(videos, settings, weights, out, **{"attrs": {"spec_hash": "s"}, "progress": False, **options})


def _contents(path):
    """Everything a consumer can see in a feature file: datasets and attributes."""
    with h5py.File(path, "r") as handle:
        datasets = {name: handle[name][:] for name in handle}
        attrs = {key: np.asarray(value).tolist() for key, value in handle.attrs.items()}
    return datasets, attrs


def _assert_same_file(path_a, path_b):
    datasets_a, attrs_a = _contents(path_a)
    datasets_b, attrs_b = _contents(path_b)
    assert sorted(datasets_a) == sorted(datasets_b), f"datasets {sorted(datasets_a)} vs {sorted(datasets_b)}"
    for name in datasets_a:
        assert datasets_a[name].dtype == datasets_b[name].dtype, name
        assert np.array_equal(datasets_a[name], datasets_b[name]), f"dataset {name} differs"
    assert attrs_a == attrs_b


@pytest.fixture(scope="module")
def appearance_file(videos, appearance_settings, appearance_weights, tmp_path_factory):
    """One uninterrupted, single-process appearance extraction of the five test videos, videos kept apart."""
    out = tmp_path_factory.mktemp("appearance") / "appearance.h5"
    result = _extract(videos, appearance_settings, appearance_weights, out)
    return out, result


@pytest.fixture(scope="module")
def motion_file(videos, motion_settings, motion_weights, tmp_path_factory):
    """One uninterrupted, single-process motion extraction of the five test videos, videos kept apart."""
    out = tmp_path_factory.mktemp("motion") / "motion.h5"
    result = _extract(videos, motion_settings, motion_weights, out)
    return out, result


@pytest.fixture(scope="module")
def motion_file_packed(videos, motion_settings, motion_weights, tmp_path_factory):
    """The same with 6 clips per forward: videos packed two by two (3 clips each)."""
    out = tmp_path_factory.mktemp("motion_packed") / "motion.h5"
    result = _extract(videos, motion_settings, motion_weights, out, batch_size=6)
    return out, result


def test_b5_layout_ids_and_attributes(appearance_file):
    out, result = appearance_file
    assert result.num_videos == result.num_extracted == 5 and not result.failed
    assert result.frames_per_second > 0 and result.width == 2048
    with h5py.File(out, "r") as handle:
        assert sorted(handle) == ["ids", "resnet_features"], "only the original's datasets"
        features, ids = handle["resnet_features"], handle["ids"]
        assert features.shape == (5, 3, 4, 2048) and features.dtype == np.float32
        assert ids.dtype == np.int64, "ids are int64 (np.int in the original, B5)"
        assert ids[:].tolist() == [3, 7, 19, 42, 100], "rows are sorted by video id"
        attrs = dict(handle.attrs)
    assert attrs["spec_hash"] == "s" and attrs["kind"] == "appearance" and attrs["backbone"] == "resnet101"
    assert (attrs["num_clips"], attrs["frames_per_clip"], attrs["image_size"].tolist()) == (3, 4, [32, 32])
    assert attrs["normalisation"] == "original" and attrs["normalisation_std"].tolist() == [0.229, 0.224, 0.224]
    assert (attrs["weights_source"], attrs["weights_sha256"], attrs["weights_seed"]) == ("random", "", 0)
    assert attrs["failed_ids"].tolist() == []
    assert not partial_path(out).exists()
    info = check_feature_file(out, "appearance", num_clips=3, frames_per_clip=4)
    assert info.row_of == {3: 0, 7: 1, 19: 2, 42: 3, 100: 4}


FIDELITY_VIDEOS = (3, 7, 19)  # 1, 9 and 40 frames: every padding rule
# "Features equal to 1e-4": relative to the features' magnitude. Float32 rounding of a 100-layer network
# (folded BatchNorm, other batch shapes) moves features by ~2e-5 of their scale.
FEATURE_TOLERANCE = 1e-4


def test_network_inputs_are_the_original_inputs(videos, appearance_settings, motion_settings):
    """Preprocessing alone, decode to normalised tensor, against the original's arithmetic (§2.1-2.3)."""
    appearance = dict(iter_network_inputs(videos, appearance_settings))
    motion = dict(iter_network_inputs(videos, motion_settings, num_workers=2))
    assert list(appearance) == list(motion) == sorted(video_id for video_id, _ in videos)
    for video_id, path in videos:
        frames = read_clip_frames(path, 3, 4).index.reshape(-1)  # clip frame -> distinct frame
        expected = np.concatenate(reference.appearance_inputs(path, 3, 4, (32, 32)))  # (N*F, 3, h, w)
        np.testing.assert_allclose(appearance[video_id].numpy()[frames], expected, rtol=0, atol=1e-6)
        _, clips = np.unique(read_clip_frames(path, 3, 8).index, axis=0, return_inverse=True)  # clip -> distinct clip
        expected = reference.motion_inputs(path, 3, 8, (32, 32))  # (N, 3, F, h, w), 0..255
        assert np.array_equal(motion[video_id].numpy()[clips.reshape(-1)], expected), f"video {video_id}"


def test_b26_appearance_equals_the_original_procedure(appearance_file, videos, appearance_model):
    out, _ = appearance_file
    model = appearance_model
    info = check_feature_file(out, "appearance", num_clips=3)
    with h5py.File(out, "r") as handle:
        features = handle["resnet_features"][:]
    for video_id, path in videos:
        if video_id in FIDELITY_VIDEOS:
            expected = reference.appearance_features(model, path, 3, 4, (32, 32))  # per clip, autograd on
            scale = np.abs(expected).max()
            got = features[info.row_of[video_id]]
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=FEATURE_TOLERANCE * scale, err_msg=f"video {video_id}")


def test_motion_equals_the_original_procedure(motion_file, videos, motion_model):
    out, _ = motion_file
    model = motion_model
    info = check_feature_file(out, "motion", num_clips=3)
    with h5py.File(out, "r") as handle:
        assert handle["resnext_features"].shape == (5, 3, 2048)
        features = handle["resnext_features"][:]
    for video_id, path in videos:
        if video_id in FIDELITY_VIDEOS:
            expected = reference.motion_features(model, path, 3, 8, (32, 32))
            scale = np.abs(expected).max()
            got = features[info.row_of[video_id]]
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=FEATURE_TOLERANCE * scale, err_msg=f"video {video_id}")


@pytest.mark.parametrize("num_workers, batch_size", [(2, 4), (0, 7)])
def test_workers_and_packing_do_not_change_features(
    motion_file, videos, motion_settings, motion_weights, tmp_path, num_workers, batch_size
):
    """Up to float32 rounding: packing changes which videos share a forward."""
    out = tmp_path / "workers.h5"
    _extract(
        videos, motion_settings, motion_weights, out, num_workers=num_workers, batch_size=batch_size
    )
    datasets_a, attrs_a = _contents(motion_file[0])
    datasets_b, attrs_b = _contents(out)
    scale = np.abs(datasets_a["resnext_features"]).max()
    np.testing.assert_allclose(datasets_a["resnext_features"], datasets_b["resnext_features"], rtol=1e-4,
                               atol=FEATURE_TOLERANCE * scale)
    assert np.array_equal(datasets_a["ids"], datasets_b["ids"]) and attrs_a == attrs_b


FIX = (
    "replace it, or set features.allow_failed_videos: true to record it as failed (a zero row, audited as a "
    "deviation)"
)


def test_b22_missing_or_corrupt_video_is_an_error_naming_it(videos, motion_settings, motion_weights, tmp_path):
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"RIFF" + bytes(2000))
    reasons = {
        tmp_path / "missing.avi": "the file does not exist",
        corrupt: "OpenCV's video backends cannot open it: a corrupt file, an unsupported container or codec, or "
        "not a video",
    }
    for bad, reason in reasons.items():
        out = tmp_path / "motion.h5"
        with pytest.raises(DataError) as error:
            _extract([*videos, (1, bad)], motion_settings, motion_weights, out)  # id 1 comes first
        assert str(error.value) == f"video 1 ({bad}): {reason}; {FIX}"
        assert not out.exists(), "no output file after a failed extraction"


def _damaged_copies(video_factory, tmp_path):
    """A 36-frame MJPG AVI cut to half its bytes, and a 36-frame mp4v MP4 with 2000 bytes overwritten midway
    (same size): the two ways a video stops decoding early. With their frame counts by the original's loop."""
    avi = video_factory("whole.avi", 36).read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(avi[: len(avi) // 2])
    mp4 = bytearray(video_factory("whole.mp4", 36, codec="mp4v").read_bytes())
    middle = len(mp4) // 2
    mp4[middle : middle + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    overwritten = tmp_path / "overwritten.mp4"
    overwritten.write_bytes(bytes(mp4))
    counts = {path: len(reference.read_all_frames(path)) for path in (truncated, overwritten)}
    assert all(0 < count < 36 for count in counts.values()), f"the damage must stop the decoder early: {counts}"
    return counts


def test_truncated_or_overwritten_video_is_a_failed_video_naming_its_frames(
    video_factory, videos, appearance_settings, appearance_weights, tmp_path
):
    """The original sampled such a video from the frames before the damage; ours stops and says so."""
    for bad, decoded in _damaged_copies(video_factory, tmp_path).items():
        out = tmp_path / "appearance.h5"
        with pytest.raises(DataError) as error:
            _extract([*videos, (1, bad)], appearance_settings, appearance_weights, out)
        expected = f"video 1 ({bad}): only {decoded} of 36 frames decode (the file is truncated or damaged); {FIX}"
        assert str(error.value) == expected
        assert not out.exists()


def test_truncated_video_with_allow_failed_is_a_zero_row_listed_as_failed(
    video_factory, videos, appearance_settings, appearance_weights, tmp_path
):
    damaged = _damaged_copies(video_factory, tmp_path)
    bad = list(zip((1, 2), damaged))  # the truncated AVI is video 1, the overwritten MP4 video 2
    out = tmp_path / "appearance.h5"
    result = _extract([*videos, *bad], appearance_settings, appearance_weights, out, allow_failed=True)
    reasons = {f.video_id: f.reason for f in result.failed}
    assert reasons == {
        video_id: f"{path}: only {damaged[path]} of 36 frames decode (the file is truncated or damaged)"
        for video_id, path in bad
    }
    info = check_feature_file(out, "appearance", num_clips=3)
    assert info.failed_ids.tolist() == [1, 2]
    with h5py.File(out, "r") as handle:
        features = handle["resnet_features"][:]
    assert not features[info.row_of[1]].any() and not features[info.row_of[2]].any(), "failed videos are zero rows"
    assert all(features[info.row_of[video_id]].any() for video_id, _ in videos), "good videos are extracted"


def test_b22_allow_failed_writes_zero_rows_and_lists_them(videos, motion_settings, motion_weights, tmp_path):
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"RIFF" + bytes(2000))
    bad = [(55, tmp_path / "missing.avi"), (4, corrupt)]
    out = tmp_path / "motion.h5"
    result = _extract([*videos, *bad], motion_settings, motion_weights, out, allow_failed=True)
    assert sorted((f.video_id, f.path) for f in result.failed) == sorted((i, str(p)) for i, p in bad)
    assert all(str(f.path) in f.reason for f in result.failed), "each reason names its file"
    assert result.num_videos == 7 and result.num_extracted == 5
    info = check_feature_file(out, "motion", num_clips=3)
    assert info.failed_ids.tolist() == [4, 55]
    with h5py.File(out, "r") as handle:
        features = handle["resnext_features"][:]
    for video_id in info.row_of:
        is_zero = not features[info.row_of[video_id]].any()
        assert is_zero == (video_id in (4, 55)), f"video {video_id}: zero row {is_zero}"


class _Killed(Exception):
    pass


def _crash_after(monkeypatch, writes: int):
    """Make the extraction die after ``writes`` batches were written, as a killed process would."""
    real_write = PartialFeatureFile.write
    calls = {"n": 0}

    def write(self, rows, features):
        if calls["n"] == writes:
            raise _Killed(f"killed after {writes} batches")
        calls["n"] += 1
        real_write(self, rows, features)

    monkeypatch.setattr(PartialFeatureFile, "write", write)


@pytest.mark.parametrize("packed", [False, True])
def test_resume_after_an_interrupted_extraction(
    motion_file, motion_file_packed, videos, motion_settings, motion_weights, tmp_path, monkeypatch, packed
):
    """Killed after two forwards, rerun: the same file as without interruption, never an output half-written."""
    batch_size, uninterrupted = (6, motion_file_packed[0]) if packed else (None, motion_file[0])
    out = tmp_path / "motion.h5"
    with monkeypatch.context() as patch:
        _crash_after(patch, writes=2)
        with pytest.raises(_Killed):
            _extract(videos, motion_settings, motion_weights, out, batch_size=batch_size)
    assert not out.exists(), "the output path must never hold a partial file"
    with h5py.File(partial_path(out), "r+") as handle:
        done = handle["_done"]
        assert done[:].sum() == (4 if packed else 2), "the finished forwards' videos are recorded as done"
        if packed:
            done[3] = False  # as if killed while writing the second group: that whole group must be redone

    result = _extract(videos, motion_settings, motion_weights, out, batch_size=batch_size)
    assert result.num_extracted == 3, "only the videos (groups) not done before the crash are extracted again"
    assert not partial_path(out).exists()
    _assert_same_file(out, uninterrupted)


def test_changed_parameters_or_a_torn_partial_file_start_over(videos, motion_settings, motion_weights, tmp_path, monkeypatch):
    out = tmp_path / "motion.h5"
    with monkeypatch.context() as patch:
        _crash_after(patch, writes=2)
        with pytest.raises(_Killed):
            _extract(videos, motion_settings, motion_weights, out, attrs={"spec_hash": "old"})
    result = _extract(videos, motion_settings, motion_weights, out, attrs={"spec_hash": "new"})
    assert result.num_extracted == 5, "a partial file from other parameters is not resumed"
    assert check_feature_file(out, "motion", num_clips=3).attrs["spec_hash"] == "new"

    partial_path(out).write_bytes(b"\x89HDF\r\n torn by a kill")
    result = _extract(videos[:2], motion_settings, motion_weights, out)
    assert result.num_extracted == 2


def test_shards_merge_into_the_single_process_file(appearance_file, videos, appearance_settings, appearance_weights, tmp_path):
    shards = []
    for index in (2, 0, 1):  # 5 videos in 3 shards: uneven; any order
        shard = tmp_path / f"shard{index}.h5"
        result = _extract(videos, appearance_settings, appearance_weights, shard, shard_index=index, num_shards=3)
        assert result.num_videos in (1, 2)
        shards.append(shard)
    merged = merge_shards(shards, tmp_path / "merged.h5")
    _assert_same_file(merged, appearance_file[0])


def test_packed_shards_merge_into_the_single_process_file(
    motion_file_packed, videos, motion_settings, motion_weights, tmp_path
):
    """Packed forwards too: shards take whole groups, so every forward sees the same videos as in one process."""
    shards = [tmp_path / f"shard{index}.h5" for index in range(2)]
    sizes = [
        _extract(videos, motion_settings, motion_weights, shard, batch_size=6, shard_index=index, num_shards=2).num_videos
        for index, shard in enumerate(shards)
    ]
    assert sizes == [2, 3], "3 groups of 2, 2, 1 videos: shard 0 takes one group, shard 1 two"
    _assert_same_file(merge_shards(shards, tmp_path / "merged.h5"), motion_file_packed[0])


def test_merge_refuses_missing_or_foreign_shards(videos, motion_settings, motion_weights, tmp_path):
    few = videos[:2]
    paths = [tmp_path / f"shard{i}.h5" for i in range(2)]
    for index, path in enumerate(paths):
        _extract(few, motion_settings, motion_weights, path, shard_index=index, num_shards=2)
    with pytest.raises(DataError, match=r"got shards \[1\] of 2"):
        merge_shards(paths[1:], tmp_path / "merged.h5")
    other = tmp_path / "other.h5"
    _extract(few, motion_settings, motion_weights, other, shard_index=1, num_shards=2, attrs={"spec_hash": "x"})
    with pytest.raises(DataError, match="different extractions.*spec_hash"):
        merge_shards([paths[0], other], tmp_path / "merged.h5")
    assert not (tmp_path / "merged.h5").exists()


def test_b20_extraction_refuses_224_motion_frames_before_running(videos, motion_weights, tmp_path, monkeypatch):
    def must_not_build(*args, **kwargs):
        raise AssertionError("the network was built although the settings cannot give 2048-wide features")

    monkeypatch.setitem(BACKBONES, "resnext101", dataclasses.replace(BACKBONES["resnext101"], build=must_not_build))
    out = tmp_path / "motion.h5"
    with pytest.raises(SpecError, match="32768 wide, expected 2048"):
        _extract(videos, MotionSettings(num_clips=3, image_size=224), motion_weights, out)
    assert not out.exists() and not partial_path(out).exists()


def test_argument_errors(videos, motion_settings, motion_weights, appearance_weights, tmp_path):
    out = tmp_path / "x.h5"
    with pytest.raises(SpecError, match="need resnext101 weights"):
        _extract(videos, motion_settings, appearance_weights, out)
    with pytest.raises(DataError, match=r"video ids repeat .*\[7\]"):
        _extract([*videos, (7, videos[0][1])], motion_settings, motion_weights, out)
    with pytest.raises(SpecError, match="written by the extractor itself"):
        _extract(videos, motion_settings, motion_weights, out, attrs={"num_clips": 9})
    with pytest.raises(SpecError, match="shard_index 2 is outside 0..1"):
        _extract(videos, motion_settings, motion_weights, out, shard_index=2, num_shards=2)


def test_b40_tf32_is_off_during_extraction_and_restored(videos, motion_settings, motion_weights, tmp_path, monkeypatch):
    seen = []
    real_call = extract_module._Network.__call__

    def spy(self, units, batch_size):
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return real_call(self, units, batch_size)

    monkeypatch.setattr(extract_module._Network, "__call__", spy)
    torch.backends.cudnn.allow_tf32 = True
    _extract(videos[:1], motion_settings, motion_weights, tmp_path / "m.h5")
    assert seen == [(False, False)], "faithful extraction runs without TF32 (B40)"
    assert torch.backends.cudnn.allow_tf32 is True, "global flags are restored afterwards"


@pytest.mark.gpu
def test_cuda_extraction_matches_cpu(appearance_file, videos, appearance_settings, appearance_weights, tmp_path):
    """Same file on a GPU (TF32 off, B40) as on the CPU, up to float32 rounding; workers and packing on."""
    out = tmp_path / "cuda.h5"
    _extract(
        videos, appearance_settings, appearance_weights, out, device="cuda", num_workers=2, batch_size=16
    )
    datasets_cpu, attrs_cpu = _contents(appearance_file[0])
    datasets_gpu, attrs_gpu = _contents(out)
    assert attrs_gpu == attrs_cpu and np.array_equal(datasets_gpu["ids"], datasets_cpu["ids"])
    scale = np.abs(datasets_cpu["resnet_features"]).max()
    np.testing.assert_allclose(datasets_gpu["resnet_features"], datasets_cpu["resnet_features"], rtol=1e-4,
                               atol=FEATURE_TOLERANCE * scale)
