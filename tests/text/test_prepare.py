"""``prepare_questions`` end to end on a tiny hand-made dataset: every encoding rule of §1.2 and the outputs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.text import (
    QUESTION_TYPES,
    QuestionWarning,
    accuracy_by_type,
    load_encoded_questions,
    load_glove,
    load_vocabulary,
    prepare_questions,
    read_sidecar,
    save_vocabulary,
)
from dualvgr.text.vocabulary import build_vocabulary

TRAIN = [
    ("What is the man doing?", "cooking"),
    ("Who is cooking?", "man"),
    ("How many dogs?", "man"),
    ("When does it end", "cooking"),  # no '?': the original drops the 'd' (B36)
    ("Where is the dog?", "two"),
    ("Is the cat black?", "rare"),  # 'rare' falls outside answer_top=3: label 0 in train
]
VAL = [("What is the zebra eating?", "man"), ("Whom did he see?", "giraffe")]
TEST = [("Who?", "two"), ("Where is it?", "elephant")]


@pytest.fixture
def dataset(qa_writer):
    return {
        "train": qa_writer("train", TRAIN),
        "val": qa_writer("val", VAL, first_id=100),
        "test": qa_writer("test", TEST, first_id=200),
    }


@pytest.fixture
def prepared(dataset, tmp_path):
    with pytest.warns(QuestionWarning, match=r"1 question\(s\) do not end with '\?'"):
        result = prepare_questions(dataset, tmp_path / "out", answer_top=3, glove_source=None)
    return result


def test_vocabularies(prepared):
    vocabulary = load_vocabulary(prepared.vocabulary_path)
    assert list(vocabulary.question_token_to_idx)[:8] == ["<NULL>", "<UNK>", "what", "is", "the", "man", "doing", "who"]
    assert "en" in vocabulary.question_token_to_idx, "'When does it end' must lose its last character, as the original"
    assert "zebra" not in vocabulary.question_token_to_idx, "val tokens are never added"
    assert list(vocabulary.answer_token_to_idx) == ["<UNK0>", "<UNK1>", "cooking", "man", "two"], (
        "cooking and man both occur twice (tie: first-seen order), two once; rare is cut by answer_top=3"
    )
    assert (prepared.question_vocabulary_size, prepared.answer_vocabulary_size) == (
        len(vocabulary.question_token_to_idx),
        5,
    )


def test_train_encoding(prepared):
    train = load_encoded_questions(prepared.question_files["train"])
    vocabulary = load_vocabulary(prepared.vocabulary_path)
    assert train.questions.dtype == np.int32 and train.questions.shape == (6, 5), (
        "train pads to its longest question (5)"
    )
    assert train.questions_len.tolist() == [5, 3, 3, 4, 4, 4]
    assert train.questions[1].tolist() == vocabulary.encode_tokens(["who", "is", "cooking"]) + [0, 0], "zero padding"
    assert train.answers.tolist() == [2, 3, 3, 2, 4, 0], "unknown train answer ('rare') is <UNK0> = 0"
    assert [QUESTION_TYPES[t] for t in train.question_types] == ["what", "who", "how", "when", "where", "other"]
    assert train.question_id.tolist() == list(range(6)), "question_id is the position, not the json id"
    assert train.ids.tolist() == list(range(6)) and train.video_ids.tolist() == [7, 8, 9, 10, 11, 12]
    assert train.question_texts[3] == "When does it end" and train.answer_texts[5] == "rare", "raw strings kept"
    stats = prepared.splits["train"]
    assert (stats.unknown_answers, stats.unknown_answer_label, stats.without_question_mark) == (1, 0, 1)
    assert stats.type_counts == dict.fromkeys(QUESTION_TYPES, 1)


def test_val_and_test_encoding(prepared):
    val = load_encoded_questions(prepared.question_files["val"])
    test = load_encoded_questions(prepared.question_files["test"])
    assert val.questions.shape == (2, 5) and test.questions.shape == (2, 3), "each split pads to its own maximum"
    assert val.answers.tolist() == [3, 1], "unknown val answer ('giraffe') is <UNK1> = 1: always counted wrong"
    assert test.answers.tolist() == [4, 1]
    assert val.questions[0, 3] == 1 and val.questions[0, 4] == 1, "'zebra' and 'eating' are not train tokens: <UNK>"
    assert [QUESTION_TYPES[t] for t in val.question_types] == ["what", "other"], "first token 'whom' is <UNK>: other"
    assert [QUESTION_TYPES[t] for t in test.question_types] == ["who", "where"]
    assert prepared.splits["val"].unknown_tokens == 6, "zebra, eating, whom, did, he, see"
    assert (prepared.splits["val"].unknown_answers, prepared.splits["val"].unknown_answer_label) == (1, 1)
    assert val.ids.tolist() == [100, 101]


def test_outputs_and_metrics(prepared, tmp_path):
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["vocab.json"] + [f"{s}_questions.{ext}" for s in ("train", "val", "test") for ext in ("npz", "json")]
    ), "glove: none writes no glove.npy"
    assert prepared.glove is None and prepared.glove_path is None
    assert read_sidecar(prepared.question_files["train"])["glove"] is None, "the train sidecar records 'no glove'"
    metrics = prepared.metrics()
    assert metrics["val.unknown_answers"] == 1.0 and metrics["train.type.other"] == 1.0
    assert metrics["vocab.answer_size"] == 5.0 and all(isinstance(v, float) for v in metrics.values())


def test_glove_matrix_written_and_recorded(dataset, tmp_path):
    glove_txt = tmp_path / "glove.txt"
    glove_txt.write_text("what 1 2 3\nman 4 5 6\nzebra 7 8 9\n", encoding="utf-8")
    with pytest.warns(QuestionWarning):
        result = prepare_questions(dataset, tmp_path / "out", answer_top=3, glove_source=glove_txt, glove_dim=3)
    vocabulary = load_vocabulary(result.vocabulary_path)
    matrix = load_glove(result.glove_path, vocabulary.question_idx_to_token, expected_dim=3).matrix
    assert matrix.shape == (vocabulary.num_question_tokens, 3) and matrix.dtype == np.float32
    assert matrix[vocabulary.question_token_to_idx["man"]].tolist() == [4, 5, 6]
    assert not matrix[:2].any(), "<NULL> and <UNK> are not GloVe words: zero rows"
    assert result.glove.found == 2 and result.metrics()["glove.found"] == 2.0, "zebra is not in the train vocabulary"
    record = read_sidecar(result.question_files["train"])["glove"]
    assert record["file"] == "glove.npy" and record["found"] == 2


def test_imported_vocabulary_is_used_and_compared(dataset, tmp_path):
    original = build_vocabulary([["who", "what"], ["is"]], ["man", "two"], answer_top=10)
    vocab_file = save_vocabulary(original, tmp_path / "original_vocab.json")
    with pytest.warns(QuestionWarning):
        result = prepare_questions(dataset, tmp_path / "out", answer_top=3, glove_source=None, vocab_file=vocab_file)
    assert result.vocabulary_matches_rebuilt is False and result.vocabulary_source == str(vocab_file)
    assert load_vocabulary(result.vocabulary_path) == original, "the imported vocabulary is copied to vocab.json"
    train = load_encoded_questions(result.question_files["train"])
    assert train.questions[1].tolist() == [2, 4, 1, 0, 0], "encoded with the imported indices: who=2 is=4 cooking=<UNK>"
    assert train.answers.tolist() == [0, 2, 2, 0, 3, 0]


def test_imported_vocabulary_matching_train(prepared, dataset, tmp_path):
    with pytest.warns(QuestionWarning):
        again = prepare_questions(
            {"val": dataset["val"], "train": dataset["train"]},
            tmp_path / "again",
            answer_top=3,
            glove_source=None,
            vocab_file=prepared.vocabulary_path,
        )
    assert again.vocabulary_matches_rebuilt is True
    assert list(again.splits) == ["train", "val"], "train is processed first whatever the mapping order"


def test_evaluation_only_with_imported_vocabulary(prepared, dataset, tmp_path):
    result = prepare_questions(
        {"test": dataset["test"]},
        tmp_path / "eval",
        answer_top=3,
        glove_source=None,
        vocab_file=prepared.vocabulary_path,
    )
    assert list(result.question_files) == ["test"] and result.vocabulary_matches_rebuilt is None


def test_b36_empty_question_is_an_error_naming_it(qa_writer, tmp_path):
    path = qa_writer("train", [("What is it?", "a"), ("?", "b")], first_id=40)
    with pytest.raises(DataError) as err:
        prepare_questions({"train": path}, tmp_path / "out", answer_top=3, glove_source=None)
    message = str(err.value)
    for part in (str(path), "(train)", "entry 1", "id 41", "'?'", "no token"):
        assert part in message, f"the empty-question error must mention {part!r}: {message}"


def test_missing_annotation_file_names_it(dataset, tmp_path):
    missing = tmp_path / "nowhere" / "val_qa.json"
    with pytest.raises(DataError, match="annotation file not found") as err:
        prepare_questions({**dataset, "val": missing}, tmp_path / "out", answer_top=3, glove_source=None)
    assert str(missing) in str(err.value)
    assert not (tmp_path / "out").exists(), "every annotation file is checked before anything is written"


def test_malformed_annotation_names_file_and_entry(qa_writer, dataset, tmp_path):
    bad = qa_writer(
        "test", [{"question": "Who?", "answer": "a", "video_id": 1, "id": 0}, {"question": "Why?", "video_id": 2}]
    )
    with pytest.raises(DataError, match=r"entry 1: missing key 'answer'") as err:
        prepare_questions({**dataset, "test": bad}, tmp_path / "out", answer_top=3, glove_source=None)
    assert str(bad) in str(err.value)
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        prepare_questions({**dataset, "test": bad}, tmp_path / "out", answer_top=3, glove_source=None)


def test_split_names_and_train_requirement(dataset, tmp_path):
    with pytest.raises(DataError, match="unknown split"):
        prepare_questions({"dev": dataset["val"]}, tmp_path / "out", answer_top=3, glove_source=None)
    with pytest.raises(DataError, match="no 'train' entry"):
        prepare_questions({"val": dataset["val"]}, tmp_path / "out", answer_top=3, glove_source=None)


def test_stale_glove_is_removed_for_glove_none(prepared, dataset, tmp_path):
    (tmp_path / "out" / "glove.npy").write_bytes(b"stale")
    with pytest.warns(QuestionWarning):
        prepare_questions(dataset, tmp_path / "out", answer_top=3, glove_source=None)
    assert not (tmp_path / "out" / "glove.npy").exists()
    assert json.loads((tmp_path / "out" / "train_questions.json").read_text())["glove"] is None


def test_b19_accuracy_by_type_is_nan_for_an_absent_type():
    types = np.array([0, 0, 1, 5], dtype=np.int8)  # what, what, who, other
    accuracy = accuracy_by_type(np.array([True, False, True, False]), types)
    assert accuracy["what"] == 0.5 and accuracy["who"] == 1.0 and accuracy["other"] == 0.0
    assert np.isnan(accuracy["how"]) and np.isnan(accuracy["where"]), "an absent type is NaN, not ZeroDivisionError"


def test_one_very_long_question_warns_naming_the_split_id_length_and_padding_cost(qa_writer, tmp_path):
    """One 5,000-word question pads every question of its split to 5,000 tokens: kept (fidelity), but said."""
    train = [(f"What is thing {i}?", "man") for i in range(199)] + [("what " + "word " * 4999 + "?", "man")]
    files = {"train": qa_writer("train", train), "val": qa_writer("val", VAL, first_id=1000),
             "test": qa_writer("test", TEST, first_id=2000)}
    with pytest.warns(QuestionWarning) as record:
        result = prepare_questions(files, tmp_path / "out", answer_top=3, glove_source=None)
    (message,) = [str(w.message) for w in record if "pad all" in str(w.message)]
    assert message == (
        f"{files['train']} (train): 1 question(s) longer than 64 tokens pad all 200 questions of the split to 5000 "
        f"tokens instead of 4: entry 199 (id 199) has 5000 tokens. That is 999,200 padding tokens (0.01 GB as the "
        f"int64 tensors training holds, and 5000 positions in every batch). Kept, as the original pads to the "
        f"longest question; fix or remove the entry if it is a mistake"
    )
    train_encoded = load_encoded_questions(result.question_files["train"])
    assert train_encoded.max_length == 5000, "nothing is truncated: the original pads to the longest question"
    assert result.metrics()["train.long_questions"] == 1.0 and result.metrics()["val.long_questions"] == 0.0


def test_ordinary_question_lengths_do_not_warn(qa_writer, tmp_path):
    """Real VideoQA spreads (a few words to a few dozen) stay under the floor, whatever the percentile says."""
    train = [("what " + "word " * (i % 40) + "?", "man") for i in range(120)]
    files = {"train": qa_writer("train", train), "val": qa_writer("val", VAL, first_id=1000),
             "test": qa_writer("test", TEST, first_id=2000)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuestionWarning)
        result = prepare_questions(files, tmp_path / "out", answer_top=3, glove_source=None)
    assert result.splits["train"].max_length == 40 and result.splits["train"].long_questions is None


def test_long_question_threshold_is_far_above_the_99th_percentile():
    from dualvgr.text.encode import long_questions

    lengths = np.array([100] * 99 + [350])  # above the floor, but under 4x the split's typical longest (400)
    assert long_questions(lengths, range(100), split="train", source="qa.json") is None
    lengths[-1] = 401
    found = long_questions(lengths, range(100), split="train", source="qa.json")
    assert (found.threshold, found.questions, found.extra_tokens) == (400, ((99, 99, 401),), 100 * 301)


def test_poisoned_glove_fails_the_questions_stage_and_writes_no_matrix(dataset, tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2\nman nan 0.5\n", encoding="utf-8")
    with pytest.warns(QuestionWarning), pytest.raises(DataError, match=r"glove.txt: 1 vocabulary word.*line 2 "
                                                                       r"\('man'\): value 1 of 2 is nan"):
        prepare_questions(dataset, tmp_path / "out", answer_top=3, glove_source=glove)
    assert not (tmp_path / "out" / "glove.npy").exists(), "a poisoned matrix is never cached"
