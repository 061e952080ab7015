"""Per-category scores in the data set's own categories: SVQA's names end to end through the train job, the
MSVD-QA names exactly as before, and questions encoded for another data set refused."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch

from dualvgr.core.errors import DataError
from dualvgr.core.spec import replace_in
from dualvgr.data.svqa import CATEGORIES
from dualvgr.text.encode import QUESTION_TYPES
from dualvgr.text.storage import load_encoded_questions, save_encoded_questions
from dualvgr.train.inputs import load_inputs
from dualvgr.train.metrics import accuracies, prior_predictions
from tests.train.conftest import tiny_spec
from tests.train.test_train_job import run_stage

# The tiny inputs' what / who / other questions, relabelled as SVQA's count / exist / (overall only).
AS_SVQA = {"what": "count", "who": "exist", "other": "other"}


def relabel_as_svqa(paths: dict) -> None:
    for split in ("train", "val", "test"):
        path = paths[f"questions.{split}_questions"]
        encoded = load_encoded_questions(path)
        labels = CATEGORIES.labels
        types = np.array([labels.index(AS_SVQA[QUESTION_TYPES[t]]) for t in encoded.question_types], np.int8)
        save_encoded_questions(dataclasses.replace(encoded, question_types=types, category_names=labels), path)


def svqa_spec(tmp_path, **train):
    return replace_in(tiny_spec(tmp_path, **train), **{"dataset.kind": "svqa"})


def test_accuracies_follow_the_categories_given_and_skip_absent_ones():
    predictions, answers = np.array([1, 2, 3, 4, 5]), np.array([1, 0, 3, 4, 0])
    types = np.array(["exist", "exist", "count", "other", "query_shape"])
    assert list(accuracies(predictions, answers, types, CATEGORIES.names).items()) == [
        ("acc", 0.6), ("acc_count", 1.0), ("acc_exist", 0.5), ("acc_query_shape", 0.0)], \
        "in the table's order; absent categories and 'other' have no score of their own"
    train_answers = np.array([7, 7, 8, 8, 9, 9, 9])
    train_types = np.array(["count", "count", "exist", "exist", "other", "other", "other"])
    prior = prior_predictions(train_answers, train_types, np.array(["exist", "count", "query_size"]))
    assert prior.tolist() == [8, 7, 9], "the most frequent train answer of each category; unseen: the overall one"


def test_svqa_scores_are_named_after_its_categories(tmp_path, tiny_inputs):
    relabel_as_svqa(tiny_inputs)
    result, log = run_stage(svqa_spec(tmp_path, epochs=2), tiny_inputs, tmp_path / "out")
    for name in ("test_acc", "test_acc_count", "test_acc_exist", "test_prior_acc", "val_acc_count", "val_acc_exist"):
        assert name in log.metrics, f"missing metric {name}"
    assert log.steps["val_acc_count"] == [0, 1], "per epoch"
    assert not [name for name in log.metrics if name.endswith(("_what", "_who", "_other", "_query_color"))], \
        "only the data set's categories that have questions"
    with open(result.outputs["predictions"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["type"] for row in rows} == {"count", "exist", "other"}, "the predictions carry the category"


def test_svqa_scores_on_val_are_best_val_per_category(tmp_path, tiny_inputs):
    relabel_as_svqa(tiny_inputs)
    _, log = run_stage(svqa_spec(tmp_path, epochs=1, eval_split="val"), tiny_inputs, tmp_path / "out")
    assert {"best_val_acc_count", "best_val_acc_exist", "best_val_prior_acc"} <= set(log.metrics)
    assert not [name for name in log.metrics if name.startswith("test_acc")]


def test_msvd_scores_keep_their_names(tmp_path, tiny_inputs):
    _, log = run_stage(tiny_spec(tmp_path, epochs=1), tiny_inputs, tmp_path / "out")
    assert {"test_acc_what", "test_acc_who", "val_acc_what", "val_acc_who"} <= set(log.metrics)
    assert not [name for name in log.metrics if "_acc_other" in name], "other counts only overall"


def test_questions_encoded_for_another_data_set_are_refused(tmp_path, tiny_inputs):
    path = tiny_inputs["questions.train_questions"]
    with pytest.raises(DataError) as error:
        load_inputs(svqa_spec(tmp_path), tiny_inputs, torch.device("cpu"))
    assert str(error.value) == (
        f"{path} stores the question categories {list(QUESTION_TYPES)}, but dataset.kind 'svqa' has "
        f"{list(CATEGORIES.labels)}: the questions were encoded for another data set; re-run the questions stage "
        f"for this one (dualvgr questions --force)"
    )
