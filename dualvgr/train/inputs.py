"""Load what training and evaluation read: vocabulary, encoded splits, GloVe, checked feature files.

Feature files are checked before anything trains (clips, frames, widths: the 32768-wide motion features of
original bug B20 are refused with their cause). A question whose video has no features is an error naming the
file, the count per split and the first such videos, unless ``dataset.allow_missing_videos`` allows missing
videos: then it is dropped and counted per split (``TrainInputs.dropped``, which the stages log), never silently.
``train_num``/``val_num``/``test_num`` take the first K questions as the original did (without its B14 crash).
Each split's stored question categories must be the data set's (its entry's, ``DATASETS[dataset.kind]``): a split
encoded for another data set is refused, not scored under the wrong names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dualvgr.core.errors import DataError
from dualvgr.core.schema import ExperimentSpec
from dualvgr.data.annotations import SPLITS
from dualvgr.data.categories import QUESTION_WORDS, QuestionCategories
from dualvgr.data.entry import dataset_entry
from dualvgr.features.reader import FeatureFileInfo, check_feature_file
from dualvgr.text.encode import EncodedQuestions
from dualvgr.text.glove import load_glove
from dualvgr.text.storage import load_encoded_questions
from dualvgr.text.vocabulary import Vocabulary, load_vocabulary
from dualvgr.train.data import SplitQuestions, VideoFeatures

GPU_PRELOAD_FRACTION = 0.5  # features go to GPU memory when they take at most this share of what is free


@dataclass
class TrainInputs:
    vocabulary: Vocabulary
    glove: np.ndarray | None
    train: SplitQuestions
    val: SplitQuestions
    test: SplitQuestions
    features: VideoFeatures
    dropped: dict[str, int] = field(default_factory=dict)  # questions without features, per split

    def split(self, name: str) -> SplitQuestions:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def split_questions(encoded: EncodedQuestions, vocabulary: Vocabulary,
                    categories: QuestionCategories = QUESTION_WORDS) -> SplitQuestions:
    count = len(encoded)
    answers = np.asarray(encoded.answers, dtype=np.int64)
    texts = encoded.question_texts or tuple(
        " ".join(vocabulary.question_idx_to_token[t] for t in row[:n]) for row, n in zip(encoded.questions, encoded.questions_len)
    )
    answer_texts = encoded.answer_texts or tuple(vocabulary.answer_idx_to_token[a] for a in answers)
    return SplitQuestions(
        name=encoded.split,
        questions=torch.from_numpy(encoded.questions.astype(np.int64)),
        lengths=torch.from_numpy(encoded.questions_len.astype(np.int64)),
        answers=torch.from_numpy(answers),
        video_ids=np.asarray(encoded.video_ids, dtype=np.int64),
        types=np.asarray(encoded.category_names, dtype=object)[encoded.question_types.astype(np.int64)].astype(str),
        qa_ids=np.asarray(encoded.ids if encoded.ids is not None else np.arange(count), dtype=np.int64),
        question_text=list(texts),
        answer_text=list(answer_texts),
        categories=categories.names,
    )


def check_features(spec: ExperimentSpec, appearance: Path, motion: Path) -> tuple[FeatureFileInfo, FeatureFileInfo]:
    """Both files must have the spec's clips and frames and 2048-wide rows (B20, B28)."""
    clips = spec.features.num_clips
    return (
        check_feature_file(appearance, "appearance", num_clips=clips,
                           frames_per_clip=spec.features.appearance.frames_per_clip, dim=spec.model.vision_dim),
        check_feature_file(motion, "motion", num_clips=clips, dim=spec.model.vision_dim),
    )


