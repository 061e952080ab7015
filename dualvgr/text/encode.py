"""Encode one split's questions and answers as the original's arrays (dualvgr-original.md §1.2 steps 1-2, 6-8, 10).

- normalise (``lower()[:-1]``; a question not ending in ``?`` loses a real character: warned and counted, B36) and
  tokenise; a question left with no token is an error naming the file, entry, id and text (it would crash
  ``pack_padded_sequence`` later, B36);
- token ids, ``<UNK>`` = 1 for tokens outside the vocabulary; ``questions_len`` = number of tokens;
- answer labels: vocabulary index, else 0 in train and 1 in val/test (those always count as wrong);
- right-pad with ``<NULL>`` = 0 to the longest question **of the split** (L differs between splits), as the
  original does, so one runaway question pads every question of its split to its length. Not truncated (that
  would change the data), but made visible: a question longer than both ``LONG_QUESTION_FLOOR`` tokens and
  ``LONG_QUESTION_FACTOR`` times the split's 99th-percentile length is warned about (a ``QuestionWarning``),
  with its id, its length and the padding it costs (MSVD-QA and MSRVTT-QA questions have fewer than 40 tokens);
- the question's category for per-category accuracy, by the data set's rule (:mod:`dualvgr.data.categories`):
  MSVD-QA/MSRVTT-QA from the first token id looked up in the vocabulary, as ``validate()`` does (what/who/how/
  when/where, anything else — including ``<UNK>`` — is ``other``); SVQA from its annotation. Stored as the index
  into the categories' labels (:attr:`EncodedQuestions.category_names`: the names, then ``other``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from dualvgr.core.errors import DataError
from dualvgr.data.annotations import QAItem
from dualvgr.data.categories import QUESTION_WORDS, QuestionCategories
from dualvgr.text.tokenize import QUESTION_MARK, QuestionTokenizer, normalise_question
from dualvgr.text.vocabulary import UNK, Vocabulary, unknown_answer_label

# MSVD-QA/MSRVTT-QA labels: the order of the original's per-type accuracies (valid_output 0..4), then ``other``.
QUESTION_TYPES = QUESTION_WORDS.labels
OTHER_TYPE = QUESTION_TYPES.index("other")


# A question is "long" when it has more tokens than both of these: far above the split's typical longest
# questions (the 99th percentile, taken at a real length so that a few outliers never raise it themselves) and
# above what any real VideoQA question needs.
LONG_QUESTION_FLOOR = 64
LONG_QUESTION_FACTOR = 4
TRAINING_TOKEN_BYTES = 8  # the int64 token tensors training holds (the .npz stores int32, compressed)


class QuestionWarning(UserWarning):
    """Questions the original would silently damage (no trailing ``?``, B36) or that pad a whole split."""


def question_type(first_token: str) -> int:
    """Index into :data:`QUESTION_TYPES` of a question whose first token is ``first_token``."""
    return QUESTION_TYPES.index(first_token) if first_token in QUESTION_TYPES[:OTHER_TYPE] else OTHER_TYPE


def accuracy_by_type(
    correct: np.ndarray, question_types: np.ndarray, labels: Sequence[str] = QUESTION_TYPES
) -> dict[str, float]:
    """Accuracy per label, NaN for a label with no question (the original divided by zero there, B19).

    ``correct``: bool (Q,), whether each prediction was right; ``question_types``: int (Q,) from
    :attr:`EncodedQuestions.question_types`, indices into ``labels`` (its ``category_names``). The original
    reports what/who/how/when/where; ``other`` is added.
    """
    correct, question_types = np.asarray(correct, dtype=bool), np.asarray(question_types)
    if correct.shape != question_types.shape:
        raise ValueError(f"correct has shape {correct.shape}, question_types {question_types.shape}: one per question")
    return {
        name: float(correct[question_types == index].mean()) if (question_types == index).any() else float("nan")
        for index, name in enumerate(labels)
    }


@dataclass(frozen=True)
class TokenizedSplit:
    """A split's questions after normalisation and tokenisation, before any vocabulary."""

    split: str
    source: str  # the annotation file, for messages
    tokens: tuple[tuple[str, ...], ...]
    without_question_mark: tuple[int, ...]  # entry indices whose question did not end with '?'


