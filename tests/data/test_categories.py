"""Question categories: the MSVD-QA question words as the original, and the checks on a data set's own table."""

from __future__ import annotations

import pytest

from dualvgr.core.errors import DataError, SpecError
from dualvgr.core.registries import DATASETS
from dualvgr.data.annotations import QAItem
from dualvgr.data.categories import OTHER, QUESTION_WORDS, QuestionCategories, by_annotation, by_first_token
from dualvgr.data.entry import dataset_entry

ITEM = QAItem(id=7, question="what is it?", answer="cat", video_id=1)


def test_msvd_and_msrvtt_categories_are_the_original_question_words():
    assert QUESTION_WORDS.labels == ("what", "who", "how", "when", "where", "other")
    for kind in ("msvd-qa", "msrvtt-qa", "synthetic"):
        assert dataset_entry(kind).categories is QUESTION_WORDS, kind
    assert QUESTION_WORDS.index(ITEM, "where", where="f") == 4
    assert QUESTION_WORDS.index(ITEM, "<UNK>", where="f") == 5, "any other first token counts only overall"


def test_every_registered_data_set_loads_with_its_paper_table():
    tables = {kind: dataset_entry(kind).paper_table for kind in DATASETS}
    assert tables == {"msrvtt-qa": "msrvtt-qa", "msvd-qa": "msvd-qa", "svqa": "svqa", "synthetic": "none"}


def test_annotated_category_outside_the_table_is_an_error_naming_the_question():
    categories = QuestionCategories(("colour", "motion"), by_annotation)
    assert categories.index(QAItem(1, "q?", "a", 1, category="motion"), "q", where="f") == 1
    assert categories.index(QAItem(1, "q?", "a", 1), "q", where="f") == 2, "no category: overall only"
    with pytest.raises(DataError) as error:
        categories.index(QAItem(3, "q?", "a", 1, category="size"), "q", where="qs.csv (val)")
    assert str(error.value) == (
        "qs.csv (val): question id 3 has the category 'size', which is not one of this data set's categories "
        "(colour, motion); fix its annotation, or register the data set with it"
    )


@pytest.mark.parametrize("names,message", [
    ((), "question categories must be a non-empty tuple of names, got ()"),
    (("what", OTHER), "'other' is the label of questions that count only overall; choose another name"),
    (("a", "b", "a"), "question category names must be distinct, got ['a', 'b', 'a']"),
    (("Query Color", "ok"), "question category names become metric names (test_acc_<name>): lower-case letters, "
                            "digits and '_' only, got ['Query Color']"),
    (tuple(f"c{i}" for i in range(128)), "at most 127 question categories, got 128"),
])
def test_a_category_table_that_cannot_be_stored_or_logged_is_refused(names, message):
    with pytest.raises(SpecError) as error:
        QuestionCategories(names, by_first_token)
    assert str(error.value) == message
