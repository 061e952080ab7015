"""Score a model on one split: accuracy overall and per type, the answer-prior baseline and the predictions file.

The train stage (its best checkpoint, on ``train.eval_split``) and the evaluate stage (any checkpoint, on
``evaluate.split``) both score through :func:`score_split`, so their numbers and files cannot drift apart; each
names the metrics with its own prefix (:meth:`SplitScore.metrics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dualvgr.train.inputs import TrainInputs
from dualvgr.train.loop import evaluate
from dualvgr.train.metrics import accuracies, prior_predictions
from dualvgr.train.predictions import predictions_file, write_predictions


@dataclass(frozen=True)
class SplitScore:
    split: str
    scores: dict[str, float]  # {"acc": ..., "acc_<type>": ...}: absent types are left out
    prior_acc: float  # the answer prior (most frequent train answer per type) on the same questions
    correct: int  # questions answered right, out of ``questions``
    questions: int
    predictions: np.ndarray  # (Q,) predicted answer labels, in the split's order
    predictions_path: Path

    def metrics(self, prefix: str) -> dict[str, float]:
        """``<prefix>acc``, ``<prefix>acc_<type>`` and ``<prefix>prior_acc``."""
        scores = {f"{prefix}{name}": value for name, value in self.scores.items()}
        return scores | {f"{prefix}prior_acc": self.prior_acc}


def score_split(
    model: torch.nn.Module, inputs: TrainInputs, split_name: str, out_dir: Path, *, batch_size: int,
    device: torch.device, precision: str = "fp32", workers: int = 0,
) -> SplitScore:
    """Score ``model`` on ``split_name`` of ``inputs`` and write ``<split>_predictions.csv`` into ``out_dir``."""
    split = inputs.split(split_name)
    scores, predictions = evaluate(model, split, inputs.features, batch_size, device, precision=precision,
                                   workers=workers)
    answers = split.answers.numpy()
    prior = prior_predictions(inputs.train.answers.numpy(), inputs.train.types, split.types)
    path = write_predictions(Path(out_dir) / predictions_file(split_name), split, predictions,
                             inputs.vocabulary.answer_idx_to_token)
    return SplitScore(
        split=split_name, scores=scores,
        prior_acc=accuracies(prior, answers, split.types).get("acc", math.nan),
        correct=int((predictions == answers).sum()), questions=len(split), predictions=predictions,
        predictions_path=path,
    )