def tokenize_split(
    items: Sequence[QAItem], *, split: str, source: str, tokenizer: QuestionTokenizer, progress: bool = False
) -> TokenizedSplit:
    """Normalise and tokenise every question; warn once about questions without ``?``; fail on empty ones."""
    cache: dict[str, tuple[str, ...]] = {}  # questions repeat a lot (MSRVTT), and the tokenizer is ~0.3 ms each
    tokens, without_mark = [], []
    for index, item in enumerate(tqdm(items, desc=f"tokenize {split}", unit="q", disable=not progress)):
        if not item.question.endswith(QUESTION_MARK):
            without_mark.append(index)
        text = normalise_question(item.question)
        if text not in cache:
            cache[text] = tuple(tokenizer(text))
        if not cache[text]:
            raise DataError(
                f"{source} ({split}), entry {index} (id {item.id}): question {item.question!r} has no token after "
                f"the original normalisation (lower-case, drop the last character): an empty question cannot be "
                f"encoded (B36) — fix or remove the entry"
            )
        tokens.append(cache[text])
    if without_mark:
        examples = "; ".join(f"entry {i} (id {items[i].id}): {items[i].question!r}" for i in without_mark[:3])
        warnings.warn(
            f"{source} ({split}): {len(without_mark)} question(s) do not end with '?'; the original drops their "
            f"last character anyway (B36), and so do we — e.g. {examples}",
            QuestionWarning,
            stacklevel=2,
        )
    return TokenizedSplit(split=split, source=source, tokens=tuple(tokens), without_question_mark=tuple(without_mark))


@dataclass(frozen=True, eq=False)
class EncodedQuestions:
    """One split's encoded questions: the fields of the original pickle (§1.2 step 10) plus the json ids and text.

    ``video_names`` of the original (a copy of ``video_ids``) is not kept. ``ids``, ``question_texts`` and
    ``answer_texts`` are None for an original pickle imported without its annotation file.
    """

    split: str
    questions: np.ndarray  # int32 (Q, L): token ids, right-padded with <NULL> = 0 to the split's longest question
    questions_len: np.ndarray  # int32 (Q,): true lengths, >= 1
    question_id: np.ndarray  # int64 (Q,): 0..Q-1, the position in the split's json (not the json `id`)
    video_ids: np.ndarray  # int64 (Q,)
    answers: np.ndarray  # int64 (Q,): answer labels, unknown = 0 in train, 1 in val/test
    question_types: np.ndarray  # int8 (Q,): index into category_names
    ids: np.ndarray | None = None  # int64 (Q,): the json `id` of each question
    question_texts: tuple[str, ...] | None = None  # raw question strings, for prediction files
    answer_texts: tuple[str, ...] | None = None  # raw answer strings
    question_category: np.ndarray | None = None  # int64 (Q,): SVQA category 0..14 (original SVQA pickles only)
    vocabulary_fingerprint: str | None = None  # Vocabulary.fingerprint() of the vocabulary that encoded them
    # What question_types index: the data set's category names, then "other" (QuestionCategories.labels).
    category_names: tuple[str, ...] = QUESTION_TYPES

    def __len__(self) -> int:
        return int(self.questions.shape[0])

    @property
    def max_length(self) -> int:
        return int(self.questions.shape[1])

    def check(self, where: str) -> None:
        """Raise DataError (naming ``where``) unless shapes, dtypes and the id/length invariants hold."""
        count = len(self)
        if self.questions.ndim != 2 or self.questions.dtype != np.int32:
            raise DataError(
                f"{where}: questions must be int32 (Q, L), got {self.questions.dtype} {self.questions.shape}"
            )
        for name in (
            "questions_len",
            "question_id",
            "video_ids",
            "answers",
            "question_types",
            "ids",
            "question_category",
        ):
            array = getattr(self, name)
            if array is not None and array.shape != (count,):
                raise DataError(f"{where}: {name} has shape {array.shape}, expected ({count},) like questions")
        for name in ("question_texts", "answer_texts"):
            texts = getattr(self, name)
            if texts is not None and len(texts) != count:
                raise DataError(f"{where}: {len(texts)} {name}, expected {count}")
        if count and (self.question_types.min() < 0 or self.question_types.max() >= len(self.category_names)):
            bad = int(np.flatnonzero((self.question_types < 0)
                                     | (self.question_types >= len(self.category_names)))[0])
            raise DataError(
                f"{where}: question {bad} has category index {int(self.question_types[bad])}, expected "
                f"0..{len(self.category_names) - 1} (the categories {list(self.category_names)})"
            )
        if not np.array_equal(self.question_id, np.arange(count)):
            raise DataError(f"{where}: question_id must be the positions 0..{count - 1}")
        if count and (self.questions_len.min() < 1 or self.questions_len.max() > self.max_length):
            bad = int(np.flatnonzero((self.questions_len < 1) | (self.questions_len > self.max_length))[0])
            raise DataError(
                f"{where}: question {bad} has length {int(self.questions_len[bad])}, expected 1..{self.max_length} "
                f"(an empty question crashes pack_padded_sequence, B36)"
            )