def load_inputs(spec: ExperimentSpec, paths: dict[str, Path], device: torch.device,
                vocabulary: Vocabulary | None = None) -> TrainInputs:
    """``paths`` maps ``<stage>.<output>`` to files, as the upstream stages recorded them."""
    vocabulary = vocabulary or load_vocabulary(paths["questions.vocab"])
    glove = None
    if "questions.glove" in paths:  # checked again (shape, dtype, finite): a cached file may predate the checks
        glove = load_glove(paths["questions.glove"], vocabulary.question_idx_to_token,
                           expected_dim=spec.model.word_dim).matrix
    app_info, mot_info = check_features(spec, paths["appearance.features"], paths["motion.features"])
    limits = {"train": spec.train.train_num, "val": spec.train.val_num, "test": spec.train.test_num}
    kind = spec.dataset.kind
    categories = dataset_entry(kind).categories
    asked = {}
    for name in SPLITS:
        path = paths[f"questions.{name}_questions"]
        encoded = load_encoded_questions(path)
        if encoded.category_names != categories.labels:
            raise DataError(
                f"{path} stores the question categories {list(encoded.category_names)}, but dataset.kind '{kind}' "
                f"has {list(categories.labels)}: the questions were encoded for another data set; re-run the "
                f"questions stage for this one (dualvgr questions --force)"
            )
        if encoded.vocabulary_fingerprint not in (None, vocabulary.fingerprint()):
            raise DataError(
                f"{path} was encoded with another vocabulary than the one given (fingerprints "
                f"{encoded.vocabulary_fingerprint[:12]} vs {vocabulary.fingerprint()[:12]}); re-run the questions stage"
            )
        split = split_questions(encoded, vocabulary, categories)
        if limits[name] > 0:
            split = split.subset(np.arange(min(limits[name], len(split))))
        asked[name] = split
    uncovered = [problem for info in (app_info, mot_info) if (problem := _uncovered(info, asked))]
    if uncovered and not spec.dataset.allow_missing_videos:
        raise DataError(
            "; ".join(uncovered) + ". Without dataset.allow_missing_videos those questions are not dropped: "
            "re-extract the features of the dataset the questions come from (dualvgr appearance/motion --force), "
            "or set dataset.allow_missing_videos: true to score without them (counted as <split>_questions_dropped "
            "and recorded as a deviation)"
        )
    with_features = np.array(sorted(set(app_info.row_of) & set(mot_info.row_of)), dtype=np.int64)
    splits, dropped = {}, {}
    for name, split in asked.items():
        keep = np.isin(split.video_ids, with_features)
        dropped[name] = int((~keep).sum())
        splits[name] = split.subset(keep) if dropped[name] else split
        if len(splits[name]) == 0:
            raise DataError(
                f"the {name} split has no question with features ({paths[f'questions.{name}_questions']}); check "
                f"the data and features stages"
            )
    video_ids = np.unique(np.concatenate([s.video_ids for s in splits.values()]))
    features = VideoFeatures(
        app_info, mot_info, video_ids, preload=_preload(spec, app_info, mot_info, len(video_ids), device),
        device=device, permute_seed=spec.train.seed if spec.train.permute_visual else None,
    )
    return TrainInputs(vocabulary, glove, splits["train"], splits["val"], splits["test"], features, dropped)


def _uncovered(info: FeatureFileInfo, splits: dict[str, SplitQuestions], show: int = 5) -> str | None:
    """What ``info`` lacks for the questions of ``splits`` (file, questions per split, first video ids), or None."""
    rows = np.fromiter(info.row_of, dtype=np.int64, count=len(info.row_of))
    lacking = {name: ~np.isin(split.video_ids, rows) for name, split in splits.items()}
    if not any(mask.any() for mask in lacking.values()):
        return None
    videos = np.unique(np.concatenate([split.video_ids[lacking[name]] for name, split in splits.items()]))
    counts = ", ".join(f"{name} {int(mask.sum())}" for name, mask in lacking.items())
    return (
        f"{info.path} ({info.kind} features) has no row for {len(videos)} video(s) that questions name "
        f"(questions per split: {counts}); first missing video ids: {', '.join(map(str, videos[:show].tolist()))}"
    )


def _preload(spec: ExperimentSpec, app: FeatureFileInfo, mot: FeatureFileInfo, videos: int, device: torch.device) -> bool:
    """Preload when asked, and on CUDA whenever the features fit comfortably (the fast path)."""
    if spec.train.preload:
        return True
    if device.type != "cuda":
        return False
    per_video = (np.prod(app.shape[1:]) + np.prod(mot.shape[1:])) * 4
    free, _ = torch.cuda.mem_get_info(device)
    return per_video * videos <= GPU_PRELOAD_FRACTION * free
