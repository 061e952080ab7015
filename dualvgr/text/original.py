"""Import the original's pickled files without the original code (dualvgr-original.md §1.2 step 10, §1.3, §5 B35).

- ``{ds}_{split}_questions.pt``: despite the name, a plain ``pickle.dump`` of a dict (``questions`` int32 (Q, L),
  ``questions_len`` int32, ``question_id`` list 0..Q-1, ``video_ids``/``video_names`` int arrays, ``answers`` list,
  ``glove`` float32 (V_q, 300) in train / None, ``question_category`` list for SVQA);
- ``glove.840.300d.pkl``: a dict ``{word: float64 array (300,)}`` (§1.3).

Pickles run code on load, so these go through a restricted unpickler that allows only numpy array, dtype and scalar
reconstruction (and ``_codecs.encode``, which protocol 2 uses for bytes); any other global is refused. Pickles
written under numpy 1.x name ``numpy.core.*`` and under numpy 2 ``numpy._core.*``; both are mapped to the module of
the installed numpy, so either loads under either major version without the deprecated ``numpy.core`` shim (B35).
The original vocabulary json needs no import step: :func:`dualvgr.text.vocabulary.load_vocabulary` reads it.
"""

from __future__ import annotations

import importlib
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from dualvgr.core.errors import DataError
from dualvgr.data.annotations import load_qa_file
from dualvgr.text.encode import EncodedQuestions, question_type
from dualvgr.text.vocabulary import Vocabulary

_NUMPY_CORE = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}
_ORIGINAL_KEYS = ("questions", "questions_len", "question_id", "video_ids", "answers")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        canonical = "numpy.core" + module[len("numpy._core") :] if module.startswith("numpy._core") else module
        if (canonical, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: only numpy arrays, dtypes and scalars may be unpickled"
            )
        if canonical.startswith("numpy.core"):
            canonical = _NUMPY_CORE + canonical[len("numpy.core") :]
        return getattr(importlib.import_module(canonical), name)


def restricted_load(path: Path) -> Any:
    """Unpickle ``path`` allowing only numpy arrays and builtin containers; DataError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"original pickle not found: {path}")
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as err:
        raise DataError(f"{path} is not an original DualVGR/HCRN pickle of numpy arrays: {err}") from err


def load_original_glove_dict(path: Path) -> dict:
    """The original ``glove.840.300d.pkl``: ``{word: vector}`` (its NA-like words are one NaN key, B34)."""
    glove = restricted_load(path)
    if not isinstance(glove, dict) or not glove:
        raise DataError(f"{path}: expected the original GloVe pickle, a non-empty dict word -> vector")
    return glove


def import_original_questions(
    pt_path: Path, *, vocabulary: Vocabulary, split: str, annotation_file: Path | None = None
) -> EncodedQuestions:
    """An original ``*_questions.pt`` as :class:`EncodedQuestions`.

    ``vocabulary`` is the original vocab.json the file was encoded with: it gives the question types and is checked
    against the ids. With ``annotation_file`` (the split's ``*_qa.json``) the json ids and raw text are attached,
    after checking that the file holds the same number of questions with the same video ids.
    """
    pt_path = Path(pt_path)
    raw = _read_original_dict(pt_path)
    where = str(pt_path)
    try:
        questions = _int_array(raw["questions"], "questions", where, ndim=2).astype(np.int32)
        encoded = EncodedQuestions(
            split=split,
            questions=questions,
            questions_len=_int_array(raw["questions_len"], "questions_len", where).astype(np.int32),
            question_id=_int_array(raw["question_id"], "question_id", where),
            video_ids=_int_array(raw["video_ids"], "video_ids", where),
            answers=_int_array(raw["answers"], "answers", where),
            question_types=np.array(
                [question_type(vocabulary.question_idx_to_token[i]) for i in _first_ids(questions, vocabulary, where)],
                dtype=np.int8,
            ),
            question_category=(
                None
                if raw.get("question_category") is None
                else _int_array(raw["question_category"], "question_category", where)
            ),
            vocabulary_fingerprint=vocabulary.fingerprint(),
        )
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: {err}") from err
    encoded.check(where)
    if encoded.answers.size and (encoded.answers.min() < 0 or encoded.answers.max() >= vocabulary.num_answers):
        raise DataError(
            f"{where}: answer labels span {encoded.answers.min()}..{encoded.answers.max()}, but the vocabulary has "
            f"{vocabulary.num_answers} answers: this file was encoded with another vocab.json"
        )
    if annotation_file is not None:
        encoded = _attach_annotations(encoded, Path(annotation_file), where)
    return encoded


def import_original_glove(pt_path: Path) -> np.ndarray | None:
    """The float32 (V_q, 300) GloVe matrix stored in an original train ``*_questions.pt`` (None in val/test)."""
    glove = _read_original_dict(Path(pt_path)).get("glove")
    if glove is None:
        return None
    glove = np.asarray(glove)
    if glove.ndim != 2 or not np.issubdtype(glove.dtype, np.floating):
        raise DataError(f"{pt_path}: 'glove' is {glove.dtype} {glove.shape}, expected a float (V_q, 300) matrix")
    return glove.astype(np.float32, copy=False)


def _read_original_dict(path: Path) -> dict:
    raw = restricted_load(path)
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a dict (the original question pickle), got {type(raw).__name__}")
    missing = [key for key in _ORIGINAL_KEYS if key not in raw]
    if missing:
        raise DataError(f"{path}: missing key(s) {missing} (has {sorted(raw)}); not an original *_questions.pt")
    return raw


def _int_array(value: object, name: str, where: str, ndim: int = 1) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != ndim or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"{where}: '{name}' is {array.dtype} {array.shape}, expected {ndim}-d integers")
    return array.astype(np.int64)


def _first_ids(questions: np.ndarray, vocabulary: Vocabulary, where: str) -> np.ndarray:
    if questions.size and (questions.min() < 0 or questions.max() >= vocabulary.num_question_tokens):
        raise DataError(
            f"{where}: token ids span {questions.min()}..{questions.max()}, but the vocabulary has "
            f"{vocabulary.num_question_tokens} tokens: this file was encoded with another vocab.json"
        )
    return questions[:, 0] if questions.shape[1] else np.zeros(len(questions), dtype=np.int64)


def _attach_annotations(encoded: EncodedQuestions, annotation_file: Path, where: str) -> EncodedQuestions:
    items = load_qa_file(annotation_file)
    if len(items) != len(encoded):
        raise DataError(
            f"{annotation_file} has {len(items)} questions but {where} has {len(encoded)}: not the same split"
        )
    video_ids = np.array([item.video_id for item in items], dtype=np.int64)
    if not np.array_equal(video_ids, encoded.video_ids):
        bad = int(np.flatnonzero(video_ids != encoded.video_ids)[0])
        raise DataError(
            f"{annotation_file}, entry {bad}: video_id {video_ids[bad]} but {where} has {encoded.video_ids[bad]} "
            f"at that position: not the annotation file this pickle was made from"
        )
    return replace(
        encoded,
        ids=np.array([item.id for item in items], dtype=np.int64),
        question_texts=tuple(item.question for item in items),
        answer_texts=tuple(item.answer for item in items),
    )
