"""Encoded questions round-trip through .npz + .json without pickle (B35)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.text import EncodedQuestions, load_encoded_questions, read_sidecar, save_encoded_questions


def encoded(**overrides) -> EncodedQuestions:
    fields = dict(
        split="val",
        questions=np.array([[2, 3, 0], [4, 5, 6]], dtype=np.int32),
        questions_len=np.array([2, 3], dtype=np.int32),
        question_id=np.arange(2, dtype=np.int64),
        video_ids=np.array([10, 11], dtype=np.int64),
        answers=np.array([1, 4], dtype=np.int64),
        question_types=np.array([0, 5], dtype=np.int8),
        ids=np.array([900, 901], dtype=np.int64),
        question_texts=("What is it?", "Is the caf\u00e9 open?"),
        answer_texts=("cat", "yes"),
        vocabulary_fingerprint="abc",
    )
    return EncodedQuestions(**{**fields, **overrides})


def test_round_trip(tmp_path):
    original = encoded()
    path = save_encoded_questions(original, tmp_path / "val_questions.npz", extra={"tokenizer": "x"})
    loaded = load_encoded_questions(path)
    for name in ("questions", "questions_len", "question_id", "video_ids", "answers", "question_types", "ids"):
        a, b = getattr(original, name), getattr(loaded, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), f"{name} must round-trip with its dtype"
    assert loaded.question_texts == original.question_texts and loaded.answer_texts == original.answer_texts
    assert loaded.split == "val" and loaded.vocabulary_fingerprint == "abc" and loaded.question_category is None
    meta = read_sidecar(path)
    assert meta["tokenizer"] == "x" and meta["max_length"] == 3 and meta["count"] == 2
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(
            ["questions", "questions_len", "question_id", "video_ids", "answers", "question_types", "ids"]
        ), "only plain arrays, loadable without pickle"


def test_round_trip_without_text(tmp_path):
    path = save_encoded_questions(encoded(ids=None, question_texts=None, answer_texts=None), tmp_path / "q.npz")
    loaded = load_encoded_questions(path)
    assert loaded.ids is None and loaded.question_texts is None


def test_invariants_are_checked_on_save(tmp_path):
    with pytest.raises(DataError, match="question_id must be the positions"):
        save_encoded_questions(encoded(question_id=np.array([5, 6])), tmp_path / "q.npz")
    with pytest.raises(DataError, match="answers has shape"):
        save_encoded_questions(encoded(answers=np.array([1])), tmp_path / "q.npz")
    with pytest.raises(DataError, match="questions must be int32"):
        save_encoded_questions(encoded(questions=np.zeros((2, 3), dtype=np.int64)), tmp_path / "q.npz")


def test_damaged_files_are_clear_errors(tmp_path):
    path = save_encoded_questions(encoded(), tmp_path / "q.npz")
    sidecar = tmp_path / "q.json"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "format": "other"}))
    with pytest.raises(DataError, match="expected format 'dualvgr-questions'"):
        load_encoded_questions(path)
    sidecar.write_text(json.dumps({**meta, "count": 5}))
    with pytest.raises(DataError, match="sidecar says 5 questions"):
        load_encoded_questions(path)
    sidecar.unlink()
    with pytest.raises(DataError, match="need their .npz and .json side by side"):
        load_encoded_questions(path)
    sidecar.write_text(json.dumps(meta))
    with zipfile.ZipFile(path, "w") as zf:  # an npz without the answers array
        zf.writestr("questions.npy", b"")
    with pytest.raises(DataError, match="q.npz"):
        load_encoded_questions(path)
