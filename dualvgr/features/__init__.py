"""Feature extraction: videos -> appearance (ResNet-101) and motion (3D ResNeXt-101) HDF5 files.

Faithful by default to ``dualvgr-original.md`` §2: the original's clip sampling with its edge padding,
Pillow bicubic resizing, its normalisation arithmetic, the same networks and weights, the same HDF5 layout.
One module per job: ``sampling`` (which frames), ``video`` (decoding them), ``transforms`` (resize,
normalise), ``weights`` (where weights come from), ``backbones`` (the networks), ``registry`` (which backbone
a config value names, and all that goes with it), ``hdf5`` (writing, resuming, merging shards), ``reader``
(checking a file before training), ``extract`` (the loop).
"""

from dualvgr.features.backbones import build_appearance_backbone, build_motion_backbone
from dualvgr.features.extract import ExtractionResult, FailedVideo, extract_features, iter_network_inputs
from dualvgr.features.hdf5 import FEATURE_DATASETS, feature_dataset, merge_shards, partial_path
from dualvgr.features.reader import FeatureFileInfo, check_feature_file
from dualvgr.features.registry import BACKBONES, Backbone, backbone_entry, resolve_weights
from dualvgr.features.sampling import clip_frame_indices
from dualvgr.features.settings import AppearanceSettings, MotionSettings, explain_motion_width
from dualvgr.features.video import (
    ClipFrames,
    DamagedVideo,
    VideoError,
    count_frames,
    read_clip_frames,
    read_video_clips,
)
from dualvgr.features.weights import BackboneWeights

__all__ = [
    "BACKBONES",
    "FEATURE_DATASETS",
    "AppearanceSettings",
    "Backbone",
    "BackboneWeights",
    "ClipFrames",
    "DamagedVideo",
    "ExtractionResult",
    "FailedVideo",
    "FeatureFileInfo",
    "MotionSettings",
    "VideoError",
    "backbone_entry",
    "build_appearance_backbone",
    "build_motion_backbone",
    "check_feature_file",
    "clip_frame_indices",
    "count_frames",
    "explain_motion_width",
    "extract_features",
    "feature_dataset",
    "iter_network_inputs",
    "merge_shards",
    "partial_path",
    "read_clip_frames",
    "read_video_clips",
    "resolve_weights",
]
