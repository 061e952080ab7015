"""Importing the original's files without the original code (§1.2 step 10, B35): vocab.json and *_questions.pt."""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.text import (
    QUESTION_TYPES,
    import_original_glove,
    import_original_questions,
    load_encoded_questions,
    load_vocabulary,
    save_encoded_questions,
)
from tests.text.qa_files import write_qa

# An original vocab.json, as preprocess_questions.py writes it (json.dump(vocab, f, indent=4)).
ORIGINAL_VOCAB = """{
    "question_token_to_idx": {"<NULL>": 0, "<UNK>": 1, "what": 2, "is": 3, "he": 4, "doing": 5, "who": 6},
    "answer_token_to_idx": {"<UNK0>": 0, "<UNK1>": 1, "running": 2, "man": 3},
    "question_answer_token_to_idx": {"<NULL>": 0, "<UNK>": 1}
}"""
QUESTIONS = [[2, 3, 4, 5], [6, 3, 4, 0], [1, 3, 0, 0]]  # "what is he doing", "who is he", "<UNK> is"


def original_dict(*, glove: bool, category: bool = False) -> dict:
    """The dict preprocess_questions.py pickles (§1.2 step 10)."""
    obj = {
        "questions": np.asarray(QUESTIONS, dtype=np.int32),
        "questions_len": np.asarray([4, 3, 2], dtype=np.int32),
        "question_id": [0, 1, 2],
        "video_ids": np.asarray([11, 12, 13]),
        "video_names": np.asarray([11, 12, 13]),
        "answers": [2, 3, 0],
        "glove": np.arange(7 * 300, dtype=np.float32).reshape(7, 300) if glove else None,
    }
    if category:
        obj["question_category"] = [0, 14, 3]
    return obj


def write_pickle(path, obj, *, protocol: int = 3, numpy_core: str = "numpy._core") -> str:
    """pickle.dump as the original (Python 3.7: protocol 3); numpy_core='numpy.core' mimics a numpy 1.x writer."""
    data = pickle.dumps(obj, protocol=protocol)
    if numpy_core != "numpy._core":
        assert protocol <= 3, "module names are only rewritable in the text GLOBAL opcode"
        data = data.replace(b"numpy._core", numpy_core.encode())
    path.write_bytes(data)
    return path


@pytest.fixture
def vocabulary(tmp_path):
    path = tmp_path / "msvd-qa_vocab.json"
    path.write_text(ORIGINAL_VOCAB, encoding="utf-8")
    return load_vocabulary(path)


def test_original_vocabulary_loads(vocabulary):
    assert vocabulary.num_question_tokens == 7 and vocabulary.answer_idx_to_token[3] == "man"


