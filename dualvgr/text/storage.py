"""Encoded questions on disk without pickle: ``{split}_questions.npz`` + ``{split}_questions.json`` (B35).

The original pickled its arrays into ``*_questions.pt`` (§1.2 step 10), which ties files to numpy's module paths
(B35) and runs code on load. We store the same fields as plain arrays, read with ``allow_pickle=False``:

``{split}_questions.npz`` (``np.savez_compressed``):

=================== ============ ==========================================================================
array               dtype/shape  content
=================== ============ ==========================================================================
questions           int32 (Q, L) token ids, right-padded with 0 to the split's longest question
questions_len       int32 (Q,)   true lengths (>= 1)
question_id         int64 (Q,)   0..Q-1, the position in the split's json (the original's ``question_id``)
video_ids           int64 (Q,)   json ``video_id``
answers             int64 (Q,)   answer labels (unknown: 0 in train, 1 in val/test)
question_types      int8 (Q,)    category: index into ``question_types`` of the sidecar (the data set's labels)
ids                 int64 (Q,)   json ``id`` (absent for an original pickle imported without annotations)
question_category   int64 (Q,)   SVQA category (only when imported from an original SVQA pickle)
=================== ============ ==========================================================================

``{split}_questions.json`` (UTF-8): ``format``, ``version``, ``split``, ``count``, ``max_length``,
``question_types`` (the labels ``question_types`` indexes: the data set's category names, then ``other``; for
MSVD-QA/MSRVTT-QA what, who, how, when, where, other), ``vocabulary_fingerprint`` (:meth:`Vocabulary.fingerprint`), ``questions`` and
``answers`` (the raw strings, or null), plus whatever the writer adds (the train split records its GloVe source and
stats under ``glove``, or null for ``glove: none``). The GloVe matrix itself is ``glove.npy``: float32 (V_q, 300),
row i for question token i (:func:`save_glove_matrix`); :func:`dualvgr.text.glove.load_glove` reads it back,
shape-checked.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from dualvgr.core.errors import DataError
from dualvgr.text.encode import EncodedQuestions

FORMAT, VERSION = "dualvgr-questions", 1
_ARRAYS = {
    "questions": np.int32,
    "questions_len": np.int32,
    "question_id": np.int64,
    "video_ids": np.int64,
    "answers": np.int64,
    "question_types": np.int8,
}
_OPTIONAL_ARRAYS = {"ids": np.int64, "question_category": np.int64}


def questions_file(out_dir: Path, split: str) -> Path:
    """Where a split's encoded questions live in the questions stage's output directory."""
    return Path(out_dir) / f"{split}_questions.npz"


def sidecar_file(npz_path: Path) -> Path:
    return Path(npz_path).with_suffix(".json")


def save_encoded_questions(encoded: EncodedQuestions, path: Path, *, extra: dict | None = None) -> Path:
    """Write ``path`` (.npz) and its .json sidecar; ``extra`` keys are added to the sidecar."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"encoded questions go to a .npz file, got {path}")
    encoded.check(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: getattr(encoded, name).astype(dtype, copy=False) for name, dtype in _ARRAYS.items()}
    for name, dtype in _OPTIONAL_ARRAYS.items():
        if getattr(encoded, name) is not None:
            arrays[name] = getattr(encoded, name).astype(dtype, copy=False)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:  # a file object, so numpy does not append another ".npz"
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)
    sidecar = {
        "format": FORMAT,
        "version": VERSION,
        "split": encoded.split,
        "count": len(encoded),
        "max_length": encoded.max_length,
        "question_types": list(encoded.category_names),
        "vocabulary_fingerprint": encoded.vocabulary_fingerprint,
        "questions": None if encoded.question_texts is None else list(encoded.question_texts),
        "answers": None if encoded.answer_texts is None else list(encoded.answer_texts),
        **(extra or {}),
    }
    _write_json(sidecar_file(path), sidecar)
    return path


def load_encoded_questions(path: Path) -> EncodedQuestions:
    """Read a split written by :func:`save_encoded_questions`, checking the format, dtypes and shapes."""
    path = Path(path)
    meta = read_sidecar(path)
    if not path.is_file():
        raise DataError(f"encoded questions not found: {path} (its sidecar exists); re-run the questions stage")
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise DataError(f"{path} is not a readable .npz of plain arrays ({err}); re-run the questions stage") from err
    missing = [name for name in _ARRAYS if name not in stored]
    if missing:
        raise DataError(f"{path}: missing array(s) {missing} (has {sorted(stored)})")
    for name, dtype in {**_ARRAYS, **_OPTIONAL_ARRAYS}.items():
        if name in stored and stored[name].dtype != dtype:
            raise DataError(f"{path}: '{name}' is {stored[name].dtype}, expected {np.dtype(dtype)}")
    labels = meta.get("question_types")
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise DataError(
            f"{sidecar_file(path)}: 'question_types' must be the list of category labels the questions index, got "
            f"{labels!r:.120}; re-run the questions stage"
        )
    encoded = EncodedQuestions(
        split=meta["split"],
        **{name: stored[name] for name in _ARRAYS},
        ids=stored.get("ids"),
        question_texts=None if meta.get("questions") is None else tuple(meta["questions"]),
        answer_texts=None if meta.get("answers") is None else tuple(meta["answers"]),
        question_category=stored.get("question_category"),
        vocabulary_fingerprint=meta.get("vocabulary_fingerprint"),
        category_names=tuple(labels),
    )
    if meta.get("count") != len(encoded):
        raise DataError(f"{path}: sidecar says {meta.get('count')} questions, the arrays hold {len(encoded)}")
    encoded.check(str(path))
    return encoded


def read_sidecar(npz_path: Path) -> dict:
    """The .json sidecar of an encoded split (text, GloVe record, vocabulary fingerprint)."""
    sidecar = sidecar_file(npz_path)
    if not sidecar.is_file():
        raise DataError(f"{sidecar} not found: encoded questions need their .npz and .json side by side")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{sidecar} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        found = (meta.get("format"), meta.get("version")) if isinstance(meta, dict) else type(meta).__name__
        raise DataError(f"{sidecar}: expected format {FORMAT!r} version {VERSION}, found {found}")
    return meta


def save_glove_matrix(matrix: np.ndarray, path: Path) -> Path:
    """Write the float32 (V_q, D) GloVe matrix as a plain .npy."""
    path = Path(path)
    if matrix.ndim != 2:
        raise ValueError(f"GloVe matrix must be (V_q, D), got shape {matrix.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, matrix.astype(np.float32, copy=False), allow_pickle=False)
    os.replace(tmp, path)
    return path


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
