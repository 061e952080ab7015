"""The experiment schema: every value a run depends on, typed, with its one default and its allowed range.

An experiment YAML file overrides these defaults (house style: defaults live here once; experiment files and
MLproject only override). The defaults are the paper's setup and the original code's command line (official
MSVD-QA config); where the harness default differs from the paper (e.g. the demo dataset), the experiment file
says so and the report audits it.

A numeric key's range is part of its type, beside its default: ``Annotated[float, Range(gt=0)]``. The spec
loader (``dualvgr.core.spec``) enforces every range generically, refuses NaN and infinity for every number, and
keeps only the rules that relate two keys (``module_dim % gat_heads``) as cross-field checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Callable, Literal


@dataclass(frozen=True)
class Range:
    """The values a numeric key allows: bounds (strict ``gt``/``lt`` or inclusive ``ge``/``le``), a step.

    ``why`` is said in the error message when the bound is not self-explanatory (numpy's seeding limit).
    """

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    multiple_of: int | None = None
    why: str = ""

    def allows(self, value: float) -> bool:
        return ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le)
                and (self.multiple_of is None or value % self.multiple_of == 0))

    def __str__(self) -> str:
        low = f"({_number(self.gt)}" if self.gt is not None else f"[{_number(self.ge)}" if self.ge is not None else None
        high = f"{_number(self.lt)})" if self.lt is not None else f"{_number(self.le)}]" if self.le is not None else None
        if low and high:
            text = f"in {low}, {high}"
        elif low:
            text = ("> " if self.gt is not None else ">= ") + low[1:]
        elif high:
            text = ("< " if self.lt is not None else "<= ") + high[:-1]
        else:
            text = "any number"
        if self.multiple_of is not None:
            text = f"a multiple of {self.multiple_of}, {text}"
        return f"{text} ({self.why})" if self.why else text


@dataclass(frozen=True)
class OneOf:
    """The values a string key allows when they are data kept elsewhere: ``values()`` lists them, ``where`` says
    where they come from (named in the error). A ``Literal`` would copy that data into the schema, where it drifts."""

    values: Callable[[], tuple[str, ...]]
    where: str


def _number(bound: float) -> str:
    return str(int(bound)) if math.isfinite(bound) and bound == int(bound) else str(bound)


# The ranges most keys share. A count of things (clips, frames, pixels, layers, epochs) is at least 1.
Count = Annotated[int, Range(ge=1)]
NonNegative = Annotated[int, Range(ge=0)]
# numpy seeds with 32-bit integers (np.random.seed refuses 2**32); torch and Python take any of these.
Seed = Annotated[int, Range(ge=0, le=2**32 - 1, why="numpy's seeding limit")]
Fraction = Annotated[float, Range(ge=0, lt=1)]
Weight = Annotated[float, Range(ge=0)]
# OpenCV's MJPG writer stores even sides (a 17x13 frame comes back 16x12); the smallest shape the generator
# draws is 7 px across (radius 3), so a frame under 16 px is mostly shape.
SyntheticSide = Annotated[int, Range(ge=16, multiple_of=2, why="MJPG stores even sides; a shape is 7 px across")]

Precision = Literal["fp32", "bf16", "fp16"]
Split = Literal["train", "val", "test"]


@dataclass
class SyntheticSpec:
    """Size of the embedded demo dataset (only read when ``dataset.kind: synthetic``)."""

    seed: Seed = 0
    # At least one video for each of train, val and test.
    num_videos: Annotated[int, Range(ge=3)] = 160
    # Each video gets one question of every template, so answers vary per video, never per question text;
    # the generator has eight templates (dualvgr.data.synthetic.TEMPLATES).
    questions_per_video: Annotated[int, Range(ge=1, le=8)] = 8
    val_fraction: Fraction = 0.15  # val_fraction + test_fraction < 1 (checked with both)
    test_fraction: Fraction = 0.25
    # A question asks how the shapes move: one frame shows no motion.
    frames: Annotated[int, Range(ge=2, why="one frame shows no motion")] = 36
    fps: Count = 12
    width: SyntheticSide = 96
    height: SyntheticSide = 72


@dataclass
class DatasetSpec:
    # A registered data set (dualvgr.core.registries.DATASETS): msvd-qa, msrvtt-qa, svqa, synthetic (the demo), or
    # one a plug-in registers; checked when a stage looks it up.
    kind: str = "synthetic"
    # Dataset root holding the annotations and the videos ({train,val,test}_qa.json for MSVD-QA/MSRVTT-QA,
    # questions.json and useVideo/ for SVQA); relative paths are from the working directory.
    root: str = "data/demo"
    # MSVD-QA video folder: auto finds video/, YouTubeClips/ or video/YouTubeClips/ (original bug B23).
    layout: Literal["auto", "video", "YouTubeClips", "video/YouTubeClips"] = "auto"
    mapping_file: str = "youtube_mapping.txt"
    # SVQA: a folder with {train,val,test}_svqa_ids.txt; null = the official lists shipped with the harness.
    svqa_splits: str | None = None
    # A reproduction with missing videos is not the paper's; allowing it is audited as a deviation.
    allow_missing_videos: bool = False
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)


@dataclass
class AppearanceSpec:
    """Per-frame ResNet-101 features, (V, N, F, 2048), as the original's appearance extraction."""

    backbone: Literal["resnet101"] = "resnet101"
    # imagenet = torchvision IMAGENET1K_V1 (B7); random (needs features.allow_random_weights); or a file path.
    weights: str = "imagenet"
    frames_per_clip: Count = 16
    image_size: Count = 224
    # original = std (0.229, 0.224, 0.224), the HCRN typo kept for fidelity (B25); torchvision = 0.225.
    normalization: Literal["original", "torchvision"] = "original"
    # Frames per network forward (several videos are packed together); null = one video per forward.
    batch_size: Count | None = None


@dataclass
class MotionSpec:
    """Per-clip 3D ResNeXt-101 (Kinetics) features, (V, N, 2048), as the original's motion extraction."""

    backbone: Literal["resnext101"] = "resnext101"  # Hara's 3D ResNeXt-101 (32x4d, shortcut B)
    # A path to Hara's resnext-101-kinetics.pth, or random (needs features.allow_random_weights).
    weights: str = "data/pretrained/resnext-101-kinetics.pth"
    frames_per_clip: Count = 16
    image_size: Count = 112
    # Frame size the network's fixed average-pool kernel is built for; image_size must equal it (B20).
    sample_size: Count = 112
    # Clips per network forward (several videos are packed together); null = one video per forward.
    batch_size: Count | None = None


@dataclass
class FeaturesSpec:
    # Clips per video = graph nodes of the model (num_of_nodes): 8 for MSVD-QA, 16 for MSRVTT-QA (B28).
    num_clips: Count = 8
    device: str = "auto"
    workers: NonNegative = 2  # decoding processes that overlap with the network; 0 = decode in the main process
    # Extraction processes, each taking a contiguous share of the videos (one GPU each where there are several);
    # their files are merged into one identical to a single-process run. Under torchrun the ranks are the
    # shards: leave it at 1.
    num_shards: Count = 1
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
    answer_top: Count = 4000
    # An original vocab json to import (needed to evaluate original checkpoints); null builds it from train.
    vocabulary: str | None = None


@dataclass
class ModelSpec:
    """DualVGR dimensions, as the original model's; the graph has features.num_clips nodes."""

    vision_dim: Count = 2048
    module_dim: Count = 768  # a multiple of gat_heads (checked with both)
    word_dim: Count = 300
    # train.py always built 2 units whatever --unit_layers said (B17); 2 is what the paper's numbers used.
    unit_layers: Count = 2
    graph_layers: Count = 1
    graph_module: Literal["GAT"] = "GAT"
    gat_heads: Count = 4
    alpha: Weight = 1.0  # weight of the consistency (common) loss
    beta: Weight = 1.0e-8  # weight of the HSIC dependence loss (summed over the batch, hence tiny)
    # Reproduce the original u+j graph-module index (B11); only matters when graph_layers > 1.
    original_graph_indexing: bool = False


@dataclass
class TrainSpec:
    optimizer: Literal["adam"] = "adam"
    lr: Annotated[float, Range(gt=0)] = 1.0e-4
    lr_decay_every: Count = 10  # epochs; the lr is multiplied by lr_decay_factor at the end of every 10th epoch
    lr_decay_factor: Annotated[float, Range(gt=0, le=1)] = 0.5  # 1 = a constant lr
    grad_clip: Annotated[float, Range(gt=0)] | None = 12.0  # max global L2 norm; null = no clipping
    batch_size: Count = 256
    epochs: Count = 25
    seed: Seed = 666
    # Several seeds train one run each and share the cached upstream stages; empty = [seed].
    seeds: list[Seed] = field(default_factory=list)
    device: str = "auto"
    precision: Precision = "fp32"
    tf32: bool = False  # TF32 changes numerics on Ampere+ GPUs (B40)
    compile: bool = False  # torch.compile; a numerics deviation on GPU
    workers: NonNegative = 4  # DataLoader processes reading batches; 0 = read them in the training process
    preload: bool = False  # load the HDF5 features into memory once
    # Subsets as the original's train_num/val_num/test_num (0 = all; B14).
    train_num: NonNegative = 0
    val_num: NonNegative = 0
    test_num: NonNegative = 0
    # Control: shuffle the visual features across videos so the model cannot answer from the video.
    permute_visual: bool = False
    # Split the best-val checkpoint is finally scored on; the paper reports test (val is a deviation).
    eval_split: Split = "test"


@dataclass
class EvaluateSpec:
    # best = the best-val checkpoint of this experiment's train run; or a path to ours or an original one.
    checkpoint: str = "best"
    split: Split = "test"


def _paper_tables() -> tuple[str, ...]:
    """``none`` and the keys of the tables the report ships; imported when a spec is checked, not with the schema."""
    from dualvgr.report.paper import table_keys

    return ("none", *table_keys())


# ``none``: the experiment reproduces no published table; its report is shown beside the table of the data set
# whose format it copies, marked not comparable.
PaperTableName = Annotated[str, OneOf(_paper_tables, "the tables in dualvgr/report/paper_tables.yaml")]


@dataclass
class PaperSpec:
    """Which published table this experiment reproduces (dualvgr/report/paper_tables.yaml)."""

    table: PaperTableName = "none"
    # Verdict tolerance in accuracy points: reproduced when the 95% interval lies inside paper ± tolerance.
    tolerance: Weight = 1.0


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
