"""Check a feature file before training on it, and map video ids to rows.

The training stage may be handed any HDF5 file, including one made by the original code. The original never
checked the width of its motion features: a motion file extracted at 224x224 is (V, N, 32768) and only
failed much later inside ``nn.Linear(2048, 768)`` (``dualvgr-original.md`` §2.5, bug B20). It also never
checked that the number of clips matched the model's ``num_of_nodes`` (B27, B28). :func:`check_feature_file`
verifies dataset name, dtype, shape and ids up front and raises :class:`DataError` naming the file, the
dataset, the expected and actual shape, the cause and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from dualvgr.core.errors import DataError
from dualvgr.features.hdf5 import FEATURE_DATASETS, IDS_DATASET, feature_dataset
from dualvgr.features.settings import explain_motion_width


@dataclass(frozen=True)
class FeatureFileInfo:
    """What a checked feature file holds; the features themselves stay on disk."""

    path: Path
    kind: str
    dataset: str  # 'resnet_features' or 'resnext_features'
    shape: tuple[int, ...]  # (V, N, F, 2048) or (V, N, 2048)
    ids: np.ndarray = field(repr=False)  # (V,) int64
    attrs: dict[str, object] = field(repr=False)

    @cached_property
    def row_of(self) -> dict[int, int]:
        """Video id -> row, the only link between rows and videos (row order is arbitrary, §2.7)."""
        return {int(video_id): row for row, video_id in enumerate(self.ids)}

    @property
    def failed_ids(self) -> np.ndarray:
        """Videos whose rows are zeros because they could not be decoded (empty for the original's files)."""
        return np.asarray(self.attrs.get("failed_ids", []), dtype=np.int64)


def check_feature_file(
    path: str | os.PathLike, kind: str, *, num_clips: int, frames_per_clip: int | None = None, dim: int = 2048
) -> FeatureFileInfo:
    """Open ``path`` and verify it holds ``kind`` features (V, num_clips[, frames_per_clip], dim), float32, with ids."""
    path = Path(path)
    dataset = feature_dataset(kind)
    if not path.is_file():
        raise DataError(f"{kind} feature file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"{path} is not a readable HDF5 file ({error}); re-extract the {kind} features") from error
    with handle:
        if dataset not in handle:
            others = [kind_ for kind_, name in FEATURE_DATASETS.items() if name in handle and kind_ != kind]
            hint = f"it holds {others[0]} features: the two files are swapped" if others else f"it holds {list(handle)}"
            raise DataError(f"{path}: no '{dataset}' dataset, so not a {kind} feature file; {hint}")
        features = handle[dataset]
        shape, dtype = tuple(features.shape), features.dtype
        ids = handle[IDS_DATASET][:] if IDS_DATASET in handle else None
        attrs = dict(handle.attrs)

    rank = 4 if kind == "appearance" else 3
    expected = (
        ("V", num_clips, frames_per_clip if frames_per_clip is not None else "F", dim)
        if kind == "appearance"
        else ("V", num_clips, dim)
    )
    where = f"{path} dataset '{dataset}' has shape {shape}, expected ({', '.join(map(str, expected))})"
    if len(shape) != rank:
        raise DataError(f"{where}: not the original's {kind} layout (§2.6); re-extract the {kind} features")
    if shape[-1] != dim:
        if kind == "motion":
            sample_size, sample_duration = int(attrs.get("sample_size", 112)), int(attrs.get("sample_duration", 16))
            explanation = explain_motion_width(shape[-1], sample_size=sample_size, sample_duration=sample_duration)
            raise DataError(f"{where}: {explanation}")
        raise DataError(
            f"{where}: appearance features are {shape[-1]} wide, expected {dim} (ResNet-101 pooled features); "
            f"re-extract them with the resnet101 backbone"
        )
    if shape[1] != num_clips:
        raise DataError(
            f"{where}: extracted with {shape[1]} clips per video but the model has num_of_nodes={num_clips} "
            f"(they must be equal, B27/B28); re-extract with num_clips {num_clips} or set num_of_nodes {shape[1]}"
        )
    if kind == "appearance" and frames_per_clip is not None and shape[2] != frames_per_clip:
        raise DataError(f"{where}: {shape[2]} frames per clip; re-extract with frames_per_clip {frames_per_clip}")
    if dtype != np.float32:
        raise DataError(f"{where}: dtype {dtype}, expected float32 (the original's); re-extract or convert it")
    if ids is None:
        raise DataError(f"{path}: no '{IDS_DATASET}' dataset, so rows cannot be mapped to videos; re-extract")
    if ids.shape != (shape[0],) or not np.issubdtype(ids.dtype, np.integer):
        raise DataError(
            f"{path}: '{IDS_DATASET}' has shape {ids.shape} and dtype {ids.dtype}, expected ({shape[0]},) integers"
        )
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != len(ids):
        raise DataError(f"{path}: video ids repeat (e.g. {unique[counts > 1][:5].tolist()}); rows would be ambiguous")
    return FeatureFileInfo(path, kind, dataset, shape, ids.astype(np.int64), attrs)