@pytest.mark.parametrize(
    ("protocol", "numpy_core"),
    [(3, "numpy.core"), (3, "numpy._core"), (2, "numpy.core"), (4, "numpy._core"), (5, "numpy._core")],
    ids=["py37-numpy1", "py37-numpy2", "protocol2-numpy1", "protocol4", "protocol5"],
)
def test_b35_original_question_pickle_imports(tmp_path, vocabulary, protocol, numpy_core):
    path = write_pickle(
        tmp_path / "msvd-qa_train_questions.pt", original_dict(glove=True), protocol=protocol, numpy_core=numpy_core
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy.core DeprecationWarning: module paths are mapped, not shimmed (B35)
        encoded = import_original_questions(path, vocabulary=vocabulary, split="train")
        glove = import_original_glove(path)
    assert encoded.questions.dtype == np.int32 and encoded.questions.tolist() == QUESTIONS
    assert encoded.questions_len.tolist() == [4, 3, 2] and encoded.answers.tolist() == [2, 3, 0]
    assert encoded.video_ids.dtype == np.int64 and encoded.video_ids.tolist() == [11, 12, 13]
    assert [QUESTION_TYPES[t] for t in encoded.question_types] == ["what", "who", "other"]
    assert encoded.ids is None and encoded.question_texts is None, "no annotation file given: no ids or text"
    assert glove.dtype == np.float32 and glove.shape == (7, 300) and glove[1, 0] == 300.0


def test_val_pickle_has_no_glove_and_svqa_categories(tmp_path, vocabulary):
    path = write_pickle(tmp_path / "svqa_val_questions.pt", original_dict(glove=False, category=True))
    assert import_original_glove(path) is None
    encoded = import_original_questions(path, vocabulary=vocabulary, split="val")
    assert encoded.question_category.tolist() == [0, 14, 3]


def test_annotations_attach_ids_and_text(tmp_path, vocabulary):
    path = write_pickle(tmp_path / "q.pt", original_dict(glove=False))
    qa = write_qa(
        tmp_path / "val_qa.json",
        [("What is he doing?", "running"), ("Who is he?", "man"), ("Why is?", "x")],
        first_id=500,
        video_id=11,
    )
    encoded = import_original_questions(path, vocabulary=vocabulary, split="val", annotation_file=qa)
    assert encoded.ids.tolist() == [500, 501, 502] and encoded.question_texts[1] == "Who is he?"
    assert encoded.answer_texts == ("running", "man", "x")
    saved = save_encoded_questions(encoded, tmp_path / "val_questions.npz")
    again = load_encoded_questions(saved)
    assert again.questions.tolist() == QUESTIONS and again.question_texts == encoded.question_texts


def test_annotations_for_another_split_are_rejected(tmp_path, vocabulary):
    path = write_pickle(tmp_path / "q.pt", original_dict(glove=False))
    qa = write_qa(tmp_path / "val_qa.json", [("a?", "b"), ("c?", "d"), ("e?", "f")], video_id=99)
    with pytest.raises(DataError, match=r"entry 0: video_id 99 but .* has 11"):
        import_original_questions(path, vocabulary=vocabulary, split="val", annotation_file=qa)
    qa = write_qa(tmp_path / "val_qa.json", [("a?", "b")], video_id=11)
    with pytest.raises(DataError, match="has 1 questions but"):
        import_original_questions(path, vocabulary=vocabulary, split="val", annotation_file=qa)


def test_pickle_from_another_vocabulary_is_rejected(tmp_path, vocabulary):
    obj = original_dict(glove=False)
    obj["questions"][0, 0] = 40
    with pytest.raises(DataError, match="token ids span 0..40, but the vocabulary has 7 tokens"):
        import_original_questions(write_pickle(tmp_path / "q.pt", obj), vocabulary=vocabulary, split="val")
    obj = original_dict(glove=False)
    obj["answers"] = [2, 3, 9]
    with pytest.raises(DataError, match="answer labels span 2..9, but the vocabulary has 4 answers"):
        import_original_questions(write_pickle(tmp_path / "q.pt", obj), vocabulary=vocabulary, split="val")


def test_b36_empty_question_in_original_pickle(tmp_path, vocabulary):
    obj = original_dict(glove=False)
    obj["questions_len"] = np.asarray([4, 3, 0], dtype=np.int32)
    with pytest.raises(DataError, match="question 2 has length 0"):
        import_original_questions(write_pickle(tmp_path / "q.pt", obj), vocabulary=vocabulary, split="val")


def test_malformed_original_pickles(tmp_path, vocabulary):
    obj = original_dict(glove=False)
    del obj["answers"]
    with pytest.raises(DataError, match=r"missing key\(s\) \['answers'\]"):
        import_original_questions(write_pickle(tmp_path / "q.pt", obj), vocabulary=vocabulary, split="val")
    with pytest.raises(DataError, match="expected a dict"):
        import_original_questions(write_pickle(tmp_path / "q.pt", [1, 2]), vocabulary=vocabulary, split="val")
    (tmp_path / "t.pt").write_bytes(b"\x80\x03not a pickle")
    with pytest.raises(DataError, match="not an original DualVGR/HCRN pickle"):
        import_original_questions(tmp_path / "t.pt", vocabulary=vocabulary, split="val")


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_code(tmp_path, vocabulary):
    path = write_pickle(tmp_path / "evil.pt", {"questions": _Exploit()})
    with pytest.raises(DataError, match=r"refusing global (posix|os)\.system"):
        import_original_questions(path, vocabulary=vocabulary, split="val")
