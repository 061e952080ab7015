"""Prediction files: one row per question with its answer and the model's (as the original's test_preds.json)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from dualvgr.train.data import SplitQuestions

COLUMNS = ("question_id", "video_id", "question", "answer", "prediction", "type", "correct")


def predictions_file(split: str) -> str:
    """The name of a split's predictions file in a stage's output folder."""
    return f"{split}_predictions.csv"


def write_predictions(path: Path, split: SplitQuestions, predictions: np.ndarray, answer_tokens: Sequence[str]) -> Path:
    """CSV with the annotation's question id, video id, question, true answer, predicted answer, type."""
    labels = split.answers.numpy()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(len(split)):
            writer.writerow([int(split.qa_ids[i]), int(split.video_ids[i]), split.question_text[i],
                             split.answer_text[i], answer_tokens[int(predictions[i])], split.types[i],
                             int(predictions[i] == labels[i])])
    return path
