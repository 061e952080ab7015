"""Tiny, learnable training inputs written in the stages' on-disk formats (no feature extraction needed).

Each video has a class c in 0..3 that sets a direction in its appearance and motion features; "what" questions
ask for the class (answer 2 + c), "who" questions for the parity (answers 6/7), "other" questions carry a
constant answer. A model that reads the features beats the per-type answer prior.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from dualvgr.core.spec import spec_from_dict
from dualvgr.text.encode import QUESTION_TYPES, EncodedQuestions
from dualvgr.text.storage import save_encoded_questions
from dualvgr.text.vocabulary import Vocabulary, save_vocabulary

TOKENS = ["<NULL>", "<UNK>", "what", "class", "is", "it", "who", "parity", "hello"]
ANSWERS = ["<UNK0>", "<UNK1>", "c0", "c1", "c2", "c3", "even", "odd", "hi"]
TEMPLATES = (("what", [2, 3, 4, 5]), ("who", [6, 7, 4, 5]), ("other", [8, 5]))


def write_features(path: Path, kind: str, ids: np.ndarray, classes: np.ndarray, clips: int, frames: int,
                   dim: int, seed: int, width: int | None = None) -> Path:
    rng = np.random.default_rng(seed)
    width = width or dim
    basis = rng.normal(size=(4, width)).astype(np.float32)
    shape = (len(ids), clips, frames, width) if kind == "appearance" else (len(ids), clips, width)
    values = rng.normal(scale=0.5, size=shape).astype(np.float32)
    signal = basis[classes]
    values += signal[:, None, None, :] if kind == "appearance" else signal[:, None, :]
    order = rng.permutation(len(ids))  # rows in an arbitrary order: consumers must map through ids
    with h5py.File(path, "w") as handle:
        handle.create_dataset("resnet_features" if kind == "appearance" else "resnext_features", data=values[order])
        handle.create_dataset("ids", data=ids[order].astype(np.int64))
    return path


def write_split(out: Path, split: str, video_ids: np.ndarray, classes: dict[int, int], vocabulary: Vocabulary,
                qa_start: int) -> Path:
    rows, lengths, answers, types, texts, answer_texts = [], [], [], [], [], []
    for vid in video_ids:
        for kind, tokens in TEMPLATES:
            c = classes[int(vid)]
            answer = {"what": 2 + c, "who": 6 + c % 2, "other": 8}[kind]
            rows.append(tokens)
            lengths.append(len(tokens))
            answers.append(answer)
            types.append(QUESTION_TYPES.index(kind))
            texts.append(" ".join(TOKENS[t] for t in tokens) + "?")
            answer_texts.append(ANSWERS[answer])
    length = max(lengths)
    questions = np.zeros((len(rows), length), np.int32)
    for i, tokens in enumerate(rows):
        questions[i, : len(tokens)] = tokens
    count = len(rows)
    encoded = EncodedQuestions(
        split=split, questions=questions, questions_len=np.array(lengths, np.int32),
        question_id=np.arange(count, dtype=np.int64),
        video_ids=np.repeat(video_ids, len(TEMPLATES)).astype(np.int64), answers=np.array(answers, np.int64),
        question_types=np.array(types, np.int8), ids=np.arange(qa_start, qa_start + count, dtype=np.int64),
        question_texts=tuple(texts), answer_texts=tuple(answer_texts),
        vocabulary_fingerprint=vocabulary.fingerprint(),
    )
    return save_encoded_questions(encoded, out / f"{split}_questions.npz")


def make_inputs(root: Path, *, videos: int = 48, clips: int = 3, frames: int = 2, dim: int = 16,
                motion_width: int | None = None, seed: int = 0) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = np.arange(100, 100 + videos, dtype=np.int64)
    classes_array = rng.integers(0, 4, size=videos)
    classes = dict(zip(ids.tolist(), classes_array.tolist()))
    vocabulary = Vocabulary({t: i for i, t in enumerate(TOKENS)}, {a: i for i, a in enumerate(ANSWERS)})
    paths = {"questions.vocab": save_vocabulary(vocabulary, root / "vocab.json")}
    n_val = n_test = videos // 4
    splits = {"train": ids[: videos - n_val - n_test], "val": ids[videos - n_val - n_test: videos - n_test],
              "test": ids[videos - n_test:]}
    start = 0
    for split, members in splits.items():
        paths[f"questions.{split}_questions"] = write_split(root, split, members, classes, vocabulary, start)
        start += len(members) * len(TEMPLATES)
    paths["appearance.features"] = write_features(root / "app.h5", "appearance", ids, classes_array, clips, frames, dim, seed)
    paths["motion.features"] = write_features(root / "mot.h5", "motion", ids, classes_array, clips, frames, dim,
                                              seed + 1, width=motion_width)
    return paths


def tiny_spec(tmp_path: Path, **train) -> object:
    values = {"epochs": 3, "batch_size": 16, "lr": 3e-3, "seed": 5, "device": "cpu", "workers": 0, "preload": True}
    values.update(train)
    return spec_from_dict({
        "name": "tiny",
        "features": {"num_clips": 3, "appearance": {"frames_per_clip": 2}},
        "model": {"vision_dim": 16, "module_dim": 16, "word_dim": 8, "unit_layers": 2},
        "train": values,
        "tracking": {"outputs": str(tmp_path / "outputs"), "tensorboard_dir": str(tmp_path / "tb")},
    })


@pytest.fixture()
def tiny_inputs(tmp_path) -> dict[str, Path]:
    return make_inputs(tmp_path / "inputs")