@dataclass(frozen=True)
class LongQuestions:
    """The questions of a split that pad all the others far beyond what they need."""

    split: str
    source: str  # the annotation file
    questions: tuple[tuple[int, int, int], ...]  # (entry, json id, tokens), longest first
    count: int  # questions in the split
    padded_length: int  # L: what every question of the split is padded to
    length_without: int  # L had these questions been left out
    threshold: int  # questions longer than this are long

    @property
    def extra_tokens(self) -> int:
        return self.count * (self.padded_length - self.length_without)

    def describe(self, show: int = 3) -> str:
        shown = "; ".join(f"entry {e} (id {i}) has {n} tokens" for e, i, n in self.questions[:show])
        more = f" and {len(self.questions) - show} more" if len(self.questions) > show else ""
        gigabytes = self.extra_tokens * TRAINING_TOKEN_BYTES / 1e9
        return (
            f"{self.source} ({self.split}): {len(self.questions)} question(s) longer than {self.threshold} tokens pad "
            f"all {self.count} questions of the split to {self.padded_length} tokens instead of "
            f"{self.length_without}: {shown}{more}. That is {self.extra_tokens:,} padding tokens "
            f"({gigabytes:.2f} GB as the int64 tensors training holds, and {self.padded_length} positions in every "
            f"batch). Kept, as the original pads to the longest question; fix or remove the entry if it is a mistake"
        )


def long_questions(
    lengths: np.ndarray, ids: Sequence[int], *, split: str, source: str
) -> LongQuestions | None:
    """The split's long questions (see the module docstring for the threshold), or None."""
    lengths = np.asarray(lengths)
    if len(lengths) == 0:
        return None
    typical = int(np.percentile(lengths, 99, method="lower"))
    threshold = max(LONG_QUESTION_FLOOR, LONG_QUESTION_FACTOR * typical)
    long = np.flatnonzero(lengths > threshold)
    if not len(long):
        return None
    order = long[np.argsort(-lengths[long], kind="stable")]
    rest = np.delete(lengths, long)
    return LongQuestions(
        split=split, source=source,
        questions=tuple((int(e), int(ids[e]), int(lengths[e])) for e in order),
        count=len(lengths), padded_length=int(lengths.max()), length_without=int(rest.max()) if len(rest) else 0,
        threshold=threshold,
    )


@dataclass(frozen=True)
class SplitStats:
    """What encoding one split found; the stage logs these as metrics."""

    split: str
    count: int
    max_length: int
    unknown_answers: int  # answers outside the answer vocabulary
    unknown_answer_label: int  # the label they got: 0 in train (<UNK0>), 1 in val/test (<UNK1>, always wrong)
    unknown_tokens: int  # token occurrences mapped to <UNK>
    without_question_mark: int  # questions whose dropped last character was not '?'
    type_counts: dict[str, int]  # category label (the names, then "other") -> count
    long_questions: LongQuestions | None = None  # questions that pad the whole split far beyond the rest


def encode_split(
    tokenized: TokenizedSplit, items: Sequence[QAItem], vocabulary: Vocabulary,
    categories: QuestionCategories = QUESTION_WORDS,
) -> tuple[EncodedQuestions, SplitStats]:
    """Encode a tokenised split with ``vocabulary`` (the train vocabulary, or an imported one).

    ``categories``: the data set's (:attr:`dualvgr.data.entry.DatasetEntry.categories`).
    """
    split, count = tokenized.split, len(items)
    if len(tokenized.tokens) != count:
        raise ValueError(f"{len(tokenized.tokens)} tokenised questions for {count} items of {split}")
    lengths = np.array([len(tokens) for tokens in tokenized.tokens], dtype=np.int32)
    max_length = int(lengths.max()) if count else 0
    questions = np.zeros((count, max_length), dtype=np.int32)  # (Q, L), <NULL> = 0 padding
    for row, tokens in enumerate(tokenized.tokens):
        questions[row, : len(tokens)] = vocabulary.encode_tokens(tokens)
    answers = np.array([vocabulary.answer_label(item.answer, split) for item in items], dtype=np.int64)
    first_tokens = vocabulary.question_idx_to_token
    where = f"{tokenized.source} ({split})"
    types = np.array(
        [categories.index(item, first_tokens[first], where=where) for item, first in zip(items, questions[:, 0])]
        if count else [],
        dtype=np.int8,
    )
    ids = np.array([item.id for item in items], dtype=np.int64)
    long = long_questions(lengths, ids, split=split, source=tokenized.source)
    if long is not None:
        warnings.warn(long.describe(), QuestionWarning, stacklevel=2)
    unknown_label = unknown_answer_label(split)
    encoded = EncodedQuestions(
        split=split,
        questions=questions,
        questions_len=lengths,
        question_id=np.arange(count, dtype=np.int64),
        video_ids=np.array([item.video_id for item in items], dtype=np.int64),
        answers=answers,
        question_types=types,
        ids=ids,
        question_texts=tuple(item.question for item in items),
        answer_texts=tuple(item.answer for item in items),
        vocabulary_fingerprint=vocabulary.fingerprint(),
        category_names=categories.labels,
    )
    stats = SplitStats(
        split=split,
        count=count,
        max_length=max_length,
        unknown_answers=sum(item.answer not in vocabulary.answer_token_to_idx for item in items),
        unknown_answer_label=unknown_label,
        unknown_tokens=int((questions == vocabulary.question_token_to_idx[UNK]).sum()),
        without_question_mark=len(tokenized.without_question_mark),
        type_counts={name: int((types == i).sum()) for i, name in enumerate(categories.labels)},
        long_questions=long,
    )
    return encoded, stats
