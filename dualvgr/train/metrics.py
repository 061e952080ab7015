"""Accuracy overall and per question category, the answer-prior baseline, and the names of the final metrics.

Each data set names its question categories (:mod:`dualvgr.data.categories`, owned by its entry): MSVD-QA and
MSRVTT-QA take them from the first token (what / who / how / when / where, metrics ``acc_what`` ...; anything
else, "other", counts only overall), SVQA from its annotation (15 categories, ``acc_count`` ...). A category
absent from a split has no accuracy (absent, never a division by zero: original bug B19). The answer prior is
the most frequent train answer of each category.

The metric names the train stage ends with live here, importable without PyTorch, so the report reads the
same contract the train stage writes (this module imports numpy and the category table only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from dualvgr.core.errors import SpecError
from dualvgr.data.categories import QUESTION_WORDS

QUESTION_TYPES = QUESTION_WORDS.names  # MSVD-QA / MSRVTT-QA: what, who, how, when, where

# train.eval_split -> prefix of the best checkpoint's final scores: <prefix>acc, <prefix>acc_<type>,
# <prefix>prior_acc. With val, no test_* metric is logged at all, so a val score cannot pass for a test one.
FINAL_METRIC_PREFIX = {"test": "test_", "val": "best_val_"}


def final_metric_prefix(split: str) -> str:
    """The prefix of the final scores on ``split``; a split without one is a spec error, raised before training."""
    if split not in FINAL_METRIC_PREFIX:
        raise SpecError(
            f"train.eval_split is {split!r}, expected one of {', '.join(FINAL_METRIC_PREFIX)}: the best checkpoint "
            f"is finally scored on test (the paper) or val; to score a checkpoint on {split}, run the evaluate stage "
            f"with evaluate.split={split}"
        )
    return FINAL_METRIC_PREFIX[split]


def final_metric(split: str, name: str = "acc") -> str:
    """The name under which the train stage logs ``name`` (acc, acc_what, prior_acc) of its final scores."""
    return final_metric_prefix(split) + name


def questions_dropped_metric(split: str) -> str:
    """Questions of ``split`` left out because their video has no features (dataset.allow_missing_videos)."""
    return f"{split}_questions_dropped"


def accuracies(
    predictions: np.ndarray, answers: np.ndarray, types: np.ndarray, categories: Sequence[str] = QUESTION_TYPES
) -> dict[str, float]:
    """``{"acc": ..., "acc_<category>": ...}`` in the order of ``categories`` (the data set's names; ``types``
    holds each question's): fractions in [0, 1]; absent categories are left out."""
    predictions, answers, types = np.asarray(predictions), np.asarray(answers), np.asarray(types)
    if len(answers) == 0:
        return {}
    correct = predictions == answers
    result = {"acc": float(correct.mean())}
    for name in categories:
        mask = types == name
        if mask.any():
            result[f"acc_{name}"] = float(correct[mask].mean())
    return result


def prior_predictions(train_answers: np.ndarray, train_types: np.ndarray, types: np.ndarray) -> np.ndarray:
    """The most frequent train answer of each question category (ties: the first seen), applied to ``types``.

    Categories never seen in training get the overall most frequent train answer.
    """
    overall = Counter(np.asarray(train_answers).tolist()).most_common(1)[0][0]
    per_type: dict[str, Counter] = {}
    for answer, kind in zip(np.asarray(train_answers).tolist(), np.asarray(train_types).tolist()):
        per_type.setdefault(kind, Counter())[answer] += 1
    best = {kind: counts.most_common(1)[0][0] for kind, counts in per_type.items()}
    return np.array([best.get(kind, overall) for kind in np.asarray(types).tolist()], dtype=np.int64)
