"""Encoded splits carry the data set's category labels: stored in the sidecar, checked on load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.data.annotations import Annotations, QAItem
from dualvgr.data.categories import QuestionCategories, by_annotation
from dualvgr.text import load_encoded_questions, prepare_questions, save_encoded_questions
from dualvgr.text.encode import QUESTION_TYPES
from tests.text.test_storage import encoded

TOPICS = QuestionCategories(("colour", "motion"), by_annotation)


def items(*topics):
    return tuple(QAItem(id=i, question=f"what is {i}?", answer="a" if i % 2 else "b", video_id=i, category=topic)
                 for i, topic in enumerate(topics))


def test_prepare_questions_encodes_the_data_sets_categories(tmp_path):
    annotations = Annotations({"train": items("motion", "colour", None), "val": items("colour"),
                               "test": items(None, "motion")},
                              dict.fromkeys(("train", "val", "test"), tmp_path / "qs.csv"), {})
    result = prepare_questions(annotations, tmp_path / "out", answer_top=10, glove_source=None, categories=TOPICS)
    train = load_encoded_questions(result.question_files["train"])
    assert train.category_names == ("colour", "motion", "other")
    assert train.question_types.tolist() == [1, 0, 2], "the annotation decides, not the first token ('what')"
    assert result.splits["train"].type_counts == {"colour": 1, "motion": 1, "other": 1}
    metrics = result.metrics()
    assert (metrics["train.type.colour"], metrics["test.type.motion"], metrics["test.type.other"]) == (1, 1, 1)
    assert "train.type.what" not in metrics


def test_msvd_labels_are_the_default_and_other_labels_round_trip(tmp_path):
    path = save_encoded_questions(encoded(), tmp_path / "msvd.npz")
    assert load_encoded_questions(path).category_names == QUESTION_TYPES
    path = save_encoded_questions(encoded(category_names=TOPICS.labels, question_types=np.array([2, 1], np.int8)),
                                  tmp_path / "topics.npz")
    assert json.loads(path.with_suffix(".json").read_text())["question_types"] == ["colour", "motion", "other"]
    assert load_encoded_questions(path).category_names == TOPICS.labels


def test_category_index_outside_the_labels_is_an_error_naming_the_question(tmp_path):
    with pytest.raises(DataError) as error:
        save_encoded_questions(encoded(category_names=TOPICS.labels, question_types=np.array([0, 3], np.int8)),
                               tmp_path / "q.npz")
    assert str(error.value) == (
        f"{tmp_path / 'q.npz'}: question 1 has category index 3, expected 0..2 (the categories ['colour', 'motion', "
        f"'other'])"
    )


def test_sidecar_without_category_labels_is_an_error(tmp_path):
    path = save_encoded_questions(encoded(), tmp_path / "q.npz")
    sidecar = tmp_path / "q.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "question_types": None}))
    with pytest.raises(DataError) as error:
        load_encoded_questions(path)
    assert str(error.value) == (
        f"{sidecar}: 'question_types' must be the list of category labels the questions index, got None; re-run the "
        f"questions stage"
    )
