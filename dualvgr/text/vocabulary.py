"""Question and answer vocabularies, built from the train split and stored as the original's ``vocab.json``.

dualvgr-original.md §1.2 steps 3-5:

- questions: ``<NULL>`` = 0, ``<UNK>`` = 1, then every train token in order of first appearance (json order, tokens
  left to right); no minimum count, no cap; val/test tokens are never added;
- answers: ``<UNK0>`` = 0, ``<UNK1>`` = 1, then ``Counter(train answers).most_common(answer_top)``: descending
  count, ties in first-seen order (exact strings, no normalisation);
- the json has three keys, ``question_token_to_idx``, ``answer_token_to_idx`` and the unused
  ``question_answer_token_to_idx = {"<NULL>": 0, "<UNK>": 1}``, written with ``json.dump(..., indent=4)``, so an
  original vocabulary file loads here and ours loads in the original code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dualvgr.core.errors import DataError

NULL, UNK = "<NULL>", "<UNK>"
UNK0, UNK1 = "<UNK0>", "<UNK1>"
# Label of an answer outside the vocabulary: train questions are trained towards <UNK0>; val/test questions get
# <UNK1>, which is never a training target, so they always count as wrong (§1.2 step 7).
UNKNOWN_ANSWER_LABEL = {"train": 0, "val": 1, "test": 1}
_KEYS = ("question_token_to_idx", "answer_token_to_idx", "question_answer_token_to_idx")
_SPECIALS = {
    "question_token_to_idx": (NULL, UNK),
    "answer_token_to_idx": (UNK0, UNK1),
    "question_answer_token_to_idx": (NULL, UNK),
}


def unknown_answer_label(split: str) -> int:
    """0 (``<UNK0>``) in train, 1 (``<UNK1>``) in val/test."""
    if split not in UNKNOWN_ANSWER_LABEL:
        raise ValueError(f"unknown split {split!r}, expected one of {sorted(UNKNOWN_ANSWER_LABEL)}")
    return UNKNOWN_ANSWER_LABEL[split]


@dataclass(frozen=True)
class Vocabulary:
    """The three token->index tables of the original ``vocab.json``; indices are dense and start with the specials."""

    question_token_to_idx: Mapping[str, int]
    answer_token_to_idx: Mapping[str, int]
    question_answer_token_to_idx: Mapping[str, int] = field(default_factory=lambda: {NULL: 0, UNK: 1})

    def __post_init__(self) -> None:
        for key in _KEYS:
            _check_table(getattr(self, key), key, "vocabulary")

    @cached_property
    def question_idx_to_token(self) -> tuple[str, ...]:
        return _invert(self.question_token_to_idx)

    @cached_property
    def answer_idx_to_token(self) -> tuple[str, ...]:
        return _invert(self.answer_token_to_idx)

    @property
    def num_question_tokens(self) -> int:
        """V_q, the embedding's row count."""
        return len(self.question_token_to_idx)

    @property
    def num_answers(self) -> int:
        """V_a, the classifier's output width."""
        return len(self.answer_token_to_idx)

    def encode_tokens(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; tokens outside the vocabulary map to ``<UNK>`` = 1 (§1.2 step 6)."""
        unk = self.question_token_to_idx[UNK]
        return [self.question_token_to_idx.get(token, unk) for token in tokens]

    def answer_label(self, answer: str, split: str) -> int:
        """The answer's index, or the split's unknown label (§1.2 step 7)."""
        label = self.answer_token_to_idx.get(answer)
        return unknown_answer_label(split) if label is None else label

    def to_json_dict(self) -> dict[str, dict[str, int]]:
        return {key: dict(getattr(self, key)) for key in _KEYS}

    def fingerprint(self) -> str:
        """sha256 of the tables (order-independent): ties encoded questions and checkpoints to a vocabulary."""
        canonical = json.dumps(self.to_json_dict(), sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def build_vocabulary(
    train_tokens: Iterable[Sequence[str]], train_answers: Iterable[str], *, answer_top: int
) -> Vocabulary:
    """The original's train-mode vocabularies (§1.2 steps 3-4)."""
    if answer_top < 0:
        raise ValueError(f"answer_top must be >= 0, got {answer_top}")
    questions = {NULL: 0, UNK: 1}
    for tokens in train_tokens:
        for token in tokens:
            questions.setdefault(token, len(questions))
    answers = {UNK0: 0, UNK1: 1}
    # Counter is insertion-ordered and most_common is a stable sort: ties keep first-seen order, as the original.
    for answer, _count in Counter(train_answers).most_common(answer_top):
        # An answer spelt like a special token would clobber it; the original did so silently (never in practice).
        if answer in answers:
            raise DataError(f"train answer {answer!r} collides with a special answer token {UNK0}/{UNK1}")
        answers[answer] = len(answers)
    return Vocabulary(question_token_to_idx=questions, answer_token_to_idx=answers)


def save_vocabulary(vocabulary: Vocabulary, path: Path) -> Path:
    """Write ``vocab.json`` exactly as the original does (``json.dump(vocab, f, indent=4)``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(vocabulary.to_json_dict(), f, indent=4)
    os.replace(tmp, path)
    return path


def load_vocabulary(path: Path) -> Vocabulary:
    """Read a ``vocab.json`` (ours or the original's), failing with the file and the offending entry."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"vocabulary file not found: {path}\n"
            f"  expected the original's vocab.json ({', '.join(_KEYS)}); run the questions stage or fix the path"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object with keys {list(_KEYS)}, got {type(raw).__name__}")
    missing = [key for key in _KEYS[:2] if key not in raw]
    if missing:
        raise DataError(f"{path}: missing key(s) {missing} (has {sorted(raw)}); not a DualVGR/HCRN vocab.json")
    for key in _KEYS:
        if key in raw:
            _check_table(raw[key], key, str(path))
    return Vocabulary(**{key: raw[key] for key in _KEYS if key in raw})


def _check_table(table: object, key: str, where: str) -> None:
    if not isinstance(table, Mapping):
        raise DataError(f"{where}: '{key}' must be an object of token -> index, got {type(table).__name__}")
    for token, index in table.items():
        if not isinstance(token, str) or not isinstance(index, int) or isinstance(index, bool):
            raise DataError(f"{where}: '{key}' entry {token!r}: {index!r} must map a string to an integer index")
    counts = Counter(table.values())
    if sorted(counts) != list(range(len(table))):
        duplicated = sorted(index for index, n in counts.items() if n > 1)[:5]
        missing = sorted(set(range(len(table))) - set(counts))[:5]
        raise DataError(
            f"{where}: '{key}' indices must be 0..{len(table) - 1}, each exactly once; "
            f"duplicated: {duplicated}, missing: {missing}"
        )
    for index, special in enumerate(_SPECIALS[key]):
        if table.get(special) != index:
            raise DataError(f"{where}: '{key}' must map {special!r} to {index}, got {table.get(special)!r}")


def _invert(table: Mapping[str, int]) -> tuple[str, ...]:
    inverse = [""] * len(table)
    for token, index in table.items():
        inverse[index] = token
    return tuple(inverse)
