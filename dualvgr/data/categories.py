"""Question categories of a data set: their names, in reporting order, and how a question gets one.

Per-category accuracy is what a data set's paper table breaks the overall accuracy into. Each data-set entry
(:mod:`dualvgr.data.entry`) owns one :class:`QuestionCategories`:

- MSVD-QA and MSRVTT-QA: the question's first token as encoded, looked up in the vocabulary, as the original's
  ``validate()`` does: ``what``, ``who``, ``how``, ``when``, ``where``; any other first token (``<UNK>``
  included) counts only overall (``docs/original.md``, question types);
- SVQA: the category its annotation names (``program[-1]['function']``), one of 15 (:mod:`dualvgr.data.svqa`).

A question that counts only overall gets the label :data:`OTHER`, which no data set may use as a category name.
Encoded questions store each question's index into :attr:`QuestionCategories.labels` (the names, then
``other``), and their sidecar records those labels, so a split encoded for another data set is recognised.
Names become metric names (``test_acc_<name>``), hence the restricted alphabet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from dualvgr.core.errors import DataError, SpecError
from dualvgr.data.annotations import QAItem

OTHER = "other"  # the label of questions that count only towards the overall accuracy
MAX_CATEGORIES = 127  # encoded splits store the label index as int8 (one label is OTHER)
_NAME = re.compile(r"[a-z0-9][a-z0-9_]*")

# (item, its first token as encoded, the category names) -> its category name, or None: overall only.
CategoryRule = Callable[[QAItem, str, tuple[str, ...]], "str | None"]


def by_first_token(item: QAItem, first_token: str, names: tuple[str, ...]) -> str | None:
    """The category named by the question's first token, as the original's ``validate()`` (B19 aside)."""
    return first_token if first_token in names else None


def by_annotation(item: QAItem, first_token: str, names: tuple[str, ...]) -> str | None:
    """The category the annotation file gives the question (SVQA's program)."""
    return item.category


@dataclass(frozen=True)
class QuestionCategories:
    """A data set's category names (reporting order) and the rule that gives a question its category."""

    names: tuple[str, ...]
    rule: CategoryRule
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = self.names
        if not isinstance(names, tuple) or not names:
            raise SpecError(f"question categories must be a non-empty tuple of names, got {names!r}")
        bad = [name for name in names if not isinstance(name, str) or not _NAME.fullmatch(name)]
        if bad:
            raise SpecError(
                f"question category names become metric names (test_acc_<name>): lower-case letters, digits and "
                f"'_' only, got {bad}"
            )
        if OTHER in names:
            raise SpecError(f"'{OTHER}' is the label of questions that count only overall; choose another name")
        if len(set(names)) != len(names):
            raise SpecError(f"question category names must be distinct, got {list(names)}")
        if len(names) > MAX_CATEGORIES:
            raise SpecError(f"at most {MAX_CATEGORIES} question categories, got {len(names)}")
        object.__setattr__(self, "_index", {name: i for i, name in enumerate(names)})

    @property
    def labels(self) -> tuple[str, ...]:
        """What encoded questions index: the names, then :data:`OTHER` (overall only)."""
        return (*self.names, OTHER)

    def index(self, item: QAItem, first_token: str, *, where: str) -> int:
        """The label index of ``item`` (``len(names)`` for OTHER); a name outside the table is an error."""
        name = self.rule(item, first_token, self.names)
        if name is None:
            return len(self.names)
        if name not in self._index:
            raise DataError(
                f"{where}: question id {item.id} has the category {name!r}, which is not one of this data set's "
                f"categories ({', '.join(self.names)}); fix its annotation, or register the data set with it"
            )
        return self._index[name]


# MSVD-QA and MSRVTT-QA (and the synthetic demo, in the MSVD-QA format): the original's (what, who, how, when,
# where), indices 0..4 of its valid_output.
QUESTION_WORDS = QuestionCategories(("what", "who", "how", "when", "where"), by_first_token)
