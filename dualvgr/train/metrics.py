"""Accuracy overall and per question type, and the answer-prior baseline.

Question types come from the first token (dualvgr-original.md §1.2): what / who / how / when / where count
towards their type; anything else ("other") counts only overall. A type absent from a split has no accuracy
(absent, never a division by zero: original bug B19).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

QUESTION_TYPES = ("what", "who", "how", "when", "where")


def accuracies(predictions: np.ndarray, answers: np.ndarray, types: np.ndarray) -> dict[str, float]:
    """``{"acc": ..., "acc_what": ..., ...}``: fractions in [0, 1]; absent types are left out."""
    predictions, answers, types = np.asarray(predictions), np.asarray(answers), np.asarray(types)
    if len(answers) == 0:
        return {}
    correct = predictions == answers
    result = {"acc": float(correct.mean())}
    for name in QUESTION_TYPES:
        mask = types == name
        if mask.any():
            result[f"acc_{name}"] = float(correct[mask].mean())
    return result


def prior_predictions(train_answers: np.ndarray, train_types: np.ndarray, types: np.ndarray) -> np.ndarray:
    """The most frequent train answer of each question type (ties: the first seen), applied to ``types``.

    Types never seen in training get the overall most frequent train answer.
    """
    overall = Counter(np.asarray(train_answers).tolist()).most_common(1)[0][0]
    per_type: dict[str, Counter] = {}
    for answer, kind in zip(np.asarray(train_answers).tolist(), np.asarray(train_types).tolist()):
        per_type.setdefault(kind, Counter())[answer] += 1
    best = {kind: counts.most_common(1)[0][0] for kind, counts in per_type.items()}
    return np.array([best.get(kind, overall) for kind in np.asarray(types).tolist()], dtype=np.int64)
