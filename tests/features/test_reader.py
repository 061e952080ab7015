"""check_feature_file on files as the original wrote them, good and bad (§2.6, B20, B27/B28)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.features import check_feature_file, feature_dataset


def _original_style_file(path, dataset, shape, *, ids=True, dtype=np.float32):
    """A file laid out like the original's generate_h5 output (no attributes at all)."""
    with h5py.File(path, "w") as handle:
        handle.create_dataset(dataset, shape=shape, dtype=dtype)
        if ids:
            handle.create_dataset("ids", data=np.arange(shape[0], dtype=np.int64)[::-1] * 10)
    return path


def test_original_files_pass_and_map_ids_to_rows(tmp_path):
    path = _original_style_file(tmp_path / "msvd-qa_appearance_feat.h5", "resnet_features", (3, 8, 16, 2048))
    info = check_feature_file(path, "appearance", num_clips=8, frames_per_clip=16)
    assert info.dataset == feature_dataset("appearance") == "resnet_features"
    assert info.row_of == {20: 0, 10: 1, 0: 2} and info.failed_ids.tolist() == []
    motion = _original_style_file(tmp_path / "msvd-qa_motion_feat.h5", "resnext_features", (3, 8, 2048))
    assert check_feature_file(motion, "motion", num_clips=8).shape == (3, 8, 2048)


def test_b20_a_32768_wide_motion_file_is_refused_with_cause_and_fix(tmp_path):
    path = _original_style_file(tmp_path / "msvd-qa_motion_feat.h5", "resnext_features", (4, 8, 32768))
    with pytest.raises(DataError) as error:
        check_feature_file(path, "motion", num_clips=8)
    message = str(error.value)
    expected_parts = (str(path), "resnext_features", "(4, 8, 32768)", "expected (V, 8, 2048)")
    expected_parts += ("4x4 kernel sized for 112x112", "image_size: 112")  # the cause and the fix
    for part in expected_parts:
        assert part in message, f"'{part}' missing from: {message}"


def test_b28_clip_count_must_equal_num_of_nodes(tmp_path):
    path = _original_style_file(tmp_path / "feat_24.h5", "resnext_features", (2, 24, 2048))
    with pytest.raises(DataError, match=r"24 clips per video but the model has num_of_nodes=8"):
        check_feature_file(path, "motion", num_clips=8)


def test_swapped_files_and_missing_parts(tmp_path):
    appearance = _original_style_file(tmp_path / "a.h5", "resnet_features", (2, 8, 16, 2048))
    with pytest.raises(DataError, match="holds appearance features: the two files are swapped"):
        check_feature_file(appearance, "motion", num_clips=8)
    no_ids = _original_style_file(tmp_path / "b.h5", "resnext_features", (2, 8, 2048), ids=False)
    with pytest.raises(DataError, match="no 'ids' dataset"):
        check_feature_file(no_ids, "motion", num_clips=8)
    float64 = _original_style_file(tmp_path / "c.h5", "resnext_features", (2, 8, 2048), dtype=np.float64)
    with pytest.raises(DataError, match="dtype float64, expected float32"):
        check_feature_file(float64, "motion", num_clips=8)
    with pytest.raises(DataError, match="feature file not found"):
        check_feature_file(tmp_path / "absent.h5", "motion", num_clips=8)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        check_feature_file(tmp_path / "text.h5", "motion", num_clips=8)
    wrong_frames = _original_style_file(tmp_path / "d.h5", "resnet_features", (2, 8, 4, 2048))
    with pytest.raises(DataError, match="4 frames per clip"):
        check_feature_file(wrong_frames, "appearance", num_clips=8, frames_per_clip=16)
