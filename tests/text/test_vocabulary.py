"""Vocabulary rules of the original (§1.2 steps 3-5) and the vocab.json format."""

from __future__ import annotations

import json

import pytest

from dualvgr.core.errors import DataError
from dualvgr.text.vocabulary import Vocabulary, build_vocabulary, load_vocabulary, save_vocabulary

TRAIN_TOKENS = [["what", "is", "he", "doing"], ["who", "is", "it"], ["what", "'s", "that"]]


def test_question_tokens_in_first_seen_order_after_specials():
    vocabulary = build_vocabulary(TRAIN_TOKENS, ["a"], answer_top=10)
    assert list(vocabulary.question_token_to_idx.items()) == [
        ("<NULL>", 0),
        ("<UNK>", 1),
        ("what", 2),
        ("is", 3),
        ("he", 4),
        ("doing", 5),
        ("who", 6),
        ("it", 7),
        ("'s", 8),
        ("that", 9),
    ], "question tokens must follow <NULL>=0, <UNK>=1 in order of first appearance (json order, left to right)"
    assert vocabulary.question_idx_to_token[2] == "what"


def test_answers_by_count_with_ties_in_first_seen_order():
    answers = ["cat", "dog", "bird", "dog", "cat", "fish", "bird", "ant"]  # cat 2, dog 2, bird 2, fish 1, ant 1
    vocabulary = build_vocabulary(TRAIN_TOKENS, answers, answer_top=4)
    assert list(vocabulary.answer_token_to_idx) == ["<UNK0>", "<UNK1>", "cat", "dog", "bird", "fish"], (
        "answers are Counter.most_common(answer_top): descending count, ties in first-seen order; "
        "'ant' (count 1, seen after 'fish') falls outside the top 4"
    )
    assert build_vocabulary(TRAIN_TOKENS, answers, answer_top=0).num_answers == 2


def test_answers_are_exact_strings():
    vocabulary = build_vocabulary(TRAIN_TOKENS, ["Cat", "cat", "cat "], answer_top=10)
    assert list(vocabulary.answer_token_to_idx)[2:] == ["Cat", "cat", "cat "], "no answer normalisation in the original"


def test_unknown_answer_label_train_0_val_test_1():
    vocabulary = build_vocabulary(TRAIN_TOKENS, ["cat"], answer_top=10)
    assert vocabulary.answer_label("cat", "val") == 2
    assert vocabulary.answer_label("zebra", "train") == 0, "unknown train answers are trained towards <UNK0>"
    assert vocabulary.answer_label("zebra", "val") == 1, "unknown val/test answers get <UNK1>, never predicted"
    assert vocabulary.answer_label("zebra", "test") == 1


def test_encode_tokens_unknown_is_1():
    vocabulary = build_vocabulary(TRAIN_TOKENS, ["cat"], answer_top=10)
    assert vocabulary.encode_tokens(["what", "zebra", "is"]) == [2, 1, 3]


def test_vocab_json_is_the_original_structure(tmp_path):
    vocabulary = build_vocabulary(TRAIN_TOKENS, ["cat", "dog"], answer_top=10)
    path = save_vocabulary(vocabulary, tmp_path / "vocab.json")
    original_bytes = json.dumps(
        {
            "question_token_to_idx": dict(vocabulary.question_token_to_idx),
            "answer_token_to_idx": dict(vocabulary.answer_token_to_idx),
            "question_answer_token_to_idx": {"<NULL>": 0, "<UNK>": 1},
        },
        indent=4,
    )
    assert path.read_text(encoding="utf-8") == original_bytes, (
        "vocab.json must be written as json.dump(vocab, indent=4)"
    )
    loaded = load_vocabulary(path)
    assert loaded == vocabulary and loaded.fingerprint() == vocabulary.fingerprint()


def test_fingerprint_depends_on_the_tables():
    a = build_vocabulary(TRAIN_TOKENS, ["cat", "dog"], answer_top=10)
    b = build_vocabulary(TRAIN_TOKENS, ["dog", "cat"], answer_top=10)
    assert a.fingerprint() != b.fingerprint(), "different answer indices must give different fingerprints"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"question_token_to_idx": {"<NULL>": 0, "<UNK>": 1}}', "missing key"),
        (
            '{"question_token_to_idx": {"<NULL>": 0, "<UNK>": 1, "a": 3},'
            ' "answer_token_to_idx": {"<UNK0>": 0, "<UNK1>": 1}}',
            "indices must be 0..2",
        ),
        (
            '{"question_token_to_idx": {"<UNK>": 0, "<NULL>": 1}, "answer_token_to_idx": {"<UNK0>": 0, "<UNK1>": 1}}',
            "must map '<NULL>' to 0",
        ),
        (
            '{"question_token_to_idx": {"<NULL>": 0, "<UNK>": "1"}, "answer_token_to_idx": {"<UNK0>": 0, "<UNK1>": 1}}',
            "must map a string to an integer",
        ),
        ("{not json", "not valid JSON"),
    ],
)
def test_malformed_vocabulary_names_file_and_problem(tmp_path, content, message):
    path = tmp_path / "vocab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as err:
        load_vocabulary(path)
    assert str(path) in str(err.value), "the error must name the vocabulary file"


def test_missing_vocabulary_file(tmp_path):
    with pytest.raises(DataError, match="vocabulary file not found"):
        load_vocabulary(tmp_path / "nope.json")


def test_vocabulary_constructor_checks_specials():
    with pytest.raises(DataError, match="<UNK0>"):
        Vocabulary(question_token_to_idx={"<NULL>": 0, "<UNK>": 1}, answer_token_to_idx={"a": 0, "b": 1})
