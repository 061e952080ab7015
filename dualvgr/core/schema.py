"""The experiment schema: every value a run depends on, typed, with its one default.

An experiment YAML file overrides these defaults (house style: defaults live here once; experiment files and
MLproject only override). The paper's settings come from ``../shared/reference/paper-results.md`` and
``dualvgr-original.md`` §4.2; where the harness default differs from the paper (e.g. the demo dataset), the
experiment file says so and the report audits it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DatasetKind = Literal["synthetic", "msvd-qa", "msrvtt-qa"]
PaperTable = Literal["none", "msvd-qa", "msrvtt-qa"]
Precision = Literal["fp32", "bf16", "fp16"]
Split = Literal["train", "val", "test"]


@dataclass
class SyntheticSpec:
    """Size of the embedded demo dataset (only read when ``dataset.kind: synthetic``)."""

    seed: int = 0
    num_videos: int = 160
    # Each video gets one question of every template, so answers vary per video, never per question text.
    questions_per_video: int = 8
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    frames: int = 36
    fps: int = 12
    width: int = 96
    height: int = 72


@dataclass
class DatasetSpec:
    kind: DatasetKind = "synthetic"
    # Dataset root holding {train,val,test}_qa.json and the videos; relative paths are from the working directory.
    root: str = "data/demo"
    # MSVD-QA video folder: auto finds video/, YouTubeClips/ or video/YouTubeClips/ (original bug B23).
    layout: Literal["auto", "video", "YouTubeClips", "video/YouTubeClips"] = "auto"
    mapping_file: str = "youtube_mapping.txt"
    # A reproduction with missing videos is not the paper's; allowing it is audited as a deviation.
    allow_missing_videos: bool = False
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)


@dataclass
class AppearanceSpec:
    """Per-frame ResNet-101 features, (V, N, F, 2048) (dualvgr-original.md §2.4)."""

    backbone: Literal["resnet101"] = "resnet101"
    # imagenet = torchvision IMAGENET1K_V1 (B7); random (needs features.allow_random_weights); or a file path.
    weights: str = "imagenet"
    frames_per_clip: int = 16
    image_size: int = 224
    # original = std (0.229, 0.224, 0.224), the HCRN typo kept for fidelity (B25); torchvision = 0.225.
    normalization: Literal["original", "torchvision"] = "original"
    # Frames per network forward (several videos are packed together); null = one video per forward.
    batch_size: int | None = None


@dataclass
class MotionSpec:
    """Per-clip 3D ResNeXt-101 (Kinetics) features, (V, N, 2048) (dualvgr-original.md §2.5)."""

    backbone: Literal["resnext101"] = "resnext101"  # Hara's 3D ResNeXt-101 (32x4d, shortcut B)
    # A path to Hara's resnext-101-kinetics.pth, or random (needs features.allow_random_weights).
    weights: str = "data/pretrained/resnext-101-kinetics.pth"
    frames_per_clip: int = 16
    image_size: int = 112
    # Frame size the network's fixed average-pool kernel is built for; image_size must equal it (B20).
    sample_size: int = 112
    # Clips per network forward (several videos are packed together); null = one video per forward.
    batch_size: int | None = None


@dataclass
class FeaturesSpec:
    # Clips per video = graph nodes of the model (num_of_nodes): 8 for MSVD-QA, 16 for MSRVTT-QA (B28).
    num_clips: int = 8
    device: str = "auto"
    workers: int = 2  # decoding processes that overlap with the network
    # Extraction processes, each taking a contiguous share of the videos (one GPU each where there are several);
    # their files are merged into one identical to a single-process run.
    num_shards: int = 1
    # Random backbones make features meaningless for the paper; they are allowed only when declared here.
    allow_random_weights: bool = False
    # Unreadable videos become zero rows listed in a failed_videos artifact instead of stopping the run.
    allow_failed_videos: bool = False
    appearance: AppearanceSpec = field(default_factory=AppearanceSpec)
    motion: MotionSpec = field(default_factory=MotionSpec)


@dataclass
class QuestionsSpec:
    # glove.840B.300d.txt, its .zip as downloaded, a prepared (V_q, 300) .npy, or none (U(-1, 1) init).
    glove: str = "data/glove/glove.840B.300d.txt"
    answer_top: int = 4000
    # An original vocab json to import (needed to evaluate original checkpoints); null builds it from train.
    vocabulary: str | None = None


@dataclass
class ModelSpec:
    """DualVGR dimensions (dualvgr-original.md §3); the graph has features.num_clips nodes."""

    vision_dim: int = 2048
    module_dim: int = 768
    word_dim: int = 300
    # train.py always built 2 units whatever --unit_layers said (B17); 2 is what the paper's numbers used.
    unit_layers: int = 2
    graph_layers: int = 1
    graph_module: Literal["GAT"] = "GAT"
    gat_heads: int = 4
    alpha: float = 1.0  # weight of the consistency (common) loss
    beta: float = 1.0e-8  # weight of the HSIC dependence loss (summed over the batch, hence tiny)
    # Reproduce the original u+j graph-module index (B11); only matters when graph_layers > 1.
    original_graph_indexing: bool = False


@dataclass
class TrainSpec:
    optimizer: Literal["adam"] = "adam"
    lr: float = 1.0e-4
    lr_decay_every: int = 10  # epochs; the lr is multiplied by lr_decay_factor at the end of every 10th epoch
    lr_decay_factor: float = 0.5
    grad_clip: float = 12.0  # global L2 norm
    batch_size: int = 256
    epochs: int = 25
    seed: int = 666
    # Several seeds train one run each and share the cached upstream stages; empty = [seed].
    seeds: list[int] = field(default_factory=list)
    device: str = "auto"
    precision: Precision = "fp32"
    tf32: bool = False  # TF32 changes numerics on Ampere+ GPUs (B40)
    compile: bool = False  # torch.compile; a numerics deviation on GPU
    workers: int = 4
    preload: bool = False  # load the HDF5 features into memory once
    # Subsets as the original's train_num/val_num/test_num (0 = all; B14).
    train_num: int = 0
    val_num: int = 0
    test_num: int = 0
    # Control: shuffle the visual features across videos so the model cannot answer from the video.
    permute_visual: bool = False
    # Split the best-val checkpoint is finally scored on; the paper reports test (val is a deviation).
    eval_split: Split = "test"


@dataclass
class EvaluateSpec:
    # best = the best-val checkpoint of this experiment's train run; or a path to ours or an original one.
    checkpoint: str = "best"
    split: Split = "test"


@dataclass
class PaperSpec:
    """Which published table this experiment reproduces (paper-results.md)."""

    table: PaperTable = "none"
    # Verdict tolerance in accuracy points: reproduced when the 95% interval lies inside paper ± tolerance.
    tolerance: float = 1.0


@dataclass
class ReportSpec:
    # Experiments whose train runs are reported; empty = this experiment only.
    experiments: list[str] = field(default_factory=list)
    output_dir: str = "reports"


@dataclass
class TrackingSpec:
    # MLflow experiment for stage runs started by the CLI; null = "dualvgr-<name>". Under `mlflow run`, the
    # run that MLflow created (and its experiment) is used for the requested stage.
    mlflow_experiment: str | None = None
    # Stage outputs live in <outputs>/<stage>/<fingerprint>/ so experiments share what they have in common.
    outputs: str = "outputs"
    tensorboard_dir: str = "runs/tensorboard"


@dataclass
class ExperimentSpec:
    name: str
    description: str = ""
    paper: PaperSpec = field(default_factory=PaperSpec)
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    features: FeaturesSpec = field(default_factory=FeaturesSpec)
    questions: QuestionsSpec = field(default_factory=QuestionsSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    evaluate: EvaluateSpec = field(default_factory=EvaluateSpec)
    report: ReportSpec = field(default_factory=ReportSpec)
    tracking: TrackingSpec = field(default_factory=TrackingSpec)

    @property
    def run_seeds(self) -> tuple[int, ...]:
        """The seeds that get one train run each."""
        return tuple(self.train.seeds) if self.train.seeds else (self.train.seed,)

    @property
    def mlflow_experiment(self) -> str:
        return self.tracking.mlflow_experiment or f"dualvgr-{self.name}"
